"""Run the risk crawlers: ``python -m riskcrawl.run`` or :func:`crawl` from Python.

::

    python -m riskcrawl.run --spiders court,penalties,news --site-url http://127.0.0.1:8765 \\
        --out data/landing/crawl --state-dir data/crawl_state --crawl-id 20240305T0100

runs the spiders in one ``CrawlerProcess`` and appends, into ``<out>/<crawl-id>/``,
``pages.jsonl``, ``records.jsonl``, ``rejects.jsonl`` (crawlers/CONTRACT.md); it writes
``stats.json`` (per spider and in total: requests, responses by status, retries, 304s,
items scraped and dropped, unchanged pages, off-site / robots / size-limit / redirect
refusals by reason, seconds) and adds a line to ``attempts.jsonl``. A second attempt of
the same crawl id (an Airflow retry) appends to the first one's files, never truncates
them: the bronze landing removes duplicates. The state directory keeps the HTTP cache
and the hashes of pages already in bronze between crawls, so a re-crawl emits only pages
that are new, changed or not landed yet (one crawl at a time per state directory, and
one attempt at a time per crawl folder: both are locked). The exit code is 1 when a
spider failed (did not finish, or a callback raised), 2 for bad arguments (an unknown
spider, a source without ``allowed_domains``), 3 when the state directory or the crawl
folder is in use. Everything it writes is private to its user (umask 077); log lines
never hold a record's content.

:func:`crawl` runs the same command in a subprocess (Twisted's reactor cannot be started
twice in one process) and returns the parsed ``stats.json``: call it from the pipeline,
from Airflow tasks or from tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from riskcrawl.outputs import ATTEMPTS_FILE, DATA_FILES, STATS_FILE
from riskcrawl.sources import DEFAULT_SITE_URL, DEFAULT_SOURCES, SPIDERS, load_sources
from riskcrawl.state import CrawlFolderBusy, crawl_folder_lock


class CrawlError(RuntimeError):
    """A crawl subprocess failed; ``stats`` holds its stats.json when it got that far."""

    def __init__(self, message: str, returncode: int, stats: dict | None, output: str):
        super().__init__(message)
        self.returncode = returncode
        self.stats = stats
        self.output = output


# --------------------------------------------------------------------------------------
# stats
# --------------------------------------------------------------------------------------

SUMMARY_KEYS = {
    "requests": "downloader/request_count",
    "responses": "response_received_count",
    "retries": "retry/count",
    "retries_given_up": "retry/max_reached",
    "not_modified_304": "riskcrawl/wire_status/304",
    "cache_revalidated": "httpcache/revalidate",
    "items_scraped": "item_scraped_count",
    "items_dropped": "item_dropped_count",
    "pages_written": "riskcrawl/pages_written",
    "records_written": "riskcrawl/records_written",
    "rejects_written": "riskcrawl/rejects_written",
    "pages_unchanged": "riskcrawl/pages_unchanged",
    "duplicates_filtered": "dupefilter/filtered",
    "offsite_filtered": "offsite/filtered",
    "robots_forbidden": "robotstxt/forbidden",
    "maxsize_refused": "riskcrawl/maxsize_refused",
    "refused": "riskcrawl/refused",
    "pages_pending": "riskcrawl/pages_pending",
    "scheme_filtered": "riskcrawl/scheme_filtered",
    "retry_after_honoured": "riskcrawl/retry_after_honoured",
}
PREFIX_KEYS = {
    "responses_by_status": "downloader/response_status_count/",
    "wire_status": "riskcrawl/wire_status/",
    "retry_reasons": "retry/reason_count/",
    "records_by_type": "riskcrawl/records_written/",
    "rejects_by_rule": "riskcrawl/rejects/",
    "pages_by_kind": "riskcrawl/pages_written/",
    "refused_by_reason": "riskcrawl/refused/",
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def summarize(stats: dict[str, Any]) -> dict[str, Any]:
    """The stats that matter, under stable names, from one crawler's Scrapy stats."""
    summary: dict[str, Any] = {name: stats.get(key, 0) for name, key in SUMMARY_KEYS.items()}
    for name, prefix in PREFIX_KEYS.items():
        summary[name] = {
            k[len(prefix) :]: v for k, v in sorted(stats.items()) if k.startswith(prefix)
        }
    summary["spider_exceptions"] = sum(
        v for k, v in stats.items() if k.startswith("spider_exceptions/")
    )
    summary["elapsed_seconds"] = round(float(stats.get("elapsed_time_seconds", 0.0)), 3)
    summary["finish_reason"] = stats.get("finish_reason")
    return summary


def add_totals(per_spider: dict[str, dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = {}
    for summary in per_spider.values():
        for key, value in summary.items():
            if isinstance(value, dict):
                bucket = totals.setdefault(key, {})
                for k, v in value.items():
                    bucket[k] = bucket.get(k, 0) + v
            elif (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and key != "elapsed_seconds"
            ):
                totals[key] = totals.get(key, 0) + value
    return totals


# --------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m riskcrawl.run",
        description="Crawl public risk sources into pages/records/rejects JSON lines.",
    )
    parser.add_argument(
        "--spiders",
        default=",".join(SPIDERS),
        help="comma-separated spiders to run (default: all enabled in the sources file)",
    )
    parser.add_argument("--site-url", default=DEFAULT_SITE_URL, help="fills {site_url}")
    parser.add_argument(
        "--out", required=True, help="landing folder; files go to <out>/<crawl-id>/"
    )
    parser.add_argument(
        "--state-dir", help="HTTP cache and page hashes kept between crawls (incremental)"
    )
    parser.add_argument("--crawl-id", help="id of this crawl (default: UTC timestamp)")
    parser.add_argument("--sources", default=str(DEFAULT_SOURCES), help="sources YAML")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-file", help="write the Scrapy log here instead of stderr")
    parser.add_argument(
        "--progress-interval", type=float, default=10.0, help="seconds between progress lines"
    )
    parser.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="SPIDER.NAME=VALUE",
        help="spider argument (repeatable), e.g. --arg court.names=张三,李四",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a Scrapy setting (repeatable), e.g. --set DOWNLOAD_DELAY=0",
    )
    args = parser.parse_args(argv)
    args.spiders = [s.strip() for s in args.spiders.split(",") if s.strip()]
    args.crawl_id = args.crawl_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.spider_args = {}
    for item in args.arg:
        target, sep, value = item.partition("=")
        spider, dot, name = target.partition(".")
        if not (sep and dot and spider and name):
            parser.error(f"--arg needs SPIDER.NAME=VALUE, got {item!r}")
        args.spider_args.setdefault(spider, {})[name] = value
    return args


def build_settings(args: argparse.Namespace, crawl_dir: Path):
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule("riskcrawl.settings", priority="project")
    overrides: dict[str, Any] = {
        "RISKCRAWL_SITE_URL": args.site_url,
        "RISKCRAWL_SOURCES": str(Path(args.sources).resolve()),
        "RISKCRAWL_OUT_DIR": str(crawl_dir),
        "RISKCRAWL_CRAWL_ID": args.crawl_id,
        "RISKCRAWL_PROGRESS_INTERVAL": args.progress_interval,
        "LOG_LEVEL": args.log_level,
    }
    if args.log_file:
        overrides["LOG_FILE"] = str(Path(args.log_file).resolve())
    if args.state_dir:
        state = Path(args.state_dir).resolve()
        state.mkdir(parents=True, exist_ok=True)
        overrides["RISKCRAWL_STATE_DIR"] = str(state)  # the spiders put the HTTP cache there
    settings.setdict(overrides, priority="cmdline")
    settings["EXTENSIONS"]["riskcrawl.extensions.ProgressReporter"] = 500
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set needs NAME=VALUE, got {item!r}")
        settings.set(name.strip(), value, priority="cmdline")
    return settings


def _lock_state(state_dir: str | None) -> Any:
    """An exclusive lock on the state directory (one crawl at a time uses it), or None
    when another crawl holds it; ``True`` without a state directory."""
    if not state_dir:
        return True
    import fcntl

    path = Path(state_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    handle = open(path / ".lock", "w")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


# Pages, records, the cache and the log name people: readable by the crawl's user only.
PRIVATE_UMASK = 0o077


def _start_attempt(crawl_dir: Path) -> int:
    """Create the crawl's files if missing (never truncate: a retry appends to what the
    first attempt wrote) and add this attempt to ``attempts.jsonl``; its number."""
    for name in DATA_FILES:
        os.close(os.open(crawl_dir / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    attempts = crawl_dir / ATTEMPTS_FILE
    number = 1
    if attempts.exists():
        number += sum(1 for line in attempts.read_text(encoding="utf-8").splitlines() if line)
    line = {
        "attempt": number,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pid": os.getpid(),
    }
    fd = os.open(attempts, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    return number


def main(argv: list[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)
    args = parse_args(argv)
    sources = load_sources(Path(args.sources).resolve(), args.site_url)
    unknown = [s for s in args.spiders if s not in SPIDERS]
    if unknown:
        print(f"unknown spiders: {', '.join(unknown)} (known: {', '.join(SPIDERS)})")
        return 2
    enabled = [s for s in args.spiders if sources.get(s, {}).get("enabled", True)]
    for name in sorted(set(args.spiders) - set(enabled)):
        print(f"[{name}] disabled in {args.sources}: skipped")
    for name in enabled:
        if not [d for d in sources.get(name, {}).get("allowed_domains") or [] if d]:
            # Scrapy's OffsiteMiddleware lets everything through an empty allow-list
            print(
                f"[{name}] allowed_domains is empty in {args.sources}: refusing to crawl "
                "(an empty allow-list would follow links to any site)",
                file=sys.stderr,
            )
            return 2
    lock = _lock_state(args.state_dir)
    if lock is None:
        print(f"another crawl is using the state directory {args.state_dir}", file=sys.stderr)
        return 3
    crawl_dir = Path(args.out).resolve() / args.crawl_id
    crawl_dir.mkdir(parents=True, exist_ok=True)
    try:
        with crawl_folder_lock(crawl_dir):
            return _crawl(args, crawl_dir, enabled)
    except CrawlFolderBusy:
        print(f"another crawl or a landing is using {crawl_dir}", file=sys.stderr)
        return 3


def _crawl(args: argparse.Namespace, crawl_dir: Path, enabled: list[str]) -> int:
    attempt = _start_attempt(crawl_dir)
    from scrapy.crawler import CrawlerProcess

    settings = build_settings(args, crawl_dir)
    process = CrawlerProcess(settings)
    crawlers, failures = {}, {}
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    for name in enabled:
        crawler = process.create_crawler(name)
        crawlers[name] = crawler

        def failed(failure: Any, name: str = name) -> None:
            failures[name] = f"{failure.type.__name__}: {failure.getErrorMessage()}"
            print(f"[{name}] failed: {failures[name]}", file=sys.stderr)

        process.crawl(crawler, **args.spider_args.get(name, {})).addErrback(failed)
    print(
        f"crawl {args.crawl_id} (attempt {attempt}): {', '.join(enabled) or 'no spiders'} "
        f"on {args.site_url} -> {crawl_dir}",
        flush=True,
    )
    if crawlers:
        process.start()
    elapsed = time.monotonic() - started

    per_spider, scrapy_stats = {}, {}
    for name, crawler in crawlers.items():
        stats = crawler.stats.get_stats() if crawler.stats else {}
        scrapy_stats[name] = _jsonable(stats)
        summary = summarize(stats)
        seconds = summary["elapsed_seconds"] or elapsed
        summary["pages_per_second"] = round(summary["responses"] / seconds, 1) if seconds else 0
        if name in failures:
            summary["error"] = failures[name]
        per_spider[name] = summary
    failed = sorted(
        name
        for name, s in per_spider.items()
        if name in failures or s["finish_reason"] != "finished" or s["spider_exceptions"]
    )
    totals = add_totals(per_spider)
    totals["elapsed_seconds"] = round(elapsed, 3)
    totals["pages_per_second"] = round(totals.get("responses", 0) / elapsed, 1) if elapsed else 0
    report = {
        "crawl_id": args.crawl_id,
        "attempt": attempt,
        "site_url": args.site_url,
        "out_dir": str(crawl_dir),
        "state_dir": str(Path(args.state_dir).resolve()) if args.state_dir else None,
        "started_at": started_at,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "spiders": per_spider,
        "totals": totals,
        "failed": failed,
        "scrapy_stats": scrapy_stats,
    }
    (crawl_dir / STATS_FILE).write_text(
        json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    for name, s in per_spider.items():
        print(
            f"[{name}] {s['finish_reason']}: {s['responses']} responses, "
            f"{s['pages_written']} pages, {s['records_written']} records, "
            f"{s['rejects_written']} rejects, {s['retries']} retries, "
            f"{s['not_modified_304']} not modified, {s['pages_unchanged']} unchanged, "
            f"{s['refused']} refused, {s['elapsed_seconds']:.1f}s"
        )
    print(
        f"total: {totals.get('pages_written', 0)} pages, {totals.get('records_written', 0)} "
        f"records, {totals.get('rejects_written', 0)} rejects in {elapsed:.1f}s "
        f"({totals['pages_per_second']} responses/s); stats in {crawl_dir / STATS_FILE}"
    )
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------------------
# from Python
# --------------------------------------------------------------------------------------


def crawl(
    spiders: str | list[str] | tuple[str, ...],
    site_url: str,
    out_dir: str | Path,
    state_dir: str | Path | None,
    crawl_id: str,
    sources: str | Path | None = None,
    *,
    log_level: str = "INFO",
    settings: dict[str, Any] | None = None,
    spider_args: dict[str, dict[str, str]] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run ``python -m riskcrawl.run`` in a subprocess and return its parsed stats.json.

    Works from any current directory and interpreter state (a fresh ``sys.executable``;
    ``riskcrawl`` is installed with the library, see ``setup.py``). Files land in
    ``<out_dir>/<crawl_id>/``; the Scrapy log goes to ``crawl.log`` there. ``settings``
    overrides Scrapy settings (e.g. ``{"DOWNLOAD_DELAY": 0}``); ``spider_args`` passes
    spider arguments
    (``{"court": {"names": "张三,李四"}}``). Raises :class:`CrawlError` when the crawl
    fails."""
    if isinstance(spiders, str):
        spiders = [s for s in spiders.split(",") if s]
    os.umask(PRIVATE_UMASK)  # the crawl folder made here, and the child, are private
    out = Path(out_dir).resolve()
    crawl_dir = out / crawl_id
    crawl_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "riskcrawl.run",
        "--spiders",
        ",".join(spiders),
        "--site-url",
        site_url,
        "--out",
        str(out),
        "--crawl-id",
        crawl_id,
        "--log-level",
        log_level,
        "--log-file",
        str(crawl_dir / "crawl.log"),
        "--sources",
        str(Path(sources).resolve() if sources else DEFAULT_SOURCES),
    ]
    if state_dir is not None:
        cmd += ["--state-dir", str(Path(state_dir).resolve())]
    for name, value in (settings or {}).items():
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        cmd += ["--set", f"{name}={value}"]
    for spider, values in (spider_args or {}).items():
        cmd += [
            arg for name, value in values.items() for arg in ("--arg", f"{spider}.{name}={value}")
        ]
    (crawl_dir / STATS_FILE).unlink(missing_ok=True)
    env = dict(os.environ)
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    proc = subprocess.run(
        cmd, cwd=crawl_dir, env=env, capture_output=True, text=True, timeout=timeout
    )
    output = proc.stdout + proc.stderr
    stats_path = crawl_dir / STATS_FILE
    stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.exists() else None
    if proc.returncode != 0 or stats is None:
        raise CrawlError(
            f"crawl {crawl_id} failed (exit {proc.returncode}): {output[-2000:]}",
            proc.returncode,
            stats,
            output,
        )
    stats["output"] = proc.stdout
    return stats


if __name__ == "__main__":
    sys.exit(main())
