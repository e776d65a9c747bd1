"""Discrimination metrics computed from probabilities, the way credit teams read them.

AUC and KS come from the positive-class probability, never from Spark's
``rawPrediction`` (for decision trees that column holds leaf counts).
"""

from __future__ import annotations

import numpy as np


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=int)
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in shape")
    n_bad = int(labels.sum())
    if n_bad == 0 or n_bad == len(labels):
        raise ValueError("AUC/KS need both goods (0) and bads (1) among the labels")
    return scores, labels


def auc(scores, labels) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted as one half)."""
    scores, labels = _check(scores, labels)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=float)
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    n_pos = labels.sum()
    n_neg = len(labels) - n_pos
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ks(scores, labels) -> float:
    """Kolmogorov-Smirnov: the largest gap between the bads' and goods' score CDFs."""
    scores, labels = _check(scores, labels)
    thresholds = np.unique(scores)
    bad = np.sort(scores[labels == 1])
    good = np.sort(scores[labels == 0])
    cdf_bad = np.searchsorted(bad, thresholds, side="right") / len(bad)
    cdf_good = np.searchsorted(good, thresholds, side="right") / len(good)
    return float(np.max(np.abs(cdf_bad - cdf_good)))


def gini(scores, labels) -> float:
    return 2.0 * auc(scores, labels) - 1.0
