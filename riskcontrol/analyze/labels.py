"""The default definition: which loans are bad, good, indeterminate or not yet known.

A loan is observed over its first ``cycles`` contractual installments (all of a shorter
loan's). It is judged on the due date of the last of them plus ``bad_dpd`` days, so each
installment in the window has had ``bad_dpd`` days to go bad, whatever the month
lengths and the disbursement month: a borrower who stops paying at installment 4 is bad
in every disbursement month (a window of calendar months made that loan 59 to 62 days
late at its end, bad or good by the calendar).

* ``bad``: an installment of the window reached ``bad_dpd`` days past due (90 by
  default: Basel's default; a loan written off is that late too).
* ``indeterminate``: its worst delay was ``indeterminate_dpd`` (30) to ``bad_dpd`` days,
  neither clearly good nor bad; left out of fitting, still scored and counted.
* ``good``: never ``indeterminate_dpd`` days late in the window.
* ``immature``: its judgement day is after the data's as-of date.
* ``no_schedule``: a loan without installments: nothing to judge (counted, not guessed
  good).

Applications without a loan are ``no_loan``. ``label`` is 1 for bad, 0 for good and
null otherwise; ``label_matured`` says the judgement day has passed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from riskcontrol.core.config import Settings
from riskcontrol.core.dates import pit_dpd

LABEL_STATUSES = ("good", "bad", "indeterminate", "immature", "no_schedule", "no_loan")
FITTED_STATUSES = ("good", "bad")


@dataclass(frozen=True)
class LabelDefinition:
    """Bad at ``bad_dpd`` days past due within the first ``cycles`` installments;
    ``indeterminate_dpd`` to ``bad_dpd`` is the indeterminate band (the settings check
    0 < indeterminate_dpd <= bad_dpd and cycles >= 1)."""

    bad_dpd: int = 90
    cycles: int = 6
    indeterminate_dpd: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> LabelDefinition:
        return cls(settings.bad_dpd, settings.performance_cycles, settings.indeterminate_dpd)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def describe(self) -> str:
        band = (
            f"; {self.indeterminate_dpd}-{self.bad_dpd - 1} DPD indeterminate"
            if self.indeterminate_dpd < self.bad_dpd
            else ""
        )
        return (
            f"bad: {self.bad_dpd}+ DPD within the first {self.cycles} installments, judged "
            f"{self.bad_dpd} days after the last one falls due{band}"
        )


def loan_labels(
    loans: DataFrame, repayments: DataFrame, as_of: dt.date, definition: LabelDefinition
) -> DataFrame:
    """Per loan: ``application_id``, ``label_status``, ``label``, ``label_matured``,
    ``worst_dpd`` (in the window, as of its judgement day; null before that day) and
    ``judged_on``."""
    d = definition
    by_due = Window.partitionBy("loan_id").orderBy("due_date", "installment_no")
    window = (
        repayments.where(F.col("due_date").isNotNull())
        .select("loan_id", "installment_no", "due_date", "paid_date")
        .withColumn("_cycle", F.row_number().over(by_due))
        .where(F.col("_cycle") <= d.cycles)
        .withColumn(
            "judged_on",
            F.date_add(F.max("due_date").over(Window.partitionBy("loan_id")), d.bad_dpd),
        )
    )
    worst = window.groupBy("loan_id", "judged_on").agg(
        F.max(pit_dpd(F.col("due_date"), F.col("paid_date"), F.col("judged_on"))).alias("worst_dpd")
    )
    per_loan = loans.select("loan_id", "application_id").join(worst, "loan_id", "left")
    status = (
        F.when(F.col("judged_on").isNull(), "no_schedule")
        .when(F.col("judged_on") > F.lit(as_of), "immature")
        .when(F.col("worst_dpd") >= d.bad_dpd, "bad")
        .when(F.col("worst_dpd") >= d.indeterminate_dpd, "indeterminate")
        .otherwise("good")
    )
    return per_loan.select(
        "application_id",
        status.alias("label_status"),
        F.when(status == "bad", 1).when(status == "good", 0).cast("int").alias("label"),
        (F.col("judged_on") <= F.lit(as_of)).alias("label_matured"),
        F.when(F.col("judged_on") <= F.lit(as_of), F.col("worst_dpd"))
        .cast("int")
        .alias("worst_dpd"),
        "judged_on",
    )


def exclusions(features: DataFrame) -> list[dict]:
    """The label table a model is fitted from: per status of the approved applications
    and every other application status, the rows, and whether fitting uses them."""
    rows = (
        features.groupBy(
            F.when(F.col("status") == "approved", F.col("label_status"))
            .otherwise(F.concat(F.lit("not approved: "), F.coalesce("status", F.lit("unknown"))))
            .alias("label_status")
        )
        .count()
        .collect()
    )
    order = {s: i for i, s in enumerate(LABEL_STATUSES)}
    return [
        {
            "label_status": r["label_status"],
            "rows": r["count"],
            "fitted": r["label_status"] in FITTED_STATUSES,
        }
        for r in sorted(rows, key=lambda r: (order.get(r["label_status"], 99), r["label_status"]))
    ]
