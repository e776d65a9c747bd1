"""Analyze tier, silver -> gold feature tables, and the Feast feature store over them.

Every gold ``fs_*`` table is keyed by ``customer_id`` and ``event_timestamp`` and holds,
on each row, the values *as known at* ``event_timestamp``: nothing dated later went into
them. A point-in-time join (Feast's ``get_historical_features``) then picks, for an
application made at time ``t``, the latest row with ``event_timestamp <= t``, so a
training set sees exactly what a live decision at ``t`` could have seen. What "known at"
means, table by table (days are UTC days, the Spark session's time zone; "day ``d``"
snapshots carry ``event_timestamp = d 00:00`` and use only facts dated before ``d``):

``gold.fs_application`` (one row per application)
    Known at ``applied_at``: the application's own fields, the customer's birth year,
    and the income, employment and education the application declared
    (``silver.with_applicant``), as a live request carries them. Only an application
    whose source carries none of these takes the customer record's latest version.
``gold.fs_repayment`` (one row per customer and day something changes)
    An installment due on ``due`` is known to be paid on time or late from ``due + 1``
    (pit rule ``core.dates.pit_dpd``: a payment made on day ``p`` counts from ``p + 1``); while
    unpaid its DPD grows by one a day; once paid on ``p`` its final DPD ``p - due`` is
    known from ``p + 1``. A loan counts from ``disbursed_date + 1``. Snapshots are taken
    on ``disbursed + 1``, ``due + 1``, ``paid + 1``, on the days an unpaid installment
    crosses 30/60/90 DPD, and on the days a late installment leaves the 3/6/12-month
    windows, so a window count is exact at every moment. Between two snapshots the
    unpaid overdue installments stay the same and their DPD grows by one a day: each row
    carries its day (``prior_snapshot_ts``), and a read as of a later day adds the days
    since to ``prior_current_dpd`` and ``prior_max_dpd`` (``as_of_day``), so both are
    exact at every moment too. The ``dpd`` column of silver (the DPD as of extraction)
    is never used.
``gold.fs_bureau`` (one row per report)
    Known at ``report_time``. A report pulled for an application minutes after
    ``applied_at`` is therefore not in that application's row when the entity time is
    ``applied_at``; ``application_entities(apps, bureau)`` moves the entity time to the
    moment the decision had its report (see there).
``gold.fs_events`` (one row per customer and day something enters or leaves a window)
    The events of day ``e`` are known at the end of that day, i.e. from ``e + 1`` 00:00;
    the 7- and 30-day windows of a day-``d`` snapshot are days ``[d - 7, d - 1]`` and
    ``[d - 30, d - 1]``. Snapshots on ``e + 1``, ``e + 8`` and ``e + 31`` make the counts
    drop to zero on time.
``gold.fs_text`` (same, for service notes, 90-day window)
    A note is known from the day after it was taken; snapshots on ``n + 1`` and
    ``n + 91``.
``gold.fs_public_records`` (one row per customer and day a record is dated)
    A court, penalty or news record linked to the customer (directly or through the
    employer) counts from the day after its ``record_date``. The record date is the
    earliest the record could be known; a crawler may find it later, so the training
    set is optimistic by the publication delay (use the first-seen time when silver
    carries one). ``pr_days_since_last`` is derived at read time from
    ``pr_last_record_ts`` and the entity time (training) or the lookup date (online).

Every table carries ``created_timestamp``: when the row was built (audit). It is not
declared to Feast as its tie-breaker: ``(customer_id, event_timestamp)`` is unique in the
snapshot tables by construction (and a customer's applications or bureau reports differ
in time), and one build stamps all rows alike, so it could not break a tie anyway.

The Feast repository is ``feature_store/`` (``definitions.py`` declares the entity, one
Spark source per table reading its Delta folder, the feature views and the feature
services; ``feature_store.yaml`` is the configuration template). ``feature_store``
renders the configuration from ``Settings`` and applies the definitions;
``training_set``, ``materialize`` and ``online_features`` are the three uses.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import string
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import yaml
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.analyze import silver
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    FEATURE_TABLES,
    FS_APPLICATION,
    FS_BUREAU,
    FS_EVENTS,
    FS_PUBLIC_RECORDS,
    FS_REPAYMENT,
    FS_TEXT,
    OPS_FEATURE_STATS,
    SILVER_APPLICATIONS,
    SILVER_BUREAU,
    SILVER_CUSTOMERS,
    SILVER_ENTITY_LINKS,
    SILVER_EVENTS,
    SILVER_LOANS,
    SILVER_NOTES,
    SILVER_REPAYMENTS,
    Table,
)
from riskcontrol.core.config import PROJECT_ROOT, Settings
from riskcontrol.core.redact import is_secret_conf
from riskcontrol.core.runs import Run
from riskcontrol.core.spark import local_jars, spark_conf

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

FEATURE_TABLES_BY_NAME = {t.name: t for t in FEATURE_TABLES}
# Columns of the fs_* tables that identify a row rather than describe the customer.
ID_COLUMNS = ("customer_id", "event_timestamp", "created_timestamp", "application_id", "report_id")

ENTITY_TIME = "event_timestamp"
EPOCH = dt.date(1970, 1, 1)
DPD_MARKS = (30, 60, 90)
LATE_WINDOWS_MONTHS = (3, 6, 12)
# How far back a point-in-time join looks for a view's row (0: no limit); Feast's ttl of
# each feature view (feature_store/definitions.py declares them with these).
VIEW_TTL = {
    FS_APPLICATION.name: dt.timedelta(days=1),  # the application's own row, never an older one
    # a snapshot stays true until the next one (window ends are snapshots)
    FS_REPAYMENT.name: dt.timedelta(0),
    FS_BUREAU.name: dt.timedelta(days=365),  # an older report is too stale to stand for anyone
    FS_EVENTS.name: dt.timedelta(0),  # the snapshot after a window empties holds zeros
    FS_TEXT.name: dt.timedelta(0),
    FS_PUBLIC_RECORDS.name: dt.timedelta(0),  # cumulative counts
}
# The customer's history: what single-application scoring reads from the online store
# (the rest is the request) and what gold.application_features joins point in time.
HISTORY_TABLES = (FS_REPAYMENT, FS_BUREAU, FS_EVENTS, FS_TEXT, FS_PUBLIC_RECORDS)


# --- helpers --------------------------------------------------------------------------------
def _naive_utc(ts: dt.datetime) -> dt.datetime:
    """Spark's TimestampType takes naive datetimes as session-local (UTC here)."""
    return ts.astimezone(dt.UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _created(created_at: dt.datetime) -> Column:
    return F.lit(_naive_utc(created_at)).cast("timestamp").alias("created_timestamp")


def _day_number(day: Column) -> Column:
    return F.datediff(day, F.lit(EPOCH))


def _day_start(day_number: Column) -> Column:
    """Midnight at the start of day ``day_number`` (days since 1970-01-01)."""
    return F.date_add(F.lit(EPOCH), day_number).cast("timestamp")


def _day_snapshots(
    daily: DataFrame, measures: list[str], windows: Mapping[int, list[str]]
) -> DataFrame:
    """Trailing-window sums per customer on every day a window gains or loses a day.

    ``daily`` has ``customer_id``, ``dn`` (day number) and ``measures``; the result has
    one row per customer and snapshot day ``dn`` with ``{measure}_{w}d`` = the sum over
    days ``[dn - w, dn - 1]`` for each window ``w`` and the measures listed for it.
    Snapshots fall on ``dn + 1`` (the day is complete) and ``dn + w + 1`` (it leaves the
    window ``w``).
    """
    offsets = [1] + [w + 1 for w in windows]
    marks = (
        daily.select("customer_id", F.explode(F.array(*[F.col("dn") + o for o in offsets])))
        .withColumnRenamed("col", "dn")
        .distinct()
    )
    blanks = [F.lit(None).cast(daily.schema[m].dataType).alias(m) for m in measures]
    rows = daily.select("customer_id", "dn", *measures, F.lit(False).alias("__mark")).unionByName(
        marks.select("customer_id", "dn", *blanks, F.lit(True).alias("__mark"))
    )
    by_day = Window.partitionBy("customer_id").orderBy("dn")
    sums = [
        F.coalesce(F.sum(m).over(by_day.rangeBetween(-w, -1)), F.lit(0)).alias(f"{m}_{w}d")
        for w, ms in windows.items()
        for m in ms
    ]
    return rows.select("customer_id", "dn", "__mark", *sums).where("__mark").drop("__mark")


# --- transforms: silver -> gold fs_* --------------------------------------------------------
def fs_application(
    applications: DataFrame, customers: DataFrame, created_at: dt.datetime
) -> DataFrame:
    """One row per application, event time ``applied_at``."""
    apps = applications.where(F.col("customer_id").isNotNull() & F.col("applied_at").isNotNull())
    out = silver.with_applicant(apps, customers).select(
        "application_id",
        "customer_id",
        F.col("applied_at").alias("event_timestamp"),
        "requested_amount",
        "term_months",
        "monthly_income",
        silver.age_at("application_date").cast("int").alias("age"),
        F.try_divide("requested_amount", "monthly_income").alias("amount_to_income"),
        "channel",
        "purpose",
        "province",
        "employment_type",
        "education",
        _created(created_at),
    )
    return out.select(*FS_APPLICATION.columns)


# Exact sums of money across a customer's loans: open principal in decimal, so that a
# running total of changes returns to the same cents as summing the loans afresh.
_MONEY = T.DecimalType(38, 10)
_NEVER = 10_000_000  # epoch day beyond any date: an installment never paid


def _epoch_day(col: Column) -> Column:
    return F.datediff(col, F.lit(dt.date(1970, 1, 1)))


def fs_repayment(loans: DataFrame, repayments: DataFrame, created_at: dt.datetime) -> DataFrame:
    """The customer's repayment record with the lender, on every day it changes.

    Linear in the customer's installments: every figure is a running total (or running
    max or min) of what changes on each day, per customer in day order, read on the
    snapshot days; no snapshot is joined with every installment of its customer. The one
    figure no running total gives, the oldest installment unpaid past its due day, comes
    from two parts: an installment never paid stays overdue for good (a running minimum
    of its due day), and one paid late is overdue only on the days up to its payment (each
    such day listed once). The module docstring says what is known when."""
    ln = loans.where(F.col("customer_id").isNotNull() & F.col("disbursed_date").isNotNull()).select(
        "loan_id", "customer_id", "disbursed_date", "principal"
    )
    lines = repayments.select("loan_id", "due_date", "paid_date", "amount_due")
    inst = ln.join(lines, "loan_id", "left").withColumn("start", F.date_add("disbursed_date", 1))

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

    # Each change on the first day it is known, never before the loan counts (its start).
    def on(day: Column) -> Column:
        return F.greatest(day, F.col("start"))

    due_day = on(F.date_add("due_date", 1))
    late = ever_late
    changes = [
        # an installment falls due; if it is (or will be) late, it is late from then on,
        # and inside each window until add_months(due, k)
        inst.where(F.col("due_date").isNotNull()).select(
            "customer_id",
            due_day.alias("d"),
            F.lit(1).alias("n_due"),
            late.cast("int").alias("n_late"),
            *[
                F.when(late & (F.add_months("due_date", k) >= due_day), 1)
                .otherwise(0)
                .alias(f"late_{k}m")
                for k in LATE_WINDOWS_MONTHS
            ],
        ),
        *[
            inst.where(late & (F.add_months("due_date", k) >= due_day)).select(
                "customer_id",
                F.date_add(F.add_months("due_date", k), 1).alias("d"),
                F.lit(-1).alias(f"late_{k}m"),
            )
            for k in LATE_WINDOWS_MONTHS
        ],
        # a paid installment's final DPD, known once it is both due and paid
        inst.where(F.col("due_date").isNotNull() & F.col("paid_date").isNotNull()).select(
            "customer_id",
            on(F.date_add(F.greatest("due_date", "paid_date"), 1)).alias("d"),
            F.greatest(F.datediff("paid_date", "due_date"), F.lit(0)).alias("paid_dpd"),
        ),
        # an installment never paid is overdue from its due day on, for good
        inst.where(F.col("due_date").isNotNull() & F.col("paid_date").isNull()).select(
            "customer_id", due_day.alias("d"), F.col("due_date").alias("unpaid_due")
        ),
        _loan_changes(inst),
    ]
    counts = ("n_due", "n_late", *[f"late_{k}m" for k in LATE_WINDOWS_MONTHS])
    sums = ("loans", "principal", "open_loans", "open_principal", *counts)
    merged = changes[0]
    for part in changes[1:]:
        merged = merged.unionByName(part, allowMissingColumns=True)
    daily = merged.groupBy("customer_id", "d").agg(
        *[F.sum(c).alias(c) for c in sums],
        F.max("paid_dpd").alias("paid_dpd"),
        F.min("unpaid_due").alias("unpaid_due"),
    )
    running = (
        Window.partitionBy("customer_id")
        .orderBy("d")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    state = (
        snapshots.join(daily, ["customer_id", "d"], "left")
        .select(
            "customer_id",
            "d",
            *[F.sum(F.coalesce(c, F.lit(0))).over(running).alias(c) for c in sums],
            F.max("paid_dpd").over(running).alias("paid_dpd"),
            F.min("unpaid_due").over(running).alias("unpaid_due"),
        )
        .join(_late_paid_overdue(inst), ["customer_id", "d"], "left")
        .where(F.col("loans") > 0)
    )
    d = F.col("d")
    oldest_unpaid = F.least("unpaid_due", "late_paid_due")
    current = F.datediff(d, oldest_unpaid)
    return state.select(
        "customer_id",
        d.cast("timestamp").alias("event_timestamp"),
        F.col("loans").cast("int").alias("prior_loans"),
        F.col("open_loans").cast("int").alias("prior_open_loans"),
        F.col("n_due").cast("int").alias("prior_installments_due"),
        F.col("n_late").cast("int").alias("prior_late_installments"),
        F.coalesce(F.greatest("paid_dpd", current), F.lit(0)).cast("int").alias("prior_max_dpd"),
        F.coalesce(current, F.lit(0)).cast("int").alias("prior_current_dpd"),
        *[F.col(f"late_{k}m").cast("int").alias(f"prior_late_{k}m") for k in LATE_WINDOWS_MONTHS],
        F.round(F.col("open_principal").cast("double"), 2).alias("prior_open_principal"),
        F.try_divide(F.col("open_principal").cast("double"), "principal").alias(
            "prior_utilization"
        ),
        d.cast("timestamp").alias("prior_snapshot_ts"),
        _created(created_at),
    ).select(*FS_REPAYMENT.columns)


def _loan_changes(inst: DataFrame) -> DataFrame:
    """Per loan, what changes the customer's totals on each day its state changes: the
    loan itself (count and principal) on its start, and its open principal (principal x
    unpaid / scheduled, or the principal when nothing is scheduled) and whether it is open
    (open principal > 0) on its start and on each day a payment becomes known."""
    loan = Window.partitionBy("loan_id")
    # a payment counts from the day after it, never before the loan does
    known = F.when(
        F.col("paid_date").isNotNull(), F.greatest(F.date_add("paid_date", 1), F.col("start"))
    )
    lines = inst.select(
        "loan_id",
        "customer_id",
        "start",
        "principal",
        F.sum("amount_due").over(loan).alias("scheduled"),
        F.coalesce(_epoch_day(known), F.lit(_NEVER)).alias("k"),
        F.col("amount_due").cast(_MONEY).alias("amount"),
    )
    # the loan's start as a change day of its own, paying nothing
    starts = lines.select(
        "loan_id",
        "customer_id",
        "start",
        "principal",
        "scheduled",
        _epoch_day(F.col("start")).alias("k"),
        F.lit(None).cast(_MONEY).alias("amount"),
    ).distinct()
    later = Window.partitionBy("loan_id").orderBy("k").rangeBetween(1, Window.unboundedFollowing)
    unpaid = F.coalesce(F.sum("amount").over(later), F.lit(0).cast(_MONEY)).cast("double")
    per_day = (
        lines.unionByName(starts)
        .select(
            "loan_id", "customer_id", "start", "principal", "scheduled", "k", unpaid.alias("unpaid")
        )  # fmt: skip
        .where(F.col("k") < _NEVER)
        .distinct()
    )
    open_principal = F.when(
        F.col("scheduled") > 0, F.col("principal") * F.col("unpaid") / F.col("scheduled")
    ).otherwise(F.col("principal"))
    step = Window.partitionBy("loan_id").orderBy("k")
    with_state = per_day.withColumn("op", open_principal.cast(_MONEY)).withColumn(
        "is_open", F.coalesce((F.col("op") > 0).cast("int"), F.lit(0))
    )
    first = F.col("k") == _epoch_day(F.col("start"))
    return with_state.select(
        "customer_id",
        F.date_add(F.lit(dt.date(1970, 1, 1)), F.col("k")).alias("d"),
        F.when(first, 1).otherwise(0).alias("loans"),
        F.when(first, F.col("principal")).otherwise(0.0).alias("principal"),
        (F.col("is_open") - F.coalesce(F.lag("is_open").over(step), F.lit(0))).alias("open_loans"),
        (
            F.coalesce(F.col("op"), F.lit(0).cast(_MONEY))
            - F.coalesce(F.lag("op").over(step), F.lit(0).cast(_MONEY))
        ).alias("open_principal"),
    )


def _late_paid_overdue(inst: DataFrame) -> DataFrame:
    """Per customer and day, the earliest due day among installments overdue that day and
    paid later (from the day after their due day to their payment day): each such day is
    listed once per installment, so the rows grow with the days late, not with the
    customer's history."""
    first = F.greatest(F.date_add("due_date", 1), F.col("start"))
    late_paid = inst.where(
        F.col("due_date").isNotNull()
        & F.col("paid_date").isNotNull()
        & (F.col("paid_date") >= first)
    )
    return (
        late_paid.select(
            "customer_id",
            "due_date",
            F.explode(F.sequence(first, F.col("paid_date"))).alias("d"),
        )
        .groupBy("customer_id", "d")
        .agg(F.min("due_date").alias("late_paid_due"))
    )


def fs_bureau(bureau: DataFrame, customers: DataFrame, created_at: dt.datetime) -> DataFrame:
    """One row per bureau report, event time ``report_time``, for the customer it is about.

    The report names the person by ``customer_key`` (pseudonymized national ID); a report
    whose person is not a known customer has no entity to attach to and is left out.
    """
    people = customers.select("customer_key", "customer_id").where(
        F.col("customer_key").isNotNull()
    )
    out = (
        bureau.where(F.col("report_time").isNotNull())
        .join(people, "customer_key")
        .select(
            "report_id",
            "application_id",
            "customer_id",
            F.col("report_time").alias("event_timestamp"),
            "bureau_score",
            "inquiries_6m",
            "open_loans",
            "total_credit_limit",
            "total_balance",
            F.try_divide("total_balance", "total_credit_limit").alias("utilization"),
            "overdue_accounts",
            "max_dpd_24m",
            "credit_history_months",
            "consumer_finance_loans",
            "n_accounts",
            "n_alerts",
            _created(created_at),
        )
    )
    return out.select(*FS_BUREAU.columns)


def fs_events(events: DataFrame, created_at: dt.datetime) -> DataFrame:
    """App-event counts over the 7 and 30 days before each day (UTC days)."""
    e = events.where(F.col("customer_id").isNotNull() & F.col("event_ts").isNotNull())
    daily = e.groupBy("customer_id", _day_number(F.to_date("event_ts")).alias("dn")).agg(
        F.count("*").alias("n"),
        F.sum(F.coalesce(F.col("is_night"), F.lit(False)).cast("long")).alias("night"),
        F.count("is_night").alias("night_known"),
        F.sum((F.col("event_type") == "loan_calc").cast("long")).alias("calc"),
        F.sum((F.col("event_type") == "apply_click").cast("long")).alias("click"),
    )
    snaps = _day_snapshots(
        daily,
        ["n", "night", "night_known", "calc", "click"],
        {7: ["n"], 30: ["n", "night", "night_known", "calc", "click"]},
    )
    return snaps.select(
        "customer_id",
        _day_start(F.col("dn")).alias("event_timestamp"),
        F.col("n_7d").cast("int").alias("ev_count_7d"),
        F.col("n_30d").cast("int").alias("ev_count_30d"),
        F.try_divide(F.col("night_30d").cast("double"), F.col("night_known_30d")).alias(
            "ev_night_share_30d"
        ),
        F.col("calc_30d").cast("int").alias("ev_loan_calc_30d"),
        F.col("click_30d").cast("int").alias("ev_apply_click_30d"),
        _created(created_at),
    )


def fs_text(notes: DataFrame, created_at: dt.datetime, days: int = 90) -> DataFrame:
    """Service-note signals over the ``days`` before each day.

    ``notes_negative_90d`` counts notes with a negative-lexicon hit; the mean negativity
    is the mean of the ``negativity`` column when silver has one (a score per note), else
    the mean number of negative-lexicon hits per note.
    """
    n = notes.where(F.col("customer_id").isNotNull() & F.col("noted_at").isNotNull())
    score = "negativity" if "negativity" in notes.columns else "negative_hits"
    daily = n.groupBy("customer_id", _day_number(F.to_date("noted_at")).alias("dn")).agg(
        F.count("*").alias("cnt"),
        F.sum((F.coalesce(F.col("negative_hits"), F.lit(0)) > 0).cast("long")).alias("neg"),
        F.sum(F.col(score).cast("double")).alias("score_sum"),
        F.count(score).alias("score_n"),
    )
    measures = ["cnt", "neg", "score_sum", "score_n"]
    snaps = _day_snapshots(daily, measures, {days: measures})
    return snaps.select(
        "customer_id",
        _day_start(F.col("dn")).alias("event_timestamp"),
        F.col(f"cnt_{days}d").cast("int").alias("notes_count_90d"),
        F.col(f"neg_{days}d").cast("int").alias("notes_negative_90d"),
        F.try_divide(F.col(f"score_sum_{days}d"), F.col(f"score_n_{days}d")).alias(
            "notes_negativity_90d"
        ),
        _created(created_at),
    )


def fs_public_records(
    links: DataFrame, created_at: dt.datetime, min_confidence: float | None = None
) -> DataFrame:
    """Court, penalty and news records linked to each customer, cumulative per day.

    A record linked to the customer several times (directly and through the employer)
    counts once; ``pr_employer_hits`` counts the court and penalty records whose only
    link to the customer is the employer. ``pr_last_record_ts`` is the date of the latest
    court or penalty record.
    """
    kinds = ("court", "penalty", "news")
    ok = (
        F.col("customer_id").isNotNull()
        & F.col("record_date").isNotNull()
        & F.col("record_kind").isin(*kinds)
    )
    if min_confidence is not None:
        ok = ok & (F.col("confidence") >= min_confidence)
    recs = (
        links.where(ok)
        .groupBy("customer_id", "record_kind", "record_id")
        .agg(
            F.min("record_date").alias("record_date"),
            F.bool_and(F.coalesce(F.col("match_method") == "employer", F.lit(False))).alias(
                "via_employer"
            ),
        )
    )
    adverse = F.col("record_kind").isin("court", "penalty")
    daily = recs.select(
        "customer_id",
        _day_number(F.col("record_date")).alias("dn"),
        (F.col("record_kind") == "court").cast("int").alias("court"),
        (F.col("record_kind") == "penalty").cast("int").alias("penalty"),
        (adverse & F.col("via_employer")).cast("int").alias("employer"),
        (F.col("record_kind") == "news").cast("int").alias("news"),
        F.when(adverse, _day_number(F.col("record_date"))).alias("adverse_dn"),
    )
    marks = daily.select("customer_id", (F.col("dn") + 1).alias("dn")).distinct()
    measures = ["court", "penalty", "employer", "news", "adverse_dn"]
    rows = daily.withColumn("__mark", F.lit(False)).unionByName(
        marks.select(
            "customer_id",
            "dn",
            *[F.lit(None).cast("int").alias(m) for m in measures],
            F.lit(True).alias("__mark"),
        )
    )
    before = (
        Window.partitionBy("customer_id").orderBy("dn").rangeBetween(Window.unboundedPreceding, -1)
    )
    last = F.max("adverse_dn").over(before)
    out = rows.select(
        "customer_id",
        _day_start(F.col("dn")).alias("event_timestamp"),
        *[
            F.coalesce(F.sum(m).over(before), F.lit(0)).cast("int").alias(f"pr_{m}_hits")
            for m in ("court", "penalty", "employer", "news")
        ],
        F.when(last.isNotNull(), _day_start(last)).alias("pr_last_record_ts"),
        _created(created_at),
        "__mark",
    )
    return out.where("__mark").select(*FS_PUBLIC_RECORDS.columns)


def application_entities(applications: DataFrame, bureau: DataFrame | None = None) -> DataFrame:
    """Entity rows for a training set: ``application_id``, ``customer_id``, ``event_timestamp``.

    Without ``bureau`` the entity time is ``applied_at``. With it, the entity time is when
    the decision had its inputs: ``applied_at``, or the time of the report pulled for
    that application if it came later on the same day (the bureau is queried while the
    application is processed, so a live decision sees that report).
    """
    apps = applications.where(F.col("applied_at").isNotNull()).select(
        "application_id", "customer_id", "applied_at"
    )
    if bureau is None:
        return apps.select("application_id", "customer_id", F.col("applied_at").alias(ENTITY_TIME))
    own = (
        bureau.select("application_id", "report_time")
        .join(apps, "application_id")
        .where(
            (F.col("report_time") >= F.col("applied_at"))
            & (F.to_date("report_time") == F.to_date("applied_at"))
        )
        .groupBy("application_id")
        .agg(F.min("report_time").alias("report_time"))
    )
    return apps.join(own, "application_id", "left").select(
        "application_id",
        "customer_id",
        F.greatest("applied_at", F.coalesce("report_time", "applied_at")).alias(ENTITY_TIME),
    )


# --- point in time: the one way features are read ------------------------------------------
def point_in_time(entities: DataFrame, views: Mapping[Table, DataFrame]) -> DataFrame:
    """Feast's point-in-time join, in Spark: ``entities`` with each view's features.

    ``entities`` has ``application_id`` (unique), ``customer_id`` and ``event_timestamp``.
    Per entity row and view, the features are those of the customer's latest row with
    ``event_timestamp`` at or before the entity's and, for a view with a ttl
    (``VIEW_TTL``), not older than the ttl; none (null) if there is no such row. This is
    what ``get_historical_features`` computes (a test holds the two equal) and what the
    online store holds after ``materialize`` up to the entity time.
    """
    out = entities
    base = entities.select("application_id", "customer_id", F.col(ENTITY_TIME).alias("__t"))
    for table, df in views.items():
        features = [c for c in table.columns if c not in ID_COLUMNS]
        rows = df.select("customer_id", F.col(ENTITY_TIME).alias("__ft"), *features)
        known = F.col("__ft") <= F.col("__t")
        ttl = int(VIEW_TTL[table.name].total_seconds())
        if ttl:
            known = known & (F.col("__ft") >= F.col("__t") - F.make_interval(secs=F.lit(ttl)))
        latest = Window.partitionBy("application_id").orderBy(F.col("__ft").desc())
        picked = (
            base.join(rows, "customer_id")
            .where(known)
            .withColumn("__n", F.row_number().over(latest))
            .where("__n = 1")
            .select("application_id", *features)
        )
        out = out.join(picked, "application_id", "left")
    return out


def as_of_day(df: DataFrame, day: Column) -> DataFrame:
    """The features a row's values imply on ``day`` (a date at or after the row's).

    ``pr_days_since_last``: days from the latest court or penalty record to ``day``.
    ``prior_current_dpd`` and ``prior_max_dpd``: the unpaid overdue installments of the
    snapshot grew one day late per day since ``prior_snapshot_ts`` (a payment or a new
    due date would have made a newer snapshot). ``_as_of_row`` is the same for one row.
    """
    if "pr_last_record_ts" in df.columns:
        since = F.datediff(day, F.to_date("pr_last_record_ts"))
        df = df.withColumn("pr_days_since_last", since)
    if "prior_snapshot_ts" in df.columns:
        days = F.greatest(F.lit(0), F.datediff(day, F.to_date("prior_snapshot_ts")))
        grown = F.col("prior_current_dpd") + days
        current = F.when(F.col("prior_current_dpd") > 0, grown).otherwise(
            F.col("prior_current_dpd")
        )
        df = df.withColumn("prior_current_dpd", current.cast("int")).withColumn(
            "prior_max_dpd", F.greatest("prior_max_dpd", "prior_current_dpd")
        )
    return df


def history_at_applications(
    applications: DataFrame, bureau: DataFrame, views: Mapping[Table, DataFrame]
) -> DataFrame:
    """Per application: the customer's history features from the ``HISTORY_TABLES`` as
    known when it was decided (``application_entities`` with its own bureau report),
    read as the online store serves them on that day; a missing count stays null."""
    entities = application_entities(applications, bureau)
    joined = point_in_time(entities, {t: views[t] for t in HISTORY_TABLES})
    return as_of_day(joined, F.to_date(ENTITY_TIME)).drop("customer_id", ENTITY_TIME)


# --- the gold build -------------------------------------------------------------------------
def build_feature_tables(
    run: Run, until: dt.datetime | None = None, created_at: dt.datetime | None = None
) -> dict[str, int]:
    """Rebuild every gold ``fs_*`` table from silver and record its statistics.

    Snapshot rows later than ``until`` (default: now) are left out: they would describe
    a future in which nothing new happened. Returns the rows written per table (also in
    ``ops.feature_stats`` for this run).
    """
    spark, settings = run.spark, run.settings
    created_at = _naive_utc(created_at or dt.datetime.now(dt.UTC))
    until = _naive_utc(until) if until else created_at

    def read(t: Table) -> DataFrame:
        return lakehouse.read(spark, t, settings)

    customers = read(SILVER_CUSTOMERS)
    if lakehouse.exists(spark, SILVER_ENTITY_LINKS, settings):
        links = read(SILVER_ENTITY_LINKS)
    else:
        links = spark.createDataFrame([], SILVER_ENTITY_LINKS.schema)
    built = {
        FS_APPLICATION: fs_application(read(SILVER_APPLICATIONS), customers, created_at),
        FS_REPAYMENT: fs_repayment(read(SILVER_LOANS), read(SILVER_REPAYMENTS), created_at),
        FS_BUREAU: fs_bureau(read(SILVER_BUREAU), customers, created_at),
        FS_EVENTS: fs_events(read(SILVER_EVENTS), created_at),
        FS_TEXT: fs_text(read(SILVER_NOTES), created_at),
        FS_PUBLIC_RECORDS: fs_public_records(links, created_at),
    }
    for table, df in built.items():
        lakehouse.overwrite(df.where(F.col(ENTITY_TIME) <= F.lit(until)), table, settings)
    stats = feature_stats(run, {t.name: read(t) for t in built})
    counts = {r.feature_view: r.rows for r in stats.select("feature_view", "rows").collect()}
    return {t.full_name: int(counts.get(t.name, 0)) for t in built}


# --- feature statistics ---------------------------------------------------------------------
_NUMERIC = (T.NumericType, T.BooleanType)


def feature_stats(run: Run, df_by_view: Mapping[str, DataFrame]) -> DataFrame:
    """Per feature of each view: rows, nulls, mean, stddev, min, median, max -> ops.feature_stats.

    Features are the columns other than ``ID_COLUMNS`` (keys and row timestamps); numeric
    and boolean ones get the distribution, the others (strings, timestamps) rows and nulls.
    The median is ``percentile_approx`` (an observed value, exact on small tables). One
    aggregation per view; the rows are merged on (run_id, feature_view, feature), so a
    re-run of the same run replaces its statistics. Returns this run's rows.
    """
    parts = []
    for view, df in df_by_view.items():
        cols = [f for f in df.schema.fields if f.name not in ID_COLUMNS]
        aggs: list[Column] = [F.count(F.lit(1)).alias("__rows")]
        entries = []
        for i, f in enumerate(cols):
            c = F.col(f"`{f.name}`")
            numeric = isinstance(f.dataType, _NUMERIC)
            x = c.cast("double")
            aggs.append(F.sum(c.isNull().cast("long")).alias(f"__n{i}"))
            stats = ("mean", "stddev", "min", "p50", "max")
            if numeric:
                aggs += [
                    F.avg(x).alias(f"__mean{i}"),
                    F.stddev_samp(x).alias(f"__stddev{i}"),
                    F.min(x).alias(f"__min{i}"),
                    F.percentile_approx(x, 0.5, 10_000).alias(f"__p50{i}"),
                    F.max(x).alias(f"__max{i}"),
                ]
            entries.append(
                F.struct(
                    F.lit(f.name).alias("feature"),
                    F.col(f"__n{i}").alias("nulls"),
                    *[
                        (F.col(f"__{s}{i}") if numeric else F.lit(None)).cast("double").alias(s)
                        for s in stats
                    ],
                )
            )
        if not entries:
            continue
        parts.append(
            df.agg(*aggs).select(
                F.lit(view).alias("feature_view"),
                F.col("__rows").alias("rows"),
                F.explode(F.array(*entries)).alias("s"),
            )
        )
    if not parts:
        raise ValueError("feature_stats: no feature columns in any view")
    union = parts[0]
    for p in parts[1:]:
        union = union.unionByName(p)
    rows = union.select(
        F.lit(run.run_id).alias("run_id"),
        "feature_view",
        "s.feature",
        F.col("rows").cast("long").alias("rows"),
        F.coalesce(F.col("s.nulls"), F.lit(0)).cast("long").alias("nulls"),
        "s.mean",
        "s.stddev",
        "s.min",
        "s.p50",
        "s.max",
        F.current_timestamp().alias("computed_at"),
    )
    lakehouse.merge(rows, OPS_FEATURE_STATS, run.settings)
    return lakehouse.read(run.spark, OPS_FEATURE_STATS, run.settings).where(
        F.col("run_id") == run.run_id
    )


# --- Feast ----------------------------------------------------------------------------------
REPO_DIR = PROJECT_ROOT / "feature_store"
DEFINITIONS = REPO_DIR / "definitions.py"
CONFIG_TEMPLATE = REPO_DIR / "feature_store.yaml"
TRAINING_SERVICE = "application_pd"
ONLINE_SERVICE = "application_pd_online"
# Feast turns this on for the whole (shared) session; it changes how backquoted names
# are parsed, so it is put back after every Feast call.
_FEAST_SPARK_FLAG = "spark.sql.parser.quotedRegexColumnNames"
_FEAST_EXPERIMENTAL = r"The spark (data source API|offline store) is an experimental feature"


def runtime_dir(settings: Settings) -> Path:
    """Where the rendered configuration, the registry and the online store live."""
    return Path(settings.data_dir) / "feature_repo"


def config_values(settings: Settings) -> dict[str, str]:
    """The ``${VAR}`` values of ``feature_store/feature_store.yaml`` for these settings.

    Feast itself expands ``${VAR}`` from the environment when it reads the file (so the
    ``feast`` CLI works after ``export``-ing these); the pipeline renders them from
    ``Settings`` instead, without touching the process environment.
    """

    runtime = runtime_dir(settings)
    return {
        "RISK_FEAST_REGISTRY": str(runtime / "registry.db"),
        "RISK_FEAST_ONLINE_STORE": str(runtime / "online_store.db"),
        "RISK_SPARK_MASTER": settings.spark_master,
        "RISK_FEAST_SPARK_JARS": ",".join(str(j) for j in local_jars(settings.jars_dir)),
        "RISK_LAKEHOUSE_ROOT": str(settings.lakehouse_root),
    }


def render_config(settings: Settings) -> dict[str, Any]:
    """``feature_store.yaml`` for these settings, with the pipeline's full Spark conf."""

    text = string.Template(CONFIG_TEMPLATE.read_text(encoding="utf-8"))
    config = yaml.safe_load(text.substitute(config_values(settings)))
    # The template lists what Feast needs to start a session on its own (the CLI); the
    # pipeline's session factory knows the rest, so a session Feast starts matches it.
    conf = {
        **config["offline_store"].get("spark_conf", {}),
        "spark.master": settings.spark_master,
        **spark_conf(settings),
    }
    # Credentials in RISK_SPARK_CONF (object-store keys) stay out of the file: it names an
    # environment variable instead, which Feast expands when it reads the file (the feast
    # CLI); the pipeline's own session never reads them from here.
    config["offline_store"]["spark_conf"] = {
        k: f"${{{secret_conf_env(k)}}}" if is_secret_conf(k) else v for k, v in conf.items()
    }
    return config


def secret_conf_env(key: str) -> str:
    """The environment variable ``feature_store.yaml`` names for the secret Spark setting
    ``key``: ``spark.hadoop.fs.s3a.secret.key`` -> ``RISK_SPARK_HADOOP_FS_S3A_SECRET_KEY``."""
    return "RISK_SPARK_" + re.sub(r"[^A-Za-z0-9]+", "_", key.removeprefix("spark.")).upper()


def write_config(settings: Settings) -> Path:
    """Render ``feature_store.yaml`` into the runtime folder, readable by its owner only
    from its first byte (a fresh private file renamed over the old one)."""
    runtime = runtime_dir(settings)
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = runtime / "feature_store.yaml"
    text = yaml.safe_dump(render_config(settings), sort_keys=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # O_EXCL below: never reuse a file with another mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_definitions(settings: Settings) -> ModuleType:
    """A fresh copy of ``feature_store/definitions.py`` with sources on these settings' tables.

    The definitions read the lakehouse root from the environment (``RISK_LAKEHOUSE_ROOT``)
    like the ``feast`` CLI would; here every Spark source is pointed at the Delta folder
    of its table under ``settings`` instead.
    """
    name = "riskcontrol_feature_definitions"
    spec = importlib.util.spec_from_file_location(name, DEFINITIONS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    for source in module.SOURCES:
        source.spark_options.path = FEATURE_TABLES_BY_NAME[source.name].path(settings)
    return module


@contextmanager
def _feast_spark() -> Iterator[None]:
    """Run Feast on the active session and put back the parser flag it turns on.

    Feast warns on every Spark source and query that its Spark support is "experimental";
    that is known and said once here instead.
    """
    spark = SparkSession.getActiveSession()
    before = spark.conf.get(_FEAST_SPARK_FLAG, None) if spark else None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _FEAST_EXPERIMENTAL, RuntimeWarning)
            yield
    finally:
        if spark is not None:
            if before is None:
                spark.conf.unset(_FEAST_SPARK_FLAG)
            else:
                spark.conf.set(_FEAST_SPARK_FLAG, before)


def feature_store(settings: Settings) -> FeatureStore:
    """The Feast store for these settings: configuration rendered, definitions applied.

    Feast's Spark offline store uses the active Spark session (``get_spark``), so the
    pipeline and Feast share one session; the SQLite registry and online store live in
    ``runtime_dir(settings)``.
    """
    from feast import FeatureStore

    runtime = write_config(settings).parent
    with _feast_spark():
        definitions = load_definitions(settings)
        store = FeatureStore(repo_path=str(runtime))
        store.apply(definitions.OBJECTS)
    return store


def _missing_as_zero(svc: FeatureService) -> tuple[list[str], dict[str, Any]]:
    """Features of ``svc``: all names, and the zero of those tagged ``missing: zero``."""
    from feast.types import Float32, Float64

    names, zero = [], {}
    for projection in svc.feature_view_projections:
        for f in projection.features:
            names.append(f.name)
            if f.tags.get("missing") == "zero":
                zero[f.name] = 0.0 if f.dtype in (Float32, Float64) else 0
    return names, zero


def training_set(
    store: FeatureStore, entity_df: DataFrame, service: str = TRAINING_SERVICE
) -> DataFrame:
    """Point-in-time-correct features for ``entity_df`` (customer_id, event_timestamp, ...).

    Feast joins, per entity row and feature view, the latest feature row with
    ``event_timestamp`` at or before the entity's (and within the view's ttl). Counts
    with no row (no history) become 0; then ``as_of_day`` on the entity's date.
    """
    with _feast_spark():
        svc = store.get_feature_service(service)
        df = store.get_historical_features(entity_df=entity_df, features=svc).to_spark_df()
    _, zero = _missing_as_zero(svc)
    fills = {c: F.coalesce(F.col(c), F.lit(v)).alias(c) for c, v in zero.items()}
    df = df.select(*[fills.get(c, F.col(c)) for c in df.columns])
    return as_of_day(df, F.to_date(ENTITY_TIME))


def materialize(store: FeatureStore, end: dt.datetime) -> None:
    """Load the latest value per customer as of ``end`` into the online store.

    Each online view is materialized over its ttl before ``end`` (from 1970 for views
    without ttl), not incrementally: a snapshot can be back-dated (a public record found
    late), and re-loading the window is idempotent.
    """
    end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    by_start: dict[dt.datetime, list[str]] = {}
    with _feast_spark():
        for fv in store.list_feature_views():
            if fv.online:
                start = end - fv.ttl if fv.ttl else epoch
                by_start.setdefault(start, []).append(fv.name)
        for start, views in sorted(by_start.items()):
            store.materialize(start_date=start, end_date=end, feature_views=sorted(views))


class OnlineReader:
    """``online_features`` for a service that asks thousands of times a second.

    Feast's ``get_online_features`` rebuilds the feature service and its views from the
    registry's protos on every call (tens of milliseconds, type-checked field by field);
    the rows themselves are one indexed read per view. This resolves the service and its
    views once and then reads each view's row through Feast's own online store
    (``online_read``) and value conversion: the same values as ``online_features``
    (a test holds the two equal), without the per-call registry work. Build a new
    reader after the feature definitions change (the service does, on reload).
    """

    def __init__(self, store: FeatureStore, service: str = ONLINE_SERVICE):
        with _feast_spark():
            svc = store.get_feature_service(service)
            self.views = [
                (store.get_feature_view(p.name), [f.name for f in p.features])
                for p in svc.feature_view_projections
            ]
        self.names, self.zero = _missing_as_zero(svc)
        self.config = store.config
        self.provider = store._get_provider()

    def __call__(
        self, customer_id: str, as_of: dt.date | None = None, at: dt.datetime | None = None
    ) -> dict[str, Any]:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from feast.type_map import feast_value_type_to_python_type

        at = _moment(at)
        key = EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=customer_id)])
        out: dict[str, Any] = {"customer_id": customer_id}
        for view, features in self.views:
            ((written, values),) = self.provider.online_read(self.config, view, [key], features)
            if _expired(view.ttl, written, at):
                values = None
            for f in features:
                value = (values or {}).get(f)
                out[f] = None if value is None else feast_value_type_to_python_type(value)
        return _online_row(out, self.zero, as_of or at.date())


def _moment(at: dt.datetime | None) -> dt.datetime:
    """``at`` as naive UTC (default: now)."""
    return _naive_utc(at) if at else _naive_utc(dt.datetime.now(dt.UTC))


def _expired(ttl: dt.timedelta | None, written: dt.datetime | None, at: dt.datetime) -> bool:
    """A row older than its view's ttl at ``at``: the point-in-time join would not use it.

    Materialization only adds rows, so a customer's last report stays in the online store
    after it ages out; Feast does not check the ttl on read, this does.
    """
    return bool(ttl) and written is not None and _naive_utc(written) < at - ttl


def _online_row(out: dict[str, Any], zero: dict[str, Any], day: dt.date) -> dict[str, Any]:
    """Counts of no history as 0, then ``_as_of_row`` on ``day``."""
    for c, v in zero.items():
        if out.get(c) is None:
            out[c] = v
    return _as_of_row(out, day)


def _as_of_row(out: dict[str, Any], day: dt.date) -> dict[str, Any]:
    """``as_of_day`` for one online row (a dict of its features)."""
    if "pr_last_record_ts" in out:
        last = out["pr_last_record_ts"]
        out["pr_days_since_last"] = (day - last.date()).days if last is not None else None
    if "prior_snapshot_ts" in out:
        snapshot, current = out["prior_snapshot_ts"], out.get("prior_current_dpd")
        if snapshot is not None and current is not None and current > 0:
            out["prior_current_dpd"] = current + max(0, (day - snapshot.date()).days)
        dpds = [out.get("prior_max_dpd"), out.get("prior_current_dpd")]
        known = [v for v in dpds if v is not None]
        out["prior_max_dpd"] = max(known) if known else None
    return out


def online_features(
    store: FeatureStore,
    customer_id: str,
    as_of: dt.date | None = None,
    service: str = ONLINE_SERVICE,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The customer's latest materialized features, for scoring one application.

    The application's own fields (amount, term, channel, ...) come with the request; this
    returns the customer's history: repayment, bureau, events, text and public records.
    Counts of a customer with no history are 0. A row older than its view's ttl at ``at``
    (default: now) is left out, as the point-in-time join leaves it out;
    ``pr_days_since_last`` and the DPD of unpaid installments count to ``as_of``
    (default: the day of ``at``).
    """
    at = _moment(at)
    with _feast_spark():
        svc = store.get_feature_service(service)
        rows = [{"customer_id": customer_id}]
        response = store.get_online_features(features=svc, entity_rows=rows)
        out = {k: v[0] for k, v in response.to_dict(include_event_timestamps=True).items()}
        out.pop("customer_id__ts", None)
        for p in svc.feature_view_projections:
            ttl = store.get_feature_view(p.name).ttl
            stamps = [out.pop(f"{f.name}__ts", 0) for f in p.features]
            written = dt.datetime.fromtimestamp(max(stamps), dt.UTC) if max(stamps) else None
            if _expired(ttl, written, at):
                out.update({f.name: None for f in p.features})
    _, zero = _missing_as_zero(svc)
    return _online_row(out, zero, as_of or at.date())
