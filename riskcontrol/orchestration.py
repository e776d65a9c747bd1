"""What the Airflow DAGs and the spark-submit jobs call: one function per task.

This module imports only the standard library at the top, so DAG files can import it
cheaply while the scheduler parses them; Spark and the pipeline load inside the task.
Each task returns plain dicts (JSON-serializable for XCom).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

# Assets link the three DAGs: collect produces bronze, analyze consumes it and
# produces gold features and a model, apply consumes those.
ASSET_URIS = {
    "bronze": "riskcontrol://lakehouse/bronze",
    "silver": "riskcontrol://lakehouse/silver",
    "gold_features": "riskcontrol://lakehouse/gold/application_features",
    "champion_model": "riskcontrol://mlflow/application_pd/champion",
    "scored_applications": "riskcontrol://lakehouse/gold/scored_applications",
}

TASKS = (
    "collect_lending_db",
    "collect_file_drops",
    "collect_public_web",
    "build_silver",
    "resolve_entities",
    "build_gold",
    "build_feature_store",
    "check_quality",
    "train_models",
    "score_applications",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _counts(steps) -> list[dict[str, Any]]:
    return [{k: _jsonable(v) for k, v in dataclasses.asdict(s).items()} for s in steps]


def run_task(task: str, run_id: str | None = None) -> list[dict[str, Any]]:
    """Run one named task of the pipeline in this process; returns its step counts."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    from riskcontrol import pipeline
    from riskcontrol.config import ensure_local_secrets, get_settings
    from riskcontrol.ops import Run
    from riskcontrol.spark import get_spark

    ensure_local_secrets()
    settings = get_settings()
    run = Run(get_spark(settings), settings, run_id=run_id)
    if task == "build_feature_store":
        return [{"table": k, "rows": v} for k, v in pipeline.run_features(run).items()]
    if task == "check_quality":
        return [
            {"table": r.table, "expectation": r.expectation, "status": r.status}
            for r in pipeline.run_quality(run)
        ]
    if task == "train_models":
        result = pipeline.run_train(run)
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
    stages = {
        "collect_lending_db": pipeline.run_collect_lending_db,
        "collect_file_drops": pipeline.run_collect_file_drops,
        "collect_public_web": pipeline.run_collect_public_web,
        "build_silver": pipeline.run_silver,
        "resolve_entities": pipeline.run_resolve,
        "build_gold": pipeline.run_gold,
        "score_applications": lambda r: [pipeline.run_score(r)],
    }
    return _counts(stages[task](run))


def job_main(tasks: tuple[str, ...], argv: list[str]) -> int:
    """Entry point of a spark-submit job (``jobs/*.py``): run ``tasks``, print their counts.

    ``argv[1]``, if given, is the run id recorded in ``ops.manifest``.
    """
    import json

    run_id = argv[1] if len(argv) > 1 else None
    for task in tasks:
        print(json.dumps({"task": task, "steps": run_task(task, run_id=run_id)}, default=str))
    return 0
