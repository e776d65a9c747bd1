"""Repeated stratified k-fold cross-validation: exact folds, the corrected t-test on
hand-computed values, and the noise verdict."""

from __future__ import annotations

import math

import pytest
from pyspark.sql import functions as F

from riskcontrol.modeling import crossval
from riskcontrol.modeling.crossval import FOLD, FoldScore, KindResult

# Paired AUC gaps of the best kind over another on 6 folds, 5-fold CV (test/train = 1/3).
# mean 0.015; sample variance 0.00011; corrected se = sqrt((1/6 + 1/3) * 0.00011)
# = sqrt(0.000055) = 0.0074162; t = 2.0226 on 5 degrees of freedom: p = 0.0990.
NOISY = [0.02, 0.01, 0.03, 0.00, 0.02, 0.01]
# mean 0.051667, variance 0.0000566667, se 0.0053229, t = 9.7065: p = 0.000197.
CLEAR = [0.05, 0.06, 0.04, 0.05, 0.06, 0.05]


def test_corrected_t_test_on_hand_computed_values():
    mean, se, p = crossval.corrected_t_test(NOISY, 1 / 3)
    assert mean == pytest.approx(0.015)
    assert se == pytest.approx(math.sqrt(0.000055))
    assert p == pytest.approx(0.09904, abs=1e-5)
    mean, se, p = crossval.corrected_t_test(CLEAR, 1 / 3)
    assert mean == pytest.approx(0.0516667, abs=1e-7)
    assert se == pytest.approx(0.0053229, abs=1e-7)
    assert p == pytest.approx(0.000197, abs=1e-6)
    # No spread: no gap is no difference, a constant gap is a certain one.
    assert crossval.corrected_t_test([0.0, 0.0, 0.0], 1 / 3) == (0.0, 0.0, 1.0)
    assert crossval.corrected_t_test([0.01, 0.01, 0.01], 1 / 3)[2] == 0.0


def _result(kind: str, aucs: list[float]) -> KindResult:
    r = KindResult(kind)
    r.scores = [FoldScore(i // 3, i % 3, a, 0.3, 0.1, 1.0) for i, a in enumerate(aucs)]
    return r


def test_compare_names_the_best_and_which_gaps_are_within_noise():
    best = [0.75, 0.74, 0.76, 0.73, 0.75, 0.74]

    def behind(gaps: list[float]) -> list[float]:
        return [b - d for b, d in zip(best, gaps, strict=True)]

    results = {
        "gbt": _result("gbt", best),
        "logistic": _result("logistic", behind(NOISY)),
        "decision_tree": _result("decision_tree", behind(CLEAR)),
    }
    out = crossval.compare(results, folds=5)
    assert out["best"] == "gbt"
    assert out["vs_best"] == {
        "logistic": {"auc_gap": 0.015, "gap_se": 0.007416, "p_value": 0.099, "within_noise": True},
        "decision_tree": {
            "auc_gap": 0.051667,
            "gap_se": 0.005323,
            "p_value": 0.0002,
            "within_noise": False,
        },
    }
    mean, sd = results["gbt"].stat("auc")
    assert mean == pytest.approx(0.745)
    assert sd == pytest.approx(math.sqrt(0.00011))  # the same spread as NOISY around its mean
    summary = results["gbt"].summary()
    assert summary["cv_auc_mean"] == pytest.approx(0.745) and summary["cv_ks_sd"] == 0.0


def test_folds_are_stratified_disjoint_and_reproducible(spark):
    # 103 goods and 17 bads, two of them exact duplicates.
    rows = [(float(i), 0) for i in range(103)] + [(float(i), 1) for i in range(15)]
    rows += [(500.0, 1), (500.0, 1)]
    df = spark.createDataFrame(rows, "x double, label int")
    folded = crossval.with_folds(df, 5, seed=7, repeat=0).localCheckpoint(eager=True)
    counts = {
        (r["label"], r[FOLD]): r["n"]
        for r in folded.groupBy("label", FOLD).agg(F.count("*").alias("n")).collect()
    }
    assert sorted(counts[(0, f)] for f in range(5)) == [20, 20, 21, 21, 21]
    assert sorted(counts[(1, f)] for f in range(5)) == [3, 3, 3, 4, 4]

    def assignment(repeat: int) -> list[tuple]:
        out = crossval.with_folds(df, 5, seed=7, repeat=repeat)
        return sorted((r.x, r.label, r[FOLD]) for r in out.collect())

    assert assignment(0) == assignment(0)
    assert assignment(0) != assignment(1)  # another repeat deals the rows out anew
    for test in range(5):
        split = crossval.fold_split(folded, 5, test)
        sizes = [split.train.count(), split.valid.count(), split.oot.count()]
        assert sum(sizes) == 120
        assert split.windows == {"test_fold": str(test), "valid_fold": str((test + 1) % 5)}
        assert FOLD not in split.oot.columns
    with pytest.raises(ValueError, match="at least 3 folds"):
        crossval.cross_validate(df, None, [], {}, folds=2, repeats=1, seed=1, class_weight="none")
