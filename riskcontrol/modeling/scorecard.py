"""The scorecard baseline: WOE binning + logistic regression, scaled to 300-900 points.

Risk teams compare every model against a scorecard because a scorecard can be read,
audited and run anywhere: each feature is cut into a few bins, each bin carries points,
and a row's score is the sum of its bins' points. This module builds one in Spark, where
only aggregates (quantiles, per-bin counts) ever reach the driver:

1. ``fit_bins``: numeric features are pre-binned at approximate quantiles; adjacent bins
   are then merged until every bin holds ``min_bin_share`` of the rows, the bad rate is
   strictly monotonic and there are at most ``max_bins`` bins. A categorical's levels are
   grouped on their bad rate the same way: each level seen in at least
   ``MIN_LEVEL_ROWS`` rows and ``MIN_LEVEL_SHARE`` of the feature's rows (the
   ``MAX_LEVELS`` most frequent such levels) reaches the driver on its own, the rest are
   pooled into ``other`` in Spark; the levels and ``other`` are sorted by their bad rate
   shrunk toward the feature's (``PRIOR_ROWS``), and adjacent ones merged as above, so a
   feature with hundreds of small levels keeps its signal. Nulls get their own
   ``missing`` bin. Each bin gets a weight of evidence (WOE), each feature an
   information value (IV).
2. ``fit_scorecard``: logistic regression on the WOE of the features with enough IV,
   dropping features whose coefficient has the wrong sign, with the intercept corrected
   for the weight given to bads; the log-odds are scaled to points.
3. ``Scorecard.model``: a ``PipelineModel`` of ``SQLTransformer`` stages only (WOE,
   ``pd``, ``score``, ``reason_codes``), so MLlib and MLflow persist it with no custom
   class; ``Scorecard.sql_expression()`` is the same score as one SQL expression.

Conventions:

* WOE = ln(good share / bad share) with counts smoothed by +0.5:
  ``ln(((goods_i + 0.5) / goods) / ((bads_i + 0.5) / bads))``. **Higher WOE = safer.**
  IV = sum over bins of ``(good share - bad share) * WOE`` with the same shares.
* Label 1 = bad. The regression predicts the log-odds of bad, so a feature's coefficient
  on its WOE must be negative; a feature with a coefficient >= 0 is dropped.
* Shares (``min_bin_share``, ``MIN_LEVEL_SHARE``) are of the feature's total (weighted)
  rows, nulls included; ``MIN_LEVEL_ROWS`` counts rows, unweighted. The missing bin is
  never merged and is not counted in ``max_bins``. When training has no nulls (or, for a
  categorical, no pooled levels), the ``missing`` (``other``) bin is kept with no rows
  and the neutral WOE 0, so unseen values score neutral.
* A categorical bin is ``col IN (its levels)``; the bin holding the pooled levels is
  ``col NOT IN (the levels of the other bins)``, so it also takes unseen levels. Levels
  are compared as strings (``CAST(col AS STRING)`` for other types) and written as SQL
  string literals, so any level name (quotes, backslashes, unicode) is exact; only a
  level containing ``__THIS__`` (which ``SQLTransformer`` would rewrite) is always pooled.
* Points: score = base + factor * (ln(odds of good) - ln(base_odds)), factor =
  pdo / ln 2, ln(odds of good) = -(intercept + sum coef_i * woe_i). Each feature's bin
  gets ``-factor * coef * woe`` plus an equal share of the constant
  ``base - factor * (ln(base_odds) + intercept)``, so a row's points sum to its
  continuous score; ``score`` is that sum rounded and clipped to 300-900.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from itertools import pairwise
from typing import NamedTuple

import pandas
from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.ml.classification import LogisticRegression, LogisticRegressionModel
from pyspark.ml.feature import SQLTransformer, VectorAssembler
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.modeling.scale import ScoreScale

WOE_SUFFIX = "__woe"
SMOOTHING = 0.5
QUANTILE_ERROR = 0.001
MAX_REASON_CODES = 3
# A feature's best attribute, the one its reason-code shortfall is measured from, is taken
# over bins holding at least this share of the training rows (the merge rule's minimum):
# a tiny missing bin, or a bin no training row fell in (WOE 0), is no applicant's
# standard to fall short of.
MIN_REASON_BIN_SHARE = 0.05
# Tight enough that a saturated model reproduces the bins' bad rates to ~1e-9.
LR_TOL = 1e-10
LR_MAX_ITER = 200

# A categorical level reaches the driver on its own when it holds at least MIN_LEVEL_ROWS
# rows and MIN_LEVEL_SHARE of the feature's rows; the rest are pooled into `other` in
# Spark. 30 rows: a bad rate seen on fewer is mostly noise (standard error 0.07 at 20%),
# and a level seen on 30 applicants singles none of them out, which matters since the
# level names are written into the model's SQL. From 60,000 rows on, 1/2000 of the rows
# is the larger floor: however large the file, at most 2,000 levels qualify, and it would
# take 100 levels that small to fill one 5% bin.
MIN_LEVEL_ROWS = 30
MIN_LEVEL_SHARE = 0.0005
# At most this many levels per feature reach the driver, the most frequent first (ties by
# level): it bounds the driver's O(levels^2) merging and the SQL's IN lists (tens of kB).
MAX_LEVELS = 1000
# Levels are ordered by (bads + PRIOR_ROWS * p) / (rows + PRIOR_ROWS), p the feature's bad
# rate: at the smallest level size its own rate and p weigh the same, so a 30-row level
# with no bad is not put at the safe end by chance; a 1,000-row level keeps 97% of its own.
PRIOR_ROWS = 30.0
# SQLTransformer replaces this text anywhere in its statement, string literals included.
_THIS = "__THIS__"

# Slots of the per-bin counts: a value (prebin index or level), null, pooled levels.
_VALUE, _MISSING, _OTHER = 0, 1, 2


@dataclass(frozen=True)
class Bin:
    """One bin: ``label`` for humans, ``condition`` in SQL on the raw column."""

    label: str
    condition: str
    woe: float
    count: float  # rows (weighted when fitted with a weight column)
    bads: float
    bad_rate: float | None  # None when the bin had no training rows
    lower: float | None = None  # numeric: inclusive lower bound, None = -inf
    upper: float | None = None  # numeric: exclusive upper bound, None = +inf
    levels: tuple[str, ...] = ()  # categorical: the levels named in the bin
    other: bool = False  # categorical: also takes pooled rare and unseen levels
    missing: bool = False  # takes nulls

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "condition": self.condition,
            "woe": self.woe,
            "count": self.count,
            "bads": self.bads,
            "bad_rate": self.bad_rate,
        }


@dataclass(frozen=True)
class FeatureBins:
    """A feature's bins (complete: every value, null and unseen level falls in one)."""

    feature: str
    kind: str  # "numeric" or "categorical"
    bins: tuple[Bin, ...]
    iv: float

    def woe_sql(self) -> str:
        """The feature's WOE as one SQL CASE on the raw column."""
        whens = " ".join(f"WHEN {b.condition} THEN {_num(b.woe)}" for b in self.bins)
        # Nothing falls through by construction; a value no bin claims would score neutral.
        return f"CASE {whens} ELSE {_num(0.0)} END"

    def to_dict(self) -> dict:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "iv": self.iv,
            "bins": [b.to_dict() for b in self.bins],
        }


# --- binning ----------------------------------------------------------------------------
def fit_bins(
    df: DataFrame,
    numeric: list[str],
    categorical: list[str],
    label: str = "label",
    weight: str | None = None,
    max_bins: int = 8,
    prebins: int = 20,
    min_bin_share: float = 0.05,
) -> dict[str, FeatureBins]:
    """Monotonic WOE bins for every feature, keyed by feature (numeric first).

    Two passes over ``df``: one ``approxQuantile`` for the numeric pre-bin cuts, one
    aggregation of (weighted) rows and bads per feature and pre-bin or level.
    """
    features = [*numeric, *categorical]
    _check_inputs(df, features, label, weight, max_bins, prebins, min_bin_share)
    cuts = _prebin_cuts(df, numeric, prebins)
    rows = _bin_counts(df, cuts, categorical, label, weight).collect()
    first = [r for r in rows if r["feature"] == features[0]]
    if not first:
        raise ValueError("no rows to bin: the training DataFrame is empty")
    invalid = sum(r["invalid"] for r in first)
    if invalid:
        raise ValueError(
            f"{invalid} rows have a label other than 0/1 or a null/negative weight; "
            f"filter them out (e.g. df.where('{label} IS NOT NULL')) before binning"
        )
    total_bads = sum(r["bads"] for r in first)
    totals = (sum(r["n"] for r in first) - total_bads, total_bads)
    if min(totals) <= 0:
        raise ValueError(f"'{label}' needs both goods (0) and bads (1); got goods, bads = {totals}")
    min_n = min_bin_share * (totals[0] + totals[1])
    by_feature: dict[str, list] = {f: [] for f in features}
    for r in rows:
        by_feature[r["feature"]].append(r)
    out = {}
    for f in numeric:
        out[f] = _numeric_bins(f, cuts[f], by_feature[f], totals, max_bins, min_n)
    for f in categorical:
        col = _ident(f)
        if not isinstance(df.schema[f].dataType, T.StringType):
            col = f"CAST({col} AS STRING)"
        out[f] = _categorical_bins(f, col, by_feature[f], totals, max_bins, min_n)
    return out


def woe_column(feature: str) -> str:
    return f"{feature}{WOE_SUFFIX}"


def woe_transformer(bins: list[FeatureBins]) -> SQLTransformer:
    """Adds ``<feature>__woe`` for each of ``bins``, keeping every input column."""
    cols = ", ".join(f"{fb.woe_sql()} AS {_ident(woe_column(fb.feature))}" for fb in bins)
    return SQLTransformer(statement=f"SELECT *, {cols} FROM __THIS__")


def _check_inputs(df, features, label, weight, max_bins, prebins, min_bin_share) -> None:
    if not features:
        raise ValueError("no features to bin: pass numeric and/or categorical column names")
    dupes = sorted({f for f in features if features.count(f) > 1})
    if dupes:
        raise ValueError(f"features listed twice (numeric and categorical?): {dupes}")
    absent = [c for c in [*features, label, weight] if c is not None and c not in df.columns]
    if absent:
        raise ValueError(f"columns not in the DataFrame: {absent}; it has {df.columns}")
    if max_bins < 1 or prebins < 2 or not 0 <= min_bin_share < 0.5:
        raise ValueError(
            f"need max_bins >= 1, prebins >= 2 and 0 <= min_bin_share < 0.5; got "
            f"{max_bins}, {prebins}, {min_bin_share}"
        )


def _prebin_cuts(df: DataFrame, numeric: list[str], prebins: int) -> dict[str, list[float]]:
    """Sorted distinct finite quantile cuts per numeric feature (one Spark pass)."""
    if not numeric:
        return {}
    probs = [i / prebins for i in range(1, prebins)]
    quantiles = df.approxQuantile(list(numeric), probs, QUANTILE_ERROR)
    return {
        f: sorted({float(v) for v in qs if v is not None and math.isfinite(v)})
        for f, qs in zip(numeric, quantiles, strict=True)
    }


def _prebin_index(col: str, cuts: list[float]):
    """0 for values below the first cut, i for [cuts[i-1], cuts[i]), len(cuts) above."""
    expr = None
    for i, cut in enumerate(cuts):
        cond = F.col(col) < F.lit(cut)
        expr = F.when(cond, i) if expr is None else expr.when(cond, i)
    return F.lit(len(cuts)) if expr is None else expr.otherwise(len(cuts))


def _bin_counts(
    df: DataFrame,
    cuts: dict[str, list[float]],
    categorical: list[str],
    label: str,
    weight: str | None,
) -> DataFrame:
    """(feature, slot, key, n, bads, invalid): weighted rows and bads per pre-bin/level.

    One row per input row and feature (an explode of an array of structs), one
    aggregation; a categorical level reaches the driver on its own when it holds
    ``MIN_LEVEL_ROWS`` rows and ``MIN_LEVEL_SHARE`` of its feature's (weighted) rows and
    is among the ``MAX_LEVELS`` most frequent of those (ties by level); the others are
    pooled into the ``other`` slot in Spark, so a feature with millions of levels sends
    at most ``MAX_LEVELS + 2`` rows to the driver.
    """
    y = F.col(label).cast("double")
    w = F.col(weight).cast("double") if weight else F.lit(1.0)
    bad_row = y.isNull() | ~y.isin(0.0, 1.0)
    if weight:
        bad_row = bad_row | w.isNull() | (w < 0)
    entries = []
    for f, fcuts in cuts.items():
        key = _prebin_index(f, fcuts).cast("string")
        entries.append((f, F.col(f).isNull(), key))
    for f in categorical:
        entries.append((f, F.col(f).isNull(), F.col(f).cast("string")))
    stacked = F.array(
        *[
            F.struct(
                F.lit(f).alias("feature"),
                F.when(is_null, _MISSING).otherwise(_VALUE).alias("slot"),
                F.when(is_null, F.lit(None).cast("string")).otherwise(key).alias("key"),
            )
            for f, is_null, key in entries
        ]
    )
    counts = (
        df.select(
            w.alias("_w"),
            y.alias("_y"),
            F.when(bad_row, 1).otherwise(0).alias("_bad_row"),
            F.explode(stacked).alias("_e"),
        )
        .groupBy("_e.feature", "_e.slot", "_e.key")
        .agg(
            F.sum("_w").alias("n"),
            F.sum(F.col("_w") * F.col("_y")).alias("bads"),
            F.sum("_bad_row").alias("invalid"),
            F.count(F.lit(1)).alias("rows"),
        )
    )
    if not categorical:
        return counts.drop("rows")
    feature = Window.partitionBy("feature")
    level = F.col("feature").isin(list(categorical)) & (F.col("slot") == _VALUE)
    eligible = (
        level
        & (F.col("rows") >= F.lit(MIN_LEVEL_ROWS))
        & (F.col("n") > F.lit(0.0))
        & (F.col("n") >= F.lit(MIN_LEVEL_SHARE) * F.sum("n").over(feature))
        & ~F.col("key").contains(_THIS)
    )
    # The most frequent eligible levels first; ties by level, so the cut is deterministic.
    rank = F.row_number().over(
        feature.orderBy(F.col("_eligible").desc(), F.col("n").desc(), F.col("key").asc())
    )
    pooled = level & ~(F.col("_eligible") & (F.col("_rank") <= F.lit(MAX_LEVELS)))
    return (
        counts.withColumn("_eligible", F.coalesce(eligible, F.lit(False)))
        .withColumn("_rank", rank)
        .select(
            "feature",
            F.when(pooled, _OTHER).otherwise(F.col("slot")).alias("slot"),
            F.when(pooled, F.lit(None).cast("string")).otherwise(F.col("key")).alias("key"),
            "n",
            "bads",
            "invalid",
        )
        .groupBy("feature", "slot", "key")
        .agg(F.sum("n").alias("n"), F.sum("bads").alias("bads"), F.sum("invalid").alias("invalid"))
    )


class _Group(NamedTuple):
    """Adjacent pre-bins or levels being merged; ``None`` in members = pooled ``other``."""

    n: float
    bads: float
    members: tuple

    @property
    def rate(self) -> float:
        return self.bads / self.n


def _merge(a: _Group, b: _Group) -> _Group:
    return _Group(a.n + b.n, a.bads + b.bads, a.members + b.members)


def _woe_iv(n: float, bads: float, totals: tuple[float, float]) -> tuple[float, float]:
    """(WOE, IV term) of a bin with ``n`` rows and ``bads`` bads; (0, 0) when empty."""
    if n <= 0:
        return 0.0, 0.0
    good_share = (n - bads + SMOOTHING) / totals[0]
    bad_share = (bads + SMOOTHING) / totals[1]
    woe = math.log(good_share / bad_share)
    return woe, (good_share - bad_share) * woe


def _iv(groups: list[_Group], totals: tuple[float, float]) -> float:
    return sum(_woe_iv(g.n, g.bads, totals)[1] for g in groups)


def _pool_small(groups: list[_Group], min_n: float) -> list[_Group]:
    """Merge the smallest group into the neighbour with the closer bad rate until every
    group holds ``min_n`` rows (ties: the first smallest, the left neighbour)."""
    groups = list(groups)
    while len(groups) > 1:
        i = min(range(len(groups)), key=lambda j: groups[j].n)
        if groups[i].n >= min_n:
            break
        if i == 0:
            left = 0
        elif i == len(groups) - 1:
            left = i - 1
        else:
            gap_left = abs(groups[i].rate - groups[i - 1].rate)
            gap_right = abs(groups[i].rate - groups[i + 1].rate)
            left = i - 1 if gap_left <= gap_right else i
        groups[left : left + 2] = [_merge(groups[left], groups[left + 1])]
    return groups


def _monotonic(groups: list[_Group], increasing: bool) -> list[_Group]:
    """Pool adjacent violators until the bad rate strictly increases (or decreases)."""
    out: list[_Group] = []
    for g in groups:
        out.append(g)
        while len(out) > 1 and (
            out[-2].rate >= out[-1].rate if increasing else out[-2].rate <= out[-1].rate
        ):
            b, a = out.pop(), out.pop()
            out.append(_merge(a, b))
    return out


def _limit_bins(groups: list[_Group], max_bins: int, totals: tuple[float, float]) -> list[_Group]:
    """Merge the adjacent pair that loses the least IV until ``max_bins`` remain."""
    groups = list(groups)
    while len(groups) > max_bins:
        losses = [_iv([a, b], totals) - _iv([_merge(a, b)], totals) for a, b in pairwise(groups)]
        i = losses.index(min(losses))
        groups[i : i + 2] = [_merge(groups[i], groups[i + 1])]
    return groups


def _make_bin(label: str, condition: str, n: float, bads: float, totals, **kind) -> Bin:
    woe = _woe_iv(n, bads, totals)[0]
    rate = bads / n if n > 0 else None
    return Bin(label, condition, woe, n, bads, rate, **kind)


def _missing_bin(col: str, rows: list, totals) -> Bin:
    n = float(sum(r["n"] for r in rows if r["slot"] == _MISSING))
    bads = float(sum(r["bads"] for r in rows if r["slot"] == _MISSING))
    return _make_bin("missing", f"{col} IS NULL", n, bads, totals, missing=True)


def _feature_bins(feature: str, kind: str, bins: list[Bin], totals) -> FeatureBins:
    iv = sum(_woe_iv(b.count, b.bads, totals)[1] for b in bins)
    return FeatureBins(feature, kind, tuple(bins), iv)


def _numeric_bins(feature, cuts, rows, totals, max_bins, min_n) -> FeatureBins:
    col = _ident(feature)
    prebins = sorted(
        (int(r["key"]), r["n"], r["bads"]) for r in rows if r["slot"] == _VALUE and r["n"] > 0
    )
    groups = [_Group(n, bads, (i,)) for i, n, bads in prebins] or [_Group(0.0, 0.0, (0,))]
    if prebins:
        groups = _pool_small(groups, min_n)
        # The direction that keeps more information; ties go to increasing.
        candidates = [_monotonic(groups, increasing) for increasing in (True, False)]
        groups = max(candidates, key=lambda gs: _iv(gs, totals))
        groups = _limit_bins(groups, max_bins, totals)
    # A group starts at its first pre-bin's lower cut; empty pre-bins fall in the group
    # before them, so the ranges cover the whole line.
    lowers = [None] + [cuts[g.members[0] - 1] for g in groups[1:]]
    uppers = lowers[1:] + [None]
    bins = []
    for g, lo, hi in zip(groups, lowers, uppers, strict=True):
        parts = ([f"{col} >= {_num(lo)}"] if lo is not None else []) + (
            [f"{col} < {_num(hi)}"] if hi is not None else []
        )
        label = ("(-inf" if lo is None else f"[{_fmt(lo)}") + (
            ", +inf)" if hi is None else f", {_fmt(hi)})"
        )
        condition = " AND ".join(parts) or f"{col} IS NOT NULL"
        bins.append(_make_bin(label, condition, g.n, g.bads, totals, lower=lo, upper=hi))
    bins.append(_missing_bin(col, rows, totals))
    return _feature_bins(feature, "numeric", bins, totals)


def _shrunk_rate(g: _Group, prior: float) -> float:
    """The bad rate pulled toward ``prior`` by ``PRIOR_ROWS`` rows: a sort key only."""
    return (g.bads + PRIOR_ROWS * prior) / (g.n + PRIOR_ROWS)


def _categorical_bins(feature, col, rows, totals, max_bins, min_n) -> FeatureBins:
    """Levels (and the pooled ``other``) sorted by shrunk bad rate, then merged as
    numeric pre-bins are: to ``min_n`` rows, a monotonic bad rate, ``max_bins`` bins."""
    levels = sorted(r["key"] for r in rows if r["slot"] == _VALUE and r["n"] > 0)
    groups = [
        _Group(r["n"], r["bads"], (r["key"] if r["slot"] == _VALUE else None,))
        for r in rows
        if r["slot"] in (_VALUE, _OTHER) and r["n"] > 0
    ]
    if groups:
        prior = sum(g.bads for g in groups) / sum(g.n for g in groups)
        groups.sort(
            key=lambda g: (_shrunk_rate(g, prior), g.members[0] is None, g.members[0] or "")
        )
    groups = _pool_small(groups, min_n)
    groups = _monotonic(groups, increasing=True)  # ties, and what shrinkage reordered
    groups = _limit_bins(groups, max_bins, totals)

    def outside(named: set) -> str:
        """Not null and none of the named levels: what the pooled ``other`` bin takes."""
        rest = [level for level in levels if level not in named]
        return f"{col} NOT IN ({', '.join(map(_str, rest))})" if rest else f"{col} IS NOT NULL"

    bins = []
    for g in groups:
        named = tuple(sorted(m for m in g.members if m is not None))
        other = None in g.members
        if not other:
            condition = f"{col} IN ({', '.join(map(_str, named))})"
            label = "{" + ", ".join(named) + "}"
        else:
            condition = outside(set(named))
            label = "{" + ", ".join(named) + "} + other" if named else "other"
        bins.append(_make_bin(label, condition, g.n, g.bads, totals, levels=named, other=other))
    if not any(b.other for b in bins):
        bins.append(_make_bin("other", outside(set()), 0.0, 0.0, totals, other=True))
    bins.append(_missing_bin(col, rows, totals))
    return _feature_bins(feature, "categorical", bins, totals)


# --- the scorecard ----------------------------------------------------------------------
@dataclass
class Scorecard:
    """A fitted scorecard; ``model`` (built from the other fields) scores raw rows."""

    bins: dict[str, FeatureBins]  # every candidate feature, in the model or not
    coefficients: dict[str, float]  # the model's features: LR coefficient on the WOE
    intercept: float  # log-odds of bad at WOE 0, after the prior correction
    scale: ScoreScale = field(default_factory=ScoreScale)
    bad_weight: float = 1.0
    dropped: dict[str, str] = field(default_factory=dict)  # feature -> low_iv | wrong_sign
    not_reasons: tuple[str, ...] = ()  # scored, never given as a reason code
    reasons: int = MAX_REASON_CODES  # reason codes per row
    model: PipelineModel = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = [f for f in self.coefficients if f not in self.bins]
        if not self.coefficients or unknown:
            raise ValueError(
                f"a scorecard needs at least one feature, each with bins; "
                f"coefficients {list(self.coefficients)} lack bins for {unknown}"
            )
        self.not_reasons = tuple(self.not_reasons)
        self.model = PipelineModel(stages=self._stages())

    @property
    def features(self) -> list[str]:
        return list(self.coefficients)

    @property
    def iv(self) -> dict[str, float]:
        return {f: fb.iv for f, fb in self.bins.items()}

    @property
    def factor(self) -> float:
        return self.scale.factor

    @property
    def offset(self) -> float:
        """The constant part of the score, spread equally over the features."""
        return self.scale.base - self.factor * (math.log(self.scale.base_odds) + self.intercept)

    def _slope(self, feature: str) -> float:
        return -self.factor * self.coefficients[feature]

    def _share(self) -> float:
        return self.offset / len(self.coefficients)

    def points(self, feature: str, woe: float) -> float:
        """Exact points of ``feature`` at ``woe`` (the same double Spark computes)."""
        return self._slope(feature) * woe + self._share()

    def max_points(self, feature: str) -> float:
        """The feature's best points over its bins of at least ``MIN_REASON_BIN_SHARE`` of
        the training rows (over every bin when none is that large)."""
        bins = self.bins[feature].bins
        total = sum(b.count for b in bins)
        sizeable = [b for b in bins if b.count >= MIN_REASON_BIN_SHARE * total] or bins
        return max(self.points(feature, b.woe) for b in sizeable)

    def points_table(self) -> pandas.DataFrame:
        """One row per model feature and bin: label, WOE, coefficient, points."""
        rows = [
            {
                "feature": f,
                "bin": b.label,
                "count": b.count,
                "bad_rate": b.bad_rate,
                "woe": b.woe,
                "coefficient": coef,
                "points": round(self.points(f, b.woe), 1),
                "points_exact": self.points(f, b.woe),
            }
            for f, coef in self.coefficients.items()
            for b in self.bins[f].bins
        ]
        return pandas.DataFrame(rows)

    def sql_expression(self) -> str:
        """The integer 300-900 score as one SQL expression on the raw feature columns.

        ANSI SQL (CASE, LEAST/GREATEST, ROUND, CAST); identifiers that are not plain
        ``[A-Za-z_][A-Za-z0-9_]*`` are quoted with backticks, as Spark SQL does.
        """
        terms = []
        for f in self.coefficients:
            fb = self.bins[f]
            whens = " ".join(
                f"WHEN {b.condition} THEN {_num(self.points(f, b.woe))}" for b in fb.bins
            )
            terms.append(f"CASE {whens} ELSE {_num(self.points(f, 0.0))} END")
        return self.scale.clip_sql(" + ".join(terms))

    def sql_query(self, table: str) -> str:
        return f"SELECT *, {self.sql_expression()} AS score FROM {table}"

    def to_dict(self) -> dict:
        """JSON-safe summary: scale, coefficients, bins with points, and the SQL."""
        features = []
        for f, fb in self.bins.items():
            entry = fb.to_dict()
            entry["coefficient"] = self.coefficients.get(f)
            entry["dropped"] = self.dropped.get(f)
            if f in self.coefficients:
                for b, out in zip(fb.bins, entry["bins"], strict=True):
                    out["points"] = self.points(f, b.woe)
            features.append(entry)
        return {
            **self.scale.as_dict(),
            "factor": self.factor,
            "bad_weight": self.bad_weight,
            "intercept": self.intercept,
            "offset": self.offset,
            "coefficients": dict(self.coefficients),
            "iv": self.iv,
            "dropped": dict(self.dropped),
            "not_reasons": list(self.not_reasons),
            "features": features,
            "sql": self.sql_expression(),
        }

    def _point_sql(self, feature: str) -> str:
        woe = _ident(woe_column(feature))
        return f"({_num(self._slope(feature))} * {woe} + {_num(self._share())})"

    def _stages(self) -> list[SQLTransformer]:
        """WOE columns, then pd, score and reason_codes, each a SQLTransformer.

        ``reason_codes`` are adverse-action reasons: the (up to ``reasons``) features whose
        points fall furthest below that feature's best sizeable bin (``max_points``),
        largest shortfall first; ``not_reasons`` are never among them.
        """
        logit = " + ".join(
            [_num(self.intercept)]
            + [f"{_num(c)} * {_ident(woe_column(f))}" for f, c in self.coefficients.items()]
        )
        pd_sql = f"{_num(1.0)} / ({_num(1.0)} + EXP(-({logit})))"
        score_sql = self.scale.clip_sql(" + ".join(self._point_sql(f) for f in self.coefficients))
        gaps = ", ".join(
            f"named_struct('gap', {self._point_sql(f)} - {_num(self.max_points(f))}, "
            f"'feature', {_str(f)})"
            for f in self.coefficients
            if f not in self.not_reasons
        )
        # Ascending (negative gap, name): the largest shortfall first, ties by name.
        reasons_sql = (
            f"transform(slice(sort_array(filter(array({gaps}), r -> r.gap < 0)), "
            f"1, {int(self.reasons)}), r -> r.feature)"
            if gaps
            else "slice(array(''), 1, 0)"  # every feature excluded: an empty array<string>
        )
        return [
            woe_transformer([self.bins[f] for f in self.coefficients]),
            SQLTransformer(statement=f"SELECT *, {pd_sql} AS pd FROM __THIS__"),
            SQLTransformer(statement=f"SELECT *, {score_sql} AS score FROM __THIS__"),
            SQLTransformer(statement=f"SELECT *, {reasons_sql} AS reason_codes FROM __THIS__"),
        ]


def fit_scorecard(
    train: DataFrame,
    numeric: list[str],
    categorical: list[str],
    label: str = "label",
    scale: ScoreScale | None = None,
    bad_weight: float = 1.0,
    min_iv: float = 0.02,
    max_bins: int = 8,
    reg_param: float = 0.0,
    not_reasons: tuple[str, ...] = (),
) -> Scorecard:
    """Bin, keep features with IV >= ``min_iv``, fit the logistic regression on their WOE.
    Features in ``not_reasons`` are scored but never given as a reason code.

    Bads weigh ``bad_weight`` in the fit; the intercept is then corrected by
    ``-ln(bad_weight)`` so ``pd`` is calibrated to the true bad rate. While some
    coefficient is >= 0 (higher WOE riskier), the feature with the largest one is dropped
    and the model refitted.
    """
    if bad_weight <= 0:
        raise ValueError(f"bad_weight must be > 0; got {bad_weight}")
    bins = fit_bins(train, numeric, categorical, label=label, max_bins=max_bins)
    dropped = {f: "low_iv" for f, fb in bins.items() if fb.iv < min_iv}
    selected = [f for f in bins if f not in dropped]
    if not selected:
        ivs = {f: round(fb.iv, 4) for f, fb in bins.items()}
        raise ValueError(f"no feature has IV >= min_iv={min_iv} (IV: {ivs}); lower min_iv")
    woe = woe_transformer([bins[f] for f in selected]).transform(train)
    data = woe.select(
        *[woe_column(f) for f in selected],
        F.col(label).cast("double").alias("_label"),
        F.when(F.col(label) == 1, float(bad_weight)).otherwise(1.0).alias("_weight"),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        while True:
            lr = _fit_lr(data, selected, bad_weight, reg_param)
            coefficients = dict(zip(selected, map(float, lr.coefficients.toArray()), strict=True))
            wrong = {f: c for f, c in coefficients.items() if c >= 0}
            if not wrong:
                break
            worst = max(wrong, key=wrong.__getitem__)
            dropped[worst] = "wrong_sign"
            selected.remove(worst)
            if not selected:
                raise ValueError(
                    f"every feature's WOE coefficient came out >= 0 (the last: {worst}); "
                    "check that label 1 means bad"
                )
    finally:
        data.unpersist()
    return Scorecard(
        bins=bins,
        coefficients=coefficients,
        intercept=float(lr.intercept) - math.log(bad_weight),
        scale=scale or ScoreScale(),
        bad_weight=bad_weight,
        dropped=dropped,
        not_reasons=tuple(f for f in not_reasons if f in coefficients),
    )


def _fit_lr(
    data: DataFrame, features: list[str], bad_weight: float, reg_param: float
) -> LogisticRegressionModel:
    """Binomial LR of ``_label`` on the WOE columns; no standardization, since WOE
    already shares one log-odds scale and ``reg_param`` should shrink it as is."""
    assembled = VectorAssembler(
        inputCols=[woe_column(f) for f in features], outputCol="_features"
    ).transform(data)
    lr = LogisticRegression(
        featuresCol="_features",
        labelCol="_label",
        family="binomial",
        regParam=reg_param,
        standardization=False,
        maxIter=LR_MAX_ITER,
        tol=LR_TOL,
    )
    if bad_weight != 1.0:
        lr.setWeightCol("_weight")
    return lr.fit(assembled)


# --- SQL text ---------------------------------------------------------------------------
def _num(x: float) -> str:
    """A double literal that reads back as exactly ``x`` (``1.5E0``: approximate numeric,
    never DECIMAL), parenthesized when negative."""
    if not math.isfinite(x):
        raise ValueError(f"cannot write {x} as a SQL literal")
    text = repr(float(x)).upper()
    text = text if "E" in text else f"{text}E0"
    return f"({text})" if text.startswith("-") else text


def _str(value: str) -> str:
    """A SQL string literal; backslashes escaped as Spark SQL reads them."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _ident(name: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    return "`" + name.replace("`", "``") + "`"


def _fmt(x: float) -> str:
    """A cut for bin labels: integers as such, others to 6 significant digits."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else f"{x:.6g}"
