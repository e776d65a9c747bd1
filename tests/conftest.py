"""One Spark session for the whole test run; a fresh project home per test."""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from riskcontrol.core.config import Settings

TEST_PII_KEY = "test-only-pii-key-0123456789abcdef"
TEST_BRONZE_KEY = "0123456789abcdef" * 4  # 32 bytes as hex, tests only
# Tests run many small, different queries: the C1 JIT alone compiles them sooner. A
# fault-injection run's JVM once died with "Out of space in CodeCache for adapters" under
# it: the code cache is reserved larger (address space only, committed as it fills).
JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"
# RISK_SPARK_CONF for the drivers that run a whole book in other processes (the fault
# module's faulted run, the end-to-end notebooks and spark-submit): the C1 JIT, and Spark's
# code generation as in production.
BOOK_SPARK_CONF = json.dumps({"spark.driver.extraJavaOptions": JAVA_OPTIONS})
# The other tests run small queries, each once: Spark's generated Java (a stage's code, an
# expression's projection), compiled by Janino and run cold, costs more than it saves, so
# they evaluate SQL expressions interpreted (Spark's own tests run both ways). Measured on
# test_erase and test_silver: 204 -> 159 CPU seconds, 161 -> 127 s. On a book it costs
# more than it saves (the end-to-end apply DAG: 252 -> 345 s in the suite): the end-to-end
# module turns code generation back on for its session (``generated_code``), and the
# book-sized drivers of other processes get BOOK_SPARK_CONF.
INTERPRETED_SQL = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}
GENERATED_SQL = {
    "spark.sql.codegen.wholeStage": "true",
    "spark.sql.codegen.factoryMode": "FALLBACK",
}
TEST_SPARK_CONF_DICT = {"spark.driver.extraJavaOptions": JAVA_OPTIONS, **INTERPRETED_SQL}
# RISK_SPARK_CONF for the other Spark drivers a test starts in other processes.
TEST_SPARK_CONF = json.dumps(TEST_SPARK_CONF_DICT)
# Those drivers (`riskctl` commands, the service, the workbench) run with these settings
# unless a test gives its own.
os.environ.setdefault("RISK_SPARK_CONF", TEST_SPARK_CONF)
# py4j logs at INFO while the interpreter shuts down, after pytest closed its streams.
logging.getLogger("py4j").setLevel(logging.WARNING)


def make_settings(home, **overrides) -> Settings:
    values = {
        "home": home,
        "env": "test",
        "pii_key": TEST_PII_KEY,
        "bronze_key": TEST_BRONZE_KEY,
        "spark_shuffle_partitions": 2,
        "spark_driver_memory": "3g",
        "spark_conf": dict(TEST_SPARK_CONF_DICT),
    }
    values.update(overrides)
    return Settings(**values)


# The two longest modules start first, one on each pytest-xdist worker: the one that
# builds a whole book and the fault-injection run (with the cluster run by Airflow's
# scheduler); the short modules go to whichever worker is free next (the Makefile
# passes --no-loadscope-reorder, so --dist loadfile hands out modules in this
# collection order).
FIRST_MODULES = ("test_end_to_end.py", "test_faults.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        name = item.path.name
        return FIRST_MODULES.index(name) if name in FIRST_MODULES else len(FIRST_MODULES)

    items.sort(key=rank)  # stable: the order within and among other modules stays


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from riskcontrol.core.spark import get_spark

    session = get_spark(make_settings(tmp_path_factory.mktemp("spark-home")))
    yield session
    session.stop()


@contextlib.contextmanager
def generated_code(session):
    """Spark's code generation on in ``session`` (as in production) for a book-sized run,
    the session's own settings back after it."""
    before = {key: session.conf.get(key) for key in GENERATED_SQL}
    for key, value in GENERATED_SQL.items():
        session.conf.set(key, value)
    try:
        yield session
    finally:
        for key, value in before.items():
            session.conf.set(key, value)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def cli_home(tmp_path, monkeypatch):
    """A fresh home for `riskctl` commands run in this process (RISK_HOME and the test
    keys in the environment; the settings cache cleared before and after)."""
    from riskcontrol.core.config import get_settings

    for name, value in {
        "RISK_HOME": str(tmp_path),
        "RISK_PII_KEY": TEST_PII_KEY,
        "RISK_BRONZE_KEY": TEST_BRONZE_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _postgres_bin(tool: str) -> str:
    """A PostgreSQL server program: on PATH, or where Debian's packages put it."""
    found = shutil.which(tool) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)), None
    )
    if not found:
        pytest.fail(
            f"PostgreSQL's {tool} is not installed: run `bash infra/ci/setup-system.sh` "
            "(apt-get install postgresql) — the JDBC extract tests need a real server"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL server on loopback, started for this test session.

    Yields its JDBC URL (database ``lending``, superuser ``postgres``, trust auth on
    127.0.0.1 only). PostgreSQL refuses to run as root, so as root it runs as the
    ``postgres`` user the Debian package creates.
    """
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="riskcontrol-pg-"))
    if as_user:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        [*as_user, _postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={data} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    pg_ctl = [*as_user, _postgres_bin("pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-l", str(data / "server.log"), "-o", options, "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        psql(port, "postgres", "CREATE DATABASE lending")
        yield {"port": port, "url": f"jdbc:postgresql://127.0.0.1:{port}/lending"}
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def psql(port: int, database: str, sql: str) -> str:
    """Run SQL on the test server with psql; returns its unaligned, tuples-only output."""
    done = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database]
        + ["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()
