"""Apply tier: score pending applications with the champion model.

Runs when the analyze DAG has produced new gold features and a model (Asset schedule).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

from riskcontrol.orchestration import ASSET_URIS

GOLD_FEATURES = Asset(ASSET_URIS["gold_features"])
CHAMPION = Asset(ASSET_URIS["champion_model"])
SCORED = Asset(ASSET_URIS["scored_applications"])


@dag(
    dag_id="risk_apply",
    description="apply: score new applications into gold.scored_applications",
    schedule=[GOLD_FEATURES, CHAMPION],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["riskcontrol", "apply"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "risk"},
)
def risk_apply():
    @task(outlets=[SCORED])
    def score_applications(run_id=None) -> list[dict]:
        from riskcontrol.orchestration import run_task

        return run_task("score_applications", run_id=f"airflow-apply-{run_id}")

    score_applications()


risk_apply()
