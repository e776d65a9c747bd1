"""Pages as pure functions: (content, request target, epoch, base URL, faults) -> Page.

The server adds only what depends on the connection (first-request faults, slowness,
conditional GET); everything else, including ETag and Last-Modified, is decided here,
so a test can render any page without a socket and compare bytes across epochs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

from riskcontrol.synthetic.site import faults as fault_rules
from riskcontrol.synthetic.site import layout
from riskcontrol.synthetic.site.layout import e
from riskcontrol.synthetic.site.records import (
    CST,
    CourtCase,
    NewsArticle,
    Penalty,
    SiteContent,
)

COURT_PAGE_SIZE = 20
COURT_OVERLAP = 2
PENALTY_PAGE_SIZE = 15
SEARCH_LIMIT = 50
NEWS_HOME_SIZE = 30
OVERSIZED_PATH = "/news/archive/full-dump.html"
OVERSIZED_BYTES = 3_300_000
ADMIN_PATH = "/admin/login"


@dataclass(frozen=True)
class Page:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Request:
    """What a page function needs besides the content: where, when, and whether faulty."""

    path: str
    query: dict[str, str]
    target: str
    epoch: int
    base: str
    faults: bool


# --- encoding and headers ----------------------------------------------------------------------
def http_date(moment: dt.datetime) -> str:
    return format_datetime(moment.astimezone(dt.UTC), usegmt=True)


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def ok(body: bytes, content_type: str, modified: dt.datetime) -> Page:
    headers = {
        "Content-Type": content_type,
        "ETag": etag(body),
        "Last-Modified": http_date(modified),
    }
    return Page(200, headers, body)


def html_page(
    text: str, modified: dt.datetime, charset: str = "utf-8", header_charset: bool = True
) -> Page:
    """Encode ``text``; GBK pages write characters GBK lacks (``¥``) as ``&#NNN;``."""
    body = text.encode(charset, errors="xmlcharrefreplace")
    content_type = f"text/html; charset={charset.upper() if charset == 'gbk' else charset}"
    return ok(body, content_type if header_charset else "text/html", modified)


def not_found(req: Request) -> Page:
    text = layout.document(
        "utf-8",
        "404 页面不存在",
        '<div id="main"><h1>404 页面不存在</h1><p>您访问的页面不存在或已被删除。</p>'
        '<p><a href="/">返回首页</a></p></div>',
    )
    return Page(404, {"Content-Type": "text/html; charset=utf-8"}, text.encode())


def redirect(location: str) -> Page:
    return Page(302, {"Location": location, "Content-Type": "text/html; charset=utf-8"}, b"")


def _page_number(req: Request) -> int | None:
    raw = req.query.get("page", "1")
    return int(raw) if raw.isdigit() and int(raw) >= 1 else None


def _pretty(text: str, broken: bool, closers: tuple[str, ...]) -> str:
    """Broken markup: drop the optional end tags a lenient parser infers anyway."""
    if not broken:
        return text
    for tag in closers:
        text = text.replace(tag, "")
    return text


def _by_path(content: SiteContent) -> dict[str, CourtCase | Penalty | NewsArticle]:
    views = content._views
    if "paths" not in views:
        records = (*content.court, *content.penalties, *content.news)
        views["paths"] = {r.url_path: r for r in records}
    return views["paths"]


# --- home, robots, sitemaps, admin --------------------------------------------------------------
def home(content: SiteContent, req: Request) -> Page:
    main = (
        "<h1>公共信息服务导航</h1>\n"
        + layout.links(
            [
                ("/court/list?page=1", "执行信息公开（被执行人、失信被执行人）"),
                ("/regulator/penalties?page=1", "金融监管行政处罚信息"),
                ("/news/", "财经新闻"),
            ],
            "sections",
        )
        + "\n<h2>友情链接</h2>\n"
        + layout.links(
            [
                ("http://www.external-example.com/partners.html", "合作伙伴"),
                ("mailto:webmaster@example.com", "联系我们"),
                ("javascript:void(0)", "设为首页"),
                ("ftp://127.0.0.1/pub/open-data.zip", "开放数据下载"),
                (ADMIN_PATH, "管理登录"),
            ],
            "friends",
        )
    )
    text = layout.document("utf-8", "公共信息服务导航", f'<div id="main">{main}</div>')
    return html_page(text, content.epoch_time(1))


def robots(content: SiteContent, req: Request) -> Page:
    text = (
        f"User-agent: *\nDisallow: /admin/\nDisallow: /private/\nSitemap: {req.base}/sitemap.xml\n"
    )
    return ok(text.encode(), "text/plain; charset=utf-8", content.epoch_time(1))


SITEMAPS = {
    "/sitemap-court.xml": "court",
    "/sitemap-regulator.xml": "penalty",
    "/sitemap-news.xml": "news",
}


def sitemap_index(content: SiteContent, req: Request) -> Page:
    day = content.epoch_time(req.epoch).date().isoformat()
    items = "".join(
        f"<sitemap><loc>{req.base}{path}</loc><lastmod>{day}</lastmod></sitemap>\n"
        for path in SITEMAPS
    )
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{items}</sitemapindex>\n"
    )
    return ok(text.encode(), "application/xml; charset=utf-8", content.epoch_time(req.epoch))


def detail_records(content: SiteContent, kind: str, epoch: int) -> tuple:
    return {
        "court": content.court_at,
        "penalty": content.penalties_at,
        "news": content.news_at,
    }[kind](epoch)


def modified_at(content: SiteContent, record: CourtCase | Penalty | NewsArticle, epoch: int):
    """When a detail page last changed, as seen at ``epoch``."""
    if isinstance(record, CourtCase):
        changed = record.modified_epoch(epoch)
        if changed is not None:
            return content.epoch_time(changed)
        return dt.datetime.combine(record.filing_date, dt.time(9, 30), CST)
    if isinstance(record, Penalty):
        return dt.datetime.combine(record.decision_date, dt.time(17, 0), CST)
    return record.published_at


def sitemap(content: SiteContent, req: Request) -> Page:
    records = detail_records(content, SITEMAPS[req.path], req.epoch)
    items = "".join(
        f"<url><loc>{req.base}{r.url_path}</loc>"
        f"<lastmod>{modified_at(content, r, req.epoch).date().isoformat()}</lastmod></url>\n"
        for r in sorted(records, key=lambda r: r.url_path)
    )
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{items}</urlset>\n"
    )
    return ok(text.encode(), "application/xml; charset=utf-8", content.epoch_time(req.epoch))


def admin_login(content: SiteContent, req: Request) -> Page:
    text = layout.document(
        "utf-8",
        "后台管理登录",
        '<div id="main"><h1>后台管理系统</h1><form action="/admin/login" method="post">'
        '<input name="user" placeholder="用户名"><input name="password" type="password">'
        "<button>登录</button></form></div>",
    )
    return html_page(text, content.epoch_time(1))


def forbidden(content: SiteContent, req: Request) -> Page:
    return Page(403, {"Content-Type": "text/plain; charset=utf-8"}, b"403 Forbidden\n")


def static(content: SiteContent, req: Request) -> Page:
    if req.path == "/static/site.css":
        return ok(layout.STATIC_CSS.encode(), "text/css", content.epoch_time(1))
    return ok(layout.STATIC_JS.encode(), "application/javascript", content.epoch_time(1))


# --- court ---------------------------------------------------------------------------------------
def court_page_count(n: int) -> int:
    """Pages of 20 rows where each page repeats the previous page's last 2 rows."""
    step = COURT_PAGE_SIZE - COURT_OVERLAP
    return max(1, math.ceil(max(0, n - COURT_PAGE_SIZE) / step) + 1)


def court_page_slice(cases: tuple, page: int) -> tuple:
    start = (page - 1) * (COURT_PAGE_SIZE - COURT_OVERLAP)
    return cases[start : start + COURT_PAGE_SIZE]


def _court_gbk(content: SiteContent, req: Request, text: str, modified: dt.datetime) -> Page:
    meta_only = req.faults and fault_rules.charset_in_meta_only(content.seed, req.target)
    return html_page(text, modified, "gbk", header_charset=not meta_only)


def _case_rows(cases, faults: bool) -> str:
    rows = []
    for c in cases:
        case_no = "" if faults and "missing_case_no" in c.faults else c.case_no
        rows.append(
            '<tr class="case-row">'
            f'<td class="name"><a href="{c.url_path}">{e(c.subject_name)}</a></td>'
            f'<td class="court">{e(c.court)}</td><td class="case-no">{e(case_no)}</td>'
            f'<td class="filed">{c.filing_date.isoformat()}</td></tr>'
        )
    return (
        '<table id="case-list">\n<tr><th>被执行人姓名/名称</th><th>执行法院</th><th>案号</th>'
        "<th>立案时间</th></tr>\n" + "\n".join(rows) + "\n</table>"
    )


def _court_pagination(page: int, pages: int, total: int) -> str:
    def href(p: int) -> str:
        return f"/court/list?page={p}"

    nums = sorted({1, pages, *range(max(1, page - 3), min(pages, page + 3) + 1)})
    parts = [f'<a class="first" href="{href(1)}">首页</a>']
    if page > 1:
        parts.append(f'<a class="prev" href="{href(page - 1)}">上一页</a>')
    for n in nums:
        parts.append(
            f'<span class="current">{n}</span>' if n == page else f'<a href="{href(n)}">{n}</a>'
        )
    if page < pages:
        parts.append(f'<a class="next" href="{href(page + 1)}">下一页</a>')
    parts.append(f'<a class="last" href="{href(pages)}">尾页</a>')
    parts.append(f'<span class="info">共{total}条 第{page}/{pages}页</span>')
    return '<div class="pagination">' + " ".join(parts) + "</div>"


def court_list(content: SiteContent, req: Request) -> Page:
    cases = content.court_at(req.epoch)
    page, pages = _page_number(req), court_page_count(len(cases))
    if page is None or page > pages:
        return not_found(req)
    main = (
        f"<h1>被执行人信息公开</h1>\n{layout.SEARCH_FORM}\n"
        f"{_case_rows(court_page_slice(cases, page), req.faults)}\n"
        f"{_court_pagination(page, pages, len(cases))}"
    )
    text = layout.court_page("被执行人信息公开", [("/court/list?page=1", "执行信息公开")], main)
    return _court_gbk(content, req, text, content.epoch_time(req.epoch))


def court_search(content: SiteContent, req: Request) -> Page:
    name, tail = req.query.get("name", "").strip(), req.query.get("id_tail", "").strip().upper()
    if not name:
        result = '<p class="hint">请输入被执行人姓名/名称进行查询。</p>'
    else:
        found = [
            c
            for c in content.court_at(req.epoch)
            if c.subject_name == name and (not tail or c.id_shown[-4:].upper() == tail)
        ][:SEARCH_LIMIT]
        result = f'<p class="hint">共找到{len(found)}条记录</p>\n{_case_rows(found, req.faults)}'
    main = f"<h1>综合查询</h1>\n{layout.SEARCH_FORM}\n{result}"
    text = layout.court_page(
        "综合查询", [("/court/list?page=1", "执行信息公开"), (None, "查询结果")], main
    )
    return _court_gbk(content, req, text, content.epoch_time(req.epoch))


def court_detail_html(c: CourtCase, epoch: int, faults: bool) -> str:
    """The detail page of a court case as shown at ``epoch``."""
    missing_no = faults and "missing_case_no" in c.faults
    pairs = [("被执行人姓名/名称", c.subject_name)]
    pairs += [(k, v) for k, v in (("性别", c.gender), ("年龄", c.age)) if v is not None]
    pairs.append(("身份证号码/组织机构代码", c.id_shown))
    if c.province:
        pairs.append(("省份", c.province))
    pairs.append(("执行法院", c.court))
    if not missing_no:
        pairs.append(("案号", c.case_no))
    pairs += [
        ("案由", c.cause),
        ("执行标的", c.amount_text),
        ("立案时间", c.filing_text),
        ("案件状态", c.status_at(epoch)),
        ("名单类型", c.list_type),
    ]
    if c.conduct:
        pairs.append(("失信被执行人行为具体情形", c.conduct))
    dl = "\n".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in pairs)
    broken = faults and "broken_markup" in c.faults
    main = (
        f"<h1>{e(c.list_type)}信息</h1>\n"
        f'<dl class="case-detail">\n{_pretty(dl, broken, ("</dd>",))}\n</dl>\n'
        '<p class="note">注：以上信息来源于执行案件流程信息管理系统，如有疑问请与执行法院联系。'
        + ("" if not broken else '<font color="red">')
        + "</p>"
    )
    crumbs = [("/court/list?page=1", "执行信息公开"), (None, "案件详情")]
    return layout.court_page(f"{c.list_type}信息", crumbs, main)


def court_detail(content: SiteContent, req: Request, c: CourtCase) -> Page:
    text = court_detail_html(c, req.epoch, req.faults)
    return _court_gbk(content, req, text, modified_at(content, c, req.epoch))


# --- regulator ----------------------------------------------------------------------------------
def penalty_list(content: SiteContent, req: Request) -> Page:
    penalties = content.penalties_at(req.epoch)
    page = _page_number(req)
    pages = max(1, math.ceil(len(penalties) / PENALTY_PAGE_SIZE))
    if page is None or page > pages:
        return not_found(req)
    chunk = penalties[(page - 1) * PENALTY_PAGE_SIZE : page * PENALTY_PAGE_SIZE]
    items = "\n".join(
        f'<li><a href="{p.url_path}">{e(p.title)}</a> '
        f'<span class="date">{p.decision_date.isoformat()}</span></li>'
        for p in chunk
    )
    nav = []
    if page > 1:
        nav.append(f'<a rel="prev" href="/regulator/penalties?page={page - 1}">上一页</a>')
    nav.append(f"<span>第{page}页 / 共{pages}页</span>")
    if page < pages:
        nav.append(f'<a rel="next" href="/regulator/penalties?page={page + 1}">Next</a>')
    main = (
        f'<h1>行政处罚信息</h1>\n<ul class="penalty-list">\n{items}\n</ul>\n'
        f'<div class="pages">{" ".join(nav)}</div>'
    )
    text = layout.regulator_page("行政处罚信息", [(None, "行政处罚")], main)
    return html_page(text, content.epoch_time(req.epoch))


def cn_long_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def en_date(day: dt.date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def _penalty_table(p: Penalty) -> str:
    rows = [
        ("行政处罚决定书文号", p.decision_no),
        ("当事人名称", p.institution),
        ("主要违法违规事实", p.violation),
        ("行政处罚依据", p.legal_basis),
        ("行政处罚决定", p.decision_text),
        ("作出处罚决定的机关名称", p.authority),
        ("作出处罚决定的日期", cn_long_date(p.decision_date)),
    ]
    body = "\n".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return f'<table class="penalty-table">\n{body}\n</table>'


def _penalty_prose(p: Penalty) -> list[str]:
    if p.language == "en":
        return [
            "ANNOUNCEMENT OF ADMINISTRATIVE PENALTY",
            f"Upon investigation, {p.institution} {p.violation_en}.",
            f"In accordance with the applicable laws and regulations, {p.institution} "
            f"{p.decision_en} by the {p.authority_en} on {en_date(p.decision_date)}.",
            p.authority_en,
            en_date(p.decision_date),
        ]
    fact = (
        f"经查，{p.institution}{p.violation}。"
        if p.subject_type == "person"
        else f"经查，{p.institution}存在{p.violation}等违法违规行为。"
    )
    paragraphs = [p.decision_no] if p.shows_decision_no else []
    return [
        *paragraphs,
        f"{p.institution}：",
        f"{fact}依据{p.legal_basis}，我局决定对其{p.decision_text}。",
        "当事人如不服本行政处罚决定，可在收到本决定书之日起六十日内申请行政复议，"
        "也可在六个月内直接向有管辖权的人民法院提起行政诉讼。",
        p.authority,
        cn_long_date(p.decision_date),
    ]


def penalty_detail_html(p: Penalty, faults: bool) -> str:
    broken = faults and "broken_markup" in p.faults
    if faults and "no_decision_text" in p.faults:
        inner = '<div class="announcement"><p>本公告正文正在更新，敬请关注。</p></div>'
    elif p.form == "table":
        inner = _pretty(_penalty_table(p), broken, ("</td>", "</tr>"))
    elif p.form == "text":
        paras = "\n".join(f"<p>{e(x)}</p>" for x in _penalty_prose(p))
        inner = f'<div class="announcement">\n{_pretty(paras, broken, ("</p>",))}\n</div>'
    else:
        inner = (
            f'<div class="announcement"><p>{e(p.authority)}依法对{e(p.subject_name)}作出行政处罚，'
            "行政处罚决定书全文见附件。</p>\n"
            f'<p><a class="attachment" href="{p.attachment_path}">'
            "附件：行政处罚决定书</a></p></div>"
        )
    main = (
        f'<h1 class="title">{e(p.title)}</h1>\n'
        f'<div class="info">发布时间：{p.decision_date.isoformat()}　来源：{e(p.authority)}</div>\n'
        f"{inner}\n"
        '<div class="tools"><a href="javascript:window.print()">打印本页</a> '
        '<a href="javascript:window.close()">关闭窗口</a></div>'
    )
    return layout.regulator_page(
        p.title, [("/regulator/penalties?page=1", "行政处罚"), (None, "正文")], main
    )


def penalty_detail(content: SiteContent, req: Request, p: Penalty) -> Page:
    return html_page(penalty_detail_html(p, req.faults), modified_at(content, p, req.epoch))


def penalty_attachment_text(p: Penalty) -> str:
    return (
        "行政处罚决定书\n\n"
        f"当事人：{p.institution}\n"
        f"文号：{p.decision_no}\n"
        f"违法事实：{p.violation}\n"
        f"处罚依据：{p.legal_basis}\n"
        f"处罚决定：{p.decision_text}\n"
        f"机关：{p.authority}\n"
        f"日期：{cn_long_date(p.decision_date)}\n"
    )


def penalty_attachment(content: SiteContent, req: Request) -> Page:
    match = re.fullmatch(r"/regulator/files/([0-9a-f]+)\.txt", req.path)
    record = _by_path(content).get(f"/regulator/penalty/{match.group(1)}.html") if match else None
    if (
        not isinstance(record, Penalty)
        or record.form != "attachment"
        or record.epoch_added > req.epoch
        or (req.faults and "no_decision_text" in record.faults)
    ):
        return not_found(req)
    body = penalty_attachment_text(record).encode("gbk")
    return ok(body, "text/plain; charset=GBK", modified_at(content, record, req.epoch))


# --- news ----------------------------------------------------------------------------------------
def _related(content: SiteContent, a: NewsArticle) -> list[tuple[str, str]]:
    """Up to five articles from the same or earlier epochs: stable across later epochs."""
    pool = [x for x in content.news if x.epoch_added <= a.epoch_added and x is not a]
    scored = sorted(
        pool, key=lambda x: hashlib.sha256(f"{a.article_id}{x.article_id}".encode()).digest()
    )
    return [(x.url_path, x.title) for x in scored[:5]]


def _article_block(a: NewsArticle, broken: bool) -> str:
    paras = "\n".join(f"<p>{e(x)}</p>" for x in a.paragraphs)
    paras = _pretty(paras, broken, ("</p>",))
    when = a.published_at
    if a.template == "article":
        return (
            f"<article><h1>{e(a.title)}</h1>\n"
            f'<div class="meta"><time datetime="{when.isoformat()}">{when:%Y-%m-%d %H:%M}</time> '
            f'<span class="source">来源：{e(a.source)}</span></div>\n'
            f'<div class="body">\n{paras}\n</div>\n'
            '<div class="editor">责任编辑：王编辑</div></article>'
        )
    if a.template == "content":
        return (
            f'<div id="content"><h1 class="title">{e(a.title)}</h1>\n'
            f'<p class="info">发布时间：{when:%Y-%m-%d %H:%M} 来源：{e(a.source)}</p>\n'
            f"{paras}\n</div>"
        )
    return (
        f'<div class="story"><h1>{e(a.title)}</h1>\n'
        f'<p class="byline">By {e(a.author)} | Source: {e(a.source)} | '
        f"{when:%b} {when.day}, {when.year} {when:%H:%M}</p>\n{paras}\n</div>"
    )


def news_article_html(content: SiteContent, a: NewsArticle, faults: bool) -> str:
    english = a.language == "en"
    comments = [(c.user, c.text, f"{c.at:%Y-%m-%d %H:%M}") for c in a.comments]
    return layout.news_page(
        "gbk" if a.encoding == "gbk" else "utf-8",
        a.title,
        _article_block(a, faults and "broken_markup" in a.faults),
        _related(content, a),
        layout.comments_block(comments, english),
        english,
    )


def news_article(content: SiteContent, req: Request, a: NewsArticle) -> Page:
    text = news_article_html(content, a, req.faults)
    return html_page(text, a.published_at, a.encoding)


def news_home(content: SiteContent, req: Request) -> Page:
    latest = content.news_at(req.epoch)[:NEWS_HOME_SIZE]
    items = "\n".join(
        f'<li><a href="{a.url_path}">{e(a.title)}</a> '
        f'<span class="date">{a.published_at:%m-%d %H:%M}</span></li>'
        for a in latest
    )
    archive = (
        f'<p class="archive"><a href="{OVERSIZED_PATH}">历史新闻全集（存档）</a></p>'
        if req.faults
        else ""
    )
    main = (
        f'<h1>财经新闻</h1>\n<ul class="news-list">\n{items}\n</ul>\n'
        '<p class="feeds"><a href="/news/rss.xml">RSS 订阅</a> '
        '<a href="/news/atom.xml">Atom</a></p>\n'
        f"{archive}"
    )
    text = layout.document(
        "utf-8",
        "财经新闻网",
        f'<nav class="menu">{layout.links(layout.NEWS_NAV)}</nav>\n<div class="wrap">{main}</div>\n'
        f"{layout.AD_BLOCK}",
    )
    return html_page(text, content.epoch_time(req.epoch))


def oversized(content: SiteContent, req: Request) -> Page:
    if not req.faults:
        return not_found(req)
    titles = [a.title for a in content.news] or ["存档"]
    lines, size, i = [], 0, 0
    while size < OVERSIZED_BYTES:
        line = f"<p>{i:07d} {e(titles[i % len(titles)])} —— 历史存档内容，数据全量导出。</p>\n"
        lines.append(line)
        size += len(line.encode())
        i += 1
    text = layout.document("utf-8", "历史新闻全集", "".join(lines))
    return html_page(text, content.epoch_time(1))


def rss(content: SiteContent, req: Request) -> Page:
    items = "".join(
        f"<item><title>{e(a.title)}</title><link>{req.base}{a.url_path}</link>"
        f"<description>{e(a.paragraphs[0])}</description>"
        f"<pubDate>{a.published_at:%a, %d %b %Y %H:%M:%S} +0800</pubDate>"
        f'<guid isPermaLink="false">{a.guid}</guid>'
        f'<source url="{req.base}/news/rss.xml">{e(a.source)}</source></item>\n'
        for a in content.news_at(req.epoch)
    )
    built = content.epoch_time(req.epoch)
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>\n'
        f"<title>财经新闻网</title><link>{req.base}/news/</link>"
        "<description>金融、公司与信用新闻</description><language>zh-cn</language>"
        f"<lastBuildDate>{built:%a, %d %b %Y %H:%M:%S} +0800</lastBuildDate>\n"
        f"{items}</channel></rss>\n"
    )
    return ok(text.encode(), "application/rss+xml; charset=utf-8", built)


def atom(content: SiteContent, req: Request) -> Page:
    entries = "".join(
        f"<entry><title>{e(a.title)}</title>"
        f'<link rel="alternate" href="{req.base}{a.url_path}"/>'
        f"<id>{a.guid}</id><updated>{a.published_at.isoformat()}</updated>"
        f"<published>{a.published_at.isoformat()}</published>"
        f"<author><name>{e(a.source)}</name></author>"
        f"<summary>{e(a.paragraphs[0])}</summary></entry>\n"
        for a in content.news_at(req.epoch)
    )
    built = content.epoch_time(req.epoch)
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
        "<title>财经新闻网</title><id>tag:news.riskcontrol.local,2024:feed</id>"
        f'<link rel="self" href="{req.base}/news/atom.xml"/>'
        f"<updated>{built.isoformat()}</updated>\n{entries}</feed>\n"
    )
    return ok(text.encode(), "application/atom+xml; charset=utf-8", built)


# --- routing ----------------------------------------------------------------------------
Handler = Callable[[SiteContent, Request], Page]
ROUTES: dict[str, Handler] = {
    "/": home,
    "/robots.txt": robots,
    "/sitemap.xml": sitemap_index,
    **dict.fromkeys(SITEMAPS, sitemap),
    "/court/list": court_list,
    "/court/search": court_search,
    "/regulator/penalties": penalty_list,
    "/news/": news_home,
    "/news/rss.xml": rss,
    "/news/atom.xml": atom,
    OVERSIZED_PATH: oversized,
    ADMIN_PATH: admin_login,
    "/static/site.css": static,
    "/static/site.js": static,
}
REDIRECTS = {
    "/court": "/court/list?page=1",
    "/court/": "/court/list?page=1",
    "/regulator": "/regulator/penalties?page=1",
    "/regulator/": "/regulator/penalties?page=1",
    "/news": "/news/",
    "/admin": ADMIN_PATH,
    "/admin/": ADMIN_PATH,
}


def parse_query(raw: str) -> dict[str, str]:
    """Query parameters; GBK-encoded ones too, as browsers submit forms of GBK pages."""
    try:
        values = parse_qs(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        values = parse_qs(raw, encoding="gbk", errors="replace")
    return {k: v[0] for k, v in values.items()}


def render(
    content: SiteContent, target: str, epoch: int, base: str = "", faults: bool = True
) -> Page:
    """The response to a GET of ``target`` (path and query) at ``epoch``."""
    parts = urlsplit(target)
    req = Request(
        parts.path, parse_query(parts.query), target, content.check_epoch(epoch), base, faults
    )
    if req.path in REDIRECTS:
        return redirect(REDIRECTS[req.path])
    if req.path in ROUTES:
        return ROUTES[req.path](content, req)
    if req.path.startswith("/private/"):
        return forbidden(content, req)
    if req.path.startswith("/regulator/files/"):
        return penalty_attachment(content, req)
    record = _by_path(content).get(req.path)
    if record is None or record.epoch_added > req.epoch:
        return not_found(req)
    if isinstance(record, CourtCase):
        return court_detail(content, req, record)
    if isinstance(record, Penalty):
        return penalty_detail(content, req, record)
    return news_article(content, req, record)


def crawl_targets(content: SiteContent, epoch: int) -> dict[str, list[str]]:
    """Every crawlable target at ``epoch`` by kind (search results and error pages aside)."""
    court = content.court_at(epoch)
    penalties = content.penalties_at(epoch)
    n_penalty_pages = max(1, math.ceil(len(penalties) / PENALTY_PAGE_SIZE))
    return {
        "court_list": [f"/court/list?page={n}" for n in range(1, court_page_count(len(court)) + 1)],
        "court_detail": [c.url_path for c in court],
        "penalty_list": [f"/regulator/penalties?page={n}" for n in range(1, n_penalty_pages + 1)],
        "penalty_detail": [p.url_path for p in penalties],
        "penalty_attachment": [
            p.attachment_path
            for p in penalties
            if p.form == "attachment" and "no_decision_text" not in p.faults
        ],
        "news_home_and_feeds": ["/news/", "/news/rss.xml", "/news/atom.xml"],
        "news_article": [a.url_path for a in content.news_at(epoch)],
        "sitemaps": ["/sitemap.xml", *SITEMAPS],
        "home_and_robots": ["/", "/robots.txt"],
    }


def page_counts(content: SiteContent, epoch: int) -> dict[str, int]:
    """How many crawlable pages of each kind ``epoch`` has, and their total."""
    counts = {kind: len(targets) for kind, targets in crawl_targets(content, epoch).items()}
    counts["total"] = sum(counts.values())
    return counts


def detail_paths(content: SiteContent, epoch: int) -> list[str]:
    """Every detail page visible at ``epoch`` (what the sitemaps list)."""
    return [
        r.url_path
        for kind in ("court", "penalty", "news")
        for r in detail_records(content, kind, epoch)
    ]
