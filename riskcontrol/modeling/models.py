"""Credit default models in Spark MLlib: what they learn from, how they are fitted and judged.

Five kinds, all trained where the data is:

* ``decision_tree``: a probability tree (variance impurity on the 0/1 flag, leaves predict
  their bad rate);
* ``gbt``: gradient-boosted trees, the challenger most teams end up with;
* ``neural_network``: a multilayer perceptron with early stopping on the validation window;
* ``scorecard``: WOE binning plus logistic regression on a 300-900 points scale, the
  baseline risk teams compare everything against (``riskcontrol.modeling.scorecard``);
* ``logistic``: plain regularised logistic regression on the imputed, log-transformed,
  standardised and one-hot encoded features, the reference practitioners fit first.

Every fitted model is one ``PipelineModel`` that scores raw feature rows: imputation,
one-hot encoding and (for the network) log transform and scaling are stages of it, and its
last stage writes ``pd``, the probability of default. Validation is the credit way: train,
validation and out-of-time windows by application month (``time_split``), only matured
labels, and class imbalance handled by weighting bads by goods/bads during fitting then
correcting the odds back to the true bad rate (``ProbabilityOfDefault``), so PDs stay
calibrated while the rare class still shapes the splits.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import (
    GBTClassifier,
    LogisticRegression,
    MultilayerPerceptronClassifier,
)
from pyspark.ml.feature import (
    Imputer,
    OneHotEncoder,
    SQLTransformer,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
)
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import DecisionTreeRegressionModel, DecisionTreeRegressor
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from riskcontrol.core.catalog import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from riskcontrol.core.config import MODEL_KINDS, Settings
from riskcontrol.modeling import explain, metrics, scorecard
from riskcontrol.modeling.scale import ScoreScale
from riskcontrol.modeling.stages import ProbabilityOfDefault

CHAMPION = "champion"
CHALLENGER = "challenger"
LABEL = "label"
WEIGHT = "__weight"  # never a user column (a file may have "weight")

# Heavy-tailed counts and amounts: log1p before scaling keeps a few large values from
# dominating the network's inputs (trees are invariant to it and do without).
LOG_FEATURES = (
    "requested_amount",
    "monthly_income",
    "amount_to_income",
    "inquiries_6m",
    "open_loans",
    "overdue_accounts",
    "max_dpd_24m",
    "credit_history_months",
    "ev_count_30d",
    "notes_count_90d",
    "prior_max_dpd",
    "prior_late_installments",
)


@dataclass(frozen=True)
class FeatureSpec:
    """The raw columns a model reads, and the column naming its time window."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    log: tuple[str, ...] = ()
    month: str = "application_month"
    # Features the model reads but never gives as a reason code (a decline notice may not
    # cite age or region); every explanation path leaves them out before the top codes.
    not_reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [f for f in self.not_reasons if f not in self.columns]
        if unknown:
            raise ValueError(f"not_reasons {unknown} are not features of this spec")

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def reason_features(self) -> list[str]:
        """The features a reason code may name."""
        return [f for f in self.columns if f not in self.not_reasons]

    def without(self, *features: str) -> FeatureSpec:
        """This spec less ``features`` (from every list they are in)."""
        unknown = [f for f in features if f not in self.columns]
        if unknown:
            raise ValueError(f"{unknown} are not features of this spec: {self.columns}")

        def keep(names: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(n for n in names if n not in features)

        return replace(
            self,
            numeric=keep(self.numeric),
            categorical=keep(self.categorical),
            log=keep(self.log),
            not_reasons=keep(self.not_reasons),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "log": list(self.log),
            "month": self.month,
            "not_reasons": list(self.not_reasons),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        """The spec ``as_dict`` wrote; a model logged before ``log`` and ``not_reasons``
        were recorded reads back with none."""
        return cls(
            tuple(d["numeric"]),
            tuple(d["categorical"]),
            tuple(d.get("log", ())),
            d.get("month", "application_month"),
            tuple(d.get("not_reasons", ())),
        )


APPLICATION_SPEC = FeatureSpec(NUMERIC_FEATURES, CATEGORICAL_FEATURES, LOG_FEATURES)


def application_spec(settings: Settings) -> FeatureSpec:
    """The application features less ``RISK_FEATURE_EXCLUDED``, with
    ``RISK_REASON_EXCLUDED`` never given as a reason."""
    known = set(APPLICATION_SPEC.columns)
    for name, names in (
        ("RISK_REASON_EXCLUDED", settings.not_reasons),
        ("RISK_FEATURE_EXCLUDED", settings.not_features),
    ):
        if set(names) - known:
            raise ValueError(
                f"{name} names {', '.join(sorted(set(names) - known))}, not an application "
                f"feature: choose from {', '.join(sorted(known))}"
            )
    if not known - set(settings.not_features):
        raise ValueError("RISK_FEATURE_EXCLUDED leaves no feature for a model to read")
    every = replace(APPLICATION_SPEC, not_reasons=settings.not_reasons)
    return every.without(*settings.not_features)


@dataclass
class Split:
    """Train, validation and out-of-time (or test) rows, and how they were chosen."""

    train: DataFrame
    valid: DataFrame
    oot: DataFrame
    method: str
    windows: dict[str, str] = field(default_factory=dict)

    def cache(self) -> Split:
        for df in (self.train, self.valid, self.oot):
            df.cache()
        return self

    def unpersist(self) -> None:
        for df in (self.train, self.valid, self.oot):
            df.unpersist()

    def check_classes(self) -> dict[str, tuple[int, int]]:
        """(goods, bads) per window; an error naming the window if one lacks a class
        (AUC and KS need both, and a model cannot learn from one)."""
        counts = {}
        for name, df in split_frames(self).items():
            row = df.agg(F.count("*").alias("n"), F.sum(LABEL).alias("bads")).first()
            n, bads = int(row["n"]), int(row["bads"] or 0)
            counts[name] = (n - bads, bads)
        empty = {k: v for k, v in counts.items() if 0 in v}
        if empty:
            detail = ", ".join(f"{k} {g:,} goods / {b:,} bads" for k, (g, b) in empty.items())
            raise ValueError(
                f"every window needs goods and bads; {detail} ({self.windows}). Use a longer "
                "history, other windows (RISK_VALID_MONTHS, RISK_OOT_MONTHS), or no --time-col."
            )
        return counts


def matured_applications(features: DataFrame, month_col: str = "application_month") -> DataFrame:
    """Approved applications judged good or bad, from the months none of whose approved
    loans is still immature.

    A short loan is judged months before a long one of the same month, so the latest
    months with any label hold only short loans: a sample the policy and the book never
    see. Whole months keep every window (out-of-time above all) like the book."""
    approved = features.where(F.col("status") == "approved")
    open_months = approved.where(F.col("label_status") == "immature").select(month_col)
    return approved.where("label_matured AND label IS NOT NULL").join(
        open_months.distinct(), month_col, "left_anti"
    )


def time_split(
    labelled: DataFrame, valid_months: int, oot_months: int, month_col: str = "application_month"
) -> Split:
    """Out-of-time split by month: the last ``oot_months`` months are the out-of-time test,
    the ``valid_months`` before them the validation window, everything earlier training."""
    months = sorted(r[0] for r in labelled.select(month_col).distinct().collect() if r[0])
    if len(months) < oot_months + valid_months + 2:
        raise ValueError(
            f"only {len(months)} months with matured labels; need at least "
            f"{oot_months + valid_months + 2} for {oot_months} out-of-time (RISK_OOT_MONTHS), "
            f"{valid_months} validation (RISK_VALID_MONTHS) and 2 training months. Generate a "
            "longer history (riskctl generate --months) or lower them."
        )
    oot = months[-oot_months:]
    valid = months[-(oot_months + valid_months) : -oot_months]
    train = months[: -(oot_months + valid_months)]

    def window(ms: list[str]) -> str:
        return f"{ms[0]}..{ms[-1]}"

    return Split(
        train=labelled.where(F.col(month_col).isin(train)),
        valid=labelled.where(F.col(month_col).isin(valid)),
        oot=labelled.where(F.col(month_col).isin(oot)),
        method="time",
        windows={"train": window(train), "valid": window(valid), "oot": window(oot)},
    )


def date_split(
    labelled: DataFrame, date_col: str, fractions: tuple[float, float] = (0.6, 0.2)
) -> Split:
    """Out-of-time split of any dated book: the latest ``1 - sum(fractions)`` of rows by
    date are the test window, the ``fractions[1]`` before them validation.

    Cut dates are approximate quantiles of the date (one pass), so every row of a day
    falls on the same side; a book of few distinct dates cannot be cut and is refused.
    """
    day = F.datediff(F.col(date_col), F.lit("1970-01-01")).cast("double")
    q1, q2 = labelled.select(day.alias("_d")).approxQuantile(
        "_d", [fractions[0], fractions[0] + fractions[1]], 0.001
    )
    first = labelled.agg(F.min(day)).first()[0]
    if q1 is None or q2 is None or not first < q1 < q2:
        raise ValueError(
            f"cannot cut {date_col!r} into train / validation / test windows by date: too few "
            "distinct dates. Drop --time-col to split at random (stratified by the target)."
        )
    import datetime as dt

    def date(days: float) -> str:
        return (dt.date(1970, 1, 1) + dt.timedelta(days=int(days))).isoformat()

    return Split(
        train=labelled.where(day < q1),
        valid=labelled.where((day >= q1) & (day < q2)),
        oot=labelled.where(day >= q2),
        method="time",
        windows={
            "train": f"..{date(q1 - 1)}",
            "valid": f"{date(q1)}..{date(q2 - 1)}",
            "oot": f"{date(q2)}..",
        },
    )


def stratified_split(
    labelled: DataFrame, seed: int, fractions: tuple[float, float] = (0.6, 0.2)
) -> Split:
    """Random split with the bad rate kept equal in each part (no time column to split on).

    Rows are ranked within their class by a seeded hash, so the split is reproducible and
    each class is cut at exactly the same fractions.
    """
    from pyspark.sql import Window

    by_class = Window.partitionBy(LABEL).orderBy(F.xxhash64(F.lit(seed), *labelled.columns))
    ranked = labelled.withColumn("_q", F.percent_rank().over(by_class))
    train_to, valid_to = fractions[0], fractions[0] + fractions[1]
    parts = [
        ranked.where(cond).drop("_q")
        for cond in (
            F.col("_q") < train_to,
            (F.col("_q") >= train_to) & (F.col("_q") < valid_to),
            F.col("_q") >= valid_to,
        )
    ]
    shares = f"{fractions[0]:.0%}/{fractions[1]:.0%}/{1 - valid_to:.0%}"
    return Split(*parts, method="stratified", windows={"shares": shares})


def balanced_weight(train: DataFrame, mode: str) -> float:
    """goods/bads in ``train`` for ``mode='balanced'``; 1.0 for ``'none'``."""
    if mode == "none":
        return 1.0
    row = train.agg(F.sum(F.col(LABEL)).alias("bads"), F.count("*").alias("n")).first()
    bads, n = float(row["bads"] or 0), float(row["n"])
    if bads == 0 or bads == n:
        raise ValueError(f"training rows need both goods and bads; got {int(bads)} bads of {n:.0f}")
    return (n - bads) / bads


def with_weight(df: DataFrame, bad_weight: float) -> DataFrame:
    return df.withColumn(
        WEIGHT, F.when(F.col(LABEL) == 1, F.lit(float(bad_weight))).otherwise(F.lit(1.0))
    )


def log_transform(spec: FeatureSpec) -> SQLTransformer:
    """``<c>__log`` = log1p of each of ``spec.log`` (negatives floored at 0)."""
    cols = ", ".join(f"log1p(greatest(`{c}`, 0D)) AS `{c}__log`" for c in spec.log)
    return SQLTransformer(statement=f"SELECT *, {cols} FROM __THIS__")


def preprocessing(spec: FeatureSpec, scale: bool) -> list:
    """Impute numerics (median), one-hot categoricals (unseen levels kept), assemble;
    ``scale`` (the network and logistic regression) also log-transforms and standardizes
    the numerics, and only them: a standardized indicator of a rare level spans tens of
    units, so its weight escapes the penalty and fits the few rows that have it (measured
    on a 5,000-row messy loan file: the network's out-of-time AUC 0.643 with every input
    standardized, 0.673 with the numerics only)."""
    logged = scale and bool(spec.log)
    numeric = [f"{c}__log" if logged and c in spec.log else c for c in spec.numeric]
    imputed = [f"{c}__imp" for c in spec.numeric]
    indexed = [f"{c}__idx" for c in spec.categorical]
    onehot = [f"{c}__ohe" for c in spec.categorical]
    stages: list = []
    if logged:
        stages.append(log_transform(spec))
    if numeric:
        stages.append(Imputer(strategy="median", inputCols=numeric, outputCols=imputed))
    if spec.categorical:
        stages += [
            StringIndexer(
                inputCols=list(spec.categorical), outputCols=indexed, handleInvalid="keep"
            ),
            OneHotEncoder(inputCols=indexed, outputCols=onehot, handleInvalid="keep"),
        ]
    if scale and numeric:
        stages += [
            VectorAssembler(inputCols=imputed, outputCol="numeric_raw", handleInvalid="keep"),
            StandardScaler(inputCol="numeric_raw", outputCol="numeric_scaled", withMean=True),
        ]
        imputed = ["numeric_scaled"]
    stages.append(
        VectorAssembler(inputCols=imputed + onehot, outputCol="features", handleInvalid="keep")
    )
    return stages


# --- the model kinds and their row-scaled hyperparameters -------------------------------
SMALL_ROWS, LARGE_ROWS = 1_000, 1_000_000


def size_factor(rows: int) -> float:
    """0 at ``SMALL_ROWS`` training rows or fewer, 1 at ``LARGE_ROWS`` or more, linear in
    log10(rows) between: how far the defaults move from a small book's towards a large one's."""
    if rows <= SMALL_ROWS:
        return 0.0
    span = math.log10(LARGE_ROWS) - math.log10(SMALL_ROWS)
    return min(1.0, (math.log10(rows) - math.log10(SMALL_ROWS)) / span)


def default_params(kind: str, rows: int) -> dict[str, Any]:
    """The hyperparameters ``kind`` is fitted with on ``rows`` training rows.

    Capacity grows with the data and regularisation shrinks, because what overfits a
    thousand loans underfits a million (measured: gradient boosting with a million-row
    book's depth and rounds reaches train AUC 0.96 and validation 0.35 on 900 loans):

    * trees: deeper (4 to 8 levels) with leaves of about 2% of the rows (25 to 1,000);
    * boosting: 40 to 120 rounds of 2- to 5-level trees, learning rate 0.05 to 0.1, leaves
      of at least about 2% of the rows (20 to 500);
    * network: 8 to 32 hidden units, up to 12 to 30 rounds of early stopping;
    * logistic: the L2 penalty on the mean loss is ``60 / rows`` (0.05 down to 0.0001),
      the same prior strength whatever the size, as scikit-learn's ``C`` is;
    * scorecard: 5 to 8 bins per feature.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}: use one of {', '.join(MODEL_KINDS)}")
    rows = max(int(rows), 1)
    s = size_factor(rows)
    if kind == "decision_tree":
        return {
            "maxDepth": 4 + round(4 * s),
            "minInstancesPerNode": min(1_000, max(25, round(rows / 50))),
            "maxBins": 32,
        }
    if kind == "gbt":
        return {
            "maxIter": 40 + 10 * round(8 * s),
            "maxDepth": 2 + round(3 * s),
            "stepSize": round(0.05 + 0.05 * s, 3),
            "subsamplingRate": 0.8,
            "minInstancesPerNode": min(500, max(20, round(rows / 50))),
        }
    if kind == "neural_network":
        return {"hidden": round(8 * 4**s), "step": 10, "rounds": 12 + round(18 * s), "patience": 3}
    if kind == "logistic":
        reg = min(0.05, max(1e-4, 60 / rows))
        return {"regParam": float(f"{reg:.2g}"), "elasticNetParam": 0.0, "maxIter": 100}
    return {"max_bins": 5 + round(3 * s), "min_iv": 0.02}


# Each kind's hyperparameter names, with their values at 10,000 training rows.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {k: default_params(k, 10_000) for k in MODEL_KINDS}


def fit_decision_tree(
    split: Split, spec: FeatureSpec, params: dict, seed: int, bad_weight: float
) -> PipelineModel:
    """A probability tree: variance impurity on the 0/1 default flag.

    For a 0/1 target the variance p(1-p) is half the Gini impurity, so the splits are a
    classification tree's, and each leaf predicts its (weighted) bad rate. Spark's
    DecisionTreeClassifier prunes sibling leaves that predict the same class, which on a
    5-10% bad rate collapses the tree to its root (every leaf predicts "good").
    """
    tree = DecisionTreeRegressor(
        labelCol=LABEL,
        featuresCol="features",
        weightCol=WEIGHT,
        predictionCol="tree_pd",
        leafCol="leaf",
        seed=seed,
        **params,
    )
    return _fit_weighted(tree, "tree_pd", split, spec, bad_weight)


def fit_gbt(
    split: Split, spec: FeatureSpec, params: dict, seed: int, bad_weight: float
) -> PipelineModel:
    """Gradient-boosted trees (logistic loss); ``probability`` comes from the margin."""
    gbt = GBTClassifier(
        labelCol=LABEL,
        featuresCol="features",
        weightCol=WEIGHT,
        leafCol="leaves",
        predictionCol="gbt_class",
        seed=seed,
        **params,
    )
    return _fit_weighted(gbt, "probability", split, spec, bad_weight)


def fit_logistic(
    split: Split, spec: FeatureSpec, params: dict, seed: int, bad_weight: float
) -> PipelineModel:
    """Logistic regression (L2 by default, ``elasticNetParam`` > 0 mixes in L1) on log1p
    of heavy-tailed amounts and the other numerics, standardised, and categoricals one-hot
    (0/1, not standardised: Spark's own standardisation is off). Weighting the bads shifts
    mostly the intercept, which ``ProbabilityOfDefault`` corrects."""
    lr = LogisticRegression(
        labelCol=LABEL,
        featuresCol="features",
        weightCol=WEIGHT,
        predictionCol="lr_class",
        family="binomial",
        standardization=False,
        **params,
    )
    return _fit_weighted(lr, "probability", split, spec, bad_weight, scale=True)


def _fit_weighted(
    estimator, output: str, split: Split, spec: FeatureSpec, bad_weight: float, scale=False
):
    """Preprocessing, ``estimator`` fitted with bads weighted, and the corrected ``pd``."""
    stages = [
        *preprocessing(spec, scale=scale),
        estimator,
        ProbabilityOfDefault(output, bad_weight),
    ]
    return Pipeline(stages=stages).fit(with_weight(split.train, bad_weight))


def oversample(df: DataFrame, copies: int) -> DataFrame:
    """Each bad row ``copies`` times (Spark's perceptron takes no row weights)."""
    if copies <= 1:
        return df
    reps = F.when(F.col(LABEL) == 1, F.lit(copies)).otherwise(F.lit(1))
    return df.withColumn("_rep", F.explode(F.sequence(F.lit(1), reps))).drop("_rep")


def fit_neural_network(
    split: Split, spec: FeatureSpec, params: dict, seed: int, bad_weight: float
) -> PipelineModel:
    """A small multilayer perceptron with early stopping on the validation window.

    Spark's MLP has no weight penalty, so it overfits within tens of L-BFGS iterations.
    Training continues ``step`` iterations at a time from the previous weights and keeps
    the weights with the best validation AUC, stopping after ``patience`` rounds without
    improvement. Bads are oversampled ``round(bad_weight)`` times.
    """
    copies = max(1, round(bad_weight))
    prep = Pipeline(stages=preprocessing(spec, scale=True)).fit(split.train)
    prepared = prep.transform(oversample(split.train, copies)).select("features", LABEL).cache()
    held_out = prep.transform(split.valid).select("features", LABEL).cache()
    try:
        width = len(prepared.first()["features"])
        layers = [width, int(params["hidden"]), 2]
        step, patience = int(params["step"]), int(params["patience"])
        best, best_auc, best_iters, weights = None, -1.0, 0, None
        for round_no in range(1, int(params["rounds"]) + 1):
            mlp = MultilayerPerceptronClassifier(
                labelCol=LABEL,
                featuresCol="features",
                predictionCol="mlp_class",
                seed=seed,
                layers=layers,
                maxIter=step,
            )
            if weights is not None:
                mlp.setInitialWeights(weights)
            model = mlp.fit(prepared)
            weights = model.weights
            rows = model.transform(held_out).select(
                vector_to_array("probability")[1].alias("p"), LABEL
            )
            frame = rows.toPandas()
            if frame.empty or frame[LABEL].nunique() < 2:
                best, best_iters = model, round_no * step
                continue
            score = metrics.auc(frame["p"].to_numpy(), frame[LABEL].to_numpy().astype(int))
            if score > best_auc:
                best, best_auc, best_iters = model, score, round_no * step
            elif round_no * step - best_iters >= patience * step:
                break
    finally:
        prepared.unpersist()
        held_out.unpersist()
    params["layers"] = layers
    params["iterations"] = best_iters
    return PipelineModel(stages=[*prep.stages, best, ProbabilityOfDefault("probability", copies)])


def fit_scorecard(
    split: Split,
    spec: FeatureSpec,
    params: dict,
    seed: int,
    bad_weight: float,
    scale: ScoreScale | None = None,
) -> PipelineModel:
    """WOE binning + logistic regression (``riskcontrol.modeling.scorecard``); its pipeline
    writes ``pd``, the ``score`` on ``scale`` (the settings' score scale) and the
    adverse-action ``reason_codes``."""

    card = scorecard.fit_scorecard(
        split.train,
        list(spec.numeric),
        list(spec.categorical),
        label=LABEL,
        bad_weight=bad_weight,
        max_bins=int(params["max_bins"]),
        min_iv=float(params["min_iv"]),
        scale=scale,
        not_reasons=spec.not_reasons,
    )
    # ``prediction`` is what MLflow's pyfunc flavor serves: the PD.
    model = PipelineModel(
        stages=[
            *card.model.stages,
            SQLTransformer(statement="SELECT *, pd AS prediction FROM __THIS__"),
        ]
    )
    model.scorecard = card  # the points table and SQL travel with the model
    return model


FITTERS = {
    "decision_tree": fit_decision_tree,
    "gbt": fit_gbt,
    "neural_network": fit_neural_network,
    "scorecard": fit_scorecard,
    "logistic": fit_logistic,
}
assert set(FITTERS) == set(MODEL_KINDS)
# Kinds without trees or points of their own: reason codes by occlusion against typical
# good-customer values, logged with the model (explain/reference.json).
OCCLUSION_KINDS = ("neural_network", "logistic")


# Kinds whose odds correction after class weighting is only approximate (the margin of
# boosted trees, a network's softmax): their PDs are Platt-scaled on the validation
# window once fitted. The logistic models are calibrated by their own likelihood, and a
# probability tree's leaves are exact bad rates once the odds are corrected.
PLATT_KINDS = ("gbt", "neural_network")


def platt_calibrate(model: PipelineModel, valid: DataFrame) -> dict[str, Any]:
    """Fit Platt scaling of ``model``'s PDs on ``valid`` and set it on its PD stage.

    Returns what was done: ``{"method": "platt", "a", "b"}``, or ``{"method": "none",
    "reason"}`` when the validation rows cannot support it (one class, a perfect split,
    or a slope that is not positive: the model ranks backwards there) and the PDs are
    left as fitted. The rescaling is monotonic, so the ranking (AUC, KS) is unchanged.
    """
    stage = model.stages[-1]
    if not isinstance(stage, ProbabilityOfDefault):
        raise ValueError(f"the last stage is {type(stage).__name__}, not ProbabilityOfDefault")
    stage._set(plattA=1.0, plattB=0.0)
    frame = model.transform(valid).select("pd", F.col(LABEL).cast("int").alias(LABEL)).toPandas()
    try:
        a, b = metrics.platt(frame["pd"].to_numpy(), frame[LABEL].to_numpy())
    except ValueError as exc:
        return {"method": "none", "reason": str(exc)}
    if not a > 0:
        return {"method": "none", "reason": f"the slope on the validation window is {a:.4g}"}
    stage._set(plattA=a, plattB=b)
    return {"method": "platt", "a": a, "b": b}


# Prior strengths tried for a probability tree's leaves (``smooth_leaves``): pseudo-rows at
# the training bad rate added to each leaf.
LEAF_PRIOR_ROWS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)


def leaf_counts(tree) -> list[tuple[float, float]]:
    """(training rows, weighted bads) of each leaf of a fitted probability tree, by
    Spark's leaf number (depth first, left first: ``explain.number_leaves``).

    The tree was fitted on the 0/1 flag with bads weighted ``w`` (``with_weight``): a
    leaf's weighted sum of the flag (its impurity statistics' second entry) is
    ``w x bads``, and its unweighted row count is Spark's ``rawCount``."""
    leaves: list[tuple[float, float]] = []

    def walk(node) -> None:
        if node.getClass().getSimpleName() == "LeafNode":
            stats = node.impurityStats()
            leaves.append((float(stats.rawCount()), float(stats.stats()[1])))
            return
        walk(node.leftChild())
        walk(node.rightChild())

    walk(tree._call_java("rootNode"))
    return leaves


def smooth_leaves(model: PipelineModel, valid: DataFrame) -> dict[str, Any]:
    """Give a probability tree's leaves PDs that a leaf without a training bad cannot make 0.

    Each leaf's PD becomes ``(bads + m x p0) / (rows + m)``: its own bad rate shrunk
    towards the training bad rate ``p0`` by ``m`` pseudo-rows (an m-estimate), with
    ``m`` the one of ``LEAF_PRIOR_ROWS`` that gives ``valid`` the highest likelihood
    (the smallest on a tie). Bads and rows are the unweighted training counts, so the
    odds correction of class weighting is in it exactly. Set on the pipeline's PD stage
    (``leafCol``, ``leafPd``); the ranking of leaves may change a little where a small
    leaf is pulled past a large one. Returns what was done, logged with the model."""
    tree = next((s for s in model.stages if isinstance(s, DecisionTreeRegressionModel)), None)
    stage = model.stages[-1]
    if tree is None or not isinstance(stage, ProbabilityOfDefault):
        raise ValueError("smooth_leaves needs a probability tree followed by its PD stage")
    weight = float(stage.getOrDefault(stage.badWeight))
    counts = [(rows, flagged / weight) for rows, flagged in leaf_counts(tree)]
    rows = np.array([r for r, _ in counts])
    bads = np.array([b for _, b in counts])
    prior = float(bads.sum() / rows.sum())
    leaf_col = tree.getLeafCol()
    if not leaf_col:
        raise ValueError("the tree writes no leaf column (leafCol): set it when fitting")
    frame = (
        model.transform(valid)
        .select(F.col(leaf_col).cast("int").alias("leaf"), F.col(LABEL).cast("int").alias("y"))
        .toPandas()
    )
    leaf, y = frame["leaf"].to_numpy(), frame["y"].to_numpy()
    best = None
    for m in LEAF_PRIOR_ROWS:
        pds = (bads + m * prior) / (rows + m)
        p = np.clip(pds[leaf], 1e-12, 1 - 1e-12)
        loglik = float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))
        if best is None or loglik > best[0] + 1e-12:
            best = (loglik, m, pds)
    loglik, m, pds = best
    stage._set(leafCol=leaf_col, leafPd=[float(v) for v in pds])
    return {
        "method": "leaf m-estimate",
        "prior_rows": m,
        "prior_pd": prior,
        "validation_loglik": loglik,
        "leaves": len(pds),
        "leaves_without_training_bad": int((bads == 0).sum()),
    }


def fit(
    kind: str,
    split: Split,
    spec: FeatureSpec,
    params: dict,
    seed: int,
    bad_weight: float,
    scale: ScoreScale | None = None,
) -> tuple[PipelineModel, float]:
    """Fit one model kind; returns the model and the wall time in seconds. A fitter may add
    what it chose to ``params`` (the network its layers and iterations). The
    ``PLATT_KINDS`` are then Platt-scaled on ``split.valid`` (``model.calibration`` says
    how). ``scale`` (default:
    the default ``ScoreScale``) is the score scale the scorecard's points are fitted on; the
    other kinds write a PD only and are put on the scale at scoring time."""
    started = time.perf_counter()
    if kind == "scorecard":
        model = fit_scorecard(split, spec, params, seed, bad_weight, scale)
    else:
        model = FITTERS[kind](split, spec, params, seed, bad_weight)
    if kind in PLATT_KINDS:
        model.calibration = platt_calibrate(model, split.valid)  # logged with the run
    elif kind == "decision_tree":
        model.calibration = smooth_leaves(model, split.valid)
    return model, time.perf_counter() - started


# --- judging a model --------------------------------------------------------------------
def predictions(model: PipelineModel, df: DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """``pd``, ``label`` and the month (when the data has one) of every row, in pandas."""
    cols = [F.col("pd"), F.col(LABEL).cast("int").alias(LABEL)]
    if spec.month in df.columns:
        cols.append(F.col(spec.month).alias("month"))
    return model.transform(df).select(*cols).toPandas()


@dataclass
class Evaluation:
    """Everything credit teams read about a model, per window."""

    metrics: dict[str, float]
    scores: dict[str, pd.DataFrame]
    calibration: list[dict]
    confusion: dict[str, Any]
    psi_table: list[dict]
    auc_by_month: dict[str, dict]
    cutoff: float

    def tables(self) -> dict[str, Any]:
        return {
            "calibration_oot.json": self.calibration,
            "confusion_oot.json": self.confusion,
            "psi_train_oot.json": self.psi_table,
            "auc_by_month.json": self.auc_by_month,
        }


def evaluate(model: PipelineModel, split: Split, spec: FeatureSpec, cutoff: float) -> Evaluation:
    """AUC, KS, Gini, Brier and the Hosmer-Lemeshow calibration test per window
    (``<window>_hl_stat``, ``<window>_hl_p``: on the training rows with k - 2 degrees of
    freedom, on the others with k); the calibration table out of time with each bin's
    observed-rate interval; the confusion at ``cutoff``; PSI of the out-of-time scores
    against training; AUC by month across all windows."""
    scores = {name: predictions(model, df, spec) for name, df in split_frames(split).items()}
    flat: dict[str, float] = {}
    tests: dict[str, dict] = {}
    for name, frame in scores.items():
        pd_, labels = frame["pd"].to_numpy(), frame[LABEL].to_numpy()
        summary = metrics.summary(pd_, labels, cutoff)
        flat.update({f"{name}_{k}": float(v) for k, v in summary.items() if v is not None})
        try:
            tests[name] = metrics.hosmer_lemeshow(pd_, labels, fitted=name == "train")
        except ValueError:  # too few distinct PDs for the test: no verdict, not a failure
            continue
        flat[f"{name}_hl_stat"] = tests[name]["statistic"]
        flat[f"{name}_hl_p"] = tests[name]["p_value"]
    train_pd, oot = scores["train"]["pd"].to_numpy(), scores["oot"]
    flat["psi_train_oot"] = metrics.psi(train_pd, oot["pd"].to_numpy())
    every = pd.concat(scores.values(), ignore_index=True)
    by_month = (
        metrics.auc_by_group(every["pd"].to_numpy(), every[LABEL].to_numpy(), every["month"])
        if "month" in every
        else {}
    )
    return Evaluation(
        metrics=flat,
        scores=scores,
        calibration=(
            tests["oot"]["bins"]
            if "oot" in tests
            else metrics.calibration_table(oot["pd"].to_numpy(), oot[LABEL].to_numpy())
        ),
        confusion=metrics.confusion(oot["pd"].to_numpy(), oot[LABEL].to_numpy(), cutoff),
        psi_table=metrics.psi_table(train_pd, oot["pd"].to_numpy()),
        auc_by_month=by_month,
        cutoff=cutoff,
    )


def split_frames(split: Split) -> dict[str, DataFrame]:
    return {"train": split.train, "valid": split.valid, "oot": split.oot}


def tree_stage(model: PipelineModel):
    """The fitted tree or boosted-trees stage of a pipeline, or None."""

    try:
        return explain.tree_stage(model)[1]
    except ValueError:
        return None


def importance(
    model: PipelineModel,
    kind: str,
    split: Split,
    spec: FeatureSpec,
    seed: int,
    sample_rows: int = 2000,
) -> dict[str, dict[str, float]]:
    """Global feature importance: permutation (AUC drop on a validation sample) for every
    model, plus the trees' own split importance and the scorecard's information value."""

    rows = split.valid.select(*spec.columns, LABEL)
    sample = rows.orderBy(F.rand(seed)).limit(sample_rows).toPandas()
    out = {"permutation": {}}
    if sample[LABEL].nunique() == 2:
        out["permutation"] = explain.permutation_importance(
            model,
            sample,
            spec.columns,
            label=LABEL,
            seed=seed,
            spark=split.valid.sparkSession,
            schema=rows.schema,
        )
    if tree_stage(model) is not None:
        slots = explain.slot_features(model.transform(split.valid.limit(1)))
        out["native"] = explain.native_importance(model, slots)
    card = getattr(model, "scorecard", None)
    if card is not None:
        out["information_value"] = dict(card.iv)
    return out


def primary_importance(imp: dict[str, dict[str, float]]) -> dict[str, float]:
    """The importance to show first: the trees' own, else permutation."""
    return imp.get("native") or imp.get("permutation") or {}


@dataclass
class TrainedModel:
    kind: str
    model: PipelineModel
    params: dict
    train_seconds: float
    bad_weight: float
    evaluation: Evaluation
    importance: dict[str, dict[str, float]]
    run_id: str | None = None
    version: str | None = None
    trials: int = 0

    @property
    def metrics(self) -> dict[str, float]:
        return {**self.evaluation.metrics, "train_seconds": self.train_seconds}


def train_kind(
    kind: str,
    split: Split,
    spec: FeatureSpec,
    params: dict,
    seed: int,
    bad_weight: float,
    cutoff: float,
    scale: ScoreScale | None = None,
) -> TrainedModel:
    """Fit, evaluate and explain one model kind on a prepared split."""
    params = dict(params)
    model, seconds = fit(kind, split, spec, params, seed, bad_weight, scale)
    evaluation = evaluate(model, split, spec, cutoff)
    imp = importance(model, kind, split, spec, seed)
    return TrainedModel(kind, model, params, seconds, bad_weight, evaluation, imp)


def reference_values(df: DataFrame, spec: FeatureSpec) -> dict[str, Any]:
    """Typical good-customer values (for the network's occlusion reason codes)."""

    return explain.reference_values(df, list(spec.numeric), list(spec.categorical), label=LABEL)


def with_reason_codes(
    champion, rows: DataFrame, predicted: DataFrame, id_col: str, top: int = 3
) -> DataFrame:
    """Add ``reason_codes``: the ``top`` features that pushed each row's risk up.

    Features in ``champion.spec.not_reasons`` are never given: each path leaves them
    out before it ranks (the scorecard's SQL does since it was fitted).
    The scorecard writes its own (points furthest below each feature's best); trees use
    exact TreeSHAP contributions on the assembled feature vector (a probability tree's
    in PD space, a GBT's in margin space); the network uses occlusion against a typical
    good customer (``champion.reference``). ``rows`` are the raw rows ``predicted`` was
    scored from, keyed by ``id_col``.
    """

    if "reason_codes" in predicted.columns:
        return predicted
    spec = champion.spec
    stage = tree_stage(champion.model)
    if stage is not None:
        trees, weights = explain.spark_trees(stage)
        source = stage.getFeaturesCol()
        return explain.tree_reason_codes(
            predicted,
            trees,
            weights,
            explain.slot_features(predicted, source),
            source,
            top=top,
            not_reasons=spec.not_reasons,
            leaf_value=explain.explained_leaf_value(champion.model.stages, stage),
        )
    if champion.reference is None:
        raise RuntimeError(
            f"model v{champion.version} ({champion.kind}) has no explain/reference.json: "
            "retrain it with this version of riskcontrol (`riskctl train`)"
        )
    codes = explain.occlusion_reason_codes(
        champion.model,
        rows.select(id_col, *spec.columns),
        [f for f in spec.numeric if f not in spec.not_reasons],
        [f for f in spec.categorical if f not in spec.not_reasons],
        champion.reference,
        top=top,
        id_col=id_col,
    )
    return predicted.join(codes.select(id_col, "reason_codes"), id_col, "left")
