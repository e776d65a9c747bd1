"""Collect tier: lending database (JDBC), file drops and the public web -> bronze.

Thin DAG file: it only builds the DAG. The work is ``riskcontrol.orchestration.run_task``,
imported inside each task so that parsing this file stays cheap.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

from riskcontrol.orchestration import ASSET_URIS

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
    @task
    def collect_lending_db(run_id=None) -> list[dict]:
        from riskcontrol.orchestration import run_task

        return run_task("collect_lending_db", run_id=f"airflow-collect-{run_id}")

    @task
    def collect_file_drops(run_id=None) -> list[dict]:
        from riskcontrol.orchestration import run_task

        return run_task("collect_file_drops", run_id=f"airflow-collect-{run_id}")

    @task(retries=1, execution_timeout=timedelta(hours=2))
    def collect_public_web(run_id=None) -> list[dict]:
        from riskcontrol.orchestration import run_task

        return run_task("collect_public_web", run_id=f"airflow-collect-{run_id}")

    @task(outlets=[BRONZE])
    def bronze_landed(*steps: list[dict]) -> dict:
        """Announce bronze once every source landed (one asset event, one analyze run)."""
        return {"steps": sum(len(s) for s in steps)}

    bronze_landed(collect_lending_db(), collect_file_drops(), collect_public_web())


risk_collect()
