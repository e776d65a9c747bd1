"""Page chrome of the three sites: headers, navigation, sidebars, ads and footers.

The boilerplate is what makes the pages realistic to crawl: extraction must find the
record among navigation, notices, ads and comments. Every function here is pure and
depends only on its arguments, so a detail page's bytes change only with its record.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

SEARCH_FORM = (
    '<form id="case-search" action="/court/search" method="get">'
    '<label>被执行人姓名/名称 <input name="name"></label> '
    '<input name="id_tail" placeholder="证件号后四位"> '
    '<button type="submit">查询</button></form>'
)


def e(text: object) -> str:
    """HTML-escaped text (quotes too: values also go into attributes)."""
    return escape(str(text), quote=True)


def links(items: Iterable[tuple[str, str]], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return (
        f"<ul{attr}>" + "".join(f'<li><a href="{e(h)}">{e(t)}</a></li>' for h, t in items) + "</ul>"
    )


def breadcrumb(steps: Iterable[tuple[str | None, str]], prefix: str = "当前位置：") -> str:
    parts = [f'<a href="{e(h)}">{e(t)}</a>' if h else f"<span>{e(t)}</span>" for h, t in steps]
    return f'<div class="breadcrumb">{e(prefix)}{" &gt; ".join(parts)}</div>'


def document(charset: str, title: str, body: str, lang: str = "zh-CN") -> str:
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{lang}">\n<head>\n<meta charset="{charset}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n"
        '<link rel="stylesheet" href="/static/site.css">\n'
        '<script src="/static/site.js"></script>\n'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# --- court portal (GBK) ------------------------------------------------------------------------
COURT_NAV = (
    ("/", "首页"),
    ("/court/list?page=1", "被执行人信息"),
    ("/court/list?page=1", "失信被执行人"),
    ("/court/search", "综合查询"),
    ("/regulator/penalties?page=1", "金融监管公告"),
    ("/news/", "新闻动态"),
)
COURT_NOTICES = (
    "关于规范执行信息公开工作的通知",
    "失信被执行人名单信息纠错申请指引",
    "执行案件流程节点信息查询说明",
    "关于开展涉民生案件专项执行行动的公告",
)


def court_page(title: str, crumbs: list[tuple[str | None, str]], main: str) -> str:
    """A court portal page around ``main``: top bar, nav, breadcrumb, notices, footer."""
    body = (
        '<div id="top-bar"><span>您好，欢迎访问执行信息公开网</span> '
        '<a href="javascript:void(0)">无障碍浏览</a> <a href="/">返回首页</a></div>\n'
        '<div id="header"><div class="logo">执行信息公开网</div>'
        '<div class="slogan">公开透明 · 阳光执行</div></div>\n'
        f'<div id="nav">{links(COURT_NAV, "menu")}</div>\n'
        f"{breadcrumb([('/', '首页'), *crumbs])}\n"
        f'<div id="main">\n{main}\n</div>\n'
        '<div id="sidebar"><h3>通知公告</h3>'
        + "<ul>"
        + "".join(f"<li>{e(n)}</li>" for n in COURT_NOTICES)
        + "</ul><h3>温馨提示</h3><p>本平台公开信息仅供查询参考，"
        "如对公开信息有异议，请向执行法院提出。</p></div>\n"
        '<div id="footer"><p>主办单位：执行信息公开网（合成数据，仅供测试）</p>'
        "<p>地址：北京市东城区 邮编：100000 技术支持：信息中心</p>"
        "<p>ICP备00000000号</p></div>"
    )
    return document("gbk", f"{title} - 执行信息公开网", body)


# --- regulator (UTF-8) --------------------------------------------------------------------------
REGULATOR_NAV = (
    ("/", "首页"),
    ("/regulator/penalties?page=1", "行政处罚"),
    ("/regulator/penalties?page=1", "政务信息"),
    ("/news/", "新闻发布"),
    ("/court/list?page=1", "执行信息"),
    ("http://www.external-example.com/en/", "English"),
)


def regulator_page(title: str, crumbs: list[tuple[str | None, str]], main: str) -> str:
    body = (
        '<header class="site-header"><div class="logo">金融监管信息公开</div>'
        '<form class="site-search" action="/regulator/penalties" method="get">'
        '<input name="q" placeholder="站内搜索"><button>搜索</button></form></header>\n'
        f'<nav class="main-nav">{links(REGULATOR_NAV)}</nav>\n'
        f"{breadcrumb([('/', '首页'), *crumbs])}\n"
        f'<div class="container">\n<main id="main">\n{main}\n</main>\n'
        '<aside class="sidebar"><h3>政务公开</h3><ul><li>政府信息公开指南</li>'
        "<li>政府信息公开制度</li><li>政府信息公开年报</li></ul>"
        "<h3>相关链接</h3><ul><li>中国人民银行</li><li>中国证监会</li>"
        "<li>国家外汇管理局</li></ul></aside>\n</div>\n"
        '<footer class="site-footer"><p>版权所有：金融监管信息公开（合成数据，仅供测试）</p>'
        "<p>网站标识码 0000000000 京ICP备00000000号</p></footer>"
    )
    return document("utf-8", f"{title} - 金融监管信息公开", body)


# --- news (UTF-8 or GBK) -----------------------------------------------------------------------
NEWS_NAV = (
    ("/news/", "首页"),
    ("/news/", "财经"),
    ("/news/", "金融"),
    ("/news/", "公司"),
    ("/news/", "地方"),
    ("/news/rss.xml", "RSS"),
)
NEWS_NAV_EN = (
    ("/news/", "Home"),
    ("/news/", "Markets"),
    ("/news/", "Finance"),
    ("/news/", "Companies"),
    ("/news/atom.xml", "Feed"),
)
AD_BLOCK = (
    '<div class="ad" id="ad-banner"><span class="ad-label">广告</span>'
    '<a href="http://www.external-example.com/ad?id=1">低息贷款 秒批到账 最高可借20万</a></div>'
)
AD_BLOCK_EN = (
    '<div class="ad" id="ad-banner"><span class="ad-label">Advertisement</span>'
    '<a href="http://www.external-example.com/ad?id=2">'
    "Open a trading account in 5 minutes</a></div>"
)


def news_page(
    charset: str,
    title: str,
    article: str,
    related: list[tuple[str, str]],
    comments_html: str,
    english: bool,
) -> str:
    """A news article page: nav, breadcrumb, share bar, article, ads, sidebar, comments."""
    nav = NEWS_NAV_EN if english else NEWS_NAV
    share = (
        '<div class="share">Share: <a href="javascript:void(0)">WeChat</a> '
        '<a href="javascript:void(0)">Weibo</a> <a href="javascript:void(0)">Email</a></div>'
        if english
        else '<div class="share">分享到：<a href="javascript:void(0)">微信</a> '
        '<a href="javascript:void(0)">微博</a> <a href="javascript:void(0)">QQ空间</a></div>'
    )
    crumbs = (
        [("/news/", "Home"), (None, "Finance"), (None, "Story")]
        if english
        else [("/news/", "首页"), (None, "金融"), (None, "正文")]
    )
    side_title = "Related" if english else "热门文章"
    body = (
        '<div class="topbar"><a href="/news/">财经新闻网</a> | <a href="/">网站导航</a> | '
        '<a href="mailto:tips@news.example.com">爆料</a></div>\n'
        f'<nav class="menu">{links(nav)}</nav>\n'
        f"{breadcrumb(crumbs, '' if english else '您的位置：')}\n"
        f'<div class="wrap">\n<div class="main-col">\n{share}\n{article}\n'
        f"{AD_BLOCK_EN if english else AD_BLOCK}\n{comments_html}\n</div>\n"
        f'<aside class="side-col"><div class="hot"><h3>{side_title}</h3>{links(related)}</div>'
        f"{AD_BLOCK if not english else AD_BLOCK_EN}</aside>\n</div>\n"
        '<footer class="footer"><p>Copyright © 2016-2026 财经新闻网 版权所有'
        "（合成数据，仅供测试）</p>"
        "<p>未经授权禁止转载、摘编、复制或建立镜像</p></footer>"
    )
    return document(charset, title, body, "en" if english else "zh-CN")


def comments_block(comments: list[tuple[str, str, str]], english: bool) -> str:
    head = f"Comments ({len(comments)})" if english else f"网友评论（{len(comments)}）"
    items = "".join(
        f'<li class="comment"><span class="user">{e(u)}</span> '
        f'<span class="time">{e(t)}</span><p>{e(x)}</p></li>'
        for u, x, t in comments
    )
    form = (
        '<form class="comment-form" action="/news/comment" method="post">'
        '<textarea name="text"></textarea><button>发表评论</button></form>'
    )
    return f'<div class="comments" id="comments"><h3>{e(head)}</h3><ul>{items}</ul>{form}</div>'


STATIC_CSS = (
    "body{font-family:sans-serif;margin:0}#main,main,.main-col{padding:1em}"
    ".breadcrumb{font-size:12px;color:#666}.ad{background:#ffe;border:1px solid #ddb}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px}\n"
)
STATIC_JS = "/* analytics placeholder */\n"
