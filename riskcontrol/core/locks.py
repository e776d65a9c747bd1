"""One lock on the lakehouse: writers share it, an erasure holds it alone.

Every write of ``riskcontrol.core.lakehouse`` takes the lock shared, for the duration of
that write; ``riskctl erase`` takes it exclusively for the whole erasure, because it
vacuums history with zero retention: a commit landing between its VACUUM and its log
truncation would point at files that are gone. So a pipeline run (or an Airflow task)
that reaches a write while an erasure runs waits for it, and an erasure waits for the
writes in flight to finish.

The lock is an advisory ``flock`` on ``<lakehouse>/.riskcontrol.lock``: it holds for
processes on this machine sharing a local lakehouse. On an object store (``s3a://``...)
there is nothing to lock: pause the DAGs before erasing (README "Personal data").
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from riskcontrol.core.config import Settings

LOCK_NAME = ".riskcontrol.lock"

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
