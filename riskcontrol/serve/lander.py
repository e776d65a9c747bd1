"""Land the service's decision journal into ``gold.decision_log`` (Delta).

The journal (SQLite, written before each answer) is the durable record; the Delta table
is its analytical copy, read by the report and ``riskctl decisions``. A landing copies the
journal rows after the table's highest ``decision_seq``, in sequence order, in one append
per batch: the table itself says how far it got, so a landing that dies half way, or
runs twice, neither loses nor duplicates a decision.

Journal records hold no clear identifier (the application and customer are keyed
pseudonyms), and the landing copies only the declared columns.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from riskcontrol.core import lakehouse, locks
from riskcontrol.core.catalog import GOLD_DECISION_LOG, GOLD_DECISION_REVIEWS
from riskcontrol.core.config import Settings
from riskcontrol.serve.journal import DecisionJournal, Entry

BATCH = 50_000


@dataclass(frozen=True)
class Landing:
    journal_rows: int  # rows in the journal when the landing ended
    landed: int  # rows this landing appended (Delta's own count of its commits)
    table_rows: int  # rows in gold.decision_log afterwards
    last_seq: int
    reviews_landed: int = 0  # reviews (the workbench) this landing appended
    review_rows: int = 0  # rows in gold.decision_reviews afterwards


def _ts(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC).replace(tzinfo=None)


def row_of(entry: Entry, landed_at: dt.datetime) -> dict[str, Any]:
    """One ``gold.decision_log`` row of a journal entry."""
    r = entry.record
    champion, challenger = r.get("champion") or {}, r.get("challenger") or {}
    versions = r.get("versions") or {}
    return {
        "decision_seq": entry.seq,
        "application_key": entry.key,
        "customer_key": r.get("customer_key"),
        "request_fingerprint": r.get("request_fingerprint"),
        "product": r.get("product"),
        "application_date": dt.date.fromisoformat(r["application_date"])
        if r.get("application_date")
        else None,
        "decided_at": _ts(r.get("decided_at")),
        "decision": r.get("decision"),
        "pd": r.get("pd"),
        "score": r.get("score"),
        "risk_band": r.get("risk_band"),
        "quadrant": r.get("quadrant"),
        "arm": r.get("arm"),
        "shadow": r.get("shadow"),
        "rules_action": r.get("rules_action"),
        "rules_fired": list(r.get("rules_fired") or []),
        "rules_undecided": list(r.get("rules_undecided") or []),
        "reason_codes": list(r.get("reason_codes") or []),
        "champion_model": champion.get("model"),
        "champion_pd": champion.get("pd"),
        "champion_decision": champion.get("decision"),
        "challenger_model": challenger.get("model"),
        "challenger_pd": challenger.get("pd"),
        "challenger_decision": challenger.get("decision"),
        "rules_version": versions.get("rules"),
        "rules_digest": versions.get("rules_digest"),
        "policy_version": versions.get("policy"),
        "has_history": r.get("has_history"),
        "features_json": json.dumps(r.get("features"), sort_keys=True),
        "rule_inputs_json": json.dumps(r.get("rule_inputs"), sort_keys=True),
        "latency_ms": r.get("latency_ms"),
        "caller": r.get("caller"),
        "landed_at": landed_at,
    }


def review_row_of(entry: Entry, landed_at: dt.datetime) -> dict[str, Any]:
    """One ``gold.decision_reviews`` row of a journal review (its reason is not landed)."""
    r = entry.record
    return {
        "review_seq": entry.seq,
        "application_key": entry.key,
        "customer_key": r.get("customer_key"),
        "decision_seq": r.get("original_seq"),
        "original_decision": r.get("original_decision"),
        "decision": r.get("decision"),
        "reviewer": r.get("reviewer"),
        "reviewed_at": _ts(r.get("reviewed_at")),
        "landed_at": landed_at,
    }


def landed_seq(
    spark: SparkSession, settings: Settings, table=GOLD_DECISION_LOG, col: str = "decision_seq"
) -> int:
    if not lakehouse.exists(spark, table, settings):
        return 0
    top = lakehouse.read(spark, table, settings).agg(F.max(col)).first()[0]
    return int(top or 0)


def land(
    spark: SparkSession, settings: Settings, journal: DecisionJournal, batch: int = BATCH
) -> Landing:
    """Append every journal row not yet in ``gold.decision_log``.

    Under the lakehouse lock (shared): an erasure (exclusive) deletes a customer from
    the journal and then from this table, and a landing never reads the journal before
    and appends after it.
    """
    with locks.lakehouse_lock(settings):
        return _land(spark, settings, journal, batch)


def _land(spark: SparkSession, settings: Settings, journal: DecisionJournal, batch: int) -> Landing:
    after = landed_seq(spark, settings)
    landed = 0
    while True:
        entries = journal.since(after, limit=batch)
        if not entries:
            break
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        df = spark.createDataFrame([row_of(e, now) for e in entries], GOLD_DECISION_LOG.schema)
        tag = f"decision-log-{entries[0].seq}-{entries[-1].seq}"
        landed += lakehouse.append(df, GOLD_DECISION_LOG, settings, tag)
        after = entries[-1].seq
    total = lakehouse.read(spark, GOLD_DECISION_LOG, settings).count() if after else 0
    # then the reviews: each names a decision landed above (a review follows its decision)
    review_after = landed_seq(spark, settings, GOLD_DECISION_REVIEWS, "review_seq")
    reviews = 0
    while chunk := journal.reviews_after(review_after, limit=batch):
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = [review_row_of(e, now) for e in chunk]
        df = spark.createDataFrame(rows, GOLD_DECISION_REVIEWS.schema)
        tag = f"decision-reviews-{chunk[0].seq}-{chunk[-1].seq}"
        reviews += lakehouse.append(df, GOLD_DECISION_REVIEWS, settings, tag)
        review_after = chunk[-1].seq
    review_rows = (
        lakehouse.read(spark, GOLD_DECISION_REVIEWS, settings).count() if review_after else 0
    )
    return Landing(journal.count(), landed, total, after, reviews, review_rows)
