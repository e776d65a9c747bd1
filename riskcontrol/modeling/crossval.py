"""Repeated stratified k-fold cross-validation: model comparisons that hold on small files.

On a few thousand loans one 60/20/20 split leaves a test set so small that the AUC moves
by a few hundredths from one seed to the next; which kind "won" is then noise. Below a
size threshold ``riskctl evaluate-dataset`` therefore also scores every model kind on
``repeats`` different stratified partitions into ``folds`` folds and reports each kind's
mean and standard deviation, and whether its gap to the best kind is within noise.

Each fold in turn is the test set, the next fold the validation set (the network's early
stopping reads it), and the other ``folds - 2`` folds the training set, so a fold's model
sees the same shares (60/20/20 with 5 folds) as the single split. Folds are dealt out
within each class by a seeded hash of the row, so every fold holds the same share of bads
(to one row) and the same seed gives the same folds.

"Within noise" is the corrected resampled t-test of Nadeau and Bengio (2003), the usual
test for repeated cross-validation: the folds' training sets overlap, so the variance of
the paired AUC differences is inflated by ``test/train`` before the t statistic is taken;
two kinds whose difference has p >= 0.05 are not told apart.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from riskcontrol.modeling import metrics, models
from riskcontrol.modeling.models import LABEL, FeatureSpec, Split

FOLD = "__fold"
NOISE_P = 0.05


@dataclass(frozen=True)
class FoldScore:
    """One kind's result on one test fold."""

    repeat: int
    fold: int
    auc: float
    ks: float
    brier: float
    seconds: float


@dataclass
class KindResult:
    kind: str
    scores: list[FoldScore] = field(default_factory=list)

    def stat(self, name: str) -> tuple[float, float]:
        """Mean and sample standard deviation of ``name`` over the folds."""
        values = np.array([getattr(s, name) for s in self.scores], dtype=float)
        sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        return float(values.mean()), sd

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name in ("auc", "ks", "brier"):
            mean, sd = self.stat(name)
            out[f"cv_{name}_mean"], out[f"cv_{name}_sd"] = mean, sd
        out["cv_fit_seconds_mean"] = self.stat("seconds")[0]
        return out


def with_folds(df: DataFrame, folds: int, seed: int, repeat: int) -> DataFrame:
    """``df`` with ``__fold`` in 0..folds-1: within each class, rows ordered by a hash of
    (seed, repeat, the row) and dealt out in turn, so fold sizes per class differ by at
    most one."""
    order = F.xxhash64(F.lit(seed), F.lit(repeat), *[F.col(c) for c in df.columns])
    by_class = Window.partitionBy(LABEL).orderBy(order)
    return df.withColumn(FOLD, (F.row_number().over(by_class) - 1) % folds)


def fold_split(folded: DataFrame, folds: int, test: int) -> Split:
    """Fold ``test`` for testing, the next one for validation, the rest for training."""
    valid = (test + 1) % folds
    parts = [
        folded.where(cond).drop(FOLD)
        for cond in (
            ~F.col(FOLD).isin(test, valid),
            F.col(FOLD) == valid,
            F.col(FOLD) == test,
        )
    ]
    return Split(*parts, method="cv", windows={"test_fold": str(test), "valid_fold": str(valid)})


def corrected_t_test(diffs: Sequence[float], test_over_train: float) -> tuple[float, float, float]:
    """Nadeau-Bengio corrected resampled t-test of paired differences.

    Returns (mean difference, its corrected standard error, two-sided p-value)."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    n = len(d)
    mean = float(d.mean())
    var = float(d.var(ddof=1)) if n > 1 else 0.0
    se = math.sqrt((1.0 / n + test_over_train) * var)
    if se == 0.0:
        return mean, 0.0, 1.0 if mean == 0.0 else 0.0
    t = mean / se
    return mean, se, float(2 * stats.t.sf(abs(t), df=n - 1))


def compare(results: dict[str, KindResult], folds: int) -> dict[str, Any]:
    """The best kind by mean AUC, and each other kind's paired gap to it."""
    best = max(results, key=lambda k: results[k].stat("auc")[0])
    ratio = 1.0 / (folds - 2)  # one test fold against folds - 2 training folds
    by_fold = {k: {(s.repeat, s.fold): s.auc for s in r.scores} for k, r in results.items()}
    gaps = {}
    for kind in results:
        if kind == best:
            continue
        keys = sorted(by_fold[best].keys() & by_fold[kind].keys())
        diff, se, p = corrected_t_test(
            [by_fold[best][key] - by_fold[kind][key] for key in keys], ratio
        )
        gaps[kind] = {
            "auc_gap": round(diff, 6),
            "gap_se": round(se, 6),
            "p_value": round(p, 4),
            "within_noise": p >= NOISE_P,
        }
    return {"best": best, "vs_best": gaps}


def cross_validate(
    data: DataFrame,
    spec: FeatureSpec,
    kinds: Sequence[str],
    params: dict[str, dict],
    *,
    folds: int,
    repeats: int,
    seed: int,
    class_weight: str,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, KindResult]:
    """Fit and score every kind on every (repeat, fold); ``params`` per kind."""
    if folds < 3:
        raise ValueError(
            f"cross-validation needs at least 3 folds (test, validation, train); got {folds}"
        )
    if repeats < 1:
        raise ValueError(f"cross-validation needs at least one repeat; got {repeats}")
    results = {kind: KindResult(kind) for kind in kinds}
    rows = data.select(*spec.columns, LABEL)
    for repeat in range(repeats):
        # Checkpointed: a recomputed window could deal tied (identical) rows differently.
        folded = with_folds(rows, folds, seed, repeat).localCheckpoint(eager=True)
        for fold in range(folds):
            split = fold_split(folded, folds, fold).cache()
            split.check_classes()
            weight = models.balanced_weight(split.train, class_weight)
            for kind in kinds:
                started = time.perf_counter()
                model, _ = models.fit(kind, split, spec, dict(params[kind]), seed, weight)
                seconds = time.perf_counter() - started
                frame = models.predictions(model, split.oot, spec)
                pd_, label = frame["pd"].to_numpy(), frame[LABEL].to_numpy()
                score = FoldScore(
                    repeat,
                    fold,
                    metrics.auc(pd_, label),
                    metrics.ks(pd_, label),
                    metrics.brier(pd_, label),
                    seconds,
                )
                results[kind].scores.append(score)
                progress(
                    f"  cross-validation {repeat + 1}/{repeats} fold {fold + 1}/{folds}: "
                    f"{kind} AUC {score.auc:.4f} ({seconds:.1f}s)"
                )
            split.unpersist()
        folded.unpersist()
    return results
