"""Bring your own extract: land any loan-level CSV, Parquet or JSON file in bronze.

``riskctl ingest-file PATH --table NAME [--mapping mapping.yaml]`` reads a file (or a
folder of them), names its columns in snake_case, gives every text column a type
(declared in a mapping, or inferred from a sample), quarantines the rows whose values do
not parse -- each under rule ``type_<column>`` with the value quoted in the reason, never
silently nulled -- and MERGEs the rest into ``bronze.<NAME>`` (insert-only on key and
content hash, so ingesting the same file again lands nothing). One manifest row per run
reconciles rows read = landed + unchanged + quarantined.

Built from the shared pieces in ``riskcontrol.core``: ``readers`` (encoding, RFC 4180
CSV, JSON, snake_case headers), ``values`` (the parsers and ``ColumnType``) and
``landing`` (rules, quarantine, insert-only MERGE, reconciled manifest row). This module
adds what is particular to a file nobody here wrote: ``infer_types`` (two small
aggregations over a sample) and ``decide_type``, ``type_checks`` (rule ``type_<col>``
per typed column), the YAML mapping, and the ``ingest-file`` command.

Everything runs as Spark SQL expressions (no Python UDF, nothing collected but a
per-column summary), so a million-row file is fine on a laptop.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import PROVENANCE, SUBJECT_PROPERTY, TABLES, Table
from riskcontrol.core.config import get_settings
from riskcontrol.core.landing import (
    Rule,
    checked_rows,
    land_rows,
    rows_by_rule,
    tag_failures,
    with_provenance,
)
from riskcontrol.core.readers import (
    CORRUPT,
    FORMATS,
    _json_multiline,
    detect_encoding,
    discover,
    normalize_headers,
    read_csv,
    read_json,
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


def type_checks(
    types: dict[str, ColumnType],
    null_tokens: Sequence[str] = DEFAULT_NULL_TOKENS,
    typed: Callable[[str], str] = lambda c: TYPED_PREFIX + c,
) -> list[Rule]:
    """One check per non-string column: rule ``type_<col>`` fails when the raw value is not
    a null token and does not parse; the reason quotes the value. ``typed(col)`` names
    the column holding the typed value."""
    checks = []
    for c, t in types.items():
        if t.type == "string":
            continue
        raw = F.col(f"`{c}`").cast("string")
        checks.append(
            Rule(
                f"type_{c}",
                is_null_token(raw, null_tokens) | F.col(f"`{typed(c)}`").isNotNull(),
                F.format_string("%s: '%s' is not %s", F.lit(c), raw, F.lit(_a(t))),
            )
        )
    return checks


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


def unique_key(df: DataFrame, candidates: Sequence[str]) -> str | None:
    """The first candidate column with a value on every row, all distinct (one pass)."""
    if not candidates:
        return None
    aggs = [F.count(F.lit(1)).alias("rows")]
    for i, c in enumerate(candidates):
        aggs += [
            F.count(F.col(f"`{c}`")).alias(f"n{i}"),
            F.count_distinct(F.col(f"`{c}`")).alias(f"d{i}"),
        ]
    row = df.agg(*aggs).first()
    for i, c in enumerate(candidates):
        if row["rows"] and row[f"n{i}"] == row["rows"] == row[f"d{i}"]:
            return c
    return None


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


def _check_compatible(spark: SparkSession, table: Table, run: Run, schema: T.StructType) -> None:
    if not lakehouse.exists(spark, table, run.settings):
        return
    # simpleString: types without nullability, which Delta may record differently
    read = lakehouse.read(spark, table, run.settings).schema
    existing = {f.name: f.dataType.simpleString() for f in read}
    new = {f.name: f.dataType.simpleString() for f in schema}
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
            "types in a mapping to match it, or ingest into a new --table"
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
            f" + quarantined {c.rows_quarantined:,}"
        )
        for rule, n in self.quarantined_by_rule.items():
            lines.append(f"    quarantined {rule}: {n:,}")
        rate = c.rows_in / self.seconds if self.seconds else 0.0
        lines.append(f"  {self.seconds:.1f}s, {rate:,.0f} rows/s")
        return "\n".join(lines)


@dataclass(frozen=True)
class Source:
    """A file or folder read as a DataFrame: data columns named ``names`` (snake_case
    of the file's ``raw_names``), ``__corrupt`` and ``_source_uri``."""

    df: DataFrame
    format: str
    files: list[Path]
    raw_names: list[str]
    names: list[str]
    details: list[str]
    spread: int = 0  # repartition to this many partitions before per-row work (0: no)


def read_source(
    spark: SparkSession,
    files: Sequence[Path],
    fmt: str,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Source:
    """Read ``files`` of format ``fmt`` (see ``discover``) with snake_case column names."""
    files = list(files)
    details: list[str] = []
    if fmt == "csv":
        sniffed = [sniff_csv(p, encoding, delimiter) for p in files]
        df = read_csv(spark, sniffed)
        names = [c for c in df.columns if c not in (CORRUPT, "_source_uri")]
        raw_names = list(dict.fromkeys(h for f in sniffed for h in f.header))
        if len(raw_names) != len(names):  # files with different headers: no 1:1 titles
            raw_names = names
        multi = sum(f.multiline for f in sniffed)
        details.append(
            f"encoding {', '.join(sorted({f.encoding for f in sniffed}))}; delimiter "
            f"{', '.join(sorted({repr(f.delimiter) for f in sniffed}))}; {multi} of "
            f"{len(sniffed)} file(s) with line breaks inside quoted fields"
        )
        spread = 0
        if multi:
            # Such files are read whole, one task each: spread the rows over the cores
            # before the per-row work when there are fewer files than cores.
            cores = spark.sparkContext.defaultParallelism
            if sum(f.size for f in sniffed) > SPREAD_BYTES and len(sniffed) < cores:
                spread = cores
                details.append(f"read whole, then spread over {cores} partitions")
        return Source(df, fmt, files, raw_names, names, details, spread)
    if fmt in ("json", "jsonl"):
        enc = encoding or detect_encoding(files[0])
        multiline = fmt == "json" and _json_multiline(files[0], enc)
        df = read_json(spark, files, multiline, enc)
        details.append(f"encoding {enc}; {'whole documents' if multiline else 'JSON lines'}")
        corrupt = F.col(CORRUPT)
        source_uri = F.col("_source_uri")
    elif fmt == "parquet":
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
    return Source(df, fmt, files, raw_names, names, details)


SPREAD_BYTES = 64 << 20


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
        spark, files, fmt, encoding or mapping.encoding, delimiter or mapping.delimiter
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
        say(f"inferring the types of {len(to_infer)} column(s) from {sample_rows or 'all'} rows")
        with spark_progress(spark, progress), sql_conf(spark, WIDE_ROWS_CONF):
            types.update(infer_types(df, to_infer, null_tokens, sample_rows, threshold))
    types = {c: types[c] for c in data_cols if c in types}
    ctypes = {c: inf.type for c, inf in types.items()}

    if src.spread:
        df = df.repartition(src.spread)
    # Raw columns (for the quarantine), typed ones, provenance; the content hash is that
    # of the row as received. Cached: every later step reads it.
    staged = df.withColumns(
        {
            TYPED_PREFIX + c: typed_value(F.col(f"`{c}`").cast("string"), t, null_tokens)
            for c, t in ctypes.items()
        }
    )
    staged = with_provenance(
        staged, run.run_id, f"file.{table_name}", F.col("_source_uri"), hashed=data_cols
    )
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
    if mapping.key:
        ok = F.lit(True)
        for k in mapping.key:
            ok = ok & clean(F.col(f"`{k}`").cast("string"), null_tokens).isNotNull()
        checks.append(Rule("missing_key", ok, F.lit(f"key {', '.join(mapping.key)} is empty")))
    checks += type_checks(ctypes, null_tokens)
    final = [
        F.col(f"`{TYPED_PREFIX + c}`" if c in ctypes else f"`{c}`").alias(c) for c in data_cols
    ] + [F.col(c) for c in PROVENANCE.fieldNames()]
    record = [*data_cols, "_source", "_source_uri", "_content_hash"]
    with sql_conf(spark, WIDE_ROWS_CONF):  # the cache's plan is made here
        checked = checked_rows(tag_failures(staged, checks), final, record).cache()
    try:
        say("reading, typing and checking every row")
        with spark_progress(spark, progress):
            by_rule = rows_by_rule(checked)
            key = mapping.key
            if not key:
                candidates = key_candidates(data_cols, table_name)
                found = unique_key(checked, candidates)
                key = (found,) if found else ()
        schema = checked.drop("__rule", "__reason", "__record").schema
        table = bronze_table(
            table_name,
            T.StructType([f for f in schema.fields if f.name not in PROVENANCE.fieldNames()]),
            key or ("_content_hash",),
            f"ingested with riskctl ingest-file from {path.name}",
            sensitive=tuple(d.column for d in personal),
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
                by_rule=by_rule,
            )
    finally:
        checked.unpersist()
    if subject_column is not None:
        quoted = subject_column.replace("'", "''")
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
  * rows whose values do not parse are quarantined in ops.quarantine under rule
    type_<column> with the value in the reason, never silently nulled
  * the key: --mapping's key, else a unique id / <table>_id / *_id column, else the
    row's content hash; MERGE insert-only on (key, _content_hash): ingesting the same
    file again lands nothing. ops.manifest gets one reconciled row per run.
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
    p.set_defaults(fn=cmd_ingest_file)
    return p
