"""Bring your own extract: land any loan-level CSV, Parquet or JSON file in bronze.

``riskctl ingest-file PATH --table NAME [--mapping mapping.yaml]`` reads a file (or a
folder of them), names its columns in snake_case, gives every text column a type
(declared in a mapping, or inferred from a sample and confirmed on the whole column),
keeps a value that does not parse as received in ``_rescued_data`` (the typed column is
null; the row lands), quarantines the records that cannot be read (wrong field count,
undecodable bytes, empty key) with their raw text, and MERGEs the rest into
``bronze.<NAME>`` (insert-only on key and content hash, so ingesting the same file again
lands nothing). Every file's records are counted without Spark first (a quote-aware CSV
reading, JSON lines, Parquet footers): a file Spark reads differently fails before
anything lands. One manifest row per attempt reconciles rows read = landed + unchanged +
duplicate + quarantined.

Built from the shared pieces in ``riskcontrol.core``: ``readers`` (encoding, RFC 4180
CSV, JSON, snake_case headers), ``values`` (the parsers and ``ColumnType``) and
``landing`` (rules, quarantine, insert-only MERGE, reconciled manifest row). This module
adds what is particular to a file nobody here wrote: ``infer_types`` (two small
aggregations over a sample) and ``decide_type``, ``rescued_data``, ``verify_counts``, the
YAML mapping, and the ``ingest-file`` command.

Everything runs as Spark SQL expressions (no Python UDF, nothing collected but a
per-column summary), so a million-row file is fine on a laptop.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.core import lakehouse, locks
from riskcontrol.core.catalog import PROVENANCE, SUBJECT_PROPERTY, TABLES, Table
from riskcontrol.core.config import get_settings
from riskcontrol.core.landing import (
    RULE,
    Rule,
    checked_rows,
    land_rows,
    tag_failures,
    with_provenance,
)
from riskcontrol.core.readers import (
    CORRUPT,
    FORMATS,
    MAX_BYTES,
    MAX_FIELD_CHARS,
    MAX_RECORD_BYTES,
    CsvFile,
    Encoding,
    RecordScan,
    UnreadableFile,
    _json_multiline,
    describe_files,
    detect_encoding,
    discover,
    normalize_headers,
    open_text,
    read_csv,
    read_json,
    refuse_wide_encoding,
    scan_csv,
    scan_json_lines,
    sniff_csv,
)
from riskcontrol.core.runs import Run, StepCounts
from riskcontrol.core.spark import WIDE_ROWS_CONF, get_spark, spark_progress, sql_conf
from riskcontrol.core.values import (
    DATE_FORMATS,
    DEFAULT_NULL_TOKENS,
    TIMESTAMP_FORMATS,
    TYPES,
    ColumnType,
    _parse_date_one,
    _parse_timestamp_one,
    clean,
    format_regex,
    is_null_token,
    parse_boolean,
    parse_date,
    parse_double,
    parse_integer,
    parse_money,
    parse_percent,
    parse_timestamp,
    typed_value,
)
from riskcontrol.lenderfile import pii_detect

STAGE = "ingest"
TYPED_PREFIX = "__typed__"
DEFAULT_THRESHOLD = 0.98
DEFAULT_SAMPLE_ROWS = 10_000
_TYPE_ALIASES = {
    "str": "string",
    "text": "string",
    "int": "integer",
    "long": "integer",
    "bigint": "integer",
    "float": "double",
    "number": "double",
    "decimal": "double",
    "currency": "money",
    "amount": "money",
    "pct": "percent",
    "datetime": "timestamp",
    "bool": "boolean",
}


class MappingError(ValueError):
    """A mapping file that does not fit the file it is applied to."""


# --- names ---------------------------------------------------------------------------


# --- files ---------------------------------------------------------------------------


# --- parsing columns -------------------------------------------------------------------


RESCUED = "_rescued_data"
RESCUED_TYPE = T.MapType(T.StringType(), T.StringType())


def failed_to_parse(raw: Column, typed: Column, null_tokens: Sequence[str]) -> Column:
    """True where ``raw`` holds a value (not a null token) and its typed value is null."""
    return ~is_null_token(raw, null_tokens) & typed.isNull()


def rescued_data(
    types: dict[str, ColumnType],
    null_tokens: Sequence[str] = DEFAULT_NULL_TOKENS,
    typed: Callable[[str], str] = lambda c: TYPED_PREFIX + c,
) -> Column:
    """``_rescued_data``: column -> raw value, for each typed column whose value is there
    but does not parse (the typed column is null on that row); null when every value
    parsed. The row lands; nothing is silently nulled or dropped."""
    entries = [
        F.when(
            failed_to_parse(F.col(f"`{c}`").cast("string"), F.col(f"`{typed(c)}`"), null_tokens),
            F.struct(F.lit(c).alias("key"), F.col(f"`{c}`").cast("string").alias("value")),
        )
        for c, t in types.items()
        if t.type != "string"
    ]
    if not entries:
        return F.lit(None).cast(RESCUED_TYPE)
    kept = F.filter(F.array(*entries), lambda e: e.isNotNull())
    return F.when(F.size(kept) > 0, F.map_from_entries(kept)).cast(RESCUED_TYPE)


def _a(t: ColumnType) -> str:
    article = "an" if t.type[0] in "aeiou" else "a"
    noun = {"money": "a money amount", "percent": "a percentage"}.get(t.type)
    text = noun or f"{article} {t.type}"
    return f"{text} ({' | '.join(t.formats)})" if t.formats else text


# --- inference -------------------------------------------------------------------------


@dataclass(frozen=True)
class Inference:
    """The type chosen for a column and the evidence: parsed of non_null sampled values."""

    column: str
    type: ColumnType
    non_null: int
    parsed: int
    example: str | None = None
    declared: bool = False

    @property
    def ratio(self) -> float:
        return self.parsed / self.non_null if self.non_null else 1.0


def decide_type(
    stats: dict[str, int], threshold: float = DEFAULT_THRESHOLD
) -> tuple[ColumnType, int]:
    """Pick a type from per-type parse counts over ``stats['n']`` non-null values.

    Order: boolean, date, timestamp, integer (string if any value has a leading zero:
    an identifier), double, percent, money; the first whose share reaches ``threshold``
    wins, else string. Dates and timestamps take the best single format, or all formats
    that parse something when only their union reaches the threshold.
    """
    n = stats["n"]
    if n == 0:
        return ColumnType("string"), 0

    def enough(k: int) -> bool:
        return k >= threshold * n

    if enough(stats["boolean"]):
        return ColumnType("boolean"), stats["boolean"]
    for kind, formats in (("date", DATE_FORMATS), ("timestamp", TIMESTAMP_FORMATS)):
        counts = [stats[f"{kind}:{f}"] for f in formats]
        best = max(range(len(formats)), key=lambda i: (counts[i], -i))
        if enough(counts[best]):
            return ColumnType(kind, (formats[best],)), counts[best]
        if enough(stats[f"{kind}:any"]):
            used = sorted((i for i in range(len(formats)) if counts[i]), key=lambda i: -counts[i])
            return ColumnType(kind, tuple(formats[i] for i in used)), stats[f"{kind}:any"]
    if enough(stats["integer"]):
        if stats["leading_zero"]:
            return ColumnType("string"), n
        return ColumnType("integer"), stats["integer"]
    for kind in ("double", "percent", "money"):
        if enough(stats[kind]):
            return ColumnType(kind), stats[kind]
    return ColumnType("string"), n


_DATETIME_FORMATS = (*DATE_FORMATS, *TIMESTAMP_FORMATS)


def _datetime_shape() -> str:
    """One regex matching the shape of any candidate date or timestamp format."""
    return "^(?:" + "|".join(f"(?:{format_regex(f)[1:-1]})" for f in _DATETIME_FORMATS) + ")$"


def infer_types(
    df: DataFrame,
    columns: Sequence[str],
    null_tokens: Sequence[str] = DEFAULT_NULL_TOKENS,
    sample_rows: int | None = DEFAULT_SAMPLE_ROWS,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, Inference]:
    """Infer the type of each of ``columns`` (strings) from the first ``sample_rows`` rows
    (all rows if None or 0); ``decide_type`` picks the type from the counts.

    The sample is unpivoted to (column, value) and cached; one aggregation counts, per
    column, the values each parser accepts and those shaped like a date or timestamp;
    a second one tries every date and timestamp format on the date-shaped columns only.
    """
    if not columns:
        return {}
    sample = df.select(
        *[F.col(f"`{c}`").cast("string").alias(f"c{i}") for i, c in enumerate(columns)]
    )
    if sample_rows:
        sample = sample.limit(sample_rows)
    # Cached, so the aggregations read plain rows (Spark 4.2's code generator fails on
    # common subexpressions over the unpivot's output and falls back to slow evaluation).
    long = (
        sample.unpivot([], sample.columns, "__column", "__value")
        .select("__column", clean(F.col("__value"), null_tokens).alias("__v"))
        .cache()
    )
    try:
        v = F.col("__v")
        double = parse_double(v)
        rows = (
            long.groupBy("__column")
            .agg(
                F.count(v).alias("n"),
                F.count_if(parse_boolean(v).isNotNull()).alias("boolean"),
                F.count_if(parse_integer(v).isNotNull()).alias("integer"),
                F.count_if(v.rlike(r"^[+-]?0\d")).alias("leading_zero"),
                F.count_if(double.isNotNull()).alias("double"),
                F.count_if(parse_percent(v).isNotNull()).alias("percent"),
                # money accepts plain numbers too: parse only the others
                F.count_if(double.isNotNull() | parse_money(v).isNotNull()).alias("money"),
                F.count_if(v.rlike(_datetime_shape())).alias("datetime_shape"),
                F.first(v, ignorenulls=True).alias("example"),
            )
            .collect()
        )
        stats = {columns[int(r["__column"][1:])]: r.asDict() for r in rows}
        for st in stats.values():
            st.update({"date:any": 0, "timestamp:any": 0})
            st.update({f"date:{f}": 0 for f in DATE_FORMATS})
            st.update({f"timestamp:{f}": 0 for f in TIMESTAMP_FORMATS})
        shaped = [
            f"c{columns.index(c)}"
            for c, st in stats.items()
            if st["n"] and st["datetime_shape"] >= threshold * st["n"]
        ]
        if shaped:
            aggs = [
                F.count_if(parse_date(v).isNotNull()).alias("date_any"),
                F.count_if(parse_timestamp(v).isNotNull()).alias("timestamp_any"),
            ]
            # plain aliases: a pattern such as [.SSSSSS] in a column name breaks codegen
            aggs += [
                F.count_if(_parse_date_one(v, f).isNotNull()).alias(f"d{i}")
                for i, f in enumerate(DATE_FORMATS)
            ]
            aggs += [
                F.count_if(_parse_timestamp_one(v, f).isNotNull()).alias(f"t{i}")
                for i, f in enumerate(TIMESTAMP_FORMATS)
            ]
            names = {"date_any": "date:any", "timestamp_any": "timestamp:any"}
            names.update({f"d{i}": f"date:{f}" for i, f in enumerate(DATE_FORMATS)})
            names.update({f"t{i}": f"timestamp:{f}" for i, f in enumerate(TIMESTAMP_FORMATS)})
            for r in (
                long.where(F.col("__column").isin(shaped)).groupBy("__column").agg(*aggs).collect()
            ):
                st = stats[columns[int(r["__column"][1:])]]
                st.update({names[k]: val for k, val in r.asDict().items() if k in names})
    finally:
        long.unpersist()
    out = {}
    for c in columns:
        st = stats.get(c)
        if st is None:  # an empty sample has no rows to group
            out[c] = Inference(c, ColumnType("string"), 0, 0)
            continue
        ctype, parsed = decide_type(st, threshold)
        out[c] = Inference(c, ctype, st["n"], parsed, st["example"])
    return out


# --- mapping ---------------------------------------------------------------------------

MAPPING_KEYS = (
    "format",
    "encoding",
    "delimiter",
    "key",
    "null_tokens",
    "drop",
    "rename",
    "columns",
    "infer",
    "threshold",
    "sample_rows",
)


@dataclass(frozen=True)
class Mapping:
    """What a mapping YAML declares (see infra/examples/mapping.yaml)."""

    rename: dict[str, str] = field(default_factory=dict)
    columns: dict[str, ColumnType] = field(default_factory=dict)
    key: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    null_tokens: tuple[str, ...] | None = None
    format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    infer: bool = True
    threshold: float | None = None
    sample_rows: int | None = None
    source: str = "<mapping>"


def _column_type(name: str, spec, where: str) -> ColumnType:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict) or "type" not in spec:
        raise MappingError(f"{where}: column {name!r} needs a type (e.g. `{name}: money`)")
    unknown = set(spec) - {"type", "format", "formats"}
    if unknown:
        raise MappingError(f"{where}: column {name!r} has unknown settings {sorted(unknown)}")
    kind = str(spec["type"]).lower()
    kind = _TYPE_ALIASES.get(kind, kind)
    if kind not in TYPES:
        raise MappingError(
            f"{where}: column {name!r} has unknown type {spec['type']!r}; "
            f"types are {', '.join(TYPES)}"
        )
    formats = spec.get("formats") or ([spec["format"]] if spec.get("format") else [])
    if formats and kind not in ("date", "timestamp"):
        raise MappingError(f"{where}: column {name!r}: formats apply to date and timestamp only")
    return ColumnType(kind, tuple(str(f) for f in formats))


def _names(value, where: str, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MappingError(f"{where}: {what} must be a column name or a list of them")


def parse_mapping(data: dict | None, source: str = "<mapping>") -> Mapping:
    """Validate a mapping's content (as loaded from YAML)."""
    data = data or {}
    if not isinstance(data, dict):
        raise MappingError(f"{source}: a mapping is a YAML object with keys {MAPPING_KEYS}")
    unknown = sorted(set(data) - set(MAPPING_KEYS))
    if unknown:
        raise MappingError(f"{source}: unknown keys {unknown}; allowed: {', '.join(MAPPING_KEYS)}")
    rename = data.get("rename") or {}
    columns = data.get("columns") or {}
    if not isinstance(rename, dict) or not isinstance(columns, dict):
        raise MappingError(f"{source}: rename and columns are objects (name: value)")
    fmt = data.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise MappingError(f"{source}: format {fmt!r} is not one of {', '.join(FORMATS)}")
    tokens = data.get("null_tokens")
    if tokens is not None:
        tokens = tuple("" if t is None else str(t) for t in tokens)
    return Mapping(
        rename={str(k): str(v) for k, v in rename.items()},
        columns={str(k): _column_type(str(k), v, source) for k, v in columns.items()},
        key=_names(data.get("key"), source, "key"),
        drop=_names(data.get("drop"), source, "drop"),
        null_tokens=tokens,
        format=fmt,
        encoding=data.get("encoding"),
        delimiter=data.get("delimiter"),
        infer=bool(data.get("infer", True)),
        threshold=data.get("threshold"),
        sample_rows=data.get("sample_rows"),
        source=source,
    )


def load_mapping(path: Path) -> Mapping:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from None
    return parse_mapping(data, str(path))


def resolve_mapping(
    mapping: Mapping, raw_names: Sequence[str], names: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """(source column -> new name, columns to drop) for a file whose titles are
    ``raw_names`` and normalized names ``names``; ``rename`` and ``drop`` may use either.
    Names the file does not have raise a ``MappingError`` that lists the file's columns."""
    lookup = {n: n for n in names}
    for raw, n in zip(raw_names, names, strict=True):
        lookup.setdefault(raw, n)
        lookup.setdefault(raw.strip(), n)

    def listing() -> str:
        return ", ".join(
            n if n == r else f"{n} ({r!r})" for r, n in zip(raw_names, names, strict=True)
        )

    bad = [c for c in [*mapping.rename, *mapping.drop] if c not in lookup]
    if bad:
        raise MappingError(
            f"{mapping.source}: column(s) {bad} (rename/drop) are not in the file; "
            f"its columns are: {listing()}"
        )
    rename = {lookup[k]: v for k, v in mapping.rename.items()}
    drop = [lookup[c] for c in mapping.drop]
    final = [rename.get(n, n) for n in names if n not in drop]
    dupes = sorted({c for c in final if final.count(c) > 1})
    if dupes:
        raise MappingError(f"{mapping.source}: rename gives several columns the name(s) {dupes}")
    bad = [c for c in [*mapping.columns, *mapping.key] if c not in final]
    if bad:
        raise MappingError(
            f"{mapping.source}: column(s) {bad} (columns/key) are not in the file after "
            f"rename and drop; its columns are: {', '.join(final)}"
        )
    return rename, drop


# --- landing ---------------------------------------------------------------------------


def _say(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def key_candidates(columns: Sequence[str], table_name: str) -> list[str]:
    """``id``, ``<table>_id``, then other ``*_id`` columns, in that order."""
    firsts = [c for c in ("id", f"{table_name}_id") if c in columns]
    return firsts + [c for c in columns if c.endswith("_id") and c not in firsts][:4]


def unique_key(df: DataFrame, candidates: Sequence[str]) -> tuple[str | None, int]:
    """The first candidate column with a value on every row, all distinct, and the rows'
    distinct merge keys, in one pass: ``(column, rows)`` (a unique column makes every
    row distinct), else ``(None, distinct content hashes)``."""
    aggs = [
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct(F.col("_content_hash")).alias("hashes"),
    ]
    for i, c in enumerate(candidates):
        aggs += [
            F.count(F.col(f"`{c}`")).alias(f"n{i}"),
            F.count_distinct(F.col(f"`{c}`")).alias(f"d{i}"),
        ]
    row = df.agg(*aggs).first()
    for i, c in enumerate(candidates):
        if row["rows"] and row[f"n{i}"] == row["rows"] == row[f"d{i}"]:
            return c, row["rows"]
    return None, row["hashes"]


_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def bronze_table(
    name: str,
    schema: T.StructType,
    keys: tuple[str, ...],
    description: str,
    sensitive: tuple[str, ...] = (),
) -> Table:
    """A bronze table built at run time: ``schema`` plus the provenance columns;
    ``sensitive`` columns (personal data) are encrypted at rest."""
    if not _TABLE_NAME.match(name):
        raise ValueError(
            f"table name {name!r}: use lowercase letters, digits and _ (e.g. lc_loans)"
        )
    if f"bronze.{name}" in TABLES:
        raise ValueError(
            f"bronze.{name} is a pipeline table; ingest into another name (e.g. byo_{name})"
        )
    return Table(
        "bronze",
        name,
        T.StructType(list(schema.fields) + list(PROVENANCE.fields)),
        keys=keys,
        description=description,
        strict=False,
        sensitive=sensitive,
    )


# A bronze column's Spark type -> the type a new file's text is parsed as to match it.
_TABLE_TYPES = {"bigint": "integer", "double": "double", "boolean": "boolean", "string": "string"}


def _types_of_existing_table(
    spark: SparkSession, table_name: str, run: Run, types: dict[str, Inference]
) -> dict[str, Inference]:
    """For a table that exists, the columns whose type the file's sample would change:
    the table is the contract, so they keep its type and values that do not parse are
    rescued (dates keep the file's formats and are checked by ``_check_compatible``).
    Encrypted columns count with their type before encryption."""
    table = bronze_table(table_name, T.StructType([]), (), "")
    if not lakehouse.exists(spark, table, run.settings):
        return {}
    stored = {
        f.name: f.dataType.simpleString()
        for f in lakehouse.read_clear(spark, table, run.settings).schema
    }
    out = {}
    for c, inf in types.items():
        want = _TABLE_TYPES.get(stored.get(c, ""))
        if not inf.declared and want and inf.type.spark_type.simpleString() != stored[c]:
            out[c] = dataclasses.replace(inf, type=ColumnType(want), declared=True)
    return out


def _check_compatible(spark: SparkSession, table: Table, run: Run, schema: T.StructType) -> None:
    if not lakehouse.exists(spark, table, run.settings):
        return
    # simpleString: types without nullability, which Delta may record differently
    read = lakehouse.read(spark, table, run.settings).schema
    existing = {f.name: f.dataType.simpleString() for f in read}
    # Sensitive columns are stored encrypted, as text, whatever their type before.
    new = {
        f.name: "string" if f.name in table.sensitive else f.dataType.simpleString() for f in schema
    }
    problems = [f"new column {c}" for c in new if c not in existing]
    problems += [f"missing column {c}" for c in existing if c not in new]
    problems += [
        f"{c}: {new[c]} (table has {existing[c]})"
        for c in new
        if c in existing and existing[c] != new[c]
    ]
    if problems:
        raise ValueError(
            f"{table.full_name} exists with another schema ({'; '.join(problems)}): declare the "
            "types and drop the new columns in a mapping (--mapping, keys columns: and drop:) "
            "to match it, or ingest into a new --table"
        )


@dataclass
class IngestResult:
    """What ``ingest_file`` did."""

    table: Table
    counts: StepCounts
    format: str
    files: list[Path]
    types: dict[str, Inference]
    key: tuple[str, ...]  # () = the row's content hash
    quarantined_by_rule: dict[str, int]
    details: list[str]
    seconds: float
    rescued_by_column: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        c = self.counts
        lines = [
            f"{c.source} -> {self.table.full_name}  ({self.format}, {len(self.files)} file(s))"
        ]
        lines += [f"  {d}" for d in self.details]
        if self.types:
            lines.append(f"  {'column':28} {'type':40} {'parsed':>8}  example")
            for inf in self.types.values():
                if inf.declared:
                    share = "declared"
                else:
                    share = f"{inf.ratio:.1%}" if inf.non_null else "all null"
                example = "" if inf.example is None else repr(inf.example)[:40]
                lines.append(f"  {inf.column:28} {inf.type.describe():40} {share:>8}  {example}")
        key = ", ".join(self.key) if self.key else "content hash of the row"
        lines.append(f"  key: {key}; merge insert-only on (key, _content_hash)")
        lines.append(
            f"  rows read {c.rows_in:,} = landed {c.rows_out:,} + unchanged {c.rows_unchanged:,}"
            f" + duplicate {c.rows_duplicate:,} + quarantined {c.rows_quarantined:,}"
        )
        for rule, n in self.quarantined_by_rule.items():
            lines.append(f"    quarantined {rule}: {n:,}")
        if c.rows_rescued:
            lines.append(
                f"  {c.rows_rescued:,} row(s) with values that do not parse: the typed column "
                "is null, the value as received is in _rescued_data"
            )
        for column, n in self.rescued_by_column.items():
            lines.append(f"    {column}: {n:,} value(s) rescued")
        rate = c.rows_in / self.seconds if self.seconds else 0.0
        lines.append(f"  {self.seconds:.1f}s, {rate:,.0f} rows/s")
        return "\n".join(lines)


@dataclass(frozen=True)
class Limits:
    """What one file may hold before it is refused with a clear error (see readers)."""

    max_field_chars: int = MAX_FIELD_CHARS
    max_record_bytes: int = MAX_RECORD_BYTES
    max_bytes: int = MAX_BYTES


class _Counting:
    """The independent record count of CSV files (``scan_csv``), in a thread beside Spark's
    first passes over them: a CSV with line breaks in quoted fields is read whole by one
    task, so on a small machine a core is free for it."""

    def __init__(self, sniffed: Sequence[CsvFile], limits: Limits):
        self.sniffed = list(sniffed)
        self._scans: list[RecordScan] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(limits,), name="record-count", daemon=True
        )
        self._thread.start()

    def _run(self, limits: Limits) -> None:
        try:
            self._scans = [
                scan_csv(f, limits.max_field_chars, limits.max_bytes) for f in self.sniffed
            ]
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def result(self) -> list[RecordScan]:
        """The scans, once done; raises the scan's refusal (``UnreadableFile``)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._scans is not None
        return self._scans


@dataclass
class Source:
    """A file or folder read as a DataFrame: data columns named ``names`` (snake_case
    of the file's ``raw_names``), ``__corrupt`` and ``_source_uri``; ``expected`` is the
    record count of each file by a pass independent of Spark (for CSV, done once
    ``counted()`` returns), ``undecodable`` the files (by the URI Spark gives them) with
    lines that do not decode."""

    df: DataFrame
    format: str
    files: list[Path]
    raw_names: list[str]
    names: list[str]
    details: list[str]
    spread: int = 0  # repartition to this many partitions before per-row work (0: no)
    expected: dict[str, int] = field(default_factory=dict)
    undecodable: dict[str, tuple[str, Encoding]] = field(default_factory=dict)
    counting: _Counting | None = None

    def counted(self) -> dict[str, int]:
        """``expected``, waiting for a count still running; raises its refusal of the
        file (a quote that never closes, a field or file too large)."""
        if self.counting is not None:
            counting, self.counting = self.counting, None
            scans = counting.result()
            self.expected = {str(s.path.resolve()): s.records for s in scans}
            self.details[:0] = _csv_details(counting.sniffed, scans)
        return self.expected

    @contextmanager
    def refusals_first(self) -> Iterator[None]:
        """Spark's work on the file inside: when it fails, the independent count's refusal
        of the file, if it has one, is the error raised (it says what to fix)."""
        try:
            yield
        except Exception:
            self.counted()
            raise


def _uri(path: Path) -> str:
    """The URI Spark's ``_metadata.file_path`` gives a local file."""
    return path.resolve().as_uri().replace("file:///", "file:/", 1)


def _json_document_records(path: Path, encoding: str, limits: Limits) -> int:
    """Records of a whole-document JSON file: the items of a top-level array, else 1."""
    if path.stat().st_size > limits.max_bytes:
        raise UnreadableFile(f"{path} is larger than {limits.max_bytes:,} bytes (--max-bytes)")
    try:
        with open_text(path, encoding) as fh:
            doc = json.load(fh)
    except ValueError:
        return 1  # Spark reads an unparseable document as one corrupt record
    return len(doc) if isinstance(doc, list) else 1


def _parquet_records(files: Sequence[Path]) -> dict[str, int]:
    """Each Parquet file's row count, from its footer, read once per file. A damaged file,
    or files that give one column two types (Spark would fail mid-read on the first that
    differs), is an ``UnreadableFile``."""
    import pyarrow.parquet as pq

    counts: dict[str, int] = {}
    seen: dict[str, tuple[str, Path]] = {}
    for p in files:
        try:
            footer = pq.ParquetFile(p)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise UnreadableFile(
                f"{p} is not a readable Parquet file ({exc}): it is damaged or cut short, or "
                "not Parquet; copy it again, or pass the right --format"
            ) from None
        counts[str(p.resolve())] = footer.metadata.num_rows
        for f in footer.schema_arrow:
            first = seen.setdefault(f.name, (str(f.type), p))
            if first[0] != str(f.type):
                raise UnreadableFile(
                    f"{p.name} has column {f.name} as {f.type} but {first[1].name} has it as "
                    f"{first[0]}: land them with separate --table names, or rewrite one"
                )
    return counts


def _csv_details(sniffed: Sequence[CsvFile], scans: Sequence[RecordScan]) -> list[str]:
    multi = sum(f.multiline for f in sniffed)
    details = [
        f"encoding {', '.join(sorted({f.encoding for f in sniffed}))}; delimiter "
        f"{', '.join(sorted({repr(f.delimiter) for f in sniffed}))}; {multi} of "
        f"{len(sniffed)} file(s) with line breaks inside quoted fields"
    ]
    for f, scan in zip(sniffed, scans, strict=True):
        if scan.ragged:
            lines = ", ".join(map(str, scan.ragged_lines))
            more = "..." if scan.ragged > len(scan.ragged_lines) else ""
            details.append(
                f"{f.path.name}: {scan.ragged} record(s) with another number of fields than "
                f"the header, at line(s) {lines}{more}"
            )
        if f.undecodable:
            details.append(f"{f.path.name}: {f.undecodable.describe_bad()} (quarantined)")
    return details


def read_source(
    spark: SparkSession,
    files: Sequence[Path],
    fmt: str,
    encoding: str | None = None,
    delimiter: str | None = None,
    limits: Limits = Limits(),
) -> Source:
    """Read ``files`` of format ``fmt`` (see ``discover``) with snake_case column names,
    and count each file's records without Spark, for ``verify_counts`` (CSV: in a thread,
    see ``Source.counted``)."""
    files = list(files)
    if fmt == "csv":
        sniffed = [sniff_csv(p, encoding, delimiter) for p in files]
        counting = _Counting(sniffed, limits)
        df = read_csv(spark, sniffed, max_field_chars=limits.max_field_chars)
        names = [c for c in df.columns if c not in (CORRUPT, "_source_uri")]
        raw_names = list(dict.fromkeys(h for f in sniffed for h in f.header))
        if len(raw_names) != len(names):  # files with different headers: no 1:1 titles
            raw_names = names
        details = []
        spread = 0
        if any(f.multiline for f in sniffed):
            # Such files are read whole, one task each: spread the rows over the cores
            # before the per-row work when there are fewer files than cores.
            cores = spark.sparkContext.defaultParallelism
            if sum(f.size for f in sniffed) > SPREAD_BYTES and len(sniffed) < cores:
                spread = cores
                details.append(f"read whole, then spread over {cores} partitions")
        return Source(
            df,
            fmt,
            files,
            raw_names,
            names,
            details,
            spread,
            undecodable={
                _uri(f.path): (str(f.path), f.undecodable) for f in sniffed if f.undecodable
            },
            counting=counting,
        )
    details: list[str] = []
    if fmt in ("json", "jsonl"):
        for p in files:
            refuse_wide_encoding(p, encoding)
        enc = encoding or detect_encoding(files[0])
        multiline = fmt == "json" and _json_multiline(files[0], enc)
        if multiline:
            expected = {str(p.resolve()): _json_document_records(p, enc, limits) for p in files}
        else:
            expected = {
                str(p.resolve()): scan_json_lines(
                    p, limits.max_record_bytes, limits.max_bytes
                ).records
                for p in files
            }
        if not sum(expected.values()):
            raise UnreadableFile(f"{describe_files(files)} holds no JSON records: nothing to land")
        df = read_json(spark, files, multiline, enc)
        details.append(f"encoding {enc}; {'whole documents' if multiline else 'JSON lines'}")
        corrupt = F.col(CORRUPT)
        source_uri = F.col("_source_uri")
    elif fmt == "parquet":
        expected = _parquet_records(files)
        df = spark.read.parquet(*[str(p) for p in files])
        corrupt = F.lit(None).cast("string")
        source_uri = F.col("_metadata.file_path")
    else:
        raise ValueError(f"unknown format {fmt!r}; formats are {', '.join(FORMATS)}")
    raw_names = [c for c in df.columns if c not in (CORRUPT, "_source_uri")]
    names = normalize_headers(raw_names)
    df = df.select(
        *[F.col(f"`{r}`").alias(n) for r, n in zip(raw_names, names, strict=True)],
        corrupt.alias(CORRUPT),
        source_uri.alias("_source_uri"),
    )
    return Source(df, fmt, files, raw_names, names, details, expected=expected)


SPREAD_BYTES = 64 << 20


def _record_checks(
    fmt: str, key: Sequence[str], null_tokens: Sequence[str], src: Source
) -> list[Rule]:
    """What makes a record unreadable, so quarantined: it does not split into the header's
    fields (or is not a JSON object), its key is empty, or it holds bytes that are not
    valid in the file's encoding. A value that does not parse is rescued, not a reason."""
    checks = [
        Rule(
            "malformed_row",
            F.col(CORRUPT).isNull(),
            F.format_string(
                "record does not split into the header's fields: %s"
                if fmt == "csv"
                else "not a complete JSON record: %s",
                F.col(CORRUPT),
            ),
        )
    ]
    if src.undecodable:
        text = F.concat_ws(" ", *[F.col(f"`{c}`").cast("string") for c in src.names], CORRUPT)
        where = F.coalesce(
            *[
                F.when(
                    F.col("_source_uri") == uri, F.lit(f"{Path(name).name}: {enc.describe_bad()}")
                )
                for uri, (name, enc) in src.undecodable.items()
            ],
            F.lit("its file"),
        )
        checks.append(
            Rule(
                "undecodable",
                ~text.contains("\ufffd"),
                F.format_string(
                    "bytes that are not valid text in the file's encoding (shown as U+FFFD); %s",
                    where,
                ),
            )
        )
    if key:
        ok = F.lit(True)
        for k in key:
            ok = ok & clean(F.col(f"`{k}`").cast("string"), null_tokens).isNotNull()
        checks.append(Rule("missing_key", ok, F.lit(f"key {', '.join(key)} is empty")))
    return checks


def _checked(
    df: DataFrame,
    run: Run,
    table_name: str,
    data_cols: list[str],
    ctypes: dict[str, ColumnType],
    checks: list[Rule],
    null_tokens: Sequence[str],
) -> DataFrame:
    """Raw columns typed, ``_rescued_data``, provenance and the rules' verdict; cached.
    The content hash is that of the row as received; a quarantined record keeps the raw
    text of a record that did not split (``__corrupt``)."""
    staged = df.withColumns(
        {
            TYPED_PREFIX + c: typed_value(F.col(f"`{c}`").cast("string"), t, null_tokens)
            for c, t in ctypes.items()
        }
    )
    staged = staged.withColumn(RESCUED, rescued_data(ctypes, null_tokens))
    staged = with_provenance(
        staged, run.run_id, f"file.{table_name}", F.col("_source_uri"), hashed=data_cols
    )
    final = [
        F.col(f"`{TYPED_PREFIX + c}`" if c in ctypes else f"`{c}`").alias(c) for c in data_cols
    ]
    final += [F.col(RESCUED), *[F.col(c) for c in PROVENANCE.fieldNames()]]
    record = [*data_cols, CORRUPT, "_source", "_source_uri", "_content_hash"]
    with sql_conf(run.spark, WIDE_ROWS_CONF):  # the cache's plan is made here
        return checked_rows(tag_failures(staged, checks), final, record).cache()


@dataclass(frozen=True)
class Tally:
    """What one aggregation over the checked rows counts."""

    by_rule: dict[str | None, int]  # rows per rule they failed (None: passing)
    rescued: int  # passing rows with a value kept raw in _rescued_data
    unparsed: dict[str, tuple[int, int]]  # typed column -> (values rescued, values parsed)


def tally(checked: DataFrame, ctypes: dict[str, ColumnType]) -> Tally:
    """Rows per rule, and of the passing rows those rescued and, per typed column, the
    values rescued and parsed: one pass over the cached rows."""
    typed = [c for c, t in ctypes.items() if t.type != "string"]
    aggs = [F.count(F.lit(1)).alias("rows"), F.count_if(F.col(RESCUED).isNotNull()).alias("r")]
    for i, c in enumerate(typed):
        aggs += [
            F.count_if(F.map_contains_key(F.col(RESCUED), F.lit(c))).alias(f"f{i}"),
            F.count(F.col(f"`{c}`")).alias(f"p{i}"),
        ]
    groups = {g[RULE]: g for g in checked.groupBy(RULE).agg(*aggs).collect()}
    passing = groups.get(None)
    return Tally(
        by_rule={rule: g["rows"] for rule, g in groups.items()},
        rescued=passing["r"] if passing else 0,
        unparsed={
            c: (passing[f"f{i}"], passing[f"p{i}"]) if passing else (0, 0)
            for i, c in enumerate(typed)
        },
    )


class RecordCountError(RuntimeError):
    """Spark read another number of records than an independent pass over the file."""


def _file_path(uri: str) -> str:
    return unquote(urlparse(uri).path) if "://" in uri or uri.startswith("file:") else uri


def verify_counts(checked: DataFrame, expected: dict[str, int], read: int) -> None:
    """Fail when the records Spark read differ from the independent count of each file
    (``Source.expected``: a quote-aware CSV reading, non-blank JSON lines, Parquet
    footers), naming the files and both numbers. No step lands anything after that."""
    if not expected or read == sum(expected.values()):
        return
    per_file = {
        _file_path(r["_source_uri"]): r["count"]
        for r in checked.groupBy("_source_uri").count().collect()
    }
    wrong = [
        f"{name}: {n:,} record(s) in the file, {per_file.get(name, 0):,} read"
        for name, n in expected.items()
        if per_file.get(name, 0) != n
    ]
    raise RecordCountError(
        f"records read ({read:,}) differ from the records in the file(s) "
        f"({sum(expected.values()):,}); nothing was landed. " + "; ".join(wrong)
    )


def ingest_file(
    run: Run,
    path: Path | str,
    table_name: str,
    mapping: Mapping | None = None,
    fmt: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sample_rows: int | None = None,
    threshold: float | None = None,
    progress: Callable[[str], None] | None = None,
    pii_columns: Sequence[str] = (),
    not_pii: Sequence[str] = (),
    subject_column: str | None = None,
    limits: Limits = Limits(),
) -> IngestResult:
    """Land a CSV/Parquet/JSON(-lines) file or folder in ``bronze.<table_name>``.

    Arguments override the mapping's settings. Raises ``MappingError`` (a ValueError)
    when the mapping names columns the file does not have, before reading any data.
    Columns holding personal data (``pii_detect``, ``pii_columns``/``not_pii`` override)
    are encrypted at rest; ``subject_column`` names the column identifying the data
    subject, recorded on the table so ``riskctl erase`` finds their rows.
    """
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    spark = run.spark
    mapping = mapping or Mapping()
    path = Path(path)
    bronze_table(table_name, T.StructType([]), (), "")  # check the name before any work
    files, fmt = discover(path, fmt or mapping.format)
    null_tokens = mapping.null_tokens if mapping.null_tokens is not None else DEFAULT_NULL_TOKENS
    threshold = threshold or mapping.threshold or DEFAULT_THRESHOLD
    sample_rows = sample_rows if sample_rows is not None else mapping.sample_rows
    sample_rows = DEFAULT_SAMPLE_ROWS if sample_rows is None else sample_rows
    size = sum(p.stat().st_size for p in files)
    say(f"ingest {path} ({len(files)} {fmt} file(s), {size / 1e6:,.1f} MB) -> bronze.{table_name}")
    src = read_source(
        spark, files, fmt, encoding or mapping.encoding, delimiter or mapping.delimiter, limits
    )
    rename, drop = resolve_mapping(mapping, src.raw_names, src.names)
    data_cols = [rename.get(n, n) for n in src.names if n not in drop]
    df = src.df.select(
        *[F.col(f"`{n}`").alias(rename.get(n, n)) for n in src.names if n not in drop],
        CORRUPT,
        "_source_uri",
    )

    if subject_column is not None and subject_column not in data_cols:
        raise MappingError(
            f"--subject-column {subject_column}: no such column; columns: {', '.join(data_cols)}"
        )
    with src.refusals_first():  # Spark reads the file before it is counted
        personal = pii_detect.detect(
            df.where(F.col(CORRUPT).isNull()), data_cols, force=pii_columns, exempt=not_pii
        )
        say(pii_detect.describe(personal) + (" -- encrypted in bronze" if personal else ""))

        string_cols = {f.name for f in df.schema if isinstance(f.dataType, T.StringType)}
        types: dict[str, Inference] = {
            c: Inference(c, t, 0, 0, declared=True) for c, t in mapping.columns.items()
        }
        to_infer = [c for c in data_cols if c in string_cols and c not in types and mapping.infer]
        if to_infer:
            say(
                f"inferring the types of {len(to_infer)} column(s) from {sample_rows or 'all'} rows"
            )
            with spark_progress(spark, progress), sql_conf(spark, WIDE_ROWS_CONF):
                types.update(infer_types(df, to_infer, null_tokens, sample_rows, threshold))
        types = {c: types[c] for c in data_cols if c in types}
        as_table = _types_of_existing_table(spark, table_name, run, types)
        for c, inf in as_table.items():
            say(
                f"{c}: typed {inf.type.describe()} as in bronze.{table_name} (this file alone "
                f"suggests {types[c].type.describe()})"
            )
        types |= as_table
        ctypes = {c: inf.type for c, inf in types.items()}

    if src.spread:
        df = df.repartition(src.spread)
    checks = _record_checks(fmt, mapping.key, null_tokens, src)
    declared = set(mapping.columns) | set(as_table)
    checked = _checked(df, run, table_name, data_cols, ctypes, checks, null_tokens)
    try:
        say("reading, typing and checking every row")
        with spark_progress(spark, progress):
            with src.refusals_first():
                counted = tally(checked, ctypes)
            verify_counts(checked, src.counted(), sum(counted.by_rule.values()))
            # The sample chose a type; the whole column confirms it, or it is read as text.
            wrong = [
                c
                for c, (failed, parsed) in counted.unparsed.items()
                if c not in declared and failed > (1 - threshold) * (failed + parsed)
            ]
            if wrong:
                say(f"{', '.join(wrong)}: too many values do not parse further down; read as text")
                checked.unpersist()
                for c in wrong:
                    ctypes[c] = ColumnType("string")
                    types[c] = dataclasses.replace(types[c], type=ColumnType("string"))
                checked = _checked(df, run, table_name, data_cols, ctypes, checks, null_tokens)
                counted = tally(checked, ctypes)
            key, distinct = mapping.key, None
            if not key and counted.by_rule.get(None):
                candidates = key_candidates(data_cols, table_name)
                found, distinct = unique_key(checked.where(F.col(RULE).isNull()), candidates)
                key = (found,) if found else ()
        schema = checked.drop("__rule", "__reason", "__record").schema
        table = bronze_table(
            table_name,
            T.StructType([f for f in schema.fields if f.name not in PROVENANCE.fieldNames()]),
            key or ("_content_hash",),
            f"ingested with riskctl ingest-file from {path.name}",
            sensitive=(*(d.column for d in personal), *((RESCUED,) if personal else ())),
        )
        _check_compatible(spark, table, run, schema)
        say(f"landing in {table.full_name} ({table.path(run.settings)})")
        with spark_progress(spark, progress), sql_conf(spark, WIDE_ROWS_CONF):
            counts, failed = land_rows(
                run,
                checked,
                table,
                stage=STAGE,
                source=str(path),
                merge_keys=(*key, "_content_hash") if key else ("_content_hash",),
                by_rule=counted.by_rule,
                rescued=counted.rescued,
                distinct=distinct,
            )
    finally:
        checked.unpersist()
    if subject_column is not None:
        quoted = subject_column.replace("'", "''")
        with locks.table_lock(run.settings, table.full_name):
            spark.sql(
                f"ALTER TABLE delta.`{table.path(run.settings)}` SET TBLPROPERTIES "
                f"('{SUBJECT_PROPERTY}' = '{quoted}')"
            )
    return IngestResult(
        table=table,
        counts=counts,
        format=fmt,
        files=files,
        types=types,
        key=key,
        quarantined_by_rule=failed,
        details=src.details,
        seconds=time.perf_counter() - t0,
        rescued_by_column={c: f for c, (f, _) in counted.unparsed.items() if f},
    )


# --- command line ----------------------------------------------------------------------

_EPILOG = """\
examples:
  riskctl ingest-file loans.csv --table lc_loans
      infer every column's type from the first 10,000 rows and land bronze.lc_loans
  riskctl ingest-file drops/2024/ --table partner_loans --mapping mapping.yaml
      a folder of files; renames, types, key and null tokens from the mapping
  riskctl ingest-file extract.parquet --table core_loans
  riskctl ingest-file events.json --table partner_events --format jsonl

what happens:
  * formats by extension (.csv .tsv .txt .parquet .json .jsonl .ndjson, optionally .gz)
    or --format; CSV per RFC 4180 (quoted fields may hold commas, "" and line breaks),
    encoding detected per file: UTF-8 byte-order mark, else UTF-8, else GBK/GB18030
  * headers become snake_case ("Loan Amount" -> loan_amount; duplicates get _2)
  * text columns get a type: integer, double, money ("$60,000.00", "¥1,234.50",
    "1234.50元"), percent ("13.56%" -> 0.1356), date (28-Feb-97, Dec-2015, 2024/3/5...),
    timestamp, boolean, else string; a type is chosen when >= 98% of the sampled
    non-null values parse; null tokens ("", NA, N/A, n/a, null, None, NaN) are nulls
  * a type is kept only if it holds on the whole column, else the column is text;
    a value that still does not parse lands as received in _rescued_data (column ->
    value) with the typed column null, counted per column in the summary
  * records that cannot be read go to ops.quarantine with the raw text and the
    reason: another number of fields than the header, bytes that are not valid in
    the file's encoding (the file's other lines stay readable), an empty key
  * each file's records are counted without Spark first; a quoted field that never
    closes, a field longer than --max-field-chars or a file larger than --max-bytes
    is refused with the line to look at; UTF-16/UTF-32 files are refused with the
    command that converts them
  * the key: --mapping's key, else a unique id / <table>_id / *_id column, else the
    row's content hash; MERGE insert-only on (key, _content_hash): ingesting the same
    file again lands nothing. ops.manifest gets one reconciled row per attempt.
  mapping example: infra/examples/mapping.yaml
"""


def cmd_ingest_file(args: argparse.Namespace) -> int:

    mapping = load_mapping(Path(args.mapping)) if args.mapping else None
    settings = get_settings()
    _say(f"starting Spark ({settings.spark_master})")
    run = Run(get_spark(settings), settings, run_id=args.run_id)
    result = ingest_file(
        run,
        Path(args.path),
        args.table,
        mapping=mapping,
        fmt=args.format,
        encoding=args.encoding,
        delimiter=args.delimiter,
        sample_rows=args.sample_rows,
        threshold=args.threshold,
        pii_columns=args.pii,
        not_pii=args.not_pii,
        subject_column=args.subject_column,
        progress=_say,
        limits=Limits(args.max_field_chars, args.max_record_bytes, args.max_bytes),
    )
    print(f"\nrun {run.run_id}: {result.summary()}")
    if result.counts.rows_quarantined:
        print(
            "  rejected rows, with rule and reason: ops.quarantine where target = "
            f"'{result.table.full_name}'"
        )
    return 0


def add_ingest_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``ingest-file`` to ``riskctl``'s subcommands (``parser.add_subparsers()``)."""
    help_text = "land your own CSV / Parquet / JSON file (or folder) in bronze.<NAME>"
    p = subparsers.add_parser(
        "ingest-file",
        help=help_text,
        description=help_text + ", typed, with bad rows quarantined.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="PATH", help="a file, or a folder of files of one format")
    p.add_argument(
        "--table", required=True, metavar="NAME", help="bronze table to land in: bronze.NAME"
    )
    p.add_argument("--mapping", metavar="YAML", help="renames, types, key, drops, null tokens")
    p.add_argument("--format", choices=FORMATS, help="override the format told by the extension")
    p.add_argument("--encoding", help="e.g. utf-8, gbk (default: detected per file)")
    p.add_argument("--delimiter", help="CSV field separator (default: sniffed from the header)")
    p.add_argument(
        "--sample-rows",
        type=int,
        default=None,
        metavar="N",
        help=f"rows sampled to infer types ({DEFAULT_SAMPLE_ROWS:,}; 0 = all rows)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"share of values that must parse to choose a type ({DEFAULT_THRESHOLD})",
    )
    p.add_argument("--run-id", default=None, help="run id recorded in ops.manifest")
    p.add_argument(
        "--pii",
        action="append",
        default=[],
        metavar="COL",
        help="treat COL as personal data (encrypted at rest) whatever it looks like; "
        "repeatable. Columns are detected by name and value shape: IDs, SSNs, phones, "
        "e-mails, card and account numbers, names, addresses",
    )
    p.add_argument(
        "--not-pii",
        action="append",
        default=[],
        metavar="COL",
        help="COL was detected as personal data but is not; repeatable",
    )
    p.add_argument(
        "--subject-column",
        metavar="COL",
        help="the column identifying the person a row is about (e.g. customer_id): "
        "`riskctl erase` then finds and deletes their rows in this table",
    )
    p.add_argument(
        "--max-field-chars",
        type=int,
        default=MAX_FIELD_CHARS,
        metavar="N",
        help=f"refuse a file with a CSV field longer than N characters ({MAX_FIELD_CHARS:,})",
    )
    p.add_argument(
        "--max-record-bytes",
        type=int,
        default=MAX_RECORD_BYTES,
        metavar="N",
        help=f"refuse a file with a JSON line longer than N bytes ({MAX_RECORD_BYTES:,})",
    )
    p.add_argument(
        "--max-bytes",
        type=int,
        default=MAX_BYTES,
        metavar="N",
        help=f"refuse a file larger than N bytes once decompressed ({MAX_BYTES:,})",
    )
    p.set_defaults(fn=cmd_ingest_file)
    return p
