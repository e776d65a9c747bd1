"""MLflow: every training run logged, models registered, champion/challenger aliases.

One run per model kind holds: parameters, metrics per window, the Delta versions of its
training tables (lineage, as MLflow dataset inputs and ``lineage.*`` parameters), the
feature list, plots, evaluation tables, the model with its signature and an input
example, and (for a search) the Optuna trials as nested runs. One registered model per
use (``application_pd``); the best model of a training run takes the ``challenger``
alias, and ``champion`` moves to it only when it beats the current champion on the same
out-of-time rows by the configured margin, the gain is beyond noise (DeLong's test) and
its PDs pass a calibration test (Hosmer-Lemeshow). The decision is logged either way.
Scoring always loads ``champion``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

import riskcontrol
from riskcontrol.core.config import Settings
from riskcontrol.core.redact import redact
from riskcontrol.modeling import metrics, models, plots, tuning
from riskcontrol.modeling.models import (
    CHALLENGER,
    CHAMPION,
    LABEL,
    FeatureSpec,
    Split,
    TrainedModel,
)
from riskcontrol.modeling.scale import ScoreScale

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def client(settings: Settings):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    return MlflowClient()


def client_for_active():
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def experiment_id(settings: Settings, name: str | None = None) -> str:
    """The experiment's id, created (with the configured artifact root) on first use."""
    c = client(settings)
    name = name or settings.mlflow_experiment
    found = c.get_experiment_by_name(name)
    if found:
        return found.experiment_id
    return c.create_experiment(name, artifact_location=settings.mlflow_artifact_root)


@dataclass(frozen=True)
class Lineage:
    """A training table and the Delta version that was read."""

    table: str
    path: str
    version: int | None


def synthetic_example(df: DataFrame) -> DataFrame:
    """One made-up row with ``df``'s schema: zero for numbers, a placeholder for text,
    the epoch for dates; no value comes from the data."""
    import datetime as dt

    from pyspark.sql import types as T

    def value(t: T.DataType):
        if isinstance(t, T.BooleanType):
            return False
        if isinstance(t, T.IntegralType):
            return 0
        if isinstance(t, T.FractionalType):
            return 0.0
        if isinstance(t, T.TimestampType | T.TimestampNTZType):
            return dt.datetime(1970, 1, 1)
        if isinstance(t, T.DateType):
            return dt.date(1970, 1, 1)
        if isinstance(t, T.StringType):
            return "example"
        return None

    row = tuple(value(f.dataType) for f in df.schema.fields)
    return df.sparkSession.createDataFrame([row], df.schema)


def log_lineage(lineage: list[Lineage]) -> None:
    """Training tables and versions as parameters and as MLflow dataset inputs (Delta
    sources with their versions; no profile, so nothing re-reads the tables)."""
    import mlflow
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    mlflow.log_params({f"lineage.{x.table}": str(x.version) for x in lineage})
    for x in lineage:
        if x.version is None:
            continue
        source = DeltaDatasetSource(path=x.path, delta_table_version=x.version)
        dataset = MetaDataset(source, name=x.table, digest=f"v{x.version}")
        mlflow.log_input(dataset, context="training")


def log_plots(tm: TrainedModel) -> None:
    import mlflow

    ev = tm.evaluation
    curves = {
        name: (frame["pd"].to_numpy(), frame[LABEL].to_numpy()) for name, frame in ev.scores.items()
    }
    oot = ev.scores["oot"]
    figures = {
        "roc.png": plots.roc_plot(curves),
        "ks_oot.png": plots.ks_plot(
            oot["pd"].to_numpy(), oot[LABEL].to_numpy(), title=f"KS, out-of-time: {tm.kind}"
        ),
        "calibration_oot.png": plots.calibration_plot(ev.calibration),
        "score_distribution.png": plots.score_distribution_plot(
            {"train": ev.scores["train"]["pd"].to_numpy(), "out-of-time": oot["pd"].to_numpy()},
            psi=ev.metrics["psi_train_oot"],
        ),
        "importance.png": plots.importance_plot(
            models.primary_importance(tm.importance), title=f"Feature importance: {tm.kind}"
        ),
    }
    if ev.auc_by_month:
        figures["auc_by_month.png"] = plots.auc_by_month_plot(ev.auc_by_month)
    for name, fig in figures.items():
        mlflow.log_figure(fig, f"plots/{name}")
        fig.clear()


def log_model_artifacts(tm: TrainedModel, split: Split, spec: FeatureSpec) -> None:
    """What a reader of this kind of model needs beyond the metrics."""
    import mlflow

    card = getattr(tm.model, "scorecard", None)
    if card is not None:
        mlflow.log_text(card.points_table().to_csv(index=False), "scorecard/points_table.csv")
        mlflow.log_text(card.sql_expression() + "\n", "scorecard/score.sql")
        mlflow.log_dict(card.to_dict(), "scorecard/scorecard.json")
    stage = models.tree_stage(tm.model)
    if stage is not None:
        mlflow.log_text(stage.toDebugString, "explain/trees.txt")
    if tm.kind in models.OCCLUSION_KINDS:
        mlflow.log_dict(models.reference_values(split.train, spec), "explain/reference.json")


def log_training_run(
    tm: TrainedModel,
    split: Split,
    spec: FeatureSpec,
    example: Any,
    registered_model: str | None,
    extra: dict[str, Any],
) -> None:
    """Log one trained model into the active run (and register it if a name is given)."""
    import mlflow
    import mlflow.spark
    import pyspark
    from mlflow.models import infer_signature

    mlflow.log_params({k: str(v) for k, v in tm.params.items()})
    mlflow.log_params(
        {
            "model_kind": tm.kind,
            "split_method": split.method,
            **{f"window.{k}": v for k, v in split.windows.items()},
            "bad_weight": round(tm.bad_weight, 6),
            "cutoff_pd": tm.evaluation.cutoff,
            **{k: str(v) for k, v in extra.items()},
        }
    )
    mlflow.log_metrics(tm.metrics)
    calibration = getattr(tm.model, "calibration", None)
    if calibration is not None:
        mlflow.log_params({f"calibration.{k}": v for k, v in calibration.items()})
    mlflow.log_dict(spec.as_dict(), "features.json")
    for name, table in tm.evaluation.tables().items():
        mlflow.log_dict(table, f"evaluation/{name}")
    mlflow.log_dict(tm.importance, "explain/importance.json")
    log_plots(tm)
    log_model_artifacts(tm, split, spec)
    # The logged example is made up from the columns' types, never rows of the book: an
    # MLflow artifact is read by everyone with access to the experiment.
    example = synthetic_example(example)
    output = tm.model.transform(example).select("pd").toPandas()
    example_pdf = example.toPandas()
    info = mlflow.spark.log_model(
        tm.model,
        artifact_path="model",
        registered_model_name=registered_model,
        signature=infer_signature(example_pdf, output),
        input_example=example_pdf,
        pip_requirements=[f"pyspark=={pyspark.__version__}"],
        # The pipeline's Python stages (ProbabilityOfDefault) load from this code.
        code_paths=[str(Path(riskcontrol.__file__).parent)],
    )
    tm.run_id = mlflow.active_run().info.run_id
    if registered_model:
        version = info.registered_model_version
        if version is None:  # saved straight to a remote artifact root: look it up
            found = client_for_active().search_model_versions(
                f"name='{registered_model}' and run_id='{tm.run_id}'"
            )
            version = max(int(v.version) for v in found)
        tm.version = str(version)


def train_and_log(
    split: Split,
    spec: FeatureSpec,
    settings: Settings,
    *,
    seed: int,
    lineage: list[Lineage],
    run_label: str,
    registered_model: str | None,
    experiment: str | None = None,
    tags: dict[str, str] | None = None,
    kinds: tuple[str, ...] | None = None,
    example: DataFrame | None = None,
    progress: Progress = _quiet,
    params: dict[str, dict[str, Any]] | None = None,
    artifacts: dict[str, Any] | None = None,
) -> list[TrainedModel]:
    """Search (if configured), fit, evaluate, explain and log each model kind; each kind is
    one MLflow run with its trials nested in it. Registers versions when a name is given.
    ``params``: hyperparameters per kind, over its defaults for the training rows
    (``models.default_params``; no search for such a kind). ``artifacts``: JSON documents
    and figures logged with every kind's run, by artifact path (the label definition,
    its exclusions table and its justification)."""
    import mlflow

    c = client(settings)
    exp = experiment_id(settings, experiment)
    kinds = kinds or settings.kinds
    example = example if example is not None else split.oot.select(*spec.columns)
    counts = split.check_classes()
    train_rows = sum(counts["train"])
    cutoff = settings.reject_from_pd
    scale = ScoreScale.from_settings(settings)
    bad_weight = models.balanced_weight(split.train, settings.class_weight)
    trained = []
    for kind in kinds:
        with mlflow.start_run(experiment_id=exp, run_name=f"{kind}-{run_label}"):
            mlflow.set_tags({"model_kind": kind, **(tags or {})})
            log_lineage(lineage)
            for name, document in (artifacts or {}).items():
                if isinstance(document, Figure):
                    mlflow.log_figure(document, name)
                else:
                    mlflow.log_dict(document, name)
            given = (params or {}).get(kind)
            chosen, trials = {**models.default_params(kind, train_rows), **(given or {})}, 0
            if given is None and (settings.tune_trials > 0 or settings.tune_seconds > 0):
                budget = " and ".join(
                    b
                    for b in (
                        f"{settings.tune_trials} trials" if settings.tune_trials > 0 else "",
                        f"{settings.tune_seconds:g}s" if settings.tune_seconds > 0 else "",
                    )
                    if b
                )
                progress(f"  {kind}: Optuna search, {budget} ({settings.tune_sampler})")
                chosen, records = tuning.search(
                    kind,
                    split,
                    spec,
                    settings.tune_trials,
                    settings.tune_sampler,
                    seed,
                    bad_weight,
                    progress,
                    seconds=settings.tune_seconds,
                )
                mlflow.log_dict(records, "tuning/trials.json")
                trials = len(records)
            progress(f"  {kind}: fitting on {split.windows}")
            tm = models.train_kind(kind, split, spec, chosen, seed, bad_weight, cutoff, scale)
            tm.trials = trials
            log_training_run(
                tm,
                split,
                spec,
                example,
                registered_model,
                {
                    "seed": seed,
                    "tune_trials": trials,
                    "tune_seconds": settings.tune_seconds,
                    "tune_sampler": settings.tune_sampler,
                },
            )
            m = tm.metrics
            progress(
                f"  {kind}: out-of-time AUC {m['oot_auc']:.4f} KS {m['oot_ks']:.4f} "
                f"Gini {m['oot_gini']:.4f} Brier {m['oot_brier']:.4f} "
                f"({tm.train_seconds:.1f}s to fit)"
            )
        if registered_model:
            for key, value in {
                "model_kind": kind,
                "run_label": run_label,
                "oot_auc": f"{m['oot_auc']:.6f}",
                "oot_ks": f"{m['oot_ks']:.6f}",
                "oot_window": split.windows.get("oot", ""),
            }.items():
                c.set_model_version_tag(registered_model, tm.version, key, value)
        trained.append(tm)
    return trained


# --- champion / challenger --------------------------------------------------------------
@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    challenger_version: str
    champion_version: str | None
    challenger_auc: float
    champion_auc: float | None
    margin: float
    reason: str
    decided_at: float = 0.0
    p_value: float | None = None  # DeLong, one-sided: the challenger ranks better
    calibration_p: float | None = None  # Hosmer-Lemeshow of the challenger's PDs
    alpha: float = 0.05
    calibration_alpha: float = 0.01


def decide(
    challenger_version: str,
    challenger_auc: float,
    champion_version: str | None,
    champion_auc: float | None,
    margin: float,
    *,
    p_value: float | None = None,
    calibration_p: float | None = None,
    alpha: float = 0.05,
    calibration_alpha: float = 0.01,
) -> PromotionDecision:
    """The champion rule. Promote when there is no champion; otherwise only when all hold
    on the same out-of-time rows:

    * the challenger's AUC beats the champion's by at least ``margin``;
    * the gain is beyond noise: DeLong's one-sided ``p_value`` is below ``alpha`` (a gain
      of 0.005 on a few thousand rows is well inside an AUC's standard error of ~0.02);
    * its PDs are calibrated: the Hosmer-Lemeshow ``calibration_p`` is at least
      ``calibration_alpha`` (a model that ranks better but prices risk wrongly would move
      every cut-off and expected loss with it).

    ``None`` for a test means it was not measured, and it does not block."""
    calibrated = calibration_p is None or calibration_p >= calibration_alpha
    calibration = (
        ""
        if calibration_p is None
        else f"; its PDs {'pass' if calibrated else 'fail'} the calibration test "
        f"(Hosmer-Lemeshow p {calibration_p:.4f} {'>=' if calibrated else '<'} "
        f"{calibration_alpha:g})"
    )
    if champion_version is None or champion_auc is None:
        promote, reason = True, "no champion yet"
        if not calibrated:
            reason += calibration + ", but there is nothing to compare it with"
    elif champion_version == challenger_version:
        promote, reason = False, "the challenger already is the champion"
    else:
        gain = round(challenger_auc - champion_auc, 10)
        beats = gain >= margin
        significant = p_value is None or p_value < alpha
        promote = beats and significant and calibrated
        verb = "beats" if beats else "does not beat"
        reason = (
            f"out-of-time AUC {challenger_auc:.4f} {verb} the champion's {champion_auc:.4f} "
            f"by the margin {margin:.4f} (difference {gain:+.4f})"
        )
        if p_value is not None:
            reason += (
                f"; the gain is {'beyond' if significant else 'within'} noise "
                f"(DeLong p {p_value:.4f} {'<' if significant else '>='} {alpha:g})"
            )
        reason += calibration
    return PromotionDecision(
        promote,
        challenger_version,
        champion_version,
        challenger_auc,
        champion_auc,
        margin,
        reason,
        time.time(),
        p_value,
        calibration_p,
        alpha,
        calibration_alpha,
    )


@dataclass(frozen=True)
class Comparison:
    """Two models on the same rows: what the champion rule reads."""

    challenger_auc: float
    champion_auc: float | None
    p_value: float | None  # DeLong, one-sided: the challenger ranks better
    calibration_p: float  # Hosmer-Lemeshow of the challenger's PDs on these rows
    rows: int


def paired_scores(scorers: dict[str, PipelineModel], df: DataFrame) -> pd.DataFrame:
    """Every model's ``pd`` on the same rows, aligned row by row: a column per name, and
    ``label``. The rows are numbered and frozen first, so the models cannot see them in
    different orders."""
    from pyspark.sql import functions as F

    rows = df.withColumn("_row", F.monotonically_increasing_id()).localCheckpoint(eager=True)
    frame = rows.select("_row", F.col(LABEL).cast("int").alias(LABEL)).toPandas()
    frame = frame.set_index("_row")
    for name, model in scorers.items():
        scored = model.transform(rows).select("_row", F.col("pd").alias(name)).toPandas()
        frame = frame.join(scored.set_index("_row"), how="left")
    return frame.sort_index().reset_index(drop=True)


def compare(challenger: PipelineModel, champion: PipelineModel | None, df: DataFrame) -> Comparison:
    """The challenger (and the champion, if any) on the same rows of ``df``: both AUCs,
    DeLong's p of the challenger ranking better, and the Hosmer-Lemeshow p of the
    challenger's PDs (new rows: one degree of freedom per bin)."""
    scorers = {"challenger": challenger, **({"champion": champion} if champion else {})}
    frame = paired_scores(scorers, df)
    labels = frame[LABEL].to_numpy()
    mine = frame["challenger"].to_numpy()
    calibration_p = metrics.hosmer_lemeshow(mine, labels)["p_value"]
    if champion is None:
        return Comparison(metrics.auc(mine, labels), None, None, calibration_p, len(frame))
    test = metrics.delong(frame["champion"].to_numpy(), mine, labels)
    return Comparison(test["auc_b"], test["auc_a"], test["p_value"], calibration_p, len(frame))


def missing(exc: Exception) -> bool:
    """Is ``exc`` MLflow saying "no such model or alias" (rather than a failure)?"""
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) and exc.error_code in (
        "RESOURCE_DOES_NOT_EXIST",
        "INVALID_PARAMETER_VALUE",
        "NOT_FOUND",
    )


def alias_version(settings: Settings, alias: str) -> str | None:
    """The version holding ``alias``, None if there is none (registry errors propagate)."""
    try:
        return str(
            client(settings).get_model_version_by_alias(settings.registered_model, alias).version
        )
    except Exception as exc:
        if missing(exc):
            return None
        raise


def load_version(settings: Settings, version: str) -> PipelineModel:
    import mlflow.spark

    client(settings)
    return mlflow.spark.load_model(f"models:/{settings.registered_model}/{version}")


def promote(
    settings: Settings,
    split: Split,
    challenger: str | None = None,
    force: bool = False,
    progress: Progress = _quiet,
) -> PromotionDecision:
    """Apply the champion rule to ``challenger`` (default: the ``challenger`` alias):
    score it and the champion on the same out-of-time rows (``compare``), decide, and log
    the decision with its tests."""
    c = client(settings)
    name = settings.registered_model
    challenger = challenger or alias_version(settings, CHALLENGER)
    if challenger is None:
        raise RuntimeError(
            f"registered model {name!r} has no '{CHALLENGER}' version: run `riskctl train`, "
            "or name one with `riskctl promote --version N`"
        )
    champion = alias_version(settings, CHAMPION)
    rival = champion if champion is not None and champion != challenger else None
    progress(
        f"promote: scoring v{challenger}"
        + (f" and champion v{rival}" if rival else "")
        + " on the same out-of-time rows"
    )
    judged = compare(
        load_version(settings, challenger),
        load_version(settings, rival) if rival else None,
        split.oot,
    )
    decision = decide(
        challenger,
        judged.challenger_auc,
        champion,
        judged.challenger_auc if champion == challenger else judged.champion_auc,
        settings.promotion_margin,
        p_value=judged.p_value,
        calibration_p=judged.calibration_p,
        alpha=settings.promotion_alpha,
        calibration_alpha=settings.calibration_alpha,
    )
    if force and not decision.promote:
        decision = replace(
            decision, promote=True, reason=f"forced by the operator ({decision.reason})"
        )
    if decision.promote and champion != challenger:
        c.set_registered_model_alias(name, CHAMPION, challenger)
        if alias_version(settings, CHALLENGER) == challenger:
            c.delete_registered_model_alias(name, CHALLENGER)
    record = {**asdict(decision), "oot_window": split.windows.get("oot"), "oot_rows": judged.rows}
    run_id = c.get_model_version(name, challenger).run_id
    c.log_dict(run_id, record, f"promotion/decision-{int(decision.decided_at)}.json")
    c.set_model_version_tag(name, challenger, "promotion", json.dumps(record))
    c.set_registered_model_tag(name, "last_promotion", json.dumps(record))
    return decision


def make_champion(settings: Settings, version: str, reason: str) -> str | None:
    """Move the champion alias to ``version`` by a human decision (an approved policy),
    recorded with ``reason`` on the version as the promotion rule's decisions are;
    returns the version that held the alias before (None if none did)."""
    c = client(settings)
    name = settings.registered_model
    before = alias_version(settings, CHAMPION)
    c.get_model_version(name, version)  # an unknown version fails here, before any change
    c.set_registered_model_alias(name, CHAMPION, version)
    record = {"champion": version, "previous": before, "reason": reason, "at": time.time()}
    c.set_model_version_tag(name, version, "promotion", json.dumps(record))
    c.set_registered_model_tag(name, "last_promotion", json.dumps(record))
    return before


def set_challenger(settings: Settings, version: str) -> None:
    client(settings).set_registered_model_alias(settings.registered_model, CHALLENGER, version)


def list_versions(settings: Settings) -> list[dict[str, Any]]:
    """Every registered version: kind, aliases, out-of-time metrics, fit time, run."""
    c = client(settings)
    name = settings.registered_model
    try:
        registered = c.get_registered_model(name)
    except Exception as exc:
        if missing(exc):
            return []
        raise
    aliases: dict[str, list[str]] = {}
    for alias, version in (registered.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for mv in c.search_model_versions(f"name='{name}'"):
        run = c.get_run(mv.run_id).data.metrics if mv.run_id else {}
        rows.append(
            {
                "version": int(mv.version),
                "kind": mv.tags.get("model_kind", "?"),
                "aliases": sorted(aliases.get(str(mv.version), [])),
                "oot_auc": run.get("oot_auc"),
                "oot_ks": run.get("oot_ks"),
                "oot_gini": run.get("oot_gini"),
                "valid_auc": run.get("valid_auc"),
                "psi_train_oot": run.get("psi_train_oot"),
                "train_seconds": run.get("train_seconds"),
                "created": mv.creation_timestamp,
                "run_id": mv.run_id,
            }
        )
    return sorted(rows, key=lambda r: r["version"])


@dataclass
class Champion:
    """A registered model ready to score: what it is, and what explaining it needs."""

    model: PipelineModel
    name: str
    version: str
    kind: str
    run_id: str
    reference: dict[str, Any] | None = None
    spec: FeatureSpec = models.APPLICATION_SPEC


def load_champion(settings: Settings) -> Champion:
    """The model holding the ``champion`` alias, with its kind (for reason codes)."""
    return load_alias(settings, CHAMPION)


def load_alias(settings: Settings, alias: str) -> Champion:
    """The model holding ``alias`` (``champion``, ``challenger``), ready to score."""
    import mlflow.spark

    c = client(settings)
    try:
        mv = c.get_model_version_by_alias(settings.registered_model, alias)
    except Exception as exc:
        if not missing(exc):
            raise
        raise RuntimeError(
            f"no '{alias}' version of registered model {settings.registered_model!r} in "
            f"{redact(settings.mlflow_tracking_uri)}: run `riskctl train` first"
        ) from exc
    import mlflow.artifacts

    model = mlflow.spark.load_model(f"models:/{settings.registered_model}/{mv.version}")
    kind = mv.tags.get("model_kind", "")
    reference = None
    if kind in models.OCCLUSION_KINDS:
        reference = mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/explain/reference.json")
    # The features it was trained on, and those it may never give as a reason.
    spec = models.FeatureSpec.from_dict(
        mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/features.json")
    )
    return Champion(
        model, settings.registered_model, str(mv.version), kind, mv.run_id, reference, spec
    )
