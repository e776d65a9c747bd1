"""Landing a crawl's JSON lines in bronze: exact counts, quarantine, idempotency."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from riskcontrol.collect import crawl
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import BRONZE_COURT_RECORDS, BRONZE_PENALTIES, OPS_QUARANTINE
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
