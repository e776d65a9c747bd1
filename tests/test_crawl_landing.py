"""Landing a crawl's JSON lines in bronze: exact counts, quarantine, idempotency, and
nothing lost when a landing fails (the crawler's page store only advances after bronze
committed; every crawl folder not landed yet is landed by the next collect, once).

Scrapy never loads here: crawls run in their own process (``riskcrawl.run``), and the
page store (``riskcrawl.state``) is plain SQLite."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEST_BRONZE_KEY, TEST_PII_KEY, make_settings
from riskcrawl.state import CrawlFolderBusy, crawl_folder_lock

from riskcontrol.collect import crawl
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    BRONZE_COURT_RECORDS,
    BRONZE_CRAWL_PAGES,
    BRONZE_NEWS,
    BRONZE_PENALTIES,
    OPS_QUARANTINE,
)
from riskcontrol.core.runs import Run

COURT = {
    "record_type": "court_record",
    "record_id": "（2024）京0105执1号",
    "subject_name": "张三",
    "subject_type": "person",
    "id_number": "1101**********123X",
    "id_masked": True,
    "court": "北京市朝阳区人民法院",
    "case_no": "（2024）京0105执1号",
    "amount": 12345.0,
    "filing_date": "2024-03-05",
    "status": "执行中",
    "list_type": "enforcement",
    "source": "court_enforcement",
    "url": "http://127.0.0.1:8765/court/case/c1.html",
    "fetched_at": "2026-11-21T10:00:00Z",
    "content_hash": "h-court-1",
    "crawl_id": "c1",
}
PENALTY = {
    "record_type": "penalty",
    "record_id": "京金罚决字〔2025〕12号",
    "institution": "某某消费金融有限公司",
    "penalty_types": ["warning", "fine"],
    "amount": 300000.0,
    "reason": "违规催收",
    "decision_date": "2025-03-05",
    "authority": "北京金融监管局",
    "decision_no": "京金罚决字〔2025〕12号",
    "form": "table",
    "source": "regulator_penalties",
    "url": "http://127.0.0.1:8765/regulator/penalty/p1.html",
    "fetched_at": "2026-11-21T10:00:01Z",
    "content_hash": "h-pen-1",
    "crawl_id": "c1",
}
NEWS = {
    "record_type": "news_article",
    "record_id": "tag:news.riskcontrol.local,2024:n1",
    "title": "某公司被列为被执行人",
    "published_at": "2024-03-05T10:21:00+08:00",
    "news_source": "财经日报",
    "body": "正文。",
    "language": "zh",
    "feed": "rss",
    "source": "news",
    "url": "http://127.0.0.1:8765/news/2024/03/n1.html",
    "fetched_at": "2026-11-21T10:00:02Z",
    "content_hash": "h-news-1",
    "crawl_id": "c1",
}


def _page(url, body, crawl_id="c1"):
    return {
        "crawl_id": crawl_id,
        "spider": "court",
        "source": "court_enforcement",
        "url": url,
        "status": 200,
        "fetched_at": "2026-11-21T10:00:00Z",
        "content_type": "text/html; charset=GBK",
        "encoding": "gbk",
        "content_hash": f"sha-{body}",
        "etag": None,
        "last_modified": None,
        "page_kind": "detail",
        "body": body,
    }


def _write(folder, name, rows):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    (folder / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _counts(steps):
    return {s.target: (s.rows_in, s.rows_out, s.rows_unchanged, s.rows_quarantined) for s in steps}


def test_a_crawl_lands_exactly_once_and_rejects_are_quarantined(spark, settings):
    c1 = settings.crawl_landing_dir / "c1"
    _write(c1, "pages.jsonl", [_page(COURT["url"], "a"), _page(PENALTY["url"], "b"), "{not json"])
    _write(
        c1,
        "records.jsonl",
        [
            COURT,
            PENALTY,
            NEWS,
            {**COURT, "record_type": "weird", "record_id": "x"},
            {**COURT, "record_id": None},
        ],
    )
    _write(
        c1,
        "rejects.jsonl",
        [
            {
                "crawl_id": "c1",
                "spider": "court",
                "url": "http://127.0.0.1:8765/court/case/c9.html",
                "fetched_at": "2026-11-21T10:00:03Z",
                "content_hash": "h9",
                "rule": "missing_case_no",
                "reason": "court detail page without 案号",
                "body": "<html>…</html>",
            }
        ],
    )
    first = _counts(crawl.land_crawl(Run(spark, settings, run_id="r1"), c1))
    assert first == {
        "bronze.crawl_pages": (3, 2, 0, 1),
        "bronze.court_records": (4, 1, 0, 3),
        "bronze.penalties": (1, 1, 0, 0),
        "bronze.news_articles": (1, 1, 0, 0),
    }
    quarantined = sorted(
        (q.target, q.rule, q.source_uri.rsplit("/", 1)[-1])
        for q in lakehouse.read(spark, OPS_QUARANTINE, settings).collect()
    )
    assert quarantined == [
        ("bronze.court_records", "missing_case_no", "c9.html"),
        ("bronze.court_records", "missing_record_id", "records.jsonl"),
        ("bronze.court_records", "unknown_record_type", "records.jsonl"),
        ("bronze.crawl_pages", "malformed_json", "pages.jsonl"),
    ]
    # Reconciled: the files holding the pages in clear are gone; a manifest of counts stays.
    assert sorted(p.name for p in c1.iterdir()) == ["landed.json"]
    landed = json.loads((c1 / "landed.json").read_text(encoding="utf-8"))
    assert {n: f["lines"] for n, f in landed["files"].items()} == {
        "pages.jsonl": 3,
        "records.jsonl": 5,
        "rejects.jsonl": 1,
    }
    assert [(s["target"], s["rows_in"]) for s in landed["steps"]] == [
        ("bronze.crawl_pages", 3),
        ("bronze.court_records", 4),
        ("bronze.penalties", 1),
        ("bronze.news_articles", 1),
    ]
    assert oct((c1 / "landed.json").stat().st_mode & 0o777) == "0o600"
    (pen,) = lakehouse.read_clear(spark, BRONZE_PENALTIES, settings).collect()
    assert (pen.penalty_types, pen.amount, pen._source) == (
        ["warning", "fine"],
        300000.0,
        "web.regulator_penalties",
    )

    # A later crawl: the case was closed (a new version); the news and the penalty were
    # re-emitted unchanged: nothing new lands. A broken line in this crawl's file is its
    # own occurrence, quarantined with that file as its source.
    c2 = settings.crawl_landing_dir / "c2"
    later = {"fetched_at": "2026-11-22T09:00:00Z", "crawl_id": "c2"}
    _write(
        c2,
        "records.jsonl",
        [{**COURT, **later, "status": "已结案"}, {**NEWS, **later}, {**PENALTY, **later}],
    )
    _write(c2, "pages.jsonl", [_page(COURT["url"], "a", crawl_id="c2"), "{not json"])
    second = _counts(crawl.land_crawl(Run(spark, settings, run_id="r2"), c2))
    assert second == {
        "bronze.crawl_pages": (2, 0, 1, 1),
        "bronze.court_records": (1, 1, 0, 0),
        "bronze.penalties": (1, 0, 1, 0),
        "bronze.news_articles": (1, 0, 1, 0),
    }
    assert lakehouse.read(spark, OPS_QUARANTINE, settings).count() == 5
    versions = sorted(
        (r.status, r.crawl_id)
        for r in lakehouse.read_clear(spark, BRONZE_COURT_RECORDS, settings).collect()
    )
    assert versions == [("已结案", "c2"), ("执行中", "c1")]


def test_a_landing_that_fails_keeps_the_crawl_files_for_a_retry(spark, settings):
    c1 = settings.crawl_landing_dir / "c1"
    _write(c1, "pages.jsonl", [_page(COURT["url"], "a")])
    _write(c1, "records.jsonl", [COURT, PENALTY])
    # A real failure half-way: where bronze.penalties goes, a file blocks the table.
    blocker = Path(BRONZE_PENALTIES.path(settings))
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a table", encoding="utf-8")
    with pytest.raises(Exception):  # noqa: B017 - whatever Spark raises for it
        crawl.land_crawl(Run(spark, settings, run_id="r1"), c1)
    assert sorted(p.name for p in c1.iterdir()) == ["pages.jsonl", "records.jsonl"]
    assert (c1 / "records.jsonl").read_text(encoding="utf-8").count("张三") == 1
    blocker.unlink()
    steps = crawl.land_crawl(Run(spark, settings, run_id="r2"), c1)  # the retry
    assert _counts(steps) == {
        "bronze.crawl_pages": (1, 0, 1, 0),
        "bronze.court_records": (1, 0, 1, 0),
        "bronze.penalties": (1, 1, 0, 0),
        "bronze.news_articles": (0, 0, 0, 0),
    }
    assert sorted(p.name for p in c1.iterdir()) == ["landed.json"]
    landed = json.loads((c1 / "landed.json").read_text(encoding="utf-8"))
    assert landed["crawl_id"] == "c1"
    assert {n: f["lines"] for n, f in landed["files"].items()} == {
        "pages.jsonl": 1,
        "records.jsonl": 2,
    }
    assert "张三" not in (c1 / "landed.json").read_text(encoding="utf-8")


def test_retiring_keeps_the_files_of_steps_that_do_not_reconcile(tmp_path):
    from riskcontrol.core.runs import StepCounts

    _write(tmp_path, "records.jsonl", [COURT, PENALTY])
    short = StepCounts("collect", "crawl:court", "bronze.court_records", 2, 1)  # 1 lost
    with pytest.raises(ValueError, match="does not reconcile; files kept"):
        crawl.retire_landing_files(tmp_path, [short])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl"]
    whole = StepCounts("collect", "crawl:court", "bronze.court_records", 2, 1, 0, 1)
    data = (tmp_path / "records.jsonl").read_bytes()
    manifest = crawl.retire_landing_files(tmp_path, [whole])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landed.json"]
    assert manifest["files"] == {
        "records.jsonl": {"lines": 2, "sha256": hashlib.sha256(data).hexdigest()}
    }
    assert manifest["steps"] == [
        {
            "source": "crawl:court",
            "target": "bronze.court_records",
            "rows_in": 2,
            "rows_out": 1,
            "rows_unchanged": 0,
            "rows_quarantined": 1,
        }
    ]


def test_launching_a_crawl_keeps_scrapy_out_of_the_spark_driver():
    """Scrapy runs in a child process; importing it here (zope.interface) breaks Spark ML."""
    code = (
        "import sys; from riskcontrol.collect import crawl; crawl.riskcrawl(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scrapy', 'twisted', 'zope'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_crawl_folders_to_land_are_those_holding_files_oldest_first(settings):
    root = settings.crawl_landing_dir
    for name, started in (("zz-old", "2026-01-01T00:00:00+00:00"),
                          ("aa-new", "2026-01-03T00:00:00+00:00"),
                          ("mm-landed", "2026-01-02T00:00:00+00:00")):  # fmt: skip
        attempt = {"attempt": 1, "started_at": started, "pid": 1}
        _write(root / name, "attempts.jsonl", [attempt])
    _write(root / "zz-old", "records.jsonl", [COURT])
    _write(root / "aa-new", "pages.jsonl", [])  # a crawl that found nothing new: still landed
    _write(root / "mm-landed", "landed.json", [{}])
    assert [d.name for d in crawl.pending_crawls(root)] == ["zz-old", "aa-new"]
    assert crawl.pending_crawls(root / "nowhere") == []


def test_a_folder_a_crawl_is_writing_is_left_for_a_later_run(spark, settings):
    """The landing takes the crawl folder's lock: while a crawl attempt holds it, nothing
    of that folder is read, marked or retired."""
    c1 = settings.crawl_landing_dir / "c1"
    _write(c1, "records.jsonl", [COURT])
    messages = []
    with crawl_folder_lock(c1):  # as ``python -m riskcrawl.run`` holds it while crawling
        assert crawl.land_pending_crawls(Run(spark, settings, run_id="r1"), messages.append) == {}
        with pytest.raises(CrawlFolderBusy):
            crawl.land_crawl(Run(spark, settings, run_id="r1"), c1)
    assert messages == [
        "collect: landing crawl c1 in bronze",
        "collect: crawl c1 is being written: landed by a later run",
    ]
    assert sorted(p.name for p in c1.iterdir()) == ["records.jsonl"]


def test_a_failed_landing_loses_nothing_the_next_collect_lands_both_crawls_once(
    spark, tmp_path, monkeypatch
):
    """Crawl, then the landing fails half-way (the pages committed, the records did not);
    the next collect lands that crawl first, so its crawl of the unchanged site fetches
    nothing again (the page store advanced) and lands only its own, empty, folder; so
    does the collect after that."""
    from riskcontrol.synthetic.generate import generate
    from riskcontrol.synthetic.site import SiteServer, build_site, write_ground_truth

    # The crawl's child process seals its HTTP cache with the bronze key.
    monkeypatch.setenv("RISK_BRONZE_KEY", TEST_BRONZE_KEY)
    monkeypatch.setenv("RISK_PII_KEY", TEST_PII_KEY)
    book = tmp_path / "book"
    generate(book, customers=400, seed=7)
    content = build_site(book, seed=7)
    truth = [t for t in _read_jsonl(write_ground_truth(content, tmp_path / "site"))
             if t["epoch_added"] == 1 and t["expect_record"]]  # fmt: skip
    with SiteServer(content, port=0, faults=False) as server:
        port = int(server.url.rsplit(":", 1)[1])
        settings = make_settings(tmp_path / "home", site_port=port)
        landing = settings.crawl_landing_dir

        land = crawl.land

        def land_then_fail(run, df, table, source, *args, **kwargs):
            if source == "crawl:court":  # after bronze.crawl_pages committed
                raise RuntimeError("Delta commit failed")
            return land(run, df, table, source, *args, **kwargs)

        monkeypatch.setattr(crawl, "land", land_then_fail)
        with pytest.raises(RuntimeError, match="Delta commit failed"):
            crawl.collect_public_web(Run(spark, settings, run_id="r1"))
        monkeypatch.setattr(crawl, "land", land)
        r1 = landing / "r1"
        pages = len(_read_jsonl(r1 / "pages.jsonl"))
        records = {}
        for r in _read_jsonl(r1 / "records.jsonl"):
            records[r["record_type"]] = records.get(r["record_type"], 0) + 1
        rejects = {}
        for r in _read_jsonl(r1 / "rejects.jsonl"):
            rejects[r["spider"]] = rejects.get(r["spider"], 0) + 1
        assert records == {
            "court_record": sum(t["kind"] == "court" for t in truth),
            "penalty": sum(t["kind"] == "penalty" for t in truth),
            "news_article": sum(t["kind"] == "news" for t in truth),
        }

        messages = []
        stats, steps = crawl.collect_public_web(Run(spark, settings, run_id="r2"), messages.append)
        # r1 landed before r2 crawled: the unchanged site is not emitted again
        assert (
            stats["totals"]["pages_written"],
            stats["totals"]["pages_unchanged"],
            stats["totals"]["pages_pending"],
        ) == (0, pages, 0)
        assert [m for m in messages if m.startswith("collect: landing crawl")] == [
            "collect: landing crawl r1 in bronze",
            "collect: landing crawl r2 in bronze",
        ]

        def row(kind, spider):
            n, bad = records[kind], rejects.get(spider, 0)
            return (n + bad, n, 0, bad)

        expected = {
            "bronze.crawl_pages": (pages, 0, pages, 0),  # r1's pages committed at once
            "bronze.court_records": row("court_record", "court"),
            "bronze.penalties": row("penalty", "penalties"),
            "bronze.news_articles": row("news_article", "news"),
        }

        assert len(steps) == 8
        assert _counts(steps[:4]) == expected  # r1: its records land now
        assert [(s.rows_in, s.rows_out) for s in steps[4:]] == [(0, 0)] * 4  # r2: nothing
        assert crawl.pending_crawls(landing) == []

        # Both crawls landed: a third collect emits nothing and lands only its own folder.
        messages = []
        stats, steps = crawl.collect_public_web(Run(spark, settings, run_id="r3"), messages.append)
        assert (stats["totals"]["pages_written"], stats["totals"]["pages_unchanged"]) == (
            0,
            pages,
        )
        assert stats["totals"]["pages_pending"] == 0
        assert [m for m in messages if m.startswith("collect: landing crawl")] == [
            "collect: landing crawl r3 in bronze"
        ]
        assert [(s.rows_in, s.rows_out) for s in steps] == [(0, 0)] * 4

    for table, kind in (
        (BRONZE_COURT_RECORDS, "court"),
        (BRONZE_PENALTIES, "penalty"),
        (BRONZE_NEWS, "news"),
    ):
        got = sorted(r.record_id for r in lakehouse.read(spark, table, settings).collect())
        assert got == sorted(t["record_id"] for t in truth if t["kind"] == kind), kind
    assert lakehouse.read(spark, BRONZE_CRAWL_PAGES, settings).count() == pages
    for name in ("r1", "r2", "r3"):
        assert sorted(p.name for p in (landing / name).iterdir()) == [
            "attempts.jsonl",
            "crawl.log",
            "landed.json",
            "stats.json",
        ]
