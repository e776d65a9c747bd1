"""The three Airflow DAGs build a book of their own with `dag.test()`: collect -> analyze ->
apply on a freshly generated lakehouse; then a second collect and apply change nothing.

This book is also the one the privacy tests scan and erase from. It runs beside
test_end_to_end.py's book (`riskctl run`) on the other pytest worker (see conftest's
ordering of the slow modules).
"""

from __future__ import annotations

import hmac
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEST_BRONZE_KEY, TEST_PII_KEY, free_port
from pyspark.sql import functions as F

from riskcontrol import cli, lakehouse
from riskcontrol.catalog import (
    BRONZE_CUSTOMERS,
    GOLD_ALERTS,
    GOLD_CUTOFF_POLICY,
    GOLD_LOAN_BOOK_RISK,
    GOLD_SCORED_APPLICATIONS,
    GOLD_WARNING_INDICATORS,
    OPS_MANIFEST,
    OPS_QUARANTINE,
)
from riskcontrol.config import PROJECT_ROOT, get_settings

pytestmark = pytest.mark.slow

CUSTOMERS = 1500
SEED = 5
DAG_IDS = ("risk_collect", "risk_analyze", "risk_apply")


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """An Airflow home with a migrated SQLite metadata DB (env set before airflow loads)."""
    home = tmp_path_factory.mktemp("airflow")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    if "airflow" in sys.modules:
        pytest.fail("airflow was imported before its test environment was set")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
            check=True,
            capture_output=True,
            env={**os.environ, **env},
        )
        yield home


@pytest.fixture(scope="module")
def dagbag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(PROJECT_ROOT / "dags"))


@pytest.fixture(scope="module")
def dag_book(tmp_path_factory, spark, dagbag):
    """A generated book taken through the three DAGs in order, as the scheduler would."""
    from airflow.utils.state import DagRunState

    home = tmp_path_factory.mktemp("dag-book")
    env = {
        "RISK_HOME": str(home),
        "RISK_SITE_PORT": str(free_port()),
        "RISK_PII_KEY": TEST_PII_KEY,
        "RISK_BRONZE_KEY": TEST_BRONZE_KEY,
        "RISK_SPARK_SHUFFLE_PARTITIONS": "2",
        # test_models and test_evaluate fit every kind; the book here needs one champion.
        "RISK_MODEL_KINDS": "scorecard",
        "RISK_WARNING_LOOKBACK_DAYS": "90",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        get_settings.cache_clear()
        assert cli.main(["generate", "--customers", str(CUSTOMERS), "--seed", str(SEED)]) == 0
        settings = get_settings()
        generation = json.loads((settings.data_dir / "generation.json").read_text())
        for dag_id in DAG_IDS:
            dag_run = dagbag.dags[dag_id].test()
            assert dag_run.state == DagRunState.SUCCESS, dag_id
        yield settings, generation
    get_settings.cache_clear()


def _read(spark, table, settings):
    return lakehouse.read(spark, table, settings)


def test_dagbag_imports_three_linked_dags(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == set(DAG_IDS)
    for dag in dagbag.dags.values():
        assert "riskcontrol" in dag.tags
        assert all(t.retries >= 1 for t in dag.tasks), dag.dag_id
    produced = {o.uri for t in dagbag.dags["risk_collect"].tasks for o in t.outlets}
    assert produced == {"riskcontrol://lakehouse/bronze"}
    analyze_outlets = {o.uri for t in dagbag.dags["risk_analyze"].tasks for o in t.outlets}
    assert "riskcontrol://lakehouse/gold/application_features" in analyze_outlets
    apply_dag = dagbag.dags["risk_apply"]
    order = [t.task_id for t in apply_dag.topological_sort()]
    assert order == [
        "choose_cutoff",
        "score_applications",
        "loan_book_risk",
        "early_warning",
        "risk_report",
    ]


def test_the_dags_build_the_whole_book(spark, dag_book):
    settings, generation = dag_book
    pending = generation["applications_by_status"]["pending"]
    scored = _read(spark, GOLD_SCORED_APPLICATIONS, settings)
    assert scored.count() == pending
    # The analyze DAG trained the scorecard, the only model, so it is the champion.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(settings.registered_model, "champion")
    assert (champion.version, champion.tags["model_kind"]) == ("1", "scorecard")
    # The apply DAG chose and activated cut-off policy v1, and scoring decided with it.
    policy = _read(spark, GOLD_CUTOFF_POLICY, settings)
    (chosen,) = policy.where("chosen").collect()
    assert (chosen.policy_version, chosen.status, chosen.area) == (1, "active", 3)
    assert {r[0] for r in scored.select("policy_version").distinct().collect()} == {"1"}
    wrong = scored.where(
        (F.col("decision") == "reject") != (F.col("pd") >= F.lit(chosen.cutoff_pd))
    ).count()
    assert wrong == 0
    assert _read(spark, GOLD_LOAN_BOOK_RISK, settings).count() > 0
    assert _read(spark, GOLD_WARNING_INDICATORS, settings).count() > 0
    assert list(settings.reports_dir.glob("risk_report_*.html"))
    for r in _read(spark, OPS_MANIFEST, settings).collect():
        assert r.rows_in == r.rows_out + r.rows_unchanged + r.rows_quarantined, r


def test_collect_and_apply_again_change_nothing(spark, dag_book, dagbag):
    from airflow.utils.state import DagRunState

    settings, generation = dag_book
    bronze_before = _read(spark, BRONZE_CUSTOMERS, settings).count()
    quarantined_before = _read(spark, OPS_QUARANTINE, settings).count()
    book_before = _read(spark, GOLD_LOAN_BOOK_RISK, settings).count()
    alerts_before = sorted(r.alert_id for r in _read(spark, GOLD_ALERTS, settings).collect())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RISK_HOME", str(settings.home))
        mp.setenv("RISK_PII_KEY", TEST_PII_KEY)
        mp.setenv("RISK_BRONZE_KEY", TEST_BRONZE_KEY)
        mp.setenv("RISK_SITE_PORT", str(settings.site_port))
        get_settings.cache_clear()
        for dag_id in ("risk_collect", "risk_apply"):
            assert dagbag.dags[dag_id].test().state == DagRunState.SUCCESS, dag_id
    get_settings.cache_clear()
    collect_runs = (
        _read(spark, OPS_MANIFEST, settings)
        .where(F.col("run_id").startswith("airflow-collect-") & (F.col("stage") == "collect"))
        .groupBy("run_id")
        .agg(F.sum("rows_out").alias("out"), F.count("*").alias("steps"))
        .orderBy("run_id")
        .collect()
    )
    assert len(collect_runs) == 2 and [r.steps for r in collect_runs] == [12, 12]
    assert collect_runs[0].out > 0 and collect_runs[1].out == 0
    assert _read(spark, BRONZE_CUSTOMERS, settings).count() == bronze_before
    assert _read(spark, OPS_QUARANTINE, settings).count() == quarantined_before
    # The policy did not change, so no new version; scoring and the book replace.
    versions = {
        r[0]
        for r in _read(spark, GOLD_CUTOFF_POLICY, settings)
        .select("policy_version")
        .distinct()
        .collect()
    }
    assert versions == {1}
    assert (
        _read(spark, GOLD_SCORED_APPLICATIONS, settings).count()
        == generation["applications_by_status"]["pending"]
    )
    assert _read(spark, GOLD_LOAN_BOOK_RISK, settings).count() == book_before
    assert sorted(r.alert_id for r in _read(spark, GOLD_ALERTS, settings).collect()) == (
        alerts_before
    )


# --- privacy: nothing in clear, and erasure (last: it changes the lakehouse) ----------
def _site_truth(settings) -> list[dict]:
    """The generated site's records of epoch 1 (the one the collect DAG crawls)."""
    lines = (settings.site_dir / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["epoch_added"] == 1]


def _identifiers(settings) -> set[str]:
    """Every clear identifier of the run: customers' IDs, phones, names; court subjects'."""
    with sqlite3.connect(settings.data_dir / "lending.db") as db:
        rows = db.execute("SELECT national_id, mobile, name FROM customers").fetchall()
    needles = {v for row in rows for v in row if v and len(v) >= 2}
    for r in _site_truth(settings):
        if r["kind"] == "court" and r["subject_type"] == "person":
            needles |= {r["subject_name"], r["id_number"]}
    return needles


def test_scanner_finds_planted_identifiers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from lakescan import scan

    pq.write_table(pa.table({"n": ["x张三丰y"]}), tmp_path / "part-0.snappy.parquet")
    (tmp_path / "_delta_log").mkdir()
    stats = json.dumps({"minValues": {"id": "11010519491231002X"}})
    (tmp_path / "_delta_log" / "0.json").write_text(
        json.dumps({"add": {"stats": stats, "name": "\u674e\u56db"}}) + "\n"
    )
    found = scan(tmp_path, {"张三丰", "11010519491231002X", "李四", "王五"})
    assert found == {
        "张三丰": ["part-0.snappy.parquet"],
        "11010519491231002X": ["_delta_log/0.json"],
        "李四": ["_delta_log/0.json"],
    }


def test_no_clear_identifier_survives_anywhere_under_the_lakehouse(dag_book):
    from lakescan import files_scanned, scan

    settings, _ = dag_book
    needles = _identifiers(settings)
    assert len(needles) > 2.5 * CUSTOMERS  # IDs, phones and names (some names are shared)
    root = Path(settings.lakehouse_root)
    assert files_scanned(root) > 500
    assert scan(root, needles) == {}


def test_erase_removes_a_customer_everywhere_history_included(spark, dag_book):
    """Runs last in this module: it changes the lakehouse the other tests read."""
    import pyarrow.parquet as pq

    from riskcontrol.catalog import (
        BRONZE_REPAYMENTS,
        OPS_ERASURES,
        SILVER_ENTITY_LINKS,
        SILVER_REPAYMENTS,
    )

    settings, _ = dag_book
    linked = (
        _read(spark, SILVER_ENTITY_LINKS, settings)
        .where("entity_type = 'customer'")
        .select("customer_id")
        .distinct()
        .orderBy("customer_id")
        .first()
    )
    assert linked is not None, "the generated site names customers: ER must link some"
    cid = linked.customer_id
    with sqlite3.connect(settings.data_dir / "lending.db") as db:
        n_apps, n_loans, n_lines = db.execute(
            "SELECT (SELECT count(*) FROM applications WHERE customer_id = ?),"
            " (SELECT count(*) FROM loans WHERE customer_id = ?),"
            " (SELECT count(*) FROM repayments r JOIN loans l USING (loan_id)"
            "  WHERE l.customer_id = ?)",
            (cid, cid, cid),
        ).fetchone()
    assert cli.main(["erase", "--customer", cid, "--requested-by", "dpo", "--reason", "t"]) == 0
    (audit,) = _read(spark, OPS_ERASURES, settings).collect()
    deleted = json.loads(audit.tables)
    assert deleted["bronze.customers"] == 1 and deleted["silver.customers"] == 1
    assert deleted["bronze.applications"] == n_apps and deleted["bronze.loans"] == n_loans
    assert deleted[BRONZE_REPAYMENTS.full_name] == n_lines
    assert deleted[SILVER_REPAYMENTS.full_name] == n_lines
    assert deleted["silver.entity_links"] >= 1
    assert audit.rows_deleted == sum(deleted.values())
    assert audit.subject_ref == hmac.new(TEST_PII_KEY.encode(), cid.encode(), "sha256").hexdigest()
    assert cid not in (audit.tables + audit.reason + audit.requested_by)
    # Nothing left in any data file of any table, old versions included (vacuumed).
    root = Path(settings.lakehouse_root)
    holding = [
        str(p.relative_to(root))
        for p in root.rglob("*.parquet")
        if "_delta_log" not in p.parts
        and cid in json.dumps(pq.read_table(p).to_pylist(), ensure_ascii=False, default=str)
    ]
    assert holding == []
    with pytest.raises(Exception, match="(?i)not found|does not exist|FileNotFound|vacuum"):
        # (collect, not count: Delta answers a count from the log without reading files)
        spark.read.format("delta").option("versionAsOf", 0).load(
            BRONZE_CUSTOMERS.path(settings)
        ).select("customer_id").collect()
    assert cli.main(["erase", "--customer", cid]) == 2  # gone: a clear error, no second audit
