"""Analyze tier: bronze -> silver -> gold features -> models in MLflow.

Runs when the collect DAG has updated bronze (Asset schedule).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, dag

from riskcontrol.orchestration import ASSET_URIS, airflow_task, dag_dates

BRONZE = Asset(ASSET_URIS["bronze"])
SILVER = Asset(ASSET_URIS["silver"])
GOLD_FEATURES = Asset(ASSET_URIS["gold_features"])
CHAMPION = Asset(ASSET_URIS["champion_model"])


@dag(
    dag_id="risk_analyze",
    description="analyze: clean bronze into silver, resolve entities, build gold features and "
    "the feature store, check data quality, train models",
    schedule=[BRONZE],
    start_date=dag_dates()["start_date"],
    catchup=False,
    max_active_runs=1,
    tags=["riskcontrol", "analyze"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "data-science"},
)
def risk_analyze():
    silver = airflow_task("build_silver", "analyze", outlets=[SILVER])
    checked = airflow_task(
        "check_quality",
        "analyze",
        "Fails the run (and holds back training) on a breached critical expectation.",
        outlets=[GOLD_FEATURES],
    )
    resolve = airflow_task("resolve_entities", "analyze")
    features = airflow_task("build_feature_store", "analyze")
    gold = airflow_task("build_gold", "analyze")
    silver >> resolve >> features >> gold >> checked
    checked >> airflow_task("train_models", "analyze", outlets=[CHAMPION])


risk_analyze()
