"""Steps running at once write the same tables: every write lands, none is refused.

The Airflow DAGs run tasks in parallel, each in a process of its own with its own Spark
session, and every task writes ``ops.manifest`` and ``ops.quarantine``. Delta refuses a
commit when another writer committed first, and two first writers race to create a
table. The process test starts two such writers at the same moment, on a local lakehouse
(they take turns on the table locks) and on one without locks (as on an object store:
they retry on Delta's conflicts), and checks that the tables hold exactly the union of
what they wrote. This file is also the writers' script (``__main__`` below).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_settings

from riskcontrol.core import lakehouse, locks
from riskcontrol.core.catalog import OPS_MANIFEST, OPS_QUARANTINE, OPS_WATERMARKS

WRITERS = ("a", "b")
BATCHES = 2  # per writer and lakehouse: the first creates the tables, the second MERGEs
RECORDS = 2  # rejected records per batch
RULE = "concurrency_test"
LAKEHOUSES = {"locked": "lakehouse", "unlocked": "lakehouse-unlocked"}
WRITER_TIMEOUT = 600


def writer_settings(home: Path, lake: str):
    return make_settings(
        home,
        lakehouse_root=str(home / LAKEHOUSES[lake]),
        spark_master="local[1]",
        spark_driver_memory="1g",
    )


def write_batches(home: Path, name: str) -> None:
    """One writer: on each lakehouse, ``BATCHES`` steps of a run, each quarantining
    ``RECORDS`` records and recording its manifest row, as a collect task does."""
    from riskcontrol.core.runs import Run, StepCounts
    from riskcontrol.core.spark import get_spark

    spark = get_spark(writer_settings(home, "locked"))
    for lake in LAKEHOUSES:
        barrier(home, lake, name)  # every writer starts each lakehouse at the same moment
        if lake == "unlocked":
            locks.lock_path = lambda settings: None  # as on an object store: nothing to lock
        settings = writer_settings(home, lake)
        for batch in range(BATCHES):
            run = Run(spark, settings, run_id=f"{name}-{batch}")
            rejected = spark.createDataFrame(
                [(RULE, "test", f"{name}-{batch}-{i}", "file:///test") for i in range(RECORDS)],
                "rule string, reason string, record string, source_uri string",
            )
            quarantined = run.quarantine(rejected, "collect", "bronze.test")
            run.record(
                StepCounts(
                    "collect",
                    f"source-{name}",
                    "bronze.test",
                    rows_in=quarantined,
                    rows_out=0,
                    rows_quarantined=quarantined,
                )
            )


def barrier(home: Path, tag: str, name: str) -> None:
    """Wait until every writer reached ``tag``; give up if one failed (see ``__main__``)."""
    (home / f"{tag}-{name}").touch()
    while not all((home / f"{tag}-{n}").exists() for n in WRITERS):
        if any(home.glob("failed-*")):
            raise SystemExit(f"writer {name}: another writer failed before {tag}")
        time.sleep(0.01)


def run_writers(home: Path) -> list[str]:
    """Run the writer processes to the end; the output of each one that failed."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, __file__, str(home), name],
            cwd=Path(__file__).parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in WRITERS
    }
    try:
        outputs = {name: p.communicate(timeout=WRITER_TIMEOUT)[0] for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    return [f"writer {n}:\n{outputs[n][-3000:]}" for n, p in procs.items() if p.returncode]


def test_writers_started_together_all_land_in_the_same_new_and_existing_tables(spark, tmp_path):
    failed = run_writers(tmp_path)

    assert not failed, "\n\n".join(failed)
    runs = sorted(f"{n}-{b}" for n in WRITERS for b in range(BATCHES))
    records = sorted(f"{r}-{i}" for r in runs for i in range(RECORDS))
    for lake in LAKEHOUSES:
        settings = writer_settings(tmp_path, lake)
        manifest = lakehouse.read(spark, OPS_MANIFEST, settings).collect()
        assert sorted((m.run_id, m.source, m.rows_quarantined) for m in manifest) == [
            (r, f"source-{r[0]}", RECORDS) for r in runs
        ], lake
        quarantine = lakehouse.read_clear(spark, OPS_QUARANTINE, settings).collect()
        assert sorted(q.record for q in quarantine) == records, lake
        assert all(q.record.rsplit("-", 1)[0] == q.run_id for q in quarantine), lake


def test_a_write_waits_for_the_table_lock_says_who_holds_it_and_gives_up_clearly(tmp_path, caplog):
    settings = make_settings(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from conftest import make_settings; from riskcontrol.core import locks\n"
            "with locks.table_lock(make_settings(sys.argv[1]), 'ops.manifest'):\n"
            "    print('locked', flush=True); sys.stdin.readline()",
            str(tmp_path),
        ],
        cwd=Path(__file__).parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with (
            caplog.at_level(logging.WARNING, logger="riskcontrol.core.locks"),
            pytest.raises(locks.LockTimeout) as timeout,
            locks.table_lock(settings, "ops.manifest", timeout=2, notice_after=0.5),
        ):
            pass
    finally:
        holder.communicate("\n", timeout=30)

    held_by = f"held by pid {holder.pid} since "
    (waiting,) = [r.getMessage() for r in caplog.records]
    assert waiting.startswith(f"waiting for ops.manifest ({held_by}")
    assert str(timeout.value).startswith(f"ops.manifest is still locked after 2 s, {held_by}")
    assert "run this step again" in str(timeout.value)
    path = locks.table_lock_path(settings, "ops.manifest")
    assert path == Path(settings.lakehouse_root) / ".locks" / "ops.manifest.lock"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with locks.table_lock(settings, "ops.manifest", timeout=2):  # free again: no wait
        signed = path.read_text()
    assert re.fullmatch(rf"pid {os.getpid()} since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n", signed)


class FakeJavaError(Exception):
    """What PySpark raises for a JVM error: the JVM stack trace kept in ``_stackTrace``."""

    def __init__(self, message: str, stack: str = ""):
        super().__init__(message)
        self._stackTrace = stack


APPEND_CLASS = "ConcurrentAppendException"
APPEND = (
    "io.delta.exceptions.ConcurrentAppendException: [DELTA_CONCURRENT_APPEND] Files were "
    "added to the root of the table by a concurrent update.\n\tat org.apache.spark.sql..."
)
PROTOCOL = "io.delta.exceptions.ProtocolChangedException: [DELTA_PROTOCOL_CHANGED] ..."


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # Py4J: the Java exception's class and message in the error's text
        (FakeJavaError(f"An error occurred while calling o81.execute.\n: {APPEND}"), APPEND_CLASS),
        # converted by PySpark or Delta: the JVM stack trace kept aside
        (
            FakeJavaError("[DELTA_CONCURRENT_APPEND] ConcurrentAppendException: ...", APPEND),
            APPEND_CLASS,
        ),
        (FakeJavaError("[DELTA_PROTOCOL_CHANGED] ...", PROTOCOL), "ProtocolChangedException"),
        (
            FakeJavaError("[DELTA_PATH_EXISTS] Cannot write to already existent path"),
            "DELTA_PATH_EXISTS",
        ),
        (FakeJavaError("[DELTA_MISSING_COLUMN] Cannot find loan_id in table columns"), None),
        (ValueError("ops.manifest has no keys to merge on"), None),
    ],
)
def test_delta_write_conflicts_are_told_from_other_errors(error, expected):
    assert lakehouse.conflict(error) == expected


def test_a_conflicting_write_is_done_again_until_it_lands_then_given_up(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(lakehouse, "_pause", lambda attempt: 0.0)
    settings = make_settings(tmp_path)
    calls = []

    def write(df, table, settings, refusals):
        calls.append(table.full_name)
        if len(calls) <= refusals:
            raise FakeJavaError("[DELTA_CONCURRENT_APPEND] ...", APPEND)
        return "landed"

    guarded = lakehouse._guarded(write)
    with caplog.at_level(logging.WARNING, logger="riskcontrol.core.lakehouse"):
        assert guarded(None, OPS_WATERMARKS, settings, 2) == "landed"
    assert calls == ["ops.watermarks"] * 3
    assert [r.getMessage() for r in caplog.records] == [
        "ops.watermarks: another writer committed first (ConcurrentAppendException); writing "
        f"again in 0.0 s (attempt {n} of 8)"
        for n in (2, 3)
    ]

    calls.clear()
    with pytest.raises(lakehouse.ConcurrentWriteError) as given_up:
        guarded(None, OPS_WATERMARKS, settings, 99)
    assert len(calls) == lakehouse.WRITE_ATTEMPTS == 8
    assert str(given_up.value) == (
        "ops.watermarks: another writer committed first 8 times in a row "
        "(ConcurrentAppendException), so this write was not done. Run the step again; if it "
        "keeps happening, let fewer tasks write ops.watermarks at once."
    )

    def broken(df, table, settings):
        calls.append(table.full_name)
        raise ValueError("no keys")

    calls.clear()
    with pytest.raises(ValueError, match="no keys"):
        lakehouse._guarded(broken)(None, OPS_WATERMARKS, settings)
    assert calls == ["ops.watermarks"]  # any other error: raised at once, not retried


def test_retry_pauses_double_up_to_a_cap_and_are_jittered():
    for attempt, full in ((1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 20.0), (12, 20.0)):
        pauses = {lakehouse._pause(attempt) for _ in range(20)}
        assert all(full / 2 <= p <= full for p in pauses), attempt
        assert len(pauses) > 1, attempt  # writers that collided do not wait alike


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    home, name = Path(sys.argv[1]), sys.argv[2]
    try:
        write_batches(home, name)
    except BaseException:
        (home / f"failed-{name}").touch()  # the other writers stop waiting for this one
        raise
