"""Hyperparameter search with Optuna, each trial a nested MLflow run.

A trial fits the model on the training window and scores the validation window; the
out-of-time window is never seen by the search. Samplers:

* ``tpe`` (default): maximise validation AUC.
* ``nsga2``: Optuna's genetic NSGA-II on two objectives, validation AUC (up) and the
  train-minus-validation AUC gap (down, i.e. overfitting); the chosen trial is the one with
  the best validation AUC on the Pareto front.
* ``random``: a baseline to compare the other two against.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from riskcontrol.modeling import metrics
from riskcontrol.modeling.models import LABEL, FeatureSpec, Split, fit, predictions

SEARCH_SPACES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "decision_tree": lambda t: {
        "maxDepth": t.suggest_int("maxDepth", 3, 8),
        "minInstancesPerNode": t.suggest_int("minInstancesPerNode", 30, 400, log=True),
        "maxBins": 32,
    },
    "gbt": lambda t: {
        "maxIter": t.suggest_int("maxIter", 20, 80, step=10),
        "maxDepth": t.suggest_int("maxDepth", 2, 5),
        "stepSize": t.suggest_float("stepSize", 0.03, 0.3, log=True),
        "subsamplingRate": t.suggest_float("subsamplingRate", 0.6, 1.0),
        "minInstancesPerNode": t.suggest_int("minInstancesPerNode", 10, 200, log=True),
    },
    "neural_network": lambda t: {
        "hidden": t.suggest_int("hidden", 4, 32, log=True),
        "step": t.suggest_categorical("step", [5, 10, 20]),
        "rounds": 12,
        "patience": 3,
    },
    "logistic": lambda t: {
        "regParam": t.suggest_float("regParam", 1e-5, 1.0, log=True),
        "elasticNetParam": t.suggest_float("elasticNetParam", 0.0, 1.0),
        "maxIter": 100,
    },
    "scorecard": lambda t: {
        "max_bins": t.suggest_int("max_bins", 3, 10),
        "min_iv": t.suggest_float("min_iv", 0.005, 0.05, log=True),
    },
}


def sampler(name: str, seed: int, trials: int):
    """An Optuna sampler; NSGA-II's population is half the trials (2 to 50), so a short
    search still breeds at least one generation."""
    import optuna

    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=max(2, min(50, trials // 2))
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}: use tpe, nsga2 or random")


def validation_auc(model, split: Split, spec: FeatureSpec) -> tuple[float, float]:
    """(validation AUC, training AUC) of a fitted model."""
    out = []
    for df in (split.valid, split.train):
        frame = predictions(model, df, spec)
        out.append(metrics.auc(frame["pd"].to_numpy(), frame[LABEL].to_numpy()))
    return out[0], out[1]


def search(
    kind: str,
    split: Split,
    spec: FeatureSpec,
    trials: int,
    sampler_name: str,
    seed: int,
    bad_weight: float,
    progress: Callable[[str], None] = lambda _: None,
    seconds: float = 0.0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Search ``kind``'s hyperparameters; each trial is logged as a nested MLflow run of
    the active run. Returns the chosen parameters and every trial's record.

    The budget is ``trials`` trials, ``seconds`` of wall time, or whichever ends first
    when both are given (0 means no limit of that sort; one of them must be set). A trial
    under way when the time is up finishes."""
    if trials <= 0 and seconds <= 0:
        raise ValueError("a search needs a budget: trials or seconds")
    import mlflow
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    multi = sampler_name == "nsga2"
    study = optuna.create_study(
        directions=["maximize", "minimize"] if multi else ["maximize"],
        sampler=sampler(sampler_name, seed, trials),
        study_name=f"{kind}-search",
    )
    records: list[dict[str, Any]] = []
    parent = mlflow.active_run()

    def objective(trial):
        params = SEARCH_SPACES[kind](trial)
        with mlflow.start_run(
            experiment_id=parent.info.experiment_id,
            run_name=f"{kind}-trial-{trial.number}",
            nested=True,
        ) as run:
            model, fit_seconds = fit(kind, split, spec, params, seed, bad_weight)
            valid_auc, train_auc = validation_auc(model, split, spec)
            mlflow.log_params({k: str(v) for k, v in params.items()})
            mlflow.log_metrics(
                {
                    "valid_auc": valid_auc,
                    "train_auc": train_auc,
                    "overfit_gap": train_auc - valid_auc,
                    "train_seconds": fit_seconds,
                }
            )
            mlflow.set_tags({"trial": str(trial.number), "sampler": sampler_name})
        records.append(
            {
                "trial": trial.number,
                "run_id": run.info.run_id,
                "params": params,
                "valid_auc": valid_auc,
                "train_auc": train_auc,
                "seconds": fit_seconds,
            }
        )
        progress(
            f"    trial {trial.number + 1}{f'/{trials}' if trials > 0 else ''}: validation "
            f"AUC {valid_auc:.4f} (train {train_auc:.4f}, {fit_seconds:.1f}s)"
        )
        trial.set_user_attr("params", params)
        return (valid_auc, train_auc - valid_auc) if multi else valid_auc

    study.optimize(
        objective, n_trials=trials if trials > 0 else None, timeout=seconds if seconds > 0 else None
    )
    best = max(study.best_trials, key=lambda t: t.values[0]) if multi else study.best_trial
    return best.user_attrs["params"], records
