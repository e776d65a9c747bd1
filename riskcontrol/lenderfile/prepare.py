"""Any lender's loan-level file, bronze -> silver, ready for model evaluation.

``riskctl evaluate-dataset PATH --target COL --bad VALUE`` must train on a file nobody
described to us: money strings, percentages, "36 months", two-digit-year dates, ids,
free text, employer titles with thousands of levels. This module is its data half:

* ``read_bronze``: the file as received -- every column a string (CSV per RFC 4180,
  read whole so quoted line breaks work; Parquet cast to text), the raw text of records
  that do not split into the header's fields, provenance and a stable ``_row_id``.
* ``profile``: what each column is, judged on a sample with the same parsers ``clean``
  uses, and why ("99.9% of 19,980 non-missing sampled values parse as money amounts").
* ``clean``: the label (1.0 when the target is one of the bad values), numeric columns
  as doubles (a value that does not parse becomes null and is counted, the row stays),
  categoricals as strings (rare levels of high-cardinality ones -> ``__other__``), the
  event date and month; rows without a target or a usable time are quarantined with the
  rule, the reason and the raw record -- nothing is dropped silently, and the counts
  must reconcile (rows read = rows used + quarantined).
* ``land``: bronze and silver as Delta tables (``bronze.dataset_<slug>``,
  ``silver.dataset_<slug>``), rejected rows in ``ops.quarantine``, a manifest row; the
  CSV is parsed once, everything after reads the columnar bronze copy.

The parsers are those of ``riskcontrol.lenderfile.land`` (money, percent, null tokens, date
formats), so ``ingest-file`` and ``evaluate-dataset`` read a value the same way; only the
two-digit-year pivot differs: a loan book's dates lie in the past, so a year more than
one year ahead is moved back a century (97 -> 1997, 68 -> 1968, 11 -> 2011).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.core import lakehouse, landing, pii, readers, values
from riskcontrol.core.catalog import OPS_QUARANTINE, PROVENANCE_COLUMNS, Table
from riskcontrol.core.config import Settings
from riskcontrol.core.landing import Rule, with_provenance
from riskcontrol.core.runs import ReconciliationError, Run, StepCounts
from riskcontrol.core.spark import WIDE_ROWS_CONF, sql_conf
from riskcontrol.lenderfile import pii_detect

STAGE = "dataset"
ROW_ID = "_row_id"
CORRUPT = "_corrupt_record"  # the raw text of a CSV record that does not fit the header
OTHER = "__other__"
LABEL, EVENT_DATE, EVENT_MONTH = "label", "event_date", "event_month"
RULES = ("malformed_row", "missing_target", "invalid_time")

KINDS = (
    "numeric",
    "date",
    "categorical",
    "high_cardinality_categorical",
    "id",
    "text",
    "constant",
    "dropped",
    "target",
    "personal",  # identifies a person (pii_detect): encrypted in bronze, never a feature
)
DEFAULT_SAMPLE_ROWS = 20_000
DEFAULT_MAX_LEVELS = 30
DEFAULT_THRESHOLD = 0.95  # share of non-missing values that must parse to call a type
# A date column later than the --time-col on more of its rows than this is not a feature:
# it records what happened after the decision (1% leaves room for a few keying errors).
AFTER_TIME_SHARE = 0.01
MIN_ID_ROWS = 1_000  # unique values make an id without an id-like name only on this many
TEXT_MIN_CHARS = 40  # mean length from which mostly distinct strings are free text
NULL_TOKENS = values.DEFAULT_NULL_TOKENS
# ingest's date formats, plus timestamps (a Parquet date/timestamp column cast to text)
DATE_FORMATS = (*values.DATE_FORMATS, *values.TIMESTAMP_FORMATS[:2])
NUMERIC_PARSERS = ("plain", "money", "percent", "unit")
_PARSER_TEXT = {
    "plain": "numbers",
    "money": "money amounts ($, thousands separators)",
    "percent": "percentages (13.56% -> 0.1356)",
    "unit": "numbers with a unit (36 months -> 36)",
}
_UNIT = (
    r"^([+-]?\d+(?:\.\d+)?)\s*\+?\s*(?i:months?|mos?|years?|yrs?|weeks?|wks?|days?|hours?|hrs?)$"
)
_SIMPLE_MONEY = r"^\$?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$"
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key)$|^id_|_(no|num|number)$")
_CODE = r"^[A-Za-z0-9_-]+$"  # an identifier's shape: one token, no decimal point
_RESERVED = (ROW_ID, LABEL, EVENT_DATE, EVENT_MONTH)


# --- parsing values ----------------------------------------------------------------------


def raw_value(c: Column | str) -> Column:
    """The value as text, trimmed, null when missing ("", NA, n/a, null, ...)."""
    c = F.col(f"`{c}`") if isinstance(c, str) else c
    return values.clean(c.cast("string"), NULL_TOKENS)


def parse_with_unit(v: Column) -> Column:
    """``"36 months"``, ``"10+ years"`` -> 36.0, 10.0 (time units only: ``"123xx"`` is a
    code, not a number)."""
    digits = F.regexp_extract(v, _UNIT, 1)
    return F.when(digits != "", digits.try_cast("double"))


def parse_number(v: Column, parser: str) -> Column:
    """A cleaned value (see ``raw_value``) as a double, read the way ``parser`` says.

    ``money`` also takes plain numbers; ``percent`` is a fraction and reads a bare number
    as a percentage too (``45.3`` -> 0.453); ``unit`` takes bare numbers as they are.
    """
    plain = values.parse_double(v)
    if parser == "plain":
        return plain
    if parser == "money":
        # The common "$12,000.00" costs one regex; anything else goes to ingest's parser.
        simple = F.translate(v, "$,", "").try_cast("double")
        return F.when(v.rlike(_SIMPLE_MONEY), simple).otherwise(
            F.coalesce(values.parse_money(v), plain)
        )
    if parser == "percent":
        bare = values.parse_percent(F.concat(v, F.lit("%")))  # decimal arithmetic, no noise
        return F.coalesce(values.parse_percent(v), bare)
    if parser == "unit":
        return F.coalesce(parse_with_unit(v), plain)
    raise ValueError(f"unknown numeric parser {parser!r}; parsers are {NUMERIC_PARSERS}")


def date_shaped(v: Column, formats: Sequence[str] = DATE_FORMATS) -> Column:
    """True when the value has the shape of one of ``formats`` (one regex: a cheap test
    before trying each format)."""
    shapes = "|".join(f"(?:{values.format_regex(f)[1:-1]})" for f in formats)
    return v.rlike(f"^(?:{shapes})$")


# --- bronze ------------------------------------------------------------------------------


_FILE_SUFFIXES = (".gz", ".csv", ".tsv", ".txt", ".parquet", ".pq")


def dataset_slug(path: Path | str) -> str:
    """``LoanStats3a.csv.gz`` -> ``loanstats3a``: the table name's part from the file."""
    stem = Path(path).name
    for suffix in _FILE_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return (readers.snake_case(stem) or "file")[:55]


def read_bronze(spark: SparkSession, path: Path | str, ingest_id: str | None = None) -> DataFrame:
    """A CSV or Parquet file (or folder of them) as received: ``_row_id``, the file's
    columns as strings (snake_case names), ``_corrupt_record`` and the provenance columns.

    CSV: RFC 4180 (``""`` inside quotes, quoted line breaks), encoding and delimiter
    sniffed, always read whole (multiLine), so a file is one task and ``_row_id`` is the
    1-based record number in it. Parquet: every column cast to text; ``_row_id`` is the
    1-based row number of a single file (for a folder: unique, stable for one Spark
    configuration). The content hash covers the file's columns and the corrupt record.
    """
    files, fmt = readers.discover(Path(path))
    if fmt == "csv":
        sniffed = [dataclasses.replace(readers.sniff_csv(p), multiline=True) for p in files]
        df = readers.read_csv(spark, sniffed).withColumnRenamed(readers.CORRUPT, CORRUPT)
        names = [c for c in df.columns if c not in (CORRUPT, "_source_uri")]
        # Files are never split (multiLine): the ids count the records of each file.
        df = df.withColumn(ROW_ID, F.monotonically_increasing_id() + 1)
    elif fmt == "parquet":
        raw = spark.read.parquet(*[str(p) for p in files])
        names = readers.normalize_headers(raw.columns)
        # One file: its row numbers. Several: unique ids (a file may span several tasks).
        index = F.col("_metadata.row_index") if len(files) == 1 else F.monotonically_increasing_id()
        df = raw.select(
            *[
                F.col(f"`{r}`").cast("string").alias(n)
                for r, n in zip(raw.columns, names, strict=True)
            ],
            F.lit(None).cast("string").alias(CORRUPT),
            F.col("_metadata.file_path").alias("_source_uri"),
            (index + 1).alias(ROW_ID),
        )
    else:
        raise ValueError(f"{path}: evaluate-dataset reads CSV or Parquet files, not {fmt}")
    df = df.select(ROW_ID, *[F.col(f"`{c}`") for c in names], CORRUPT, "_source_uri")
    return with_provenance(
        df,
        ingest_id or f"dataset-{uuid.uuid4().hex[:12]}",
        f"file.dataset_{dataset_slug(path)}",
        F.col("_source_uri"),
        hashed=[*names, CORRUPT],
    )


def data_columns(bronze: DataFrame) -> list[str]:
    """The file's own columns of a bronze frame (no row id, corrupt record, provenance)."""
    skip = {ROW_ID, CORRUPT, *PROVENANCE_COLUMNS}
    return [c for c in bronze.columns if c not in skip]


def resolve_column(columns: Sequence[str], name: str, what: str) -> str:
    """The column ``name`` means: as given, as snake_case (how headers were renamed), or
    ignoring case; an error lists the columns otherwise."""
    for candidate in (name, readers.snake_case(name)):
        if candidate in columns:
            return candidate
    folded = [c for c in columns if c.lower() == name.strip().lower()]
    if len(folded) == 1:
        return folded[0]
    raise ValueError(
        f"{what} {name!r} is not a column of the file; its columns are: " + ", ".join(columns)
    )


# --- profile -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnProfile:
    """What a column is and why, from a sample: its kind, how ``clean`` reads it, and the
    evidence (sampled rows, missing, distinct, values that did not parse)."""

    name: str
    kind: str
    reason: str
    rows: int = 0
    missing: int = 0
    distinct: int = 0
    parser: str | None = None  # numeric columns: plain, money, percent or unit
    formats: tuple[str, ...] = ()  # date columns: Spark patterns, tried in order
    unparsed: int = 0  # non-missing sampled values the chosen parser rejects
    levels: tuple[str, ...] = ()  # most frequent values first (kept levels: categoricals)
    example: str | None = None
    feature: str | None = None  # the silver column it becomes, None when not a feature

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; kinds are {', '.join(KINDS)}")


@dataclass(frozen=True)
class ColumnStats:
    """Counts over a column's sampled values (``sample_stats``), input of ``decide``."""

    name: str
    rows: int
    non_missing: int
    distinct: int
    max_count: int  # occurrences of the most frequent value (1: all distinct)
    mean_length: float
    code_like: int  # values shaped like an identifier (one token, no decimal point)
    numeric: dict[str, int]  # parser -> values it parses
    dates: dict[str, int]  # format -> values it parses, plus "any"
    levels: tuple[str, ...]  # up to max_levels most frequent values
    example: str | None


def _feature_name(name: str) -> str:
    return f"{name}_col" if name in _RESERVED else name


def _share(k: int, n: int) -> str:
    return f"{k / n:.1%} of {n:,} non-missing sampled values" if n else "no sampled values"


def _numeric_choice(s: ColumnStats) -> tuple[str, int]:
    """The numeric parser for the column and how many values it parses: the
    non-plain reading most values need (money, percent, unit), else plain numbers."""
    extra = {p: s.numeric[p] - s.numeric["plain"] for p in ("money", "percent", "unit")}
    best = max(extra, key=lambda p: (extra[p], -NUMERIC_PARSERS.index(p)))
    parser = best if extra[best] > 0 else "plain"
    return parser, s.numeric[parser]


def _date_choice(s: ColumnStats) -> tuple[tuple[str, ...], int]:
    """The best single date format if it alone parses enough, else every format that
    parses something, the most successful first."""
    counts = {f: s.dates[f] for f in DATE_FORMATS}
    best = max(DATE_FORMATS, key=lambda f: (counts[f], -DATE_FORMATS.index(f)))
    if counts[best] == s.dates["any"]:
        return (best,), counts[best]
    used = sorted((f for f in DATE_FORMATS if counts[f]), key=lambda f: -counts[f])
    return tuple(used), s.dates["any"]


def decide(
    s: ColumnStats,
    role: str | None = None,
    has_time: bool = False,
    max_levels: int = DEFAULT_MAX_LEVELS,
    threshold: float = DEFAULT_THRESHOLD,
) -> ColumnProfile:
    """A column's kind from its sampled statistics (pure; ``role``: drop, target, time).

    In order: dropped by the user, the target, the time column; constant (no value, or
    one value and never missing); id (every value distinct, with an id-like name, or on
    at least ``MIN_ID_ROWS`` values shaped like codes); numeric (``threshold`` of values
    parse); date; text (mean length >= ``TEXT_MIN_CHARS``, mostly distinct); categorical
    up to ``max_levels`` levels, else high-cardinality (top ``max_levels`` kept).
    """
    n = s.non_missing
    base = {
        "name": s.name,
        "rows": s.rows,
        "missing": s.rows - n,
        "distinct": s.distinct,
        "example": s.example,
    }
    if role == "drop":
        return ColumnProfile(kind="dropped", reason="dropped by --drop", **base)
    if role == "target":
        return ColumnProfile(kind="target", reason="the --target column", levels=s.levels, **base)
    if role == "time":
        formats, parsed = _date_choice(s)
        if not parsed:
            raise ValueError(
                f"--time-col {s.name}: none of its sampled values parse as a date "
                f"(e.g. {s.example!r}); formats tried: {', '.join(DATE_FORMATS)}"
            )
        return ColumnProfile(
            kind="date",
            reason=f"the --time-col: {_share(parsed, n)} parse as dates ({' | '.join(formats)})",
            formats=formats,
            unparsed=n - parsed,
            feature=EVENT_DATE,
            **base,
        )
    if n == 0:
        return ColumnProfile(kind="constant", reason="every sampled value is missing", **base)
    if s.distinct == 1 and n == s.rows:
        return ColumnProfile(
            kind="constant", reason=f"one value ({s.example!r}) on every sampled row", **base
        )
    unique = s.max_count == 1 and n > 1
    id_name = _ID_NAME.search(s.name) is not None
    if unique and (id_name or (n >= MIN_ID_ROWS and s.code_like == n)):
        why = "an id-like name" if id_name else "every value shaped like a code"
        return ColumnProfile(
            kind="id",
            reason=f"{n:,} distinct values in {n:,} non-missing sampled values, {why}",
            **base,
        )
    parser, parsed = _numeric_choice(s)
    if not id_name and parsed >= threshold * n:
        return ColumnProfile(
            kind="numeric",
            reason=f"{_share(parsed, n)} parse as {_PARSER_TEXT[parser]}",
            parser=parser,
            unparsed=n - parsed,
            feature=_feature_name(s.name),
            **base,
        )
    formats, dated = _date_choice(s)
    if dated >= threshold * n:
        reason = f"{_share(dated, n)} parse as dates ({' | '.join(formats)})"
        feature = f"days_since_{s.name}" if has_time else None
        reason += (
            f"; used as {feature}, days from it to the --time-col date"
            if has_time
            else "; not used: without --time-col there is no date to measure it from"
        )
        return ColumnProfile(
            kind="date", reason=reason, formats=formats, unparsed=n - dated, feature=feature, **base
        )
    if s.mean_length >= TEXT_MIN_CHARS and s.distinct >= 0.5 * n:
        return ColumnProfile(
            kind="text",
            reason=f"long free text (mean {s.mean_length:.0f} characters, "
            f"{s.distinct / n:.0%} of values distinct)",
            **base,
        )
    near = f" ({_share(parsed, n)} parse as {_PARSER_TEXT[parser]})" if parsed >= n / 2 else ""
    if id_name:
        near = " (an id-like name, but values repeat)" + near
    if s.distinct <= max_levels:
        return ColumnProfile(
            kind="categorical",
            reason=f"{s.distinct} levels in the sample{near}",
            levels=s.levels,
            feature=_feature_name(s.name),
            **base,
        )
    return ColumnProfile(
        kind="high_cardinality_categorical",
        reason=f"{s.distinct:,} levels in the sample{near}: the {max_levels} most frequent "
        f"kept, the rest become {OTHER!r}",
        levels=s.levels[:max_levels],
        feature=_feature_name(s.name),
        **base,
    )


def sample_stats(
    bronze: DataFrame,
    columns: Sequence[str],
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    max_levels: int = DEFAULT_MAX_LEVELS,
) -> list[ColumnStats]:
    """``ColumnStats`` of ``columns`` over a random sample of about ``sample_rows``
    well-formed rows (all of them when there are fewer).

    Random, not the first rows: files are often sorted by date, and a column a lender
    began to fill later would look empty at the top. The sample is unpivoted to (column,
    value) and counted per distinct value (cached), so each parser runs once per distinct
    value; one aggregation gives the counts, a second the most frequent values.
    """
    sample = bronze.where(F.col(CORRUPT).isNull())
    rows = bronze.count()  # a Delta table answers from its log
    if rows > sample_rows:
        sample = sample.sample(fraction=min(1.0, 1.1 * sample_rows / rows), seed=7)
    sample = sample.limit(sample_rows)
    sample = sample.select(*[raw_value(c).alias(f"c{i}") for i, c in enumerate(columns)])
    counted = (
        sample.unpivot([], sample.columns, "__column", "__v")
        .groupBy("__column", "__v")
        .agg(F.count(F.lit(1)).alias("__n"))
        .cache()
    )
    try:
        v, w = F.col("__v"), F.col("__n")

        def total(cond: Column) -> Column:
            return F.sum(F.when(cond, w).otherwise(0))

        aggs = [
            F.sum(w).alias("rows"),
            total(v.isNotNull()).alias("non_missing"),
            F.count(v).alias("distinct"),
            F.max(F.when(v.isNotNull(), w)).alias("max_count"),
            F.sum(F.length(v) * w).alias("chars"),
            total(v.rlike(_CODE)).alias("code_like"),
            F.first(v, ignorenulls=True).alias("example"),
        ]
        aggs += [total(parse_number(v, p).isNotNull()).alias(p) for p in NUMERIC_PARSERS]
        shaped = date_shaped(v)  # most values are not dates: one regex rules them out
        aggs.append(
            total(shaped & values.parse_date(v, DATE_FORMATS).isNotNull()).alias("date_any")
        )
        aggs += [
            total(shaped & values.parse_date(v, (f,)).isNotNull()).alias(f"d{i}")
            for i, f in enumerate(DATE_FORMATS)
        ]
        stats = {r["__column"]: r for r in counted.groupBy("__column").agg(*aggs).collect()}
        ranked = counted.where(v.isNotNull()).withColumn(
            "__rank",
            F.row_number().over(Window.partitionBy("__column").orderBy(w.desc(), v.asc())),
        )
        levels: dict[str, list[str]] = {}
        for r in (
            ranked.where(F.col("__rank") <= max_levels).orderBy("__column", "__rank").collect()
        ):
            levels.setdefault(r["__column"], []).append(r["__v"])
    finally:
        counted.unpersist()
    out = []
    for i, c in enumerate(columns):
        r = stats.get(f"c{i}")
        if r is None:  # an empty sample (a file with no well-formed row)
            numbers, dates = (
                dict.fromkeys(NUMERIC_PARSERS, 0),
                dict.fromkeys(("any", *DATE_FORMATS), 0),
            )
            out.append(ColumnStats(c, 0, 0, 0, 0, 0.0, 0, numbers, dates, (), None))
            continue
        n = r["non_missing"]
        out.append(
            ColumnStats(
                name=c,
                rows=r["rows"],
                non_missing=n,
                distinct=r["distinct"],
                max_count=r["max_count"] or 0,
                mean_length=r["chars"] / n if n else 0.0,
                code_like=r["code_like"],
                numeric={p: r[p] for p in NUMERIC_PARSERS},
                dates={"any": r["date_any"], **{f: r[f"d{j}"] for j, f in enumerate(DATE_FORMATS)}},
                levels=tuple(levels.get(f"c{i}", ())),
                example=r["example"],
            )
        )
    return out


def profile(
    bronze: DataFrame,
    target: str,
    drop: Sequence[str] = (),
    time_col: str | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    max_levels: int = DEFAULT_MAX_LEVELS,
    threshold: float = DEFAULT_THRESHOLD,
    personal: Sequence[pii_detect.Detection] = (),
) -> list[ColumnProfile]:
    """Each data column's ``ColumnProfile``, in file order, judged on a sample (see
    ``decide``); ``personal`` columns are profiled as such, unread. Names may be given as
    in the file's header or in snake_case."""
    columns = data_columns(bronze)
    roles = {resolve_column(columns, d, "--drop column"): "drop" for d in drop}
    target = resolve_column(columns, target, "--target")
    if roles.get(target):
        raise ValueError(f"--target {target} is also in --drop: drop other columns only")
    roles[target] = "target"
    if time_col is not None:
        time_col = resolve_column(columns, time_col, "--time-col")
        if roles.get(time_col):
            raise ValueError(f"--time-col {time_col} is also the --target or in --drop")
        roles[time_col] = "time"
    personal = {d.column: d for d in personal}
    clash = [c for c in personal if roles.get(c) in ("target", "time")]
    if clash:
        raise ValueError(
            f"{', '.join(clash)}: the target or time column holds personal data; if it does "
            "not, say so with --not-pii"
        )
    measured = [c for c in columns if c not in personal]
    stats = {s.name: s for s in sample_stats(bronze, measured, sample_rows, max_levels)}
    profiles = [
        ColumnProfile(
            name=c,
            kind="personal",
            reason=f"{personal[c].reason}: encrypted in bronze, not a feature "
            f"(--allow-pii-feature {c} to use it)",
        )
        if c in personal
        else decide(stats[c], roles.get(c), time_col is not None, max_levels, threshold)
        for c in columns
    ]
    return profiles if time_col is None else after_time(bronze, profiles, time_col)


def after_time(bronze: DataFrame, profiles: list[ColumnProfile], time_col: str) -> list:
    """Date columns dated after the ``--time-col`` on more than ``AFTER_TIME_SHARE`` of
    the rows where both parse are left out, and the profile says why.

    A date later than the decision describes what happened after it: a last payment, a
    charge-off, a recovery, a last credit pull. As a feature it would carry the outcome
    into the model, which then looks far better on the file than it can be on new
    applications. Counted on every well-formed row, in one aggregation."""
    by_name = {p.name: p for p in profiles}
    dated = [p for p in profiles if p.kind == "date" and p.feature not in (None, EVENT_DATE)]
    if not dated:
        return profiles
    event = values.parse_date(raw_value(time_col), by_name[time_col].formats)
    sums = []
    for i, p in enumerate(dated):
        day = values.parse_date(raw_value(p.name), p.formats)
        both = event.isNotNull() & day.isNotNull()
        sums.append(F.sum(F.when(both, 1).otherwise(0)).alias(f"n{i}"))
        sums.append(F.sum(F.when(both & (day > event), 1).otherwise(0)).alias(f"a{i}"))
    counts = bronze.where(F.col(CORRUPT).isNull()).agg(*sums).first()
    late = {}
    for i, p in enumerate(dated):
        n, after = int(counts[f"n{i}"] or 0), int(counts[f"a{i}"] or 0)
        if after > AFTER_TIME_SHARE * n:
            late[p.name] = dataclasses.replace(
                p,
                feature=None,
                reason=p.reason.split("; used as")[0]
                + f"; not used: later than the --time-col {time_col} on {after / n:.1%} of "
                f"the {n:,} rows where both are dated, so it tells what happened after the "
                "decision (a payment, charge-off or update date would leak the outcome)",
            )
    return [late.get(p.name, p) for p in profiles]


profile_columns = profile  # ``clean``'s argument named ``profile`` hides the function


# --- clean -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetCounts:
    """Rows read = rows used + rows quarantined (by rule), or ``ReconciliationError``;
    ``unparsed``: per numeric feature, values of used rows that did not parse (null)."""

    rows_read: int
    rows_used: int
    quarantined: dict[str, int]
    unparsed: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        q = sum(self.quarantined.values())
        if self.rows_read != self.rows_used + q:
            raise ReconciliationError(
                f"rows read {self.rows_read:,} != rows used {self.rows_used:,} + quarantined "
                f"{q:,} {self.quarantined}: {self.rows_read - self.rows_used - q:+,} rows "
                "unaccounted for; report this with the file"
            )

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())


@dataclass
class CleanedDataset:
    """Model-ready rows (``data``) and the rows set aside (``quarantine``).

    ``data``: ``_row_id``, ``label`` (double), ``event_date``/``event_month`` with a
    time column, then the ``numeric`` (double) and ``categorical`` (string) features,
    then (landed) ``<column>_ref`` for each personal column: its keyed pseudonym.
    ``quarantine``: ``_row_id``, ``rule``, ``reason``, ``record`` (the raw row as JSON),
    ``source_uri``. ``counts()`` reconciles them with the rows read.
    """

    data: DataFrame
    quarantine: DataFrame
    numeric: list[str]
    categorical: list[str]
    profiles: list[ColumnProfile]
    target: str
    bad_values: tuple[str, ...]
    time_col: str | None = None
    tables: dict[str, str] = field(default_factory=dict)  # bronze / silver names once landed
    checked: DataFrame | None = field(default=None, repr=False)
    bronze: DataFrame | None = field(default=None, repr=False)
    _counts: DatasetCounts | None = field(default=None, repr=False)

    def counts(self) -> DatasetCounts:
        """Rows read, used and quarantined by rule, reconciled (computed once)."""
        if self._counts is None:
            self._counts = tally(self.bronze, self.checked, self.numeric)
        return self._counts


def _unparsed_flag(name: str) -> str:
    return f"__unparsed__{name}"


def rule_counts(
    checked: DataFrame, numeric: Sequence[str]
) -> tuple[int, dict[str, int], dict[str, int]]:
    """From ``clean``'s checked frame, in one aggregation: rows used, rows quarantined by
    rule (in ``RULES`` order) and, per numeric feature, used rows whose value did not parse."""
    aggs = [F.count(F.lit(1)).alias("rows")]
    aggs += [F.count_if(F.col(_unparsed_flag(c))).alias(f"u{i}") for i, c in enumerate(numeric)]
    by_rule = {r["__rule"]: r for r in checked.groupBy("__rule").agg(*aggs).collect()}
    used = by_rule.get(None)
    return (
        used["rows"] if used else 0,
        {rule: by_rule[rule]["rows"] for rule in RULES if rule in by_rule},
        {c: used[f"u{i}"] if used else 0 for i, c in enumerate(numeric)},
    )


def tally(bronze: DataFrame, checked: DataFrame, numeric: Sequence[str]) -> DatasetCounts:
    """Rows read (counted on ``bronze``) reconciled with ``rule_counts`` (two jobs)."""
    rows_read = bronze.count()
    used, quarantined, unparsed = rule_counts(checked, numeric)
    return DatasetCounts(rows_read, used, quarantined, unparsed)


def _check_profiles(profiles: Sequence[ColumnProfile], target: str, time_col: str | None) -> None:
    kinds = {p.name: p.kind for p in profiles}
    if kinds.get(target) != "target":
        raise ValueError(
            f"the profile was made for another target than {target!r}: "
            "profile again with this --target"
        )
    if time_col is not None and not any(p.feature == EVENT_DATE for p in profiles):
        raise ValueError(f"the profile was made without --time-col {time_col}: profile again")


def label_column(target: Column, bad_values: Sequence[str]) -> Column:
    """1.0 when the cleaned target is one of ``bad_values`` (trimmed, any case), else 0.0."""
    bad = sorted({b.strip().lower() for b in bad_values})
    return F.when(F.lower(target).isin(bad), F.lit(1.0)).otherwise(F.lit(0.0))


def clean(
    bronze: DataFrame,
    target: str,
    bad_values: Sequence[str],
    drop: Sequence[str] = (),
    time_col: str | None = None,
    profile: Sequence[ColumnProfile] | None = None,
    refs: dict[str, Column] | None = None,
    **profile_options,
) -> CleanedDataset:
    """Label, type and check ``bronze`` (``read_bronze``'s columns) as ``profile`` says
    (profiled here when not given; ``profile_options``: ``sample_rows``, ``max_levels``,
    ``threshold``). ``refs``: more output columns, computed from ``bronze``'s, that are
    never features (``land``: the pseudonyms of personal columns).

    A row is quarantined under the first rule it breaks: ``malformed_row`` (the record did
    not split into the header's fields), ``missing_target``, ``invalid_time`` (with a time
    column: missing or not a date). Nothing is computed until ``data``, ``quarantine`` or
    ``counts()`` is used; both frames come from ``checked``, worth caching when both are.
    """
    columns = data_columns(bronze)
    target = resolve_column(columns, target, "--target")
    time_col = None if time_col is None else resolve_column(columns, time_col, "--time-col")
    bad_values = tuple(b for b in bad_values if b.strip())
    if not bad_values:
        raise ValueError("--bad needs at least one value of the target that means a bad loan")
    if profile is None:
        profiles = profile_columns(bronze, target, drop, time_col, **profile_options)
    else:
        profiles = list(profile)
    _check_profiles(profiles, target, time_col)
    by_name = {p.name: p for p in profiles}
    seen = {lvl.lower() for lvl in by_name[target].levels}
    if seen and not seen & {b.strip().lower() for b in bad_values}:
        raise ValueError(
            f"--bad {', '.join(bad_values)}: no sampled value of {target} is one of them; "
            f"its most frequent values are: {', '.join(by_name[target].levels[:10])}"
        )

    raw = {c: raw_value(c) for c in columns}
    features: dict[str, Column] = {}
    flags: dict[str, Column] = {}
    numeric, categorical = [], []
    event_date = None
    if time_col is not None:
        event_date = values.parse_date(raw[time_col], by_name[time_col].formats)
    for p in profiles:
        v = raw[p.name]
        if p.kind == "numeric":
            features[p.feature] = parse_number(v, p.parser)
            flags[_unparsed_flag(p.feature)] = v.isNotNull() & features[p.feature].isNull()
            numeric.append(p.feature)
        elif p.kind == "date" and p.feature not in (None, EVENT_DATE):
            days = F.datediff(event_date, values.parse_date(v, p.formats)).cast("double")
            features[p.feature] = days
            flags[_unparsed_flag(p.feature)] = v.isNotNull() & days.isNull()
            numeric.append(p.feature)
        elif p.kind == "categorical":
            features[p.feature] = v
            categorical.append(p.feature)
        elif p.kind == "high_cardinality_categorical":
            features[p.feature] = F.when(v.isin(list(p.levels)), v).when(
                v.isNotNull(), F.lit(OTHER)
            )
            categorical.append(p.feature)

    checks = [
        Rule(
            "malformed_row",
            F.col(CORRUPT).isNull(),
            F.lit("record does not split into the header's fields"),
        ),
        Rule("missing_target", raw[target].isNotNull(), F.lit(f"{target} is missing")),
    ]
    head: dict[str, Column] = {LABEL: label_column(raw[target], bad_values)}
    if time_col is not None:
        fmts = " | ".join(by_name[time_col].formats)
        checks.append(
            Rule(
                "invalid_time",
                event_date.isNotNull(),
                F.when(raw[time_col].isNull(), F.lit(f"{time_col} is missing")).otherwise(
                    F.format_string(f"{time_col} '%s' is not a date ({fmts})", raw[time_col])
                ),
            )
        )
        head[EVENT_DATE] = event_date
        head[EVENT_MONTH] = F.date_format(event_date, "yyyy-MM")
    refs = dict(refs or {})
    outputs = [ROW_ID, *head, *numeric, *categorical, *refs]
    final = [F.col(ROW_ID), *[c.alias(k) for k, c in {**head, **features, **refs}.items()]]
    final += [c.alias(k) for k, c in flags.items()] + [F.col("_source_uri")]
    record = [ROW_ID, *columns, CORRUPT, "_source", "_source_uri", "_content_hash"]
    checked = landing.checked_rows(landing.tag_failures(bronze, checks), final, record)
    return CleanedDataset(
        data=checked.where(F.col("__rule").isNull()).select(*outputs),
        quarantine=quarantine_rows(checked),
        numeric=numeric,
        categorical=categorical,
        profiles=profiles,
        target=target,
        bad_values=bad_values,
        time_col=time_col,
        checked=checked,
        bronze=bronze,
    )


def quarantine_rows(checked: DataFrame) -> DataFrame:
    """The failing rows of ``clean``'s checked frame: row id, rule, reason, raw record."""
    return checked.where(F.col("__rule").isNotNull()).select(
        ROW_ID,
        F.col("__rule").alias("rule"),
        F.col("__reason").alias("reason"),
        F.col("__record").alias("record"),
        F.col("_source_uri").alias("source_uri"),
    )


# --- land --------------------------------------------------------------------------------


def dataset_table(layer: str, slug: str, schema: T.StructType) -> Table:
    """``<layer>.dataset_<slug>``, its schema taken from the data (any file's columns)."""
    what = {"bronze": "as received", "silver": "labelled and typed"}[layer]
    return Table(
        layer,
        f"dataset_{slug}",
        schema,
        keys=(ROW_ID,),
        strict=False,
        description=f"a loan file {what}, for evaluate-dataset",
    )


def land(
    spark: SparkSession,
    settings: Settings,
    path: Path | str,
    target: str,
    bad_values: Sequence[str],
    drop: Sequence[str] = (),
    time_col: str | None = None,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    max_levels: int = DEFAULT_MAX_LEVELS,
    threshold: float = DEFAULT_THRESHOLD,
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    pii_columns: Sequence[str] = (),
    not_pii: Sequence[str] = (),
    allow_pii_features: Sequence[str] = (),
) -> CleanedDataset:
    """Land ``path`` in ``bronze.dataset_<slug>``, clean it into ``silver.dataset_<slug>``
    (both replaced on every run; Delta keeps the history), quarantine rejected rows in
    ``ops.quarantine`` (stage ``dataset``), write a reconciled ``ops.manifest`` row, and
    return the dataset as re-read from silver, with its counts.

    Spark passes: the file is parsed once (into bronze); the profile reads a sample of
    bronze; cleaning reads bronze once into a cached frame that feeds the counts, silver
    and the quarantine.
    """
    say = progress or (lambda _msg: None)
    run = Run(spark, settings, run_id=run_id)
    slug = dataset_slug(path)
    say(f"reading {path} into bronze")
    raw = read_bronze(spark, path, run.run_id)
    columns = data_columns(raw)

    def named(names: Sequence[str], flag: str) -> list[str]:
        return [resolve_column(columns, n, flag) for n in names]

    found = pii_detect.detect(
        raw.where(F.col(CORRUPT).isNull()),
        columns,
        force=named(pii_columns, "--pii column"),
        exempt=named(not_pii, "--not-pii column"),
    )
    allowed = set(named(allow_pii_features, "--allow-pii-feature column"))
    bronze_t = dataset_table("bronze", slug, raw.schema)
    # Silver keeps each personal column as ``<column>_ref``, the keyed pseudonym of its
    # trimmed value (pii.pseudonym, as silver.customers' keys): joinable, not readable.
    refs = {
        f"{_feature_name(d.column)}_ref": pii.pseudonym(
            raw_value(
                pii.decrypt(F.col(f"`{d.column}`"), f"{bronze_t.full_name}.{d.column}", settings)
            ),
            settings,
        )
        for d in found
    }
    say(
        pii_detect.describe(found)
        + (f" -- encrypted in bronze, pseudonymised in silver ({', '.join(refs)})" if found else "")
    )
    # Personal columns, and the raw text of records that did not parse, are encrypted
    # before the file's rows land anywhere.
    sealed = [d.column for d in found] + [CORRUPT]
    lakehouse.overwrite(
        pii.encrypt_columns(raw, sealed, bronze_t.full_name, settings), bronze_t, settings
    )
    bronze = lakehouse.read(spark, bronze_t, settings)
    if allowed:
        say(
            f"personal columns used as features (--allow-pii-feature): {', '.join(sorted(allowed))}"
        )
    bronze = pii.decrypt_columns(bronze, bronze_t.full_name, settings, columns=[*allowed, CORRUPT])
    say(f"profiling {len(columns)} columns on up to {sample_rows:,} rows")
    personal = [d for d in found if d.column not in allowed]
    profiles = profile(bronze, target, drop, time_col, sample_rows, max_levels, threshold, personal)
    ds = clean(bronze, target, bad_values, drop, time_col, profiles, refs=refs)
    say("cleaning every row")
    checked = ds.checked.cache()
    try:
        with sql_conf(spark, WIDE_ROWS_CONF):
            _, quarantined, unparsed = rule_counts(checked, ds.numeric)
            silver_t = dataset_table("silver", slug, ds.data.schema)
            say(f"writing {silver_t.full_name}")
            lakehouse.overwrite(ds.data, silver_t, settings)
            say(f"quarantining {sum(quarantined.values()):,} rows in ops.quarantine")
            run.quarantine(quarantine_rows(checked).drop(ROW_ID), STAGE, silver_t.full_name)
    finally:
        checked.unpersist()
    # Rows read and used as the Delta tables hold them: the reconciliation checks the writes.
    counts = DatasetCounts(
        rows_read=lakehouse.read(spark, bronze_t, settings).count(),
        rows_used=lakehouse.read(spark, silver_t, settings).count(),
        quarantined=quarantined,
        unparsed=unparsed,
    )
    run.record(
        StepCounts(
            STAGE,
            str(path),
            silver_t.full_name,
            rows_in=counts.rows_read,
            rows_out=counts.rows_used,
            rows_quarantined=counts.rows_quarantined,
        )
    )
    say(
        f"rows read {counts.rows_read:,} = used {counts.rows_used:,} + quarantined "
        f"{counts.rows_quarantined:,} {counts.quarantined}"
    )
    silver = lakehouse.read(spark, silver_t, settings)
    return dataclasses.replace(
        ds,
        data=silver,
        quarantine=landed_quarantine(spark, settings, silver_t, bronze),
        tables={"bronze": bronze_t.full_name, "silver": silver_t.full_name},
        checked=None,
        _counts=counts,
    )


def landed_quarantine(
    spark: SparkSession, settings: Settings, silver: Table, bronze: DataFrame
) -> DataFrame:
    """``ops.quarantine``'s rows for ``silver`` of the rows now in ``bronze`` (a re-run
    of the same file quarantines nothing twice), in ``CleanedDataset.quarantine``'s form."""
    record = F.col("record")
    if lakehouse.exists(spark, OPS_QUARANTINE, settings):
        q = lakehouse.read_clear(spark, OPS_QUARANTINE, settings)
    else:  # nothing was ever quarantined here
        q = spark.createDataFrame([], OPS_QUARANTINE.schema)
    q = q.where(F.col("target") == silver.full_name)
    q = q.select(
        F.get_json_object(record, f"$.{ROW_ID}").cast("long").alias(ROW_ID),
        "rule",
        "reason",
        "record",
        "source_uri",
        F.get_json_object(record, "$._content_hash").alias("__hash"),
    )
    current = bronze.select(F.col(ROW_ID).alias("__id"), F.col("_content_hash").alias("__h"))
    on = (q[ROW_ID] == current["__id"]) & (q["__hash"] == current["__h"])
    return q.join(current, on, "left_semi").drop("__hash")


def summary(ds: CleanedDataset) -> str:
    """The profiles and counts as text, one column per line (for a CLI)."""
    lines = [f"  {'column':28} {'kind':30} reason"]
    lines += [f"  {p.name:28} {p.kind:30} {p.reason}" for p in ds.profiles]
    c = ds.counts()
    lines.append(
        f"  rows read {c.rows_read:,} = used {c.rows_used:,} + quarantined {c.rows_quarantined:,}"
    )
    lines += [f"    quarantined {rule}: {n:,}" for rule, n in c.quarantined.items()]
    lines += [
        f"    {col}: {n:,} value(s) did not parse (null)" for col, n in c.unparsed.items() if n
    ]
    return "\n".join(lines)
