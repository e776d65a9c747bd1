"""Collect tier: lending database (JDBC), file drops and the public web -> bronze.

Thin DAG file: it only builds the DAG. Each task is ``orchestration.airflow_task``: the
work runs in the Airflow worker or as a spark-submit job (RISK_AIRFLOW_TASK_MODE), and
Spark is imported only when a task runs, so parsing this file stays cheap.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, dag, task

from riskcontrol.orchestration import ASSET_URIS, airflow_task, announce_as_of, dag_dates, run_as_of

BRONZE = Asset(ASSET_URIS["bronze"])


@dag(
    dag_id="risk_collect",
    description="collect: lending DB extracts, file drops and public-web crawls into bronze",
    schedule="@daily",
    **dag_dates(),  # RISK_AIRFLOW_START_DATE, _END_DATE, _CATCHUP
    max_active_runs=1,
    tags=["riskcontrol", "collect"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "data-eng"},
)
def risk_collect():
    @task(outlets=[BRONZE])
    def bronze_landed(*steps: list[dict] | None, **context) -> dict:
        """Announce bronze once every source landed (one asset event, one analyze run),
        with the day this run ran as of. In spark-submit mode the tasks return no counts
        (they are in their logs)."""
        as_of = run_as_of("collect", context)
        announce_as_of(context["outlet_events"], [BRONZE], as_of)
        return {"steps": sum(len(s or []) for s in steps), "as_of": as_of}

    bronze_landed(
        airflow_task("collect_lending_db", "collect"),
        airflow_task("collect_file_drops", "collect"),
        airflow_task(
            "collect_public_web", "collect", retries=1, execution_timeout=timedelta(hours=2)
        ),
    )


risk_collect()
