"""Copy the generated lending book into another database (PostgreSQL, MySQL) over JDBC.

The generator writes SQLite, where dates and timestamps are text. A real lending system
keeps them as ``date`` and ``timestamp`` columns, so the copy gives every ``*_at`` and
``*_date`` column the type its values have; a value that fits neither stops the copy
with the column named, rather than arriving as null.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.collect.extracts import JDBC_SOURCES, jdbc_driver, read_jdbc, redact
from riskcontrol.core.config import Settings

_DATE = r"^\d{4}-\d{2}-\d{2}$"
_TIMESTAMP = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$"


def temporal_types(df: DataFrame) -> dict[str, str]:
    """``{column: "date" | "timestamp"}`` for text ``*_at``/``*_date`` columns whose values fit.

    A column fits "date" when every non-null value is ``yyyy-MM-dd`` and "timestamp" when
    every one is ``yyyy-MM-dd HH:mm:ss``; columns of neither shape raise ``ValueError``.
    """
    candidates = [
        f.name
        for f in df.schema.fields
        if isinstance(f.dataType, T.StringType) and f.name.endswith(("_at", "_date"))
    ]
    if not candidates:
        return {}
    aggs = []
    for c in candidates:
        present = F.col(c).isNotNull()
        aggs.append(F.sum((present & ~F.col(c).rlike(_DATE)).cast("long")).alias(f"{c}|date"))
        aggs.append(
            F.sum((present & ~F.col(c).rlike(_TIMESTAMP)).cast("long")).alias(f"{c}|timestamp")
        )
    misfits = df.agg(*aggs).first().asDict()
    types = {}
    for c in candidates:
        if not misfits[f"{c}|date"]:
            types[c] = "date"
        elif not misfits[f"{c}|timestamp"]:
            types[c] = "timestamp"
        else:
            raise ValueError(
                f"column {c}: {misfits[f'{c}|timestamp']} values are neither yyyy-MM-dd nor "
                "yyyy-MM-dd HH:mm:ss; fix the source or copy it as text"
            )
    return types


def with_temporal_types(df: DataFrame, types: dict[str, str]) -> DataFrame:
    """Cast to the inferred types; timestamps without time zone, as the source keeps them."""
    spark_type = {"date": "date", "timestamp": "timestamp_ntz"}
    return df.select(
        *[
            F.col(c).cast(spark_type[types[c]]).alias(c) if c in types else F.col(c)
            for c in df.columns
        ]
    )


def copy_lending_db(
    spark: SparkSession,
    settings: Settings,
    target_url: str,
    user: str | None = None,
    password: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, int]:
    """Copy every lending table from ``settings.lending_jdbc_url`` to ``target_url``.

    Existing tables of the same names at the target are replaced. Returns rows per table.
    """
    copied = {}
    for name in JDBC_SOURCES:
        # Cached: the type check, the write and the count read the source once.
        raw = read_jdbc(spark, settings, name).cache()
        df = with_temporal_types(raw, temporal_types(raw))
        writer = (
            df.write.format("jdbc")
            .option("url", target_url)
            .option("dbtable", name)
            .option("driver", jdbc_driver(target_url))
            .option("batchsize", 5_000)
            .mode("overwrite")
        )
        if user:
            writer = writer.option("user", user)
        if password:
            writer = writer.option("password", password)
        writer.save()
        copied[name] = raw.count()
        raw.unpersist()
        progress(f"load-db: {name}: {copied[name]:,} rows -> {redact(target_url)}")
    return copied
