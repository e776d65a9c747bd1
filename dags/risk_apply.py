"""Apply tier: cut-off policy, scoring, loan book, early warning and alerts, risk report.

Runs when the analyze DAG has produced new gold features and a model (Asset schedule).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, dag

from riskcontrol.orchestration import ASSET_URIS, airflow_task, dag_dates

GOLD_FEATURES = Asset(ASSET_URIS["gold_features"])
CHAMPION = Asset(ASSET_URIS["champion_model"])
SCORED = Asset(ASSET_URIS["scored_applications"])
BOOK = Asset(ASSET_URIS["loan_book_risk"])
INDICATORS = Asset(ASSET_URIS["warning_indicators"])


@dag(
    dag_id="risk_apply",
    description="apply: cut-off policy, scoring, loan book risk, early warning and alerts, "
    "the risk report",
    schedule=[GOLD_FEATURES, CHAMPION],
    start_date=dag_dates()["start_date"],
    catchup=False,
    max_active_runs=1,
    tags=["riskcontrol", "apply"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "risk"},
)
def risk_apply():
    cutoff = airflow_task(
        "choose_cutoff",
        "apply",
        "Risk-cost sweep; a new active policy version only when the result changed.",
    )
    scored = airflow_task("score_applications", "apply", outlets=[SCORED])
    book = airflow_task("loan_book_risk", "apply", outlets=[BOOK])
    warning = airflow_task(
        "early_warning",
        "apply",
        "Indicators, alerts and notifications; fails (and retries) if a notifier failed.",
        outlets=[INDICATORS],
    )
    cutoff >> scored >> book >> warning >> airflow_task("risk_report", "apply")


risk_apply()
