"""Analyze tier, silver + feature store -> gold: application features and matured labels.

Every feature of an application is what was known when it was decided: its own fields,
the applicant's income, employment and education as the application declared them
(``silver.with_applicant``), and the customer's history read point in time from the
feature store's ``fs_*`` tables (``feature_store.history_at_applications``), the rows
and reading the online store gives a live decision. Training and serving thus share one
definition of every feature.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from riskcontrol.analyze import silver
from riskcontrol.analyze.labels import LabelDefinition, loan_labels
from riskcontrol.core.catalog import (
    CATEGORICAL_FEATURES,
    GOLD_APPLICATION_FEATURES,
    NUMERIC_FEATURES,
    ZERO_WHEN_MISSING,
)


def application_features(
    applications: DataFrame,
    customers: DataFrame,
    history: DataFrame,
    loans: DataFrame,
    repayments: DataFrame,
    as_of: dt.date,
    definition: LabelDefinition,
) -> DataFrame:
    """One gold row per application: features known at application time and the label.

    ``history`` holds, per ``application_id``, the customer's history as the feature
    store knew it when the application was decided
    (``feature_store.history_at_applications``): the same rows and the same reading as
    the online store gives a live decision, so a model is trained on what it is served.
    """
    apps = silver.with_applicant(applications, customers)
    own = {"customer_id", "customer_key", "monthly_income", "employment_type", "education"}
    hist = history.select(
        "application_id", *[c for c in history.columns if c in NUMERIC_FEATURES and c not in own]
    )
    df = apps.join(hist, "application_id", "left").join(
        loan_labels(loans, repayments, as_of, definition).drop("worst_dpd", "judged_on"),
        "application_id",
        "left",
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
        F.coalesce("label_status", F.lit("no_loan")).alias("label_status"),
        F.coalesce("label_matured", F.lit(False)).alias("label_matured"),
        F.current_timestamp().alias("feature_time"),
    )
    return out.select(*GOLD_APPLICATION_FEATURES.columns)
