"""spark-submit of the jobs: the command `riskctl submit` runs, the operators Airflow's DAGs
are made of in spark-submit mode, and the zip a cluster's executors import the library
from. (The jobs themselves run on a real standalone cluster in test_faults.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from clusterkit import executor_python
from conftest import make_settings

from riskcontrol import orchestration
from riskcontrol.cli import main
from riskcontrol.core.config import PROJECT_ROOT
from riskcontrol.core.spark import python_package, spark_conf

EXECUTORS = "/opt/py311/bin/python"


def _conf(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "--conf"]
    return dict(p.split("=", 1) for p in pairs)


def test_submit_names_the_executors_python_and_keeps_credentials_off_the_line(
    tmp_path, monkeypatch
):
    # the settings' conf alone (the environment's RISK_SPARK_CONF would be merged into it)
    monkeypatch.delenv("RISK_SPARK_CONF", raising=False)
    settings = make_settings(
        tmp_path,
        spark_master="spark://m.example.internal:7077",
        spark_conf={
            "spark.pyspark.python": EXECUTORS,
            "spark.cores.max": "4",
            "spark.hadoop.fs.s3a.secret.key": "s3cr3t",
        },
    )
    argv, env = main.submit_command(settings, "analyze", "r7", ("build_gold",))
    assert argv[1:3] == ["--master", "spark://m.example.internal:7077"]
    assert _conf(argv) == {
        "spark.pyspark.driver.python": sys.executable,
        "spark.pyspark.python": EXECUTORS,
        "spark.cores.max": "4",
    }
    assert not any("s3cr3t" in a for a in argv)
    # every driver, submitted or not, logs at WARN: at INFO, Delta logs its files' min
    # and max values (customer ids) into the job's log
    assert spark_conf(settings)["spark.log.level"] == "WARN"
    assert "--py-files" not in argv  # the job's session ships the zip (see below)
    assert argv[-3:] == [str(PROJECT_ROOT / "jobs" / "analyze.py"), "r7", "build_gold"]
    assert env["PYSPARK_PYTHON"] == sys.executable
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


def test_a_task_of_another_tier_is_refused_before_spark_submit_starts(capsys):
    assert main.main(["submit", "analyze", "--tasks", "build_gold, score_applications"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "riskctl submit: error: score_applications: not a task of the analyze job; its tasks "
        "are build_silver, resolve_entities, build_feature_store, build_gold, check_quality, "
        "train_models\n"
    )


def test_each_tiers_job_runs_its_tasks_in_the_pipelines_order():
    flat = [t for tasks in orchestration.TIERS.values() for t in tasks]
    assert flat == list(orchestration.TASKS)
    analyze = orchestration.TIERS["analyze"]
    # gold reads the customer's history from the feature store
    assert analyze.index("build_feature_store") < analyze.index("build_gold")
    for tier in orchestration.TIERS:
        text = (PROJECT_ROOT / "jobs" / f"{tier}.py").read_text(encoding="utf-8")
        assert f'job_main(TIERS["{tier}"], sys.argv)' in text


def _dags(tmp_path, mode: str, **extra_env: str) -> dict:
    """The DAGs as Airflow parses them with RISK_AIRFLOW_TASK_MODE=mode (in a process of
    their own: this one never imports Airflow)."""
    script = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(DAGS)
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}, "dates": {}}
for dag in bag.dags.values():
    out["dates"][dag.dag_id] = [
        str(dag.start_date), str(dag.end_date) if dag.end_date else None, dag.catchup
    ]
    out["dags"][dag.dag_id] = [
        {
            "task": t.task_id,
            "type": type(t).__name__,
            "outlets": sorted(o.uri for o in t.outlets),
            "application": getattr(t, "application", None),
            "args": getattr(t, "application_args", None),
            "conf": getattr(t, "conf", None),
            "conn": getattr(t, "_conn_id", None),
            "jars": getattr(t, "jars", None),
            # what a TaskFlow task is handed: upstream results (XComArgs), never operators
            "op_args": [type(a).__name__ for a in getattr(t, "op_args", [])],
        }
        for t in dag.topological_sort()
    ]
print("JSON" + json.dumps(out))
""".replace("DAGS", repr(str(PROJECT_ROOT / "dags")))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RISK_")},
        "AIRFLOW_HOME": str(tmp_path / f"airflow-{mode}"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "RISK_HOME": str(tmp_path / "home"),
        "RISK_ENV": "test",
        "RISK_SPARK_MASTER": "spark://m.example.internal:7077",
        "RISK_SPARK_CONF": json.dumps({"spark.pyspark.python": EXECUTORS}),
        "RISK_AIRFLOW_TASK_MODE": mode,
        **extra_env,
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("JSON")]
    return json.loads(line[4:])


def test_in_spark_submit_mode_every_pipeline_task_is_a_spark_submit_operator(tmp_path):
    from riskcontrol.orchestration.airflow_submit import CONN_ID, connection_env

    submit = _dags(
        tmp_path,
        "spark_submit",
        RISK_AIRFLOW_START_DATE="2026-03-01",
        RISK_AIRFLOW_END_DATE="2026-03-31",
        RISK_AIRFLOW_CATCHUP="true",
    )
    inproc = _dags(tmp_path, "in_process")
    assert submit["errors"] == {} and inproc["errors"] == {}
    # the collect DAG's calendar comes from the settings (what a backfill can reach)
    assert inproc["dates"] == {
        "risk_collect": ["2026-01-01 00:00:00+00:00", None, False],
        "risk_analyze": ["2026-01-01 00:00:00+00:00", None, False],
        "risk_apply": ["2026-01-01 00:00:00+00:00", None, False],
    }
    assert submit["dates"]["risk_collect"] == [
        "2026-03-01 00:00:00+00:00",
        "2026-03-31 00:00:00+00:00",
        True,
    ]
    # the same tasks, order and assets in both modes
    shape = {d: [(t["task"], t["outlets"]) for t in ts] for d, ts in submit["dags"].items()}
    assert shape == {d: [(t["task"], t["outlets"]) for t in ts] for d, ts in inproc["dags"].items()}
    tiers = {"risk_collect": "collect", "risk_analyze": "analyze", "risk_apply": "apply"}
    for dag_id, tasks in submit["dags"].items():
        tier = tiers[dag_id]
        for t in tasks:
            if t["task"] == "bronze_landed":  # announces the asset, runs nothing
                assert t["type"] == "_PythonDecoratedOperator"
                # the three collect tasks' results (None from a job), as in process
                assert t["op_args"] == ["PlainXComArg"] * 3
                continue
            assert t["type"] == "PipelineSubmitOperator"
            assert t["application"] == str(PROJECT_ROOT / "jobs" / f"{tier}.py")
            assert t["args"] == [f"airflow-{tier}-{{{{ run_id }}}}", t["task"]]
            assert t["conf"]["spark.pyspark.python"] == EXECUTORS
            assert t["conn"] == CONN_ID
            assert "delta-spark_" in t["jars"]
        assert {t["task"] for t in tasks} - {"bronze_landed"} == set(orchestration.TIERS[tier])
    assert all(
        t["type"] == "_PythonDecoratedOperator" for ts in inproc["dags"].values() for t in ts
    )
    # the provider reads the master from the connection the task defines
    (value,) = connection_env("spark://m.example.internal:7077").values()
    assert json.loads(value) == {"conn_type": "spark", "host": "spark://m.example.internal:7077"}


def test_a_bad_task_mode_is_refused_with_its_name(tmp_path, monkeypatch):
    from riskcontrol.core.config import SettingsError, get_settings

    monkeypatch.setenv("RISK_AIRFLOW_TASK_MODE", "remote")
    get_settings.cache_clear()
    try:
        try:
            orchestration.task_mode()
        except SettingsError as e:
            assert "airflow_task_mode" in str(e) and "'in_process' or 'spark_submit'" in str(e)
        else:
            raise AssertionError("a bad RISK_AIRFLOW_TASK_MODE was accepted")
    finally:
        get_settings.cache_clear()


def test_the_executors_zip_holds_the_library_and_the_crawlers_and_imports_alone(tmp_path):
    settings = make_settings(tmp_path)
    first = python_package(settings)
    assert python_package(settings) == first  # built once per version of the code
    assert first.parent == tmp_path / "dist" and first.name.startswith("riskcontrol-")
    names = zipfile.ZipFile(first).namelist()
    assert {"riskcontrol/__init__.py", "riskcrawl/__init__.py", "riskcontrol/core/spark.py"} <= set(
        names
    )
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # equal sources, equal bytes (fixed timestamps): a rebuild elsewhere gives the same name
    again = python_package(make_settings(tmp_path / "other"))
    assert again.name == first.name and again.read_bytes() == first.read_bytes()
    # an interpreter without the project imports it from the zip, and only from there
    python = str(executor_python(tmp_path / "worker-env"))
    code = "import riskcontrol.orchestration as o, riskcrawl; print(o.__file__)"
    bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    alone = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=bare
    )
    assert alone.returncode == 1 and "No module named 'riskcontrol'" in alone.stderr
    shipped = subprocess.run(
        [python, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**bare, "PYTHONPATH": str(first)},
    )
    assert shipped.returncode == 0, shipped.stderr
    assert shipped.stdout.strip() == f"{first}/riskcontrol/orchestration/__init__.py"


def test_a_run_is_as_of_its_data_interval_end_or_the_day_its_asset_events_carry():
    from collections import defaultdict
    from types import SimpleNamespace

    import pendulum

    day = pendulum.datetime(2026, 3, 31, tz="UTC")
    scheduled = {"logical_date": day, "data_interval_end": day.add(days=1)}
    assert orchestration.run_as_of("collect", scheduled) == "2026-04-01"
    # a data interval ending at 02:00 in Shanghai ends on the UTC day before
    shanghai = pendulum.datetime(2026, 4, 1, 2, tz="Asia/Shanghai")
    assert orchestration.run_as_of("collect", {**scheduled, "data_interval_end": shanghai}) == (
        "2026-03-31"
    )
    assert orchestration.run_as_of("collect", {**scheduled, "logical_date": None}) is None
    # analyze and apply: the latest day among the events that triggered the run (events of
    # two collect runs queued while analyze was busy), whatever their own dates
    events = {
        "bronze": [
            SimpleNamespace(extra={"as_of": "2026-04-01"}),
            SimpleNamespace(extra={"as_of": "2026-04-02"}),
            SimpleNamespace(extra={}),
        ]
    }
    assert orchestration.run_as_of("apply", {**scheduled, "triggering_asset_events": events}) == (
        "2026-04-02"
    )
    assert orchestration.run_as_of("analyze", scheduled) is None
    no_day = {"bronze": [SimpleNamespace(extra=None)]}
    assert orchestration.run_as_of("analyze", {"triggering_asset_events": no_day}) is None
    emitted = defaultdict(lambda: SimpleNamespace(extra={}))
    orchestration.announce_as_of(emitted, ["gold", "champion"], "2026-04-01")
    orchestration.announce_as_of(emitted, ["book"], None)  # nothing to announce
    assert {k: v.extra for k, v in emitted.items()} == {
        "gold": {"as_of": "2026-04-01"},
        "champion": {"as_of": "2026-04-01"},
    }
