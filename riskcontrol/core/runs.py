"""Run bookkeeping: validation rules, the quarantine, and the reconciling manifest.

Every step reports ``rows_in = rows_out + rows_unchanged + rows_quarantined``; the
manifest refuses a step whose numbers do not add up, so a row can never silently
disappear between two tables.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from riskcontrol.core import lakehouse, pii
from riskcontrol.core.catalog import OPS_MANIFEST, OPS_QUARANTINE
from riskcontrol.core.config import Settings


@dataclass(frozen=True)
class Rule:
    """A row passes when ``ok`` is true; null counts as a failure."""

    name: str
    ok: Column
    reason: str


REJECT_COLUMNS = ("rule", "reason", "record", "source_uri")
# Provenance that differs between runs of the same input: left out of the quarantined
# record so that a re-run quarantines the same row under the same hash, not twice.
VOLATILE_COLUMNS = ("_ingest_id", "_ingested_at")


def rejected_rows(df: DataFrame, rule: Column | str, reason: Column | str) -> DataFrame:
    """Turn rows of ``df`` into quarantine rows: the whole row kept as JSON."""
    data_cols = [c for c in df.columns if not c.startswith("__") and c not in VOLATILE_COLUMNS]
    source_uri = F.col("_source_uri") if "_source_uri" in df.columns else F.lit(None)
    return df.select(
        (F.lit(rule) if isinstance(rule, str) else rule).alias("rule"),
        (F.lit(reason) if isinstance(reason, str) else reason).alias("reason"),
        F.to_json(F.struct(*[F.col(f"`{c}`") for c in data_cols])).alias("record"),
        source_uri.cast("string").alias("source_uri"),
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
    if not rules:
        rules = [Rule("", F.lit(True), "")]
    first_failed = F.coalesce(
        *[F.when(~F.coalesce(r.ok, F.lit(False)), F.lit(r.name)) for r in rules]
    )
    reasons = F.create_map(*[x for r in rules for x in (F.lit(r.name), F.lit(r.reason))])
    tagged = df.withColumn("__rule", first_failed)
    valid = tagged.where(F.col("__rule").isNull()).drop("__rule")
    if then is not None:
        valid = then(valid)
    bad = tagged.where(F.col("__rule").isNotNull())
    return valid, rejected_rows(bad, F.col("__rule"), reasons[F.col("__rule")])


@dataclass
class StepCounts:
    stage: str
    source: str
    target: str
    rows_in: int
    rows_out: int
    rows_unchanged: int = 0
    rows_quarantined: int = 0
    window_start: str | None = None
    window_end: str | None = None
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.rows_out + self.rows_unchanged + self.rows_quarantined


class ReconciliationError(RuntimeError):
    """A step's rows in differ from rows out + unchanged + quarantined."""


class Run:
    """One run of the pipeline: its id, and the writers of the manifest and quarantine."""

    def __init__(self, spark: SparkSession, settings: Settings, run_id: str | None = None):
        self.spark = spark
        self.settings = settings
        self.run_id = run_id or f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        self.steps: list[StepCounts] = []

    def quarantine(self, rejected: DataFrame, stage: str, target: str) -> int:
        """Land rejected rows (``REJECT_COLUMNS``) in ops.quarantine; returns how many.

        The record and the reason (which may quote a value) are encrypted at rest, and
        the record's hash is keyed: an unkeyed hash of a short record could be reversed by
        trying every ID. ``lakehouse.read_clear`` gives them back in memory.
        """
        rows = rejected.select(
            F.lit(self.run_id).alias("run_id"),
            F.lit(stage).alias("stage"),
            F.lit(target).alias("target"),
            "rule",
            "reason",
            "record",
            pii.pseudonym(F.concat_ws("|", "rule", "record"), self.settings).alias("record_hash"),
            "source_uri",
            F.current_timestamp().alias("quarantined_at"),
        )
        rows = pii.encrypt_columns(
            rows, OPS_QUARANTINE.sensitive, OPS_QUARANTINE.full_name, self.settings
        ).cache()
        n = rows.count()
        if n:
            lakehouse.merge(rows, OPS_QUARANTINE, self.settings, insert_only=True)
        rows.unpersist()
        return n

    def record(self, counts: StepCounts) -> StepCounts:
        """Write the step's manifest row; raise if its numbers do not reconcile."""
        self.steps.append(counts)
        row = {
            "run_id": self.run_id,
            "stage": counts.stage,
            "source": counts.source,
            "target": counts.target,
            "window_start": counts.window_start,
            "window_end": counts.window_end,
            "rows_in": counts.rows_in,
            "rows_out": counts.rows_out,
            "rows_unchanged": counts.rows_unchanged,
            "rows_quarantined": counts.rows_quarantined,
            "started_at": counts.started_at.replace(tzinfo=None),
            "finished_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        }
        df = self.spark.createDataFrame([row], OPS_MANIFEST.schema)
        lakehouse.merge(df, OPS_MANIFEST, self.settings)
        if not counts.reconciles:
            raise ReconciliationError(
                f"{counts.stage} {counts.source} -> {counts.target}: rows in {counts.rows_in} != "
                f"out {counts.rows_out} + unchanged {counts.rows_unchanged} + quarantined "
                f"{counts.rows_quarantined}; see ops.manifest run {self.run_id}"
            )
        return counts
