"""The generated public web served on loopback: court lists, regulator penalties, news.

Built from the lending book (``build_site``), rendered by pure functions (``render``)
and served by ``SiteServer`` with the faults of the crawl contract
(``crawlers/CONTRACT.md``).
"""

from riskcontrol.synthetic.site.cli import add_site_parser, site_command
from riskcontrol.synthetic.site.content import build_site, ground_truth, write_ground_truth
from riskcontrol.synthetic.site.records import (
    CourtCase,
    NewsArticle,
    Penalty,
    SiteContent,
)
from riskcontrol.synthetic.site.render import Page, detail_paths, page_counts, render
from riskcontrol.synthetic.site.server import SiteServer, serve_forever

__all__ = [
    "CourtCase",
    "NewsArticle",
    "Page",
    "Penalty",
    "SiteContent",
    "SiteServer",
    "add_site_parser",
    "build_site",
    "detail_paths",
    "ground_truth",
    "page_counts",
    "render",
    "serve_forever",
    "site_command",
    "write_ground_truth",
]
