"""Airflow's own scheduler runs the three DAGs end to end: collect -> analyze -> apply.

Not ``dag.test()``: a fresh Airflow home (SQLite) with ``airflow scheduler`` (LocalExecutor,
one task at a time), ``airflow dag-processor`` and ``airflow api-server`` (whose Execution
API the tasks talk to) in subprocesses. ``risk_collect``'s calendar is set to one past
day alone, the day the book ends, with catch-up, as a backfill of that day: unpaused, the
scheduler runs it; the Assets its last task emits start ``risk_analyze``, whose gold
features and model start ``risk_apply``, each as of that day. Then
every run and task succeeded, once, and the apply tier's tables hold the book's pending
applications scored, its loans and indicators as of that day.

This process never imports airflow (everything goes through the CLI and HTTP) nor scrapy;
Spark starts here only after every Airflow process is gone, to read the tables.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airflowkit import BAD_TASK_STATES, FINISHED, Airflow, Deadline, processes_marked, tail
from conftest import TEST_BRONZE_KEY, TEST_PII_KEY, TEST_SPARK_CONF, free_port, make_settings
from pyspark.sql import functions as F

from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    GOLD_LOAN_BOOK_RISK,
    GOLD_SCORED_APPLICATIONS,
    GOLD_WARNING_INDICATORS,
    OPS_MANIFEST,
)
from riskcontrol.core.config import PROJECT_ROOT
from riskcontrol.orchestration import ASSET_URIS

pytestmark = pytest.mark.slow

CUSTOMERS = 400  # as test_faults: trains and finds a cut-off at a loose tolerance
SEED = 3
DAG_IDS = ("risk_collect", "risk_analyze", "risk_apply")
TASKS = {
    "risk_collect": {
        "collect_lending_db",
        "collect_file_drops",
        "collect_public_web",
        "bronze_landed",
    },
    "risk_analyze": {
        "build_silver",
        "resolve_entities",
        "build_feature_store",
        "build_gold",
        "check_quality",
        "train_models",
    },
    "risk_apply": {
        "choose_cutoff",
        "score_applications",
        "loan_book_risk",
        "early_warning",
        "risk_report",
    },
}
# Everything below (generation, Airflow start-up, three DAG runs, shutdown) in this budget.
DEADLINE_SECONDS = float(os.environ.get("RISK_AIRFLOW_TEST_DEADLINE", 25 * 60))
POLL_SECONDS = 3.0


def _risk_env(home: Path, airflow_home: Path) -> dict[str, str]:
    return {
        "RISK_HOME": str(home),
        "RISK_ENV": "test",
        "RISK_PII_KEY": TEST_PII_KEY,
        "RISK_BRONZE_KEY": TEST_BRONZE_KEY,
        # collect_public_web serves the generated site on this port for its crawl
        "RISK_SITE_PORT": str(free_port()),
        "RISK_SPARK_SHUFFLE_PARTITIONS": "2",
        "RISK_SPARK_DRIVER_MEMORY": "1g",
        "RISK_SPARK_CONF": TEST_SPARK_CONF,
        "RISK_MODEL_KINDS": "decision_tree",
        "RISK_RISK_TOLERANCE": "0.1",
        "RISK_AIRFLOW_HOME": str(airflow_home),
    }


def _generate(env: dict[str, str], deadline: Deadline) -> None:
    riskctl = str(Path(sys.executable).parent / "riskctl")
    argv = [riskctl, "generate", "--customers", str(CUSTOMERS), "--seed", str(SEED)]
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=deadline.left("generating")
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}{done.stderr}")


def _wait_for_dags(af: Airflow, deadline: Deadline) -> dict[str, dict]:
    """The api-server answers and the dag-processor has stored all three DAGs."""
    while not af.healthy():
        af.check_alive()
        deadline.left("waiting for the api-server to answer")
        time.sleep(1)
    while True:
        af.check_alive()
        errors = af.api("GET", "/importErrors")
        if errors["total_entries"]:
            raise AssertionError(f"DAG import errors: {errors}\n{af.diagnostics()}")
        dags = {d["dag_id"]: d for d in af.api("GET", "/dags?limit=100")["dags"]}
        if set(DAG_IDS) <= set(dags) and dags["risk_collect"]["next_dagrun_logical_date"]:
            assert set(dags) == set(DAG_IDS), sorted(dags)
            return dags
        deadline.left(f"waiting for the dag-processor to parse the DAGs (have {sorted(dags)})")
        time.sleep(2)


def _run_pipeline(af: Airflow, deadline: Deadline, day: str) -> dict[str, list[dict]]:
    """Unpause the DAGs: the scheduler runs collect's one day (its start and end date);
    wait until analyze and apply (asset-triggered) finish.

    Fails at once when a task fails or is up for retry (a retry waits 5 minutes)."""
    dags = _wait_for_dags(af, deadline)
    assert dags["risk_collect"]["next_dagrun_logical_date"].startswith(day), dags
    for dag_id in ("risk_analyze", "risk_apply", "risk_collect"):
        assert af.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})["is_paused"] is False

    t0 = time.monotonic()
    shown: dict[str, str] = {}
    while True:
        af.check_alive()
        runs = {dag_id: af.dag_runs(dag_id) for dag_id in DAG_IDS}
        for dag_id, dag_runs in runs.items():
            for run in dag_runs:
                tis = af.task_instances(dag_id, run["dag_run_id"])
                run["task_instances"] = tis
                states = " ".join(f"{t['task_id']}={t['state']}" for t in tis)
                line = f"{dag_id} {run['dag_run_id']} ({run['run_type']}): {run['state']}; {states}"
                if shown.get(run["dag_run_id"]) != line:
                    shown[run["dag_run_id"]] = line
                    print(f"[{time.monotonic() - t0:6.0f}s] {line}", flush=True)
                bad = [t for t in tis if t["state"] in BAD_TASK_STATES]
                if bad or run["state"] == "failed":
                    raise AssertionError(
                        f"{dag_id} run {run['dag_run_id']} is {run['state']}, tasks "
                        f"{[(t['task_id'], t['state']) for t in bad]}\n{af.diagnostics(80)}"
                    )
        if runs["risk_apply"] and all(
            r["state"] in FINISHED for dag_runs in runs.values() for r in dag_runs
        ):
            return runs
        waiting_for = [d for d in DAG_IDS if not any(r["state"] in FINISHED for r in runs[d])]
        deadline.left(f"waiting for the DAG runs ({', '.join(waiting_for)} not finished)")
        time.sleep(POLL_SECONDS)


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory):
    """A generated book run by Airflow's scheduler; every Airflow process gone on yield."""
    t0 = time.monotonic()
    root = tmp_path_factory.mktemp("airflow-scheduler")
    home, airflow_home = root / "home", root / "airflow"
    home.mkdir()
    airflow_home.mkdir()
    risk_env = _risk_env(home, airflow_home)
    af = Airflow(airflow_home, risk_env, PROJECT_ROOT / "dags")
    deadline = Deadline(DEADLINE_SECONDS, af.diagnostics)
    timings: dict[str, float] = {}
    try:
        _generate(af.env, deadline)
        timings["generate"] = time.monotonic() - t0
        # the only day on risk_collect's calendar: the day the book ends (Airflow 3's
        # @daily fires at its midnight, an empty interval there: as of that day)
        day = json.loads((home / "data" / "generation.json").read_text())["as_of"]
        af.env.update(
            RISK_AIRFLOW_START_DATE=day, RISK_AIRFLOW_END_DATE=day, RISK_AIRFLOW_CATCHUP="true"
        )
        af.migrate(timeout=deadline.left("migrating the Airflow DB"))
        timings["db migrate"] = time.monotonic() - t0 - sum(timings.values())
        af.start("api-server", "api-server", "--port", str(af.port), "--host", "127.0.0.1")
        af.start("dag-processor", "dag-processor")
        af.start("scheduler", "scheduler")
        runs = _run_pipeline(af, deadline, day)
        upstream = {
            dag_id: [
                (e["uri"], e["extra"])
                for e in af.api(
                    "GET",
                    f"/dags/{dag_id}/dagRuns/{runs[dag_id][0]['dag_run_id']}/upstreamAssetEvents",
                )["asset_events"]
            ]
            for dag_id in ("risk_analyze", "risk_apply")
            if len(runs[dag_id]) == 1
        }
        timings["airflow runs"] = time.monotonic() - t0 - sum(timings.values())
    finally:
        t_stop = time.monotonic()
        stragglers = af.stop()
        timings["stop"] = time.monotonic() - t_stop
    left = processes_marked(af.marker)
    print(
        "\ntimings: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()),
        f"(total {time.monotonic() - t0:.0f}s); killed after the groups: {stragglers}",
        flush=True,
    )
    settings = make_settings(home)
    generation = json.loads((settings.data_dir / "generation.json").read_text())
    yield {
        "settings": settings,
        "generation": generation,
        "runs": runs,
        "upstream": upstream,
        "left": left,
        "airflow": af,
    }


def _read(request, table, settings):
    # the session's Spark starts here, after the Airflow processes (and their JVMs) ended
    return lakehouse.read(request.getfixturevalue("spark"), table, settings)


def test_each_dag_ran_once_for_the_day_then_by_assets_dated_that_day(scheduled):
    runs, as_of = scheduled["runs"], scheduled["generation"]["as_of"]
    assert {d: len(r) for d, r in runs.items()} == dict.fromkeys(DAG_IDS, 1)
    assert {d: r[0]["state"] for d, r in runs.items()} == dict.fromkeys(DAG_IDS, "success")
    assert {d: r[0]["run_type"] for d, r in runs.items()} == {
        "risk_collect": "scheduled",
        "risk_analyze": "asset_triggered",
        "risk_apply": "asset_triggered",
    }
    collect = runs["risk_collect"][0]
    assert collect["data_interval_end"].startswith(as_of), collect
    # analyze consumed collect's bronze event; apply the gold features and the champion;
    # each event carries the day its run ran as of
    dated = {"as_of": as_of}
    assert scheduled["upstream"]["risk_analyze"] == [(ASSET_URIS["bronze"], dated)]
    assert sorted(scheduled["upstream"]["risk_apply"]) == sorted(
        [(ASSET_URIS["gold_features"], dated), (ASSET_URIS["champion_model"], dated)]
    )
    # and in that order: each run's tasks started after the tasks of the one that fed it
    # ended (the asset event comes with the producing task's success, a moment before its
    # run is marked finished, so the runs' own dates may overlap by milliseconds)
    collect, analyze, apply = (runs[d][0]["task_instances"] for d in DAG_IDS)
    assert max(t["end_date"] for t in collect) <= min(t["start_date"] for t in analyze)
    assert max(t["end_date"] for t in analyze) <= min(t["start_date"] for t in apply)


def test_every_task_instance_succeeded_at_the_first_try(scheduled):
    for dag_id, (run,) in scheduled["runs"].items():
        tis = run["task_instances"]
        assert {t["task_id"] for t in tis} == TASKS[dag_id]
        assert {t["task_id"]: t["state"] for t in tis} == dict.fromkeys(TASKS[dag_id], "success")
        assert {t["task_id"]: t["try_number"] for t in tis} == dict.fromkeys(TASKS[dag_id], 1)


def test_no_airflow_or_spark_process_is_left(scheduled):
    assert scheduled["left"] == []
    assert all(p.poll() is not None for p in scheduled["airflow"].procs.values())


def test_the_apply_tables_are_filled(scheduled, request):
    settings, generation = scheduled["settings"], scheduled["generation"]
    pending = generation["applications_by_status"]["pending"]
    assert pending > 0
    assert _read(request, GOLD_SCORED_APPLICATIONS, settings).count() == pending
    as_of = dt.date.fromisoformat(generation["as_of"])
    book = _read(request, GOLD_LOAN_BOOK_RISK, settings)
    assert book.count() > 0
    assert {r[0] for r in book.select("as_of_date").distinct().collect()} == {as_of}
    indicators = _read(request, GOLD_WARNING_INDICATORS, settings)
    assert indicators.agg(F.max("as_of_date")).first()[0] == as_of


def test_the_manifest_names_each_airflow_run(scheduled, request):
    settings = scheduled["settings"]
    run_ids = {
        r.run_id
        for r in _read(request, OPS_MANIFEST, settings).select("run_id").distinct().collect()
    }
    for tier, dag_id in zip(("collect", "analyze", "apply"), DAG_IDS, strict=True):
        expected = f"airflow-{tier}-{scheduled['runs'][dag_id][0]['dag_run_id']}"
        assert expected in run_ids, (tier, sorted(run_ids))
    assert all(r.startswith("airflow-") for r in run_ids), sorted(run_ids)
    targets = {
        r.target
        for r in _read(request, OPS_MANIFEST, settings)
        .where(F.col("run_id").startswith("airflow-apply-"))
        .select("target")
        .collect()
    }
    assert targets == {
        "gold.loan_book_risk",
        "gold.scored_applications",
        "gold.warning_indicators",
    }


def test_logs_of_each_process_were_kept(scheduled):
    """What the failure messages quote exists: the processes' and the tasks' logs."""
    af = scheduled["airflow"]
    for name in ("scheduler", "dag-processor", "api-server"):
        assert (af.logs / f"{name}.log").stat().st_size > 0, tail(af.logs / f"{name}.log")
    assert len(af.task_logs()) >= sum(len(t) for t in TASKS.values())
