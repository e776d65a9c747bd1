"""Delta IO for the catalog's tables: read, MERGE (never blind INSERT), versions.

Every write goes through ``merge`` or ``overwrite`` here, so idempotency and schema
validation live in one place: re-running a step with the same input changes nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.core import locks, pii
from riskcontrol.core.catalog import ALL_TABLES, Table, validate
from riskcontrol.core.config import Settings


@dataclass(frozen=True)
class MergeResult:
    inserted: int
    updated: int


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


def _locked(write):
    """Run a write under the shared lakehouse lock (an erasure holds it exclusively)."""

    @functools.wraps(write)
    def locked(df: DataFrame, table: Table, settings: Settings, *args, **kwargs):
        with locks.lakehouse_lock(settings):
            return write(df, table, settings, *args, **kwargs)

    return locked


def _write_new(df: DataFrame, table: Table, settings: Settings) -> None:
    writer = df.write.format("delta").mode("errorifexists")
    if table.partition_by:
        writer = writer.partitionBy(*table.partition_by)
    writer.save(table.path(settings))


@_locked
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


@_locked
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


@_locked
def merge(
    df: DataFrame,
    table: Table,
    settings: Settings,
    keys: tuple[str, ...] | None = None,
    update_when: str | None = None,
    insert_only: bool = False,
) -> MergeResult:
    """Upsert ``df`` into ``table`` on ``keys`` (default: the table's keys).

    ``insert_only`` lands rows whose key is new and leaves existing ones untouched
    (append-only logs such as bronze and the quarantine). ``update_when`` is a SQL
    condition on aliases ``t`` (target) and ``s`` (source) that must hold for a matched
    row to be updated, e.g. ``"s.updated_at > t.updated_at"``.
    """
    df = validate(df, table)
    keys = keys or table.keys
    if not keys:
        raise ValueError(f"{table.full_name} has no keys to merge on")
    spark = df.sparkSession
    if not exists(spark, table, settings):
        # First write: still de-duplicate on the keys so the result equals a merge.
        first = df.dropDuplicates(list(keys))
        _write_new(first, table, settings)
        return MergeResult(inserted=read(spark, table, settings).count(), updated=0)
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
    return DeltaTable.forPath(spark, table.path(settings)).history(1).first()["version"]


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
        present = exists(spark, t, settings)
        out.append(
            TableStatus(
                t.full_name,
                read(spark, t, settings).count() if present else None,
                version(spark, t, settings) if present else None,
                t.path(settings),
                t.description,
            )
        )
    return out


def table_versions(spark: SparkSession, tables: list[Table], settings: Settings) -> dict[str, int]:
    """Delta versions of ``tables`` (lineage for a model run)."""
    return {t.full_name: version(spark, t, settings) for t in tables}
