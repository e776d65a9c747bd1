"""What the Airflow DAGs and the spark-submit jobs call: one function per task.

This module imports only the standard library at the top, so DAG files can import it
cheaply while the scheduler parses them; Spark and the pipeline load inside the task.
Each task returns plain dicts (JSON-serializable for XCom).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

# the run's day, for the DAG files (re-exported)
from riskcontrol.orchestration.asof import (  # noqa: F401
    AS_OF_EXTRA,
    DATED_TIER,
    announce_as_of,
    run_as_of,
)

# Assets link the three DAGs: collect produces bronze, analyze consumes it and
# produces gold features and a model, apply consumes those.
ASSET_URIS = {
    "bronze": "riskcontrol://lakehouse/bronze",
    "silver": "riskcontrol://lakehouse/silver",
    "gold_features": "riskcontrol://lakehouse/gold/application_features",
    "champion_model": "riskcontrol://mlflow/application_pd/champion",
    "scored_applications": "riskcontrol://lakehouse/gold/scored_applications",
    "loan_book_risk": "riskcontrol://lakehouse/gold/loan_book_risk",
    "warning_indicators": "riskcontrol://lakehouse/gold/warning_indicators",
}

TASKS = (
    "collect_lending_db",
    "collect_file_drops",
    "collect_public_web",
    "build_silver",
    "resolve_entities",
    "build_feature_store",
    "build_gold",
    "check_quality",
    "train_models",
    "choose_cutoff",
    "score_applications",
    "loan_book_risk",
    "early_warning",
    "risk_report",
)
APPLY_TASKS = (
    "choose_cutoff",
    "score_applications",
    "loan_book_risk",
    "early_warning",
    "risk_report",
)

# The tasks of each tier's spark-submit job (jobs/<tier>.py), in the order they run.
TIERS = {
    "collect": TASKS[: TASKS.index("build_silver")],
    "analyze": TASKS[TASKS.index("build_silver") : TASKS.index("choose_cutoff")],
    "apply": APPLY_TASKS,
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _counts(steps) -> list[dict[str, Any]]:
    return [{k: _jsonable(v) for k, v in dataclasses.asdict(s).items()} for s in steps]


def task_functions() -> dict[str, Callable[[Any], list[dict[str, Any]]]]:
    """Each task name -> the library function that runs it on a ``Run``.

    The imports are here, not at the top, so that parsing a DAG file does not load Spark.
    """
    from riskcontrol.analyze.pipeline import (
        run_features,
        run_gold,
        run_quality,
        run_resolve,
        run_silver,
    )
    from riskcontrol.apply import pipeline as apply
    from riskcontrol.collect.pipeline import (
        run_collect_file_drops,
        run_collect_lending_db,
        run_collect_public_web,
    )
    from riskcontrol.modeling.training import run_train

    def features(run) -> list[dict[str, Any]]:
        return [{"table": k, "rows": v} for k, v in run_features(run).items()]

    def quality(run) -> list[dict[str, Any]]:
        return [
            {"table": r.table, "expectation": r.expectation, "status": r.status}
            for r in run_quality(run)
        ]

    def train(run) -> list[dict[str, Any]]:
        result = run_train(run)
        return [
            {
                "kind": t.kind,
                "version": t.version,
                "run_id": t.run_id,
                "oot_auc": t.metrics["oot_auc"],
                "oot_ks": t.metrics["oot_ks"],
                "promoted": t.version == result.decision.challenger_version
                and result.decision.promote,
            }
            for t in result.trained
        ]

    def cutoff(run) -> list[dict[str, Any]]:
        result = apply.run_cutoff(run, keep_when_infeasible=True)
        chosen = result.chosen
        if chosen is None:  # no cut-off met the tolerance: the policy in force stays
            return [{"policy_version": None, "created": False, "note": result.note}]
        return [
            {
                "policy_version": result.version,
                "created": result.created,
                "cutoff_pd": float(chosen["cutoff_pd"]),
                "area": int(chosen["area"]),
                "approval_rate": float(chosen["approval_rate"]),
            }
        ]

    def warn(run) -> list[dict[str, Any]]:
        result = apply.run_warning(run)
        if result.failures:
            raise RuntimeError(f"alert notifications failed: {result.failures}")
        return [
            *_counts([result.counts]),
            {"breaches": result.breaches, "alerts": [a["alert_id"] for a in result.alerts]},
        ]

    def report(run) -> list[dict[str, Any]]:
        html, pdf = apply.run_report(run)
        return [{"html": str(html), "pdf": str(pdf) if pdf else None}]

    def counted(stage):
        return lambda run: _counts(stage(run))

    return {
        "collect_lending_db": counted(run_collect_lending_db),
        "collect_file_drops": counted(run_collect_file_drops),
        "collect_public_web": counted(run_collect_public_web),
        "build_silver": counted(run_silver),
        "resolve_entities": counted(run_resolve),
        "build_gold": counted(run_gold),
        "build_feature_store": features,
        "check_quality": quality,
        "train_models": train,
        "choose_cutoff": cutoff,
        "score_applications": counted(lambda r: [apply.run_score(r)]),
        "loan_book_risk": counted(lambda r: [apply.run_book(r)]),
        "early_warning": warn,
        "risk_report": report,
    }


def task_mode() -> str:
    """RISK_AIRFLOW_TASK_MODE: ``in_process`` or ``spark_submit``."""
    from riskcontrol.core.config import get_settings

    return get_settings().airflow_task_mode


def dag_dates() -> dict[str, Any]:
    """The ``start_date``, ``end_date`` and ``catchup`` of the time-scheduled DAG (UTC
    days), from RISK_AIRFLOW_START_DATE, RISK_AIRFLOW_END_DATE, RISK_AIRFLOW_CATCHUP."""
    import pendulum

    from riskcontrol.core.config import get_settings

    settings = get_settings()

    def utc(day: dt.date | None):
        return None if day is None else pendulum.datetime(day.year, day.month, day.day, tz="UTC")

    return {
        "start_date": utc(settings.airflow_start_date),
        "end_date": utc(settings.airflow_end_date),
        "catchup": settings.airflow_catchup,
    }


def airflow_task(name: str, tier: str, doc: str | None = None, **task_kwargs: Any):
    """The Airflow task of the DAG ``risk_<tier>`` that runs pipeline task ``name``.

    In process (the default, one machine): a TaskFlow task that runs it in the Airflow
    worker, with a Spark driver there; it returns the step counts (XCom). In spark-submit
    mode: the Spark provider's operator submitting ``jobs/<tier>.py`` for this one task
    to RISK_SPARK_MASTER; the worker only waits for it. ``task_kwargs`` (outlets,
    retries, timeouts) apply to either. Either way the result is the task's XComArg:
    a TaskFlow task downstream is handed the task's return value (None from a job),
    never the operator.
    """
    if task_mode() == "spark_submit":
        from riskcontrol.orchestration.airflow_submit import PipelineSubmitOperator

        return PipelineSubmitOperator(
            task_id=name, tier=tier, task_name=name, doc_md=doc, **task_kwargs
        ).output
    from airflow.sdk import task

    outlets = list(task_kwargs.get("outlets") or [])

    def run(**context: Any) -> list[dict[str, Any]]:
        as_of = run_as_of(tier, context)
        steps = run_task(name, run_id=f"airflow-{tier}-{context['run_id']}", as_of=as_of)
        announce_as_of(context.get("outlet_events"), outlets, as_of)
        return steps

    run.__name__ = run.__qualname__ = name
    run.__doc__ = doc
    return task(task_id=name, **task_kwargs)(run)()


def run_task(
    task: str, run_id: str | None = None, as_of: str | dt.date | None = None
) -> list[dict[str, Any]]:
    """Run one named task of the pipeline in this process; returns its step counts.

    ``as_of`` (a day, e.g. the Airflow run's) overrides RISK_AS_OF for this task."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    function = task_functions()[task]
    from riskcontrol.core.config import ensure_local_secrets, get_settings
    from riskcontrol.core.runs import Run
    from riskcontrol.core.spark import get_spark, private_data

    private_data()  # an Airflow worker's umask is 022: files of this task are 0600
    ensure_local_secrets()
    settings = get_settings()
    if as_of is not None:
        settings = settings.model_copy(update={"as_of": dt.date.fromisoformat(str(as_of))})
    private_data(settings)
    return function(Run(get_spark(settings), settings, run_id=run_id))


def job_main(tasks: tuple[str, ...], argv: list[str]) -> int:
    """Entry point of a spark-submit job (``jobs/*.py``): run ``tasks``, print their counts.

    ``argv[1]``, if given, is the run id recorded in ``ops.manifest``; further arguments
    name a subset of ``tasks`` to run (e.g. only ``score_applications``).
    """
    import json

    run_id = argv[1] if len(argv) > 1 else None
    if len(argv) > 2:
        unknown = [t for t in argv[2:] if t not in tasks]
        if unknown:
            raise SystemExit(f"unknown task(s) {unknown}; this job runs {', '.join(tasks)}")
        tasks = tuple(t for t in tasks if t in argv[2:])
    for task in tasks:
        print(json.dumps({"task": task, "steps": run_task(task, run_id=run_id)}, default=str))
    return 0
