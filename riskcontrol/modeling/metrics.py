"""Credit-model metrics computed from probabilities, the way credit teams read them.

Every function takes ``scores`` (predicted probability of default, higher = riskier) and
``labels`` (1 = bad, 0 = good) as plain arrays, so the same numbers come out of a training
run, a notebook and a monitoring job. AUC and KS come from the positive-class probability,
never from Spark's ``rawPrediction`` (for decision trees that column holds leaf counts).

* discrimination: ``auc``, ``ks``, ``gini``, their curves ``roc_curve`` and ``ks_curve``,
  and ``auc_by_group`` (e.g. per application month, to see the model decay out of time);
* calibration: ``brier``, ``calibration_table`` (predicted vs observed bad rate) and
  ``hosmer_lemeshow`` (a test of it, with each bin's observed-rate interval);
* comparing two models on the same rows: ``delong`` (are their AUCs really different?);
* the decision at a cutoff: ``confusion``;
* stability between training and scoring populations: ``psi`` and ``psi_table``;
* ``summary``: flat scalar metrics, ready for ``mlflow.log_metrics``.
"""

from __future__ import annotations

import math

import numpy as np

PSI_SHARE_FLOOR = 1e-4


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=int)
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in shape")
    n_bad = int(labels.sum())
    if n_bad == 0 or n_bad == len(labels):
        raise ValueError("AUC/KS need both goods (0) and bads (1) among the labels")
    return scores, labels


def _pair(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels as 1-d arrays: same length, non-empty, no NaN, labels in {0, 1}."""
    scores = _values(scores, "scores")
    raw = np.asarray(labels)
    if raw.shape != scores.shape:
        raise ValueError(f"scores {scores.shape} and labels {raw.shape} differ in shape")
    labels = raw.astype(int)
    if not np.array_equal(labels, raw) or not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (good) or 1 (bad); map the target column first")
    return scores, labels


def _values(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty 1-d array, got shape {values.shape}")
    if np.isnan(values).any():
        raise ValueError(f"{name} contain NaN; drop or impute those rows before evaluating")
    return values


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
    _, cdf_bad, cdf_good = ks_curve(scores, labels)
    return float(np.max(np.abs(cdf_bad - cdf_good)))


def gini(scores, labels) -> float:
    return 2.0 * auc(scores, labels) - 1.0


def ks_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(thresholds, cdf_bad, cdf_good)``: at each distinct score ``t`` (ascending), the
    share of bads and of goods scoring ``<= t``; ``ks`` is the largest gap between them."""
    scores, labels = _check(scores, labels)
    thresholds = np.unique(scores)
    bad = np.sort(scores[labels == 1])
    good = np.sort(scores[labels == 0])
    cdf_bad = np.searchsorted(bad, thresholds, side="right") / len(bad)
    cdf_good = np.searchsorted(good, thresholds, side="right") / len(good)
    return thresholds, cdf_bad, cdf_good


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` for "bad when score >= threshold", thresholds descending
    from ``+inf`` (nobody flagged) to the lowest score (everybody flagged).

    Tied scores move together, so the trapezoid area under the curve equals ``auc``.
    """
    scores, labels = _check(scores, labels)
    thresholds = np.unique(scores)[::-1]
    bad = np.sort(scores[labels == 1])
    good = np.sort(scores[labels == 0])
    tpr = (len(bad) - np.searchsorted(bad, thresholds, side="left")) / len(bad)
    fpr = (len(good) - np.searchsorted(good, thresholds, side="left")) / len(good)
    return (
        np.concatenate(([0.0], fpr)),
        np.concatenate(([0.0], tpr)),
        np.concatenate(([np.inf], thresholds)),
    )


def brier(scores, labels) -> float:
    """Brier score: mean squared difference between predicted PD and the 0/1 outcome."""
    scores, labels = _pair(scores, labels)
    if scores.min() < 0 or scores.max() > 1:
        raise ValueError("Brier needs probabilities in [0, 1]; pass the PD, not a 300-900 score")
    return float(np.mean((scores - labels) ** 2))


def calibration_table(scores, labels, bins: int = 10) -> list[dict]:
    """Predicted vs observed bad rate in equal-count score bins, low to high risk.

    Tied scores always share a bin: each distinct score goes to the quantile bin holding
    the middle of its tie group, and empty bins are dropped, so there are fewer than
    ``bins`` rows when there are few distinct scores. Rows: ``bin`` (1..k), ``n``,
    ``bads``, ``min_score``, ``max_score``, ``mean_score`` (mean predicted PD) and
    ``bad_rate`` (observed).
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    scores, labels = _pair(scores, labels)
    values, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    n = len(scores)
    # Twice the position of each tie group's middle, so the arithmetic stays in integers.
    middle2 = 2 * np.cumsum(counts) - counts
    quantile_bin = -(-bins * middle2 // (2 * n))  # ceil(bins * middle / n), in 1..bins
    _, row_of_value = np.unique(quantile_bin, return_inverse=True)
    row = row_of_value[inverse]
    rows = []
    for i in range(int(row.max()) + 1):
        s, y = scores[row == i], labels[row == i]
        rows.append(
            {
                "bin": i + 1,
                "n": int(len(s)),
                "bads": int(y.sum()),
                "min_score": float(s.min()),
                "max_score": float(s.max()),
                "mean_score": float(s.mean()),
                "bad_rate": float(y.mean()),
            }
        )
    return rows


def confusion(scores, labels, cutoff: float) -> dict:
    """Counts and rates when applicants scoring ``>= cutoff`` are predicted bad.

    A rate whose denominator is zero is 0.0 rather than undefined: ``precision`` with no
    predicted bads, ``recall`` with no bads, ``specificity`` with no goods.
    """
    scores, labels = _pair(scores, labels)
    flagged = scores >= cutoff
    bad = labels == 1
    tp = int(np.sum(flagged & bad))
    fp = int(np.sum(flagged & ~bad))
    tn = int(np.sum(~flagged & ~bad))
    fn = int(np.sum(~flagged & bad))
    return {
        "cutoff": float(cutoff),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "accuracy": _ratio(tp + tn, len(labels)),
    }


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def psi_table(expected, actual, bins: int = 10) -> list[dict]:
    """Population Stability Index, bin by bin, of ``actual`` against ``expected``.

    Bin edges are the distinct inner quantiles of ``expected`` (the training scores); a bin
    holds ``lower < score <= upper`` and the first and last bins are open-ended (``lower``
    / ``upper`` None). Shares are the observed ones; inside each bin's
    ``(actual - expected) * ln(actual / expected)`` a share is floored at 1e-4 so an empty
    bin costs a large but finite amount.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    expected = _values(expected, "expected")
    actual = _values(actual, "actual")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    expected_share = _shares(expected, edges)
    actual_share = _shares(actual, edges)
    e = np.maximum(expected_share, PSI_SHARE_FLOOR)
    a = np.maximum(actual_share, PSI_SHARE_FLOOR)
    terms = (a - e) * np.log(a / e)
    bounds = [None, *(float(x) for x in edges), None]
    return [
        {
            "bin": i + 1,
            "lower": bounds[i],
            "upper": bounds[i + 1],
            "expected_share": float(expected_share[i]),
            "actual_share": float(actual_share[i]),
            "psi": float(terms[i]),
        }
        for i in range(len(edges) + 1)
    ]


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / len(values)


def psi(expected, actual, bins: int = 10) -> float:
    """Population Stability Index (sum of ``psi_table``); < 0.1 stable, > 0.25 shifted."""
    return float(sum(row["psi"] for row in psi_table(expected, actual, bins)))


def auc_by_group(scores, labels, groups) -> dict[str, dict]:
    """``{group: {"n", "bads", "auc"}}`` in sorted group order (e.g. application month);
    ``auc`` is None for a group with only goods or only bads."""
    scores, labels = _pair(scores, labels)
    groups = np.asarray(groups)
    if groups.shape != scores.shape:
        raise ValueError(f"groups {groups.shape} and scores {scores.shape} differ in shape")
    out = {}
    for group in np.unique(groups):
        member = groups == group
        s, y = scores[member], labels[member]
        bads = int(y.sum())
        out[str(group)] = {
            "n": int(len(y)),
            "bads": bads,
            "auc": auc(s, y) if 0 < bads < len(y) else None,
        }
    return out


def summary(scores, labels, cutoff: float) -> dict[str, float]:
    """Flat scalar metrics for ``mlflow.log_metrics``: discrimination, calibration, the
    portfolio, and the confusion counts and rates at ``cutoff``."""
    scores, labels = _pair(scores, labels)
    at_cutoff = confusion(scores, labels, cutoff)
    return {
        "auc": auc(scores, labels),
        "ks": ks(scores, labels),
        "gini": gini(scores, labels),
        "brier": brier(scores, labels),
        "rows": float(len(labels)),
        "bads": float(labels.sum()),
        "bad_rate": float(labels.mean()),
        "mean_pd": float(scores.mean()),
        **{k: float(at_cutoff[k]) for k in ("tp", "fp", "tn", "fn", "precision", "recall")},
    }


def delong(scores_a, scores_b, labels) -> dict[str, float]:
    """DeLong's test of two correlated AUCs: model A and model B scored on the same rows.

    Each AUC is a Mann-Whitney statistic; its structural components (each bad's share of
    goods scored below it, each good's share of bads scored above it) give the covariance
    of the two AUCs (DeLong, DeLong and Clarke-Pearson 1988; ranks as in Sun and Xu 2014).
    Returns ``auc_a``, ``auc_b``, ``diff`` (B - A), its standard error ``se``, ``z`` and
    the one-sided ``p_value`` of "B ranks better than A" (small: B is better beyond noise).
    A zero standard error (identical rankings) gives z 0 and p 0.5 when the AUCs are
    equal."""
    from scipy.stats import norm, rankdata

    a, labels = _check(_values(scores_a, "scores_a"), labels)
    b = _values(scores_b, "scores_b")
    if b.shape != a.shape:
        raise ValueError(f"scores_a {a.shape} and scores_b {b.shape} differ in shape")
    bad, good = labels == 1, labels == 0
    m, n = int(bad.sum()), int(good.sum())
    aucs, v_bad, v_good = [], [], []
    for s in (a, b):
        all_ranks = rankdata(s)  # ties take their mean rank
        bad_ranks, good_ranks = rankdata(s[bad]), rankdata(s[good])
        aucs.append((all_ranks[bad].sum() - m * (m + 1) / 2) / (m * n))
        v_bad.append((all_ranks[bad] - bad_ranks) / n)  # goods below each bad
        v_good.append(1.0 - (all_ranks[good] - good_ranks) / m)  # bads above each good
    s_bad = np.cov(np.vstack(v_bad)) if m > 1 else np.zeros((2, 2))
    s_good = np.cov(np.vstack(v_good)) if n > 1 else np.zeros((2, 2))
    cov = s_bad / m + s_good / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[1] - aucs[0])
    se = math.sqrt(max(var, 0.0))
    z = diff / se if se > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    return {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "diff": diff,
        "se": se,
        "z": float(z),
        "p_value": float(norm.sf(z)),
    }


def platt(scores, labels, clip: float = 1e-6, iterations: int = 50) -> tuple[float, float]:
    """Platt scaling: (a, b) maximising the likelihood of ``labels`` under
    ``1 / (1 + exp(-(a * logit(score) + b)))``, scores clipped to [clip, 1 - clip].

    Newton's method on the two-parameter logistic regression; at the optimum the
    recalibrated PDs add up to the bads, and their logit-weighted sum matches too. An
    error when the scores cannot be rescaled (one class, or every score the same).
    """
    s, y = _pair(scores, labels)
    if y.min() == y.max():
        raise ValueError("Platt scaling needs both goods and bads")
    q = np.clip(s, clip, 1 - clip)
    x = np.log(q / (1 - q))
    if x.min() == x.max():
        raise ValueError("Platt scaling needs scores that vary")
    design = np.column_stack([x, np.ones_like(x)])
    rate = y.mean()
    a, b = 1.0, math.log(rate / (1 - rate)) - float(np.mean(x))  # a start near the optimum
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a * x + b)))
        gradient = design.T @ (y - p)
        hessian = (design * (p * (1 - p))[:, None]).T @ design
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            break
        a, b = a + float(step[0]), b + float(step[1])
        if np.max(np.abs(step)) < 1e-10:
            return a, b
    raise ValueError(
        "Platt scaling did not converge: the scores separate goods from bads perfectly on "
        "these rows (or nearly), so no finite rescaling is best"
    )


def hosmer_lemeshow(scores, labels, bins: int = 10, fitted: bool = False, level: float = 0.95):
    """Hosmer-Lemeshow test of calibration, with each bin's observed bad-rate interval.

    The bins are ``calibration_table``'s (equal-count, ties together). The statistic is
    sum over bins of (bads - expected)^2 / (expected * (1 - expected / n)), expected being
    the sum of the predicted PDs; it is chi-squared with ``k - 2`` degrees of freedom on
    the rows the model was fitted on (``fitted=True``) and ``k`` on new rows (validation,
    out of time), k being the number of bins. Each bin also gets the Jeffreys interval of
    its observed bad rate at ``level`` and ``inside`` (is the mean PD in it?).

    Returns ``statistic``, ``dof``, ``p_value`` and ``bins`` (the table rows). A small
    p-value says the PDs do not match the observed bad rates: a shifted model fails it."""
    from scipy.stats import beta, chi2

    table = calibration_table(scores, labels, bins)
    if table[0]["min_score"] < 0 or table[-1]["max_score"] > 1:
        raise ValueError("Hosmer-Lemeshow needs probabilities in [0, 1]; pass the PD")
    statistic = 0.0
    tail = (1 - level) / 2
    for row in table:
        n, bads = row["n"], row["bads"]
        expected = row["mean_score"] * n
        spread = expected * (1 - expected / n)
        if spread > 0:
            statistic += (bads - expected) ** 2 / spread
        elif bads != expected:  # every PD 0 (or 1) and yet a bad (a good): never calibrated
            statistic = math.inf
        low = 0.0 if bads == 0 else float(beta.ppf(tail, bads + 0.5, n - bads + 0.5))
        high = 1.0 if bads == n else float(beta.ppf(1 - tail, bads + 0.5, n - bads + 0.5))
        row.update(
            expected=expected,
            rate_low=low,
            rate_high=high,
            inside=bool(low <= row["mean_score"] <= high),
        )
    dof = len(table) - (2 if fitted else 0)
    if dof < 1:
        raise ValueError(
            f"{len(table)} bin(s) of distinct scores leave no degree of freedom: "
            "Hosmer-Lemeshow needs more distinct PDs"
        )
    return {
        "statistic": float(statistic),
        "dof": dof,
        "p_value": float(chi2.sf(statistic, dof)),
        "bins": table,
    }
