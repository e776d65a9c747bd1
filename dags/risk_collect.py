"""Collect tier: lending database (JDBC) and file drops -> bronze Delta tables.

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
    description="collect: lending DB extracts and file drops into bronze, with provenance",
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

    @task(outlets=[BRONZE])
    def collect_file_drops(run_id=None) -> list[dict]:
        from riskcontrol.orchestration import run_task

        return run_task("collect_file_drops", run_id=f"airflow-collect-{run_id}")

    collect_lending_db() >> collect_file_drops()


risk_collect()
