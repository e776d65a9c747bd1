"""Delta IO for the catalog's tables: read, MERGE (never blind INSERT), versions.

Every write goes through ``merge``, ``overwrite`` or ``replace_where`` here, so
idempotency, schema validation and concurrency live in one place: re-running a step with
the same input changes nothing, and steps running at once (the Airflow tasks of one DAG
all write ``ops.manifest``) each land their rows. Writers of one table take turns on its
lock (``locks.table_lock``); a write Delta still refuses because another writer committed
first (a writer without the lock: another machine, an object-store lakehouse) is done
again from the start, re-reading the table, up to ``WRITE_ATTEMPTS`` times.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.core import locks, pii
from riskcontrol.core.catalog import ALL_TABLES, Table, validate
from riskcontrol.core.config import Settings

log = logging.getLogger(__name__)

# Delta refusing a commit because another writer committed to the table since this one
# read it (its Java exception classes), and the race of two first writers, where the
# second one's create finds the table already there (an error condition).
_CONFLICT = re.compile(
    r"io\.delta\.exceptions\.((?:Concurrent(?:Append|DeleteRead|DeleteDelete|Transaction"
    r"|Write)|MetadataChanged|ProtocolChanged)Exception)|\[(DELTA_PATH_EXISTS)\]"
)
WRITE_ATTEMPTS = 8
RETRY_PAUSE = 0.5  # seconds before the 2nd attempt; doubles each time, jittered
RETRY_PAUSE_MAX = 20.0


@dataclass(frozen=True)
class MergeResult:
    inserted: int
    updated: int


def delta_tables(root: str | Path) -> dict[str, Path]:
    """``layer.name`` -> folder of every Delta table under ``root``
    (``<layer>/<table>/_delta_log``), catalog or not, in name order."""
    root = Path(str(root))
    if not root.is_dir():
        return {}
    return {
        f"{log.parent.parent.name}.{log.parent.name}": log.parent
        for log in sorted(root.glob("*/*/_delta_log"))
    }


def exists(spark: SparkSession, table: Table, settings: Settings) -> bool:
    return DeltaTable.isDeltaTable(spark, table.path(settings))


def read(spark: SparkSession, table: Table, settings: Settings) -> DataFrame:
    """The table as a DataFrame; a clear error names the step that creates it."""
    if not exists(spark, table, settings):
        raise FileNotFoundError(
            f"{table.full_name} does not exist at {table.path(settings)}: run the step that "
            "writes it first (`riskctl run`, or the tier before this one)."
        )
    return spark.read.format("delta").load(table.path(settings))


def read_clear(spark: SparkSession, table: Table, settings: Settings) -> DataFrame:
    """The table with its encrypted columns decrypted (and typed back), in memory only.

    Encrypted columns are those whose field metadata says so (see
    ``pii.encrypt_columns``) and the table's declared ``sensitive`` ones.
    """
    df = read(spark, table, settings)
    names = list(dict.fromkeys([*pii.encrypted_columns(df), *table.sensitive]))
    names = [c for c in names if c in df.columns]
    if not names:
        return df
    return pii.decrypt_columns(df, table.full_name, settings, columns=names)


class ConcurrentWriteError(RuntimeError):
    """Other writers kept committing to a table first, ``WRITE_ATTEMPTS`` times in a row."""


def conflict(error: BaseException) -> str | None:
    """The Delta write conflict ``error`` reports (a Java class name such as
    ``ConcurrentAppendException``, or ``DELTA_PATH_EXISTS``); None for any other error.

    A Py4J error's text starts with the Java class; the errors PySpark and Delta convert
    keep the JVM stack trace, which starts with it, in ``_stackTrace``.
    """
    found = _CONFLICT.search(f"{error}\n{getattr(error, '_stackTrace', None) or ''}")
    return None if found is None else found.group(1) or found.group(2)


def _pause(attempt: int) -> float:
    """Seconds to wait after failed ``attempt``: doubling, and jittered so that writers
    that collided do not collide again."""
    return random.uniform(0.5, 1.0) * min(RETRY_PAUSE * 2 ** (attempt - 1), RETRY_PAUSE_MAX)


def _pause_or_raise(error: Exception, table: Table, attempt: int) -> None:
    """After failed ``attempt``: wait before the next one if ``error`` is a write conflict
    and attempts are left; else raise ``error``, or ``ConcurrentWriteError`` when the
    conflicts used up every attempt."""
    name = conflict(error)
    if name is None:
        raise error
    if attempt >= WRITE_ATTEMPTS:
        raise ConcurrentWriteError(
            f"{table.full_name}: another writer committed first {attempt} times in a row "
            f"({name}), so this write was not done. Run the step again; if it keeps "
            f"happening, let fewer tasks write {table.full_name} at once."
        ) from error
    pause = _pause(attempt)
    log.warning(
        "%s: another writer committed first (%s); writing again in %.1f s (attempt %d of %d)",
        table.full_name,
        name,
        pause,
        attempt + 1,
        WRITE_ATTEMPTS,
    )
    time.sleep(pause)


def _guarded(write):
    """Make ``write(df, table, settings, ...)`` safe next to other writers of the table.

    Each attempt holds the lakehouse lock shared (an erasure holds it alone) and the
    table's own lock, from its read of the table to its commit; an attempt Delta refuses
    with a write conflict is run again after a pause. Nothing of a refused attempt was
    committed, and the next one starts from the table as it is then (a MERGE finds the
    keys landed meanwhile and inserts only the others), so it lands what one writer
    alone would have.
    """

    @functools.wraps(write)
    def guarded(df: DataFrame, table: Table, settings: Settings, *args, **kwargs):
        attempt = 1
        while True:
            try:
                with (
                    locks.lakehouse_lock(settings, waiting=log.warning),
                    locks.table_lock(settings, table.full_name),
                ):
                    return write(df, table, settings, *args, **kwargs)
            except Exception as error:
                _pause_or_raise(error, table, attempt)
            attempt += 1

    return guarded


# Tables (by path) this process has seen with every declared column: columns are only
# ever added, so once is enough (the manifest is written after every step).
_COMPLETE: set[str] = set()


def add_missing_columns(spark: SparkSession, table: Table, settings: Settings) -> None:
    """Give a table written by an earlier release the columns declared since (null on its
    old rows), so that appending to it keeps working after an upgrade; under the table's
    lock, and retried on a write conflict, like every other write. Checked once per
    table and process."""
    path = table.path(settings)
    if path in _COMPLETE:
        return

    def alter(_df, table: Table, settings: Settings) -> None:
        if not exists(spark, table, settings):
            return
        have = set(read(spark, table, settings).columns)
        new = [f for f in table.schema.fields if f.name not in have]
        if new:
            columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in new)
            spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({columns})")
        _COMPLETE.add(path)

    _guarded(alter)(None, table, settings)


def _write_new(df: DataFrame, table: Table, settings: Settings) -> None:
    writer = df.write.format("delta").mode("errorifexists")
    if table.partition_by:
        writer = writer.partitionBy(*table.partition_by)
    writer.save(table.path(settings))


@_guarded
def overwrite(df: DataFrame, table: Table, settings: Settings) -> None:
    """Replace the table's content (used for derived tables rebuilt from their inputs)."""
    df = validate(df, table)
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if table.partition_by:
        writer = writer.partitionBy(*table.partition_by)
    writer.save(table.path(settings))


def changed(table: Table, ignore: tuple[str, ...] = ()) -> str:
    """MERGE ``update_when`` condition: a matched row is updated only when a column of
    ``table`` other than ``ignore`` (e.g. run bookkeeping) differs. Maps have no equality
    in Spark SQL: they are compared as JSON."""

    def differs(f) -> str:
        if isinstance(f.dataType, T.MapType):
            return f"NOT (to_json(t.`{f.name}`) <=> to_json(s.`{f.name}`))"
        return f"NOT (t.`{f.name}` <=> s.`{f.name}`)"

    return " OR ".join(differs(f) for f in table.schema.fields if f.name not in ignore)


@_guarded
def append(df: DataFrame, table: Table, settings: Settings, tag: str) -> int:
    """Add ``df``'s rows to ``table`` (created when new) in a commit tagged ``tag`` (its
    ``userMetadata``: an attempt id, nothing personal); returns the rows that commit
    wrote (Delta's ``numOutputRows``).

    For logs whose every row is new by construction (a fresh attempt id in the key: the
    manifest, the quarantine), where a MERGE would only search for keys that cannot be
    there: one job and one commit instead of a scan, a join and a MERGE. Appends do not
    conflict with each other; the tag finds this commit among other writers' ones."""
    df = validate(df, table)
    spark = df.sparkSession
    writer = df.write.format("delta").option("userMetadata", tag)
    if not exists(spark, table, settings):
        writer = writer.mode("errorifexists")
        if table.partition_by:
            writer = writer.partitionBy(*table.partition_by)
    else:
        writer = writer.mode("append")
        if not table.strict:
            writer = writer.option("mergeSchema", "true")
    writer.save(table.path(settings))
    mine = (
        DeltaTable.forPath(spark, table.path(settings))
        .history(100)
        .where(F.col("userMetadata") == tag)
        .select("operationMetrics")
        .first()
    )
    if mine is None:
        raise RuntimeError(f"{table.full_name}: the commit of {tag} is not in its last 100")
    return int((mine["operationMetrics"] or {}).get("numOutputRows", "0"))


@_guarded
def replace_where(df: DataFrame, table: Table, settings: Settings, condition: str) -> int:
    """Replace the rows matching ``condition`` (e.g. one day) with ``df``; returns rows written.

    Every row of ``df`` must match ``condition`` (Delta checks it): a re-run of the same
    day replaces that day and touches no other.
    """
    df = validate(df, table)
    if not exists(df.sparkSession, table, settings):
        _write_new(df, table, settings)
    else:
        df.write.format("delta").mode("overwrite").option("replaceWhere", condition).save(
            table.path(settings)
        )
    return read(df.sparkSession, table, settings).where(condition).count()


@_guarded
def merge(
    df: DataFrame,
    table: Table,
    settings: Settings,
    keys: tuple[str, ...] | None = None,
    update_when: str | None = None,
    insert_only: bool = False,
    unique: bool = False,
) -> MergeResult:
    """Upsert ``df`` into ``table`` on ``keys`` (default: the table's keys).

    ``insert_only`` lands rows whose key is new and leaves existing ones untouched
    (append-only logs such as bronze and the quarantine). ``update_when`` is a SQL
    condition on aliases ``t`` (target) and ``s`` (source) that must hold for a matched
    row to be updated, e.g. ``"s.updated_at > t.updated_at"``. ``unique``: the caller
    counted no two rows of ``df`` with the same keys, so the first write of the table
    needs no de-duplication (a shuffle of every row).
    """
    df = validate(df, table)
    keys = keys or table.keys
    if not keys:
        raise ValueError(f"{table.full_name} has no keys to merge on")
    spark = df.sparkSession
    if not exists(spark, table, settings):
        # First write: still de-duplicate on the keys so the result equals a merge.
        first = df if unique else df.dropDuplicates(list(keys))
        _write_new(first, table, settings)
        # Counted by the write itself (its commit's metrics), not by reading the table again.
        metrics = (
            DeltaTable.forPath(spark, table.path(settings)).history(1).first()["operationMetrics"]
        )
        return MergeResult(inserted=int((metrics or {}).get("numOutputRows", "0")), updated=0)
    source = df.dropDuplicates(list(keys))
    if insert_only:
        # Rows whose key is already there would not be inserted: finding the new ones on
        # the key columns first skips the commit when there are none, and keeps a re-run
        # of a large input cheap (Delta materializes a MERGE's whole source).
        source = _not_in(source, read(spark, table, settings), keys)
        if source.isEmpty():
            return MergeResult(inserted=0, updated=0)
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    builder = (
        DeltaTable.forPath(spark, table.path(settings))
        .alias("t")
        .merge(source.alias("s"), condition)
    )
    if not table.strict:
        # As received: a column the source adds later is added to the table (and, in
        # bronze, arrives encrypted like every non-key column), never silently dropped.
        builder = builder.withSchemaEvolution()
    if not insert_only:
        builder = builder.whenMatchedUpdateAll(condition=update_when)
    metrics = builder.whenNotMatchedInsertAll().execute().first()
    return MergeResult(
        inserted=int(metrics["num_inserted_rows"]), updated=int(metrics["num_updated_rows"])
    )


def _not_in(df: DataFrame, target: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """Rows of ``df`` whose keys are not in ``target`` (null-safe, like the MERGE)."""
    existing = target.select(*[F.col(f"`{k}`").alias(f"__t{i}") for i, k in enumerate(keys)])
    on = [df[f"`{k}`"].eqNullSafe(existing[f"__t{i}"]) for i, k in enumerate(keys)]
    return df.join(existing, on=on, how="left_anti")


def version(spark: SparkSession, table: Table, settings: Settings) -> int | None:
    if not exists(spark, table, settings):
        return None
    return snapshot_version(spark, table.path(settings))


def snapshot_version(spark: SparkSession, path: str) -> int:
    """The Delta table's latest version, from its log in the driver (no Spark job, as
    ``history(1)`` runs: a quarter of ``riskctl tables`` on a fresh session)."""
    jvm = spark._jvm
    log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    return int(log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty()).version())


@dataclass(frozen=True)
class TableStatus:
    full_name: str
    rows: int | None
    version: int | None
    path: str
    description: str


def status(spark: SparkSession, settings: Settings) -> list[TableStatus]:
    """Every catalog table with its row count and Delta version (None: not created yet)."""
    out = []
    for t in ALL_TABLES:
        path = t.path(settings)
        present = exists(spark, t, settings)  # once: read and version would ask again
        out.append(
            TableStatus(
                t.full_name,
                spark.read.format("delta").load(path).count() if present else None,
                snapshot_version(spark, path) if present else None,
                path,
                t.description,
            )
        )
    return out


def table_versions(spark: SparkSession, tables: list[Table], settings: Settings) -> dict[str, int]:
    """Delta versions of ``tables`` (lineage for a model run)."""
    return {t.full_name: version(spark, t, settings) for t in tables}
