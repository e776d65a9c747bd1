"""Collect tier: land internal extracts in bronze, as received, with provenance.

Sources: the lending system's tables over JDBC (SQLite by default; PostgreSQL or MySQL
by changing ``RISK_LENDING_JDBC_URL``) and file drops under ``data/landing``: bureau
reports and app events as JSON lines, customer-service notes as free text. Rows land
with ``MERGE`` on (business key, content hash), so a re-run lands nothing twice and a
changed source row lands as a new version. What cannot be parsed is quarantined.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from riskcontrol import lakehouse
from riskcontrol.catalog import (
    BRONZE_APPLICATIONS,
    BRONZE_BUREAU,
    BRONZE_CUSTOMERS,
    BRONZE_EVENTS,
    BRONZE_LOANS,
    BRONZE_NOTES,
    BRONZE_REPAYMENTS,
    PROVENANCE_COLUMNS,
    Table,
)
from riskcontrol.config import Settings
from riskcontrol.ops import Rule, Run, StepCounts, split_by_rules

STAGE = "collect"

JDBC_SOURCES: dict[str, Table] = {
    "customers": BRONZE_CUSTOMERS,
    "applications": BRONZE_APPLICATIONS,
    "loans": BRONZE_LOANS,
    "repayments": BRONZE_REPAYMENTS,
}

_DRIVERS = {
    "sqlite": "org.sqlite.JDBC",
    "postgresql": "org.postgresql.Driver",
    "mysql": "com.mysql.cj.jdbc.Driver",
}

NOTE_HEADER = r"^#NOTE id=\S+ customer=\S+ time=\S+ \S+ agent=\S+ channel=\S+"


def jdbc_driver(url: str) -> str:
    """The JDBC driver class for a ``jdbc:<kind>:...`` URL."""
    match = re.match(r"jdbc:(\w+):", url)
    if not match or match.group(1) not in _DRIVERS:
        raise ValueError(
            f"unsupported JDBC URL {redact(url)!r}: "
            "use jdbc:sqlite:, jdbc:postgresql: or jdbc:mysql:"
        )
    return _DRIVERS[match.group(1)]


def redact(url: str) -> str:
    """A JDBC URL without credentials, safe for provenance and logs."""
    url = re.sub(r"(password|user)=[^&;]*", r"\1=***", url, flags=re.IGNORECASE)
    return re.sub(r"//[^/@]+@", "//***@", url)


def read_jdbc(spark: SparkSession, settings: Settings, table_name: str) -> DataFrame:
    """Read one table of the lending system over JDBC."""
    url = settings.lending_jdbc_url
    reader = (
        spark.read.format("jdbc")
        .option("url", url)
        .option("dbtable", table_name)
        .option("driver", jdbc_driver(url))
        .option("fetchsize", settings.lending_jdbc_fetchsize)
    )
    if settings.lending_jdbc_user:
        reader = reader.option("user", settings.lending_jdbc_user)
    if settings.lending_jdbc_password:
        reader = reader.option("password", settings.lending_jdbc_password.get_secret_value())
    df = reader.load()
    # Drivers report TEXT as VARCHAR(n) (SQLite says n=0); bronze keeps values as received,
    # not the source's length limits, so char/varchar become plain strings.
    return df.select(*[F.col(f"`{c}`").alias(c, metadata={}) for c in df.columns])


def content_hash(columns: list[str]) -> Column:
    """SHA-256 of a row's data columns: identical rows hash alike, any change differs."""
    return F.sha2(F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns])), 256)


def with_provenance(df: DataFrame, run_id: str, source: str, source_uri: Column) -> DataFrame:
    """Append the provenance columns every bronze row carries."""
    data_cols = [c for c in df.columns if c not in PROVENANCE_COLUMNS]
    return df.select(
        *data_cols,
        F.lit(run_id).alias("_ingest_id"),
        F.lit(source).alias("_source"),
        source_uri.alias("_source_uri"),
        F.current_timestamp().alias("_ingested_at"),
        content_hash(data_cols).alias("_content_hash"),
    )


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
) -> StepCounts:
    """Quarantine rows breaking ``rules``, MERGE the rest into ``table``, reconcile."""
    counts = StepCounts(STAGE, source, table.full_name, rows_in=0, rows_out=0)
    df = df.cache()
    counts.rows_in = df.count()
    valid, rejected = split_by_rules(df, rules)
    counts.rows_quarantined = run.quarantine(rejected, STAGE, table.full_name)
    result = lakehouse.merge(valid, table, run.settings, keys=merge_keys, insert_only=True)
    counts.rows_out = result.inserted
    counts.rows_unchanged = counts.rows_in - counts.rows_quarantined - counts.rows_out
    df.unpersist()
    return run.record(counts)


def collect_jdbc(run: Run, name: str) -> StepCounts:
    table = JDBC_SOURCES[name]
    key = table.keys[0]
    raw = read_jdbc(run.spark, run.settings, name)
    df = with_provenance(
        raw, run.run_id, f"lending_db.{name}", F.lit(redact(run.settings.lending_jdbc_url))
    )
    rules = [Rule("missing_key", F.col(key).isNotNull(), f"{key} is null")]
    return land(run, df, table, f"jdbc:{name}", rules, merge_keys=(key, "_content_hash"))


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
                F.col("payload").rlike(NOTE_HEADER),
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
    df = with_provenance(
        lines.select("payload", "_source_uri"), run.run_id, f"files.{name}", F.col("_source_uri")
    )
    # The content hash of a raw record is that of its payload, wherever it came from:
    # the same report sent twice lands once.
    df = df.withColumn("_content_hash", F.sha2("payload", 256))
    return land(run, df, src.table, f"files:{name}", src.rules(), merge_keys=("_content_hash",))
