"""The repayment features as first written: every snapshot day of a customer joined with
every installment of that customer (quadratic in the customer's history). Kept as the
reference the linear ``feature_store.fs_repayment`` must equal."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from riskcontrol.analyze.feature_store import (
    DPD_MARKS,
    FS_REPAYMENT,
    LATE_WINDOWS_MONTHS,
    _created,
)
from riskcontrol.core.dates import pit_dpd


def fs_repayment_reference(
    loans: DataFrame, repayments: DataFrame, created_at: dt.datetime
) -> DataFrame:
    """The customer's repayment record with the lender, on every day it changes."""
    ln = loans.where(F.col("customer_id").isNotNull() & F.col("disbursed_date").isNotNull()).select(
        "loan_id", "customer_id", "disbursed_date", "principal"
    )
    lines = repayments.select("loan_id", "due_date", "paid_date", "amount_due")
    inst = ln.join(lines, "loan_id", "left")

    ever_late = F.col("due_date").isNotNull() & (
        F.col("paid_date").isNull() | (F.col("paid_date") > F.col("due_date"))
    )
    unpaid_on = F.coalesce(F.col("paid_date"), F.lit(dt.date(9999, 12, 31)))
    days = [
        F.date_add("disbursed_date", 1),
        F.date_add("due_date", 1),
        F.date_add("paid_date", 1),
        *[
            F.when(unpaid_on >= F.date_add("due_date", n), F.date_add("due_date", n))
            for n in DPD_MARKS
        ],
        *[
            F.when(ever_late, F.date_add(F.add_months("due_date", k), 1))
            for k in LATE_WINDOWS_MONTHS
        ],
    ]
    snapshots = (
        inst.select("customer_id", F.explode(F.array(*days)).alias("d"))
        .where(F.col("d").isNotNull())
        .distinct()
    )

    d = F.col("d")
    grid = snapshots.join(inst, "customer_id").where(F.col("disbursed_date") < d)
    is_due = F.col("due_date") < d
    is_paid = F.col("paid_date") < d
    dpd = F.when(is_due, pit_dpd(F.col("due_date"), F.col("paid_date"), d))
    late = is_due & (dpd > 0)

    def count(cond: Column) -> Column:
        return F.sum(F.when(cond, 1).otherwise(0))

    per_loan = grid.groupBy("customer_id", "d", "loan_id", "principal").agg(
        count(is_due).alias("n_due"),
        count(late).alias("n_late"),
        F.max(dpd).alias("max_dpd"),
        F.max(F.when(is_due & ~F.coalesce(is_paid, F.lit(False)), dpd)).alias("cur_dpd"),
        *[
            count(late & (d <= F.add_months("due_date", k))).alias(f"late_{k}m")
            for k in LATE_WINDOWS_MONTHS
        ],
        F.sum("amount_due").alias("scheduled"),
        F.sum(F.when(~F.coalesce(is_paid, F.lit(False)), F.col("amount_due"))).alias("unpaid"),
    )
    open_principal = F.when(
        F.col("scheduled") > 0,
        F.col("principal") * F.coalesce(F.col("unpaid"), F.lit(0.0)) / F.col("scheduled"),
    ).otherwise(F.col("principal"))
    per_loan = per_loan.withColumn("open_principal", open_principal)

    out = per_loan.groupBy("customer_id", "d").agg(
        F.count("loan_id").cast("int").alias("prior_loans"),
        count(F.col("open_principal") > 0).cast("int").alias("prior_open_loans"),
        F.sum("n_due").cast("int").alias("prior_installments_due"),
        F.sum("n_late").cast("int").alias("prior_late_installments"),
        F.coalesce(F.max("max_dpd"), F.lit(0)).cast("int").alias("prior_max_dpd"),
        F.coalesce(F.max("cur_dpd"), F.lit(0)).cast("int").alias("prior_current_dpd"),
        *[F.sum(f"late_{k}m").cast("int").alias(f"prior_late_{k}m") for k in LATE_WINDOWS_MONTHS],
        F.round(F.sum("open_principal"), 2).alias("prior_open_principal"),
        F.try_divide(F.sum("open_principal"), F.sum("principal")).alias("prior_utilization"),
    )
    return out.select(
        "customer_id",
        d.cast("timestamp").alias("event_timestamp"),
        *[c for c in FS_REPAYMENT.columns if c.startswith("prior_") and c != "prior_snapshot_ts"],
        d.cast("timestamp").alias("prior_snapshot_ts"),
        _created(created_at),
    )
