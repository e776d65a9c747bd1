"""Key rotation: re-encrypt everything bronze holds under the active key.

Rotating the bronze key is three steps, none of which needs the pipeline to stop
reading: (1) set ``RISK_BRONZE_KEY`` to a new key and list the old one in
``RISK_BRONZE_RETIRED_KEYS`` (values under it stay readable); (2) ``riskctl
rotate-keys`` rewrites every encrypted column of every Delta table under the lakehouse
root whose values are not all under the active key, and VACUUMs the old files away;
(3) remove the old key from ``RISK_BRONZE_RETIRED_KEYS``. A value under a key that is
in neither variable fails with a message naming both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from riskcontrol.core import lakehouse, pii
from riskcontrol.core.catalog import ALL_TABLES
from riskcontrol.core.config import Settings


@dataclass(frozen=True)
class Rotated:
    table: str
    columns: tuple[str, ...]
    stale_values: int


def _sensitive(name: str) -> tuple[str, ...]:
    return next((t.sensitive for t in ALL_TABLES if t.full_name == name), ())


def _encrypted(df: DataFrame, name: str) -> list[str]:
    declared = [c for c in _sensitive(name) if c in df.columns]
    return list(dict.fromkeys([*pii.encrypted_columns(df), *declared]))


def stale_count(df: DataFrame, columns: list[str], settings: Settings) -> int:
    """Rows holding a ciphertext under a key other than the active one."""
    active = f"{pii.ENCRYPTED_PREFIX}{pii.key_id(settings.bronze_secret())}:"
    stale = [
        F.col(f"`{c}`").startswith(pii.ANY_PREFIX) & ~F.col(f"`{c}`").startswith(active)
        for c in columns
    ]
    cond = stale[0]
    for s in stale[1:]:
        cond = cond | s
    return df.where(F.coalesce(cond, F.lit(False))).count()


def rotate_table(
    spark: SparkSession, name: str, path: str, settings: Settings, dry_run: bool = False
) -> Rotated | None:
    """Re-encrypt ``path``'s encrypted columns under the active key; None if none stale."""
    df = spark.read.format("delta").load(path)
    columns = _encrypted(df, name)
    if not columns:
        return None
    n = stale_count(df, columns, settings)
    if not n or dry_run:
        return Rotated(name, tuple(columns), n) if n else None
    fields = {f.name: f for f in df.schema.fields}

    def resealed(c: str):
        aad = (fields[c].metadata.get(pii.META) or {}).get("aad", f"{name}.{c}")
        clear = pii.decrypt(f"`{c}`", aad, settings)
        return pii.encrypt(clear, aad, settings).alias(c, metadata=fields[c].metadata)

    rewritten = df.withColumns({c: resealed(c) for c in columns})
    partitions = DeltaTable.forPath(spark, path).detail().first()["partitionColumns"]
    # The rewrite reads the version it replaces: materialize first (Delta's own
    # snapshot isolation makes the overwrite atomic for readers).
    rewritten = rewritten.localCheckpoint()
    writer = rewritten.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if partitions:
        writer = writer.partitionBy(*partitions)
    writer.save(path)
    return Rotated(name, tuple(columns), n)


def rotate_all(
    spark: SparkSession,
    settings: Settings,
    dry_run: bool = False,
    vacuum: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Rotated]:
    """Rotate every table; VACUUM the rewritten ones so old ciphertexts leave the disk."""
    done = []
    for name, folder in lakehouse.delta_tables(settings.lakehouse_root).items():
        path = str(folder)
        result = rotate_table(spark, name, path, settings, dry_run)
        if result is None:
            continue
        done.append(result)
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        n, cols = result.stale_values, len(result.columns)
        progress(f"rotate-keys: {name}: {verb} {n} row(s) in {cols} column(s)")
        if vacuum and not dry_run:
            _vacuum(spark, path)
    return done


def _vacuum(spark: SparkSession, path: str) -> None:
    """Remove the files of earlier versions, which hold values under the old key."""
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    before = spark.conf.get(key, "true")
    spark.conf.set(key, "false")
    try:
        DeltaTable.forPath(spark, path).vacuum(0)
    finally:
        spark.conf.set(key, before)
