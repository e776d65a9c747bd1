"""Apply tier: the loan book's risk on one day (``gold.loan_book_risk``).

Every active loan gets a probability of default, its exposure at default, the expected
loss and its severity quadrant:

* **PD**: the champion model's PD of the loan's application for a loan that is current;
  a loan in arrears takes at least the configured PD of its DPD bucket
  (``RISK_DELINQUENT_PD``, default 1-29: 0.35, 30-59: 0.60, 60-89: 0.85, 90+: 1.0), since
  arrears say more about a booked loan than its application did.
* **EAD**: what is still owed, the installments not paid by that day (principal and
  interest as scheduled).
* **Expected loss** = PD x LGD x EAD; **impact** = EAD x LGD, which places the loan in
  quadrant A-D with the PD (``scoring.quadrant``, the design's severity matrix).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from riskcontrol.apply import scoring
from riskcontrol.core.catalog import GOLD_LOAN_BOOK_RISK
from riskcontrol.core.config import Settings
from riskcontrol.modeling.scale import ScoreScale

# (bucket, lowest DPD), from the most overdue down; "current" is DPD 0.
DPD_BUCKETS = (("90+", 90), ("60-89", 60), ("30-59", 30), ("1-29", 1))
CURRENT = "current"


def dpd_bucket(dpd: Column) -> Column:
    expr = None
    for name, low in DPD_BUCKETS:
        expr = F.when(dpd >= low, name) if expr is None else expr.when(dpd >= low, name)
    return expr.otherwise(CURRENT)


def month_starts(first: dt.date, last: dt.date) -> list[dt.date]:
    """The first day of each month after ``first`` up to ``last``: the month-end
    snapshots (a state on the 1st is what was known at the end of the month before)."""
    if last < first:
        raise ValueError(f"{first}..{last}: the first day is after the last")
    out, year, month = [], first.year, first.month
    while True:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        day = dt.date(year, month, 1)
        if day > last:
            return out
        out.append(day)


def loan_states(loan_days: DataFrame) -> DataFrame:
    """Each loan's state (``provision.STATES``) on each day of ``loan_days``
    (``warning.loan_days`` rows): ``default`` from the first day it is 90+ DPD on (a loan
    that reached the default definition has defaulted, whatever it pays later),
    ``closed`` once nothing is unpaid, else its DPD bucket or ``current``."""
    ever = F.max((F.col("dpd") >= 90).cast("int")).over(
        Window.partitionBy("loan_id")
        .orderBy("as_of_date")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    state = F.when(ever == 1, "default").when(~F.col("active"), "closed")
    for name, low in DPD_BUCKETS[1:]:
        state = state.when(F.col("dpd") >= low, name)
    return loan_days.select("loan_id", "as_of_date", state.otherwise(CURRENT).alias("state"))


def state_moves(states: DataFrame) -> DataFrame:
    """How many loans moved from each state to each other between consecutive days of
    ``states`` (``loan_states``; monthly snapshots give the monthly transition matrix):
    ``from_state``, ``to_state``, ``loans``."""
    before = F.lag("state").over(Window.partitionBy("loan_id").orderBy("as_of_date"))
    return (
        states.select(before.alias("from_state"), F.col("state").alias("to_state"))
        .where(F.col("from_state").isNotNull())
        .groupBy("from_state", "to_state")
        .agg(F.count(F.lit(1)).alias("loans"))
    )


def delinquent_floor(bucket: Column, floors: dict[str, float]) -> Column:
    """The PD floor of a DPD bucket (0 for current loans: the model PD stands)."""
    known = {name for name, _ in DPD_BUCKETS}
    unknown = set(floors) - known
    if unknown:
        raise ValueError(
            f"RISK_DELINQUENT_PD has unknown buckets {sorted(unknown)}; use {sorted(known)}"
        )
    expr = F.lit(0.0)
    for name, value in floors.items():
        expr = F.when(bucket == name, F.lit(float(value))).otherwise(expr)
    return expr


def loan_book_risk(
    state: DataFrame,
    loans: DataFrame,
    application_pd: DataFrame,
    settings: Settings,
    as_of: dt.date,
    model_name: str,
    model_version: str,
) -> DataFrame:
    """The ``gold.loan_book_risk`` rows of the active loans in ``state``.

    ``state``: one row per active loan on ``as_of`` (loan_id, channel, province,
    disbursed_date, outstanding, dpd), as ``warning.loan_days`` gives it;
    ``loans``: silver.loans (application_id, principal); ``application_pd``:
    application_id, customer_key, pd (the champion's PD of the application).
    """
    bucket = dpd_bucket(F.col("dpd"))
    pd_col = F.greatest(F.col("model_pd"), delinquent_floor(bucket, settings.delinquent_pd))
    lgd = F.lit(float(settings.lgd))
    rows = (
        state.select("loan_id", "channel", "province", "disbursed_date", "outstanding", "dpd")
        .join(loans.select("loan_id", "application_id", "principal"), "loan_id")
        .join(
            application_pd.select("application_id", "customer_key", F.col("pd").alias("model_pd")),
            "application_id",
            "left",
        )
        .select(
            "*",
            bucket.alias("dpd_bucket"),
            pd_col.alias("pd"),
            F.col("outstanding").alias("ead"),
        )
    )
    q = scoring.quadrant(
        F.col("pd"),
        F.col("ead") * lgd,
        settings.quadrant_pd_threshold,
        settings.quadrant_impact_threshold,
    )
    out = rows.select(
        F.lit(as_of).cast("date").alias("as_of_date"),
        "loan_id",
        "application_id",
        "customer_key",
        "channel",
        "province",
        "disbursed_date",
        "principal",
        "ead",
        F.col("dpd").cast("int").alias("dpd"),
        "dpd_bucket",
        "pd",
        ScoreScale.from_settings(settings).column(F.col("pd")).alias("score"),
        lgd.alias("lgd"),
        (F.col("pd") * lgd * F.col("ead")).alias("expected_loss"),
        scoring.risk_band(F.col("pd")).alias("risk_band"),
        (F.col("ead") * lgd).alias("impact"),
        q.alias("quadrant"),
        scoring.strategy(q).alias("strategy"),
        F.lit(model_name).alias("model_name"),
        F.lit(model_version).alias("model_version"),
        F.current_timestamp().alias("scored_at"),
    )
    return out.select(*GOLD_LOAN_BOOK_RISK.columns)
