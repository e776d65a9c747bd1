"""Declared data-quality expectations per table, checked on every run.

``EXPECTATIONS`` is the contract beyond the schema: which columns must be filled,
unique, in range, in a list, fresh, matching a pattern or pointing at rows of another
table. ``check`` measures every expectation of one table in a single Spark query (the
row-level tests, the first ``unique`` and every ``referential`` lookup are folded into
one aggregation); ``run_checks`` lands the results in ``ops.dq_results`` and only then
raises ``DataQualityError`` when a critical expectation failed, so a failure can be
inspected. Warnings are reported, never raised.

An observed value is a short ``key=value`` text so that a person can read it next to
its threshold. Allowed-value and referential breaches quote the lowest and highest
offending value as examples; regex breaches quote none, since the column they guard
may hold what should have been pseudonymized.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.analyze.silver import VALID_TERMS
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import OPS_DQ_RESULTS
from riskcontrol.core.catalog import table as catalog_table
from riskcontrol.core.runs import Run

CRITICAL = "critical"
WARNING = "warning"
SEVERITIES = (CRITICAL, WARNING)

# kind -> how many columns it takes (None: one or more)
KINDS: dict[str, int | None] = {
    "not_null": 1,
    "range": 1,
    "allowed_values": 1,
    "unique": None,
    "freshness": 1,
    "row_count": 0,
    "regex": 1,
    "referential": 1,
}
_REQUIRED_PARAMS = {
    "allowed_values": ("values",),
    "freshness": ("max_age",),
    "row_count": ("min_rows",),
    "regex": ("pattern",),
    "referential": ("ref_table", "ref_column"),
}


@dataclass(frozen=True)
class Expectation:
    """One declared expectation on a table (``table`` is its full name, e.g. silver.loans).

    ``params`` by kind: not_null ``max_null_fraction`` (default 0); range ``min``,
    ``max`` (inclusive, either may be absent), ``min_exclusive``, ``max_exclusive``;
    allowed_values ``values``; freshness ``max_age`` (a timedelta); row_count
    ``min_rows``; regex ``pattern`` (Java syntax); referential ``ref_table``,
    ``ref_column``. Nulls pass range, allowed_values, regex and referential: whether a
    column may be null is not_null's business.
    """

    name: str
    table: str
    kind: str
    columns: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    severity: str = CRITICAL
    description: str = ""

    def __post_init__(self) -> None:
        where = f"expectation {self.table or '?'}.{self.name}"
        if self.kind not in KINDS:
            raise ValueError(f"{where}: unknown kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{where}: severity must be one of {SEVERITIES}")
        arity = KINDS[self.kind]
        if (arity is None and not self.columns) or (
            arity is not None and len(self.columns) != arity
        ):
            want = "one or more columns" if arity is None else f"{arity} column(s)"
            raise ValueError(f"{where}: {self.kind} takes {want}, got {self.columns}")
        missing = [p for p in _REQUIRED_PARAMS.get(self.kind, ()) if p not in self.params]
        if missing:
            raise ValueError(f"{where}: {self.kind} needs params {missing}")

    @property
    def column(self) -> str:
        """The column(s) as one text: ``a`` or ``a,b``."""
        return ",".join(self.columns)


# --- constructors: what the declarations below read like ---------------------------
def _expect(
    kind: str, columns: tuple[str, ...], params: dict, name: str | None, **opts
) -> Expectation:
    default = "_".join((*columns, kind)) if columns else kind
    return Expectation(name or default, opts.pop("table", ""), kind, columns, params, **opts)


def not_null(
    column: str, max_null_fraction: float = 0.0, name: str | None = None, **opts
) -> Expectation:
    return _expect("not_null", (column,), {"max_null_fraction": max_null_fraction}, name, **opts)


def in_range(
    column: str,
    min_value: Any = None,
    max_value: Any = None,
    *,
    min_exclusive: bool = False,
    max_exclusive: bool = False,
    name: str | None = None,
    **opts,
) -> Expectation:
    params = {"min_exclusive": min_exclusive, "max_exclusive": max_exclusive}
    if min_value is not None:
        params["min"] = min_value
    if max_value is not None:
        params["max"] = max_value
    return _expect("range", (column,), params, name, **opts)


def positive(column: str, **opts) -> Expectation:
    return in_range(column, 0, min_exclusive=True, name=f"{column}_positive", **opts)


def allowed_values(column: str, values: Sequence, name: str | None = None, **opts) -> Expectation:
    return _expect("allowed_values", (column,), {"values": tuple(values)}, name, **opts)


def unique(*columns: str, name: str | None = None, **opts) -> Expectation:
    return _expect("unique", tuple(columns), {}, name, **opts)


def fresh(column: str, max_age: dt.timedelta, name: str | None = None, **opts) -> Expectation:
    return _expect("freshness", (column,), {"max_age": max_age}, name, **opts)


def min_rows(n: int, name: str | None = None, **opts) -> Expectation:
    return _expect("row_count", (), {"min_rows": n}, name, **opts)


def matches(column: str, pattern: str, name: str | None = None, **opts) -> Expectation:
    return _expect("regex", (column,), {"pattern": pattern}, name, **opts)


def references(
    column: str, ref_table: str, ref_column: str | None = None, name: str | None = None, **opts
) -> Expectation:
    params = {"ref_table": ref_table, "ref_column": ref_column or column}
    return _expect("referential", (column,), params, name, **opts)


def bind(declared: Mapping[str, Sequence[Expectation]]) -> dict[str, tuple[Expectation, ...]]:
    """Stamp each expectation with its table's name; names must be unique per table."""
    bound = {}
    for table_name, expectations in declared.items():
        names = [e.name for e in expectations]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{table_name}: expectation names used twice: {repeated}")
        bound[table_name] = tuple(replace(e, table=table_name) for e in expectations)
    return bound


# --- the declarations -----------------------------------------------------------------
EXPECTATIONS: dict[str, tuple[Expectation, ...]] = bind(
    {
        "silver.customers": (
            not_null("customer_id"),
            unique("customer_id"),
            not_null("customer_key"),
            matches("national_id_masked", r"^\*{14}[\dX]{4}$", description="masked, never clear"),
            in_range("monthly_income", 0),
            not_null("birth_year"),
        ),
        "silver.applications": (
            unique("application_id"),
            positive("requested_amount"),
            allowed_values("term_months", VALID_TERMS),
            allowed_values("status", ("approved", "rejected", "pending")),
            fresh("applied_at", dt.timedelta(days=2), severity=WARNING),
            not_null(
                "monthly_income",
                severity=WARNING,
                description="declared by the applicant: without it gold takes the customer "
                "record's latest income, which may postdate the application",
            ),
            in_range("monthly_income", 0),
        ),
        "silver.loans": (
            unique("loan_id"),
            positive("principal"),
            in_range("annual_rate", 0, 0.36, severity=WARNING, description="legal rate cap"),
            references("application_id", "silver.applications"),
        ),
        "silver.repayments": (
            unique("repayment_id"),
            references("loan_id", "silver.loans"),
            in_range("dpd", 0),
        ),
        "silver.settlements": (
            unique("settlement_id"),
            references("loan_id", "silver.loans"),
            positive("amount"),
            allowed_values("currency", ("CNY",)),
        ),
        "silver.bureau_reports": (
            unique("report_id"),
            in_range("bureau_score", 300, 900, severity=WARNING),
        ),
        "silver.app_events": (unique("event_id"),),
        "silver.service_notes": (unique("note_id"), in_range("negativity", -1, 1)),
        "silver.court_records": (
            unique("record_id"),
            not_null("subject_key"),
        ),
        "silver.penalties": (unique("record_id"), not_null("subject_key")),
        "silver.news_articles": (unique("record_id"), in_range("negativity", -1, 1)),
        "silver.entity_links": (
            in_range("confidence", 0, 1),
            allowed_values("entity_type", ("customer", "company", "employer")),
        ),
        "gold.application_features": (
            unique("application_id"),
            not_null("application_id"),
            allowed_values("label", (0, 1), description="null until the loan matures"),
            in_range("age", 18, 75, severity=WARNING),
        ),
    }
)


# --- results --------------------------------------------------------------------------
@dataclass(frozen=True)
class DQResult:
    """How one expectation fared. ``failing_rows`` is None for table-level kinds
    (freshness, row_count), which judge the table rather than rows."""

    table: str
    expectation: str
    kind: str
    column: str
    severity: str
    passed: bool
    failing_rows: int | None
    total_rows: int
    observed: str
    threshold: str

    @property
    def status(self) -> str:
        if self.passed:
            return "PASS"
        return "FAIL" if self.severity == CRITICAL else "WARN"


class DataQualityError(RuntimeError):
    """A critical expectation failed; every result is already in ops.dq_results.

    ``failures`` are the critical breaches, ``results`` every result of the run (for a
    caller that prints the whole table before failing).
    """

    def __init__(
        self, message: str, run_id: str, failures: list[DQResult], results: Sequence[DQResult]
    ):
        super().__init__(message)
        self.run_id = run_id
        self.failures = failures
        self.results = list(results)


Lookup = Callable[[str], DataFrame] | Mapping[str, DataFrame]


@dataclass(frozen=True)
class _Metric:
    """An aggregate that can be computed per group and then combined (sum/min/max)."""

    name: str
    partial: Column
    combine: Callable[[str], Column]


def _count(name: str, condition: Column) -> _Metric:
    return _Metric(name, F.count_if(condition), F.sum)


def _fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _fraction(part: int, whole: int) -> str:
    return _fmt(round(part / whole, 4) if whole else 0.0)


def _examples(low: Any, high: Any) -> str:
    values = [] if low is None else [low] if low == high else [low, high]
    return "[" + ", ".join(_fmt(v) for v in values) + "]"


def _epoch_seconds(column: str, data_type: T.DataType, where: str) -> Column:
    """A date (as its midnight) or timestamp column as seconds since the epoch, UTC."""
    c = F.col(f"`{column}`")
    if isinstance(data_type, T.DateType):
        return F.unix_date(c).cast("long") * 86400
    if isinstance(data_type, T.TimestampType | T.TimestampNTZType):
        return F.unix_seconds(c.cast("timestamp"))
    raise TypeError(f"{where}: freshness needs a date or timestamp column, not {data_type}")


def _as_of_seconds(as_of: dt.date | dt.datetime) -> int:
    """``as_of`` in epoch seconds; a naive datetime is UTC, a date is its midnight UTC."""
    if not isinstance(as_of, dt.datetime):
        as_of = dt.datetime.combine(as_of, dt.time())
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)
    return int(as_of.timestamp())


def _range_threshold(p: Mapping[str, Any]) -> str:
    bounds = []
    if "min" in p:
        bounds.append((">" if p.get("min_exclusive") else ">=") + _fmt(p["min"]))
    if "max" in p:
        bounds.append(("<" if p.get("max_exclusive") else "<=") + _fmt(p["max"]))
    return ", ".join(bounds) or "any"


def _metrics(e: Expectation, i: int, df: DataFrame, ref_flag: str | None) -> list[_Metric]:
    """The aggregates expectation number ``i`` needs, named ``__m{i}_*``."""
    if e.kind in ("row_count", "unique"):
        return []
    c = F.col(f"`{e.columns[0]}`")
    p, m = e.params, f"__m{i}_"
    if e.kind == "not_null":
        return [_count(m + "bad", c.isNull())]
    if e.kind == "range":
        too_low = too_high = F.lit(False)
        if "min" in p:
            too_low = c <= F.lit(p["min"]) if p.get("min_exclusive") else c < F.lit(p["min"])
        if "max" in p:
            too_high = c >= F.lit(p["max"]) if p.get("max_exclusive") else c > F.lit(p["max"])
        return [
            _count(m + "bad", c.isNotNull() & (too_low | too_high)),
            _Metric(m + "min", F.min(c), F.min),
            _Metric(m + "max", F.max(c), F.max),
        ]
    if e.kind in ("allowed_values", "referential"):
        ok = c.isin(*p["values"]) if e.kind == "allowed_values" else F.col(ref_flag).isNotNull()
        bad = c.isNotNull() & ~ok
        return [
            _count(m + "bad", bad),
            _Metric(m + "min", F.min(F.when(bad, c)), F.min),
            _Metric(m + "max", F.max(F.when(bad, c)), F.max),
        ]
    if e.kind == "regex":
        return [_count(m + "bad", c.isNotNull() & ~c.rlike(p["pattern"]))]
    if e.kind == "freshness":
        where = f"{e.table}.{e.name}"
        seconds = _epoch_seconds(e.columns[0], df.schema[e.columns[0]].dataType, where)
        return [_Metric(m + "newest", F.max(seconds), F.max)]
    raise AssertionError(e.kind)


def _judge(e: Expectation, i: int, row: Row, as_of_s: int) -> DQResult:
    """Turn the aggregated row into expectation ``i``'s result."""
    p, m = e.params, f"__m{i}_"
    total = row["__rows"] or 0
    failing: int | None = None
    if e.kind == "not_null":
        failing = row[m + "bad"] or 0
        limit = p["max_null_fraction"]
        passed = (failing / total if total else 0.0) <= limit
        observed = f"null_fraction={_fraction(failing, total)}"
        threshold = f"null_fraction<={_fmt(float(limit))}"
    elif e.kind == "range":
        failing = row[m + "bad"] or 0
        passed = failing == 0
        observed = f"min={_fmt(row[m + 'min'])}, max={_fmt(row[m + 'max'])}"
        threshold = _range_threshold(p)
    elif e.kind == "allowed_values":
        failing = row[m + "bad"] or 0
        passed = failing == 0
        observed = f"unexpected={_examples(row[m + 'min'], row[m + 'max'])}"
        threshold = "in [" + ", ".join(_fmt(v) for v in p["values"]) + "]"
    elif e.kind == "referential":
        failing = row[m + "bad"] or 0
        passed = failing == 0
        observed = f"missing={_examples(row[m + 'min'], row[m + 'max'])}"
        threshold = f"in {p['ref_table']}.{p['ref_column']}"
    elif e.kind == "regex":
        failing = row[m + "bad"] or 0
        passed = failing == 0
        observed = f"non_matching={failing}"
        threshold = f"matches {p['pattern']}"
    elif e.kind == "unique":
        failing = row[m + "dup_rows"] or 0
        passed = failing == 0
        observed = f"duplicate_keys={row[m + 'dup_keys'] or 0}"
        threshold = "duplicate_keys=0"
    elif e.kind == "row_count":
        passed = total >= p["min_rows"]
        observed = f"rows={total}"
        threshold = f"rows>={p['min_rows']}"
    elif e.kind == "freshness":
        newest = row[m + "newest"]
        limit_h = p["max_age"].total_seconds() / 3600
        threshold = f"age_hours<={_fmt(round(limit_h, 2))}"
        if newest is None:
            passed, observed = False, "newest=null"
        else:
            age_h = (as_of_s - newest) / 3600
            passed = age_h <= limit_h
            stamp = dt.datetime.fromtimestamp(newest, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            observed = f"newest={stamp}, age_hours={_fmt(round(age_h, 2))}"
    else:
        raise AssertionError(e.kind)
    return DQResult(
        e.table, e.name, e.kind, e.column, e.severity, passed, failing, total, observed, threshold
    )


def _aggregate(df: DataFrame, metrics: list[_Metric], key: tuple[str, ...] | None) -> Row:
    """One Spark query: the metrics over ``df``, plus duplicate counts on ``key`` if given.

    Grouping by the key first and combining the per-group partials gives the same
    metrics as one global aggregate, so a uniqueness check costs no extra pass.
    """
    metrics = [_Metric("__rows", F.count(F.lit(1)), F.sum), *metrics]
    partials = [mt.partial.alias(mt.name) for mt in metrics]
    if not key:
        return df.agg(*partials).collect()[0]
    groups = df.groupBy(*[F.col(f"`{k}`") for k in key]).agg(*partials)
    complete = F.lit(True)
    for k in key:
        complete = complete & F.col(f"`{k}`").isNotNull()
    duplicated = complete & (F.col("__rows") > 1)
    return groups.agg(
        *[mt.combine(mt.name).alias(mt.name) for mt in metrics],
        F.sum(F.when(duplicated, F.col("__rows"))).alias("__dup_rows"),
        F.count_if(duplicated).alias("__dup_keys"),
    ).collect()[0]


def _resolve(lookup: Lookup | None) -> Callable[[str], DataFrame]:
    if lookup is None:

        def _missing(name: str) -> DataFrame:
            raise ValueError(f"a referential expectation needs {name}: pass lookup=")

        return _missing
    if isinstance(lookup, Mapping):

        def _from_mapping(name: str) -> DataFrame:
            if name not in lookup:
                raise ValueError(f"a referential expectation needs {name}, not in lookup")
            return lookup[name]

        return _from_mapping
    return lookup


def check(
    df: DataFrame,
    expectations: Sequence[Expectation],
    as_of: dt.datetime | dt.date,
    lookup: Lookup | None = None,
) -> list[DQResult]:
    """Measure ``expectations`` (all of one table) on ``df``; results in declared order.

    One Spark query computes all of them: referential targets are left-joined (as
    distinct values) onto ``df``, the first ``unique`` key groups the rows, and every
    other kind is a per-group partial aggregate combined into one row. Each further
    ``unique`` expectation costs one more query. ``lookup`` maps a referenced table's
    full name to its DataFrame (a mapping or a function). ``as_of`` anchors freshness:
    a naive datetime is UTC, a date means its midnight.
    """
    expectations = list(expectations)
    if not expectations:
        return []
    tables = sorted({e.table for e in expectations})
    if len(tables) > 1:
        raise ValueError(f"check takes the expectations of one table, got {tables}")
    needed = [c for e in expectations for c in e.columns if c not in df.columns]
    if needed:
        raise ValueError(
            f"{tables[0] or 'DataFrame'} lacks columns {sorted(set(needed))} that its "
            f"expectations name; it has {df.columns}"
        )
    find = _resolve(lookup)
    prepared, flags = df, {}
    for i, e in enumerate(expectations):
        if e.kind == "referential":
            flags[i] = f"__ref{i}"
            ref_col = F.col(f"`{e.params['ref_column']}`").alias(flags[i])
            target = find(e.params["ref_table"]).select(ref_col).distinct()
            on = F.col(f"`{e.columns[0]}`") == F.col(flags[i])
            prepared = prepared.join(target, on=on, how="left")
    metrics = [m for i, e in enumerate(expectations) for m in _metrics(e, i, df, flags.get(i))]
    uniques = [i for i, e in enumerate(expectations) if e.kind == "unique"]
    key = expectations[uniques[0]].columns if uniques else None
    row = _aggregate(prepared, metrics, key).asDict()
    for n, i in enumerate(uniques):
        # The first key was grouped on in the main query; any other needs its own.
        extra = row if n == 0 else _aggregate(df, [], expectations[i].columns).asDict()
        row[f"__m{i}_dup_rows"] = extra["__dup_rows"]
        row[f"__m{i}_dup_keys"] = extra["__dup_keys"]
    as_of_s = _as_of_seconds(as_of)
    return [_judge(e, i, row, as_of_s) for i, e in enumerate(expectations)]


def run_checks(
    run: Run,
    tables: Mapping[str, DataFrame],
    as_of: dt.datetime | dt.date,
    expectations: Mapping[str, Sequence[Expectation]] = EXPECTATIONS,
) -> list[DQResult]:
    """Check each of ``tables`` (full name -> DataFrame) against its expectations.

    Results go to ops.dq_results (MERGE on run, table and expectation, so a re-run of
    the same run replaces its rows) before ``DataQualityError`` is raised for the
    critical failures. A referenced table is taken from ``tables`` if there, else read
    from the lakehouse.
    """
    unknown = [name for name in tables if name not in expectations]
    if unknown:
        raise ValueError(
            f"no expectations declared for {unknown}; declared: {', '.join(expectations)}"
        )

    def lookup(name: str) -> DataFrame:
        if name in tables:
            return tables[name]
        return lakehouse.read(run.spark, catalog_table(name), run.settings)

    results = []
    for name, df in tables.items():
        results += check(df, expectations[name], as_of, lookup)
    if results:
        write_results(run, results)
    failures = [r for r in results if r.status == "FAIL"]
    if failures:
        lines = [
            f"  {r.table} {r.expectation}: observed {r.observed}, threshold {r.threshold}"
            + (f" ({r.failing_rows} of {r.total_rows} rows)" if r.failing_rows else "")
            for r in failures
        ]
        raise DataQualityError(
            f"{len(failures)} critical data-quality expectation(s) failed in run "
            f"{run.run_id}:\n"
            + "\n".join(lines)
            + f"\nSee ops.dq_results where run_id = '{run.run_id}' for every result, and "
            "ops.quarantine for the rows the cleaning steps rejected.",
            run.run_id,
            failures,
            results,
        )
    return results


def write_results(run: Run, results: Sequence[DQResult]) -> None:
    """MERGE ``results`` into ops.dq_results under ``run``'s id."""
    checked_at = dt.datetime.now(dt.UTC)
    rows = [
        (
            run.run_id,
            r.table,
            r.expectation,
            r.kind,
            r.column,
            r.severity,
            r.passed,
            r.failing_rows,
            r.total_rows,
            r.observed,
            r.threshold,
            checked_at,
        )
        for r in results
    ]
    df = run.spark.createDataFrame(rows, OPS_DQ_RESULTS.schema)
    lakehouse.merge(df, OPS_DQ_RESULTS, run.settings)


def format_results(results: Sequence[DQResult]) -> str:
    """A compact table for the CLI: one line per expectation, then a tally."""
    header = ("STATUS", "TABLE", "EXPECTATION", "FAILING", "OBSERVED", "THRESHOLD")
    rows = [header] + [
        (
            r.status,
            r.table,
            r.expectation,
            "-" if r.failing_rows is None else f"{r.failing_rows}/{r.total_rows}",
            r.observed,
            r.threshold,
        )
        for r in results
    ]
    widths = [max(len(row[k]) for row in rows) for k in range(len(header))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    statuses = [r.status for r in results]
    lines.append(
        f"{len(results)} checks: {statuses.count('PASS')} passed, "
        f"{statuses.count('WARN')} warned, {statuses.count('FAIL')} failed"
    )
    return "\n".join(lines)
