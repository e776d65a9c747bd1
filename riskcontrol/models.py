"""Credit default models in Spark MLlib, tracked and registered in MLflow.

A decision tree and a neural network (multilayer perceptron) are trained on matured,
approved applications before the out-of-time window and evaluated on it. The
preprocessing (imputation, one-hot encoding, scaling for the network) is part of the
logged pipeline, so the registered model scores raw gold feature rows. The better model
on the out-of-time window becomes the ``champion`` alias when it beats the current
champion; scoring always loads ``champion``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import MultilayerPerceptronClassifier
from pyspark.ml.feature import (
    Imputer,
    OneHotEncoder,
    SQLTransformer,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
)
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import DecisionTreeRegressor
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from riskcontrol import metrics
from riskcontrol.catalog import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from riskcontrol.config import Settings

MODEL_KINDS = ("decision_tree", "neural_network")
CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass
class TrainedModel:
    kind: str
    model: PipelineModel
    params: dict
    metrics: dict[str, float]
    train_seconds: float
    run_id: str | None = None
    version: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def time_split(features: DataFrame, oot_months: int) -> tuple[DataFrame, DataFrame, list[str]]:
    """Matured, approved applications: (train, out-of-time test, the test months).

    The out-of-time window is the last ``oot_months`` application months that have
    matured labels; training uses only the months before it.
    """
    labelled = features.where("label_matured AND label IS NOT NULL AND status = 'approved'")
    months = sorted(r[0] for r in labelled.select("application_month").distinct().collect())
    if len(months) <= oot_months:
        raise ValueError(
            f"only {len(months)} months with matured labels; need more than RISK_OOT_MONTHS="
            f"{oot_months}. Generate a longer history (riskctl generate --months) or lower it."
        )
    test_months = months[-oot_months:]
    train = labelled.where(~F.col("application_month").isin(test_months))
    test = labelled.where(F.col("application_month").isin(test_months))
    return train, test, test_months


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


def log_transform() -> SQLTransformer:
    """``<c>__log`` = log1p of each of ``LOG_FEATURES`` (negatives floored at 0)."""
    cols = ", ".join(f"log1p(greatest(`{c}`, 0D)) AS `{c}__log`" for c in LOG_FEATURES)
    return SQLTransformer(statement=f"SELECT *, {cols} FROM __THIS__")


def preprocessing(scale: bool) -> list:
    """Impute numerics (median), one-hot categoricals (unseen levels kept), assemble;
    for the network also log-transform and standardize."""
    numeric = [f"{c}__log" if scale and c in LOG_FEATURES else c for c in NUMERIC_FEATURES]
    imputed = [f"{c}__imp" for c in NUMERIC_FEATURES]
    indexed = [f"{c}__idx" for c in CATEGORICAL_FEATURES]
    onehot = [f"{c}__ohe" for c in CATEGORICAL_FEATURES]
    stages = [
        Imputer(strategy="median", inputCols=numeric, outputCols=imputed),
        StringIndexer(
            inputCols=list(CATEGORICAL_FEATURES), outputCols=indexed, handleInvalid="keep"
        ),
        OneHotEncoder(inputCols=indexed, outputCols=onehot, handleInvalid="keep"),
        VectorAssembler(
            inputCols=imputed + onehot,
            outputCol="features_raw" if scale else "features",
            handleInvalid="keep",
        ),
    ]
    if scale:
        stages.insert(0, log_transform())
        stages.append(StandardScaler(inputCol="features_raw", outputCol="features", withMean=True))
    return stages


def fit_decision_tree(train: DataFrame, seed: int) -> tuple[PipelineModel, dict]:
    """A probability tree: variance impurity on the 0/1 default flag.

    For a 0/1 target the variance p(1-p) is half the Gini impurity, so the splits are a
    classification tree's, and each leaf predicts its bad rate: a calibrated PD. Spark's
    DecisionTreeClassifier prunes sibling leaves that predict the same class, which on a
    5-10% bad rate collapses the tree to its root (every leaf predicts "good").
    """
    params = {"maxDepth": 7, "minInstancesPerNode": 200, "minInfoGain": 0.0, "maxBins": 32}
    tree = DecisionTreeRegressor(
        labelCol="label", featuresCol="features", seed=seed, predictionCol="pd", **params
    )
    return Pipeline(stages=[*preprocessing(scale=False), tree]).fit(train), params


def fit_neural_network(
    train: DataFrame,
    seed: int,
    validation_months: int = 2,
    rounds: int = 12,
    step: int = 10,
    patience: int = 3,
) -> tuple[PipelineModel, dict]:
    """A small multilayer perceptron with early stopping on a validation window.

    Spark's MLP has no weight penalty, so it overfits a few thousand loans within tens
    of L-BFGS iterations. The last ``validation_months`` of the training window are held
    out; training continues ``step`` iterations at a time from the previous weights and
    keeps the weights with the best validation AUC, stopping after ``patience`` rounds
    without improvement.
    """
    months = sorted(r[0] for r in train.select("application_month").distinct().collect())
    valid_months = months[-validation_months:] if len(months) > validation_months else []
    fit_part = train.where(~F.col("application_month").isin(valid_months))
    valid_part = train.where(F.col("application_month").isin(valid_months))
    prep = Pipeline(stages=preprocessing(scale=True)).fit(fit_part)
    prepared = prep.transform(fit_part).select("features", "label").cache()
    held_out = prep.transform(valid_part).select("features", "label").cache()
    width = len(prepared.first()["features"])
    layers = [width, 8, 2]
    best, best_auc, best_iters, weights = None, -1.0, 0, None
    for round_no in range(1, rounds + 1):
        mlp = MultilayerPerceptronClassifier(
            labelCol="label", featuresCol="features", seed=seed, layers=layers, maxIter=step
        )
        if weights is not None:
            mlp.setInitialWeights(weights)
        model = mlp.fit(prepared)
        weights = model.weights
        if held_out.isEmpty():
            best, best_iters = model, round_no * step
            continue
        rows = positive_probability(model.transform(held_out)).select("pd", "label").toPandas()
        score = metrics.auc(rows["pd"].to_numpy(), rows["label"].to_numpy().astype(int))
        if score > best_auc:
            best, best_auc, best_iters = model, score, round_no * step
        elif round_no * step - best_iters >= patience * step:
            break
    prepared.unpersist()
    held_out.unpersist()
    params = {
        "layers": layers,
        "solver": "l-bfgs",
        "iterations": best_iters,
        "validation_months": ",".join(valid_months),
        "validation_auc": round(best_auc, 6),
    }
    return PipelineModel(stages=[*prep.stages, best]), params


FITTERS = {"decision_tree": fit_decision_tree, "neural_network": fit_neural_network}


def positive_probability(predictions: DataFrame) -> DataFrame:
    """Ensure ``pd``: a classifier's class-1 ``probability`` (never ``rawPrediction``), or
    the probability tree's own ``pd`` prediction, clipped to [0, 1]."""
    if "probability" in predictions.columns:
        return predictions.withColumn("pd", vector_to_array("probability")[1])
    return predictions.withColumn("pd", F.least(F.greatest(F.col("pd"), F.lit(0.0)), F.lit(1.0)))


def evaluate(model: PipelineModel, df: DataFrame) -> dict[str, float]:
    """AUC, KS and Gini of ``model`` on ``df`` (from probabilities), with counts."""
    rows = positive_probability(model.transform(df)).select("pd", "label").toPandas()
    scores, labels = rows["pd"].to_numpy(), rows["label"].to_numpy().astype(int)
    return {
        "auc": metrics.auc(scores, labels),
        "ks": metrics.ks(scores, labels),
        "gini": metrics.gini(scores, labels),
        "rows": float(len(labels)),
        "bad_rate": float(np.mean(labels)),
    }


def train(
    features: DataFrame, settings: Settings, seed: int = 42, kinds: tuple[str, ...] = MODEL_KINDS
) -> tuple[list[TrainedModel], list[str]]:
    """Fit each model kind on the training window and evaluate it out of time."""
    train_df, test_df, test_months = time_split(features, settings.oot_months)
    train_df = train_df.cache()
    test_df = test_df.cache()
    trained = []
    for kind in kinds:
        started = time.perf_counter()
        model, params = FITTERS[kind](
            train_df.withColumn("label", F.col("label").cast("double")), seed
        )
        seconds = time.perf_counter() - started
        result = {f"train_{k}": v for k, v in evaluate(model, train_df).items()}
        result.update({f"oot_{k}": v for k, v in evaluate(model, test_df).items()})
        trained.append(TrainedModel(kind, model, params, result, seconds))
    train_df.unpersist()
    test_df.unpersist()
    return trained, test_months


def log_and_register(
    trained: list[TrainedModel],
    settings: Settings,
    sample: DataFrame,
    lineage: dict[str, int | None],
    test_months: list[str],
    pipeline_run_id: str,
) -> TrainedModel | None:
    """Log each model to MLflow, register it, and move the aliases.

    The best model of this run by out-of-time AUC becomes ``champion`` if there is no
    champion yet or it beats the current one's out-of-time AUC; otherwise it is
    ``challenger``. Returns the model that holds ``champion`` after this call, if it is
    one of ``trained``.
    """
    import mlflow
    import mlflow.spark
    import pyspark
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(
            settings.mlflow_experiment, artifact_location=settings.mlflow_artifact_root
        )
    )
    example = sample.select(*NUMERIC_FEATURES, *CATEGORICAL_FEATURES).limit(5).toPandas()
    for tm in trained:
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"{tm.kind}-{pipeline_run_id}"
        ) as active:
            mlflow.log_params({k: str(v) for k, v in tm.params.items()})
            mlflow.log_params(
                {
                    "model_kind": tm.kind,
                    "oot_months": ",".join(test_months),
                    "performance_months": settings.performance_months,
                    "bad_dpd": settings.bad_dpd,
                }
            )
            mlflow.log_metrics({**tm.metrics, "train_seconds": tm.train_seconds})
            mlflow.log_dict(
                {"numeric": list(NUMERIC_FEATURES), "categorical": list(CATEGORICAL_FEATURES)},
                "features.json",
            )
            mlflow.set_tags(
                {
                    "pipeline_run_id": pipeline_run_id,
                    **{f"lineage.{k}": str(v) for k, v in lineage.items()},
                }
            )
            signature = infer_signature(example, np.zeros(len(example)))
            info = mlflow.spark.log_model(
                tm.model,
                artifact_path="model",
                registered_model_name=settings.registered_model,
                signature=signature,
                pip_requirements=[f"pyspark=={pyspark.__version__}"],
            )
            tm.run_id = active.info.run_id
            tm.version = str(info.registered_model_version)
            client.set_model_version_tag(
                settings.registered_model, tm.version, "model_kind", tm.kind
            )
            client.set_model_version_tag(
                settings.registered_model, tm.version, "oot_auc", f"{tm.metrics['oot_auc']:.6f}"
            )
    best = max(trained, key=lambda t: t.metrics["oot_auc"])
    current = champion_auc(client, settings.registered_model)
    winner = best if current is None or best.metrics["oot_auc"] > current else None
    for tm in trained:
        if tm is winner:
            client.set_registered_model_alias(settings.registered_model, CHAMPION, tm.version)
    if best is not winner:
        client.set_registered_model_alias(settings.registered_model, CHALLENGER, best.version)
    return winner


def champion_auc(client, name: str) -> float | None:
    """The out-of-time AUC recorded on the current champion version, if any."""
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except Exception:  # noqa: BLE001 - MLflow raises a generic error for a missing alias
        return None
    value = mv.tags.get("oot_auc")
    return float(value) if value is not None else None


def load_champion(settings: Settings) -> tuple[PipelineModel, str, str]:
    """The champion model, its registered name and version."""
    import mlflow
    import mlflow.spark
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(settings.registered_model, CHAMPION)
    except Exception as exc:  # noqa: BLE001
        raise RuntimeError(
            f"no '{CHAMPION}' version of registered model {settings.registered_model!r} in "
            f"{settings.mlflow_tracking_uri}: run `riskctl train` first"
        ) from exc
    model = mlflow.spark.load_model(f"models:/{settings.registered_model}@{CHAMPION}")
    return model, settings.registered_model, str(mv.version)
