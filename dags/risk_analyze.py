"""Analyze tier: bronze -> silver -> gold features -> models in MLflow.

Runs when the collect DAG has updated bronze (Asset schedule).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

from riskcontrol.orchestration import ASSET_URIS

BRONZE = Asset(ASSET_URIS["bronze"])
SILVER = Asset(ASSET_URIS["silver"])
GOLD_FEATURES = Asset(ASSET_URIS["gold_features"])
CHAMPION = Asset(ASSET_URIS["champion_model"])


@dag(
    dag_id="risk_analyze",
    description="analyze: clean bronze into silver, resolve entities, build gold features and "
    "the feature store, check data quality, train models",
    schedule=[BRONZE],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["riskcontrol", "analyze"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "data-science"},
)
def risk_analyze():
    @task(outlets=[SILVER])
    def build_silver(run_id=None) -> list[dict]:
        from riskcontrol.orchestration import run_task

        return run_task("build_silver", run_id=f"airflow-analyze-{run_id}")

    @task
    def resolve_entities(run_id=None) -> list[dict]:
        from riskcontrol.orchestration import run_task

        return run_task("resolve_entities", run_id=f"airflow-analyze-{run_id}")

    @task
    def build_gold(run_id=None) -> list[dict]:
        from riskcontrol.orchestration import run_task

        return run_task("build_gold", run_id=f"airflow-analyze-{run_id}")

    @task
    def build_feature_store(run_id=None) -> list[dict]:
        from riskcontrol.orchestration import run_task

        return run_task("build_feature_store", run_id=f"airflow-analyze-{run_id}")

    @task(outlets=[GOLD_FEATURES])
    def check_quality(run_id=None) -> list[dict]:
        """Fails the run (and holds back training) on a breached critical expectation."""
        from riskcontrol.orchestration import run_task

        return run_task("check_quality", run_id=f"airflow-analyze-{run_id}")

    @task(outlets=[CHAMPION])
    def train_models(run_id=None) -> list[dict]:
        from riskcontrol.orchestration import run_task

        return run_task("train_models", run_id=f"airflow-analyze-{run_id}")

    silver = build_silver()
    checked = check_quality()
    silver >> resolve_entities() >> build_feature_store() >> build_gold() >> checked
    checked >> train_models()


risk_analyze()
