"""Collect tier: land internal extracts in bronze, as received, with provenance.

Sources: the lending system's tables over JDBC (SQLite by default; PostgreSQL or MySQL
by changing ``RISK_LENDING_JDBC_URL``) and file drops under ``data/landing``: bureau
reports and app events as JSON lines, customer-service notes as free text. Rows land
with ``MERGE`` on (business key, content hash), so a re-run lands nothing twice and a
changed source row lands as a new version. What cannot be parsed is quarantined.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    BRONZE_APPLICATIONS,
    BRONZE_BUREAU,
    BRONZE_CUSTOMERS,
    BRONZE_EVENTS,
    BRONZE_LOANS,
    BRONZE_NOTES,
    BRONZE_REPAYMENTS,
    NOTE_PATTERN,
    OPS_WATERMARKS,
    Table,
)
from riskcontrol.core.config import Settings
from riskcontrol.core.landing import (
    Rule,
    checked_rows,
    data_columns,
    land_rows,
    tag_failures,
    with_provenance,
)
from riskcontrol.core.redact import redact
from riskcontrol.core.runs import Run, StepCounts

STAGE = "collect"


@dataclass(frozen=True)
class JdbcSource:
    """A table of the lending system, extracted incrementally by a watermark column."""

    name: str
    table: Table
    watermark: str = "updated_at"  # a monotonically growing column: updated-at or id
    by_time: bool = True  # the watermark is a time (ISO text): RISK_AS_OF bounds it


JDBC_SOURCES: dict[str, JdbcSource] = {
    s.name: s
    for s in (
        JdbcSource("customers", BRONZE_CUSTOMERS),
        JdbcSource("applications", BRONZE_APPLICATIONS),
        JdbcSource("loans", BRONZE_LOANS),
        JdbcSource("repayments", BRONZE_REPAYMENTS),
    )
}

_DRIVERS = {
    "sqlite": "org.sqlite.JDBC",
    "postgresql": "org.postgresql.Driver",
    "mysql": "com.mysql.cj.jdbc.Driver",
}


def jdbc_driver(url: str) -> str:
    """The JDBC driver class for a ``jdbc:<kind>:...`` URL."""
    match = re.match(r"jdbc:(\w+):", url)
    if not match or match.group(1) not in _DRIVERS:
        raise ValueError(
            f"unsupported JDBC URL {redact(url)!r}: "
            "use jdbc:sqlite:, jdbc:postgresql: or jdbc:mysql:"
        )
    return _DRIVERS[match.group(1)]


def read_jdbc(
    spark: SparkSession, settings: Settings, table_or_query: str, custom_schema: str | None = None
) -> DataFrame:
    """Read a table (or a parenthesised, aliased SELECT) of the lending system over JDBC.

    Columns come back as bronze keeps them whatever the database: text stays text without
    the source's length limits, and date/time columns are rendered as ISO text
    (``yyyy-MM-dd HH:mm:ss``, the lending system's local time), so SQLite's TEXT dates and
    PostgreSQL's ``timestamp`` columns land identically and hash alike.
    """
    url = settings.lending_jdbc_url
    reader = (
        spark.read.format("jdbc")
        .option("url", url)
        .option("dbtable", table_or_query)
        .option("driver", jdbc_driver(url))
        .option("fetchsize", settings.lending_jdbc_fetchsize)
        .option("preferTimestampNTZ", "true")  # no time-zone shift of local timestamps
    )
    if custom_schema:  # e.g. "high STRING": what the driver cannot tell for an expression
        reader = reader.option("customSchema", custom_schema)
    if settings.lending_jdbc_user:
        reader = reader.option("user", settings.lending_jdbc_user)
    if settings.lending_jdbc_password:
        reader = reader.option("password", settings.lending_jdbc_password.get_secret_value())
    df = reader.load()
    return df.select(*[_as_received(f) for f in df.schema.fields])


def _as_received(field: T.StructField) -> Column:
    col = F.col(f"`{field.name}`")
    if isinstance(field.dataType, T.TimestampType | T.TimestampNTZType):
        col = F.date_format(col, "yyyy-MM-dd HH:mm:ss")
    elif isinstance(field.dataType, T.DateType):
        col = F.date_format(col, "yyyy-MM-dd")
    # Drivers report TEXT as VARCHAR(n) (SQLite says n=0): drop the length metadata.
    return col.alias(field.name, metadata={})


def sql_literal(value: str) -> str:
    """A value as a SQL literal: numbers bare, anything else single-quoted and escaped."""
    if re.fullmatch(r"-?\d+", value):
        return value
    return "'" + value.replace("'", "''") + "'"


def window_query(source: JdbcSource, low: str | None, high: str | None) -> str:
    """The extract of one watermark window ``(low, high]`` as a JDBC ``dbtable`` subquery.

    Rows whose watermark is null cannot be placed in a window: they are read on every
    run (and recognised by their content hash), so they are never silently skipped.
    """
    col = source.watermark
    bounds = [f"{col} > {sql_literal(low)}"] if low is not None else []
    if high is not None:
        bounds.append(f"{col} <= {sql_literal(high)}")
    where = " AND ".join(bounds) or "1 = 1"
    return f"(SELECT * FROM {source.name} WHERE ({where}) OR {col} IS NULL) extract_window"


def source_high_water(
    spark: SparkSession, settings: Settings, source: JdbcSource, until: str | None = None
) -> str | None:
    """The largest watermark value in the source right now (the end of this run's window),
    or the largest up to ``until``."""
    col = source.watermark
    where = f" WHERE {col} <= {sql_literal(until)}" if until is not None else ""
    query = f"(SELECT MAX({col}) AS high FROM {source.name}{where}) high_water"
    # Read as text: SQLite's driver types any aggregate as NUMERIC, whatever it holds.
    value = read_jdbc(spark, settings, query, custom_schema="high STRING").first()["high"]
    return None if value is None else str(value)


def last_high_water(spark: SparkSession, settings: Settings, name: str) -> str | None:
    """The watermark reached by the last successful extract of ``name`` (None: never run)."""
    if not lakehouse.exists(spark, OPS_WATERMARKS, settings):
        return None
    row = (
        lakehouse.read(spark, OPS_WATERMARKS, settings)
        .where(F.col("source") == f"jdbc:{name}")
        .select("high_water")
        .first()
    )
    return None if row is None else row["high_water"]


def _looked_back(value: str | None, minutes: int) -> str | None:
    """``value`` moved ``minutes`` earlier when it is a timestamp; ids are left as they are."""
    if value is None or minutes <= 0:
        return value
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    return (moment - dt.timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")


def _save_high_water(run: Run, source: JdbcSource, high: str) -> None:
    row = {
        "source": f"jdbc:{source.name}",
        "column": source.watermark,
        "high_water": high,
        "run_id": run.run_id,
        "updated_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    }
    df = run.spark.createDataFrame([row], OPS_WATERMARKS.schema)
    lakehouse.merge(df, OPS_WATERMARKS, run.settings)


def read_lines(spark: SparkSession, path: str, line_sep: str | None = None) -> DataFrame:
    """Text records of every file under ``path`` as (payload, _source_uri)."""
    reader = spark.read.option("recursiveFileLookup", "true")
    if line_sep:
        reader = reader.option("lineSep", line_sep)
    df = reader.text(path)
    return df.select(
        F.col("value").alias("payload"), F.col("_metadata.file_path").alias("_source_uri")
    ).where(F.trim("payload") != "")


def land(
    run: Run,
    df: DataFrame,
    table: Table,
    source: str,
    rules: list[Rule],
    merge_keys: tuple[str, ...],
    window: tuple[str | None, str | None] = (None, None),
    rejects: DataFrame | None = None,
    drop: tuple[str, ...] = (),
) -> StepCounts:
    """Quarantine rows breaking ``rules``, MERGE the rest into ``table``, reconcile
    (``landing.land_rows`` with the collect tier's stage name).

    ``rejects`` are rows the source itself already refused (in ``REJECT_COLUMNS`` form,
    e.g. pages a crawler could not parse): they count as read and go to quarantine.
    ``drop`` names helper columns the rules needed that must not land; the quarantined
    record keeps the row as read.
    """
    checked = checked_rows(
        tag_failures(df, rules), [c for c in df.columns if c not in drop], data_columns(df)
    ).cache()
    try:
        counts, _ = land_rows(
            run,
            checked,
            table,
            stage=STAGE,
            source=source,
            merge_keys=merge_keys,
            window=window,
            rejects=rejects,
        )
    finally:
        checked.unpersist()
    return counts


def collect_jdbc(
    run: Run,
    name: str,
    since: str | None = None,
    until: str | None = None,
    full: bool = False,
) -> StepCounts:
    """Extract one lending-system table incrementally and land it in bronze.

    The window is ``(since, until]`` on the source's watermark column: by default from
    the last successful extract (minus the configured look-back) to the source's current
    maximum, so a re-run picks up only new or changed rows. ``full`` re-reads everything.
    With ``RISK_AS_OF`` set (an Airflow run's logical date) and no ``until``, the window
    ends at the start of that day: a backfilled day extracts only what was there then.
    Re-running any window changes nothing: rows land on (key, content hash). The
    watermark only advances after the rows landed and reconciled, and never past the
    largest value the source held in the window: an end in the future loses nothing
    written later.
    """
    source = JDBC_SOURCES[name]
    spark, settings = run.spark, run.settings
    previous = last_high_water(spark, settings, name)
    if since is None and not full:
        since = _looked_back(previous, settings.lending_watermark_lookback_minutes)
    if until is None and settings.as_of is not None and source.by_time:
        until = settings.as_of.isoformat()
    high = source_high_water(spark, settings, source, until)
    key = source.table.keys[0]
    end = until if until is not None else high
    raw = read_jdbc(spark, settings, window_query(source, since, end))
    df = with_provenance(
        raw, run.run_id, f"lending_db.{name}", F.lit(redact(settings.lending_jdbc_url))
    )
    rules = [Rule("missing_key", F.col(key).isNotNull(), f"{key} is null")]
    counts = land(
        run,
        df,
        source.table,
        f"jdbc:{name}",
        rules,
        merge_keys=(key, "_content_hash"),
        window=(since, end),
    )
    if high is not None and (previous is None or _after(high, previous)):
        _save_high_water(run, source, high)
    return counts


def _after(a: str, b: str) -> bool:
    """Watermark order: numeric for ids, text order for ISO timestamps."""
    if re.fullmatch(r"-?\d+", a) and re.fullmatch(r"-?\d+", b):
        return int(a) > int(b)
    return a > b


@dataclass(frozen=True)
class FileSource:
    """A file drop: where it lands, how records are separated, what makes one valid."""

    name: str
    folder: str
    table: Table
    rules: Callable[[], list[Rule]]
    line_sep: str | None = None


def _json_rules(key: str) -> list[Rule]:
    parsed = F.from_json(
        "payload",
        f"{key} string, _corrupt string",
        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"},
    )
    return [
        Rule("malformed_json", parsed["_corrupt"].isNull(), "not a complete JSON object"),
        Rule("missing_key", parsed[key].isNotNull(), f"JSON object without {key}"),
    ]


FILE_SOURCES: dict[str, FileSource] = {
    "bureau": FileSource("bureau", "bureau", BRONZE_BUREAU, lambda: _json_rules("report_id")),
    "events": FileSource("events", "events", BRONZE_EVENTS, lambda: _json_rules("event_id")),
    "notes": FileSource(
        "notes",
        "notes",
        BRONZE_NOTES,
        lambda: [
            Rule(
                "missing_note_header",
                F.col("payload").rlike(NOTE_PATTERN),
                "note text without its '#NOTE id=... customer=... time=...' header line",
            )
        ],
        line_sep="\n\n",
    ),
}


def collect_files(run: Run, name: str) -> StepCounts:
    src = FILE_SOURCES[name]
    folder = run.settings.landing_dir / src.folder
    if not folder.exists() or not any(folder.iterdir()):
        raise FileNotFoundError(
            f"no {name} files under {folder}: run `riskctl generate` or drop files there"
        )
    lines = read_lines(run.spark, str(folder), src.line_sep)
    # The content hash of a raw record is that of its payload, wherever it came from:
    # the same report sent twice lands once.
    df = with_provenance(
        lines.select("payload", "_source_uri"),
        run.run_id,
        f"files.{name}",
        F.col("_source_uri"),
        hashed=F.sha2("payload", 256),
    )
    return land(run, df, src.table, f"files:{name}", src.rules(), merge_keys=("_content_hash",))
