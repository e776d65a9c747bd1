"""Apply tier: cut-off policy, scoring, loan book, early warning and alerts, risk report.

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
BOOK = Asset(ASSET_URIS["loan_book_risk"])
INDICATORS = Asset(ASSET_URIS["warning_indicators"])


def _run(task_name: str, run_id: str | None) -> list[dict]:
    from riskcontrol.orchestration import run_task

    return run_task(task_name, run_id=f"airflow-apply-{run_id}")


@dag(
    dag_id="risk_apply",
    description="apply: cut-off policy, scoring, loan book risk, early warning and alerts, "
    "the risk report",
    schedule=[GOLD_FEATURES, CHAMPION],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["riskcontrol", "apply"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "risk"},
)
def risk_apply():
    @task
    def choose_cutoff(run_id=None) -> list[dict]:
        """Risk-cost sweep; a new active policy version only when the result changed."""
        return _run("choose_cutoff", run_id)

    @task(outlets=[SCORED])
    def score_applications(run_id=None) -> list[dict]:
        return _run("score_applications", run_id)

    @task(outlets=[BOOK])
    def loan_book_risk(run_id=None) -> list[dict]:
        return _run("loan_book_risk", run_id)

    @task(outlets=[INDICATORS])
    def early_warning(run_id=None) -> list[dict]:
        """Indicators, alerts and notifications; fails (and retries) if a notifier failed."""
        return _run("early_warning", run_id)

    @task
    def risk_report(run_id=None) -> list[dict]:
        return _run("risk_report", run_id)

    book = loan_book_risk()
    choose_cutoff() >> score_applications() >> book
    book >> early_warning() >> risk_report()


risk_apply()
