"""A policy backtest as rows of ``gold.policy_backtests``, and back to a summary.

``records`` flattens a ``BacktestResult`` (with its guard flags) into long rows: one per
figure, named by ``section`` (``policy``, ``segment``, ``swap``, ``swap_matrix``,
``swap_rule``, ``inference``, ``flag``, ``note``), ``method``, ``subject`` (the policy,
the swap set, the matrix cell "active->proposed", the rule's policy), ``segment_type``,
``segment`` and ``metric``, with its ``value`` and, for the ranged metrics, ``low`` and
``high``. Every row of one backtest carries its id, when it ran, the window and both
policies as JSON, so one backtest is one ``backtest_id`` and nothing is rewritten.

No row names an application: the per-application ``rows`` of a result stay in memory.

``summary`` reads the rows of one backtest back into the plain dict the risk report and
the workbench's policy-approval page show. ``write`` and ``backtests`` are the table's one
writer and reader (Spark); the rest is plain pandas.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from riskcontrol.apply.backtest import (
    METHODS,
    METRICS,
    POLICIES,
    POPULATION_METRICS,
    RANGE_METRICS,
    SWAPS,
    BacktestResult,
)
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import GOLD_POLICY_BACKTESTS
from riskcontrol.core.config import Settings

COLUMNS = (
    "backtest_id",
    "created_at",
    "window",
    "active_version",
    "active_policy",
    "proposed_version",
    "proposed_policy",
    "section",
    "method",
    "subject",
    "segment_type",
    "segment",
    "metric",
    "value",
    "low",
    "high",
    "note",
)
SECTIONS = ("policy", "segment", "swap", "swap_matrix", "swap_rule", "inference", "flag", "note")
# The headline figures the report and the approval page show per policy and swap set.
SUMMARY_POLICY_METRICS = (
    "applications",
    "approvals",
    "reviews",
    "approval_rate",
    "bad_rate",
    "expected_loss",
    "profit",
)
SUMMARY_SWAP_METRICS = ("applications", "exposure", "known_outcomes", "bad_rate", "profit")


def _number(value: Any) -> float | None:
    """A figure as a float; NaN (a rate over nothing) as None, a SQL null."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def records(
    result: BacktestResult,
    flags: Sequence[str],
    *,
    backtest_id: str,
    window: str,
    created_at: datetime,
) -> pd.DataFrame:
    """The rows of ``gold.policy_backtests`` for one backtest (``COLUMNS``)."""
    out: list[dict[str, Any]] = []

    def add(
        section,
        metric,
        value=None,
        method=None,
        subject=None,
        kind=None,
        seg=None,
        low=None,
        high=None,
        note=None,
    ):
        out.append(
            {
                "section": section,
                "method": method,
                "subject": subject,
                "segment_type": kind,
                "segment": seg,
                "metric": metric,
                "value": _number(value),
                "low": _number(low),
                "high": _number(high),
                "note": note,
            }
        )

    ranged_frames = (
        ("policy", result.policies, "policy", METRICS),
        ("swap", result.swaps, "swap", (*POPULATION_METRICS, "profit")),
    )
    for section, frame, subject, names in ranged_frames:
        for r in frame.to_dict("records"):
            for m in names:
                ranged = m in RANGE_METRICS
                add(
                    section,
                    m,
                    r[m],
                    r["method"],
                    r[subject],
                    low=r[f"{m}_low"] if ranged else None,
                    high=r[f"{m}_high"] if ranged else None,
                )
    for r in result.segments.to_dict("records"):
        for m in METRICS:
            add("segment", m, r[m], r["method"], r["policy"], r["segment_type"], r["segment"])
    for r in result.swap_matrix.to_dict("records"):
        for m in POPULATION_METRICS:
            add("swap_matrix", m, r[m], r["method"], f"{r['active']}->{r['proposed']}")
    for r in result.swap_rules.to_dict("records"):
        for m in ("applications", "exposure"):
            add("swap_rule", m, r[m], None, r["swap"], "rule", r["rule"], note=r["policy"])
    for method, details in result.inference.items():
        for key, value in sorted(details.items()):
            if isinstance(value, bool) or not isinstance(value, int | float):
                add("inference", key, None, method, note=str(value))
            else:
                add("inference", key, value, method)
    for i, flag in enumerate(flags, 1):
        add("flag", "flag", i, seg=f"flag {i}", note=flag)
    for i, text in enumerate(result.notes, 1):
        add("note", "note", i, seg=f"note {i}", note=text)

    frame = pd.DataFrame(out)
    frame.insert(0, "proposed_policy", json.dumps(result.proposed.to_dict(), sort_keys=True))
    frame.insert(0, "proposed_version", result.proposed.version)
    frame.insert(0, "active_policy", json.dumps(result.active.to_dict(), sort_keys=True))
    frame.insert(0, "active_version", result.active.version)
    frame.insert(0, "window", window)
    frame.insert(0, "created_at", created_at)
    frame.insert(0, "backtest_id", backtest_id)
    return frame[list(COLUMNS)]


def _figures(rows: pd.DataFrame, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{metric: {value, low, high}} of the rows of one subject and method."""
    found = {}
    for r in rows.to_dict("records"):
        if r["metric"] in names:
            found[r["metric"]] = {k: _number(r[k]) for k in ("value", "low", "high")}
    return {m: found[m] for m in names if m in found}


def summary(rows: pd.DataFrame) -> dict[str, Any]:
    """One backtest's rows (of ``gold.policy_backtests``) as a plain dict: ``backtest_id``,
    ``created_at``, ``window``, ``active`` and ``proposed`` (the policies as dicts),
    ``policies`` {method: {policy: {metric: {value, low, high}}}}, ``swaps`` {method:
    {swap: ...}}, ``flags`` and ``notes`` (texts in order)."""
    ids = rows["backtest_id"].unique()
    if len(ids) != 1:
        raise ValueError(f"summary reads the rows of one backtest, got {len(ids)} backtest ids")
    first = rows.iloc[0]

    def texts(section: str) -> list[str]:
        part = rows[rows["section"] == section].sort_values("value", kind="stable")
        return [str(t) for t in part["note"]]

    def nested(section: str, subjects: Sequence[str], names: Sequence[str]) -> dict:
        part = rows[rows["section"] == section]
        return {
            method: {
                subject: _figures(
                    part[(part["method"] == method) & (part["subject"] == subject)], names
                )
                for subject in subjects
            }
            for method in METHODS
            if (part["method"] == method).any()
        }

    return {
        "backtest_id": str(ids[0]),
        "created_at": first["created_at"],
        "window": first["window"],
        "active": json.loads(first["active_policy"]),
        "proposed": json.loads(first["proposed_policy"]),
        "policies": nested("policy", POLICIES, SUMMARY_POLICY_METRICS),
        "swaps": nested("swap", SWAPS, SUMMARY_SWAP_METRICS),
        "flags": texts("flag"),
        "notes": texts("note"),
    }


def latest_id(rows: pd.DataFrame) -> str | None:
    """The id of the most recent backtest among ``rows`` (by ``created_at``, then id)."""
    if rows.empty:
        return None
    ordered = rows[["created_at", "backtest_id"]].drop_duplicates()
    ordered = ordered.sort_values(["created_at", "backtest_id"], kind="stable")
    return str(ordered["backtest_id"].iloc[-1])


def write(spark: SparkSession, settings: Settings, rows: pd.DataFrame) -> int:
    """Append one backtest's rows (``records``) to gold.policy_backtests;
    returns the rows the commit wrote."""
    frame = rows.astype(object).where(rows.notna(), None)

    def plain(value):  # Spark takes a datetime, not a pandas Timestamp
        return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value

    df = spark.createDataFrame(
        [tuple(map(plain, r)) for r in frame.itertuples(index=False)],
        GOLD_POLICY_BACKTESTS.schema,
    )
    tag = f"policy-backtest-{rows['backtest_id'].iloc[0]}"
    return lakehouse.append(df, GOLD_POLICY_BACKTESTS, settings, tag)


def backtests(spark: SparkSession, settings: Settings, limit: int = 20) -> list[dict]:
    """The latest ``limit`` backtests of gold.policy_backtests, newest first, each as
    ``summary`` gives it; none when the table does not exist yet."""
    if not lakehouse.exists(spark, GOLD_POLICY_BACKTESTS, settings):
        return []
    table = lakehouse.read(spark, GOLD_POLICY_BACKTESTS, settings)
    ids = [
        r["backtest_id"]
        for r in table.groupBy("backtest_id")
        .agg(F.max("created_at").alias("at"))
        .orderBy(F.desc("at"), F.desc("backtest_id"))
        .limit(limit)
        .collect()
    ]
    if not ids:
        return []
    wanted = table.where(
        F.col("backtest_id").isin(*ids) & F.col("section").isin("policy", "swap", "flag", "note")
    ).toPandas()
    found = {i: summary(g) for i, g in wanted.groupby("backtest_id")}
    return [found[i] for i in ids if i in found]
