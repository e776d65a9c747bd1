"""Landing rows: the one rule -> quarantine engine and the provenance of bronze rows.

Every landing step (JDBC and file extracts, crawled records, settlement files, a lender's
own file, a dataset for evaluation) and every silver cleaning step judges rows with the
same ``Rule`` objects:

* ``tag_failures`` names, on each row, the first rule it breaks and why (``__rule``,
  ``__reason``; a rule whose test is null counts as broken);
* ``split_by_rules`` splits a frame into passing rows and quarantine rows (silver);
* ``checked_rows`` + ``land_rows`` quarantine the failing rows, MERGE the others
  insert-only and record the step's reconciled counts in the manifest (bronze).

``with_provenance`` adds the columns every bronze row carries and ``protect_sensitive``
encrypts what a table does not keep in clear.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from riskcontrol.core import lakehouse, pii
from riskcontrol.core.catalog import PROVENANCE_COLUMNS, Table
from riskcontrol.core.config import Settings
from riskcontrol.core.runs import Run, StepCounts

RULE, REASON, RECORD = "__rule", "__reason", "__record"
REJECT_COLUMNS = ("rule", "reason", "record", "source_uri")
# Provenance that differs between runs of the same input: left out of the quarantined
# record so that a re-run quarantines the same row under the same hash, not twice.
VOLATILE_COLUMNS = ("_ingest_id", "_ingested_at")


@dataclass(frozen=True)
class Rule:
    """A row passes when ``ok`` is true (null counts as a failure). ``reason`` says why a
    row failed: fixed text, or a column that may quote the row's values."""

    name: str
    ok: Column
    reason: Column | str

    @property
    def reason_column(self) -> Column:
        return F.lit(self.reason) if isinstance(self.reason, str) else self.reason


def tag_failures(df: DataFrame, rules: Sequence[Rule]) -> DataFrame:
    """Add ``__rule`` and ``__reason``: the first rule a row breaks, null if none."""
    if not rules:
        return df.withColumns(
            {RULE: F.lit(None).cast("string"), REASON: F.lit(None).cast("string")}
        )
    failed = [~F.coalesce(r.ok, F.lit(False)) for r in rules]
    rule = F.coalesce(*[F.when(f, F.lit(r.name)) for f, r in zip(failed, rules, strict=True)])
    reason = F.coalesce(*[F.when(f, r.reason_column) for f, r in zip(failed, rules, strict=True)])
    return df.withColumns({RULE: rule, REASON: reason.cast("string")})


def data_columns(df: DataFrame) -> list[str]:
    """The columns a quarantined record keeps: not helpers (``__``), not volatile."""
    return [c for c in df.columns if not c.startswith("__") and c not in VOLATILE_COLUMNS]


def _source_uri(df: DataFrame) -> Column:
    return (F.col("_source_uri") if "_source_uri" in df.columns else F.lit(None)).cast("string")


def rejected_rows(df: DataFrame, rule: Column | str, reason: Column | str) -> DataFrame:
    """Turn rows of ``df`` into quarantine rows (``REJECT_COLUMNS``): the row as JSON."""
    return df.select(
        (F.lit(rule) if isinstance(rule, str) else rule).alias("rule"),
        (F.lit(reason) if isinstance(reason, str) else reason).alias("reason"),
        F.to_json(F.struct(*[F.col(f"`{c}`") for c in data_columns(df)])).alias("record"),
        _source_uri(df).alias("source_uri"),
    )


def split_by_rules(
    df: DataFrame,
    rules: Sequence[Rule],
    then: Callable[[DataFrame], DataFrame] | None = None,
) -> tuple[DataFrame, DataFrame]:
    """Split ``df`` into rows passing every rule and quarantine rows for the rest.

    A row failing several rules is quarantined once, under the first rule it breaks.
    ``then`` transforms the passing rows after the rules were judged (e.g. encrypting
    personal data the rules had to read in clear); rejected rows keep their values as
    read, so a reviewer sees what broke the rule (the quarantine encrypts whole records).
    """
    tagged = tag_failures(df, rules)
    valid = tagged.where(F.col(RULE).isNull()).drop(RULE, REASON)
    if then is not None:
        valid = then(valid)
    bad = tagged.where(F.col(RULE).isNotNull())
    return valid, rejected_rows(bad, F.col(RULE), F.col(REASON))


def checked_rows(
    tagged: DataFrame, final: Sequence[Column | str], record: Sequence[str] | None = None
) -> DataFrame:
    """What ``land_rows`` takes: the ``final`` columns (provenance included) plus
    ``__rule``, ``__reason`` and, on failing rows only, ``__record``: the ``record``
    columns (default: ``data_columns``) as JSON, the row as received, for the quarantine.
    Narrow enough to cache."""
    record = data_columns(tagged) if record is None else record
    as_json = F.to_json(F.struct(*[F.col(f"`{c}`") for c in record]))
    return tagged.select(
        *final,
        RULE,
        REASON,
        F.when(F.col(RULE).isNotNull(), as_json).alias(RECORD),
    )


def rows_by_rule(tagged: DataFrame) -> dict[str | None, int]:
    """Rows per ``__rule`` (None: rows passing every rule), one small aggregation."""
    return {r[RULE]: r["count"] for r in tagged.groupBy(RULE).count().collect()}


def land_rows(
    run: Run,
    checked: DataFrame,
    table: Table,
    *,
    stage: str,
    source: str,
    merge_keys: tuple[str, ...],
    by_rule: dict[str | None, int] | None = None,
    window: tuple[str | None, str | None] = (None, None),
    rejects: DataFrame | None = None,
    rescued: int = 0,
    distinct: int | None = None,
) -> tuple[StepCounts, dict[str, int]]:
    """Quarantine the failing rows of ``checked`` (see ``checked_rows``), MERGE the others
    insert-only into ``table`` and record the reconciled counts in the manifest.

    ``checked`` should be cached; ``by_rule`` (rows per ``__rule``, None = passing) is
    computed here unless given. ``rejects`` are rows the source itself already refused
    (in ``REJECT_COLUMNS`` form, e.g. pages a crawler could not parse): they count as
    read and go to the quarantine. Every column the table does not keep in clear is
    encrypted once the rules have read it, and the quarantine encrypts its records.
    ``rescued`` (of the passing rows, those with a value kept raw) goes to the manifest.
    ``distinct``: the passing rows' distinct ``merge_keys``, when the caller counted them
    already (else counted here, one pass).
    Returns the step counts and the quarantined rows by rule.
    """
    counts = StepCounts(
        stage,
        source,
        table.full_name,
        rows_in=0,
        rows_out=0,
        window_start=window[0],
        window_end=window[1],
        rows_rescued=rescued,
    )
    if by_rule is None:
        by_rule = rows_by_rule(checked)
    counts.rows_in = sum(by_rule.values())
    failed = {k: v for k, v in sorted(by_rule.items(), key=lambda kv: -kv[1]) if k is not None}
    bad = None
    if failed:
        bad = checked.where(F.col(RULE).isNotNull()).select(
            F.col(RULE).alias("rule"),
            F.col(REASON).alias("reason"),
            F.col(RECORD).alias("record"),
            _source_uri(checked).alias("source_uri"),
        )
    if rejects is not None:
        counts.rows_in += rejects.count()
        bad = rejects.select(*REJECT_COLUMNS) if bad is None else bad.unionByName(rejects)
    if bad is not None:
        counts.rows_quarantined = run.quarantine(
            bad, stage, table.full_name, attempt_id=counts.attempt_id
        )
    valid = checked.where(F.col(RULE).isNull()).drop(RULE, REASON, RECORD)
    passing = by_rule.get(None, 0)
    if passing:
        # Counted, not inferred: the same record (keys and content) twice in the input is
        # a duplicate; a distinct record already in the table is unchanged.
        if distinct is None:
            distinct = valid.dropDuplicates(list(merge_keys)).count()
        counts.rows_duplicate = passing - distinct
    if counts.rows_duplicate:
        valid = first_per_key(valid, merge_keys)
    valid = protect_sensitive(table, run.settings)(valid)
    # An empty MERGE still costs a Delta commit: skip it once the table exists.
    if passing or not lakehouse.exists(run.spark, table, run.settings):
        merged = lakehouse.merge(
            valid,
            table,
            run.settings,
            keys=merge_keys,
            insert_only=True,
            unique=passing > 0 and counts.rows_duplicate == 0,
        )
        counts.rows_out = merged.inserted
        counts.rows_unchanged = (passing - counts.rows_duplicate) - merged.inserted
    return run.record(counts), failed


def first_per_key(df: DataFrame, keys: Sequence[str]) -> DataFrame:
    """One row per ``keys``, the same one in whatever order the rows arrive (a cluster's
    partitions, another run): the first by where it was read (``_source_uri``), then by
    its whole content. The same record in two files lands with the same provenance every
    time, where ``dropDuplicates`` would keep whichever copy came first."""
    order = [F.col(c) for c in ("_source_uri",) if c in df.columns]
    order.append(F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])))
    rank = F.row_number().over(Window.partitionBy(*keys).orderBy(*order))
    return df.withColumn("_rank", rank).where(F.col("_rank") == 1).drop("_rank")


def content_hash(columns: list[str]) -> Column:
    """SHA-256 of a row's data columns: identical rows hash alike, any change differs."""
    return F.sha2(F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns])), 256)


def with_provenance(
    df: DataFrame,
    run_id: str,
    source: str | Column,
    source_uri: Column,
    hashed: list[str] | Column | None = None,
) -> DataFrame:
    """Append the provenance columns every bronze row carries.

    The content hash covers ``hashed``: the names of the columns that make two rows the
    same record (default: every data column), or an expression (e.g. a raw payload's).
    """
    data_cols = [c for c in df.columns if c not in PROVENANCE_COLUMNS]
    if hashed is None:
        hashed = data_cols
    return df.select(
        *data_cols,
        F.lit(run_id).alias("_ingest_id"),
        (F.lit(source) if isinstance(source, str) else source).alias("_source"),
        source_uri.alias("_source_uri"),
        F.current_timestamp().alias("_ingested_at"),
        (content_hash(hashed) if isinstance(hashed, list) else hashed).alias("_content_hash"),
    )


def protect_sensitive(table: Table, settings: Settings) -> Callable[[DataFrame], DataFrame]:
    """Encrypt every column of a raw DataFrame that ``table`` does not keep in clear.

    Deny by default: only declared keys, timestamps and provenance stay readable; a
    column the source adds later (an e-mail, an address, a card number), a payload and
    a raw line that failed to parse are all encrypted.
    """

    def protect(df: DataFrame) -> DataFrame:
        columns = table.protected_columns(df.columns)
        return pii.encrypt_columns(df, columns, table.full_name, settings)

    return protect
