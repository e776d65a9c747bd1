"""The policy lab's history from gold.application_features, and a replay of it (Spark)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pyspark.sql import functions as F

from riskcontrol.apply import policylab
from riskcontrol.apply.backtest import Policy, replay
from riskcontrol.apply.riskcost import CostModel

FEATURES = (
    "application_id string, application_month string, status string, label_status string, "
    "label int, channel string, province string, purpose string, requested_amount double, "
    "x double"
)
ROWS = [
    # id, month, status, label status, label, channel, province, purpose, amount, x
    ("A1", "2025-01", "approved", "good", 0, "app", "GD", "cash", 1000.0, 0.04),
    ("A2", "2025-01", "approved", "bad", 1, "app", "ZJ", "cash", 2000.0, 0.15),
    ("A3", "2025-02", "approved", "indeterminate", None, "web", "GD", "bnpl", 1000.0, 0.08),
    ("A4", "2025-02", "approved", "immature", None, "web", "GD", "cash", 3000.0, 0.12),
    ("A5", "2025-02", "rejected", None, None, "web", "ZJ", "cash", 1000.0, 0.25),
    ("A6", "2025-03", "rejected", None, None, "app", "GD", "bnpl", 500.0, 0.18),  # later
    ("A7", "2025-01", "pending", None, None, "app", "GD", "cash", 800.0, 0.01),  # undecided
    ("A8", "2024-12", "approved", "good", 0, "app", "GD", "cash", 900.0, 0.02),  # earlier
]


def _model(scale: float) -> SimpleNamespace:
    """A stand-in for a registered model: pd = x times ``scale``."""
    return SimpleNamespace(transform=lambda df: df.withColumn("pd", F.col("x") * scale))


def test_the_history_holds_the_decided_applications_of_the_window(spark) -> None:
    features = spark.createDataFrame(ROWS, FEATURES)
    got = policylab.backtest_history(features, _model(1.0), _model(2.0), "2025-01..2025-02")
    assert got[
        [
            "application_id",
            "historical_decision",
            "bad",
            "pd_active",
            "pd_proposed",
            "exposure",
            "product",
            "score_band",
        ]
    ].to_dict("records") == [
        # a known outcome: good or bad of an approved application
        _r("A1", "approved", 0.0, 0.04, 0.08, 1000.0, "cash", "medium"),
        _r("A2", "approved", 1.0, 0.15, 0.30, 2000.0, "cash", "very_high"),
        # approved without an outcome: indeterminate, immature
        _r("A3", "approved", None, 0.08, 0.16, 1000.0, "bnpl", "high"),
        _r("A4", "approved", None, 0.12, 0.24, 3000.0, "cash", "very_high"),
        # rejected: no outcome, reject inference's
        _r("A5", "rejected", None, 0.25, 0.50, 1000.0, "cash", "very_high"),
    ]
    with pytest.raises(ValueError, match="no application was approved or rejected in 2023-01"):
        policylab.backtest_history(features, _model(1.0), _model(1.0), "2023-01..2023-06")


def _r(app, decision, bad, pd_active, pd_proposed, exposure, product, band) -> dict:
    return {
        "application_id": app,
        "historical_decision": decision,
        "bad": pytest.approx(bad, nan_ok=True) if bad is not None else _NaN(),
        "pd_active": pytest.approx(pd_active),
        "pd_proposed": pytest.approx(pd_proposed),
        "exposure": exposure,
        "product": product,
        "score_band": band,
    }


class _NaN:
    """Equal to a missing value, as pandas gives one (None or NaN)."""

    def __eq__(self, other) -> bool:
        return other is None or other != other

    def __repr__(self) -> str:
        return "missing"


def test_the_history_replays(spark) -> None:
    """The frame is what replay reads: the active policy (model x) approves below 0.10 and
    rejects from 0.20; the proposed (model 2x) approves below 0.20 and rejects from 0.40.
    A1 0.04/0.08: approve/approve; A2 0.15/0.30: review/review; A3 0.08/0.16: approve/
    approve; A4 0.12/0.24: review/review; A5 0.25/0.50: reject/reject. No swap."""
    features = spark.createDataFrame(ROWS, FEATURES)
    history = policylab.backtest_history(features, _model(1.0), _model(2.0), "2025-01..2025-02")
    cost = CostModel(lgd=0.5, good_margin=0.1, review_cost=0.0, review_band=0.0, risk_tolerance=1)
    result = replay(
        history,
        Policy("v1", "x", 0.10, 0.20),
        Policy("v2", "2x", 0.20, 0.40),
        cost,
        segments=policylab.SEGMENTS,
    )
    assert result.metric("active", "approvals") == 4
    assert result.metric("proposed", "approvals") == 4
    # known outcomes of the approvals: A1 good, A2 bad
    assert result.metric("active", "bad_rate") == pytest.approx(0.5)
    assert result.swap("swap_in", "applications") == 0
