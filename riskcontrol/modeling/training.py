"""Model training as one function: every configured kind fitted on the matured
applications, logged and registered in MLflow, and the champion rule applied."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import SparkSession

from riskcontrol.analyze import label_choice, labels
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    GOLD_APPLICATION_FEATURES,
    SILVER_APPLICATIONS,
    SILVER_BUREAU,
    SILVER_CUSTOMERS,
    SILVER_LOANS,
    SILVER_REPAYMENTS,
)
from riskcontrol.core.config import Settings
from riskcontrol.core.dates import as_of_date
from riskcontrol.core.redact import redact
from riskcontrol.core.runs import Run
from riskcontrol.modeling import models, plots, tracking

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


LINEAGE_TABLES = (
    GOLD_APPLICATION_FEATURES,
    SILVER_APPLICATIONS,
    SILVER_CUSTOMERS,
    SILVER_BUREAU,
    SILVER_LOANS,
    SILVER_REPAYMENTS,
)


@dataclass
class TrainResult:
    trained: list[models.TrainedModel]
    decision: tracking.PromotionDecision
    split: models.Split


def training_split(spark: SparkSession, settings: Settings) -> models.Split:
    """Matured, approved applications split into train / validation / out-of-time months."""
    features = lakehouse.read(spark, GOLD_APPLICATION_FEATURES, settings)
    return models.time_split(
        models.matured_applications(features), settings.valid_months, settings.oot_months
    )


def lineage(spark: SparkSession, settings: Settings) -> list[tracking.Lineage]:
    """The Delta version of every table a model learns from, as read now."""
    versions = lakehouse.table_versions(spark, list(LINEAGE_TABLES), settings)
    return [
        tracking.Lineage(t.full_name, t.path(settings), versions[t.full_name])
        for t in LINEAGE_TABLES
    ]


def run_train(run: Run, progress: Progress = _quiet, seed: int = 42) -> TrainResult:
    """Fit every configured model kind, log and register each, and apply the champion rule
    to the best of them (by validation AUC; the rule then compares out of time)."""
    spark, settings = run.spark, run.settings
    spec = models.application_spec(settings)
    split = training_split(spark, settings).cache()
    progress(
        f"train: {', '.join(settings.kinds)} on {split.windows} "
        f"(MLflow {redact(settings.mlflow_tracking_uri)})"
    )
    definition = labels.LabelDefinition.from_settings(settings)
    table = labels.exclusions(lakehouse.read(spark, GOLD_APPLICATION_FEATURES, settings))
    justification = label_choice.justify(
        lakehouse.read(spark, SILVER_REPAYMENTS, settings),
        as_of_date(spark, settings),
        definition,
    )
    progress(f"train: label {definition.describe()}")
    progress(f"train: depth: {justification['verdict']['depth']}")
    progress(f"train: window: {justification['verdict']['window']}")
    progress(
        "train: applications by label: "
        + ", ".join(
            f"{r['label_status']} {r['rows']:,}{'' if r['fitted'] else ' (not fitted)'}"
            for r in table
        )
    )
    try:
        trained = tracking.train_and_log(
            split,
            spec,
            settings,
            seed=seed,
            lineage=lineage(spark, settings),
            run_label=run.run_id,
            registered_model=settings.registered_model,
            tags={"pipeline_run_id": run.run_id},
            progress=progress,
            artifacts={
                "label/definition.json": definition.as_dict(),
                "label/exclusions.json": table,
                "label/justification.json": justification,
                "label/justification.png": plots.label_choice_plot(justification),
            },
        )
        # Chosen on validation; the out-of-time window then judges it against the champion.
        best = max(trained, key=lambda t: t.metrics["valid_auc"])
        tracking.set_challenger(settings, best.version)
        decision = tracking.promote(settings, split, challenger=best.version)
    finally:
        split.unpersist()
    verdict = "promoted to champion" if decision.promote else "stays challenger"
    progress(f"train: {best.kind} v{best.version} {verdict}: {decision.reason}")
    return TrainResult(trained, decision, split)
