"""The collect tier as functions: the lending database, file drops and the public web -> bronze.

The CLI (`riskctl collect`, `riskctl run`), the spark-submit jobs in ``jobs/`` and the Airflow
DAGs in ``dags/`` all call these, so every way of running the pipeline runs the same code.
"""

from __future__ import annotations

from collections.abc import Callable

from riskcontrol.collect import crawl, extracts, settlements
from riskcontrol.core.runs import Run, StepCounts

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def run_collect_lending_db(
    run: Run,
    progress: Progress = _quiet,
    since: str | None = None,
    until: str | None = None,
    full: bool = False,
) -> list[StepCounts]:
    """Every lending-system table, incrementally by watermark (see ``extracts.collect_jdbc``)."""
    steps = []
    for name in extracts.JDBC_SOURCES:
        progress(f"collect: lending_db.{name} -> bronze")
        steps.append(extracts.collect_jdbc(run, name, since=since, until=until, full=full))
    return steps


def run_collect_file_drops(run: Run, progress: Progress = _quiet) -> list[StepCounts]:
    """Settlement CSVs, bureau JSON, app events and service notes from ``landing/``."""
    progress("collect: files/settlements (CSV) -> bronze")
    steps = [settlements.collect_settlements(run)]
    for name in extracts.FILE_SOURCES:
        progress(f"collect: files/{name} -> bronze")
        steps.append(extracts.collect_files(run, name))
    return steps


def run_collect_public_web(
    run: Run, progress: Progress = _quiet, epoch: int = 1
) -> list[StepCounts]:
    """Crawl the public sources (the loopback site by default) and land the crawl."""
    stats, steps = crawl.collect_public_web(run, progress, epoch=epoch)
    progress(f"collect: crawl {run.run_id}: {crawl.describe_stats(stats)}")
    return steps


COLLECT_SOURCES: dict[str, Callable[..., list[StepCounts]]] = {
    "lending_db": run_collect_lending_db,
    "files": run_collect_file_drops,
    "web": run_collect_public_web,
}


def run_collect(
    run: Run,
    progress: Progress = _quiet,
    sources: tuple[str, ...] | None = None,
    since: str | None = None,
    until: str | None = None,
    full: bool = False,
    site_epoch: int = 1,
) -> list[StepCounts]:
    """The collect tier: the named sources (default: all of ``COLLECT_SOURCES``).

    ``since``, ``until`` and ``full`` shape the lending-database window; ``site_epoch``
    picks the update of the generated site the crawl sees.
    """
    sources = sources or tuple(COLLECT_SOURCES)
    unknown = [name for name in sources if name not in COLLECT_SOURCES]
    if unknown:
        raise ValueError(f"unknown source {unknown}; known: {', '.join(COLLECT_SOURCES)}")
    options = {
        "lending_db": {"since": since, "until": until, "full": full},
        "web": {"epoch": site_epoch},
    }
    steps = []
    for name in sources:
        steps += COLLECT_SOURCES[name](run, progress, **options.get(name, {}))
    return steps
