"""Metrics, evaluation plots and the apply-tier classification on hand-checked values."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from pyspark.sql import functions as F

from riskcontrol.apply import scoring
from riskcontrol.modeling import metrics, plots

# The known vector of the first test: bads score 0.35 and 0.8, goods 0.1 and 0.4.
SCORES = [0.1, 0.4, 0.35, 0.8]
LABELS = [0, 0, 1, 1]


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


def test_brier_of_a_small_vector():
    # (0.1^2 + 0.4^2 + 0.65^2 + 0.2^2) / 4 = (0.01 + 0.16 + 0.4225 + 0.04) / 4
    assert metrics.brier(SCORES, LABELS) == pytest.approx(0.158125)
    with pytest.raises(ValueError, match="probabilities in"):
        metrics.brier([600.0, 0.2], [0, 1])


def test_inputs_are_validated_with_a_hint():
    with pytest.raises(ValueError, match="labels must be 0"):
        metrics.brier([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="contain NaN"):
        metrics.confusion([0.1, float("nan")], [0, 1], 0.5)
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.calibration_table([0.1, 0.2], [0, 1, 1])


def test_calibration_table_on_ten_scores_in_two_bins():
    scores = [0.70, 0.02, 0.30, 0.04, 0.60, 0.06, 0.50, 0.08, 0.40, 0.10]
    labels = [1, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    assert metrics.calibration_table(scores, labels, bins=2) == [
        # 0.02..0.10: mean 0.06, one bad (0.06) of 5
        {"bin": 1, "n": 5, "bads": 1, "min_score": 0.02, "max_score": 0.10,
         "mean_score": pytest.approx(0.06), "bad_rate": 0.2},
        # 0.30..0.70: mean 0.5, bads 0.5, 0.6, 0.7
        {"bin": 2, "n": 5, "bads": 3, "min_score": 0.30, "max_score": 0.70,
         "mean_score": pytest.approx(0.5), "bad_rate": 0.6},
    ]  # fmt: skip


def test_calibration_table_keeps_ties_in_one_bin_and_drops_empty_bins():
    # Sorted positions 1..6; the 0.2 group spans 2-4 with its middle at 3 <= 6/2: bin 1.
    table = metrics.calibration_table([0.1, 0.2, 0.2, 0.2, 0.3, 0.4], [0, 0, 1, 0, 1, 1], 2)
    assert [(r["n"], r["bads"], r["min_score"], r["max_score"]) for r in table] == [
        (4, 1, 0.1, 0.2),
        (2, 2, 0.3, 0.4),
    ]
    # Two distinct scores cannot fill ten bins.
    table = metrics.calibration_table([0.3] * 5 + [0.7] * 5, [0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    assert [(r["bin"], r["n"], r["mean_score"], r["bad_rate"]) for r in table] == [
        (1, 5, 0.3, 0.2),
        (2, 5, 0.7, 0.6),
    ]


def test_confusion_flags_scores_at_or_above_the_cutoff():
    # Flagged: 0.4 (good), 0.35 (bad), 0.8 (bad); passed: 0.1 (good).
    assert metrics.confusion(SCORES, LABELS, 0.35) == {
        "cutoff": 0.35,
        "tp": 2,
        "fp": 1,
        "tn": 1,
        "fn": 0,
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "specificity": 0.5,
        "accuracy": 0.75,
    }
    # Nobody flagged: precision has no denominator and is 0.0 by convention.
    none_flagged = metrics.confusion(SCORES, LABELS, 0.9)
    assert [none_flagged[k] for k in ("tp", "fp", "tn", "fn")] == [0, 0, 2, 2]
    assert [none_flagged[k] for k in ("precision", "recall", "specificity", "accuracy")] == [
        0.0,
        0.0,
        1.0,
        0.5,
    ]


def test_psi_is_zero_for_identical_populations():
    scores = [0.05, 0.1, 0.1, 0.2, 0.3, 0.3, 0.3, 0.5, 0.7, 0.9]
    assert metrics.psi(scores, scores) == 0.0
    assert metrics.psi(scores, scores[::-1], bins=4) == 0.0


def test_psi_table_of_a_two_bin_shift():
    # Median of the expected [1, 2, 3, 4] is 2.5: bins (-inf, 2.5] and (2.5, inf).
    # Shares 0.5/0.5 -> 0.75/0.25:
    # (0.75 - 0.5) ln(0.75/0.5) + (0.25 - 0.5) ln(0.25/0.5) = 0.101366 + 0.173287
    table = metrics.psi_table([1, 2, 3, 4], [1, 1, 1, 4], bins=2)
    assert table == [
        {"bin": 1, "lower": None, "upper": 2.5, "expected_share": 0.5, "actual_share": 0.75,
         "psi": pytest.approx(0.25 * math.log(1.5))},
        {"bin": 2, "lower": 2.5, "upper": None, "expected_share": 0.5, "actual_share": 0.25,
         "psi": pytest.approx(0.25 * math.log(2))},
    ]  # fmt: skip
    assert metrics.psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2) == pytest.approx(0.274653, abs=1e-6)


def test_psi_floors_an_empty_bin_share():
    # Actual all in bin 1; bin 2's share 0 is floored at 1e-4:
    # 0.5 ln(1/0.5) + (1e-4 - 0.5) ln(1e-4/0.5) = 0.346574 + 4.257745
    assert metrics.psi([1, 2, 3, 4], [1, 1, 1, 1], bins=2) == pytest.approx(4.604318, abs=1e-6)


def test_auc_by_group_sorts_groups_and_skips_one_class_groups():
    scores = [0.1, 0.4, 0.35, 0.8, 0.2, 0.3, 0.9, 0.6]
    labels = [0, 0, 1, 1, 0, 0, 1, 0]
    groups = [10, 10, 10, 10, 9, 9, 11, 11]  # numeric months sort 9 < 10 < 11
    assert metrics.auc_by_group(scores, labels, groups) == {
        "9": {"n": 2, "bads": 0, "auc": None},
        "10": {"n": 4, "bads": 2, "auc": pytest.approx(0.75)},
        "11": {"n": 2, "bads": 1, "auc": 1.0},
    }
    assert list(metrics.auc_by_group(scores, labels, groups)) == ["9", "10", "11"]


def test_roc_and_ks_curves_of_the_known_vector():
    fpr, tpr, thresholds = metrics.roc_curve(SCORES, LABELS)
    assert thresholds.tolist() == [math.inf, 0.8, 0.4, 0.35, 0.1]
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    thresholds, cdf_bad, cdf_good = metrics.ks_curve(SCORES, LABELS)
    assert thresholds.tolist() == [0.1, 0.35, 0.4, 0.8]
    assert cdf_bad.tolist() == [0.0, 0.5, 0.5, 1.0]
    assert cdf_good.tolist() == [0.5, 0.5, 1.0, 1.0]


def test_trapezoid_area_under_roc_curve_equals_auc_with_ties():
    rng = np.random.default_rng(7)
    scores = np.round(rng.random(400), 1)  # 11 distinct values: heavy ties
    labels = (rng.random(400) < scores).astype(int)
    fpr, tpr, _ = metrics.roc_curve(scores, labels)
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.auc(scores, labels), abs=1e-12)
    _, cdf_bad, cdf_good = metrics.ks_curve(scores, labels)
    assert np.max(np.abs(cdf_bad - cdf_good)) == metrics.ks(scores, labels)


def test_summary_is_flat_floats_for_mlflow():
    got = metrics.summary(SCORES, LABELS, cutoff=0.35)
    assert got == {
        "auc": 0.75,
        "ks": 0.5,
        "gini": 0.5,
        "brier": pytest.approx(0.158125),
        "rows": 4.0,
        "bads": 2.0,
        "bad_rate": 0.5,
        "mean_pd": pytest.approx(0.4125),  # 1.65 / 4
        "tp": 2.0,
        "fp": 1.0,
        "tn": 1.0,
        "fn": 0.0,
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
    }
    assert all(type(v) is float for v in got.values())


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_roc_plot_shows_auc_in_legend_and_saves_a_png(tmp_path):
    fig = plots.roc_plot({"tree": (SCORES, LABELS), "perfect": ([0.1, 0.9], [0, 1])})
    assert fig.axes[0].get_title() == "ROC curve"
    assert _legend(fig) == ["tree (AUC = 0.750)", "perfect (AUC = 1.000)", "random (AUC = 0.500)"]
    path = plots.save(fig, tmp_path / "reports" / "oot" / "roc.png")
    assert path == tmp_path / "reports" / "oot" / "roc.png"
    assert _png_size(path) == (660, 660)  # 6 x 6 inches at 110 dpi


def test_ks_plot_marks_the_gap_where_it_is_largest():
    fig = plots.ks_plot(SCORES, LABELS, "KS, out of time")
    ax = fig.axes[0]
    assert ax.get_title() == "KS, out of time"
    # The gap 0.5 is first reached at 0.1 (bads 0.0, goods 0.5).
    assert _legend(fig)[-1] == "KS = 0.500 at score 0.100"
    [segment] = ax.collections[0].get_segments()
    assert segment.tolist() == [[0.1, 0.0], [0.1, 0.5]]


def test_calibration_plot_draws_each_bin_against_the_diagonal():
    table = metrics.calibration_table([0.1, 0.2, 0.2, 0.2, 0.3, 0.4], [0, 0, 1, 0, 1, 1], 2)
    fig = plots.calibration_plot(table)
    diagonal, bins = fig.axes[0].get_lines()
    assert bins.get_xdata() == pytest.approx([0.175, 0.35])
    assert list(bins.get_ydata()) == [0.25, 1.0]
    assert list(diagonal.get_xdata()) == list(diagonal.get_ydata())
    assert _legend(fig) == ["perfect calibration", "score bins (low to high)"]
    # Rows of the Hosmer-Lemeshow test also draw each bin's observed-rate interval.
    tested = metrics.hosmer_lemeshow([0.1] * 10 + [0.6] * 10, [1] * 2 + [0] * 8 + [1] * 5 + [0] * 5)
    fig = plots.calibration_plot(tested["bins"])
    (bars,) = fig.axes[0].collections
    segments = [[tuple(p) for p in seg] for seg in bars.get_segments()]
    assert [r["mean_score"] for r in tested["bins"]] == pytest.approx([0.1, 0.6])
    assert segments == [
        [(pytest.approx(x), pytest.approx(r["rate_low"])), (pytest.approx(x), r["rate_high"])]
        for x, r in zip((0.1, 0.6), tested["bins"], strict=True)
    ]
    assert _legend(fig)[-1] == "95% interval of the observed rate"


def test_score_distribution_plot_puts_psi_in_title():
    fig = plots.score_distribution_plot(
        {"train": [1, 2, 3, 4], "out of time": [1, 1, 1, 4]}, psi=0.274653
    )
    assert fig.axes[0].get_title() == "Score distribution (PSI = 0.275)"
    assert _legend(fig) == ["train (n = 4)", "out of time (n = 4)"]
    assert fig.axes[0].get_xlabel() == "probability of default"


def test_importance_plot_puts_the_largest_on_top_and_keeps_top_n():
    importances = {"income": 0.2, "age": 0.05, "overdue_days": 0.5, "utilisation": 0.25}
    fig = plots.importance_plot(importances, top=3)
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks[::-1] == ["overdue_days", "utilisation", "income"]  # read top to bottom
    assert [bar.get_width() for bar in fig.axes[0].patches][::-1] == [0.5, 0.25, 0.2]
    assert _legend(fig) == ["top 3 of 4 features"]


def test_auc_by_month_plot_skips_months_without_auc():
    by_month = metrics.auc_by_group(
        [0.1, 0.4, 0.35, 0.8, 0.2, 0.3, 0.9, 0.6],
        [0, 0, 1, 1, 0, 0, 1, 0],
        ["2024-01"] * 4 + ["2024-02"] * 2 + ["2024-03"] * 2,
    )
    fig = plots.auc_by_month_plot(by_month)
    auc_axis, rate_axis = fig.axes
    [line] = auc_axis.get_lines()
    assert list(line.get_xdata()) == [0, 2]  # 2024-02 has goods only
    assert list(line.get_ydata()) == [0.75, 1.0]
    assert [t.get_text() for t in auc_axis.get_xticklabels()] == ["2024-01", "2024-02", "2024-03"]
    assert [bar.get_height() for bar in rate_axis.patches] == [0.5, 0.0, 0.5]
    assert _legend(fig) == ["AUC (left axis)", "bad rate (right axis)"]


def test_names_with_a_dollar_sign_are_drawn_as_given(tmp_path):
    """A user's file may name a column or a group with "$": TeX math to matplotlib, which
    failed to draw an unknown command or a fraction without arguments (a traceback from
    `riskctl evaluate-dataset` instead of its report)."""
    names = {"fee_$\\frac$": 0.5, "price $ usd": 0.2, "$x^2$": 0.1}
    fig = plots.importance_plot(names, title="importance of $\\bad")
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks[::-1] == list(names)
    assert plots.save(fig, tmp_path / "importance.png").stat().st_size > 0
    by_group = metrics.auc_by_group(
        [0.1, 0.9, 0.2, 0.8], [0, 1, 0, 1], ["$\\frac$", "$\\frac$", "a$", "a$"]
    )
    fig = plots.auc_by_month_plot(by_group)
    assert plots.save(fig, tmp_path / "groups.png").stat().st_size > 0
    roc = plots.roc_plot({"$\\frac$": ([0.1, 0.9], [0, 1])}, title="$\\frac$")
    assert plots.save(roc, tmp_path / "roc.png").stat().st_size > 0


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


def test_delong_on_a_hand_computed_pair_of_models():
    # Bads score .9 .6 .4 under A and .8 .7 .5 under B; goods .7 .3 .3 .2 .1 and
    # .6 .4 .2 .2 .1. Each bad's share of goods below it: A 1, .8, .8 (AUC 13/15); B 1, 1,
    # .8 (AUC 14/15). Each good's share of bads above it: A 1/3, 1, 1, 1, 1; B 2/3, 1, 1,
    # 1, 1. The paired differences' variances: bads [0, .2, 0] -> 1/75, over 3 bads ->
    # 1/225; goods [1/3, 0, 0, 0, 0] -> 1/45, over 5 goods -> 1/225. se = sqrt(2)/15.
    labels = [1, 1, 1, 0, 0, 0, 0, 0]
    a = [0.9, 0.6, 0.4, 0.7, 0.3, 0.3, 0.2, 0.1]
    b = [0.8, 0.7, 0.5, 0.6, 0.4, 0.2, 0.2, 0.1]
    got = metrics.delong(a, b, labels)
    assert got["auc_a"] == pytest.approx(13 / 15) and got["auc_b"] == pytest.approx(14 / 15)
    assert got["diff"] == pytest.approx(1 / 15)
    assert got["se"] == pytest.approx(math.sqrt(2) / 15)
    assert got["z"] == pytest.approx(1 / math.sqrt(2))
    assert got["p_value"] == pytest.approx(0.2397500611)
    # Swapping the models flips the sign; a model against itself is no evidence at all.
    assert metrics.delong(b, a, labels)["p_value"] == pytest.approx(1 - 0.2397500611)
    same = metrics.delong(a, a, labels)
    assert (same["diff"], same["se"], same["z"], same["p_value"]) == (0.0, 0.0, 0.0, 0.5)


def test_delong_separates_a_real_gain_from_noise():
    rng = np.random.default_rng(1)
    labels = (rng.uniform(size=2000) < 0.2).astype(int)
    base = rng.normal(size=2000) + 0.8 * labels
    better = base + rng.normal(size=2000) * 0.5 + 0.5 * labels
    noisy = base + rng.normal(size=2000) * 0.05
    assert metrics.delong(base, better, labels)["p_value"] < 1e-6
    assert metrics.delong(base, noisy, labels)["p_value"] > 0.05
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.delong(base, better[:-1], labels)


def test_platt_recovers_a_rescaling_that_fits_the_observed_rates_exactly():
    # Scores at logit -2, 0, 2 observed at bad rates 1/10, 1/4, 1/2, i.e. log-odds
    # ln(1/9), ln(1/3), 0: a straight line in the logit, slope ln(3)/2, intercept -ln(3).
    # The likelihood is then maximised by that line exactly.
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    scores = [sig(-2)] * 20 + [sig(0)] * 20 + [sig(2)] * 20
    labels = [1] * 2 + [0] * 18 + [1] * 5 + [0] * 15 + [1] * 10 + [0] * 10
    a, b = metrics.platt(scores, labels)
    assert a == pytest.approx(math.log(3) / 2, abs=1e-9)
    assert b == pytest.approx(-math.log(3), abs=1e-9)
    with pytest.raises(ValueError, match="needs both goods and bads"):
        metrics.platt([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="scores that vary"):
        metrics.platt([0.3, 0.3], [0, 1])
    with pytest.raises(ValueError, match="separate goods from bads perfectly"):
        metrics.platt([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])


def test_hosmer_lemeshow_on_hand_computed_bins_and_a_shifted_model():
    scores = [0.1] * 10 + [0.3] * 10 + [0.6] * 10
    labels = [1] * 2 + [0] * 8 + [1] * 3 + [0] * 7 + [1] * 5 + [0] * 5
    # Expected bads 1, 3, 6 against 2, 3, 5: (2-1)^2/(1*0.9) + 0 + (5-6)^2/(6*0.4).
    got = metrics.hosmer_lemeshow(scores, labels, bins=3)
    assert got["statistic"] == pytest.approx(1 / 0.9 + 1 / 2.4)
    assert got["dof"] == 3  # new rows: one degree of freedom per bin
    assert got["p_value"] == pytest.approx(0.6758742321)
    assert metrics.hosmer_lemeshow(scores, labels, bins=3, fitted=True)["dof"] == 1
    first = got["bins"][0]
    assert (first["n"], first["bads"], first["expected"]) == (10, 2, 1.0)
    # Jeffreys interval of 2 bads in 10: Beta(2.5, 8.5) quantiles.
    assert (first["rate_low"], first["rate_high"]) == pytest.approx((0.0440594136, 0.5027744964))
    assert [b["inside"] for b in got["bins"]] == [True, True, True]
    # The same outcomes under PDs twice as high (0.9 at most): the test rejects them.
    shifted = metrics.hosmer_lemeshow([min(0.9, 2 * s) for s in scores], labels, bins=3)
    assert shifted["statistic"] == pytest.approx(0 + 9 / 2.4 + 16 / 0.9)
    assert shifted["p_value"] < 0.001
    # 3 bads in 10 leave room up to 0.61 (PD 0.6 inside); 5 in 10 only up to 0.79.
    assert [b["inside"] for b in shifted["bins"]] == [True, True, False]
    # A PD of exactly 1 in a bin with goods can never be calibrated.
    assert (
        metrics.hosmer_lemeshow([min(1, 2 * s) for s in scores], labels, bins=3)["p_value"] == 0.0
    )
    with pytest.raises(ValueError, match="probabilities in"):
        metrics.hosmer_lemeshow([s * 2 for s in scores], labels, bins=3)
    with pytest.raises(ValueError, match="no degree of freedom"):
        metrics.hosmer_lemeshow([0.2] * 30, labels, fitted=True)
