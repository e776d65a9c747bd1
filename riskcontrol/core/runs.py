"""Run bookkeeping: validation rules, the quarantine, and the reconciling manifest.

Every step reports ``rows_in = rows_out + rows_unchanged + rows_quarantined``; the
manifest refuses a step whose numbers do not add up, so a row can never silently
disappear between two tables.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
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
