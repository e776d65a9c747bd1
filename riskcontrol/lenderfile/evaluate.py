"""`riskctl evaluate-dataset`: the pipeline's models on any lender's own loan file.

The file goes through the same bronze -> silver path as the lending system's data
(``riskcontrol.lenderfile.prepare``: provenance, type inference, quarantine with reasons),
then every model kind is trained, judged and logged to MLflow exactly as ``riskctl train`` does
(``riskcontrol.modeling.tracking``), with an out-of-time split when the file has a date column and
a stratified one otherwise. The JSON report says what was read, used and quarantined
(and reconciles them), and each model's test AUC, KS and Gini with its MLflow run.

A file with fewer usable rows than ``RISK_CV_MAX_ROWS`` is also cross-validated
(``riskcontrol.modeling.crossval``): each kind's mean and standard deviation over repeated
stratified folds, and whether its gap to the best kind is within noise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from riskcontrol.core import lakehouse
from riskcontrol.core.config import Settings
from riskcontrol.lenderfile import prepare
from riskcontrol.modeling import crossval, models, tracking

EXPERIMENT = "evaluate-dataset"


def _quiet(_: str) -> None:
    pass


def evaluate_dataset(
    spark: SparkSession,
    settings: Settings,
    path: str,
    target: str,
    bad_values: list[str],
    drop: list[str] | None = None,
    time_col: str | None = None,
    seed: int = 42,
    progress: Callable[[str], None] = _quiet,
    pii_columns: list[str] | None = None,
    not_pii: list[str] | None = None,
    allow_pii_features: list[str] | None = None,
    cv: str = "auto",
    cleaned: prepare.CleanedDataset | None = None,
    outcome_months: int = 0,
) -> dict[str, Any]:
    """Clean ``path``, train every configured model kind on it, and return the report.

    ``outcome_months`` (with ``time_col``): rows dated within that many months of the
    file's latest date have not had the time to show their outcome (a loan issued last
    month is "Current", so it would count as good); they are left out of every window
    and counted as immature (``maturity``).

    Columns identifying a person (``pii_detect``; ``pii_columns``/``not_pii`` override)
    are encrypted in bronze and never features unless named in ``allow_pii_features``.
    ``cv``: ``auto`` cross-validates below ``settings.cv_max_rows`` usable rows,
    ``always`` and ``never`` say so. ``cleaned``: the file already landed by
    ``prepare.land`` with the same arguments (it is then not landed again)."""
    if cv not in CV_MODES:
        raise ValueError(f"cv={cv!r}: use one of {', '.join(CV_MODES)}")
    if outcome_months and not time_col:
        raise ValueError("--outcome-months needs --time-col: the date the outcome runs from")
    if outcome_months < 0:
        raise ValueError(f"--outcome-months must be 0 (every row) or more, got {outcome_months}")
    started = time.perf_counter()
    if cleaned is None:
        cleaned = land(
            spark,
            settings,
            path,
            target,
            bad_values,
            drop,
            time_col,
            progress,
            pii_columns,
            not_pii,
            allow_pii_features,
        )
    counts = cleaned.counts()
    landed = time.perf_counter() - started
    spec = feature_spec(cleaned, path)
    data, maturity = mature_rows(cleaned.data, outcome_months)
    progress(f"evaluate-dataset: {maturity['note']}")
    split = split_of(data, time_col, seed).cache()
    progress(f"evaluate-dataset: {split.method} split {split.windows}")
    trained = tracking.train_and_log(
        split,
        spec,
        settings,
        seed=seed,
        lineage=lineage(spark, settings, cleaned),
        run_label=prepare.dataset_slug(path),
        registered_model=None,
        experiment=EXPERIMENT,
        tags={"dataset": str(path), "target": target},
        progress=progress,
    )
    split.unpersist()
    trained_at = time.perf_counter()
    validation = None
    if cv == "always" or (cv == "auto" and counts.rows_used < settings.cv_max_rows):
        validation = cross_validate(data, spec, trained, settings, seed, progress)
    seconds = {
        "land": landed,
        "train": trained_at - started - landed,
        **({"cross_validation": time.perf_counter() - trained_at} if validation else {}),
        "total": time.perf_counter() - started,
    }
    return report(
        path,
        target,
        bad_values,
        time_col,
        cleaned,
        counts,
        split,
        trained,
        seconds,
        validation,
        maturity,
    )


def mature_rows(data: DataFrame, outcome_months: int) -> tuple[DataFrame, dict[str, Any]]:
    """``data`` less the rows dated after its latest ``event_date`` minus
    ``outcome_months`` months, and what was left out: the cut date and the count of
    rows after it, counted by the filter itself (0 months: every row is kept)."""
    if not outcome_months:
        return data, {
            "outcome_months": 0,
            "mature_through": None,
            "rows_immature": 0,
            "note": "every dated row used (pass --outcome-months N if the latest N months' "
            "outcomes are still open)",
        }
    latest = data.agg(F.max("event_date")).first()[0]
    if latest is None:
        raise ValueError("no row has a parsed --time-col date: nothing to measure maturity from")
    cut = data.select(F.add_months(F.lit(latest), -outcome_months)).first()[0]
    # A row without a date stays as it was (the split places it); only a later date is cut.
    marked = data.withColumn(
        "_mature", F.col("event_date").isNull() | (F.col("event_date") <= F.lit(cut))
    )
    tally = marked.groupBy("_mature").count().collect()
    immature = sum(r["count"] for r in tally if r["_mature"] is False)
    return marked.where("_mature").drop("_mature"), {
        "outcome_months": outcome_months,
        "mature_through": cut.isoformat(),
        "rows_immature": immature,
        "note": f"{immature:,} rows dated after {cut.isoformat()} left out: their outcome has "
        f"not had {outcome_months} months to show",
    }


def land(
    spark: SparkSession,
    settings: Settings,
    path: str,
    target: str,
    bad_values: list[str],
    drop: list[str] | None = None,
    time_col: str | None = None,
    progress: Callable[[str], None] = _quiet,
    pii_columns: list[str] | None = None,
    not_pii: list[str] | None = None,
    allow_pii_features: list[str] | None = None,
) -> prepare.CleanedDataset:
    """The file through bronze -> silver, as evaluate-dataset lands it."""
    progress(f"evaluate-dataset: landing {path} (bronze -> silver)")
    return prepare.land(
        spark,
        settings,
        path,
        target,
        bad_values,
        drop=drop or [],
        time_col=time_col,
        progress=lambda m: progress(f"  {m}"),
        pii_columns=pii_columns or (),
        not_pii=not_pii or (),
        allow_pii_features=allow_pii_features or (),
    )


def feature_spec(cleaned: prepare.CleanedDataset, path: str) -> models.FeatureSpec:
    """The landed file's features; an error naming every column's kind if none is usable."""
    spec = models.FeatureSpec(
        tuple(cleaned.numeric), tuple(cleaned.categorical), month="event_month"
    )
    if not spec.columns:
        raise ValueError(
            f"no usable feature columns in {path}: "
            + "; ".join(f"{p.name}: {p.kind} ({p.reason})" for p in cleaned.profiles)
        )
    return spec


def split_of(data: DataFrame, time_col: str | None, seed: int) -> models.Split:
    """Out of time by the date column when there is one, else stratified by the target
    (the same rows for the same seed)."""
    if time_col:
        return models.date_split(data, "event_date")
    return models.stratified_split(data, seed=seed)


def cross_validate(data, spec, trained, settings: Settings, seed: int, progress) -> dict[str, Any]:
    """Every trained kind, with the parameters it was trained with, on repeated stratified
    folds; the fold scores go to each kind's MLflow run as ``cv_*`` metrics."""
    folds, repeats = settings.cv_folds, settings.cv_repeats
    progress(
        f"evaluate-dataset: cross-validating {len(trained)} kinds, {repeats} x {folds} folds "
        f"(fewer than {settings.cv_max_rows:,} rows: one test set is too small to rank models)"
    )
    # A fitter may note what it chose in its parameters (the network its layers): drop those.
    chosen = {
        tm.kind: {k: v for k, v in tm.params.items() if k in models.DEFAULT_PARAMS[tm.kind]}
        for tm in trained
    }
    results = crossval.cross_validate(
        data,
        spec,
        [tm.kind for tm in trained],
        chosen,
        folds=folds,
        repeats=repeats,
        seed=seed,
        class_weight=settings.class_weight,
        progress=progress,
    )
    client = tracking.client(settings)
    for tm in trained:
        for name, value in results[tm.kind].summary().items():
            client.log_metric(tm.run_id, name, value)
    return {
        "folds": folds,
        "repeats": repeats,
        "method": "repeated stratified k-fold; test fold, next fold validation, rest training",
        "noise_test": "Nadeau-Bengio corrected resampled t-test, within noise when p >= 0.05",
        "by_kind": {
            kind: {m: round(v, 6) for m, v in r.summary().items()} for kind, r in results.items()
        },
        **crossval.compare(results, folds),
    }


def lineage(spark: SparkSession, settings: Settings, cleaned) -> list[tracking.Lineage]:
    """The bronze and silver tables the dataset was landed in, at the versions read."""
    out = []
    for layer, name in cleaned.tables.items():
        table = prepare.dataset_table(layer, name.split(".dataset_", 1)[1], cleaned.data.schema)
        out.append(
            tracking.Lineage(name, table.path(settings), lakehouse.version(spark, table, settings))
        )
    return out


CV_MODES = ("auto", "always", "never")


def report(
    path,
    target,
    bad_values,
    time_col,
    cleaned,
    counts,
    split,
    trained,
    seconds,
    validation=None,
    maturity=None,
) -> dict[str, Any]:
    """The evaluate-dataset report: counts that reconcile, features, models, run ids."""
    quarantined = dict(sorted(counts.quarantined.items()))
    m = trained[0].metrics if trained else {}
    bads = sum(m.get(f"{w}_bads", 0) for w in ("train", "valid", "oot"))
    rows = sum(m.get(f"{w}_rows", 0) for w in ("train", "valid", "oot"))
    return {
        "file": str(path),
        "target": target,
        "bad_values": list(bad_values),
        "time_col": time_col,
        "rows_read": counts.rows_read,
        "rows_used": counts.rows_used,
        "rows_quarantined": counts.rows_quarantined,
        "quarantined_by_reason": quarantined,
        "reconciles": counts.rows_read == counts.rows_used + counts.rows_quarantined,
        # of the rows used, those too recent for their outcome to show (not modelled)
        "maturity": {k: v for k, v in (maturity or {}).items() if k != "note"} or None,
        "unparsed_values": {k: v for k, v in sorted(counts.unparsed.items()) if v},
        "bad_rate": round(bads / rows, 6) if rows else None,
        "features": {
            "numeric": list(cleaned.numeric),
            "categorical": list(cleaned.categorical),
            "not_used": {
                p.name: f"{p.kind}: {p.reason}"
                for p in cleaned.profiles
                if p.feature is None and p.kind != "target"
            },
        },
        "split": {"method": split.method, **split.windows},
        "models": {
            tm.kind: {
                "test_auc": round(tm.metrics["oot_auc"], 6),
                "test_ks": round(tm.metrics["oot_ks"], 6),
                "test_gini": round(tm.metrics["oot_gini"], 6),
                "test_brier": round(tm.metrics["oot_brier"], 6),
                "valid_auc": round(tm.metrics["valid_auc"], 6),
                "train_rows": int(tm.metrics["train_rows"]),
                "test_rows": int(tm.metrics["oot_rows"]),
                "train_seconds": round(tm.train_seconds, 1),
                "mlflow_run_id": tm.run_id,
                **(
                    {
                        "cv_auc_mean": validation["by_kind"][tm.kind]["cv_auc_mean"],
                        "cv_auc_sd": validation["by_kind"][tm.kind]["cv_auc_sd"],
                    }
                    if validation
                    else {}
                ),
            }
            for tm in trained
        },
        "cross_validation": validation,
        "mlflow_experiment": EXPERIMENT,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def write_report(report_: dict[str, Any], out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report_, indent=2) + "\n", encoding="utf-8")
    return out
