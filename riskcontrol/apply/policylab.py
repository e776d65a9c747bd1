"""Policy lab, Spark side: the historical applications a policy backtest replays.

``backtest_history`` turns ``gold.application_features`` into the frame
``backtest.replay`` reads: every application decided in a window of months, scored by
the active policy's model and by the proposed one's, with what the lender knows of its
outcome. An approved application carries its label (1 bad, 0 good) once the label has
matured and is not indeterminate; a rejected one has none, and is what reject
inference is for; an approved one without a label (immature, indeterminate, no
schedule) is counted in the decisions but enters no rate.

The frame is collected to the driver: one row per decided application of the window,
a few numbers each (a year of a million-customer book is about a million rows).
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from riskcontrol.apply import scoring, warning

DECIDED = ("approved", "rejected")
OUTCOME_STATUSES = ("good", "bad")  # label statuses that are an outcome
SEGMENTS = ("channel", "province", "product", "score_band")


class Scorer(Protocol):
    """What scores a frame of application features: a fitted Spark ML pipeline with a
    ``pd`` output column (a registered model version, the champion)."""

    def transform(self, df: DataFrame) -> DataFrame: ...


def _pd(model: Scorer, features: DataFrame, name: str) -> DataFrame:
    return model.transform(features).select("application_id", F.col("pd").alias(name))


def backtest_history(
    features: DataFrame, active: Scorer, proposed: Scorer, months: str
) -> pd.DataFrame:
    """The decided applications of ``months`` ("first..last", application months), one
    row each, with the columns ``backtest.replay`` reads: ``pd_active`` and
    ``pd_proposed`` (each model's PD), ``exposure`` (the requested amount: what the
    proposed policy would lend a swap-in), ``historical_decision``, ``bad`` (the label
    where an approved application's outcome is known, else missing), and the segments
    ``channel``, ``province``, ``product`` (the loan purpose) and ``score_band`` (the
    proposed model's risk band)."""
    window = warning.through_the_door(features, months).where(F.col("status").isin(*DECIDED))
    outcome = (F.col("status") == "approved") & F.col("label_status").isin(*OUTCOME_STATUSES)
    rows = (
        window.select(
            "application_id",
            "application_month",
            "channel",
            "province",
            F.col("purpose").alias("product"),
            F.col("requested_amount").alias("exposure"),
            F.col("status").alias("historical_decision"),
            F.when(outcome, F.col("label").cast("double")).alias("bad"),
        )
        .join(_pd(active, window, "pd_active"), "application_id")
        .join(_pd(proposed, window, "pd_proposed"), "application_id")
        .withColumn("score_band", scoring.risk_band(F.col("pd_proposed")))
    )
    frame = rows.toPandas()
    if frame.empty:
        raise ValueError(
            f"no application was approved or rejected in {months}: choose a window of "
            "months the book has decided applications in (`riskctl tables` shows "
            "gold.application_features)"
        )
    return frame.sort_values("application_id", kind="stable").reset_index(drop=True)
