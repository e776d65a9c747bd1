"""Erasure of a data subject: every table, Delta history included, with an audit row.

``erase_customer`` finds everything that belongs to one customer (their applications,
loans, repayments, settlements, bureau reports, events, notes, the public records
linked to them, the pages those records came from, features, scores and quarantined
rows), deletes it from the current version of every table, then VACUUMs each table it
touched with zero retention, so the files of earlier versions that still held the rows
are gone too: time travel can no longer reach them. One row in ``ops.erasures``
records what was done, naming the subject only by a keyed pseudonym of its id.

The source systems (the lending database, the landing folders) are outside the
lakehouse: they must erase the subject too, or a later ``--full`` extract brings the
rows back (``ops.erasures`` lets a reviewer check the lakehouse against them).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from delta.tables import DeltaTable
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from riskcontrol import lakehouse, pii
from riskcontrol.catalog import ALL_TABLES, OPS_ERASURES, Table
from riskcontrol.config import Settings


@dataclass
class Subject:
    """Everything that identifies one customer's rows across the lakehouse."""

    customer_id: str
    customer_keys: list[str] = field(default_factory=list)
    application_ids: list[str] = field(default_factory=list)
    loan_ids: list[str] = field(default_factory=list)
    record_ids: list[str] = field(default_factory=list)  # linked public records
    urls: list[str] = field(default_factory=list)  # pages those records came from

    def ids(self) -> list[str]:
        return [self.customer_id, *self.application_ids, *self.loan_ids]


@dataclass(frozen=True)
class ErasureResult:
    erasure_id: str
    rows_deleted: dict[str, int]
    vacuumed: list[str]


def _values(spark: SparkSession, settings: Settings, table: Table, where: Column, col: str):
    if not lakehouse.exists(spark, table, settings):
        return []
    df = lakehouse.read(spark, table, settings)
    if col not in df.columns:
        return []
    return sorted({r[0] for r in df.where(where).select(col).distinct().collect() if r[0]})


def find_subject(spark: SparkSession, settings: Settings, customer_id: str) -> Subject:
    """Collect the keys of a customer's rows from silver and bronze."""
    from riskcontrol.catalog import (
        BRONZE_APPLICATIONS,
        BRONZE_COURT_RECORDS,
        BRONZE_LOANS,
        SILVER_CUSTOMERS,
        SILVER_ENTITY_LINKS,
    )

    mine = F.col("customer_id") == customer_id
    subject = Subject(customer_id)
    subject.customer_keys = _values(spark, settings, SILVER_CUSTOMERS, mine, "customer_key")
    subject.application_ids = _values(spark, settings, BRONZE_APPLICATIONS, mine, "application_id")
    subject.loan_ids = _values(spark, settings, BRONZE_LOANS, mine, "loan_id")
    links = (F.col("entity_type") == "customer") & mine
    subject.record_ids = _values(spark, settings, SILVER_ENTITY_LINKS, links, "record_id")
    if subject.record_ids:
        on_page = F.col("record_id").isin(subject.record_ids)
        subject.urls = _values(spark, settings, BRONZE_COURT_RECORDS, on_page, "url")
    return subject


def _payload_field(name: str, settings: Settings, encrypted: bool) -> Column:
    payload = pii.decrypt("payload", settings.bronze_secret()) if encrypted else F.col("payload")
    return F.get_json_object(payload, f"$.{name}")


def _isin(col: str | Column, values: list[str]) -> Column:
    c = F.col(col) if isinstance(col, str) else col
    return c.isin(values) if values else F.lit(False)


def _mentions(col: Column, values: list[str]) -> Column:
    """``col`` (a JSON or text record) names one of ``values`` as a whole token."""
    if not values:
        return F.lit(False)
    return F.coalesce(col.rlike(r"\b(" + "|".join(values) + r")\b"), F.lit(False))


def predicates(subject: Subject, settings: Settings) -> dict[str, Callable[[list[str]], Column]]:
    """Per table: the condition selecting the subject's rows (given the table's columns).

    A table is matched by the first of its columns that identifies the subject; raw
    payloads are searched after decryption; the quarantine by the ids its records name.
    """
    s = subject
    by_column: list[tuple[str, Callable[[], Column]]] = [
        ("customer_id", lambda: F.col("customer_id") == s.customer_id),
        ("customer_key", lambda: _isin("customer_key", s.customer_keys)),
        ("application_id", lambda: _isin("application_id", s.application_ids)),
        ("loan_id", lambda: _isin("loan_id", s.loan_ids)),
    ]

    def generic(columns: list[str]) -> Column:
        conditions = [make() for name, make in by_column if name in columns]
        if "record_id" in columns and s.record_ids:
            conditions.append(_isin("record_id", s.record_ids))
        if "url" in columns and s.urls:
            conditions.append(_isin("url", s.urls))
        if not conditions:
            return F.lit(False)
        out = conditions[0]
        for c in conditions[1:]:
            out = out | F.coalesce(c, F.lit(False))
        return F.coalesce(out, F.lit(False))

    special: dict[str, Callable[[list[str]], Column]] = {
        "bronze.bureau_reports": lambda _c: _isin(
            _payload_field("query_ref", settings, encrypted=True), s.application_ids
        ),
        "bronze.app_events": lambda _c: F.coalesce(
            _payload_field("customer_id", settings, encrypted=False) == s.customer_id,
            F.lit(False),
        ),
        "bronze.service_notes": lambda _c: F.coalesce(
            F.col("payload").contains(f"customer={s.customer_id} "), F.lit(False)
        ),
        "ops.quarantine": lambda _c: _mentions(
            pii.decrypt("record", settings.bronze_secret()), s.ids() + s.record_ids
        ),
    }
    return {
        t.full_name: special.get(t.full_name, generic)
        for t in ALL_TABLES
        if t.layer != "ops" or t.full_name in special
    }


@contextmanager
def _history_vacuum_allowed(spark: SparkSession) -> Iterator[None]:
    """Allow VACUUM below Delta's 7-day safety retention for the duration."""
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    before = spark.conf.get(key, "true")
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        spark.conf.set(key, before)


def _vacuum_all_history(spark: SparkSession, path: str) -> None:
    """VACUUM with zero retention: only the current version's files remain.

    LITE mode deletes the files the transaction log says were removed, without listing
    the table's folder (about 8x faster here); when the log no longer reaches back far
    enough for that, a full VACUUM lists and cleans everything.
    """
    try:
        spark.sql(f"VACUUM delta.`{path}` LITE RETAIN 0 HOURS")
    except Exception:  # noqa: BLE001 - Delta: "log entries ... cleaned up, use FULL"
        DeltaTable.forPath(spark, path).vacuum(0)


def _rebuild_online_store(spark: SparkSession, settings: Settings) -> bool:
    """Recreate the online store (outside the lakehouse) without the erased rows.

    Feast has no per-entity delete; the SQLite file is dropped and materialized again
    from the gold tables, which no longer hold the subject.
    """
    from riskcontrol import features, pipeline

    online = features.runtime_dir(settings) / "online_store.db"
    if not online.exists():
        return False
    online.unlink()
    features.materialize(
        features.feature_store(settings), pipeline.observation_time(spark, settings)
    )
    return True


def erase_customer(
    spark: SparkSession,
    settings: Settings,
    customer_id: str,
    requested_by: str,
    reason: str,
    progress: Callable[[str], None] = lambda _: None,
) -> ErasureResult:
    """Delete ``customer_id`` from every table and from its history; write the audit row."""
    subject = find_subject(spark, settings, customer_id)
    if not (subject.customer_keys or subject.application_ids or subject.loan_ids):
        raise LookupError(
            f"no customer {customer_id!r} in the lakehouse (looked in silver.customers, "
            "bronze.applications and bronze.loans); check the id with `riskctl tables`"
        )

    def erase_from(name: str, condition: Callable[[list[str]], Column]) -> int | None:
        table = next(t for t in ALL_TABLES if t.full_name == name)
        if not lakehouse.exists(spark, table, settings):
            return None
        path = table.path(settings)
        delta = DeltaTable.forPath(spark, path)
        before = delta.history(1).first()["version"]
        # No count first: a DELETE that matches nothing commits nothing, and one that
        # does reports how many rows it removed.
        delta.delete(condition(lakehouse.read(spark, table, settings).columns))
        last = delta.history(1).first()
        if last["version"] == before:
            return None
        n = int(last["operationMetrics"].get("numDeletedRows", "0"))
        progress(f"erase: {name}: {n} row(s) deleted; vacuuming its history")
        _vacuum_all_history(spark, path)
        return n

    # Tables are independent Delta logs: erase from several at once (Spark runs the
    # jobs of concurrent threads side by side).
    preds = predicates(subject, settings)
    with _history_vacuum_allowed(spark), ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(
            zip(preds, pool.map(lambda item: erase_from(*item), preds.items()), strict=True)
        )
    rows_deleted = {name: n for name, n in done.items() if n is not None}
    vacuumed = list(rows_deleted)
    if _rebuild_online_store(spark, settings):
        progress("erase: online feature store rebuilt from the erased gold tables")
        vacuumed.append("feature_store.online")
    erasure_id = f"erasure-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    audit = {
        "erasure_id": erasure_id,
        "subject_ref": pii.hmac_hex(customer_id.encode(), settings.pii_secret()),
        "requested_by": requested_by,
        "reason": reason,
        "tables": json.dumps(rows_deleted, sort_keys=True),
        "rows_deleted": sum(rows_deleted.values()),
        "vacuumed": ",".join(vacuumed),
        "erased_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    }
    lakehouse.merge(spark.createDataFrame([audit], OPS_ERASURES.schema), OPS_ERASURES, settings)
    progress(f"erase: {sum(rows_deleted.values())} row(s) from {len(rows_deleted)} table(s)")
    return ErasureResult(erasure_id, rows_deleted, vacuumed)
