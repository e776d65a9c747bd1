"""The generated public-web site over real HTTP: contract markup, faults, epochs, truth."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from riskcontrol.synthetic.generate import generate
from riskcontrol.synthetic.site import (
    SiteServer,
    add_site_parser,
    build_site,
    detail_paths,
    render,
    site_command,
    write_ground_truth,
)
from riskcontrol.synthetic.site import faults as fault_rules
from riskcontrol.synthetic.site.render import court_detail_html, crawl_targets

SEED = 7
SCALE = 3  # 400 customers alone give one court list page; tests need several


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("book")
    generate(data_dir, customers=400, seed=SEED)
    return data_dir


@pytest.fixture(scope="module")
def content(book):
    return build_site(book, SEED, epochs=3, scale=SCALE)


@pytest.fixture(scope="module")
def truth(content, tmp_path_factory) -> list[dict]:
    path = write_ground_truth(content, tmp_path_factory.mktemp("site"))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def server(content):
    """A fresh server per test, so first-request faults and stats start clean."""
    with SiteServer(content, port=0, slow_seconds=0.01) as srv:
        yield srv


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One request, any status (urllib raises on >= 300 after following redirects)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def fetch(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """Like a crawler: retry the first-request 500/429 once."""
    status, hdrs, body = get(url, headers)
    if status in (500, 429):
        status, hdrs, body = get(url, headers)
    return status, hdrs, body


def case_links(html: str) -> list[str]:
    return re.findall(r'<tr class="case-row"><td class="name"><a href="([^"]+)"', html)


def sitemap_paths(server: SiteServer) -> set[str]:
    _, _, index = fetch(server.url + "/sitemap.xml")
    paths: set[str] = set()
    for loc in re.findall(r"<loc>([^<]+)</loc>", index.decode()):
        _, _, body = fetch(loc)
        paths |= {
            urllib.parse.urlsplit(u).path for u in re.findall(r"<loc>([^<]+)</loc>", body.decode())
        }
    return paths


def test_robots_txt(server):
    status, headers, body = fetch(server.url + "/robots.txt")
    assert status == 200
    assert body.decode() == (
        "User-agent: *\nDisallow: /admin/\nDisallow: /private/\n"
        f"Sitemap: {server.url}/sitemap.xml\n"
    )


def test_sitemap_lists_exactly_the_epoch_1_detail_pages(server, truth):
    expected = {t["url_path"] for t in truth if t["epoch_added"] == 1}
    assert sitemap_paths(server) == expected


def test_court_list_pages_overlap_by_two(server):
    _, headers, page1 = fetch(server.url + "/court/list?page=1")
    _, _, page2 = fetch(server.url + "/court/list?page=2")
    first, second = case_links(page1.decode("gbk")), case_links(page2.decode("gbk"))
    assert len(first) == 20
    assert second[:2] == first[-2:]
    assert 'class="next" href="/court/list?page=2"' in page1.decode("gbk")


def test_court_detail_is_gbk_with_the_subject(server, truth):
    row = next(t for t in truth if t["kind"] == "court" and t["customer_id"] and not t["faults"])
    status, headers, body = fetch(server.url + row["url_path"])
    assert status == 200
    html = body.decode("gbk")
    assert '<meta charset="gbk">' in html
    assert f"<dt>被执行人姓名/名称</dt><dd>{row['subject_name']}</dd>" in html
    assert f"<dt>案号</dt><dd>{row['case_no']}</dd>" in html
    assert headers["Content-Type"] in ("text/html; charset=GBK", "text/html")


def test_first_request_500_then_200(server, truth):
    path = next(t["url_path"] for t in truth if "first_500" in t["faults"])
    assert get(server.url + path)[0] == 500
    assert get(server.url + path)[0] == 200
    assert server.stats()[path] == {200: 1, 500: 1}


def test_first_request_429_has_retry_after(server, content):
    targets = [t for paths in crawl_targets(content, 1).values() for t in paths]
    path = next(t for t in targets if fault_rules.first_request_fault(content.seed, t) == 429)
    status, headers, _ = get(server.url + path)
    assert (status, headers["Retry-After"]) == (429, "1")
    assert get(server.url + path)[0] == 200


def test_conditional_get(server):
    url = server.url + "/regulator/penalties?page=1"
    _, headers, body = fetch(url)
    assert headers["ETag"].startswith('"')
    assert get(url, {"If-None-Match": headers["ETag"]})[:1] == (304,)
    assert get(url, {"If-Modified-Since": headers["Last-Modified"]})[0] == 304
    assert get(url, {"If-None-Match": '"stale"'})[2] == body


def test_faults_off_and_oversized_page(content):
    with SiteServer(content, faults=False) as quiet:
        statuses = {fetch(quiet.url + p)[0] for p in detail_paths(content, 1)[:60]}
        assert get(quiet.url + "/news/archive/full-dump.html")[0] == 404
        assert all(500 not in s and 429 not in s for s in quiet.stats().values())
    assert statuses == {200}
    with SiteServer(content) as noisy:
        _, _, home = fetch(noisy.url + "/news/")
        assert b'href="/news/archive/full-dump.html"' in home
        assert len(fetch(noisy.url + "/news/archive/full-dump.html")[2]) > 3_000_000


def test_epoch_2_adds_and_changes_exactly_the_ground_truth(server, truth, content):
    before = {p: fetch(server.url + p)[2] for p in detail_paths(content, 1)}
    server.set_epoch(2)
    added = {t["url_path"] for t in truth if t["epoch_added"] == 2}
    assert sitemap_paths(server) == set(before) | added
    changed = {
        t["url_path"]
        for t in truth
        if t["epoch_added"] == 1 and any(c["epoch"] == 2 for c in t.get("status_changes", []))
    }
    assert changed
    after = {p: fetch(server.url + p)[2] for p in before}
    assert {p for p in before if before[p] != after[p]} == changed
    for path in changed:
        assert "<dt>案件状态</dt><dd>已结案" in after[path].decode("gbk")
    _, _, page1 = fetch(server.url + "/court/list?page=1")
    newest = [t["url_path"] for t in truth if t["kind"] == "court" and t["epoch_added"] == 2]
    assert set(case_links(page1.decode("gbk"))[: len(newest)]) == set(newest)


def test_search_accepts_gbk_and_utf8_names(server, truth):
    row = next(t for t in truth if t["kind"] == "court" and t["epoch_added"] == 1)
    for encoding in ("utf-8", "gbk"):
        query = urllib.parse.urlencode({"name": row["subject_name"]}, encoding=encoding)
        _, _, body = fetch(f"{server.url}/court/search?{query}")
        assert row["url_path"] in case_links(body.decode("gbk"))


def test_feeds_and_attachments(server, truth, content):
    news = [t for t in truth if t["kind"] == "news" and t["epoch_added"] == 1]
    _, headers, rss = fetch(server.url + "/news/rss.xml")
    assert rss.count(b"<item>") == len(news)
    assert re.search(rb"<pubDate>\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0800</pubDate>", rss)
    _, _, atom = fetch(server.url + "/news/atom.xml")
    assert atom.count(b"<entry>") == len(news)
    attached = next(
        t for t in truth if t["kind"] == "penalty" and t["attachment_path"] and t["expect_record"]
    )
    status, headers, body = fetch(server.url + attached["attachment_path"])
    assert (status, headers["Content-Type"]) == (200, "text/plain; charset=GBK")
    assert body.decode("gbk").startswith("行政处罚决定书")


def test_build_is_deterministic(book, content, tmp_path):
    again = build_site(book, SEED, epochs=3, scale=SCALE)
    a = write_ground_truth(content, tmp_path / "a")
    b = write_ground_truth(again, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a/site.json").read_bytes() == (tmp_path / "b/site.json").read_bytes()
    for path in ["/", "/court/list?page=2", "/news/rss.xml", *detail_paths(content, 3)]:
        assert render(content, path, 3, "http://h").body == render(again, path, 3, "http://h").body
    shorter = build_site(book, SEED, epochs=2, scale=SCALE)  # more epochs never change earlier ones
    for path in detail_paths(shorter, 2):
        assert render(shorter, path, 2).body == render(content, path, 2).body


def test_court_subjects_link_to_the_book(book, truth):
    with sqlite3.connect(book / "lending.db") as conn:
        people = {
            cid: (nid, name)
            for cid, nid, name in conn.execute(
                "SELECT customer_id, national_id, name FROM customers"
            )
        }
    court = [t for t in truth if t["kind"] == "court"]
    linked = [t for t in court if t["customer_id"]]
    assert len(linked) >= 5
    for t in linked:
        nid, name = people[t["customer_id"]]
        assert (t["subject_name"], t["id_number"]) == (name, nid)
    namesakes = [t for t in court if t["subject_origin"] == "namesake"]
    assert namesakes
    for t in namesakes:
        assert t["customer_id"] is None
        assert t["subject_name"] in {n for _, n in people.values()}
        assert t["id_number"] not in {nid for nid, _ in people.values()}


def test_unparseable_pages_follow_the_hash(content):
    for case in content.court:
        html = render(content, case.url_path, 1 if case.epoch_added == 1 else 3).body.decode("gbk")
        unparseable = fault_rules.is_unparseable(content.seed, case.url_path)
        assert ("<dt>案号</dt>" not in html) == unparseable


def test_cli_reports_a_missing_book(tmp_path, monkeypatch, capsys):
    from riskcontrol.core.config import get_settings

    parser = argparse.ArgumentParser(prog="riskctl")
    add_site_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["site", "serve", "--epoch", "2", "--no-faults", "--port", "0"])
    assert (args.site_action, args.epoch, args.faults, args.port) == ("serve", 2, False, 0)
    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path / "empty"))
    get_settings.cache_clear()
    try:
        assert site_command(parser.parse_args(["site", "build"])) == 2
    finally:
        get_settings.cache_clear()
    assert "riskctl generate" in capsys.readouterr().err


def test_broken_markup_reads_like_the_clean_page(content):
    from bs4 import BeautifulSoup

    def pairs(case, faults: bool) -> list[tuple[str, str]]:
        html = court_detail_html(case, 1, faults)
        dl = BeautifulSoup(html, "lxml").select_one("dl.case-detail")
        return [
            (t.get_text(strip=True), d.get_text(strip=True))
            for t, d in zip(dl.find_all("dt"), dl.find_all("dd"), strict=True)
        ]

    for case in content.court[:10]:  # force the fault: the hash may spare a small site
        broken = dataclasses.replace(case, faults=("broken_markup",))
        assert "</dd>" not in court_detail_html(broken, 1, True)
        assert pairs(broken, True) == pairs(case, False)
