"""Apply tier: daily early-warning indicators against warning and critical thresholds.

The indicators of day ``d`` see what was known on ``d``, with the rule of
``core.dates.pit_dpd``: a fact dated strictly before ``d`` is known, a payment made on day ``p``
counts from ``p + 1`` (on ``p`` itself the installment is still unpaid), an installment
due on ``d`` is not yet overdue. So "within (d-30, d]" means "became known on one of
the 30 days up to ``d``": an application, decision or public record dated in
``[d-30, d)``.

Indicators (``value`` compared with the thresholds, ``>=`` breaches; for the signed shift
its absolute value is compared):

* ``dpd1_rate``, ``dpd30_rate``, ``dpd90_rate``: share of active loans at least 1 / 30 /
  90 days past due, for the whole book and by channel and province;
* ``default_rate``: loans that reached 90 DPD within (d-30, d] over loans active at d-30;
* ``roll_1_30``, ``roll_30_60``: of the loans 1-29 (30-59) DPD at d-30, the share at 30+
  (60+) at d;
* ``vintage_mob3_dpd30``: share of the latest disbursement-month cohort fully at
  month-on-book 3 that was ever 30+ DPD by then;
* ``score_psi``: population stability of recent applications' PDs against the PDs of
  every application made in the training months (``through_the_door``: like against
  like, whatever became of them), on that baseline's deciles;
* ``approval_rate_shift``: approval rate of the last 30 days minus that of the 90 before;
* ``concentration_province``, ``concentration_channel``: the largest segment's share of
  the active outstanding;
* ``public_record_hits_30d``: new court or penalty records linked to current borrowers,
  per 1,000 of them (a count would alert on any book of size);
* ``csi``: characteristic stability of each model feature (segment type ``feature``,
  segment its name): the same recent applications as ``score_psi`` against the
  applications of the ``REFERENCE_DAYS`` before them (a change within weeks; the slow
  drift from the development sample is the model's), on the through-the-door
  baseline's deciles (numerics) or levels (categoricals, with a bin for a level the
  baseline never had), missing values a bin of their own;
* ``rt_approval_rate_shift``: the decision service's approval rate over its decisions of
  the last 7 days minus that of the 23 days before (``gold.decision_log``), its noise as
  the approval shift's;
* ``rt_rule_hit_rate``: the share of the service's decisions of the last 7 days on which
  a policy rule fired: any rule (whole book), and each rule (segment type ``rule``).

A breach within ``NOISE_SE`` standard errors of what sampling alone gives is ``too_few``:
the approval shift's (a difference of two proportions) and the stability indices'
(``stability_noise``): a small book's month of applications moves them by chance.

Every row says where its thresholds come from (``threshold_source``): the default and
its evidence (``DEFAULT_SOURCES``), a file (``RISK_WARNING_THRESHOLDS``), or a
calibration on the book's own history (``calibrate``, ``riskctl warn --calibrate``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from riskcontrol.core.catalog import GOLD_WARNING_INDICATORS
from riskcontrol.core.dates import pit_dpd

ROLL_DAYS = 30  # window of the default, roll, approval, PSI and public-record indicators
RT_DAYS = 7  # the decision service's recent window (of ROLL_DAYS; the rest is its baseline)
APPROVAL_BASE_DAYS = 120  # approval-rate baseline: applications dated in [d-120, d-30)
# An approval shift's before window, in recent windows: the batch's 90 days against 30,
# the decision service's 23 against 7
BEFORE_WINDOWS = {
    "approval_rate_shift": (APPROVAL_BASE_DAYS - ROLL_DAYS) / ROLL_DAYS,
    "rt_approval_rate_shift": (ROLL_DAYS - RT_DAYS) / RT_DAYS,
}
NOISE_SE = 3  # a breach within this many standard errors of its sampling noise is too_few
REFERENCE_DAYS = 180  # a CSI's reference: the applications of the 180 days before its window
VINTAGE_MOB = 3  # month on book of the vintage indicator
PER_BORROWERS = 1000  # public-record hits are a rate per this many current borrowers
PSI_FLOOR = 1e-4  # bin share floor, so an empty bin adds a large but finite PSI term
SMOOTHING = 0.5  # a CSI bin's added count (Jeffreys): both windows are samples
OVERALL = "overall"  # segment_type of whole-book indicators (segment "all")
ALL = "all"
SEGMENT_TYPES = ("channel", "province")

DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    # Overdue rates: on generated books (seeds 1-11, 1,500 and 20,000 customers) every
    # channel stays below warning over the last 120 days (DPD 30+ at most 0.20, DPD 1+
    # 0.25) but the planted partner_a deterioration, which crosses both
    # (tests/test_warning.py). Defaulted loans stay on the book until the charge-off rule
    # (RISK_CHARGE_OFF_DPD) writes them off, hence ~0.05-0.1 at 90+.
    "dpd1_rate": {"warning": 0.30, "critical": 0.40},
    "dpd30_rate": {"warning": 0.25, "critical": 0.35},
    "dpd90_rate": {"warning": 0.20, "critical": 0.30},
    "default_rate": {"warning": 0.02, "critical": 0.03},  # a month; generated ~0.01
    "roll_1_30": {"warning": 0.75, "critical": 0.90},  # generated ~0.45 (daily 0.2-0.75)
    # Generated borrowers cure less the longer they are in arrears: ~0.8 overall, daily
    # up to 1.0 on a small book and in the planted deterioration (nobody there cures).
    "roll_30_60": {"warning": 0.90, "critical": 0.97},
    "vintage_mob3_dpd30": {"warning": 0.10, "critical": 0.15},  # generated 0.04-0.08
    "score_psi": {"warning": 0.10, "critical": 0.25},  # the usual PSI rule of thumb
    "csi": {"warning": 0.10, "critical": 0.25},  # the same rule, one row per feature
    "approval_rate_shift": {"warning": 0.08, "critical": 0.15},  # generated within 0.06
    "concentration_province": {"warning": 0.30, "critical": 0.45},  # generated ~0.2
    "concentration_channel": {"warning": 0.55, "critical": 0.70},  # generated ~0.41
    # Per 1,000 current borrowers over 30 days (a count alerted on any book of size).
    "public_record_hits_30d": {"warning": 5.0, "critical": 10.0},
    # The decision service (gold.decision_log): a week's approvals against the weeks
    # before, and how often a policy rule stops or refers an application; a list or fraud
    # rule that suddenly fires on many applications is an attack or a broken feed.
    "rt_approval_rate_shift": {"warning": 0.10, "critical": 0.20},
    "rt_rule_hit_rate": {"warning": 0.25, "critical": 0.40},
}
_GENERATED = "generated books seeds 1-11, see tests/test_warning.py"
_PSI_CONVENTION = (
    "PSI convention: under 0.1 stable, 0.1-0.25 moderate shift, 0.25+ major shift "
    "(Siddiqi, Credit Risk Scorecards, 2006)"
)
# Where each default comes from: the provenance a row carries when nothing overrides it.
DEFAULT_SOURCES: dict[str, str] = {
    "dpd1_rate": _GENERATED,
    "dpd30_rate": _GENERATED,
    "dpd90_rate": _GENERATED,
    "default_rate": f"{_GENERATED} (generated ~0.01 a month)",
    "roll_1_30": f"{_GENERATED} (generated ~0.45)",
    "roll_30_60": f"{_GENERATED} (generated ~0.8: cures fall with months in arrears)",
    "vintage_mob3_dpd30": f"{_GENERATED} (generated 0.04-0.08)",
    "score_psi": _PSI_CONVENTION,
    "csi": _PSI_CONVENTION,
    "approval_rate_shift": f"{_GENERATED} (generated within 0.06)",
    "concentration_province": f"{_GENERATED} (generated ~0.2)",
    "concentration_channel": f"{_GENERATED} (generated ~0.41)",
    "public_record_hits_30d": (
        "judgement, not fitted on data: new court or penalty records per 1,000 current "
        "borrowers in 30 days (0.5% / 1% of the book); calibrate it on the book's history"
    ),
    "rt_approval_rate_shift": "judgement: a week's approval rate 10 (20) points off the month's",
    "rt_rule_hit_rate": "judgement: a quarter (40%) of decisions stopped or referred by rules",
}
INDICATORS = tuple(DEFAULT_THRESHOLDS)
SIGNED = ("approval_rate_shift", "rt_approval_rate_shift")  # breach on the absolute value
STABILITY = ("score_psi", "csi")  # rows carry their sampling noise (stability_noise)
# Rates over counted loans or applications: 'too_few' when the denominator is small.
COUNTED = (
    "dpd1_rate",
    "dpd30_rate",
    "dpd90_rate",
    "default_rate",
    "roll_1_30",
    "roll_30_60",
    "vintage_mob3_dpd30",
    "approval_rate_shift",
    "rt_approval_rate_shift",
    "rt_rule_hit_rate",
)
RULE = "rule"  # segment_type of a policy rule's own hit rate
FEATURE = "feature"  # segment_type of a model feature's CSI (segment: the feature's name)
# What one indicator row says, as alerts and the report read it.
INDICATOR_COLUMNS = (
    "as_of_date",
    "indicator",
    "segment_type",
    "segment",
    "value",
    "warning_threshold",
    "critical_threshold",
    "status",
)
# gold.warning_indicators as computed here (the run's bookkeeping columns come on writing)
OUTPUT_COLUMNS = tuple(
    c for c in GOLD_WARNING_INDICATORS.columns if c not in ("run_id", "computed_at")
)


# --- thresholds and days -------------------------------------------------------------------
def default_thresholds() -> dict[str, dict[str, float | str]]:
    """``DEFAULT_THRESHOLDS`` with each indicator's ``source`` (``DEFAULT_SOURCES``)."""
    return {
        name: {**levels, "source": f"default: {DEFAULT_SOURCES[name]}"}
        for name, levels in DEFAULT_THRESHOLDS.items()
    }


def load_thresholds(path: Path | None) -> dict[str, dict[str, float | str]]:
    """The default thresholds with a YAML file's overrides merged in; each indicator's
    ``source`` says where its two numbers come from.

    The file maps indicator names to ``warning`` and/or ``critical`` values, e.g.
    ``dpd30_rate: {warning: 0.15}``, and optionally a ``source`` text (``calibrate``
    writes one); what it leaves out keeps its default. Source: ``file <path>`` (then the
    file's own text), and, when the file sets one level only, which level it set and
    where the other one comes from.
    """
    merged = default_thresholds()
    if path is None:
        return merged
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of indicator -> {{warning, critical}}")
    for name, levels in data.items():
        if name not in merged:
            raise ValueError(f"{path}: unknown indicator {name!r}; known: {', '.join(INDICATORS)}")
        if not isinstance(levels, dict) or not set(levels) <= {"warning", "critical", "source"}:
            raise ValueError(
                f"{path}: {name} takes only 'warning' and 'critical' numbers (and a 'source')"
            )
        numbers = {k: v for k, v in levels.items() if k != "source"}
        for level, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{path}: {name}.{level} must be a number, not {value!r}")
            merged[name][level] = float(value)
        if merged[name]["warning"] > merged[name]["critical"]:
            raise ValueError(
                f"{path}: {name} warning {merged[name]['warning']} is above critical "
                f"{merged[name]['critical']}; set warning <= critical"
            )
        if numbers:
            text = f"file {path}"
            if levels.get("source"):
                text += f": {levels['source']}"
            if len(numbers) == 1:
                (level,) = numbers
                other = "critical" if level == "warning" else "warning"
                text = f"{level} {text}; {other} {merged[name]['source']}"
            merged[name]["source"] = text
    return merged


def _source(levels: dict) -> str:
    return str(levels.get("source") or "given by the caller, source not stated")


# --- thresholds calibrated on the book's own history -------------------------------------
CALIBRATION_K = (3.0, 4.0)  # warning and critical: mean + k standard deviations
MIN_CALIBRATION_DAYS = 90  # about three independent 30-day windows


def calibrate(
    name: str,
    series: Sequence[tuple[dt.date, float | None]],
    k: tuple[float, float] = CALIBRATION_K,
    min_days: int = MIN_CALIBRATION_DAYS,
) -> dict[str, float | str]:
    """Warning and critical thresholds for indicator ``name`` from its daily values over
    a window of calm days (``series``: day, value; one per day): upper control limits
    mean + k·sd (sample sd), k = 3 and 4 by default, with the provenance as ``source``.

    Why control limits: they extrapolate from the book's own day-to-day spread, so a
    quiet book gets tight limits and a noisy one wide ones, and a breach means "unlike
    the calm days". Under any distribution (Cantelli) at most 1/(1+k^2) of calm days
    exceed mean + k·sd: 10% at 3, 6% at 4; about 0.1% and 0.003% when roughly normal.
    A high quantile would instead sit at the calm window's own extremes: the indicators
    are rolling 30-day rates, so consecutive days share 29 of their 30 days and 90 days
    hold only about three independent readings, whose largest is no limit at all.
    That autocorrelation is also why fewer than ``min_days`` days are refused: the sd
    of fewer independent readings says little. Pick calm days (no known incident in
    the window): a breach inside it widens the limits.

    Signed indicators (``SIGNED``) are compared by their absolute value, so they are
    calibrated on it. Missing values are left out; a constant series is refused (no
    spread to set a limit from).
    """
    k_warning, k_critical = k
    if not 0 < k_warning <= k_critical:
        raise ValueError(f"k must be 0 < warning <= critical, got {k}")
    known = sorted((d, float(v)) for d, v in series if v is not None and not np.isnan(v))
    if name in SIGNED:
        known = [(d, abs(v)) for d, v in known]
    if len({d for d, _ in known}) != len(known):
        raise ValueError(f"{name}: more than one value on a day: give one value per day")
    span = f"{known[0][0]}..{known[-1][0]}" if known else "no days"
    if len(known) < min_days:
        raise ValueError(
            f"{name}: {len(known)} day(s) with a value ({span}); calibrating needs at least "
            f"{min_days}: compute more days (riskctl warn --days) or keep the current thresholds"
        )
    values = np.array([v for _, v in known])
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    if values.min() == values.max():
        raise ValueError(
            f"{name}: the value is {values[0]:g} on every day ({span}): no spread to set a "
            "limit from"
        )
    return {
        "warning": mean + k_warning * sd,
        "critical": mean + k_critical * sd,
        "source": (
            f"calibrated: control limit mean+{k_warning:g}sd (critical mean+{k_critical:g}sd) "
            f"over {len(known)} days {span}: mean {mean:.6g}, sd {sd:.6g}"
        ),
    }


def daily_series(
    indicators_df: DataFrame, name: str, first: dt.date, last: dt.date
) -> list[tuple[dt.date, float]]:
    """One value a day for ``name`` from ``gold.warning_indicators`` rows of
    ``first..last``: the whole book's where the indicator has one, else the day's largest
    over its segments (the one that breaches first: the CSI's worst feature, the largest
    concentration); rows too_few or without a value are left out."""
    rows = indicators_df.where(
        (F.col("indicator") == name)
        & F.col("as_of_date").between(F.lit(first), F.lit(last))
        & (F.col("status") != "too_few")
        & F.col("value").isNotNull()
    )
    overall = rows.where(F.col("segment_type") == OVERALL)
    if not overall.isEmpty():
        rows = overall
    value = F.abs("value") if name in SIGNED else F.col("value")
    per_day = rows.groupBy("as_of_date").agg(F.max(value).alias("value")).orderBy("as_of_date")
    return [(r.as_of_date, r.value) for r in per_day.collect()]


def calibrate_history(
    indicators_df: DataFrame,
    first: dt.date,
    last: dt.date,
    names: Sequence[str] | None = None,
    min_days: int = MIN_CALIBRATION_DAYS,
) -> tuple[dict[str, dict[str, float | str]], dict[str, str]]:
    """``calibrate`` each indicator (default: all) on its ``daily_series``; returns the
    thresholds calibrated and, for the others, why not."""
    unknown = [n for n in names or () if n not in INDICATORS]
    if unknown:
        raise ValueError(
            f"unknown indicator(s) {', '.join(unknown)}; known: {', '.join(INDICATORS)}"
        )
    done, refused = {}, {}
    for name in names or INDICATORS:
        try:
            done[name] = calibrate(
                name, daily_series(indicators_df, name, first, last), min_days=min_days
            )
        except ValueError as exc:
            refused[name] = str(exc)
    return done, refused


def write_thresholds(path: Path, thresholds: dict[str, dict[str, float | str]]) -> None:
    """A thresholds YAML that ``load_thresholds`` (``RISK_WARNING_THRESHOLDS``) reads,
    each indicator with its ``source``."""
    data = {
        name: {
            "warning": float(levels["warning"]),
            "critical": float(levels["critical"]),
            "source": str(levels["source"]),
        }
        for name, levels in thresholds.items()
    }
    Path(path).write_text(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


def days(as_of: dt.date, lookback_days: int) -> list[dt.date]:
    """The ``lookback_days`` days ending on ``as_of``, oldest first."""
    if lookback_days < 1:
        raise ValueError(f"lookback_days must be at least 1, got {lookback_days}")
    return [as_of - dt.timedelta(days=n) for n in range(lookback_days - 1, -1, -1)]


def days_frame(spark: SparkSession, day_list: Sequence[dt.date]) -> DataFrame:
    """A one-column DataFrame (``as_of_date``) of the given days."""
    return spark.createDataFrame([(d,) for d in day_list], "as_of_date date")


# --- loan state per day --------------------------------------------------------------------
def loan_days(
    loans: DataFrame, repayments: DataFrame, applications: DataFrame, days_df: DataFrame
) -> DataFrame:
    """Each loan's state on each day ``d`` of ``days_df`` (rules of ``core.dates.pit_dpd``).

    An installment is unpaid on ``d`` unless paid before ``d`` (``paid_date < d``);
    ``dpd`` is the largest ``pit_dpd`` of the unpaid installments, that of the oldest
    one due before ``d`` (0 when none is overdue), ``outstanding`` the sum of their
    ``amount_due``, and the loan is ``active`` when one is unpaid. Rows: every loan
    disbursed before ``d`` with an installment unpaid on the first day of ``days_df``
    (loans settled earlier are inactive on every day and left out), so a loan that pays
    off within the days keeps inactive rows. Channel and province are the application's.

    A loan's state only changes the day after an installment falls due or is paid, so
    it is computed once per such change and spread over the days until the next one:
    the work grows with loans x installments, not with days x installments.
    """
    span = days_df.agg(
        F.min("as_of_date").alias("first_day"), F.max("as_of_date").alias("last_day")
    )
    inst = (
        repayments.select("loan_id", "due_date", "amount_due", "paid_date")
        .crossJoin(F.broadcast(span))
        .where(F.col("paid_date").isNull() | (F.col("paid_date") >= F.col("first_day")))
    )
    book = (
        loans.select("loan_id", "application_id", "customer_id", "disbursed_date")
        .join(
            applications.select("application_id", "channel", "province"), "application_id", "left"
        )
        .drop("application_id")
    )
    start = F.greatest(F.col("first_day"), F.date_add("disbursed_date", 1))
    changes = (
        inst.join(book.select("loan_id", "disbursed_date"), "loan_id")
        .select(
            "loan_id",
            "last_day",
            F.explode(F.array(start, F.date_add("due_date", 1), F.date_add("paid_date", 1))).alias(
                "since"
            ),
            start.alias("start"),
        )
        .where(F.col("since").between(F.col("start"), F.col("last_day")))
        .select("loan_id", "since", "last_day")
        .distinct()
    )
    since = F.col("since")
    unpaid = F.col("paid_date").isNull() | (F.col("paid_date") >= since)
    states = (
        changes.join(inst.drop("first_day", "last_day"), "loan_id")
        .groupBy("loan_id", "since", "last_day")
        .agg(
            F.round(F.sum(F.when(unpaid, F.col("amount_due")).otherwise(0.0)), 2).alias(
                "outstanding"
            ),
            F.min(F.when(unpaid & (F.col("due_date") < since), F.col("due_date"))).alias(
                "oldest_due"
            ),
            F.bool_or(unpaid).alias("active"),
        )
        .withColumn(
            "until",
            F.coalesce(
                F.lead("since").over(Window.partitionBy("loan_id").orderBy("since")),
                F.date_add("last_day", 1),
            ),
        )
    )
    d = F.col("as_of_date")
    # the oldest overdue installment is unpaid on d: its pit_dpd is as with no payment
    dpd = pit_dpd(F.col("oldest_due"), F.lit(None).cast("date"), d)
    return (
        states.join(
            F.broadcast(days_df.select("as_of_date")),
            (d >= F.col("since")) & (d < F.col("until")),
        )
        .join(book, "loan_id")
        .select(
            "as_of_date",
            "loan_id",
            "customer_id",
            F.coalesce("channel", F.lit("unknown")).alias("channel"),
            F.coalesce("province", F.lit("unknown")).alias("province"),
            "disbursed_date",
            "outstanding",
            F.coalesce(dpd, F.lit(0)).cast("int").alias("dpd"),
            "active",
        )
    )


# --- vintages ------------------------------------------------------------------------------
def _ever30_by_mob(loans: DataFrame, repayments: DataFrame, mobs: Column) -> DataFrame:
    """Per loan and month on book: whether it was ever 30+ DPD by that month's date."""
    per_mob = loans.select(
        "loan_id",
        F.date_format("disbursed_date", "yyyy-MM").alias("cohort"),
        F.explode(mobs).alias("mob"),
        "disbursed_date",
    ).withColumn("mob_date", F.add_months("disbursed_date", F.col("mob")))
    inst = repayments.select("loan_id", F.col("due_date"), "paid_date").withColumnRenamed(
        "loan_id", "inst_loan_id"
    )
    joined = per_mob.join(
        inst,
        (F.col("loan_id") == F.col("inst_loan_id")) & (F.col("due_date") < F.col("mob_date")),
        "left",
    )
    worst = F.max(pit_dpd(F.col("due_date"), F.col("paid_date"), F.col("mob_date")))
    return joined.groupBy("loan_id", "cohort", "mob", "mob_date").agg(
        (F.coalesce(worst, F.lit(0)) >= 30).alias("ever30")
    )


def vintage_curves(
    loans: DataFrame, repayments: DataFrame, as_of: dt.date, max_mob: int = 12
) -> DataFrame:
    """Vintage curves: per disbursement-month cohort and month on book (1..``max_mob``),
    the share of its loans ever 30+ DPD by then; a point only once every loan of the
    cohort has reached that month on book by ``as_of``."""
    per_loan = _ever30_by_mob(loans, repayments, F.sequence(F.lit(1), F.lit(max_mob)))
    return (
        per_loan.groupBy("cohort", "mob")
        .agg(
            F.count("*").alias("loans"),
            F.avg(F.col("ever30").cast("double")).alias("ever30_rate"),
            F.max("mob_date").alias("reached"),
        )
        .where(F.col("reached") <= F.lit(as_of))
        .select(
            "cohort",
            F.col("mob").cast("int").alias("mob"),
            F.col("loans").cast("long").alias("loans"),
            "ever30_rate",
        )
    )


def vintage_cohorts(loans: DataFrame, repayments: DataFrame) -> DataFrame:
    """Per cohort: the day its last loan reaches month on book 3 (``complete_date``), its
    loans and how many were ever 30+ DPD by then; the input of ``vintage_mob3_dpd30``."""
    per_loan = _ever30_by_mob(loans, repayments, F.array(F.lit(VINTAGE_MOB)))
    return per_loan.groupBy("cohort").agg(
        F.max("mob_date").alias("complete_date"),
        F.count("*").cast("double").alias("loans"),
        F.sum(F.col("ever30").cast("double")).alias("ever30_loans"),
    )


# --- indicators ----------------------------------------------------------------------------
def _share(indicator: str, numerator: str, denominator: str) -> list[Column]:
    """A whole-book rate: ``numerator / denominator`` with both counts kept."""
    num, den = F.col(numerator), F.col(denominator)
    return _row(indicator, OVERALL, ALL, num / den, num, den)


def _row(
    indicator: str | Column,
    segment_type: str | Column,
    segment: str | Column,
    value: Column,
    numerator: Column,
    denominator: Column,
    exposure: Column | None = None,
) -> list[Column]:
    """The output columns (thresholds and status come later); no ``exposure``: the
    whole active book's, filled in by ``compute_indicators``."""

    def lit(x: str | Column) -> Column:
        return F.lit(x) if isinstance(x, str) else x

    return [
        F.col("as_of_date"),
        lit(indicator).alias("indicator"),
        lit(segment_type).alias("segment_type"),
        lit(segment).alias("segment"),
        value.cast("double").alias("value"),
        numerator.cast("double").alias("numerator"),
        denominator.cast("double").alias("denominator"),
        (F.lit(None) if exposure is None else F.round(exposure, 2))
        .cast("double")
        .alias("exposure"),
    ]


def _cells(active: DataFrame) -> DataFrame:
    """Active loans, outstanding and DPD 1+/30+/90+ counts per day, channel and province:
    the additive totals the overdue rates, concentrations and book exposure roll up."""
    return active.groupBy("as_of_date", *SEGMENT_TYPES).agg(
        F.count("*").alias("loans"),
        F.sum("outstanding").alias("outstanding"),
        *[F.count(F.when(F.col("dpd") >= k, 1)).alias(f"n{k}") for k in (1, 30, 90)],
    )


def _overdue_rates(cells: DataFrame) -> DataFrame:
    """DPD 1+/30+/90+ shares of active loans: whole book, by channel, by province."""
    segments = F.explode(
        F.array(
            F.struct(F.lit(OVERALL).alias("segment_type"), F.lit(ALL).alias("segment")),
            *[
                F.struct(F.lit(t).alias("segment_type"), F.col(t).alias("segment"))
                for t in SEGMENT_TYPES
            ],
        )
    )
    per_segment = (
        cells.select("*", segments.alias("s"))
        .groupBy("as_of_date", "s.segment_type", "s.segment")
        .agg(*[F.sum(c).alias(c) for c in ("loans", "outstanding", "n1", "n30", "n90")])
    )
    by_indicator = F.explode(
        F.array(
            *[
                F.struct(F.lit(f"dpd{k}_rate").alias("indicator"), F.col(f"n{k}").alias("n"))
                for k in (1, 30, 90)
            ]
        )
    )
    return per_segment.select("*", by_indicator.alias("i")).select(
        *_row(
            F.col("i.indicator"),
            F.col("segment_type"),
            F.col("segment"),
            F.col("i.n") / F.col("loans"),
            F.col("i.n"),
            F.col("loans"),
            F.col("outstanding"),
        )
    )


def _with_base_day(days_df: DataFrame) -> DataFrame:
    return days_df.select("as_of_date", F.date_sub("as_of_date", ROLL_DAYS).alias("base_day"))


def _default_rate(ld: DataFrame, days_df: DataFrame) -> DataFrame:
    """Loans reaching 90 DPD on a day in (d-30, d] over the loans active at d-30.

    DPD grows one a day and never jumps up, so reaching 90 means a day with exactly 90;
    a loan that cures and falls back to 90 again counts again, as a new default.
    """
    active = ld.where("active")
    loans = (
        active.groupBy(F.col("as_of_date").alias("base_day"))
        .agg(F.count("*").alias("loans"))
        .join(_with_base_day(days_df), "base_day")
    )
    hits = ld.where(F.col("dpd") == 90).select("loan_id", F.col("as_of_date").alias("hit_day"))
    defaults = (
        _with_base_day(days_df)
        .join(
            hits,
            (F.col("hit_day") > F.col("base_day")) & (F.col("hit_day") <= F.col("as_of_date")),
        )
        .join(
            active.select("loan_id", F.col("as_of_date").alias("base_day")),
            ["loan_id", "base_day"],
            "left_semi",
        )
        .groupBy("as_of_date")
        .agg(F.countDistinct("loan_id").alias("defaults"))
    )
    counts = loans.join(defaults, "as_of_date", "left").fillna(0, ["defaults"])
    return counts.select(_share("default_rate", "defaults", "loans"))


def _roll_rates(ld: DataFrame, days_df: DataFrame) -> DataFrame:
    """Of the loans 1-29 (30-59) DPD at d-30, the share 30+ (60+) DPD at d.

    ``loan_days`` has a row on ``d`` for every loan open on an earlier day (inactive
    once paid off), so the inner join keeps every loan of the denominator.
    """
    before = ld.where(F.col("active") & F.col("dpd").between(1, 59)).select(
        "loan_id", F.col("as_of_date").alias("base_day"), F.col("dpd").alias("dpd_before")
    )
    now = ld.select("loan_id", "as_of_date", "dpd")
    pairs = _with_base_day(days_df).join(before, "base_day").join(now, ["loan_id", "as_of_date"])
    b, n = F.col("dpd_before"), F.col("dpd")
    counts = pairs.groupBy("as_of_date").agg(
        F.count(F.when(b.between(1, 29), 1)).alias("from_1"),
        F.count(F.when(b.between(1, 29) & (n >= 30), 1)).alias("to_30"),
        F.count(F.when(b.between(30, 59), 1)).alias("from_30"),
        F.count(F.when(b.between(30, 59) & (n >= 60), 1)).alias("to_60"),
    )
    return counts.select(_share("roll_1_30", "to_30", "from_1")).unionByName(
        counts.select(_share("roll_30_60", "to_60", "from_30"))
    )


def _vintage(cohorts: DataFrame, days_df: DataFrame) -> DataFrame:
    """The latest cohort complete at MOB 3 on ``d``: its share ever 30+ DPD by MOB 3."""
    eligible = days_df.join(cohorts, F.col("complete_date") <= F.col("as_of_date"))
    latest = Window.partitionBy("as_of_date").orderBy(F.col("cohort").desc())
    return (
        eligible.withColumn("rank", F.row_number().over(latest))
        .where(F.col("rank") == 1)
        .select(_share("vintage_mob3_dpd30", "ever30_loans", "loans"))
    )


def through_the_door(
    applications: DataFrame, months: str, month_col: str = "application_month"
) -> DataFrame:
    """Every application made in ``months`` ("first..last", as a split's window names
    them), whatever became of it: approved or not, matured or not.

    The score PSI compares recent applications, all of them, with this population. The
    model's training rows are the wrong baseline: only approved loans whose outcome has
    matured, a population the policy has already cut, so against it the applications
    would show drift by construction."""
    first, sep, last = months.partition("..")
    if not sep or not first or not last or first > last:
        raise ValueError(f"months must read 'first..last' (e.g. 2024-01..2024-06), got {months!r}")
    return applications.where(F.col(month_col).between(first, last))


def decile_bins(values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """A baseline's decile edges (duplicates dropped) and its count in each bin: bin i
    holds the values in (edge[i-1], edge[i]]."""
    baseline = np.asarray(values, dtype=float)
    edges = np.unique(np.quantile(baseline, np.linspace(0.1, 0.9, 9)))
    counts = np.bincount(np.searchsorted(edges, baseline, side="left"), minlength=len(edges) + 1)
    return edges, counts


def _bin_of(value: Column, edges: Sequence[float]) -> Column:
    """The ``decile_bins`` bin of ``value``: how many edges lie below it."""
    return sum(((value > float(e)).cast("int") for e in edges), F.lit(0))


def _psi_term(actual: Column, expected: Column) -> Column:
    """One bin's term of a stability index, both shares floored at ``PSI_FLOOR``."""
    a = F.greatest(actual, F.lit(PSI_FLOOR))
    e = F.greatest(expected, F.lit(PSI_FLOOR))
    return (a - e) * F.log(a / e)


def _recent(daily: DataFrame, days_df: DataFrame) -> DataFrame:
    """Rows of ``daily`` (by ``application_date``) on each day ``d``'s window [d-30, d)."""
    return days_df.join(
        daily,
        (F.col("application_date") >= F.date_sub("as_of_date", ROLL_DAYS))
        & (F.col("application_date") < F.col("as_of_date")),
    )


def _psi(score_frame: DataFrame, baseline_pd: Sequence[float], days_df: DataFrame) -> DataFrame:
    """PSI of the PDs of applications in [d-30, d) against the baseline, on its deciles.

    Bin i holds PDs in (edge[i-1], edge[i]]; shares are floored at ``PSI_FLOOR``.
    """
    edges, counts = decile_bins(baseline_pd)
    expected = counts / len(baseline_pd)
    daily = score_frame.groupBy(
        "application_date", _bin_of(F.col("pd"), edges).alias("bin")
    ).count()
    counts = (
        _recent(daily, days_df)
        .groupBy("as_of_date")
        .agg(
            F.sum("count").alias("n"),
            *[
                F.sum(F.when(F.col("bin") == i, F.col("count")).otherwise(0)).alias(f"b{i}")
                for i in range(len(expected))
            ],
        )
    )
    psi = sum(
        _psi_term(F.col(f"b{i}") / F.col("n"), F.lit(float(e)))
        for i, e in enumerate(expected.tolist())
    )
    return counts.select(
        *_row(
            "score_psi",
            OVERALL,
            ALL,
            psi,
            F.col("n"),
            F.lit(float(len(baseline_pd))),
        ),
        stability_noise(
            F.col("n"), F.lit(float(len(baseline_pd))), F.lit(float(len(expected)))
        ).alias("noise"),
    )


# --- characteristic stability --------------------------------------------------------------
NULL_BIN = -1  # a feature's missing values, in baseline and recent applications alike


@dataclass(frozen=True)
class FeatureBins:
    """How one feature's values are binned for its CSI, and the baseline's share per bin.

    A numeric (``levels`` None) is binned on the baseline's deciles (``decile_bins``,
    ``edges``), a categorical on its baseline levels (bin i: ``levels[i]``) with one more
    bin, ``len(levels)``, for a level the baseline never had; missing values go to
    ``NULL_BIN``. ``shares``: bin -> the baseline's share (of all its ``rows``, missing
    ones included), every bin present (an unseen-level bin at 0)."""

    feature: str
    rows: int
    shares: dict[int, float]
    edges: tuple[float, ...] = ()
    levels: tuple[str, ...] | None = None

    def bin_of(self) -> Column:
        value = F.col(self.feature)
        if self.levels is None:
            index = _bin_of(value.cast("double"), self.edges)
        elif self.levels:
            pairs = [x for i, lv in enumerate(self.levels) for x in (F.lit(lv), F.lit(i))]
            index = F.coalesce(F.create_map(*pairs)[value.cast("string")], F.lit(len(self.levels)))
        else:
            index = F.lit(0)
        return F.when(value.isNull(), F.lit(NULL_BIN)).otherwise(index)


def csi_baseline(
    baseline: DataFrame, numeric: Sequence[str], categorical: Sequence[str]
) -> list[FeatureBins]:
    """Each feature's bins and baseline shares, from the baseline population
    (``through_the_door``: every application of the training months). The numerics'
    values are collected to the driver, as the score PSI's baseline PDs are."""
    rows = baseline.count()
    if rows == 0:
        raise ValueError("the CSI baseline has no applications: no training months to compare")
    out = []
    values = baseline.select(*[F.col(c).cast("double").alias(c) for c in numeric]).toPandas()
    for name in numeric:
        present = values[name].dropna().to_numpy()
        nulls = rows - len(present)
        if len(present):
            edges, counts = decile_bins(present)
        else:
            edges, counts = np.array([]), np.array([0])
        shares = {i: int(n) / rows for i, n in enumerate(counts.tolist())}
        out.append(FeatureBins(name, rows, {**shares, NULL_BIN: nulls / rows}, tuple(edges)))
    for name in categorical:
        per_level = {
            r[0]: int(r[1]) for r in baseline.groupBy(F.col(name).cast("string")).count().collect()
        }
        nulls = per_level.pop(None, 0)
        levels = tuple(sorted(per_level))
        shares = {i: per_level[lv] / rows for i, lv in enumerate(levels)}
        shares |= {len(levels): 0.0, NULL_BIN: nulls / rows}
        out.append(FeatureBins(name, rows, shares, levels=levels))
    return out


def _smoothed_term(
    count: Column, n: Column, ref_count: Column, ref_n: Column, bins: Column
) -> Column:
    """One bin's term of a stability index of two samples, ``SMOOTHING`` added to each
    of a feature's ``bins`` on both sides."""
    a = (count + SMOOTHING) / (n + SMOOTHING * bins)
    e = (ref_count + SMOOTHING) / (ref_n + SMOOTHING * bins)
    return (a - e) * F.log(a / e)


def stability_noise(recent: Column, reference: Column, bins: Column) -> Column:
    """``NOISE_SE`` standard errors above the stability index two samples of one
    population reach by chance: with ``recent`` and ``reference`` rows over ``bins``
    occupied bins, the index is about (1/recent + 1/reference) times a chi-square with
    bins - 1 degrees of freedom (Yurdakul, Statistical properties of the population
    stability index, 2018), so its mean plus ``NOISE_SE`` standard deviations."""
    df = F.greatest(bins - 1, F.lit(1))
    return (1 / recent + 1 / reference) * (df + NOISE_SE * F.sqrt(2 * df))


def _csi(feature_frame: DataFrame, bins: Sequence[FeatureBins], days_df: DataFrame) -> DataFrame:
    """Each feature's stability index: its values on the applications of [d-30, d)
    against those of the ``REFERENCE_DAYS`` before that window, bin by bin on the
    training population's bins (``FeatureBins``); numerator: the recent applications,
    denominator: the reference's. Each side's shares add ``SMOOTHING`` applications to
    every bin (count + 0.5) / (n + 0.5 bins): a rare level absent from a small month
    adds a term of its size, not the log of ``PSI_FLOOR``'s (on a 1,500-customer book an
    employment type of 2% missing from one month's 60 applications: 18 of 90 days in breach).

    A rolling reference, not the development sample: a book that seasons (more repeat
    borrowers, longer histories) drifts away from its training months slowly and for
    good, which is the model's concern (its train vs out-of-time PSI, a re-fit), while a
    daily alert is for a change within weeks. ``noise``: ``stability_noise``."""
    spark = feature_frame.sparkSession

    per_feature = F.explode(
        F.array(
            *[F.struct(F.lit(b.feature).alias("feature"), b.bin_of().alias("bin")) for b in bins]
        )
    )
    daily = (
        feature_frame.select("application_date", per_feature.alias("f"))
        .groupBy("application_date", "f.feature", "f.bin")
        .count()
    )
    recent_start = F.date_sub("as_of_date", ROLL_DAYS)
    windowed = (
        days_df.join(
            daily,
            (F.col("application_date") >= F.date_sub("as_of_date", ROLL_DAYS + REFERENCE_DAYS))
            & (F.col("application_date") < F.col("as_of_date")),
        )
        .withColumn("recent", F.col("application_date") >= recent_start)
        .groupBy("as_of_date", "feature", "bin")
        .agg(
            F.sum(F.when(F.col("recent"), F.col("count")).otherwise(0)).alias("count"),
            F.sum(F.when(~F.col("recent"), F.col("count")).otherwise(0)).alias("ref_count"),
        )
    )
    totals = windowed.groupBy("as_of_date", "feature").agg(
        F.sum("count").alias("n"), F.sum("ref_count").alias("ref_n")
    )
    every_bin = spark.createDataFrame(
        [(b.feature, i, len(b.shares)) for b in bins for i in b.shares],
        "feature string, bin int, bins int",
    )
    grid = (
        totals.where((F.col("n") > 0) & (F.col("ref_n") > 0))
        .join(F.broadcast(every_bin), "feature")
        .join(windowed, ["as_of_date", "feature", "bin"], "left")
        .fillna(0, ["count", "ref_count"])
    )
    # Summed in sorted order, not as the partitions come: a re-run gives the same bits,
    # so the MERGE into gold.warning_indicators finds the rows unchanged.
    term = _smoothed_term(*[F.col(c) for c in ("count", "n", "ref_count", "ref_n", "bins")])
    occupied = F.count(F.when((F.col("count") > 0) | (F.col("ref_count") > 0), 1))
    per_day = grid.groupBy("as_of_date", "feature", "n", "ref_n").agg(
        F.aggregate(F.array_sort(F.collect_list(term)), F.lit(0.0), lambda t, x: t + x).alias(
            "csi"
        ),
        occupied.alias("occupied"),
    )
    return per_day.select(
        *_row("csi", FEATURE, F.col("feature"), F.col("csi"), F.col("n"), F.col("ref_n")),
        stability_noise(F.col("n"), F.col("ref_n"), F.col("occupied")).alias("noise"),
    )


def _approval_shift(applications: DataFrame, days_df: DataFrame) -> DataFrame:
    """Approval rate (approved / decided) of applications made in [d-30, d) minus that of
    those made in [d-120, d-30).

    An application counts once its decision is known (decided before ``d``); numerator
    and denominator are the recent window's approvals and decisions.
    """
    daily = (
        applications.where(F.col("status").isin("approved", "rejected"))
        .groupBy("application_date", F.to_date("decided_at").alias("decided_date"))
        .agg(
            F.count("*").alias("decided"),
            F.count(F.when(F.col("status") == "approved", 1)).alias("approved"),
        )
    )
    a, d = F.col("application_date"), F.col("as_of_date")
    known = (F.col("decided_date") < d) & (a >= F.date_sub(d, APPROVAL_BASE_DAYS)) & (a < d)
    recent = a >= F.date_sub(d, ROLL_DAYS)

    def total(col: str, in_recent: bool) -> Column:
        cond = recent if in_recent else ~recent
        return F.sum(F.when(cond, F.col(col)).otherwise(0))

    counts = (
        days_df.join(daily, known)
        .groupBy("as_of_date")
        .agg(
            total("approved", True).alias("approved_now"),
            total("decided", True).alias("decided_now"),
            total("approved", False).alias("approved_before"),
            total("decided", False).alias("decided_before"),
        )
        .where((F.col("decided_now") > 0) & (F.col("decided_before") > 0))
    )
    shift = F.col("approved_now") / F.col("decided_now") - F.col("approved_before") / F.col(
        "decided_before"
    )
    return counts.select(
        *_row(
            "approval_rate_shift",
            OVERALL,
            ALL,
            shift,
            F.col("approved_now"),
            F.col("decided_now"),
        )
    )


def _service(decisions: DataFrame, days_df: DataFrame) -> DataFrame:
    """The decision service's indicators from ``gold.decision_log`` rows (``decided_at``,
    ``decision``, ``rules_fired``): a decision counts on ``d`` if made in [d-30, d),
    in the recent window if made in [d-7, d)."""
    made = decisions.select(
        F.to_date("decided_at").alias("day"),
        (F.col("decision") == "approve").cast("int").alias("approved"),
        F.array_distinct(F.coalesce("rules_fired", F.array().cast("array<string>"))).alias("fired"),
    )
    d, day = F.col("as_of_date"), F.col("day")
    known = days_df.join(made, (day < d) & (day >= F.date_sub(d, ROLL_DAYS)))
    recent = day >= F.date_sub(d, RT_DAYS)

    def total(value: Column, in_recent: bool) -> Column:
        return F.sum(F.when(recent if in_recent else ~recent, value).otherwise(0))

    counts = known.groupBy("as_of_date").agg(
        total(F.lit(1), True).alias("now"),
        total(F.col("approved"), True).alias("approved_now"),
        total(F.lit(1), False).alias("before"),
        total(F.col("approved"), False).alias("approved_before"),
        total((F.size("fired") > 0).cast("int"), True).alias("hit"),
    )
    now, before = F.col("now"), F.col("before")
    shift = F.col("approved_now") / now - F.col("approved_before") / before
    per_rule = (
        known.where(recent)
        .select("as_of_date", F.explode("fired").alias("rule"))
        .groupBy("as_of_date", "rule")
        .agg(F.count("*").alias("rule_hits"))
        .join(counts.select("as_of_date", "now"), "as_of_date")
    )
    return (
        counts.where((now > 0) & (before > 0))
        .select(*_row("rt_approval_rate_shift", OVERALL, ALL, shift, F.col("approved_now"), now))
        .unionByName(
            counts.where(now > 0).select(
                *_row("rt_rule_hit_rate", OVERALL, ALL, F.col("hit") / now, F.col("hit"), now)
            )
        )
        .unionByName(
            per_rule.select(
                *_row(
                    "rt_rule_hit_rate",
                    RULE,
                    F.col("rule"),
                    F.col("rule_hits") / now,
                    F.col("rule_hits"),
                    now,
                )
            )
        )
    )


def _concentration(cells: DataFrame, segment_type: str) -> DataFrame:
    """The largest segment's share of the active outstanding (ties: first name)."""
    per = cells.groupBy("as_of_date", F.col(segment_type).alias("segment")).agg(
        F.sum("outstanding").alias("amount")
    )
    ranked = per.withColumn("total", F.sum("amount").over(Window.partitionBy("as_of_date")))
    top = Window.partitionBy("as_of_date").orderBy(F.col("amount").desc(), F.col("segment"))
    return (
        ranked.withColumn("rank", F.row_number().over(top))
        .where((F.col("rank") == 1) & (F.col("total") > 0))
        .select(
            *_row(
                f"concentration_{segment_type}",
                segment_type,
                F.col("segment"),
                F.col("amount") / F.col("total"),
                F.col("amount"),
                F.col("total"),
                F.col("amount"),
            )
        )
    )


def _public_record_hits(active: DataFrame, entity_links: DataFrame) -> DataFrame:
    """Distinct court or penalty records dated in [d-30, d) linked (directly or through
    the employer) to a customer with an active loan on ``d``, per ``PER_BORROWERS``
    customers with an active loan (numerator: the records, denominator: those
    customers); exposure: the hit customers' loans'."""
    borrowers = active.groupBy("as_of_date", "customer_id").agg(F.sum("outstanding").alias("owed"))
    records = entity_links.where(
        F.col("record_kind").isin("court", "penalty")
        & F.col("entity_type").isin("customer", "employer")
        & F.col("customer_id").isNotNull()
    ).select("customer_id", "record_kind", "record_id", "record_date")
    hit = borrowers.join(records, "customer_id").where(
        (F.col("record_date") >= F.date_sub("as_of_date", ROLL_DAYS))
        & (F.col("record_date") < F.col("as_of_date"))
    )
    per_day = hit.groupBy("as_of_date").agg(
        F.countDistinct("record_kind", "record_id").alias("records")
    )
    hit_exposure = (
        hit.select("as_of_date", "customer_id", "owed")
        .distinct()
        .groupBy("as_of_date")
        .agg(F.sum("owed").alias("hit_exposure"))
    )
    counts = (
        borrowers.groupBy("as_of_date")
        .agg(F.count("*").alias("borrowers"))
        .join(per_day, "as_of_date", "left")
        .join(hit_exposure, "as_of_date", "left")
    )
    n = F.coalesce("records", F.lit(0))
    return counts.select(
        *_row(
            "public_record_hits_30d",
            OVERALL,
            ALL,
            n * PER_BORROWERS / F.col("borrowers"),
            n,
            F.col("borrowers"),
            F.coalesce("hit_exposure", F.lit(0.0)),
        )
    )


def _with_status(
    df: DataFrame, thresholds: dict[str, dict[str, float]], min_segment_loans: int
) -> DataFrame:
    """Thresholds, where they come from, and status: too_few (a rate over fewer than
    ``min_segment_loans`` loans or applications, any segment, or a breach within its
    sampling noise: an approval-rate shift within ``NOISE_SE`` standard errors of zero, a
    stability index below its ``noise`` column), else critical, warning or ok."""

    def lookup(level: str) -> Column:
        pairs = [x for name in INDICATORS for x in (F.lit(name), F.lit(thresholds[name][level]))]
        return F.create_map(*pairs)[F.col("indicator")]

    sources = [x for name in INDICATORS for x in (F.lit(name), F.lit(_source(thresholds[name])))]

    value = F.when(F.col("indicator").isin(*SIGNED), F.abs("value")).otherwise(F.col("value"))
    too_few = F.col("indicator").isin(*COUNTED) & (F.col("denominator") < min_segment_loans)
    # An approval-rate shift is a difference of two proportions: one within NOISE_SE
    # standard errors of zero cannot be told from the draw of a small window's decisions
    # (3, the warning limit of `calibrate`'s control charts: the windows of consecutive
    # days overlap, so one unusual month would breach for 30 days). The before window
    # holds about BEFORE_WINDOWS times the recent one's decisions.
    p = F.col("numerator") / F.col("denominator")
    before = F.create_map(*[x for k, v in BEFORE_WINDOWS.items() for x in (F.lit(k), F.lit(v))])
    ratio = before[F.col("indicator")]
    noise = NOISE_SE * F.sqrt(p * (1 - p) * (1 + 1 / ratio) / F.col("denominator"))
    if "noise" in df.columns:  # the stability indices' (stability_noise), null elsewhere
        noise = F.coalesce(F.col("noise"), noise)
    within = F.col("indicator").isin(*BEFORE_WINDOWS, *STABILITY)
    too_few = too_few | (within & (value >= lookup("warning")) & (value < noise))
    status = (
        F.when(too_few, "too_few")
        .when(value >= F.col("critical_threshold"), "critical")
        .when(value >= F.col("warning_threshold"), "warning")
        .otherwise("ok")
    )
    return (
        df.withColumn("warning_threshold", lookup("warning"))
        .withColumn("critical_threshold", lookup("critical"))
        .withColumn("status", status)
        .withColumn("threshold_source", F.create_map(*sources)[F.col("indicator")])
        .select(*OUTPUT_COLUMNS)
    )


def compute_indicators(
    loan_days_df: DataFrame,
    applications: DataFrame,
    entity_links: DataFrame | None,
    thresholds: dict[str, dict[str, float]],
    min_segment_loans: int,
    days_df: DataFrame,
    score_frame: DataFrame | None = None,
    baseline_pd: Sequence[float] | None = None,
    cohorts: DataFrame | None = None,
    decisions: DataFrame | None = None,
    feature_frame: DataFrame | None = None,
    feature_bins: Sequence[FeatureBins] | None = None,
    charge_off_dpd: int | None = None,
) -> DataFrame:
    """``gold.warning_indicators`` rows (without run_id, computed_at) for each day of
    ``days_df``.

    ``charge_off_dpd``: the charge-off rule (``RISK_CHARGE_OFF_DPD``): a loan that many
    days past due has been written off and is off the book, in every rate's numerator
    and denominator alike, as in ``gold.loan_book_risk``; without it the 90+ stock piles
    up for ever.

    ``loan_days_df``: ``loan_days`` over consecutive days, ``days_df``'s and the
    ``ROLL_DAYS`` before them (``days(as_of, lookback + ROLL_DAYS)``), else the default
    and roll rates of the first ``ROLL_DAYS`` days are left out. Cache it: every
    indicator reads it. Optional inputs add their indicator: ``entity_links`` the
    public-record hits, ``score_frame`` (application_date, pd) with ``baseline_pd`` the
    score PSI, ``cohorts`` (``vintage_cohorts``) the MOB-3 vintage, ``decisions``
    (``gold.decision_log``) the decision service's approval shift and rule hit rates,
    ``feature_frame`` (application_date and the model's features, the applications
    ``score_frame`` scores) with ``feature_bins`` (``csi_baseline``) a CSI per feature.

    ``thresholds``: as ``load_thresholds`` returns them, each indicator's ``source``
    going into the rows' ``threshold_source``.

    A rate without loans in its denominator is not reported; one over fewer than
    ``min_segment_loans`` loans or applications gets status ``too_few``. ``exposure``:
    the active outstanding concerned (the segment's, the largest segment's, the hit
    borrowers', else the whole book's).
    """
    missing = [name for name in INDICATORS if name not in thresholds]
    if missing:
        raise ValueError(f"thresholds lack {', '.join(missing)}: build them with load_thresholds")
    report_days = F.broadcast(days_df.select("as_of_date"))
    ld = loan_days_df
    if charge_off_dpd is not None:
        ld = ld.withColumn("active", F.col("active") & (F.col("dpd") < F.lit(charge_off_dpd)))
    active = ld.where("active").join(report_days, "as_of_date", "left_semi")
    cells = _cells(active)
    book = cells.groupBy("as_of_date").agg(F.sum("outstanding").alias("book_exposure"))
    parts = [
        _overdue_rates(cells),
        _default_rate(ld, report_days),
        _roll_rates(ld, report_days),
        _approval_shift(applications, report_days),
        *[_concentration(cells, t) for t in SEGMENT_TYPES],
    ]
    if entity_links is not None:
        parts.append(_public_record_hits(active, entity_links))
    if score_frame is not None and baseline_pd is not None and len(baseline_pd) > 0:
        parts.append(_psi(score_frame, baseline_pd, report_days))
    if feature_frame is not None and feature_bins:
        parts.append(_csi(feature_frame, feature_bins, report_days))
    if cohorts is not None:
        parts.append(_vintage(cohorts, report_days))
    if decisions is not None:
        parts.append(_service(decisions, report_days))
    rows = parts[0]
    for part in parts[1:]:
        rows = rows.unionByName(part, allowMissingColumns=True)
    rows = (
        rows.where(F.col("denominator") > 0)
        .join(book, "as_of_date", "left")
        .withColumn("exposure", F.coalesce("exposure", F.round("book_exposure", 2)))
    )
    return _with_status(rows, thresholds, min_segment_loans)


def first_breach(
    indicators_df: DataFrame, indicator: str, segment_type: str, segment: str
) -> dt.date | None:
    """The first day the indicator of this segment is at warning or critical, if any."""
    row = (
        indicators_df.where(
            (F.col("indicator") == indicator)
            & (F.col("segment_type") == segment_type)
            & (F.col("segment") == segment)
            & F.col("status").isin("warning", "critical")
        )
        .agg(F.min("as_of_date"))
        .first()
    )
    return row[0]
