"""Collect tier: lending database (JDBC), file drops and the public web -> bronze.

Thin DAG file: it only builds the DAG. Each task is ``orchestration.airflow_task``: the
work runs in the Airflow worker or as a spark-submit job (RISK_AIRFLOW_TASK_MODE), and
Spark is imported only when a task runs, so parsing this file stays cheap.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

from riskcontrol.orchestration import ASSET_URIS, airflow_task

BRONZE = Asset(ASSET_URIS["bronze"])


@dag(
    dag_id="risk_collect",
    description="collect: lending DB extracts, file drops and public-web crawls into bronze",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["riskcontrol", "collect"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "data-eng"},
)
def risk_collect():
    @task(outlets=[BRONZE])
    def bronze_landed(*steps: list[dict] | None) -> dict:
        """Announce bronze once every source landed (one asset event, one analyze run).
        In spark-submit mode the tasks return no counts (they are in their logs)."""
        return {"steps": sum(len(s or []) for s in steps)}

    bronze_landed(
        airflow_task("collect_lending_db", "collect"),
        airflow_task("collect_file_drops", "collect"),
        airflow_task(
            "collect_public_web", "collect", retries=1, execution_timeout=timedelta(hours=2)
        ),
    )


risk_collect()
