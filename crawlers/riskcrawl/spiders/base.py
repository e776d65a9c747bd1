"""What the three spiders share: configuration from sources.yaml, page items with
provenance, rejects, and the incremental "unchanged page" check."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import scrapy
from scrapy.exceptions import DownloadTimeoutError, IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.settings import SETTINGS_PRIORITIES
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import TCPTimedOutError
from twisted.internet.error import TimeoutError as TwistedTimeoutError
from twisted.python.failure import Failure

from riskcrawl.items import PageItem, RejectItem, make_record
from riskcrawl.middlewares import UNCHANGED_FLAG, count_filtered_scheme
from riskcrawl.parsers import ParseError
from riskcrawl.sources import SETTING_KEYS, source_for


class EmptyAllowList(ValueError):
    """A source without ``allowed_domains``: Scrapy would follow links to every site."""


def allow_list(conf: dict[str, Any], spider: str) -> list[str]:
    """The source's ``allowed_domains``; :class:`EmptyAllowList` when it names none."""
    domains = [str(d).strip() for d in conf.get("allowed_domains") or [] if str(d or "").strip()]
    if not domains:
        raise EmptyAllowList(
            f"{spider}: allowed_domains is empty in the sources file; refusing to crawl "
            "(an empty allow-list would follow links to any site)"
        )
    return domains


class RiskSpider(scrapy.Spider):
    """Base spider: reads its entry of sources.yaml (``RISKCRAWL_SOURCES``, with
    ``{site_url}`` from ``RISKCRAWL_SITE_URL``) for start URLs, allowed domains and its
    politeness settings, and builds the page / record / reject items of the contract."""

    record_type: ClassVar[str] = ""

    @classmethod
    def update_settings(cls, settings: Any) -> None:
        """Politeness from sources.yaml; with a state directory, the HTTP cache in it
        (unless HTTPCACHE_ENABLED was set explicitly)."""
        super().update_settings(settings)
        state = settings.get("RISKCRAWL_STATE_DIR")
        if (
            state
            and (settings.getpriority("HTTPCACHE_ENABLED") or 0) <= SETTINGS_PRIORITIES["project"]
        ):
            settings.set("HTTPCACHE_ENABLED", True, priority="spider")
            settings.set("HTTPCACHE_DIR", str(Path(state) / "httpcache"), priority="spider")
        conf = source_for(settings, cls.name)
        for key, names in SETTING_KEYS.items():
            if conf.get(key) is not None:
                for name in names:
                    settings.set(name, conf[key], priority="spider")

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> RiskSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        conf = source_for(crawler.settings, cls.name)
        spider.conf = conf
        if not getattr(spider, "start_urls", None):
            spider.start_urls = list(conf.get("start_urls", []))
        spider.allowed_domains = allow_list(conf, cls.name)
        spider.source = conf.get("source", cls.name)
        spider.crawl_id = crawler.settings.get("RISKCRAWL_CRAWL_ID") or (
            "adhoc-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        )
        return spider

    # --- provenance ---------------------------------------------------------------------

    @staticmethod
    def unchanged(response: Response) -> bool:
        """True when this exact content was emitted by an earlier crawl (incremental)."""
        return UNCHANGED_FLAG in response.flags

    @staticmethod
    def content_hash(response: Response) -> str:
        digest = response.meta.get("content_hash")
        if digest is None:
            digest = hashlib.sha256(response.body).hexdigest()
            response.meta["content_hash"] = digest
        return digest

    @staticmethod
    def fetched_at(response: Response | None = None) -> str:
        if response is not None and "fetched_at" in response.meta:
            return response.meta["fetched_at"]
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        if response is not None:
            response.meta["fetched_at"] = stamp
        return stamp

    def provenance(self, response: Response) -> dict[str, Any]:
        return {
            "source": self.source,
            "url": response.url,
            "fetched_at": self.fetched_at(response),
            "content_hash": self.content_hash(response),
            "crawl_id": self.crawl_id,
        }

    @staticmethod
    def text(response: Response) -> str:
        if isinstance(response, TextResponse):
            return response.text
        return response.body.decode("utf-8", errors="replace")

    def page_item(self, response: Response, page_kind: str) -> PageItem | None:
        """The page line for ``response``, or None when it is unchanged since last crawl."""
        if self.unchanged(response):
            return None

        def header(name: str) -> str | None:
            value = response.headers.get(name)
            return value.decode("latin-1") if value is not None else None

        return PageItem(
            crawl_id=self.crawl_id,
            spider=self.name,
            source=self.source,
            url=response.url,
            status=response.status,
            fetched_at=self.fetched_at(response),
            content_type=header("Content-Type"),
            encoding=getattr(response, "encoding", None),
            content_hash=self.content_hash(response),
            etag=header("ETag"),
            last_modified=header("Last-Modified"),
            body=self.text(response),
            page_kind=page_kind,
        )

    def record(self, response: Response, fields: dict[str, Any], record_type: str = "") -> Any:
        return make_record(record_type or self.record_type, fields, self.provenance(response))

    def reject(
        self,
        rule: str,
        reason: str,
        response: Response | None = None,
        url: str | None = None,
    ) -> RejectItem:
        return RejectItem(
            crawl_id=self.crawl_id,
            spider=self.name,
            url=response.url if response is not None else url,
            fetched_at=self.fetched_at(response),
            content_hash=self.content_hash(response) if response is not None else None,
            rule=rule,
            reason=reason,
            body=self.text(response) if response is not None else None,
        )

    def parse_detail(self, response: Response, page_kind: str, parse: Any, *args: Any):
        """Page item, then ``parse(text, url, *args)`` as a record, or a reject with the
        parser's rule; nothing for an unchanged page."""
        page = self.page_item(response, page_kind)
        if page is None:
            return
        yield page
        try:
            fields = parse(self.text(response), response.url, *args)
        except ParseError as exc:
            self.crawler.stats.inc_value(f"riskcrawl/parse_error/{exc.rule}")
            yield self.reject(exc.rule, exc.reason, response)
            return
        yield self.record(response, fields)

    def link_request(self, url: str, callback: Any, **kwargs: Any) -> scrapy.Request | None:
        """A request for a link found on a page, or None for links that name no resource
        to download (``mailto:``, ``javascript:``, ``tel:``...: counted like the schemes
        :class:`~riskcrawl.middlewares.SchemeFilterMiddleware` drops)."""
        scheme, sep, _ = url.partition(":")
        if not sep or not url[len(scheme) + 1 :].startswith("//"):
            count_filtered_scheme(self.crawler.stats, scheme.lower() if sep else "")
            return None
        return scrapy.Request(url, callback=callback, errback=self.on_error, **kwargs)

    def follow_listing(self, listing: dict, detail: Any):
        """Requests for a list page's entries (``detail`` parses each) and for the other
        list pages it links (``parse_list`` again), each URL once."""
        for entry in listing["entries"]:
            yield scrapy.Request(entry["url"], callback=detail, errback=self.on_error)
        for url in dict.fromkeys([listing["next_url"], *listing["page_urls"]]):
            if url:
                yield scrapy.Request(url, callback=self.parse_list, errback=self.on_error)

    # --- failures -----------------------------------------------------------------------

    def on_error(self, failure: Failure):
        """Errback: a page that could not be downloaded after the retries is a reject
        (``http_<status>``, ``timeout`` or ``download_error``); refusals by policy
        (robots.txt, off-site, off-site or private redirects, size limit) are counted in
        the stats and logged with their reason, not written as rejects."""
        request = failure.request
        retries = request.meta.get("retry_times", 0)
        if failure.check(HttpError):  # an IgnoreRequest too: checked first
            response = failure.value.response
            yield self.reject(
                f"http_{response.status}",
                f"HTTP {response.status} after {retries} retries",
                url=response.url,
            )
            return
        if failure.check(IgnoreRequest) or request.meta.get("refused"):
            return
        if failure.check(DownloadTimeoutError, TwistedTimeoutError, TCPTimedOutError):
            timeout = request.meta.get("download_timeout")
            yield self.reject(
                "timeout",
                f"no complete answer within {timeout:g} s, {retries} retries"
                if timeout
                else f"timed out after {retries} retries",
                url=request.url,
            )
            return
        yield self.reject(
            "download_error",
            f"{failure.type.__name__}: {failure.getErrorMessage()}",
            url=request.url,
        )
