"""Public web -> bronze: run the Scrapy crawlers, then land what they wrote with Spark.

The crawlers (``crawlers/riskcrawl``) run in their own process (Twisted's reactor cannot
restart inside one) and write JSON lines per crawl under ``data/landing/crawl/<id>/``:
``pages.jsonl`` (raw pages that are new or changed), ``records.jsonl`` (parsed items)
and ``rejects.jsonl`` (pages that failed to parse, with rule and reason). Here they land
in ``bronze.crawl_pages`` and the three record tables, rejects go to ``ops.quarantine``,
and one manifest row per table reconciles lines read with rows landed, unchanged and
quarantined. Landing is a MERGE on (key, content hash), so landing a crawl twice, or a
re-crawl that re-emits an unchanged record, adds nothing.

Nothing crawled is lost on the way (crawlers/riskcrawl/state.py): the crawler counts a
page as seen only once the crawl that wrote it has landed. :func:`land_crawl` holds the
crawl folder's lock (no crawl attempt writes meanwhile), lands its files, then marks the
crawl landed in the crawler's page store, then retires the files; a crash anywhere
leaves the folder to be landed again and its pages to be emitted again. Every collect
lands every crawl folder still holding files (:func:`land_pending_crawls`, oldest first),
so a crawl whose landing failed is landed by the next run, once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from riskcrawl.outputs import ATTEMPTS_FILE, DATA_FILES, PAGES_FILE, RECORDS_FILE, REJECTS_FILE
from riskcrawl.sources import SPIDERS
from riskcrawl.state import CrawlFolderBusy, crawl_folder_lock, mark_landed

from riskcontrol.collect.extracts import land
from riskcontrol.core.catalog import (
    BRONZE_COURT_RECORDS,
    BRONZE_CRAWL_PAGES,
    BRONZE_NEWS,
    BRONZE_PENALTIES,
    PROVENANCE_COLUMNS,
    Table,
)
from riskcontrol.core.config import Settings
from riskcontrol.core.landing import Rule, with_provenance
from riskcontrol.core.runs import Run, StepCounts
from riskcontrol.synthetic.site.server import SiteServer, build_and_write

STAGE = "collect"


@dataclass(frozen=True)
class RecordKind:
    """One kind of parsed record: the spider that emits it and the table it lands in."""

    record_type: str
    spider: str
    table: Table


RECORD_KINDS = (
    RecordKind("court_record", "court", BRONZE_COURT_RECORDS),
    RecordKind("penalty", "penalties", BRONZE_PENALTIES),
    RecordKind("news_article", "news", BRONZE_NEWS),
)
# Fields that differ between two fetches of the same content: left out of the hash.
_VOLATILE = ("crawl_id", "fetched_at")


def _data_schema(table: Table, *extra: str) -> T.StructType:
    fields = [f for f in table.schema.fields if f.name not in PROVENANCE_COLUMNS]
    fields += [T.StructField(name, T.StringType()) for name in extra]
    return T.StructType(fields + [T.StructField("_corrupt_record", T.StringType())])


REJECT_SCHEMA = T.StructType(
    [
        T.StructField(name, T.StringType())
        for name in (
            "crawl_id",
            "spider",
            "url",
            "fetched_at",
            "content_hash",
            "rule",
            "reason",
            "body",
            "_corrupt_record",
        )
    ]
)


def riskcrawl() -> ModuleType:
    """The crawler project's runner module (``crawlers/riskcrawl/run.py``, installed with
    the library). Imported only here, on demand: it must not pull Scrapy or Twisted into
    the Spark driver (``run`` itself imports neither until a crawl starts in its child)."""
    return importlib.import_module("riskcrawl.run")


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def uses_loopback_site(settings: Settings) -> bool:
    """True when the crawl sources point at the generated site (the default)."""
    return "{site_url}" in Path(settings.crawl_sources).read_text(encoding="utf-8")


@contextmanager
def loopback_site(settings: Settings, epoch: int = 1) -> Iterator[str | None]:
    """Serve the generated site for the length of a crawl, when the sources point at it.

    Yields the site URL, or None when the sources are real ones. A site already listening
    on ``RISK_SITE_HOST:RISK_SITE_PORT`` (``riskctl site serve``) is used as it is.
    """
    if not uses_loopback_site(settings):
        yield None
        return
    if _listening(settings.site_host, settings.site_port):
        yield settings.site_url
        return

    content = build_and_write(settings, epochs=max(3, epoch))
    server = SiteServer(content, settings.site_host, settings.site_port, epoch=epoch).start()
    try:
        yield server.url
    finally:
        server.stop()


def run_crawl(
    settings: Settings,
    crawl_id: str,
    spiders: tuple[str, ...] = SPIDERS,
    epoch: int = 1,
    scrapy_settings: dict[str, object] | None = None,
) -> dict:
    """Crawl the configured public sources into ``crawl_landing_dir/<crawl_id>``.

    Returns the crawl's stats (per spider and totals).
    """
    with loopback_site(settings, epoch) as site_url:
        return riskcrawl().crawl(
            list(spiders),
            site_url or settings.site_url,
            settings.crawl_landing_dir,
            settings.crawl_state_dir,
            crawl_id,
            sources=settings.crawl_sources,
            settings=scrapy_settings,
        )


def _read_jsonl(spark: SparkSession, path: Path, schema: T.StructType) -> DataFrame:
    """JSON lines with an explicit schema; a line that is not JSON keeps ``_corrupt_record``."""
    if not path.exists() or path.stat().st_size == 0:
        return spark.createDataFrame([], schema).withColumn("_source_uri", F.lit(str(path)))
    df = spark.read.json(
        str(path),
        schema=schema,
        mode="PERMISSIVE",
        columnNameOfCorruptRecord="_corrupt_record",
    )
    return df.withColumn("_source_uri", F.lit(path.as_uri()))


def _well_formed() -> Rule:
    return Rule("malformed_json", F.col("_corrupt_record").isNull(), "line is not a JSON object")


def _reject_rows(rejects: DataFrame) -> DataFrame:
    """Crawler rejects as quarantine rows: the page kept whole, without the volatile fields."""
    return rejects.select(
        F.coalesce("rule", F.lit("malformed_json")).alias("rule"),
        F.coalesce("reason", F.lit("line is not a JSON object")).alias("reason"),
        F.to_json(F.struct("spider", "url", "content_hash", "body", "_corrupt_record")).alias(
            "record"
        ),
        F.coalesce("url", "_source_uri").alias("source_uri"),
    )


def land_crawl(run: Run, crawl_dir: Path) -> list[StepCounts]:
    """Land one crawl's pages, records and rejects in bronze; one manifest row per table.

    Under the crawl folder's lock (:class:`CrawlFolderBusy` at once while a crawl attempt
    writes there): the Delta commits, then the crawl marked landed in the crawler's page
    store (its pages count as seen from now on), then the files retired."""
    crawl_dir = Path(crawl_dir)
    with crawl_folder_lock(crawl_dir):
        steps = _land_files(run, crawl_dir)
        if not all(s.reconciles for s in steps):
            raise ValueError(f"landing {crawl_dir.name}: a step does not reconcile")
        mark_landed(run.settings.crawl_state_dir, crawl_dir.name)
        retire_landing_files(crawl_dir, steps)
    return steps


def _land_files(run: Run, crawl_dir: Path) -> list[StepCounts]:
    spark = run.spark
    steps = []
    pages = _read_jsonl(spark, crawl_dir / PAGES_FILE, _data_schema(BRONZE_CRAWL_PAGES))
    page_cols = [c for c in BRONZE_CRAWL_PAGES.columns if c not in PROVENANCE_COLUMNS]
    pages = with_provenance(
        pages,
        run.run_id,
        F.concat(F.lit("web."), F.coalesce("source", F.lit("unknown"))),
        F.col("_source_uri"),
        hashed=[c for c in page_cols if c not in _VOLATILE],
    )
    steps.append(
        land(
            run,
            pages,
            BRONZE_CRAWL_PAGES,
            "crawl:pages",
            [_well_formed(), Rule("missing_url", F.col("url").isNotNull(), "page without url")],
            merge_keys=BRONZE_CRAWL_PAGES.keys,
            drop=("_corrupt_record",),
        )
    )
    rejects = _read_jsonl(spark, crawl_dir / REJECTS_FILE, REJECT_SCHEMA).cache()
    records_path = crawl_dir / RECORDS_FILE
    for kind in RECORD_KINDS:
        schema = _data_schema(kind.table, "record_type", "source")
        # Lines that name no known kind (not JSON, say) are counted once, with the first.
        known = F.coalesce(
            F.col("record_type").isin([k.record_type for k in RECORD_KINDS]), F.lit(False)
        )
        first = F.lit(kind is RECORD_KINDS[0])
        records = _read_jsonl(spark, records_path, schema).where(
            (F.col("record_type") == kind.record_type) | (~known & first)
        )
        data_cols = [c for c in kind.table.columns if c not in PROVENANCE_COLUMNS]
        records = with_provenance(
            records,
            run.run_id,
            F.concat(F.lit("web."), F.coalesce("source", F.lit(kind.spider))),
            F.col("_source_uri"),
            hashed=[c for c in data_cols if c not in (*_VOLATILE, "content_hash", "url")],
        ).drop("source")
        rules = [
            _well_formed(),
            Rule(
                "unknown_record_type",
                F.col("record_type") == kind.record_type,
                "record_type is none of " + ", ".join(k.record_type for k in RECORD_KINDS),
            ),
            Rule("missing_record_id", F.col("record_id").isNotNull(), "record without id"),
        ]
        ours = F.coalesce(F.col("spider").isin(list(SPIDERS)), F.lit(False))
        spider_rejects = _reject_rows(
            rejects.where((F.col("spider") == kind.spider) | (~ours & first))
        )
        steps.append(
            land(
                run,
                records,
                kind.table,
                f"crawl:{kind.spider}",
                rules,
                merge_keys=(kind.table.keys[0], "_content_hash"),
                rejects=spider_rejects,
                drop=("_corrupt_record", "record_type"),
            )
        )
    rejects.unpersist()
    return steps


LANDED_FILE = "landed.json"


def retire_landing_files(crawl_dir: Path, steps: list[StepCounts]) -> dict:
    """Once every step of a crawl's landing reconciled, delete its JSON-lines files.

    They hold the pages and records as crawled (names, ID numbers) in clear; bronze now
    holds them encrypted. What stays is ``landed.json``: per file its lines and SHA-256,
    per step its reconciled counts -- nothing personal. Only called after the last step
    was recorded (``Run.record`` raises on a step that does not reconcile), so a landing
    that failed leaves the files for a retry. A folder landed before (a later attempt of
    the same crawl wrote to it again) keeps the earlier manifests under ``earlier``.
    """
    if not all(s.reconciles for s in steps):
        raise ValueError("retire_landing_files: a step does not reconcile; files kept")
    files = {}
    for name in DATA_FILES:
        path = crawl_dir / name
        if path.exists():
            data = path.read_bytes()
            files[name] = {"lines": data.count(b"\n"), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {
        "crawl_id": crawl_dir.name,
        "landed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": files,
        "steps": [
            {
                "source": s.source,
                "target": s.target,
                "rows_in": s.rows_in,
                "rows_out": s.rows_out,
                "rows_unchanged": s.rows_unchanged,
                "rows_quarantined": s.rows_quarantined,
            }
            for s in steps
        ],
    }
    out = crawl_dir / LANDED_FILE
    try:
        before = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = None
    if isinstance(before, dict):
        manifest["earlier"] = [*before.pop("earlier", []), before]
    fd, tmp = tempfile.mkstemp(dir=crawl_dir, prefix=".landed-", suffix=".tmp")  # 0600
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2)
    os.replace(tmp, out)  # a crash leaves the old manifest or the new one, whole
    for name in files:
        (crawl_dir / name).unlink()
    return manifest


def _first_attempt(folder: Path) -> float:
    """When the crawl in ``folder`` started (its first attempt); for a folder written by
    other means, the oldest modification time of its files."""
    try:
        first = (folder / ATTEMPTS_FILE).read_text(encoding="utf-8").splitlines()[0]
        return dt.datetime.fromisoformat(json.loads(first)["started_at"]).timestamp()
    except (OSError, IndexError, ValueError, KeyError, TypeError):
        times = [p.stat().st_mtime for p in folder.iterdir() if p.is_file()]
        return min(times, default=folder.stat().st_mtime)


def pending_crawls(landing_dir: Path) -> list[Path]:
    """The crawl folders under ``landing_dir`` that still hold files to land (a crawl not
    landed yet, a landing that failed, a later attempt of a landed crawl), oldest first."""
    if not Path(landing_dir).is_dir():
        return []
    folders = [
        d
        for d in Path(landing_dir).iterdir()
        if d.is_dir() and any((d / name).exists() for name in DATA_FILES)
    ]
    return sorted(folders, key=lambda d: (_first_attempt(d), d.name))


def land_pending_crawls(
    run: Run, progress: Callable[[str], None] = lambda _: None
) -> dict[str, list[StepCounts]]:
    """Land every pending crawl folder, oldest first: {crawl id: its steps}, in order.

    A folder a crawl attempt is still writing is left for a later run; a landing that
    fails stops here (the folders after it stay pending too)."""
    landed: dict[str, list[StepCounts]] = {}
    for folder in pending_crawls(run.settings.crawl_landing_dir):
        progress(f"collect: landing crawl {folder.name} in bronze")
        try:
            landed[folder.name] = land_crawl(run, folder)
        except CrawlFolderBusy:
            progress(f"collect: crawl {folder.name} is being written: landed by a later run")
    return landed


def collect_public_web(
    run: Run, progress: Callable[[str], None] = lambda _: None, epoch: int = 1
) -> tuple[dict, list[StepCounts]]:
    """Land every crawl an earlier attempt left unlanded, crawl (crawl id = the run id),
    then land this crawl; returns (crawl stats, steps of every landing, oldest first).

    Landing first marks the pages of an attempt that was cut short (a kill, a failed
    landing) as seen: a retry does not fetch them again, nor land them twice."""
    steps = [s for found in land_pending_crawls(run, progress).values() for s in found]
    progress(f"collect: crawling {', '.join(SPIDERS)} -> {run.settings.crawl_landing_dir}")
    stats = run_crawl(run.settings, run.run_id, epoch=epoch)
    steps += [s for found in land_pending_crawls(run, progress).values() for s in found]
    return stats, steps


def describe_stats(stats: dict) -> str:
    """One line of what a crawl did, from its stats.json."""
    total = stats.get("totals", {})

    def n(key: str) -> int:
        value = total.get(key, 0)
        return sum(value.values()) if isinstance(value, dict) else int(value or 0)

    return (
        f"{n('responses'):,} responses, {n('pages_written'):,} new or changed pages, "
        f"{n('records_written'):,} records, {n('rejects_written'):,} rejects, "
        f"{n('retries'):,} retries, {n('not_modified_304'):,} not modified (304), "
        f"{n('pages_unchanged'):,} unchanged"
    )
