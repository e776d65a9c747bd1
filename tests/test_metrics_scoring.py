"""Metrics and the apply-tier classification on hand-checked values."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from riskcontrol import metrics, scoring


def test_auc_ks_gini_of_a_known_score_vector():
    scores = [0.1, 0.4, 0.35, 0.8]
    labels = [0, 0, 1, 1]
    assert metrics.auc(scores, labels) == pytest.approx(0.75)
    assert metrics.ks(scores, labels) == pytest.approx(0.5)
    assert metrics.gini(scores, labels) == pytest.approx(0.5)


def test_auc_counts_ties_as_half_and_perfect_ranking_as_one():
    assert metrics.auc([0.5, 0.5], [0, 1]) == pytest.approx(0.5)
    assert metrics.auc([0.1, 0.2, 0.9, 0.95], [0, 0, 1, 1]) == pytest.approx(1.0)
    assert metrics.ks([0.1, 0.2, 0.9, 0.95], [0, 0, 1, 1]) == pytest.approx(1.0)


def test_metrics_refuse_a_single_class():
    with pytest.raises(ValueError, match="both goods"):
        metrics.auc([0.1, 0.2], [0, 0])


def test_score_band_quadrant_decision(spark, settings):
    rows = [
        ("a", 0.05, 1000.0),  # base odds 19:1 -> 600; low PD, low impact
        ("b", 1 / 39, 100000.0),  # odds 38:1 -> 650 (one PDO up); high impact -> B
        ("c", 0.5, 1000.0),  # 600 + 50/ln2 * ln(1/19) = 387.6 -> 388; high PD -> C
        ("d", 0.15, 30000.0),  # high PD, high impact (30000 * 0.45 >= 9000) -> D
        ("e", 0.999999, 1000.0),  # clipped at 300
    ]
    df = spark.createDataFrame(rows, "id string, pd double, requested_amount double")
    out = {r["id"]: r for r in scoring.classify(df, settings).collect()}
    assert {k: v["score"] for k, v in out.items()} == {
        "a": 600,
        "b": 650,
        "c": 388,
        "d": 513,  # 600 + 72.13 * (ln(0.85/0.15) - ln 19) = 512.7
        "e": 300,
    }
    assert {k: v["quadrant"] for k, v in out.items()} == {
        "a": "A",
        "b": "B",
        "c": "C",
        "d": "D",
        "e": "C",
    }
    assert {k: v["risk_band"] for k, v in out.items()} == {
        "a": "medium",
        "b": "low",
        "c": "very_high",
        "d": "high",
        "e": "very_high",
    }
    assert {k: v["decision"] for k, v in out.items()} == {
        "a": "approve",
        "b": "approve",
        "c": "reject",
        "d": "review",
        "e": "reject",
    }
    assert out["d"]["impact"] == pytest.approx(13500.0)
    assert out["d"]["strategy"] == scoring.QUADRANT_STRATEGY["D"]


def test_quadrant_thresholds_are_inclusive(spark):
    df = spark.createDataFrame([(0.10, 9000.0), (0.0999, 8999.0)], "pd double, impact double")
    got = [
        r[0]
        for r in df.select(scoring.quadrant(F.col("pd"), F.col("impact"), 0.10, 9000.0)).collect()
    ]
    assert got == ["D", "A"]
