"""The decision journal: idempotent, immutable, private, and durable through kill -9.

The process tests start writers with ``python -c`` (``WRITER`` below): each records keys
in a loop and prints every key only after ``record`` returned, so a printed key is one
the service would have answered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from riskcontrol.serve.journal import DecisionJournal, Entry, default_path

WRITER = """
import hashlib, sys
from riskcontrol.serve.journal import DecisionJournal
journal = DecisionJournal(sys.argv[1])
for i in range(int(sys.argv[2]), int(sys.argv[3])):
    key = hashlib.sha256(f"app-{i}".encode()).hexdigest()
    _, created = journal.record(key, {"i": i, "writer": sys.argv[4]})
    print(key, int(created), flush=True)
"""
PROCESS_TIMEOUT = 60


def key(i: int) -> str:
    return hashlib.sha256(f"app-{i}".encode()).hexdigest()


@pytest.fixture
def journal(tmp_path):
    return DecisionJournal(default_path(tmp_path))


def writer(path, start: int, stop: int, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(start), str(stop), name],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_default_path(tmp_path):
    assert default_path(tmp_path) == tmp_path / "service" / "decisions.db"


def test_a_key_is_recorded_once_and_the_first_record_wins(journal):
    before = dt.datetime.now(dt.UTC)
    first, created = journal.record(key(1), {"decision": "approve", "pd": 0.02})
    again, created_again = journal.record(key(1), {"decision": "decline", "pd": 0.9})
    assert created is True
    assert created_again is False
    assert first == again
    assert first == Entry(1, key(1), first.created_at, {"decision": "approve", "pd": 0.02})
    assert first.created_at.tzinfo is not None
    assert first.created_at.utcoffset() == dt.timedelta(0)
    assert before <= first.created_at <= dt.datetime.now(dt.UTC)
    assert journal.get(key(1)) == first
    assert journal.get(key(2)) is None
    assert journal.count() == 1
    assert journal.last_seq() == 1


def test_the_record_is_stored_as_canonical_json(journal):
    journal.record(key(1), {"b": [1, 2], "a": {"y": None, "x": True}})
    with sqlite3.connect(journal.path) as conn:
        created_at, text = conn.execute("SELECT created_at, record FROM decisions").fetchone()
    assert text == '{"a":{"x":true,"y":null},"b":[1,2]}'
    assert len(created_at) == len("2024-01-01T00:00:00.000000+00:00")
    assert created_at.endswith("+00:00")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE decisions SET record = '{}'",
        "UPDATE decisions SET key = 'x'",
        "DELETE FROM decisions",
        "DELETE FROM decisions WHERE seq = 1",
        # REPLACE deletes the old row without firing delete triggers: refused on insert.
        "INSERT OR REPLACE INTO decisions (key, created_at, record) "
        "SELECT key, created_at, '{}' FROM decisions",
        "REPLACE INTO decisions (seq, key, created_at, record) VALUES (1, 'new', 'now', '{}')",
        "INSERT INTO decisions (key, created_at, record) SELECT key, created_at, '{}' "
        "FROM decisions WHERE true ON CONFLICT (key) DO UPDATE SET record = excluded.record",
    ],
)
def test_decisions_are_immutable(journal, sql):
    first, _ = journal.record(key(1), {"decision": "approve"})
    conn = sqlite3.connect(journal.path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="decisions are immutable"):
            conn.execute(sql)
        conn.rollback()
    finally:
        conn.close()
    assert journal.since(0) == [first]


def test_since_pages_in_sequence_order(journal):
    assert journal.since(0) == []
    assert journal.last_seq() == 0
    for i in range(10):
        journal.record(key(i), {"i": i})
    assert [e.record["i"] for e in journal.since(0)] == list(range(10))
    assert [e.seq for e in journal.since(0, limit=3)] == [1, 2, 3]
    assert [e.seq for e in journal.since(3, limit=3)] == [4, 5, 6]
    assert [e.seq for e in journal.since(8)] == [9, 10]
    assert journal.since(10) == []
    assert journal.last_seq() == 10
    with pytest.raises(ValueError, match="limit"):
        journal.since(0, limit=0)


@pytest.mark.parametrize(
    "bad",
    [
        "APP-000123",  # a clear application id
        "a" * 63,
        "a" * 65,
        "A" * 64,  # upper case would be a second key for the same pseudonym
        "g" * 64,
        " " + "a" * 63,
        None,
        12345,
    ],
)
def test_a_key_that_is_not_a_pseudonym_is_refused(journal, bad):
    with pytest.raises(ValueError, match="64 lowercase hex"):
        journal.record(bad, {"decision": "approve"})
    with pytest.raises(ValueError, match="64 lowercase hex"):
        journal.get(bad)
    assert journal.count() == 0


def test_the_refusal_does_not_echo_the_key(journal):
    with pytest.raises(ValueError) as info:
        journal.record("APP-000123", {})
    assert "APP-000123" not in str(info.value)


def test_a_clear_customer_id_is_refused(journal):
    with pytest.raises(ValueError, match="customer_key") as info:
        journal.record(key(1), {"customer_key": "CUST-42"})
    assert "CUST-42" not in str(info.value)
    assert journal.count() == 0


@pytest.mark.parametrize(
    "record, problem",
    [
        ({"when": dt.date(2024, 1, 1)}, "date"),
        ({"pd": float("nan")}, "not JSON compliant"),
        ({"raw": b"bytes"}, "bytes"),
        ({1: "a", "b": 2}, "not supported|<"),
        (["not", "a", "dict"], "is a dict"),
    ],
)
def test_a_record_that_is_not_json_is_refused(journal, record, problem):
    with pytest.raises(ValueError, match=problem):
        journal.record(key(1), record)
    assert journal.count() == 0


def test_the_file_and_folder_are_private(journal):
    journal.record(key(1), {"decision": "approve"})
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(journal.path.parent.stat().st_mode) == 0o700
    for side in ("-wal", "-shm"):
        side_file = journal.path.with_name(journal.path.name + side)
        if side_file.exists():
            assert stat.S_IMODE(side_file.stat().st_mode) == 0o600
    with sqlite3.connect(journal.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_count_subject_counts_recent_decisions_of_one_customer(journal):
    alice, bob = key(100), key(200)
    for i in range(3):
        journal.record(key(i), {"customer_key": alice})
    journal.record(key(3), {"customer_key": bob})
    journal.record(key(4), {"no_customer": True})
    now = dt.datetime.now(dt.UTC)
    assert journal.count_subject(alice, now - dt.timedelta(hours=24)) == 3
    assert journal.count_subject(bob, now - dt.timedelta(hours=24)) == 1
    assert journal.count_subject(key(300), now - dt.timedelta(hours=24)) == 0
    assert journal.count_subject(alice, now + dt.timedelta(seconds=1)) == 0
    with pytest.raises(ValueError, match="aware"):
        journal.count_subject(alice, dt.datetime.now())
    with pytest.raises(ValueError, match="64 lowercase hex"):
        journal.count_subject("CUST-1", now)
    with sqlite3.connect(journal.path) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM decisions "
            "WHERE subject = ? AND created_at >= ?",
            (alice, "x"),
        ).fetchall()
    assert "decisions_subject" in " ".join(str(row) for row in plan)


def test_an_erasure_deletes_one_subjects_decisions_and_leaves_no_byte_of_them(journal):
    alice, bob = key(100), key(200)
    marker = "0f" * 20  # a value only Alice's records hold
    for i in range(3):
        journal.record(key(i), {"customer_key": alice, "fingerprint": f"{marker}{i}"})
    kept, _ = journal.record(key(3), {"customer_key": bob, "fingerprint": "ab" * 20})
    files = [journal.path, journal.path.with_name(journal.path.name + "-wal")]
    assert any(marker.encode() in f.read_bytes() for f in files if f.exists())

    # before the erasure the rows are as immutable as any
    conn = sqlite3.connect(journal.path)
    with pytest.raises(sqlite3.IntegrityError, match="decisions are immutable"):
        conn.execute("DELETE FROM decisions WHERE subject = ?", (alice,))
    conn.close()

    assert journal.holds(alice) and journal.holds(bob)
    assert journal.erase(alice) == 3
    assert not journal.holds(alice) and journal.holds(bob)
    assert journal.since(0) == [kept]
    assert journal.erased(alice) and not journal.erased(bob)
    assert journal.count_subject(alice, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) == 0
    # zeroed in the file, and the write-ahead log emptied
    assert not any(marker.encode() in f.read_bytes() for f in files if f.exists())
    wal = files[1]
    assert not wal.exists() or wal.stat().st_size == 0
    # the rest stays immutable, the tombstone too; a second erasure finds nothing
    conn = sqlite3.connect(journal.path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="decisions are immutable"):
            conn.execute("DELETE FROM decisions")
        conn.rollback()
        with pytest.raises(sqlite3.IntegrityError, match="erasures are kept"):
            conn.execute("DELETE FROM erasures")
        conn.rollback()
    finally:
        conn.close()
    assert journal.erase(alice) == 0
    with pytest.raises(ValueError, match="64 lowercase hex"):
        journal.erase("C00000001")


def test_a_journal_from_before_erasures_can_erase_once_opened(tmp_path):
    path = default_path(tmp_path)
    path.parent.mkdir(mode=0o700)
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE decisions (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE "
        "NOT NULL, subject TEXT, created_at TEXT NOT NULL, record TEXT NOT NULL);"
        "CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions "
        "BEGIN SELECT RAISE(ABORT, 'decisions are immutable'); END;"
        f"INSERT INTO decisions (key, subject, created_at, record) VALUES "
        f"('{key(1)}', '{key(100)}', '2026-01-01T00:00:00.000000+00:00', '{{}}');"
    )
    conn.close()
    journal = DecisionJournal(path)
    assert journal.erase(key(100)) == 1
    assert journal.count() == 0


def test_threads_recording_overlapping_keys_store_each_key_once(journal):
    threads, per_thread, step = 8, 50, 25  # thread t records keys t*25 .. t*25+49
    distinct = step * (threads - 1) + per_thread
    start = threading.Barrier(threads)

    def work(t: int) -> list[tuple[int, int, bool]]:
        start.wait(timeout=10)
        out = []
        for i in range(t * step, t * step + per_thread):
            entry, created = journal.record(key(i), {"i": i, "thread": t})
            out.append((i, entry.seq, created))
        return out

    with ThreadPoolExecutor(threads) as pool:
        results = [r for rs in pool.map(work, range(threads), timeout=60) for r in rs]

    assert len(results) == threads * per_thread
    assert journal.count() == distinct
    assert journal.last_seq() == distinct
    assert sum(created for _, _, created in results) == distinct  # one winner per key
    seq_of = {}
    for i, seq, _ in results:
        assert seq_of.setdefault(i, seq) == seq  # every caller saw the same entry
    assert sorted(seq_of.values()) == list(range(1, distinct + 1))


def test_processes_recording_overlapping_keys_store_each_key_once(tmp_path):
    path = default_path(tmp_path)
    # Three writers start on a file none has created yet; their key ranges overlap.
    procs = [writer(path, 0, 150, "a"), writer(path, 100, 250, "b"), writer(path, 200, 350, "c")]
    outputs = [p.communicate(timeout=PROCESS_TIMEOUT)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    lines = [line.split() for out in outputs for line in out.splitlines()]
    assert len(lines) == 450
    assert sum(int(created) for _, created in lines) == 350  # one winner per key
    journal = DecisionJournal(path)
    assert journal.count() == 350
    assert journal.last_seq() == 350
    assert {e.key for e in journal.since(0)} == {key(i) for i in range(350)}


def test_every_answered_decision_survives_kill_9(tmp_path):
    path = default_path(tmp_path)
    wanted = 200
    proc = writer(path, 0, 10**9, "doomed")
    watchdog = threading.Timer(PROCESS_TIMEOUT, proc.kill)  # nothing can hang the run
    watchdog.start()
    printed = []
    try:
        while len(printed) < wanted:
            line = proc.stdout.readline()
            if not line:
                break
            printed.append(line.split()[0])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()

    assert len(printed) == wanted, "the writer died or stalled before it was killed"
    assert proc.returncode == -signal.SIGKILL
    journal = DecisionJournal(path)
    for k in printed:
        assert journal.get(k) is not None, "an answered decision was lost"
    assert journal.count() >= wanted
    entries = journal.since(0, limit=10**6)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert [e.key for e in entries] == [key(i) for i in range(len(entries))]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # The journal takes new decisions after the crash.
    entry, created = journal.record(key(10**9 + 1), {"after": "crash"})
    assert created and entry.seq == len(entries) + 1
