"""Why the default definition is what it is: cure rates and the vintage curve of the book.

Two questions decide a bad definition, and the book answers both:

* **How late is too late?** Of the loans that were ever ``d`` days past due, how many
  are back under 30 days now (``cure_rates``)? A definition should sit where few cure:
  a threshold most loans come back from labels recoverable borrowers bad.
* **How long to watch?** Of the loans watched for ``horizon`` installments, how many of
  those that went bad in that time had done so by each installment (``vintage``)? The
  performance window should catch most of them: one too short calls late defaulters good.

``justify`` puts both next to the definition with a one-line verdict per question; the
training run logs it with every model (``label/justification.json``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from riskcontrol.analyze.labels import LabelDefinition
from riskcontrol.core.dates import pit_dpd

CURE_DEPTHS = (30, 60, 90, 120)
CURED_BELOW_DPD = 30  # a loan is back when none of its installments is this late now
VINTAGE_HORIZON = 12  # installments a loan is watched for in the vintage curve
MIN_VINTAGE_LOANS = 30  # fewer fully watched loans: no verdict on the window
CAPTURE_TARGET = 0.8  # a window should have caught this share of the horizon's bads


def cure_rates(repayments: DataFrame, as_of: dt.date) -> list[dict[str, Any]]:
    """Per depth in ``CURE_DEPTHS``: loans ever that many days past due by ``as_of``,
    and the share of them now under ``CURED_BELOW_DPD`` days (every late installment paid
    or back within 30 days)."""
    delays = repayments.where(F.col("due_date") < F.lit(as_of)).select(
        "loan_id",
        # the worst delay an installment ever had, as of now
        F.datediff(F.least(F.coalesce("paid_date", F.lit(as_of)), F.lit(as_of)), "due_date").alias(
            "ever"
        ),
        pit_dpd(F.col("due_date"), F.col("paid_date"), F.lit(as_of)).alias("now"),
        F.col("paid_date").isNull().alias("open"),
    )
    per_loan = delays.groupBy("loan_id").agg(
        F.max("ever").alias("ever"),
        F.max(F.when(F.col("open"), F.col("now")).otherwise(0)).alias("now"),
    )
    row = per_loan.agg(
        *[F.sum((F.col("ever") >= d).cast("int")).alias(f"reached_{d}") for d in CURE_DEPTHS],
        *[
            F.sum(((F.col("ever") >= d) & (F.col("now") < CURED_BELOW_DPD)).cast("int")).alias(
                f"cured_{d}"
            )
            for d in CURE_DEPTHS
        ],
    ).first()
    out = []
    for d in CURE_DEPTHS:
        reached, cured = int(row[f"reached_{d}"] or 0), int(row[f"cured_{d}"] or 0)
        out.append(
            {
                "dpd": d,
                "loans": reached,
                "cured": cured,
                "cure_rate": round(cured / reached, 6) if reached else None,
            }
        )
    return out


def vintage(
    repayments: DataFrame, as_of: dt.date, bad_dpd: int, horizon: int = VINTAGE_HORIZON
) -> dict[str, Any]:
    """Loans watched for ``horizon`` installments (each judged ``bad_dpd`` days after its
    last one fell due, before ``as_of``): the share of them bad by each installment.

    A loan is bad by installment c when one of its first c installments went ``bad_dpd``
    days unpaid; judged ``bad_dpd`` days after installment c falls due, each of them has
    had that long (the definition's own rule, cycle by cycle)."""
    by_due = Window.partitionBy("loan_id").orderBy("due_date", "installment_no")
    numbered = repayments.where(F.col("due_date").isNotNull()).withColumn(
        "_cycle", F.row_number().over(by_due)
    )
    per_loan = numbered.groupBy("loan_id").agg(
        F.max(F.when(F.col("_cycle") == horizon, F.col("due_date"))).alias("last_due"),
        F.min(
            F.when(
                F.col("paid_date").isNull() | (F.datediff("paid_date", "due_date") >= bad_dpd),
                F.col("_cycle"),
            )
        ).alias("first_bad"),
    )
    watched = per_loan.where(F.date_add("last_due", bad_dpd) <= F.lit(as_of))
    row = watched.agg(
        F.count("*").alias("loans"),
        *[
            F.sum((F.col("first_bad") <= c).cast("int")).alias(f"bad_{c}")
            for c in range(1, horizon + 1)
        ],
    ).first()
    loans = int(row["loans"])
    bads = [int(row[f"bad_{c}"] or 0) for c in range(1, horizon + 1)]
    return {
        "horizon": horizon,
        "loans": loans,
        "bad_by_cycle": bads,
        "bad_rate_by_cycle": [round(b / loans, 6) if loans else None for b in bads],
    }


def justify(repayments: DataFrame, as_of: dt.date, definition: LabelDefinition) -> dict[str, Any]:
    """Cure rates and the vintage curve next to ``definition``, with a verdict on each."""
    cures = cure_rates(repayments, as_of)
    curve = vintage(repayments, as_of, definition.bad_dpd)
    at_depth = next((c for c in cures if c["dpd"] == definition.bad_dpd), None)
    if at_depth is None or at_depth["cure_rate"] is None:
        depth_verdict = f"no loan of the book reached {definition.bad_dpd} DPD: no evidence"
    else:
        depth_verdict = (
            f"{at_depth['cure_rate']:.1%} of the {at_depth['loans']:,} loans ever "
            f"{definition.bad_dpd}+ DPD are back under {CURED_BELOW_DPD} DPD"
        )
    total = curve["bad_by_cycle"][-1] if curve["bad_by_cycle"] else 0
    if curve["loans"] < MIN_VINTAGE_LOANS or not total:
        window_verdict = (
            f"{curve['loans']:,} loans watched for {curve['horizon']} installments, "
            f"{total:,} bad: too few to judge the window"
        )
        captured = None
    else:
        within = curve["bad_by_cycle"][min(definition.cycles, curve["horizon"]) - 1]
        captured = round(within / total, 6)
        enough = "enough" if captured >= CAPTURE_TARGET else "too short"
        window_verdict = (
            f"{definition.cycles} installments catch {captured:.1%} of the bads "
            f"{curve['horizon']} installments find ({enough}: the target is "
            f"{CAPTURE_TARGET:.0%})"
        )
    return {
        "definition": definition.as_dict(),
        "as_of": as_of.isoformat(),
        "cure_rates": cures,
        "vintage": {**curve, "captured_by_window": captured},
        "verdict": {"depth": depth_verdict, "window": window_verdict},
    }
