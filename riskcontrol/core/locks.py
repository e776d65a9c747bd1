"""Locks on the lakehouse: one for the whole lakehouse, and one per table.

Every write of ``riskcontrol.core.lakehouse`` takes the lakehouse lock shared, for the
duration of that write; ``riskctl erase`` takes it exclusively for the whole erasure,
because it vacuums history with zero retention: a commit landing between its VACUUM and
its log truncation would point at files that are gone. So a pipeline run (or an Airflow
task) that reaches a write while an erasure runs waits for it, and an erasure waits for
the writes in flight to finish.

Inside it, each write holds its table's lock (``table_lock``) alone: Delta refuses a
commit when another writer committed to the same table since it read it (two Airflow
tasks MERGEing into ``ops.manifest``, two first writers creating a table), so writers
of one table take turns. A write that waits more than a few seconds logs who holds the
table, and gives up after ``TABLE_LOCK_TIMEOUT`` with a message naming the holder. The
lakehouse lock is always taken before a table lock, so the two never deadlock.

The locks are advisory ``flock``s on ``<lakehouse>/.riskcontrol.lock`` and
``<lakehouse>/.locks/<table>.lock``: they hold for processes on this machine sharing a
local lakehouse. On an object store (``s3a://``...) there is nothing to lock: writes
retry on Delta's conflicts instead (``lakehouse``), and you pause the DAGs before
erasing (README "Personal data").
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from riskcontrol.core.config import Settings

LOCK_NAME = ".riskcontrol.lock"
TABLE_LOCKS_DIR = ".locks"
# A table is locked for one write (a MERGE, an overwrite): a wait this long means the
# holder is stuck, not busy.
TABLE_LOCK_TIMEOUT = 3600.0
# A wait shorter than this is a writer finishing its commit: not worth a log line.
NOTICE_AFTER = 3.0

log = logging.getLogger(__name__)

# A process holding the exclusive lock writes too (the erasure's audit row): its own
# shared requests pass instead of waiting on itself.
_state = threading.local()
_exclusive_holders = 0
_guard = threading.Lock()


def lock_path(settings: Settings) -> Path | None:
    """The lock file of a local lakehouse; None on a remote one."""
    root = str(settings.lakehouse_root)
    if "://" in root and not root.startswith("file:"):
        return None
    return Path(root.removeprefix("file://").removeprefix("file:")) / LOCK_NAME


@contextmanager
def lakehouse_lock(
    settings: Settings,
    exclusive: bool = False,
    waiting: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the lakehouse lock (shared unless ``exclusive``) for the ``with`` block.

    ``waiting`` is told once when the lock is busy, so a command can say why it waits.
    """
    global _exclusive_holders
    path = lock_path(settings)
    if path is None or (not exclusive and _exclusive_holders):
        yield
        return
    depth = getattr(_state, "depth", 0)
    if depth and not exclusive:  # re-entrant for nested writes of one thread
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is not None:
                what = "writes in flight" if exclusive else "an erasure (riskctl erase)"
                waiting(f"waiting for the lakehouse lock: {what} must finish first")
            started = time.monotonic()
            fcntl.flock(fd, mode)
            if waiting is not None:
                waiting(f"lakehouse lock acquired after {time.monotonic() - started:.0f} s")
        _state.depth = depth + 1
        if exclusive:
            with _guard:
                _exclusive_holders += 1
        try:
            yield
        finally:
            _state.depth = depth
            if exclusive:
                with _guard:
                    _exclusive_holders -= 1
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class LockTimeout(TimeoutError):
    """A table stayed locked by another writer for longer than the timeout."""


def table_lock_path(settings: Settings, table: str) -> Path | None:
    """The lock file of one table (``layer.name``) of a local lakehouse; None on a remote one."""
    root = lock_path(settings)
    if root is None:
        return None
    return root.parent / TABLE_LOCKS_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', table)}.lock"


@contextmanager
def table_lock(
    settings: Settings,
    table: str,
    timeout: float = TABLE_LOCK_TIMEOUT,
    notice_after: float = NOTICE_AFTER,
) -> Iterator[None]:
    """Hold ``table``'s write lock alone for the ``with`` block (re-entrant per thread).

    A wait longer than ``notice_after`` seconds logs one line naming the holder; a wait
    longer than ``timeout`` raises ``LockTimeout``. The holder's pid and start time are
    written into the lock file for that message.
    """
    path = table_lock_path(settings, table)
    held = _tables_held()
    if path is None or table in held:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _wait_for(fd, path, table, timeout, notice_after)
        _sign(fd)
        held.add(table)
        try:
            yield
        finally:
            held.discard(table)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _tables_held() -> set[str]:
    """The tables whose lock this thread holds (a nested write of one passes)."""
    if not hasattr(_state, "tables"):
        _state.tables = set()
    return _state.tables


def _wait_for(fd: int, path: Path, table: str, timeout: float, notice_after: float) -> None:
    """Take the exclusive ``flock`` on ``fd``, polling so that the wait can be told and
    bounded (``flock`` itself has no timeout)."""
    started = time.monotonic()
    told = False
    pause = 0.05
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            waited = time.monotonic() - started
            if waited >= timeout:
                raise LockTimeout(
                    f"{table} is still locked after {waited:.0f} s, held by {_holder(path)}: "
                    f"another pipeline step is writing it ({path}). Let it finish, or if that "
                    "process is stuck, stop it (its lock is released when it exits) and run "
                    "this step again."
                ) from None
            if not told and waited >= notice_after:
                log.warning("waiting for %s (held by %s)", table, _holder(path))
                told = True
            time.sleep(min(pause, max(timeout - waited, 0.0)))
            pause = min(pause * 2, 1.0)


def _sign(fd: int) -> None:
    """Write this process's pid and the time into the lock file it now holds."""
    now = dt.datetime.now(dt.UTC)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} since {now:%Y-%m-%d %H:%M:%S} UTC\n".encode(), 0)


def _holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it (``pid N since ...``)."""
    try:
        return path.read_text().strip() or "a process that has not signed it yet"
    except OSError:
        return "an unknown process"
