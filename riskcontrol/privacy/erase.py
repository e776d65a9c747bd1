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

import contextlib
import datetime as dt
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.analyze import feature_store
from riskcontrol.core import lakehouse, locks, pii
from riskcontrol.core.catalog import (
    ALL_TABLES,
    BRONZE_APPLICATIONS,
    BRONZE_COURT_RECORDS,
    BRONZE_CUSTOMERS,
    BRONZE_LOANS,
    BRONZE_NEWS,
    BRONZE_PENALTIES,
    GOLD_DECISION_LOG,
    GOLD_DECISION_REVIEWS,
    OPS_ERASURES,
    SILVER_CUSTOMERS,
    SILVER_ENTITY_LINKS,
    SUBJECT_PROPERTY,
    Table,
)
from riskcontrol.core.config import Settings
from riskcontrol.core.dates import observation_time
from riskcontrol.core.spark import sql_conf


@dataclass
class Subject:
    """Everything that identifies one customer's rows across the lakehouse."""

    customer_id: str
    customer_keys: list[str] = field(default_factory=list)
    application_ids: list[str] = field(default_factory=list)
    loan_ids: list[str] = field(default_factory=list)
    record_ids: list[str] = field(default_factory=list)  # linked public records
    urls: list[str] = field(default_factory=list)  # pages those records came from
    # national ID, mobile and name, from bronze (decrypted in memory): a quarantined row
    # may name the person by those only
    identity: list[str] = field(default_factory=list)
    # the keyed pseudonym of customer_id: how the decision service's log names the
    # customer (and how ops.erasures names the subject)
    ref: str = ""

    def ids(self) -> list[str]:
        return [self.customer_id, *self.application_ids, *self.loan_ids]


class Store(Protocol):
    """A store outside the lakehouse holding a subject's rows under its pseudonym."""

    def holds(self, ref: str) -> bool: ...

    def erase(self, ref: str) -> int:
        """Delete the subject's rows, leaving no copy in the store's files; how many."""
        ...


def _has_rows(rows: DataFrame | None) -> bool:
    return rows is not None and not rows.isEmpty()


@dataclass(frozen=True)
class ErasureResult:
    erasure_id: str
    rows_deleted: dict[str, int]
    vacuumed: list[str]


# Tables whose rows name the subject's other identifiers: erased last, in this order, so
# an erasure cut short (a crash, a kill) finds the same identifiers again when re-run.
KEY_TABLES = (
    "bronze.penalties",  # -> urls of the pages naming the subject
    "bronze.news_articles",
    "bronze.court_records",
    "silver.entity_links",  # -> record ids of the public records naming the subject
    "bronze.applications",  # -> application ids
    "bronze.loans",  # -> loan ids
    "silver.customers",  # -> customer keys (pseudonyms)
)


def _ids(spark: SparkSession, values: list[str], name: str = "__v") -> DataFrame:
    """A one-column DataFrame of ``values``: joined against, never inlined as literals."""
    return spark.createDataFrame(
        [(v,) for v in values], T.StructType([T.StructField(name, T.StringType())])
    )


def _semi(df: DataFrame, col: str, ids: DataFrame) -> DataFrame:
    """``df``'s rows whose ``col`` is one of ``ids``: a broadcast join (the ids are a
    handful), so the scan needs no shuffle and no extra Spark stage."""
    return df.join(F.broadcast(ids), df[col] == ids["__v"], "left_semi")


def _values(
    spark: SparkSession, settings: Settings, table: Table, by: str, values: list[str], col: str
):
    if not values or not lakehouse.exists(spark, table, settings):
        return []
    # Raw tables keep most columns encrypted (bronze.loans' customer_id among them).
    df = lakehouse.read_clear(spark, table, settings)
    if col not in df.columns or by not in df.columns:
        return []
    rows = _semi(df, by, _ids(spark, values)).select(col).collect()
    return sorted({r[0] for r in rows if r[0]})


def find_subject(spark: SparkSession, settings: Settings, customer_id: str) -> Subject:
    """Collect the keys of a customer's rows from silver and bronze (read queries only)."""

    me = [customer_id]
    subject = Subject(customer_id, ref=pii.hmac_hex(customer_id.encode(), settings.pii_secret()))
    subject.customer_keys = _values(
        spark, settings, SILVER_CUSTOMERS, "customer_id", me, "customer_key"
    )
    subject.application_ids = _values(
        spark, settings, BRONZE_APPLICATIONS, "customer_id", me, "application_id"
    )
    subject.loan_ids = _values(spark, settings, BRONZE_LOANS, "customer_id", me, "loan_id")
    if lakehouse.exists(spark, SILVER_ENTITY_LINKS, settings):
        links = lakehouse.read(spark, SILVER_ENTITY_LINKS, settings).where(
            F.col("entity_type") == "customer"
        )
        rows = _semi(links, "customer_id", _ids(spark, me)).select("record_id")
        subject.record_ids = sorted({r[0] for r in rows.collect() if r[0]})
    subject.urls = sorted(
        {
            url
            for table in (BRONZE_COURT_RECORDS, BRONZE_PENALTIES, BRONZE_NEWS)
            for url in _values(spark, settings, table, "record_id", subject.record_ids, "url")
        }
    )
    if lakehouse.exists(spark, BRONZE_CUSTOMERS, settings):
        people = _semi(
            lakehouse.read_clear(spark, BRONZE_CUSTOMERS, settings), "customer_id", _ids(spark, me)
        )
        cols = [c for c in ("national_id", "mobile", "name") if c in people.columns]
        subject.identity = sorted(
            {str(v) for r in people.select(*cols).collect() for v in r if v and len(str(v)) >= 2}
        )
    return subject


def _token_matcher(values: list[str]):
    """A boolean Arrow UDF: the text names one of ``values`` as a whole token.

    The values travel in the function's closure (pickled to the Python workers), not in
    the plan: the plan and the Delta log show only the UDF's name.
    """
    pattern = re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, values)) + r")(?![\w-])")

    def match(texts: pd.Series) -> pd.Series:
        return texts.map(lambda t: bool(t) and pattern.search(t) is not None).astype(bool)

    return F.pandas_udf(match, T.BooleanType())


def _json_field_matcher(field_name: str, values: list[str]):
    """A boolean Arrow UDF: the JSON text's top-level ``field_name`` is one of ``values``."""
    wanted = set(values)

    def match(texts: pd.Series) -> pd.Series:
        def one(t):
            if not t:
                return False
            try:
                v = json.loads(t)
            except ValueError:
                return False
            return isinstance(v, dict) and str(v.get(field_name)) in wanted

        return texts.map(one).astype(bool)

    return F.pandas_udf(match, T.BooleanType())


def subject_rows(
    spark: SparkSession, settings: Settings, subject: Subject, table: Table
) -> DataFrame | None:
    """The keys (``table.keys``) of the subject's rows in ``table``, from read queries.

    A table is matched by every column of it that identifies the subject; raw payloads
    are searched after decryption, the quarantine by the ids its records name.
    """
    if not lakehouse.exists(spark, table, settings):
        return None
    s = subject
    df = lakehouse.read_clear(spark, table, settings)
    keys = [k for k in table.keys if k in df.columns] or df.columns
    special = {
        "bronze.bureau_reports": ("payload", _json_field_matcher("query_ref", s.application_ids)),
        "bronze.app_events": ("payload", _json_field_matcher("customer_id", [s.customer_id])),
        "bronze.service_notes": ("payload", _token_matcher([f"customer={s.customer_id}"])),
        "ops.quarantine": ("record", _token_matcher(s.ids() + s.record_ids + s.identity)),
        # data-quality results quote offending ids as examples
        "ops.dq_results": ("observed", _token_matcher(s.ids())),
    }
    if table.full_name in special:
        col, matcher = special[table.full_name]
        if table.full_name == "bronze.bureau_reports" and not s.application_ids:
            return None
        return df.where(matcher(F.col(col))).select(*keys)
    if table.full_name in (GOLD_DECISION_LOG.full_name, GOLD_DECISION_REVIEWS.full_name):
        # the decision service names a customer by the pseudonym of the id it was sent
        return _semi(df, "customer_key", _ids(spark, [s.ref])).select(*keys)
    if table.layer == "ops":
        return None
    by_column = [
        ("customer_id", [s.customer_id]),
        ("customer_key", s.customer_keys),
        ("application_id", s.application_ids),
        ("loan_id", s.loan_ids),
        ("record_id", s.record_ids),
        ("url", s.urls),
    ]
    parts = [
        _semi(df, col, _ids(spark, values)).select(*keys)
        for col, values in by_column
        if col in df.columns and values
    ]
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out  # a row found by two columns comes twice: delete_rows drops repeats


@dataclass(frozen=True)
class UserTable:
    """A table the user landed (``riskctl ingest-file``) with a declared subject column."""

    full_name: str
    path: str
    subject_column: str


def user_tables(spark: SparkSession, settings: Settings) -> list[UserTable]:
    """Delta tables outside the catalog whose property names the data subject's column."""

    catalog = {t.full_name for t in ALL_TABLES}
    found = []
    for name, folder in lakehouse.delta_tables(settings.lakehouse_root).items():
        if name in catalog:
            continue
        path = str(folder)
        props = DeltaTable.forPath(spark, path).detail().first()["properties"] or {}
        if props.get(SUBJECT_PROPERTY):
            found.append(UserTable(name, path, props[SUBJECT_PROPERTY]))
    return found


def user_subject_rows(
    spark: SparkSession, settings: Settings, subject: Subject, table: UserTable
) -> DataFrame | None:
    """The stored values of ``table``'s subject column that are the subject's.

    The column may hold the id in clear, encrypted (bronze: equal values encrypt
    equally) or as its pseudonym (silver); every row holding one of those values is the
    subject's, so the stored values themselves are the keys to delete on.
    """
    df = spark.read.format("delta").load(table.path)
    col = table.subject_column
    if col not in df.columns:
        return None
    stored = F.col(f"`{col}`")
    if pii.encrypted_columns(df.select(col)):
        meta = df.schema[col].metadata.get(pii.META) or {}
        stored = pii.decrypt(stored, meta.get("aad", f"{table.full_name}.{col}"), settings)
    clear = df.select(col, stored.cast("string").alias("__clear"))
    wanted = [
        subject.customer_id,
        pii.hmac_hex(subject.customer_id.encode(), settings.pii_secret()),
    ]
    ids = _ids(spark, wanted)
    return clear.join(F.broadcast(ids), clear["__clear"] == ids["__v"], "left_semi").select(col)


def _unique(rows: list) -> list:
    """``rows`` without repeats, in order (a key may hold an array: compared as text)."""
    seen: set = set()
    out = []
    for r in rows:
        try:
            hash(r)
            mark = r
        except TypeError:
            mark = repr(tuple(r))
        if mark not in seen:
            seen.add(mark)
            out.append(r)
    return out


def delete_rows(
    spark: SparkSession, settings: Settings, table: Table | UserTable, rows: DataFrame
) -> int:
    """Delete the rows of ``table`` whose keys are in ``rows``: a MERGE joined on the keys.

    The MERGE condition holds column names only (``t.k <=> s.k``): Delta records it in
    ``commitInfo``, and no identifier may end up there. (A DELETE with a Python UDF
    predicate is no alternative: Delta finds the files to rewrite through the file name
    of each matching row, which Arrow UDFs lose, and misses rows silently.)
    """
    # The subject's rows are few: taken to the driver, the MERGE source is a plain local
    # relation (no decryption UDF inside the MERGE, whose file lookup Arrow UDFs confuse).
    found = _unique(rows.collect())  # repeats dropped here, not by a shuffle
    if not found:
        return 0
    rows = spark.createDataFrame(found, rows.schema)
    keys = rows.columns
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    path = table.path if isinstance(table, UserTable) else table.path(settings)
    # Counted by the MERGE itself (the metrics it returns), not by reading the history.
    metrics = (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(rows.alias("s"), on)
        .whenMatchedDelete()
        .execute()
        .first()
    )
    return int(metrics["num_deleted_rows"])


# For the erasure's duration: VACUUM below Delta's 7-day safety retention; a MERGE
# source is not copied first (the deletions' sources are small local relations, the
# same on every read), which saves a Spark job per table; and a full VACUUM lists a
# table's folder in a few tasks, not Spark's default 10,000 (measured: after a first
# erasure has truncated the logs, every later one takes the full path, and a 1,500-
# customer book's erasure ran 134,000 tasks).
_ERASURE_CONF = {
    "spark.databricks.delta.retentionDurationCheck.enabled": "false",
    "spark.databricks.delta.merge.materializeSource": "none",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "8",
    # No VACUUM START and END commits: the log is truncated right after, and they cost two
    # commits per table (the erasure's own MERGE, tagged with its id, stays the last one).
    "spark.databricks.delta.vacuum.logging.enabled": "false",
}


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

    online = feature_store.runtime_dir(settings) / "online_store.db"
    if not online.exists():
        return False
    online.unlink()
    feature_store.materialize(
        feature_store.feature_store(settings), observation_time(spark, settings)
    )
    return True


def _truncate_log(spark: SparkSession, path: str) -> int:
    """Checkpoint the table, then delete every log entry before the checkpoint.

    Delta's JSON commits keep per-file statistics (the minimum and maximum of each
    column, an id among them) for every version; VACUUM removes old data files, not those
    entries. After the checkpoint the table reads from it alone. Returns entries removed.
    """
    jvm = spark._jvm
    version = lakehouse.snapshot_version(spark, path)
    jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path).checkpoint()
    log_dir = jvm.org.apache.hadoop.fs.Path(f"{path.rstrip('/')}/_delta_log")
    fs = log_dir.getFileSystem(spark._jsc.hadoopConfiguration())
    removed = 0
    for status in fs.listStatus(log_dir):
        name = status.getPath().getName()
        stem = name.lstrip(".").split(".")[0]
        if not (stem.isdigit() and len(stem) == 20 and int(stem) < version):
            continue
        fs.delete(status.getPath(), False)
        removed += 1
    return removed


def _deleted_by(spark: SparkSession, path: str, erasure_id: str) -> int:
    """Rows the MERGE commits tagged with ``erasure_id`` deleted from a table: what an
    attempt of the erasure cut short (a kill) deleted before it could record it."""
    if not DeltaTable.isDeltaTable(spark, path):
        return 0
    history = (
        DeltaTable.forPath(spark, path)
        .history()
        .where((F.col("userMetadata") == erasure_id) & (F.col("operation") == "MERGE"))
    )
    return sum(
        int((r.operationMetrics or {}).get("numTargetRowsDeleted", "0"))
        for r in history.select("operationMetrics").collect()
    )


def _forget(spark: SparkSession, path: str) -> None:
    """Make the erasure final: old data files vacuumed, old log entries removed."""
    _vacuum_all_history(spark, path)
    _truncate_log(spark, path)


def _pending(spark: SparkSession, settings: Settings, subject_ref: str) -> dict | None:
    """The unfinished erasure of this subject, if one was cut short."""
    if not lakehouse.exists(spark, OPS_ERASURES, settings):
        return None
    df = lakehouse.read(spark, OPS_ERASURES, settings)
    if "status" not in df.columns:
        return None
    rows = [r.asDict() for r in df.where(F.col("status") == "pending").collect()]
    return next((r for r in rows if r["subject_ref"] == subject_ref), None)


def erase_customer(
    spark: SparkSession,
    settings: Settings,
    customer_id: str,
    requested_by: str,
    reason: str,
    progress: Callable[[str], None] = lambda _: None,
    stores: Mapping[str, Store] | None = None,
) -> ErasureResult:
    """Delete ``customer_id`` from every table and from its history; write the audit row.

    ``stores`` are places outside the lakehouse that hold the subject too, by name (the
    decision service's journal): each is a ``Store`` and is erased first, so nothing
    there can be landed into a table again after it was erased from it; its count goes
    into the audit row under its name.

    The audit row is written first (status ``pending``), again with every table's count
    once the rows are deleted and before any history is removed, and last as ``done``.
    Tables that only other tables' rows lead to go first, the tables naming the
    subject's identifiers last (``KEY_TABLES``), so an erasure stopped half-way (an error,
    a ``kill -9``) is finished by running it again: it resumes the pending row. The whole
    erasure holds the lakehouse lock alone (``riskcontrol.core.locks``): pipeline writes wait.
    """
    stores = dict(stores or {})
    with locks.lakehouse_lock(settings, exclusive=True, waiting=progress):
        subject = find_subject(spark, settings, customer_id)
        ref = subject.ref
        pending = _pending(spark, settings, ref)
        users = user_tables(spark, settings)
        in_user_tables = any(
            _has_rows(user_subject_rows(spark, settings, subject, t)) for t in users
        )
        in_stores = any(store.holds(ref) for store in stores.values())
        in_service_log = _has_rows(subject_rows(spark, settings, subject, GOLD_DECISION_LOG))
        if pending is None and not (
            subject.customer_keys
            or subject.application_ids
            or subject.loan_ids
            or in_user_tables
            or in_stores
            or in_service_log
        ):
            raise LookupError(
                f"no customer {customer_id!r} in the lakehouse (looked in silver.customers, "
                "bronze.applications, bronze.loans, gold.decision_log, the subject column "
                "of every table landed with --subject-column and "
                f"{', '.join(stores) or 'no other store'}); check the id with `riskctl tables`"
            )
        if pending is not None:
            progress(f"erase: resuming {pending['erasure_id']}, cut short before")
            erasure_id = pending["erasure_id"]
            rows_deleted: dict[str, int] = json.loads(pending["tables"] or "{}")
            vacuumed = [v for v in (pending["vacuumed"] or "").split(",") if v]
        else:
            stamp = dt.datetime.now(dt.UTC)
            erasure_id = f"erasure-{stamp:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
            rows_deleted, vacuumed = {}, []
        audit_lock = threading.Lock()

        def audit(status: str) -> None:
            row = {
                "erasure_id": erasure_id,
                "subject_ref": ref,
                "requested_by": requested_by,
                "reason": reason,
                "tables": json.dumps(rows_deleted, sort_keys=True),
                "rows_deleted": sum(rows_deleted.values()),
                "vacuumed": ",".join(vacuumed),
                "erased_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                "status": status,
            }
            frame = spark.createDataFrame([row], OPS_ERASURES.schema)
            lakehouse.merge(frame, OPS_ERASURES, settings)

        audit("pending")
        for name, store in stores.items():
            n = store.erase(ref)
            if n:
                rows_deleted[name] = rows_deleted.get(name, 0) + n
                vacuumed.append(name)  # the store removes what it deleted from its files
                audit("pending")
                progress(f"erase: {name}: {n} row(s) deleted")

        def delete_from(table: Table | UserTable) -> None:
            if isinstance(table, UserTable):
                rows = user_subject_rows(spark, settings, subject, table)
                path = table.path
            else:
                rows = subject_rows(spark, settings, subject, table)
                path = table.path(settings)
            name = table.full_name
            n = 0 if rows is None else delete_rows(spark, settings, table, rows)
            if not n and pending is not None and name not in rows_deleted:
                # An attempt killed between its deletion and the audit row: the rows are
                # gone, their history is not, and only the tagged commit counts them.
                n = _deleted_by(spark, path, erasure_id)
            if n:
                with audit_lock:
                    rows_deleted[name] = rows_deleted.get(name, 0) + n
                progress(f"erase: {name}: {rows_deleted[name]} row(s) deleted")

        def forget(table: Table | UserTable) -> None:
            _forget(spark, table.path if isinstance(table, UserTable) else table.path(settings))
            with audit_lock:
                vacuumed.append(table.full_name)
            progress(f"erase: {table.full_name}: history removed")

        by_name = {t.full_name: t for t in ALL_TABLES}
        first: list[Table | UserTable] = [t for t in ALL_TABLES if t.full_name not in KEY_TABLES]
        first += users
        # Every Delta commit of the erasure carries its id as user metadata: a resumed
        # erasure finds the deletions of an attempt cut short.
        tagged = {"spark.databricks.delta.commitInfo.userMetadata": erasure_id}
        with sql_conf(spark, {**_ERASURE_CONF, **tagged}):
            # Two passes. First the deletions: tables are independent Delta logs, erased
            # from several at once (Spark runs the jobs of concurrent threads side by
            # side), the key tables last. Then one audit row holds every count, and only
            # then is history removed: until it is, a resumed erasure counts what a
            # killed attempt deleted from the tagged commits. (One audit row per table,
            # each a MERGE into ops.erasures, was a third of a 1,500-customer erasure.)
            try:
                with ThreadPoolExecutor(max_workers=4) as pool:
                    list(pool.map(delete_from, first))
                for name in KEY_TABLES:
                    delete_from(by_name[name])
            except Exception:
                # An error, not a kill: what was deleted is counted now (an audit that
                # fails too leaves it to the tagged commits, and the first error stands).
                with contextlib.suppress(Exception):
                    audit("pending")
                raise
            audit("pending")
            done = set(vacuumed)
            history = [
                t
                for t in [*first, *(by_name[n] for n in KEY_TABLES)]
                if t.full_name in rows_deleted and t.full_name not in done
            ]
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(forget, history))
        if _rebuild_online_store(spark, settings):
            progress("erase: online feature store rebuilt from the erased gold tables")
            vacuumed.append("feature_store.online")
        audit("done")
    progress(f"erase: {sum(rows_deleted.values())} row(s) from {len(rows_deleted)} table(s)")
    return ErasureResult(erasure_id, dict(sorted(rows_deleted.items())), vacuumed)
