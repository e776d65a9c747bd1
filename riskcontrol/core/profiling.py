"""Where a run's time goes: Spark jobs and Delta commits per step, from the records they
leave (Spark's event log and the tables' ``_delta_log``), not from guesses.

A step is a named window of wall-clock time (the benchmark's stages, the manifest's
steps). For each, :func:`breakdown` counts the Spark jobs submitted in it, their tasks
and task time, how much of the window some job was running (``busy``), and the Delta
commits made in it. What is left of the window (``idle``) is the driver's own time:
Python, planning, Delta's log reads and commits, waiting on locks.

Turn the event log on for a session with :func:`event_log_conf` (``RISK_SPARK_CONF``);
it is large (about 280 MB for the benchmark's 20,000-customer run).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from riskcontrol.core.lakehouse import delta_tables


def event_log_conf(folder: Path) -> dict[str, str]:
    """Spark settings that write the event log of every session into ``folder``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": Path(folder).resolve().as_uri(),
        "spark.eventLog.compress": "false",
    }


@dataclass(frozen=True)
class Job:
    job_id: int
    submitted_ms: int
    completed_ms: int
    stages: int
    tasks: int
    task_ms: int  # executor run time of its tasks


@dataclass(frozen=True)
class Commit:
    table: str
    version: int
    at_ms: int
    operation: str


@dataclass(frozen=True)
class StepProfile:
    name: str
    seconds: float
    jobs: int
    tasks: int
    task_seconds: float
    busy_seconds: float  # some Spark job was running
    commits: int
    operations: dict[str, int]  # Delta operation -> commits

    @property
    def idle_seconds(self) -> float:
        return max(0.0, self.seconds - self.busy_seconds)


def read_event_log(path: Path) -> list[Job]:
    """The jobs of one event log file (JSON lines), or of every event file under a folder
    (Spark 4 rolls them: ``eventlog_v2_<app>/events_<n>_<app>``)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "appstatus"))
        )
    else:
        files = [path]
    jobs: list[Job] = []
    for file in files:
        jobs += _jobs(file)
    return sorted(jobs, key=lambda j: (j.submitted_ms, j.job_id))


def _jobs(file: Path) -> list[Job]:
    started: dict[int, tuple[int, list[int]]] = {}  # job -> (submitted, stage ids)
    ended: dict[int, int] = {}
    stage_tasks: dict[int, int] = {}
    stage_ms: dict[int, int] = {}
    with open(file, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the last line of a log still being written
            kind = event.get("Event")
            if kind == "SparkListenerJobStart":
                started[event["Job ID"]] = (event["Submission Time"], event.get("Stage IDs", []))
            elif kind == "SparkListenerJobEnd":
                ended[event["Job ID"]] = event["Completion Time"]
            elif kind == "SparkListenerTaskEnd":
                stage = event["Stage ID"]
                stage_tasks[stage] = stage_tasks.get(stage, 0) + 1
                metrics = event.get("Task Metrics") or {}
                stage_ms[stage] = stage_ms.get(stage, 0) + int(metrics.get("Executor Run Time", 0))
    jobs = []
    for job_id, (submitted, stages) in started.items():
        ran = [s for s in stages if s in stage_tasks]  # skipped stages ran no task
        jobs.append(
            Job(
                job_id,
                submitted,
                ended.get(job_id, submitted),
                len(ran),
                sum(stage_tasks[s] for s in ran),
                sum(stage_ms.get(s, 0) for s in ran),
            )
        )
    return jobs


def delta_commits(root: Path) -> list[Commit]:
    """Every commit of every Delta table under ``root`` (``layer/table/_delta_log``)."""
    commits = []
    for table, folder in delta_tables(root).items():
        for entry in (folder / "_delta_log").iterdir():
            if not (entry.suffix == ".json" and entry.stem.isdigit()):
                continue
            info = _commit_info(entry)
            if info is not None:
                at, operation = int(info["timestamp"]), info.get("operation", "")
                commits.append(Commit(table, int(entry.stem), at, operation))
    return sorted(commits, key=lambda c: (c.at_ms, c.table, c.version))


def _commit_info(entry: Path) -> dict | None:
    with open(entry, encoding="utf-8") as fh:
        for line in fh:
            try:
                action = json.loads(line)
            except ValueError:
                continue
            if "commitInfo" in action:
                return action["commitInfo"]
    return None


def _busy_ms(intervals: Iterable[tuple[int, int]]) -> int:
    """Length of the union of ``[start, end]`` intervals."""
    total, end = 0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def breakdown(
    windows: list[tuple[str, float, float]], jobs: list[Job], commits: list[Commit]
) -> list[StepProfile]:
    """Per window ``(name, start, end)`` (epoch seconds): the jobs submitted and the
    commits made in it. Job time is clipped to the window."""
    out = []
    for name, start, end in windows:
        lo, hi = int(start * 1000), int(end * 1000)
        mine = [j for j in jobs if lo <= j.submitted_ms < hi]
        done = [c for c in commits if lo <= c.at_ms < hi]
        operations: dict[str, int] = {}
        for c in done:
            operations[c.operation] = operations.get(c.operation, 0) + 1
        runs = ((j.submitted_ms, min(max(j.completed_ms, j.submitted_ms), hi)) for j in mine)
        busy = _busy_ms(runs)
        out.append(
            StepProfile(
                name,
                end - start,
                len(mine),
                sum(j.tasks for j in mine),
                sum(j.task_ms for j in mine) / 1000,
                busy / 1000,
                len(done),
                dict(sorted(operations.items(), key=lambda kv: (-kv[1], kv[0]))),
            )
        )
    return out


def format_breakdown(profiles: list[StepProfile], title: str = "step") -> str:
    """A fixed-width table of :func:`breakdown`, with a total line."""
    head = (
        f"{title:34} {'seconds':>8} {'jobs':>5} {'tasks':>6} {'task s':>7} {'busy s':>7} "
        f"{'idle s':>7} {'commits':>7}  operations"
    )
    lines = [head]
    for p in profiles:
        ops = ", ".join(f"{op or '?'} {n}" for op, n in p.operations.items())
        lines.append(
            f"{p.name[:34]:34} {p.seconds:>8.1f} {p.jobs:>5} {p.tasks:>6} {p.task_seconds:>7.1f} "
            f"{p.busy_seconds:>7.1f} {p.idle_seconds:>7.1f} {p.commits:>7}  {ops}"
        )
    total = StepProfile(
        "total",
        sum(p.seconds for p in profiles),
        sum(p.jobs for p in profiles),
        sum(p.tasks for p in profiles),
        sum(p.task_seconds for p in profiles),
        sum(p.busy_seconds for p in profiles),
        sum(p.commits for p in profiles),
        {},
    )
    lines.append(
        f"{'total':34} {total.seconds:>8.1f} {total.jobs:>5} {total.tasks:>6} "
        f"{total.task_seconds:>7.1f} {total.busy_seconds:>7.1f} {total.idle_seconds:>7.1f} "
        f"{total.commits:>7}"
    )
    return "\n".join(lines)
