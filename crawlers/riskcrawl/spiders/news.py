"""News about lenders, borrowers and companies.

Entry points are the feeds (``feeds`` in sources.yaml: the RSS and the Atom feed), read
one after the other so an article listed by both is attributed to the first feed, every
crawl. Each feed entry leads to its article page, parsed with the boilerplate removed
(``parsers.parse_article``); the feed gives the article's guid, title, time and source.
After the feeds, the hub pages (``start_urls``: the site's home and the news home) are
read and every link on them is followed, except into ``deny_paths`` (sections other
spiders own): articles missing from the feeds are found there, and everything else a hub
links to meets the crawl policy (robots.txt, allowed domains, http(s) only, size limit).

Contracts (``scrapy check news``) need the site on http://127.0.0.1:8765.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from scrapy import Request
from scrapy.http import Response

from riskcrawl import parsers
from riskcrawl.parsers import ParseError
from riskcrawl.spiders.base import RiskSpider

ARTICLE_PATH = re.compile(r"^/news/\d{4}/\d{2}/[^/]+\.html$")


class NewsSpider(RiskSpider):
    name = "news"
    record_type = "news_article"

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> NewsSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.feeds = list(spider.conf.get("feeds", []))
        spider.deny_paths = tuple(spider.conf.get("deny_paths", []))
        article = spider.conf.get("article_path")
        spider.article_path = re.compile(article) if article else ARTICLE_PATH
        return spider

    async def start(self):
        chain = [self.feed_request(url) for url in self.feeds]
        chain += [
            Request(u, callback=self.parse_hub, errback=self.on_error) for u in self.start_urls
        ]
        self._chain = chain
        for request in self.next_in_chain():
            yield request

    def feed_request(self, url: str) -> Request:
        return Request(url, callback=self.parse_feed, errback=self.feed_failed)

    def next_in_chain(self):
        """The next feed, or (after the last feed) every hub page at once."""
        chain = getattr(self, "_chain", [])
        while chain:
            request = chain.pop(0)
            yield request
            if request.callback == self.parse_feed:
                return

    def parse_feed(self, response: Response):
        """An RSS or Atom feed: the page, then one request per article (and the next feed).

        @url http://127.0.0.1:8765/news/rss.xml
        @returns items 1 1
        @returns requests 30
        @scrapes url content_hash page_kind body crawl_id
        """
        if page := self.page_item(response, "feed"):
            yield page
        try:
            entries = parsers.parse_feed(response.body, response.url)
        except ParseError as exc:
            yield self.reject(exc.rule, exc.reason, response)
            entries = []
        for entry in entries:
            if entry["link"]:
                yield Request(
                    entry["link"],
                    callback=self.parse_article,
                    errback=self.on_error,
                    cb_kwargs={"entry": entry},
                )
        yield from self.next_in_chain()

    def feed_failed(self, failure: Any):
        yield from self.on_error(failure)
        yield from self.next_in_chain()

    def parse_hub(self, response: Response):
        """A hub page (home, news home): the page, then every link not in ``deny_paths``.

        @url http://127.0.0.1:8765/news/
        @returns items 1 1
        @returns requests 30
        @scrapes url content_hash page_kind body crawl_id
        """
        if page := self.page_item(response, "list"):
            yield page
        here = urlparse(response.url)
        for url in parsers.parse_hub_links(self.text(response), response.url):
            target = urlparse(url)
            if target.hostname == here.hostname and target.path.startswith(self.deny_paths):
                continue
            same_site = target.hostname == here.hostname
            callback = (
                self.parse_article
                if same_site and self.article_path.match(target.path)
                else self.parse_hub
            )
            if request := self.link_request(url, callback):
                yield request

    def parse_article(self, response: Response, entry: dict | None = None):
        """An article page: the page and its news_article (boilerplate removed).

        @url http://127.0.0.1:8765/news/2024/04/industry-7637eb851f.html
        @returns items 2 2
        @scrapes url fetched_at content_hash crawl_id
        @record news_article record_id title published_at body language
        """
        yield from self.parse_detail(response, "detail", self.article_fields, entry)

    @staticmethod
    def article_fields(text: str, url: str, entry: dict | None) -> dict:
        """The page's fields, completed by the feed entry (its guid, title, time, source)."""
        fields = parsers.parse_article(text, url)
        entry = entry or {}
        return {
            "record_id": entry.get("guid") or url,
            "title": entry.get("title") or fields["title"],
            "published_at": entry.get("published_at") or fields["published_at"],
            "news_source": entry.get("news_source") or fields["news_source"],
            "body": fields["body"],
            "language": fields["language"],
            "feed": entry.get("feed"),
        }
