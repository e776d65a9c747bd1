"""Analyze tier, silver + feature store -> gold: application features and matured labels.

Every feature of an application is what was known when it was decided: its own fields,
and the customer's history read point in time from the feature store's ``fs_*`` tables
(``feature_store.history_at_applications``), the rows and reading the online store
gives a live decision. Training and serving thus share one definition of every feature.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from riskcontrol.analyze import silver
from riskcontrol.core.catalog import (
    CATEGORICAL_FEATURES,
    GOLD_APPLICATION_FEATURES,
    NUMERIC_FEATURES,
    ZERO_WHEN_MISSING,
)
from riskcontrol.core.dates import pit_dpd


def loan_labels(
    loans: DataFrame, repayments: DataFrame, as_of: dt.date, performance_months: int, bad_dpd: int
) -> DataFrame:
    """Per loan: ``label`` 1 if it reached ``bad_dpd`` within the performance window.

    The window ends ``performance_months`` after disbursement; a loan whose window has
    not ended by ``as_of`` is not matured and gets a null label.
    """
    window_end = F.add_months("disbursed_date", performance_months)
    lw = loans.select("loan_id", "application_id", window_end.alias("window_end"))
    worst = (
        lw.join(repayments.select("loan_id", "due_date", "paid_date"), "loan_id", "left")
        .where(F.col("due_date").isNull() | (F.col("due_date") <= F.col("window_end")))
        .groupBy("loan_id", "application_id", "window_end")
        .agg(
            F.max(pit_dpd(F.col("due_date"), F.col("paid_date"), F.col("window_end"))).alias(
                "worst_dpd"
            )
        )
    )
    matured = F.col("window_end") <= F.lit(as_of)
    return worst.select(
        "application_id",
        F.when(matured, (F.coalesce(F.col("worst_dpd"), F.lit(0)) >= bad_dpd).cast("int")).alias(
            "label"
        ),
        matured.alias("label_matured"),
    )


def application_features(
    applications: DataFrame,
    customers: DataFrame,
    history: DataFrame,
    loans: DataFrame,
    repayments: DataFrame,
    as_of: dt.date,
    performance_months: int,
    bad_dpd: int,
) -> DataFrame:
    """One gold row per application: features known at application time and the label.

    ``history`` holds, per ``application_id``, the customer's history as the feature
    store knew it when the application was decided
    (``feature_store.history_at_applications``): the same rows and the same reading as
    the online store gives a live decision, so a model is trained on what it is served.
    """
    apps = applications
    cust = customers.select(
        "customer_id",
        "customer_key",
        "birth_year",
        "monthly_income",
        "employment_type",
        "education",
    )
    own = {"customer_id", "customer_key", "monthly_income", "employment_type", "education"}
    hist = history.select(
        "application_id", *[c for c in history.columns if c in NUMERIC_FEATURES and c not in own]
    )
    df = (
        apps.join(cust, "customer_id", "left")
        .join(hist, "application_id", "left")
        .join(
            loan_labels(loans, repayments, as_of, performance_months, bad_dpd),
            "application_id",
            "left",
        )
    )
    derived = {
        "age": silver.age_at("application_date"),
        "amount_to_income": F.try_divide("requested_amount", "monthly_income"),
    }

    def numeric(c: str) -> Column:
        # a count over an empty window is 0, not unknown; a missing bureau field stays null
        value = derived.get(c, F.col(c)).cast("double")
        return (F.coalesce(value, F.lit(0.0)) if c in ZERO_WHEN_MISSING else value).alias(c)

    out = df.select(
        "application_id",
        "customer_id",
        "customer_key",
        "application_date",
        F.date_format("application_date", "yyyy-MM").alias("application_month"),
        "status",
        *[numeric(c) for c in NUMERIC_FEATURES],
        *CATEGORICAL_FEATURES,
        "label",
        F.coalesce("label_matured", F.lit(False)).alias("label_matured"),
        F.current_timestamp().alias("feature_time"),
    )
    return out.select(*GOLD_APPLICATION_FEATURES.columns)
