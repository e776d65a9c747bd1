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
from dataclasses import dataclass

import numpy as np
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from riskcontrol.apply import provision, scoring
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


def loan_states(loan_days: DataFrame, default_dpd: int = provision.DEFAULT_DPD) -> DataFrame:
    """Each loan's state (``provision.STATES``) on each day of ``loan_days``
    (``warning.loan_days`` rows): ``default`` from the first day it is ``default_dpd`` or
    more days past due on (a loan that reached the default definition has defaulted,
    whatever it pays later), ``closed`` once nothing is unpaid, else its DPD bucket or
    ``current``. The buckets are those of ``provision.ARREARS``, which end at 90 DPD:
    ``default_dpd`` above 90 is refused rather than folded into 60-89."""
    if not 0 < default_dpd <= provision.DEFAULT_DPD:
        raise ValueError(
            f"default_dpd {default_dpd}: the book's states end at {provision.DEFAULT_DPD} DPD"
        )
    ever = F.max((F.col("dpd") >= default_dpd).cast("int")).over(
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


def installment_parts(principal: Column, annual_rate: Column, term: Column, k: Column):
    """``(interest, principal)`` parts of installment ``k`` of an annuity, as
    ``provision.amortization`` computes them (monthly rate annual_rate / 12)."""
    r = annual_rate / F.lit(12.0)
    growth = F.pow(F.lit(1.0) + r, k - F.lit(1))
    payment = F.when(r > 0, principal * r / (F.lit(1.0) - F.pow(F.lit(1.0) + r, -term))).otherwise(
        principal / term
    )
    before = F.when(r > 0, principal * growth - payment * (growth - F.lit(1.0)) / r).otherwise(
        principal - payment * (k - F.lit(1))
    )
    interest = before * r
    return interest, payment - interest


def exposures(loans: DataFrame, repayments: DataFrame, as_of: dt.date | DataFrame) -> DataFrame:
    """Each loan's exposure on ``as_of`` (``provision.exposure``'s rules; an installment
    is unpaid unless paid before ``as_of``): ``outstanding_principal`` (principal parts of
    the unpaid installments), ``billed_interest`` (interest parts of the unpaid ones due
    before ``as_of``), ``accrued_interest`` (on the principal not yet due, since the last
    due day or the disbursement, actual/365), ``ead`` their sum, and
    ``remaining_months`` (installments due on ``as_of`` or later). No fees are recorded
    in the lending system, so none are added.

    ``as_of`` is one day for the whole book, or a frame of (``loan_id``,
    ``exposure_date``): each of its loans on its own day (a default's exposure on the
    day it defaulted), with ``exposure_date`` kept in the result."""
    lines = repayments.select("loan_id", "installment_no", "due_date", "paid_date").join(
        loans.select("loan_id", "principal", "annual_rate", "term_months", "disbursed_date"),
        "loan_id",
    )
    if isinstance(as_of, DataFrame):
        lines = lines.join(as_of.select("loan_id", "exposure_date"), "loan_id")
        day, keep = F.col("exposure_date"), ["exposure_date"]
    else:
        day, keep = F.lit(as_of).cast("date"), []
    interest, part = installment_parts(
        F.col("principal"),
        F.col("annual_rate"),
        F.col("term_months").cast("double"),
        F.col("installment_no").cast("double"),
    )
    unpaid = F.col("paid_date").isNull() | (F.col("paid_date") >= day)
    due = F.col("due_date") < day
    per_loan = lines.groupBy("loan_id", "annual_rate", "disbursed_date", *keep).agg(
        F.sum(F.when(unpaid, part).otherwise(0.0)).alias("outstanding_principal"),
        F.sum(F.when(unpaid & due, interest).otherwise(0.0)).alias("billed_interest"),
        F.sum(F.when(unpaid & ~due, part).otherwise(0.0)).alias("_not_due"),
        F.max(F.when(due, F.col("due_date"))).alias("_last_due"),
        F.sum((~due).cast("int")).alias("remaining_months"),
    )
    since = F.coalesce("_last_due", "disbursed_date")
    accrued = (
        F.col("_not_due") * F.col("annual_rate") * F.greatest(F.datediff(day, since), F.lit(0))
    ) / F.lit(365.0)
    return per_loan.select(
        "loan_id",
        *keep,
        "outstanding_principal",
        "billed_interest",
        accrued.alias("accrued_interest"),
        (F.col("outstanding_principal") + F.col("billed_interest") + accrued).alias("ead"),
        F.col("remaining_months").cast("int").alias("remaining_months"),
    )


def default_dates(repayments: DataFrame, as_of: dt.date, default_dpd: int) -> DataFrame:
    """Each loan that reached ``default_dpd`` days past due on or before ``as_of``, with
    the first day it did (``default_date``; the rules of ``core.dates.pit_dpd``).

    An installment is ``default_dpd`` days past due on its due day + ``default_dpd`` when
    it is still unpaid then (no paid date, or paid on that day or later); a loan defaults
    on the earliest such day of its installments, whatever happened after (a cure does
    not undo the default: the cash it brings counts as recovery)."""
    reached = F.date_add("due_date", default_dpd)
    return (
        repayments.where(
            (reached <= F.lit(as_of).cast("date"))
            & (F.col("paid_date").isNull() | (F.col("paid_date") >= reached))
        )
        .groupBy("loan_id")
        .agg(F.min(reached).alias("default_date"))
    )


def recovery_inputs(
    loans: DataFrame,
    repayments: DataFrame,
    settlements: DataFrame,
    as_of: dt.date,
    default_dpd: int,
) -> tuple[DataFrame, DataFrame]:
    """What ``provision.lgd_from_recoveries`` reads: the defaults (``loan_id``,
    ``written_off_date`` = the default day, ``ead`` then) and the cash the settlement
    files show on those loans from that day to ``as_of`` (``loan_id``, ``paid_date``,
    ``amount``): collections' recoveries and a cured borrower's payments alike."""
    defaults = default_dates(repayments, as_of, default_dpd)
    ead = exposures(loans, repayments, defaults.withColumnRenamed("default_date", "exposure_date"))
    write_offs = ead.select("loan_id", F.col("exposure_date").alias("written_off_date"), "ead")
    cash = (
        settlements.select("loan_id", F.to_date("paid_at").alias("paid_date"), "amount")
        .join(defaults, "loan_id")
        .where(
            (F.col("paid_date") >= F.col("default_date"))
            & (F.col("paid_date") <= F.lit(as_of).cast("date"))
        )
        .select("loan_id", "paid_date", "amount")
    )
    return write_offs, cash


def _floats(values) -> Column:
    return F.array(*[F.lit(float(v)) for v in values])


def loan_pd_columns(
    model_pd: Column,
    dpd: Column,
    remaining_months: Column,
    matrix: provision.TransitionMatrix,
    label_months: int,
    longest: int,
    horizon: int = 12,
) -> dict[str, Column]:
    """``stage``, ``pd_horizon_months`` and ``pd`` of ``provision.loan_pds`` as Spark
    columns, for loans with at most ``longest`` months left: the book's curves (a few
    hundred numbers, none about a customer) travel as array literals."""
    months_max = max(longest, label_months, horizon, provision.DEFAULT_DPD // 30)
    c = matrix.cumulative_default(months_max)
    current = c[:, provision.STATES.index(provision.CURRENT)]
    if not current[label_months] > 0:
        raise ValueError(
            f"no default from current within {label_months} months in the history: the "
            "book's hazard curve cannot scale PDs to other horizons"
        )
    hazard = -np.log1p(-np.minimum(current, 1.0))
    stage = (
        F.when(dpd >= provision.DEFAULT_DPD, 3).when(dpd >= provision.BACKSTOP_DPD, 2).otherwise(1)
    )
    left = F.greatest(remaining_months, F.lit(0))
    months = F.when(stage == 1, F.least(left, F.lit(horizon))).otherwise(left)
    to_default = F.ceil(F.greatest(F.lit(provision.DEFAULT_DPD) - dpd, F.lit(0)) / 30.0)
    months = F.when((dpd >= 1) & (stage < 3), F.greatest(months, to_default)).otherwise(months)
    months = months.cast("int")
    ratio = F.element_at(_floats(hazard), months + 1) / F.lit(float(hazard[label_months]))
    scaled = (
        F.when(model_pd >= 1.0, 1.0)
        .when(months == 0, 0.0)
        .otherwise(F.lit(1.0) - F.pow(F.lit(1.0) - model_pd, ratio))
    )
    state = dpd_bucket(dpd)
    index = F.lit(provision.STATES.index(provision.CURRENT))
    for name, _ in DPD_BUCKETS[1:]:
        index = F.when(state == name, F.lit(provision.STATES.index(name))).otherwise(index)
    table = F.array(*[_floats(row) for row in c])
    from_bucket = F.element_at(F.element_at(table, months + 1), index + 1)
    pd_ = (
        F.when(stage == 3, 1.0)
        .when(state == CURRENT, scaled)
        .otherwise(F.greatest(scaled, from_bucket))
    )
    return {"stage": stage, "pd_horizon_months": months, "pd": pd_}


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


@dataclass(frozen=True)
class Provisioning:
    """What the book's own history says for expected loss with horizons."""

    matrix: provision.TransitionMatrix
    label_months: int  # the model PD's window (RISK_PERFORMANCE_CYCLES)
    longest: int  # the most months any loan has left
    exposures: DataFrame  # ``exposures`` rows
    lgd: provision.LgdEstimate


def loan_book_risk(
    state: DataFrame,
    loans: DataFrame,
    application_pd: DataFrame,
    settings: Settings,
    as_of: dt.date,
    model_name: str,
    model_version: str,
    provisioning: Provisioning | None = None,
) -> DataFrame:
    """The ``gold.loan_book_risk`` rows of the active loans in ``state``.

    ``state``: one row per active loan on ``as_of`` (loan_id, channel, province,
    disbursed_date, outstanding, dpd), as ``warning.loan_days`` gives it;
    ``loans``: silver.loans (application_id, principal); ``application_pd``:
    application_id, customer_key, pd (the champion's PD of the application).

    With ``provisioning`` (the book's transition matrix, exposures and LGD) a loan's PD
    has its stage's horizon (``loan_pd_columns``) and its EAD excludes future interest
    (``exposures``); without it (a history too thin to estimate from) the model PD with
    the configured floors per bucket (``RISK_DELINQUENT_PD``) and the unpaid
    installments stand, and the horizon is left empty.
    """
    bucket = dpd_bucket(F.col("dpd"))
    base = state.select(
        "loan_id", "channel", "province", "disbursed_date", "outstanding", "dpd"
    ).join(loans.select("loan_id", "application_id", "principal"), "loan_id")
    if provisioning is None:
        lgd = F.lit(float(settings.lgd))
        pd_cols = {
            "pd": F.greatest(F.col("model_pd"), delinquent_floor(bucket, settings.delinquent_pd)),
            "stage": F.when(F.col("dpd") >= provision.DEFAULT_DPD, 3)
            .when(F.col("dpd") >= provision.BACKSTOP_DPD, 2)
            .otherwise(1),
            "pd_horizon_months": F.lit(None).cast("int"),
        }
        ead = F.col("outstanding")
    else:
        lgd = F.lit(float(provisioning.lgd.lgd))
        base = base.join(
            provisioning.exposures.select("loan_id", "ead", "remaining_months"), "loan_id", "left"
        )
        pd_cols = loan_pd_columns(
            F.col("model_pd"),
            F.col("dpd"),
            F.coalesce("remaining_months", F.lit(0)),
            provisioning.matrix,
            provisioning.label_months,
            provisioning.longest,
        )
        ead = F.coalesce(F.col("ead"), F.col("outstanding"))
    rows = base.join(
        application_pd.select("application_id", "customer_key", F.col("pd").alias("model_pd")),
        "application_id",
        "left",
    ).select(
        "loan_id",
        "application_id",
        "customer_key",
        "channel",
        "province",
        "disbursed_date",
        "principal",
        "dpd",
        bucket.alias("dpd_bucket"),
        *[c.alias(n) for n, c in pd_cols.items()],
        ead.alias("ead"),
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
        F.col("stage").cast("int").alias("stage"),
        "pd_horizon_months",
    )
    return out.select(*GOLD_LOAN_BOOK_RISK.columns)
