"""Run bookkeeping: the quarantine and the reconciling manifest.

Every step reports ``rows_in = rows_out + rows_unchanged + rows_duplicate +
rows_quarantined``, each number counted by the operation that did it (the read, the
rules, the MERGE), never as what is left over; the manifest refuses a step whose numbers
do not add up, so a row can never silently disappear between two tables.

Both tables are append-only per attempt: a retry of a step (an Airflow retry, the same
``--run-id`` again) adds its own manifest row and its own quarantine rows, keyed by the
attempt, and the quarantine rows of an attempt always number its ``rows_quarantined``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from riskcontrol.core import lakehouse, pii
from riskcontrol.core.catalog import OPS_MANIFEST, OPS_QUARANTINE
from riskcontrol.core.config import Settings


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
    rows_duplicate: int = 0  # the same record (keys and content) again within the input
    rows_rescued: int = 0  # of the rows not quarantined: a value kept raw in _rescued_data
    attempt_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def reconciles(self) -> bool:
        return self.rows_in == (
            self.rows_out + self.rows_unchanged + self.rows_duplicate + self.rows_quarantined
        )


class ReconciliationError(RuntimeError):
    """A step's rows in differ from rows out + unchanged + duplicate + quarantined, or the
    quarantine kept fewer rows than it was given."""


class Run:
    """One run of the pipeline: its id, and the writers of the manifest and quarantine."""

    def __init__(self, spark: SparkSession, settings: Settings, run_id: str | None = None):
        self.spark = spark
        self.settings = settings
        self.run_id = run_id or f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        self.steps: list[StepCounts] = []

    def quarantine(
        self, rejected: DataFrame, stage: str, target: str, attempt_id: str | None = None
    ) -> int:
        """Land rejected rows (``REJECT_COLUMNS``) in ops.quarantine; returns how many.

        Every row is kept: identical rejected records of one attempt are its 1st, 2nd...
        ``occurrence``, and the count returned is the rows the MERGE inserted (a
        ``ReconciliationError`` if that is not every row given). ``attempt_id`` ties the
        rows to the step's manifest row (default: a new one per call).

        The record and the reason (which may quote a value) are encrypted at rest, and
        the record's hash is keyed: an unkeyed hash of a short record could be reversed by
        trying every ID. ``lakehouse.read_clear`` gives them back in memory.
        """
        attempt_id = attempt_id or uuid.uuid4().hex
        record_hash = pii.pseudonym(F.concat_ws("|", "rule", "record"), self.settings)
        same = Window.partitionBy("rule", "record_hash").orderBy("source_uri", "reason")
        rows = rejected.select(
            F.lit(self.run_id).alias("run_id"),
            F.lit(stage).alias("stage"),
            F.lit(target).alias("target"),
            "rule",
            "reason",
            "record",
            record_hash.alias("record_hash"),
            "source_uri",
            F.current_timestamp().alias("quarantined_at"),
            F.lit(attempt_id).alias("attempt_id"),
        ).withColumn("occurrence", F.row_number().over(same))
        rows = pii.encrypt_columns(
            rows, OPS_QUARANTINE.sensitive, OPS_QUARANTINE.full_name, self.settings
        ).cache()
        try:
            n = rows.count()
            if not n:
                return 0
            lakehouse.add_missing_columns(self.spark, OPS_QUARANTINE, self.settings)
            kept = lakehouse.append(rows, OPS_QUARANTINE, self.settings, attempt_id)
        finally:
            rows.unpersist()
        if kept != n:
            raise ReconciliationError(
                f"{stage} -> {target}: the quarantine kept {kept} of {n} rejected rows "
                f"(attempt {attempt_id}); see ops.quarantine"
            )
        return n

    def record(self, counts: StepCounts) -> StepCounts:
        """Write the step's manifest row (appended: its attempt id is new); raise if its
        numbers do not reconcile."""
        if any(s.attempt_id == counts.attempt_id for s in self.steps):
            raise ValueError(f"attempt {counts.attempt_id} is recorded already")
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
            "attempt_id": counts.attempt_id,
            "rows_duplicate": counts.rows_duplicate,
            "rows_rescued": counts.rows_rescued,
        }
        df = self.spark.createDataFrame([row], OPS_MANIFEST.schema)
        lakehouse.add_missing_columns(self.spark, OPS_MANIFEST, self.settings)
        lakehouse.append(df, OPS_MANIFEST, self.settings, counts.attempt_id)
        if not counts.reconciles:
            raise ReconciliationError(
                f"{counts.stage} {counts.source} -> {counts.target}: rows in {counts.rows_in} != "
                f"out {counts.rows_out} + unchanged {counts.rows_unchanged} + duplicate "
                f"{counts.rows_duplicate} + quarantined {counts.rows_quarantined}; see "
                f"ops.manifest run {self.run_id} attempt {counts.attempt_id}"
            )
        return counts
