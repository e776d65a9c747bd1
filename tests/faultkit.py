"""Kill the pipeline (SIGKILL to its whole session: the Python driver, Spark's JVM, its
Python workers, a crawler child) at a chosen Delta commit, or while a write's data files
are being written, and run it again, as an Airflow retry would.

The watcher is outside the pipeline: it polls the lakehouse folder. A commit is a new
``_delta_log/<20 digits>.json`` file (Delta renames it into place whole); a write in
progress is a ``part-*.parquet`` file in the table's folder that no commit adds yet.

This file is also the pipeline process (``__main__``): it starts Spark, says it is
ready, and waits; given a list of tasks on stdin it runs them in order, each as its
Airflow task runs it (``orchestration.run_task``; ``erase:<customer>`` is
``riskctl erase``), and notes in a status file which task it is in. The next attempt is
started (and its Spark session warmed up) while the current one runs: a retry then
costs no Spark start-up, and it touches nothing before it is told to go.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from riskcontrol.core.lakehouse import delta_tables

_COMMIT = re.compile(r"^(\d{20})\.json$")
_DATA = re.compile(r"^part-.*\.parquet$")
POLL_SECONDS = 0.02
GATE_TIMEOUT = 3600


@dataclass(frozen=True)
class At:
    """Where to kill an attempt: at the ``nth`` commit of ``table`` seen during the
    attempt; with ``mid_write``, as soon as a data file of the ``nth`` write to ``table``
    in the attempt appears, before that write commits."""

    table: str
    nth: int = 1
    mid_write: bool = False

    def describe(self) -> str:
        return f"{'mid-write' if self.mid_write else 'commit'} #{self.nth} of {self.table}"


@dataclass
class Attempt:
    """What one attempt did, seen from outside."""

    tasks: list[str]
    at: At | None
    commits: list[tuple[str, int]] = field(default_factory=list)  # (table, version), in order
    killed: bool = False
    killed_in: str | None = None  # the task running when it was killed
    kill_point: str = ""
    mid_write_confirmed: bool = False
    returncode: int | None = None
    seconds: float = 0.0


def _versions(folder: Path) -> set[int]:
    try:
        names = os.listdir(folder / "_delta_log")
    except FileNotFoundError:
        return set()
    return {int(m.group(1)) for n in names if (m := _COMMIT.match(n))}


def _data_files(folder: Path) -> set[str]:
    """Data files of a table (relative paths, partition folders included)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != "_delta_log" and not d.startswith(".")]
        rel = os.path.relpath(dirpath, folder)
        out.update(n if rel == "." else f"{rel}/{n}" for n in filenames if _DATA.match(n))
    return out


def _added(folder: Path, version: int) -> set[str]:
    """Data files a commit adds (paths relative to the table, decoded as on disk)."""
    try:
        lines = (folder / "_delta_log" / f"{version:020d}.json").read_text("utf-8").splitlines()
    except FileNotFoundError:  # removed since (an erasure truncates the log)
        return set()
    out = set()
    for line in lines:
        try:
            action = json.loads(line)
        except ValueError:
            continue
        if "add" in action:
            out.add(unquote(action["add"]["path"]))
    return out


class Watcher:
    """Polls the lakehouse: new commits of every table, new data files of one table."""

    def __init__(self, root: Path, track: str | None = None):
        self.root = Path(root)
        self.track = track
        self.versions = {name: _versions(path) for name, path in delta_tables(self.root).items()}
        self.known: set[str] = set()
        if track:
            self.known = _data_files(self._folder(track))

    def _folder(self, table: str) -> Path:
        return self.root / table.replace(".", "/", 1)

    def new_commits(self) -> list[tuple[str, int]]:
        found = []
        for name, folder in delta_tables(self.root).items():
            now = _versions(folder)
            before = self.versions.get(name, set())
            for v in sorted(now - before):
                found.append((name, v))
                if name == self.track:
                    self.known |= _added(folder, v)
            self.versions[name] = before | now
        return found

    def uncommitted_files(self) -> set[str]:
        """Data files of the tracked table that appeared and that no commit adds."""
        return _data_files(self._folder(self.track)) - self.known


def _session_members(sid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp session
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL every process of ``proc``'s session (it was started as a session leader)
    and wait until none is left: their file locks are released then."""
    sid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        left = _session_members(sid)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.2)
        if not left and proc.poll() is not None:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {left} of session {sid} survive SIGKILL")
        time.sleep(0.05)


class Pipeline:
    """One pipeline process: started (Spark up, waiting) now, told what to run later."""

    def __init__(
        self, env: dict[str, str], workdir: Path, run_id: str, name: str, gate: Path | None = None
    ):
        self.name = name
        self.ready = workdir / f"{name}.ready"
        self.status = workdir / f"{name}.status"
        self.log = workdir / f"{name}.log"
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed in finish()
        argv = [
            sys.executable,
            __file__,
            str(self.ready),
            str(self.status),
            run_id,
            str(gate or ""),
        ]
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"pipeline process died starting up; see {self.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"pipeline process not ready in {timeout:.0f} s; {self.log}")
            time.sleep(0.05)

    def current_task(self) -> str | None:
        """The task it started last and did not finish (None: between tasks)."""
        task = None
        for line in self.status.read_text(encoding="utf-8").splitlines():
            event, name = line.split(" ", 1)
            task = name if event == "start" else None
        return task

    def finish(self) -> None:
        if self.proc.poll() is None:
            kill_session(self.proc)
        self._out.close()


def attempt(
    pipeline: Pipeline, tasks: list[str], lakehouse: Path, at: At | None, timeout: float
) -> Attempt:
    """Run ``tasks`` in the (ready) ``pipeline``; kill it at ``at`` (None: let it end)."""
    result = Attempt(list(tasks), at)
    pipeline.wait_ready(timeout)
    watcher = Watcher(lakehouse, track=at.table if at and at.mid_write else None)
    seen: dict[str, int] = {}
    proc = pipeline.proc
    t0 = time.monotonic()
    proc.stdin.write((json.dumps(tasks) + "\n").encode())
    proc.stdin.close()

    def kill() -> None:
        kill_session(proc)
        result.killed = True
        result.killed_in = pipeline.current_task()

    try:
        while not result.killed:
            done = proc.poll() is not None
            target = None
            for table, version in watcher.new_commits():
                result.commits.append((table, version))
                seen[table] = seen.get(table, 0) + 1
                hit = at and not at.mid_write and table == at.table and seen[table] == at.nth
                if hit and not done:
                    kill()
                    target = len(result.commits)
                    result.kill_point = f"after commit v{version} of {table}"
            if target is not None:
                result.commits += watcher.new_commits()
                extra = len(result.commits) - target
                if extra:
                    result.kill_point += f" (+{extra} later commit(s) landed before the kill)"
            elif at and at.mid_write and not done and seen.get(at.table, 0) == at.nth - 1:
                files = watcher.uncommitted_files()
                if files:
                    nxt = max(watcher.versions.get(at.table, ()), default=-1) + 1
                    kill()
                    late = watcher.new_commits()
                    result.commits += late
                    result.mid_write_confirmed = at.table not in {t for t, _ in late} and bool(
                        watcher.uncommitted_files()
                    )
                    result.kill_point = (
                        f"writing {at.table} v{nxt}: {len(files)} data file(s) written, "
                        "none committed"
                        if result.mid_write_confirmed
                        else f"writing {at.table} v{nxt}: its commit landed before the kill"
                    )
            if done:
                break
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"attempt {tasks} ran over {timeout:.0f} s; {pipeline.log}")
            time.sleep(POLL_SECONDS)
    finally:
        pipeline.finish()
    result.returncode = proc.returncode
    result.seconds = time.monotonic() - t0
    return result


# --- the pipeline process -------------------------------------------------------------
def run_tasks(
    tasks: list[str], run_id: str, status: Path | None = None, gate: Path | None = None
) -> None:
    """Run pipeline tasks in order in this process: Airflow task names
    (``orchestration.TASKS``) and ``erase:<customer_id>`` (``riskctl erase``).

    With ``gate``, an apply task first waits for that file (the model it scores with is
    trained elsewhere), as an Airflow task waits for its upstream asset.
    """
    from riskcontrol.cli import main as cli
    from riskcontrol.orchestration import APPLY_TASKS, run_task

    def note(event: str, task: str) -> None:
        if status is not None:
            with open(status, "a", encoding="utf-8") as fh:
                fh.write(f"{event} {task}\n")

    for task in tasks:
        note("start", task)
        if gate is not None and task in APPLY_TASKS:
            deadline = time.monotonic() + GATE_TIMEOUT
            while not gate.exists():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{gate} did not appear in {GATE_TIMEOUT} s")
                time.sleep(0.5)
        if task.startswith("erase:"):
            argv = ["erase", "--customer", task.split(":", 1)[1], "--requested-by", "faults"]
            if cli.main(argv) != 0:
                raise RuntimeError(f"riskctl {' '.join(argv)} failed")
        else:
            run_task(task, run_id=run_id)
        note("done", task)


def main(argv: list[str]) -> int:
    ready, status, run_id = Path(argv[1]), Path(argv[2]), argv[3]
    gate = Path(argv[4]) if len(argv) > 4 and argv[4] else None
    status.write_text("", encoding="utf-8")
    # Start-up, before any table is touched: Spark (and Delta's classes), the tiers.
    from delta.tables import DeltaTable

    from riskcontrol.core.config import get_settings
    from riskcontrol.core.spark import get_spark
    from riskcontrol.orchestration import task_functions

    task_functions()
    spark = get_spark(get_settings())
    spark.range(3).count()
    DeltaTable.isDeltaTable(spark, str(ready.parent / "no-such-table"))
    ready.write_text("ready", encoding="utf-8")
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # not needed after all
    run_tasks(json.loads(line), run_id, status, gate)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
