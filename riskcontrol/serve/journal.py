"""The decision journal: every decision, durable before it is answered, never changed.

SQLite in WAL mode with ``synchronous=FULL`` (0600 in a 0700 folder): a decision whose
:meth:`DecisionJournal.record` returned survives a crash of the process or the machine,
and a process killed at any point leaves a readable file.

The key of a row is a keyed pseudonym of the application id (64 hex characters), so a
repeated application finds its decision and is not decided twice, and no clear id is ever
stored. Triggers refuse any UPDATE, DELETE or INSERT OR REPLACE (whose implicit delete
fires no delete trigger): what is written stays as written. The one exception is an
erasure (``riskctl erase``): :meth:`DecisionJournal.erase` records the customer's
pseudonym in ``erasures`` first, and only the decisions of a subject recorded there can
be deleted; deleted bytes are zeroed (``secure_delete``) and the WAL emptied, so no copy
of them is left in the files. ``seq`` has no gaps and grows
in commit order (SQLite has one writer at a time), so a lander that copies the rows after
the highest ``seq`` it has seen never misses one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riskcontrol.serve.sqlite import private_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT UNIQUE NOT NULL,
    subject TEXT,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_subject ON decisions (subject, created_at);
CREATE TRIGGER IF NOT EXISTS decisions_no_replace BEFORE INSERT ON decisions
WHEN EXISTS (SELECT 1 FROM decisions WHERE key = NEW.key OR seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'decisions are immutable'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are immutable'); END;
CREATE TABLE IF NOT EXISTS reviews (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT UNIQUE NOT NULL,
    subject TEXT,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS reviews_no_replace BEFORE INSERT ON reviews
WHEN EXISTS (SELECT 1 FROM reviews WHERE key = NEW.key OR seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'reviews are immutable'); END;
CREATE TRIGGER IF NOT EXISTS reviews_no_update BEFORE UPDATE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are immutable'); END;
CREATE TABLE IF NOT EXISTS erasures (subject TEXT PRIMARY KEY, erased_at TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS erasures_kept BEFORE DELETE ON erasures
BEGIN SELECT RAISE(ABORT, 'erasures are kept'); END;
BEGIN IMMEDIATE;
DROP TRIGGER IF EXISTS decisions_no_delete;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
WHEN NOT EXISTS (SELECT 1 FROM erasures WHERE subject = OLD.subject)
BEGIN SELECT RAISE(ABORT, 'decisions are immutable'); END;
DROP TRIGGER IF EXISTS reviews_no_delete;
CREATE TRIGGER reviews_no_delete BEFORE DELETE ON reviews
WHEN NOT EXISTS (SELECT 1 FROM erasures WHERE subject = OLD.subject)
BEGIN SELECT RAISE(ABORT, 'reviews are immutable'); END;
COMMIT;
"""
PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON")
OPEN_TIMEOUT = 30.0  # seconds to wait for another process creating the same file
_KEY = re.compile(r"[0-9a-f]{64}")
_SELECT = "SELECT seq, key, created_at, record FROM decisions"


def default_path(home: Path) -> Path:
    return Path(home) / "service" / "decisions.db"


@dataclass(frozen=True)
class Entry:
    seq: int
    key: str
    created_at: dt.datetime  # UTC, aware
    record: dict[str, Any]


def _check_key(value: object, what: str = "key") -> str:
    """``value`` when it is a pseudonym; the refusal never repeats the value."""
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise ValueError(f"a journal {what} is a keyed pseudonym: 64 lowercase hex characters")
    return value


def _stamp(when: dt.datetime) -> str:
    """Fixed-width ISO text in UTC with microseconds, so text order is time order."""
    if when.tzinfo is None:
        raise ValueError("a journal time must be timezone-aware")
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _dump(record: object) -> str:
    if not isinstance(record, dict):
        raise ValueError(f"a decision record is a dict, not a {type(record).__name__}")
    try:
        return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the decision record is not JSON-serializable: {exc}") from None


def _entry(row: tuple[int, str, str, str]) -> Entry:
    seq, key, created_at, record = row
    return Entry(seq, key, dt.datetime.fromisoformat(created_at), json.loads(record))


class DecisionJournal:
    """Append-only store of decisions keyed by application pseudonym."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._opened = False

    def _db(self):
        if not self._opened:
            self._open()
        return private_db(self.path, SCHEMA, *PRAGMAS)

    def _open(self) -> None:
        """Open once, retrying while another process creates the file: switching a new
        file to WAL fails at once with "database is locked" (no busy wait) when two
        processes race to do it. Once in WAL the file stays so, and the pragma is a no-op.
        """
        deadline = time.monotonic() + OPEN_TIMEOUT
        while True:
            try:
                with private_db(self.path, SCHEMA, *PRAGMAS):
                    pass
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            else:
                self._opened = True
                return

    def record(self, key: str, record: dict[str, Any]) -> tuple[Entry, bool]:
        """Store ``record`` under ``key`` unless the key is there: (entry, created).

        A key already there returns its first entry, unchanged, with ``created`` False.
        ``record["customer_key"]`` (a pseudonym), when present, is indexed for the count
        of a customer's recent decisions.
        """
        _check_key(key)
        text = _dump(record)
        subject = record.get("customer_key")
        if subject is not None:
            _check_key(subject, "customer_key")
        now = _stamp(dt.datetime.now(dt.UTC))
        with self._db() as db:
            # One write statement: it holds the write lock from its start, so NOT EXISTS
            # is exact under concurrent threads and processes, and a repeat takes no seq.
            cur = db.execute(
                "INSERT INTO decisions (key, subject, created_at, record) "
                "SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM decisions WHERE key = ?)",
                (key, subject, now, text, key),
            )
            created = cur.rowcount == 1
            row = db.execute(f"{_SELECT} WHERE key = ?", (key,)).fetchone()
        return _entry(row), created

    def get(self, key: str) -> Entry | None:
        _check_key(key)
        with self._db() as db:
            row = db.execute(f"{_SELECT} WHERE key = ?", (key,)).fetchone()
        return _entry(row) if row else None

    def since(self, seq: int, limit: int = 10_000) -> list[Entry]:
        """Up to ``limit`` entries after ``seq``, in sequence order (for the lander)."""
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        with self._db() as db:
            rows = db.execute(
                f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", (int(seq), int(limit))
            ).fetchall()
        return [_entry(r) for r in rows]

    def count_subject(self, subject: str, since: dt.datetime) -> int:
        """Decisions of one customer (pseudonym) recorded at or after ``since``."""
        _check_key(subject, "subject")
        with self._db() as db:
            (n,) = db.execute(
                "SELECT count(*) FROM decisions WHERE subject = ? AND created_at >= ?",
                (subject, _stamp(since)),
            ).fetchone()
        return n

    def erase(self, subject: str) -> int:
        """Delete every decision and review of one customer (pseudonym); how many rows.

        The subject is recorded in ``erasures`` (kept: the trigger then lets its rows
        go), the rows are deleted with their bytes zeroed, and the WAL is checkpointed
        into the file and truncated. A WAL that a reader holds open cannot be truncated:
        that is an error to retry, not a silent leftover.
        """
        _check_key(subject, "subject")
        now = _stamp(dt.datetime.now(dt.UTC))
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO erasures (subject, erased_at) VALUES (?, ?)", (subject, now)
            )
            deleted = db.execute("DELETE FROM decisions WHERE subject = ?", (subject,)).rowcount
            deleted += db.execute("DELETE FROM reviews WHERE subject = ?", (subject,)).rowcount
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.close()
        if busy:
            raise RuntimeError(
                f"{self.path}: the erased decisions are deleted, but a reader kept the "
                "write-ahead log from being emptied; run the erasure again"
            )
        return deleted

    def holds(self, subject: str) -> bool:
        """Whether any decision of this customer (pseudonym) is in the journal."""
        _check_key(subject, "subject")
        with self._db() as db:
            row = db.execute(
                "SELECT 1 FROM decisions WHERE subject = ? UNION ALL "
                "SELECT 1 FROM reviews WHERE subject = ?",
                (subject, subject),
            ).fetchone()
        return row is not None

    def erased(self, subject: str) -> bool:
        _check_key(subject, "subject")
        with self._db() as db:
            row = db.execute("SELECT 1 FROM erasures WHERE subject = ?", (subject,)).fetchone()
        return row is not None

    def count(self) -> int:
        with self._db() as db:
            return db.execute("SELECT count(*) FROM decisions").fetchone()[0]

    def last_seq(self) -> int:
        with self._db() as db:
            return db.execute("SELECT coalesce(max(seq), 0) FROM decisions").fetchone()[0]

    # --- human reviews of "review" decisions (the workbench) ------------------------------
    def review(self, key: str, record: dict[str, Any]) -> Entry:
        """Record a reviewer's final decision on the application ``key`` as a new event;
        the original decision stays as it was. A second review of one application is
        refused (ValueError), as is a review of anything but a "review" decision."""
        _check_key(key)
        text = _dump(record)
        now = _stamp(dt.datetime.now(dt.UTC))
        with self._db() as db:
            row = db.execute("SELECT subject, record FROM decisions WHERE key = ?", (key,))
            row = row.fetchone()
            if row is None:
                raise ValueError("no decision for this application in the journal")
            if json.loads(row[1]).get("decision") != "review":
                raise ValueError("only an application decided 'review' is reviewed")
            cur = db.execute(
                "INSERT INTO reviews (key, subject, created_at, record) "
                "SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM reviews WHERE key = ?)",
                (key, row[0], now, text, key),
            )
            if cur.rowcount != 1:
                raise ValueError("this application was reviewed already; a review is final")
            seq, created = db.execute(
                "SELECT seq, created_at FROM reviews WHERE key = ?", (key,)
            ).fetchone()
        return Entry(seq, key, dt.datetime.fromisoformat(created), record)

    def reviews_after(self, seq: int, limit: int = 10_000) -> list[Entry]:
        """Up to ``limit`` reviews after review ``seq``, in order (for the lander)."""
        with self._db() as db:
            rows = db.execute(
                "SELECT seq, key, created_at, record FROM reviews WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (int(seq), int(limit)),
            ).fetchall()
        return [_entry(r) for r in rows]

    def review_of(self, key: str) -> Entry | None:
        _check_key(key)
        with self._db() as db:
            row = db.execute(
                "SELECT seq, key, created_at, record FROM reviews WHERE key = ?", (key,)
            ).fetchone()
        return _entry(row) if row else None

    def awaiting_review(self, limit: int = 500) -> list[Entry]:
        """Decisions of "review" with no review yet, oldest first."""
        with self._db() as db:
            rows = db.execute(
                f"{_SELECT} d WHERE json_extract(d.record, '$.decision') = 'review' "
                "AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.key = d.key) "
                "ORDER BY d.seq LIMIT ?",
                (int(limit),),
            ).fetchall()
        return [_entry(r) for r in rows]

    def reviews_since(self, since: dt.datetime) -> list[Entry]:
        with self._db() as db:
            rows = db.execute(
                "SELECT seq, key, created_at, record FROM reviews WHERE created_at >= ? "
                "ORDER BY seq",
                (_stamp(since),),
            ).fetchall()
        return [_entry(r) for r in rows]

    def decided_since(self, since: dt.datetime) -> list[dict[str, Any]]:
        """The dashboard's fields of every decision at or after ``since``, in order."""
        with self._db() as db:
            rows = db.execute(
                "SELECT created_at, json_extract(record, '$.decision'), "
                "json_extract(record, '$.arm'), json_extract(record, '$.pd'), "
                "json_extract(record, '$.latency_ms'), json_extract(record, '$.rules_fired'), "
                "json_extract(record, '$.champion.pd'), "
                "json_extract(record, '$.challenger.pd'), "
                "json_extract(record, '$.features.requested_amount'), "
                "json_extract(record, '$.rules_action') "
                "FROM decisions WHERE created_at >= ? ORDER BY seq",
                (_stamp(since),),
            ).fetchall()
        cols = [
            "created_at",
            "decision",
            "arm",
            "pd",
            "latency_ms",
            "rules_fired",
            "champion_pd",
            "challenger_pd",
            "requested_amount",
            "rules_action",
        ]
        out = []
        for r in rows:
            d = dict(zip(cols, r, strict=True))
            d["rules_fired"] = json.loads(d["rules_fired"] or "[]")
            d["created_at"] = dt.datetime.fromisoformat(d["created_at"])
            out.append(d)
        return out
