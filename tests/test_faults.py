"""Fault injection: the pipeline killed (SIGKILL) at Delta commits and in the middle of
large writes, then run again, ends with the tables a clean run writes.

One small book, two lakehouses. The clean one is built on a standalone Spark cluster
(a master, two workers) by Airflow's own scheduler: it runs ``risk_collect`` for the
day the book ends, and the Assets start ``risk_analyze`` (training included) and then
``risk_apply``, every task a spark-submit job; then `riskctl submit` sends the report,
and one customer is erased. The other is built by pipeline processes (``faultkit``,
Spark in local mode, as of the same day) that a watcher kills at the ``KILLS`` below,
one kill per attempt: after a kill, the next attempt starts again at the killed task,
as an Airflow retry does, and goes on with the tasks after it until the next kill; a
last attempt runs the rest to the end. It trains no model: it scores with the one the
cluster run registered (one MLflow store for both), so the apply tier can be compared
row for row.

Then every table of the two lakehouses must hold the same rows, apart from the columns
that name a run or an attempt or say when something ran, and no key twice: what a run
killed 24 times in local mode writes equals what an unbroken run on the cluster writes.
The manifest and the quarantine keep one row per attempt by design: there the last
attempt of each step must count and quarantine what the cluster run's step did.

``pytest -s`` prints every kill point and what the attempt had committed.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from airflowkit import Airflow, Deadline, processes_marked, run_dags, tail
from clusterkit import StandaloneCluster, executor_python
from conftest import BOOK_SPARK_CONF, JAVA_OPTIONS, TEST_BRONZE_KEY, TEST_PII_KEY, free_port
from faultkit import At, Pipeline, attempt
from pyspark.sql import Row

from riskcontrol import orchestration
from riskcontrol.core.catalog import TABLES
from riskcontrol.core.config import PROJECT_ROOT, get_settings
from riskcontrol.core.lakehouse import delta_tables

pytestmark = pytest.mark.slow

CUSTOMERS = 400
SEED = 3
RUN_ID = "faulted-run"
# What names a run in a path (a crawl's landing folder): the faulted run's id, or the
# cluster run's Airflow run (``airflow-collect-scheduled__<date>``).
RUN_IN_PATH = re.compile(rf"/({RUN_ID}|airflow-[a-z]+-[^/]+)/")
# The cluster run's MLflow store, where the faulted run finds the champion it scores with.
MLFLOW_FOLDER = "mlflow"
ATTEMPT_TIMEOUT = 900

# The pipeline's tasks in order, less the report (it writes no table) and training (the
# cluster run trains). The feature store stays: gold.application_features reads the
# customer's history from it.
TASKS = tuple(t for t in orchestration.TASKS if t not in ("train_models", "risk_report"))

# In order. Each is counted from the start of its attempt, and an attempt starts again
# at the beginning of the killed task, so the commits of the steps of that task it had
# finished come again (a MERGE with nothing new commits nothing; manifest rows do).
KILLS = (
    # collect, the lending database: per table the bronze MERGE, its manifest row, the
    # watermark
    At("bronze.customers"),  # landed, not recorded
    At("ops.manifest"),  # customers recorded again, the watermark not saved
    At("bronze.repayments", mid_write=True),
    At("ops.watermarks"),  # the last commit of the task
    # collect, the file drops: per source the quarantine, the bronze MERGE, the manifest
    At("ops.quarantine"),  # settlements' rejects quarantined, nothing landed
    At("bronze.app_events", mid_write=True),
    At("bronze.service_notes"),
    # collect, the public web: the crawl, then its landing, then the crawl marked landed
    At("bronze.crawl_pages"),
    At("bronze.news_articles"),
    # analyze
    At("silver.customers"),
    At("silver.repayments", mid_write=True),
    At("ops.quarantine"),  # silver.applications' rejects, before its MERGE
    At("silver.court_records"),
    At("silver.entity_links"),
    At("gold.application_features", mid_write=True),
    At("gold.application_features"),
    # apply
    At("gold.cutoff_policy"),
    At("gold.scored_applications"),
    At("gold.loan_book_risk"),
    At("gold.warning_indicators", mid_write=True),
    At("gold.alerts"),
    # erase: the audit row first, then each table's deletion and its history removed
    At("ops.erasures"),
    At("bronze.customers"),
    At("bronze.applications"),
)

# Columns that name a run or an attempt, or say when something ran: they differ between
# any two runs. Everything else must be equal.
VOLATILE = {
    "run_id",
    "attempt_id",
    "_ingest_id",
    "_ingested_at",
    "crawl_id",
    "fetched_at",
    "quarantined_at",
    "started_at",
    "finished_at",
    "computed_at",
    "feature_time",
    "created_at",
    "created_timestamp",
    "scored_at",
    "checked_at",
    "opened_at",
    "erasure_id",
    "erased_at",
}
VOLATILE_IN = {
    "ops.watermarks": {"updated_at"},
    "gold.alerts": {"updated_at", "history"},
    "ops.alert_notifications": {"last_attempt_at", "notified_at"},
    # a keyed hash of the record, whose provenance names the home folder
    "ops.quarantine": {"record_hash"},
}
# Comma lists whose order is the order parallel work finished in.
UNORDERED = {"ops.erasures": "vacuumed"}
PER_ATTEMPT = {"ops.manifest", "ops.quarantine"}


def _env(home: Path, port: int, shared: Path) -> dict[str, str]:
    return {
        "RISK_HOME": str(home),
        "RISK_ENV": "test",
        "RISK_PII_KEY": TEST_PII_KEY,
        "RISK_BRONZE_KEY": TEST_BRONZE_KEY,
        "RISK_SITE_PORT": str(port),  # one port for both: crawled URLs name it
        "RISK_SPARK_SHUFFLE_PARTITIONS": "2",
        "RISK_SPARK_DRIVER_MEMORY": "1g",
        "RISK_SPARK_CONF": BOOK_SPARK_CONF,
        "RISK_MODEL_KINDS": "decision_tree",
        # a small book: no cut-off keeps the residual risk within the default 3 %
        "RISK_RISK_TOLERANCE": "0.1",
        "RISK_MLFLOW_TRACKING_URI": f"sqlite:///{shared / 'mlflow.db'}",
        "RISK_MLFLOW_ARTIFACT_ROOT": (shared / "mlartifacts").as_uri(),
    }


def _erasure_subject(data_dir: Path) -> str:
    """An applicant turned down (one application, no loan): the erasure touches a dozen
    tables, not every one, and searches them all."""
    with sqlite3.connect(data_dir / "lending.db") as db:
        (customer,) = db.execute(
            "SELECT customer_id FROM applications GROUP BY customer_id"
            " HAVING count(*) = 1 AND max(status) = 'rejected'"
            " AND customer_id NOT IN (SELECT customer_id FROM loans)"
            " ORDER BY customer_id LIMIT 1"
        ).fetchone()
    return customer


def _show(n: int, a) -> str:
    if a.killed:
        where = f"in {a.killed_in}" if a.killed_in else "between tasks"
        return f"{n:>2}. {a.seconds:6.1f}s {a.at.describe():44} {where:22} {a.kill_point}"
    end = "(no kill: ran to the end)"
    return f"{n:>2}. {a.seconds:6.1f}s {end:44} {'':22} {len(a.commits)} commits"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, spark):
    from riskcontrol.synthetic.generate import generate

    t0 = time.monotonic()
    root = tmp_path_factory.mktemp("faults")
    pristine = root / "pristine"
    generate(pristine, customers=CUSTOMERS, seed=SEED)
    customer = _erasure_subject(pristine)
    port = free_port()
    home = root / "faulted"
    shutil.copytree(pristine, home / "data")
    (root / MLFLOW_FOLDER).mkdir()
    # the day the book ends: the cluster run's Airflow runs and the faulted run are as of it
    day = _book_day(pristine)
    env = {**_env(home, port, root / MLFLOW_FOLDER), "RISK_AS_OF": day}
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "PYSPARK_"))}
    workdir = root / "attempts"
    workdir.mkdir()
    gate = root / "champion.trained"
    faulted = Faulted(
        [*TASKS, f"erase:{customer}"], home / "lakehouse", {**inherited, **env}, workdir, gate
    )
    # The clean run on the cluster, and once it has collected, side by side with it, the
    # faulted run's attempts in their processes (a thread here watches them). The two
    # crawl the same port (crawled URLs name it), each serving the site for its crawl, so
    # their crawls must not overlap. The faulted run's apply tasks wait for the model the
    # cluster run trains.
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = []
        try:
            cluster = _cluster_run(
                root,
                pristine,
                day,
                port,
                customer,
                gate,
                collected=lambda: started.append(pool.submit(faulted.run)),
            )
        except BaseException:
            faulted.stop()
            raise
        cluster_seconds = time.monotonic() - t0
        attempts = started[0].result()
    faulted.stop()
    yield {
        "clean": cluster["settings"],
        "faulted": _settings_for(env),
        "cluster": cluster,
        "attempts": attempts,
        "customer": customer,
        "timings": {
            "clean run (on the cluster)": cluster_seconds,
            "faulted run (attempts, side by side)": time.monotonic() - t0,
        },
        "t0": t0,
    }


# The cluster run's Airflow: the three DAGs in order (the first on its calendar, the
# others on the Assets), and each DAG's tasks.
DAG_IDS = tuple(f"risk_{tier}" for tier in orchestration.TIERS)
DAG_TASKS = {f"risk_{tier}": set(tasks) for tier, tasks in orchestration.TIERS.items()}
DAG_TASKS["risk_collect"].add("bronze_landed")  # announces bronze (no Spark)
# The job `riskctl submit` sends to the cluster once the DAGs are done: the report
# (it writes no table, so the two lakehouses stay comparable).
SUBMITTED = ("apply", "risk_report")
# A bound against a hang, not a speed check (the cluster run, Airflow's start and stop
# included). Here it took 30.5 minutes (the three DAG runs 24), the faulted run beside it
# from its fourth and another Spark job beside both for its first twenty.
CLUSTER_TIMEOUT = 3600


def _cluster_run(
    root: Path,
    pristine: Path,
    day: str,
    port: int,
    customer: str,
    gate: Path,
    collected: Callable[[], object],
) -> dict:
    """The clean run, on a standalone cluster (a master, two 1-core workers), by
    Airflow's own scheduler: a fresh Airflow home (SQLite) with `airflow scheduler`
    (LocalExecutor, one task at a time), `airflow dag-processor` and `airflow api-server`
    (whose Execution API the tasks talk to), the DAGs in spark-submit mode (the Spark
    provider's operator: one job per task). ``risk_collect``'s calendar is ``day`` (the
    day the book ends) alone, with catch-up, as a backfill of that day: unpaused, the
    scheduler runs it; the Assets its last task emits start ``risk_analyze``, whose gold features
    and champion start ``risk_apply``, each as of that day. ``collected`` is called once
    collect's run succeeded, ``gate`` touched once analyze's did (the champion is
    registered). Then, every Airflow process gone: `riskctl submit` of the report, and
    `riskctl erase` with the cluster as its master (a driver in the CLI's process).

    The executors run an interpreter without the project: they import it from the zip
    the drivers ship. Returns the settings, the DAG runs and what the executors said."""
    home = root / "cluster"
    shutil.copytree(pristine, home / "data")
    python = executor_python(root / "executor-env")
    risk_env = {
        **_env(home, port, root / MLFLOW_FOLDER),
        "RISK_SPARK_CONF": json.dumps(
            {
                "spark.driver.extraJavaOptions": JAVA_OPTIONS,
                "spark.pyspark.python": str(python),
                "spark.executor.memory": "1g",
                # the executors' JVMs compile as the drivers' do (C1 only): less CPU
                "spark.executor.extraJavaOptions": JAVA_OPTIONS,
            }
        ),
        "RISK_AIRFLOW_TASK_MODE": "spark_submit",
        "RISK_AIRFLOW_START_DATE": day,
        "RISK_AIRFLOW_END_DATE": day,
        "RISK_AIRFLOW_CATCHUP": "true",
    }
    bin_dir = Path(sys.executable).parent
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = time.monotonic() - t0 - sum(timings.values())

    with StandaloneCluster(root / "spark-cluster", workers=2, cores=1, memory="2g") as cluster:
        risk_env["RISK_SPARK_MASTER"] = cluster.master
        af = Airflow(root / "cluster-airflow", risk_env, PROJECT_ROOT / "dags")
        # the drivers see no project folder: the executors import what they ship
        af.env.pop("PYTHONPATH", None)
        deadline = Deadline(
            CLUSTER_TIMEOUT, lambda: f"{af.diagnostics()}\nexecutors:\n{cluster.executor_logs()}"
        )
        lap("cluster start")
        try:
            af.migrate(timeout=deadline.left("migrating the Airflow DB"))
            lap("airflow db migrate")
            af.start("api-server", "api-server", "--port", str(af.port), "--host", "127.0.0.1")
            af.start("dag-processor", "dag-processor")
            af.start("scheduler", "scheduler")
            runs = run_dags(
                af,
                deadline,
                day,
                DAG_IDS,
                when_done={"risk_collect": collected, "risk_analyze": gate.touch},
            )
            upstream = {
                dag_id: [
                    (e["uri"], e["extra"])
                    for e in af.api(
                        "GET",
                        f"/dags/{dag_id}/dagRuns/{runs[dag_id][0]['dag_run_id']}"
                        "/upstreamAssetEvents",
                    )["asset_events"]
                ]
                for dag_id in DAG_IDS[1:]
                if len(runs[dag_id]) == 1
            }
            lap("airflow runs")
        finally:
            gate.touch()  # a failed run: the faulted run's apply tasks stop waiting
            t_stop = time.monotonic()
            stragglers = af.stop()
            timings["airflow stop"] = time.monotonic() - t_stop
        left = processes_marked(af.marker)

        def run(*argv: str) -> str:
            done = subprocess.run(
                argv,
                env=af.env,
                capture_output=True,
                text=True,
                timeout=deadline.left(" ".join(argv[:3])),
                cwd=root,
            )
            if done.returncode != 0:
                raise AssertionError(
                    f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                    f"{done.stderr[-5000:]}\nexecutors:\n{cluster.executor_logs()}"
                )
            return done.stdout

        riskctl = str(bin_dir / "riskctl")
        tier, task = SUBMITTED
        submitted = run(riskctl, "submit", tier, "--run-id", "cluster-submit", "--tasks", task)
        run(riskctl, "erase", "--customer", customer, "--requested-by", "faults")
        probe = run(
            str(bin_dir / "python"),
            "-c",
            "import sys; from riskcontrol.core.spark import get_spark; "
            "from riskcontrol.core.classcache import jvm_maps_archive; "
            "f = lambda _: (sys.executable, __import__('riskcontrol').__file__, "
            "jvm_maps_archive()); "
            "rdd = get_spark().sparkContext.parallelize(range(4), 4); "
            "print(sorted(set(rdd.map(f).collect())))",
        )
        lap("submit, erase, probe")
        apps = sorted(a["name"] for a in cluster.state()["completedapps"])
    print(
        "\ncluster run: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()),
        f"(total {time.monotonic() - t0:.0f}s); killed after the groups: {stragglers}",
        flush=True,
    )
    return {
        "settings": _settings_for(risk_env),
        "day": day,
        "runs": runs,
        "upstream": upstream,
        "left": left,
        "airflow": af,
        "task_events": _events(af.task_logs()),
        "submitted": submitted,
        "executor_python": str(python),
        "executors_saw": probe.strip().splitlines()[-1],
        "apps": apps,
        # what the run wrote outside its lakehouse: the cluster's logs and executors'
        # work folders, Airflow's home (its task logs), the MLflow store
        "written": [root / "spark-cluster", root / "cluster-airflow", root / MLFLOW_FOLDER],
    }


def _events(logs: list[Path]) -> list[str]:
    """What the task logs (one JSON object a line) say: each line's ``event``."""
    events = []
    for path in logs:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                events.append(str(json.loads(line).get("event", "")))
    return events


def _book_day(data_dir: Path) -> str:
    """The day the generated book ends: the one day on the collect DAG's calendar, and
    the day the faulted run runs as of."""
    return json.loads((data_dir / "generation.json").read_text())["as_of"]


class Faulted:
    """The faulted run: attempts killed at ``KILLS``, each a retry of the killed task and
    on from there, and a last one that runs to the end. The next attempt's process is
    started (Spark up, waiting) while one runs."""

    def __init__(self, tasks, lake: Path, env, workdir: Path, gate: Path):
        self.tasks, self.lake, self.env, self.workdir, self.gate = tasks, lake, env, workdir, gate
        self.spawned: list[Pipeline] = []
        self.stopped = threading.Event()
        self.lock = threading.Lock()

    def _spawn(self, n: int) -> Pipeline:
        with self.lock:
            if self.stopped.is_set():
                raise RuntimeError("stopped")
            p = Pipeline(self.env, self.workdir, RUN_ID, f"attempt-{n:02d}", self.gate)
            self.spawned.append(p)
            return p

    def stop(self) -> None:
        with self.lock:
            self.stopped.set()
            for p in self.spawned:
                p.finish()

    def run(self) -> list:
        attempts, left = [], list(self.tasks)
        current = self._spawn(1)
        for n, at in enumerate([*KILLS, None], start=1):
            following = self._spawn(n + 1) if at is not None else None
            a = attempt(current, left, self.lake, at, ATTEMPT_TIMEOUT)
            attempts.append(a)
            print(_show(n, a), flush=True)
            if not a.killed:
                if following is not None:
                    following.finish()
                log = current.log.read_text(errors="replace")[-4000:]
                assert a.returncode == 0, f"attempt {n} ({a.at}) failed:\n{log}"
                return attempts
            left = left[left.index(a.killed_in) :] if a.killed_in else left[_done(current) :]
            current = following
        raise AssertionError(f"tasks never run to the end: {left}")


def _done(pipeline: Pipeline) -> int:
    lines = pipeline.status.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines if line.startswith("done "))


def _settings_for(env: dict[str, str]):
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        get_settings.cache_clear()
        settings = get_settings()
    get_settings.cache_clear()
    return settings


# --- reading a table as comparable rows -------------------------------------------------
def _plain(value, home: str):
    """A cell as a hashable, comparable value; the home folder's path and the run id (a
    crawl's landing folder is named by it) left out."""
    if isinstance(value, Row):
        return tuple(_plain(v, home) for v in value)
    if isinstance(value, list | tuple):
        return tuple(_plain(v, home) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _plain(v, home)) for k, v in value.items()))
    if isinstance(value, str):
        value = value.replace(home, "<home>")
        return RUN_IN_PATH.sub("/<run>/", value)
    if isinstance(value, float):
        # 12 significant digits: a sum over partitions (a mean, a stddev of the feature
        # statistics) ends in a different last bit when the rows arrive in another order
        return float(f"{value:.12g}")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _frame(spark, settings, name: str):
    from riskcontrol.core import lakehouse

    if name in TABLES:
        return lakehouse.read_clear(spark, TABLES[name], settings)
    return spark.read.format("delta").load(f"{settings.lakehouse_root}/{name.replace('.', '/')}")


def _rows(spark, settings, name: str) -> tuple[list, list]:
    df = _frame(spark, settings, name)
    skip = VOLATILE | VOLATILE_IN.get(name, set())
    cols = sorted(c for c in df.columns if c not in skip)
    home = str(settings.home)
    rows = [[_plain(v, home) for v in r] for r in df.select(*cols).collect()]
    if name in UNORDERED:
        i = cols.index(UNORDERED[name])
        for r in rows:
            r[i] = ",".join(sorted((r[i] or "").split(",")))
    return cols, [tuple(r) for r in rows]


def _difference(name: str, cols, clean: list, faulted: list) -> str | None:
    a, b = Counter(clean), Counter(faulted)
    if a == b:
        return None
    only_clean, only_faulted = a - b, b - a

    def sample(c: Counter) -> str:
        return "\n".join(
            f"      {dict(zip(cols, r, strict=True))} x{n}" for r, n in c.most_common(3)
        )

    return (
        f"{name}: clean {len(clean)} rows, faulted {len(faulted)}; "
        f"{sum(only_clean.values())} only in the clean run, "
        f"{sum(only_faulted.values())} only in the faulted one\n"
        f"    only clean:\n{sample(only_clean)}\n    only faulted:\n{sample(only_faulted)}"
    )


# --- the tests ------------------------------------------------------------------------
def test_kill_points(runs):
    attempts = runs["attempts"]
    killed = [a for a in attempts if a.killed]
    print(f"\n{len(killed)} kill points, {len(attempts)} attempts:")
    for n, a in enumerate(attempts, start=1):
        print(_show(n, a))
    for name, seconds in runs["timings"].items():
        print(f"{name}: {seconds:.0f} s")
    assert len(killed) >= 20
    assert len(killed) == len(KILLS), "a kill point was never reached: the plan needs a look"
    mid = [a for a in killed if a.at.mid_write and a.mid_write_confirmed]
    assert len(mid) >= 2, [a.kill_point for a in killed if a.at.mid_write]
    tiers = {**orchestration.TIERS, "erase": ()}

    def tier(task: str) -> str:
        return (
            "erase" if task.startswith("erase:") else next(k for k, v in tiers.items() if task in v)
        )

    assert {tier(a.killed_in) for a in killed if a.killed_in} == set(tiers)


def _unequal_tables(spark, clean, other, names, skip=()) -> list[str]:
    """What differs between the rows of ``names`` in the clean run and ``other``, and
    keys ``other`` holds more than once."""
    problems = []
    for name in names:
        if name in skip:
            continue
        cols, a = _rows(spark, clean, name)
        _, b = _rows(spark, other, name)
        diff = _difference(name, cols, a, b)
        if diff:
            problems.append(diff)
        table = TABLES.get(name)
        keys = [k for k in table.keys if k not in VOLATILE] if table is not None else []
        if keys:  # (a key of run ids alone, as the manifest's, differs between runs)
            df = _frame(spark, other, name)
            dupes = df.groupBy(*keys).count().where("count > 1").count()
            if dupes:
                problems.append(f"{name}: {dupes} key(s) held more than once")
    return problems


def test_every_table_holds_the_clean_runs_rows(spark, runs):
    """The faulted run's tables equal the cluster run's. The manifest and the
    quarantine keep a row per attempt: the tests below compare their last attempts."""
    clean, faulted = runs["clean"], runs["faulted"]
    names = sorted(delta_tables(Path(clean.lakehouse_root)))
    assert sorted(delta_tables(Path(faulted.lakehouse_root))) == names
    problems = _unequal_tables(spark, clean, faulted, names, skip=PER_ATTEMPT)
    assert not problems, "\n".join(problems)


def test_the_cluster_run_ran_its_jobs_on_executors_that_import_the_shipped_zip(runs):
    """Every task of the three DAGs (training included), the job `riskctl submit` sent and
    the erasure ran on the standalone cluster (its tables are the ones the tests above
    hold the faulted run to). The executors ran the interpreter without the project,
    imported the library from the shipped zip, and mapped the class archive."""
    cluster = runs["cluster"]
    saw = ast.literal_eval(cluster["executors_saw"])
    print(f"\ncluster run: {len(cluster['apps'])} Spark applications; executors: {saw}")
    assert {python for python, _, _ in saw} == {cluster["executor_python"]}
    assert all(".zip/riskcontrol/__init__.py" in where for _, where, _ in saw), saw
    # and their JVMs started from the class archive (`make setup`), as the drivers do
    assert all(mapped for _, _, mapped in saw), saw
    bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    blocked = subprocess.run(
        [cluster["executor_python"], "-c", "import riskcontrol"],
        capture_output=True,
        cwd="/",
        env=bare,
    )
    assert blocked.returncode == 1 and b"No module named 'riskcontrol'" in blocked.stderr
    # one job per Airflow task that runs Spark (14; `bronze_landed` only announces), each
    # named by the operator; the report `riskctl submit` sent, named by its tier; the
    # erasure's driver and the probe, named by the settings
    jobs = [f"riskcontrol-{t}" for t in orchestration.TASKS]
    assert len(jobs) == 14
    submitted = f"riskcontrol-{SUBMITTED[0]}"
    assert cluster["apps"] == sorted([*jobs, submitted, "riskcontrol", "riskcontrol"])
    # `riskctl submit` printed its command line and the job the JSON line of its task
    assert f"jobs/{SUBMITTED[0]}.py cluster-submit {SUBMITTED[1]}" in cluster["submitted"]
    assert f'"task": "{SUBMITTED[1]}"' in cluster["submitted"]


def _last_attempts(spark, settings) -> dict[tuple, Row]:
    """Per step (stage, source, target): its manifest row of the last attempt that read
    something. A retried crawl first lands what the killed attempt crawled, then crawls
    again and finds nothing new: that second landing reads nothing."""
    from riskcontrol.core import lakehouse
    from riskcontrol.core.catalog import OPS_MANIFEST

    last = {}
    for r in lakehouse.read(spark, OPS_MANIFEST, settings).orderBy("finished_at").collect():
        step = (r.stage, r.source, r.target)
        if r.rows_in or step not in last:
            last[step] = r
    return last


def test_the_last_attempt_of_each_step_counts_what_the_clean_run_counted(spark, runs):
    from riskcontrol.core import lakehouse
    from riskcontrol.core.catalog import OPS_MANIFEST

    clean, faulted = runs["clean"], runs["faulted"]
    rows = lakehouse.read(spark, OPS_MANIFEST, faulted).collect()
    bad = [
        r
        for r in rows
        if r.rows_in != r.rows_out + r.rows_unchanged + r.rows_duplicate + r.rows_quarantined
    ]
    assert not bad
    want, got = _last_attempts(spark, clean), _last_attempts(spark, faulted)
    assert sorted(got) == sorted(want)

    def counts(r: Row) -> dict:
        return {
            "window_end": r.window_end,
            "rows_in": r.rows_in,
            "landed": r.rows_out + r.rows_unchanged,
            "rows_quarantined": r.rows_quarantined,
            "rows_duplicate": r.rows_duplicate,
            "rows_rescued": r.rows_rescued,
        }

    differ = {
        step: (counts(want[step]), counts(got[step]))
        for step in want
        if counts(want[step]) != counts(got[step])
        and want[step].window_start == got[step].window_start
    }
    assert not differ, differ


def _quarantine_of_last_attempts(spark, settings) -> tuple[list, list, Counter]:
    """ops.quarantine rows of each step's last attempt (comparable), and the number of
    rows per attempt that has no manifest row (an attempt killed before it recorded)."""
    recorded = {r.attempt_id for r in _frame(spark, settings, "ops.manifest").collect()}
    last = {r.attempt_id for r in _last_attempts(spark, settings).values()}
    df = _frame(spark, settings, "ops.quarantine")
    # record_hash is a keyed hash of the record, whose provenance names the home folder
    cols = sorted(c for c in df.columns if c not in VOLATILE and c != "record_hash")
    home = str(settings.home)
    rows, orphans = [], Counter()
    for r in df.collect():
        if r.attempt_id in last:
            rows.append(tuple(_plain(r[c], home) for c in cols))
        elif r.attempt_id not in recorded:
            orphans[r.attempt_id] += 1
    return cols, rows, orphans


def test_the_quarantine_of_each_steps_last_attempt_equals_the_clean_runs(spark, runs):
    cols, want, none = _quarantine_of_last_attempts(spark, runs["clean"])
    assert not none
    _, got, orphans = _quarantine_of_last_attempts(spark, runs["faulted"])
    if orphans:
        print(
            f"\nops.quarantine: {sum(orphans.values())} row(s) of {len(orphans)} killed "
            "attempt(s) that never wrote their manifest row"
        )
    diff = _difference("ops.quarantine (last attempts)", cols, want, got)
    assert diff is None, diff


def test_the_erased_customer_is_in_no_file_of_the_faulted_lakehouse(runs):
    """(The cluster run's lakehouse is scanned by the next test.)"""
    from lakescan import file_text

    customer = runs["customer"]
    root = Path(runs["faulted"].lakehouse_root)
    holding = [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and customer in file_text(p)
    ]
    assert holding == []
    print(f"\nfault-injection test module: {time.monotonic() - runs['t0']:.0f} s so far")


def test_the_erased_customer_is_in_no_file_the_cluster_run_wrote(runs):
    """Its lakehouse, and what the lakehouses above do not cover: the master's, workers'
    and executors' logs (and the shipped code in their work folders), Airflow's home
    (its processes' logs, and the task logs, where the spark-submit jobs' output is), and
    the run's MLflow store."""
    from lakescan import file_text

    customer, cluster = runs["customer"], runs["cluster"]
    places = [Path(cluster["settings"].lakehouse_root), *cluster["written"]]
    assert all(p.is_dir() for p in places), places
    executor_logs = list(places[1].glob("worker-*/app-*/*/stderr"))
    assert len(executor_logs) >= 2, "the scan reads the executors' logs"
    holding = [
        str(p)
        for root in places
        for p in root.rglob("*")
        if p.is_file() and customer in file_text(p)
    ]
    assert holding == []
    # the task logs hold the jobs' output (the JSON line of each job's task): the scan
    # above read it
    jobs = [e for e in cluster["task_events"] if e.startswith('{"task": ')]
    assert sorted(json.loads(e)["task"] for e in jobs) == sorted(orchestration.TASKS)
    assert customer not in "\n".join(cluster["task_events"]) + cluster["submitted"]


# --- Airflow's own scheduler, the cluster run's ----------------------------------------
def test_the_scheduler_ran_each_dag_once_for_the_day_then_by_assets_dated_that_day(runs):
    cluster = runs["cluster"]
    dag_runs, as_of = cluster["runs"], cluster["day"]
    assert {d: len(r) for d, r in dag_runs.items()} == dict.fromkeys(DAG_IDS, 1)
    assert {d: r[0]["state"] for d, r in dag_runs.items()} == dict.fromkeys(DAG_IDS, "success")
    assert {d: r[0]["run_type"] for d, r in dag_runs.items()} == {
        "risk_collect": "scheduled",
        "risk_analyze": "asset_triggered",
        "risk_apply": "asset_triggered",
    }
    collect = dag_runs["risk_collect"][0]
    assert collect["data_interval_end"].startswith(as_of), collect
    # analyze consumed collect's bronze event; apply the gold features and the champion;
    # each event carries the day its run ran as of
    dated = {"as_of": as_of}
    assert cluster["upstream"]["risk_analyze"] == [(orchestration.ASSET_URIS["bronze"], dated)]
    assert sorted(cluster["upstream"]["risk_apply"]) == sorted(
        [
            (orchestration.ASSET_URIS["gold_features"], dated),
            (orchestration.ASSET_URIS["champion_model"], dated),
        ]
    )
    # and in that order: each run's tasks started after the tasks of the one that fed it
    # ended (the asset event comes with the producing task's success, a moment before its
    # run is marked finished, so the runs' own dates may overlap by milliseconds)
    collect, analyze, apply = (dag_runs[d][0]["task_instances"] for d in DAG_IDS)
    assert max(t["end_date"] for t in collect) <= min(t["start_date"] for t in analyze)
    assert max(t["end_date"] for t in analyze) <= min(t["start_date"] for t in apply)


def test_every_task_instance_succeeded_at_the_first_try(runs):
    for dag_id, (run,) in runs["cluster"]["runs"].items():
        tis = run["task_instances"]
        assert {t["task_id"] for t in tis} == DAG_TASKS[dag_id]
        assert {t["task_id"]: t["state"] for t in tis} == dict.fromkeys(
            DAG_TASKS[dag_id], "success"
        )
        assert {t["task_id"]: t["try_number"] for t in tis} == dict.fromkeys(DAG_TASKS[dag_id], 1)


def test_no_airflow_process_or_spark_driver_of_it_is_left(runs):
    cluster = runs["cluster"]
    assert cluster["left"] == []
    assert all(p.poll() is not None for p in cluster["airflow"].procs.values())


def test_the_apply_tables_hold_the_books_pending_applications_and_loans_as_of_its_day(spark, runs):
    from pyspark.sql import functions as F

    from riskcontrol.core import lakehouse
    from riskcontrol.core.catalog import (
        GOLD_LOAN_BOOK_RISK,
        GOLD_SCORED_APPLICATIONS,
        GOLD_WARNING_INDICATORS,
    )

    settings = runs["clean"]
    generation = json.loads((settings.data_dir / "generation.json").read_text())
    pending = generation["applications_by_status"]["pending"]
    assert pending > 0
    # (the erased customer was turned down: none of their applications is pending)
    assert lakehouse.read(spark, GOLD_SCORED_APPLICATIONS, settings).count() == pending
    as_of = dt.date.fromisoformat(generation["as_of"])
    book = lakehouse.read(spark, GOLD_LOAN_BOOK_RISK, settings)
    assert book.count() > 0
    assert {r[0] for r in book.select("as_of_date").distinct().collect()} == {as_of}
    indicators = lakehouse.read(spark, GOLD_WARNING_INDICATORS, settings)
    assert indicators.agg(F.max("as_of_date")).first()[0] == as_of


def test_the_manifest_names_each_airflow_run(spark, runs):
    from riskcontrol.core import lakehouse
    from riskcontrol.core.catalog import OPS_MANIFEST

    cluster = runs["cluster"]
    manifest = lakehouse.read(spark, OPS_MANIFEST, runs["clean"]).collect()
    by_tier = {
        tier: f"airflow-{tier}-{cluster['runs'][f'risk_{tier}'][0]['dag_run_id']}"
        for tier in orchestration.TIERS
    }
    run_ids = {r.run_id for r in manifest}
    assert set(by_tier.values()) <= run_ids, (by_tier, sorted(run_ids))
    targets = {r.target for r in manifest if r.run_id == by_tier["apply"]}
    assert targets == {
        "gold.loan_book_risk",
        "gold.scored_applications",
        "gold.warning_indicators",
    }
    # nothing else wrote one: the report `riskctl submit` sent and the erasure record
    # none
    assert run_ids == set(by_tier.values()), sorted(run_ids)


def test_the_logs_of_each_airflow_process_and_task_were_kept(runs):
    """What the failure messages quote exists: the processes' and the tasks' logs."""
    af = runs["cluster"]["airflow"]
    for name in ("scheduler", "dag-processor", "api-server"):
        assert (af.logs / f"{name}.log").stat().st_size > 0, tail(af.logs / f"{name}.log")
    assert len(af.task_logs()) >= sum(len(t) for t in DAG_TASKS.values())
