"""Private SQLite files for the service: API keys and the decision journal.

Each file is created 0600 inside a 0700 folder; its schema is applied once per file per
process. :func:`private_db` gives a connection inside a transaction that commits when
the block succeeds and rolls back when it raises. Connections are kept open per thread
and file (opening one, with its pragmas, costs more than a decision's reads); a file
that was removed or replaced since is opened afresh.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_READY: set[tuple[str, str]] = set()
_LOCK = threading.Lock()
_OPEN = threading.local()  # .conns: {path: (connection, inode)}


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _connect(path: Path, schema: str, pragmas: tuple[str, ...]) -> sqlite3.Connection:
    if not path.exists():
        _create_private(path)
    conns = _OPEN.__dict__.setdefault("conns", {})
    key = str(path)
    inode = path.stat().st_ino
    cached = conns.get(key)
    if cached is not None:
        if cached[1] == inode:
            return cached[0]
        cached[0].close()  # the file was replaced: never write to the old one
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=30000")
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}")
    ready = (str(path.resolve()), schema)
    with _LOCK:
        if ready not in _READY:
            conn.executescript(schema)
            _READY.add(ready)
    conns[key] = (conn, inode)
    return conn


@contextmanager
def private_db(path: Path, schema: str, *pragmas: str) -> Iterator[sqlite3.Connection]:
    """A connection to ``path`` (created private if new) with ``schema`` applied, in a
    transaction; ``pragmas`` (e.g. ``"synchronous=FULL"``) are set on each connection."""
    path = Path(path)
    try:
        conn = _connect(path, schema, pragmas)
    except BaseException:
        close(path)
        raise
    conn.execute("BEGIN")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def close(path: Path) -> None:
    """Close this thread's connection to ``path``, if it has one."""
    cached = _OPEN.__dict__.get("conns", {}).pop(str(Path(path)), None)
    if cached is not None:
        cached[0].close()
