"""What the workbench's pages show and do, apart from HTTP: the decision journal's
figures, the lakehouse's alerts, indicators and loan book (through Spark, started on
first use), and the activation of an approved cut-off policy.

The alert pages call :mod:`riskcontrol.apply.alerts` exactly as ``riskctl alerts`` does:
one code path for the workflow and its refusals.
"""

from __future__ import annotations

import datetime as dt
import statistics
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from riskcontrol.core.config import Settings

DAYS = 30
CACHE_SECONDS = 60.0


def _rate(n: int, d: int) -> float | None:
    return n / d if d else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def decision_figures(
    decided: list[dict[str, Any]], reviews: list[dict[str, Any]], now: dt.datetime
) -> dict[str, Any]:
    """Today's and the last 30 days' figures of the service's decisions (UTC days)."""
    today = now.astimezone(dt.UTC).date()
    start = today - dt.timedelta(days=DAYS - 1)
    window = [d for d in decided if d["created_at"].date() >= start]

    def block(rows: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(rows)
        by = Counter(r["decision"] for r in rows)
        hits = Counter(code for r in rows for code in r["rules_fired"])
        arms: dict[str, dict[str, Any]] = {}
        for arm in sorted({r["arm"] for r in rows if r["arm"]}):
            mine = [r for r in rows if r["arm"] == arm]
            arms[arm] = {
                "n": len(mine),
                "approval_rate": _rate(sum(r["decision"] == "approve" for r in mine), len(mine)),
                "mean_pd": statistics.fmean(r["pd"] for r in mine) if mine else None,
            }
        both = [r for r in rows if r["challenger_pd"] is not None and r["champion_pd"] is not None]
        lat = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
        return {
            "n": n,
            "approve": by["approve"],
            "review": by["review"],
            "reject": by["reject"],
            "approval_rate": _rate(by["approve"], n),
            "review_rate": _rate(by["review"], n),
            "reject_rate": _rate(by["reject"], n),
            "rule_hits": [(code, c, c / n) for code, c in sorted(hits.items())],
            "latency_p50": _percentile(lat, 0.5),
            "latency_p95": _percentile(lat, 0.95),
            "arms": arms,
            "challenger_scored": len(both),
            "challenger_mean_pd": statistics.fmean(r["challenger_pd"] for r in both)
            if both
            else None,
            "champion_mean_pd": statistics.fmean(r["champion_pd"] for r in both) if both else None,
        }

    days = [(start + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
    per_day = {k: [0] * DAYS for k in ("approve", "review", "reject")}
    for r in window:
        i = (r["created_at"].date() - start).days
        if r["decision"] in per_day:
            per_day[r["decision"]][i] += 1
    reviewed = Counter(r["decision"] for r in reviews)
    return {
        "today": block([d for d in window if d["created_at"].date() == today]),
        "month": block(window),
        "days": days,
        "per_day": per_day,
        "pds": [r["pd"] for r in window if r["pd"] is not None],
        "reviews": {"approve": reviewed["approve"], "reject": reviewed["reject"]},
        "start": start.isoformat(),
        "today_date": today.isoformat(),
    }


def preview_cutoff(
    decided: list[dict[str, Any]], approve_below: float, reject_from: float, lgd: float
) -> dict[str, Any]:
    """What a cut-off would have done on the service's recent applications: their champion
    PD under the proposed thresholds, with the rules' knock-outs and referrals kept.

    The bad rate is the expected one (the mean PD of the approved: recent applications
    have no outcome yet); the expected loss is PD x LGD x the amount, over the approved.
    """
    if not 0 < approve_below <= reject_from <= 1:
        raise ValueError(
            "a cut-off needs 0 < approve-below PD <= reject-from PD <= 1, e.g. 0.05 and 0.15"
        )
    rows = [r for r in decided if r["champion_pd"] is not None]
    out = Counter()
    approved_pd, loss = [], 0.0
    for r in rows:
        pd_ = r["champion_pd"]
        model = "approve" if pd_ < approve_below else "reject" if pd_ >= reject_from else "review"
        rank = {"pass": 0, "approve": 0, "review": 1, "reject": 2}
        final = max(model, r["rules_action"] or "pass", key=lambda a: rank.get(a, 0))
        final = "approve" if final == "pass" else final
        out[final] += 1
        if final == "approve":
            approved_pd.append(pd_)
            loss += pd_ * lgd * float(r["requested_amount"] or 0.0)
    n = len(rows)
    return {
        "applications": n,
        "approved": out["approve"],
        "reviewed": out["review"],
        "rejected": out["reject"],
        "approval_rate": _rate(out["approve"], n),
        "bad_rate": statistics.fmean(approved_pd) if approved_pd else None,
        "expected_loss": round(loss, 2),
    }


class Lake:
    """The lakehouse as the workbench reads it: one Spark session, started on first use
    (or the decision service's own), and results cached for a minute."""

    def __init__(self, settings: Settings, spark=None):
        self.settings = settings
        self._spark = spark
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Any]] = {}

    @property
    def spark(self):
        with self._lock:
            if self._spark is None:
                from riskcontrol.core.spark import get_spark

                self._spark = get_spark(self.settings)
            return self._spark

    def _cached(self, name: str, compute):
        hit = self._cache.get(name)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        value = compute()
        self._cache[name] = (time.monotonic(), value)
        return value

    def forget(self) -> None:
        self._cache.clear()

    def _exists(self, table) -> bool:
        from riskcontrol.core import lakehouse

        return lakehouse.exists(self.spark, table, self.settings)

    def _read(self, table):
        from riskcontrol.core import lakehouse

        return lakehouse.read(self.spark, table, self.settings)

    # --- alerts (the same functions as `riskctl alerts`) --------------------------------
    def alerts(self, open_only: bool = True) -> list[dict]:
        from riskcontrol.apply import alerts

        return alerts.list_alerts(self.spark, self.settings, open_only=open_only)

    def alert(self, alert_id: str) -> dict:
        from riskcontrol.apply import alerts

        return alerts.get_alert(self.spark, self.settings, alert_id)

    def advance(self, alert_id: str, by: str, note: str, to_stage: str | None) -> dict:
        from riskcontrol.apply import alerts

        moved = alerts.advance(self.spark, self.settings, alert_id, by, note, to_stage)
        self.forget()
        return moved

    # --- indicators, loan book, policy ----------------------------------------------------
    def indicators(self) -> list[dict]:
        """The latest day's early-warning indicators, breaches first."""
        from pyspark.sql import functions as F

        from riskcontrol.core.catalog import GOLD_WARNING_INDICATORS

        def compute():
            if not self._exists(GOLD_WARNING_INDICATORS):
                return []
            df = self._read(GOLD_WARNING_INDICATORS)
            last = df.agg(F.max("as_of_date")).first()[0]
            if last is None:
                return []
            rows = [r.asDict() for r in df.where(F.col("as_of_date") == last).collect()]
            order = {"critical": 0, "warning": 1}
            return sorted(
                rows,
                key=lambda r: (
                    order.get(r["status"], 2),
                    r["indicator"],
                    r["segment_type"],
                    r["segment"],
                ),
            )

        return self._cached("indicators", compute)

    def trend(self, indicator: str, segment_type: str, segment: str) -> list[dict]:
        from pyspark.sql import functions as F

        from riskcontrol.core.catalog import GOLD_WARNING_INDICATORS

        if not self._exists(GOLD_WARNING_INDICATORS):
            return []
        df = self._read(GOLD_WARNING_INDICATORS).where(
            (F.col("indicator") == indicator)
            & (F.col("segment_type") == segment_type)
            & (F.col("segment") == segment)
        )
        return [r.asDict() for r in df.orderBy("as_of_date").collect()]

    def expected_loss(self) -> dict | None:
        """The loan book's expected loss on its latest day."""
        from pyspark.sql import functions as F

        from riskcontrol.core.catalog import GOLD_LOAN_BOOK_RISK

        def compute():
            if not self._exists(GOLD_LOAN_BOOK_RISK):
                return None
            df = self._read(GOLD_LOAN_BOOK_RISK)
            last = df.agg(F.max("as_of_date")).first()[0]
            if last is None:
                return None
            row = (
                df.where(F.col("as_of_date") == last)
                .agg(F.count(F.lit(1)).alias("loans"), F.sum("expected_loss").alias("el"))
                .first()
            )
            return {"as_of_date": last.isoformat(), "loans": row["loans"], "el": row["el"]}

        return self._cached("expected_loss", compute)

    def active_policy(self):
        from riskcontrol.apply import scoring

        return self._cached("policy", lambda: scoring.active_policy(self.spark, self.settings))

    def activate_cutoff(self, proposal: dict[str, Any]) -> int:
        """Write the approved cut-off as the new active gold.cutoff_policy version (the
        active one superseded in the same commit); the decision service's watcher picks
        it up. Returns the version."""
        from riskcontrol.apply import scoring

        p, pv = proposal["payload"], proposal["preview"]
        version = scoring.activate_cutoff(
            self.spark,
            self.settings,
            p["approve_below_pd"],
            p["reject_from_pd"],
            population=(
                f"workbench proposal #{proposal['id']} by {proposal['proposer']}, approved by "
                f"{proposal['decided_by']}; previewed on {pv.get('applications')} recent "
                "service decisions"
            ),
            figures=pv,
        )
        self.forget()
        return version

    def backtests(self) -> list[dict]:
        """The latest policy backtests (gold.policy_backtests), newest first."""
        from riskcontrol.apply import backtest_store

        return backtest_store.backtests(self.spark, self.settings)

    def activate_backtested(self, proposal: dict[str, Any], service: Sequence[str]) -> str:
        """Make an approved backtested policy the one that decides (its model the
        champion, its cut-off the active one), if it keeps the ``service``'s reject rules;
        says what it did."""
        from riskcontrol.apply import policylab

        p = proposal["payload"]
        done = policylab.activate(
            self.spark,
            self.settings,
            policylab.Policy.from_dict(p["policy"]),
            service,
            population=(
                f"backtest {p['backtest_id']} on {p['window']}; workbench proposal "
                f"#{proposal['id']} by {proposal['proposer']}, approved by "
                f"{proposal['decided_by']}"
            ),
            figures=proposal["preview"].get("figures"),
        )
        self.forget()
        return done

    def drafts(self) -> list[dict]:
        from riskcontrol.apply import scoring

        return scoring.drafts(self.spark, self.settings)

    def activate_draft(self, version: int) -> int:
        from riskcontrol.apply import scoring

        scoring.activate_draft(self.spark, self.settings, version)
        self.forget()
        return version

    # --- public records linked to a customer (masked as in silver) ----------------------
    def linked_records(self, customer_key: str) -> list[dict]:
        """Court, penalty and news records that entity resolution linked to the customer
        whose keyed pseudonym is ``customer_key``; the fields silver keeps (masked)."""
        from pyspark.sql import functions as F

        from riskcontrol.core import pii
        from riskcontrol.core.catalog import (
            SILVER_COURT_RECORDS,
            SILVER_ENTITY_LINKS,
            SILVER_NEWS,
            SILVER_PENALTIES,
        )

        if not self._exists(SILVER_ENTITY_LINKS):
            return []
        links = (
            self._read(SILVER_ENTITY_LINKS)
            .where(F.col("entity_type") == "customer")
            .where(pii.pseudonym("customer_id", self.settings) == F.lit(customer_key))
            .select("record_kind", "record_id", "match_method", "confidence")
        )
        found = {(r.record_kind, r.record_id): r.asDict() for r in links.collect()}
        if not found:
            return []
        ids = [rid for _, rid in found]
        out = []
        sources = (
            (
                SILVER_COURT_RECORDS,
                "filing_date",
                lambda r: (
                    f"{r['case_no']} · {r['court']} · {r['subject_display']} · "
                    f"{r['list_type']} · {r['amount']}"
                ),
            ),
            (
                SILVER_PENALTIES,
                "decision_date",
                lambda r: (
                    f"{r['decision_no']} · {r['authority']} · {r['subject_display']} · "
                    f"{r['reason']}"
                ),
            ),
            (SILVER_NEWS, "published_at", lambda r: f"{r['title']} · {r['news_source']}"),
        )
        for table, date_col, summary in sources:
            if not self._exists(table):
                continue
            for r in self._read(table).where(F.col("record_id").isin(ids)).collect():
                row = r.asDict()
                link = next((v for (_, rid), v in found.items() if rid == row["record_id"]), {})
                when = row.get(date_col)
                out.append(
                    {
                        "kind": table.name,
                        "record_id": row["record_id"],
                        "date": when.isoformat()[:10] if when else "",
                        "summary": summary(row),
                        "match": link.get("match_method"),
                        "confidence": link.get("confidence"),
                    }
                )
        return sorted(out, key=lambda r: (r["date"], r["record_id"]), reverse=True)
