"""Analyze tier, silver -> gold: point-in-time application features and matured labels.

Every feature of an application is computed from what was known before the
application was made (events and notes before ``applied_at``, repayments due before the
application date, the bureau report pulled for that application), so a model trained on
history sees what a live decision would have seen.
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


def _before_application(apps: DataFrame, facts: DataFrame, ts_col: str, days: int) -> DataFrame:
    """A customer's ``facts`` in the ``days`` before each application (never after)."""
    joined = apps.select("application_id", "customer_id", "applied_at").join(facts, "customer_id")
    since = F.col("applied_at") - F.expr(f"INTERVAL {days} DAYS")
    return joined.where((F.col(ts_col) < F.col("applied_at")) & (F.col(ts_col) >= since))


def event_features(apps: DataFrame, events: DataFrame, days: int = 30) -> DataFrame:
    """App-event aggregates in the ``days`` before each application."""
    facts = events.select("customer_id", "event_ts", "event_type", "is_night")
    return (
        _before_application(apps, facts, "event_ts", days)
        .groupBy("application_id")
        .agg(
            F.count("*").cast("double").alias("ev_count_30d"),
            F.avg(F.col("is_night").cast("double")).alias("ev_night_share_30d"),
            F.sum((F.col("event_type") == "loan_calc").cast("double")).alias("ev_loan_calc_30d"),
            F.sum((F.col("event_type") == "apply_click").cast("double")).alias(
                "ev_apply_click_30d"
            ),
        )
    )


def note_features(apps: DataFrame, notes: DataFrame, days: int = 90) -> DataFrame:
    """Service-note counts (all, and with negative-lexicon hits) before each application."""
    facts = notes.select("customer_id", "noted_at", "negative_hits")
    return (
        _before_application(apps, facts, "noted_at", days)
        .groupBy("application_id")
        .agg(
            F.count("*").cast("double").alias("notes_count_90d"),
            F.sum((F.col("negative_hits") > 0).cast("double")).alias("notes_negative_90d"),
        )
    )


def prior_loan_features(apps: DataFrame, loans: DataFrame, repayments: DataFrame) -> DataFrame:
    """The customer's own repayment record with this lender before the application date."""
    prior = (
        apps.select("application_id", "customer_id", "application_date")
        .join(loans.select("loan_id", "customer_id", "disbursed_date"), "customer_id")
        .where(F.col("disbursed_date") < F.col("application_date"))
    )
    lines = prior.join(repayments.select("loan_id", "due_date", "paid_date"), "loan_id", "left")
    lines = lines.where(
        F.col("due_date").isNull() | (F.col("due_date") < F.col("application_date"))
    )
    dpd = pit_dpd(F.col("due_date"), F.col("paid_date"), F.col("application_date"))
    return lines.groupBy("application_id").agg(
        F.countDistinct("loan_id").cast("double").alias("prior_loans"),
        F.coalesce(F.max(dpd), F.lit(0)).cast("double").alias("prior_max_dpd"),
        F.sum(F.when(F.col("due_date").isNotNull() & (dpd > 0), 1).otherwise(0))
        .cast("double")
        .alias("prior_late_installments"),
    )


def application_features(
    applications: DataFrame,
    customers: DataFrame,
    bureau: DataFrame,
    events: DataFrame,
    notes: DataFrame,
    loans: DataFrame,
    repayments: DataFrame,
    as_of: dt.date,
    performance_months: int,
    bad_dpd: int,
) -> DataFrame:
    """One gold row per application: features known at application time and the label."""
    apps = applications
    cust = customers.select(
        "customer_id",
        "customer_key",
        "birth_year",
        "monthly_income",
        "employment_type",
        "education",
    )
    # The report pulled for this application, never one pulled after it was made.
    bur = (
        apps.select("application_id", "applied_at")
        .join(bureau, "application_id")
        .where(F.to_date("report_time") <= F.to_date("applied_at"))
        .drop("applied_at", "customer_key")
        .dropDuplicates(["application_id"])
    )
    df = (
        apps.join(cust, "customer_id", "left")
        .join(bur, "application_id", "left")
        .join(event_features(apps, events), "application_id", "left")
        .join(note_features(apps, notes), "application_id", "left")
        .join(prior_loan_features(apps, loans, repayments), "application_id", "left")
        .join(
            loan_labels(loans, repayments, as_of, performance_months, bad_dpd),
            "application_id",
            "left",
        )
    )
    derived = {
        "age": silver.age_at("application_date"),
        "amount_to_income": F.try_divide("requested_amount", "monthly_income"),
        "utilization": F.try_divide("total_balance", "total_credit_limit"),
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
