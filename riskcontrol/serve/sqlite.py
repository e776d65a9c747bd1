"""Private SQLite files for the service: API keys and the decision journal.

Each file is created 0600 inside a 0700 folder; its schema is applied once per file per
process. A connection from :func:`private_db` commits when the block succeeds, rolls back
when it raises, and is always closed.
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


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


@contextmanager
def private_db(path: Path, schema: str, *pragmas: str) -> Iterator[sqlite3.Connection]:
    """A connection to ``path`` (created private if new) with ``schema`` applied.

    ``pragmas`` are run on every connection (e.g. ``"synchronous=FULL"``).
    """
    path = Path(path)
    if not path.exists():
        _create_private(path)
    key = (str(path.resolve()), schema)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout=30000")
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
        with _LOCK:
            if key not in _READY:
                conn.executescript(schema)
                _READY.add(key)
        conn.execute("BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()
