"""Spider and downloader middlewares of the risk crawlers.

* :class:`SchemeFilterMiddleware` (spider): only ``http``/``https`` requests leave a
  callback; ``mailto:``, ``javascript:``, ``ftp:``... are dropped and counted.
* :class:`BackoffRetryMiddleware` (downloader, replaces Scrapy's RetryMiddleware): retries
  the same codes and exceptions, but waits before each retry: exponential backoff
  (``RETRY_BACKOFF_BASE * 2**n``, at most ``RETRY_BACKOFF_MAX``) and never less than the
  server's ``Retry-After``. Scrapy 2.19's RetryMiddleware reschedules at once; this one
  awaits a reactor timer (``scrapy.utils.asyncio.sleep``), so nothing blocks.
* :class:`IncrementalMiddleware` (downloader): hashes every 200 response and flags it
  ``unchanged`` when the page store holds the same hash for its URL; the spiders then
  skip parsing it. Records hashes when a page line was written (``item_scraped``).
* :class:`WireStatsMiddleware` (downloader, next to the wire): counts statuses as they
  come off the network (the HTTP cache turns a 304 into the cached 200 further up) and
  downloads refused by ``DOWNLOAD_MAXSIZE``.
"""

from __future__ import annotations

import hashlib
import logging
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import DownloadCancelledError, NotConfigured
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware
from scrapy.utils.asyncio import sleep
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.response import response_status_message
from twisted.internet.defer import CancelledError

from riskcrawl.items import PageItem
from riskcrawl.state import PageStore

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

UNCHANGED_FLAG = "unchanged"


def count_filtered_scheme(stats: Any, scheme: str) -> None:
    stats.inc_value("riskcrawl/scheme_filtered")
    stats.inc_value(f"riskcrawl/scheme_filtered/{scheme or 'none'}")


class SchemeFilterMiddleware(BaseSpiderMiddleware):
    """Drop requests whose scheme is not in ``RISKCRAWL_ALLOWED_SCHEMES`` (http, https).

    Stats: ``riskcrawl/scheme_filtered`` and ``riskcrawl/scheme_filtered/<scheme>``."""

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.allowed = {
            s.lower()
            for s in crawler.settings.getlist("RISKCRAWL_ALLOWED_SCHEMES", ["http", "https"])
        }
        self.stats = crawler.stats

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        scheme = urlparse_cached(request).scheme.lower()
        if scheme in self.allowed:
            return request
        count_filtered_scheme(self.stats, scheme)
        logger.debug("Dropped %s request %s", scheme, request.url)
        return None


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class BackoffRetryMiddleware(RetryMiddleware):
    """RetryMiddleware that waits before retrying: exponential backoff, Retry-After honoured.

    Settings: ``RETRY_BACKOFF_BASE`` (seconds before the first retry, default 1),
    ``RETRY_BACKOFF_MAX`` (cap of the exponential part, default 60), ``RETRY_AFTER_MAX``
    (longest Retry-After obeyed, default 120; longer ones are waited this long),
    ``RETRY_BACKOFF_JITTER`` (random extra fraction, default 0.1).
    Stats: ``riskcrawl/retry_after_honoured``, ``riskcrawl/backoff_seconds``."""

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX", 60.0)
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX", 120.0)
        self.jitter = settings.getfloat("RETRY_BACKOFF_JITTER", 0.1)

    def backoff_delay(self, request: Request, response: Response | None) -> float:
        """Seconds to wait before retrying ``request`` (its ``retry_times`` so far)."""
        attempt = request.meta.get("retry_times", 0)
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        delay *= 1 + random.uniform(0, self.jitter)  # noqa: S311 - not crypto
        if response is not None:
            after = retry_after_seconds(response.headers.get(b"Retry-After"))
            if after is not None:
                self.crawler.stats.inc_value("riskcrawl/retry_after_honoured")
                delay = max(delay, min(after, self.retry_after_max))
        return delay

    async def _wait(self, delay: float) -> None:
        self.crawler.stats.inc_value("riskcrawl/backoff_seconds", round(delay, 3))
        if delay > 0:
            await sleep(delay)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        await self._wait(self.backoff_delay(request, response))
        return retry

    async def process_exception(
        self, request: Request, exception: Exception
    ) -> Request | Response | None:
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get(
            "dont_retry", False
        ):
            return None
        retry = self._retry(request, exception)
        if retry is not None:
            await self._wait(self.backoff_delay(request, None))
        return retry


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class IncrementalMiddleware:
    """Flags responses whose content was already emitted, so re-crawls emit only news.

    Enabled when ``RISKCRAWL_STATE_DIR`` and ``RISKCRAWL_OUT_DIR`` are set (and
    ``RISKCRAWL_INCREMENTAL`` is true).
    Every 200 response gets ``meta["content_hash"]``; when the store has that hash for the
    response URL, the response is flagged ``unchanged`` (stat ``riskcrawl/pages_unchanged``).
    A request with ``meta["always_emit"]`` is never flagged."""

    def __init__(self, crawler: Crawler, state_dir: Path):
        self.crawler = crawler
        self.state_dir = state_dir
        self.store: PageStore | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IncrementalMiddleware:
        state_dir = crawler.settings.get("RISKCRAWL_STATE_DIR")
        if not state_dir or not crawler.settings.getbool("RISKCRAWL_INCREMENTAL", True):
            raise NotConfigured("no RISKCRAWL_STATE_DIR: every page counts as new")
        if not crawler.settings.get("RISKCRAWL_OUT_DIR"):
            # pages must be written before they are remembered, or they would be lost
            raise NotConfigured("no RISKCRAWL_OUT_DIR: pages are not written, nor remembered")
        o = cls(crawler, Path(state_dir))
        crawler.signals.connect(o.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(o.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(o.item_scraped, signal=signals.item_scraped)
        return o

    def spider_opened(self, spider: Any) -> None:
        self.store = PageStore(self.state_dir / f"pages-{spider.name}.sqlite")
        self.crawler.stats.set_value("riskcrawl/pages_known", len(self.store))

    def spider_closed(self, spider: Any) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def item_scraped(self, item: Any) -> None:
        if isinstance(item, PageItem) and self.store is not None:
            self.store.put(
                item["url"], item["content_hash"], item.get("page_kind"), item.get("crawl_id")
            )

    def process_response(self, request: Request, response: Response) -> Response:
        if response.status != 200:
            return response
        digest = body_hash(response.body)
        request.meta["content_hash"] = digest
        if (
            self.store is not None
            and not request.meta.get("always_emit")
            and self.store.is_unchanged(response.url, digest)
        ):
            response.flags.append(UNCHANGED_FLAG)
            self.crawler.stats.inc_value("riskcrawl/pages_unchanged")
        return response


class WireStatsMiddleware:
    """Counts what the network returned (``riskcrawl/wire_status/<code>``, so 304s show)
    and downloads refused for exceeding ``DOWNLOAD_MAXSIZE`` (``riskcrawl/maxsize_refused``,
    the URL is logged and kept in ``request.meta["refused"]``)."""

    def __init__(self, crawler: Crawler):
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WireStatsMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        if "cached" not in response.flags:
            self.stats.inc_value(f"riskcrawl/wire_status/{response.status}")
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        # Refused before the body (Content-Length above the limit): DownloadCancelledError
        # "... larger than download max size ..."; while streaming: a cancelled Deferred.
        if (
            isinstance(exception, DownloadCancelledError) and "max size" in str(exception)
        ) or isinstance(exception, CancelledError):
            self.stats.inc_value("riskcrawl/maxsize_refused")
            request.meta["refused"] = "max_size"
            logger.warning("Refused %s: larger than DOWNLOAD_MAXSIZE", request.url)
        return None
