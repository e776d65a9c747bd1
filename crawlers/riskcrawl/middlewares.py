"""Spider and downloader middlewares of the risk crawlers.

* :class:`SchemeFilterMiddleware` (spider): only ``http``/``https`` requests leave a
  callback; ``mailto:``, ``javascript:``, ``ftp:``... are dropped and counted.
* :class:`BackoffRetryMiddleware` (downloader, replaces Scrapy's RetryMiddleware): retries
  the same codes and exceptions, but waits before each retry: exponential backoff
  (``RETRY_BACKOFF_BASE * 2**n``, at most ``RETRY_BACKOFF_MAX``) and never less than the
  server's ``Retry-After``. Scrapy 2.19's RetryMiddleware reschedules at once; this one
  awaits a reactor timer (``scrapy.utils.asyncio.sleep``), so nothing blocks.
* :class:`IncrementalMiddleware` (downloader): hashes every 200 response and flags it
  ``unchanged`` when the page store holds the same *landed* hash for its URL; the spiders
  then skip parsing it. Records a page's hash as pending under the crawl id once its line
  was written (``item_scraped``); the bronze landing marks it landed (``state.py``).
* :class:`RedirectPolicyMiddleware` (downloader, before Scrapy's RedirectMiddleware):
  refuses a redirect off the spider's ``allowed_domains`` or to a loopback, private,
  link-local or otherwise non-public address the allow-list does not name.
* :class:`WireStatsMiddleware` (downloader, next to the wire): counts statuses as they
  come off the network (the HTTP cache turns a 304 into the cached 200 further up) and
  downloads refused by ``DOWNLOAD_MAXSIZE``.

Every refusal by policy is counted (``riskcrawl/refused/<reason>``: ``max_size``,
``offsite_redirect``, ``private_address``), logged as a warning with its reason, and kept
in ``request.meta["refused"]`` (the spiders' errback then writes no reject for it).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import random
import re
import socket
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from scrapy import Request, signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest, NotConfigured
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware
from scrapy.utils.asyncio import sleep
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.response import response_status_message
from twisted.internet.defer import CancelledError
from w3lib.url import safe_url_string

from riskcrawl.items import PageItem
from riskcrawl.state import PageStore, store_path

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

UNCHANGED_FLAG = "unchanged"


def loggable(url: str) -> str:
    """``url`` for a log line: without its query (a search URL names the person sought)."""
    parts = urlsplit(url)
    return parts._replace(query="…" if parts.query else "", fragment="").geturl()


def refuse(stats: Any, request: Request, reason: str, detail: str) -> None:
    """Count, log and mark a request refused by policy (``riskcrawl/refused/<reason>``)."""
    stats.inc_value("riskcrawl/refused")
    stats.inc_value(f"riskcrawl/refused/{reason}")
    request.meta["refused"] = reason
    logger.warning("Refused %s (%s): %s", loggable(request.url), reason, detail)


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
    """Flags responses whose content is already in bronze, so re-crawls emit only news.

    Enabled when ``RISKCRAWL_STATE_DIR`` and ``RISKCRAWL_OUT_DIR`` are set (and
    ``RISKCRAWL_INCREMENTAL`` is true).
    Every 200 response gets ``meta["content_hash"]``; when the store has that hash *landed*
    for the response URL, the response is flagged ``unchanged`` (stat
    ``riskcrawl/pages_unchanged``). A page written by a crawl that has not landed yet is
    not: it is emitted again (stat ``riskcrawl/pages_pending`` counts such lines at open).
    Written page lines are recorded as pending under the crawl id (``item_scraped``).
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
        self.store = PageStore(store_path(self.state_dir, spider.name))
        self.crawler.stats.set_value("riskcrawl/pages_known", len(self.store))
        # lines of earlier crawls not landed yet: their pages are emitted again
        self.crawler.stats.set_value("riskcrawl/pages_pending", self.store.pending_count())

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


REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


def non_public_address(host: str | None) -> str | None:
    """What kind of address ``host`` is when it is not a public one: ``loopback``,
    ``link-local``, ``private`` or ``non-public`` (reserved, multicast, shared, ...);
    None for a public address or a host name (``localhost`` counts as loopback).

    IPv4 is read the way the resolver reads it, so ``2852039166`` and ``0xa9.0xfe.0xa9.0xfe``
    are 169.254.169.254; IPv4-mapped IPv6 addresses are judged as their IPv4 address."""
    host = (host or "").strip().strip("[]").rstrip(".").lower()
    if not host:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    try:
        ip: Any = ipaddress.ip_address(host)
    except ValueError:
        try:
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None  # a host name
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private:
        return "private"
    return None if ip.is_global else "non-public"


def allowed_host(host: str, allowed_domains: list[str]) -> bool:
    """Scrapy's OffsiteMiddleware rule: ``host`` is an allowed domain or a subdomain of one."""
    domains = [re.escape(d.lower()) for d in allowed_domains if d]
    return bool(domains) and re.match(rf"^(.*\.)?({'|'.join(domains)})$", host.lower()) is not None


def redirect_refusal(target: str, allowed_domains: list[str]) -> tuple[str, str] | None:
    """Why a redirect to ``target`` must not be followed, as (reason, detail), or None.

    An address that is not public (the cloud metadata service at 169.254.169.254, 10.x,
    127.x, ...) is followed only when the allow-list names it as it is written;
    any other host only when the allow-list covers it."""
    host = (urlsplit(target).hostname or "").rstrip(".").lower()
    kind = non_public_address(host)
    if kind is not None and host not in {d.lower() for d in allowed_domains if d}:
        return "private_address", f"redirect to {loggable(target)}, a {kind} address"
    if not allowed_host(host, allowed_domains):
        return "offsite_redirect", f"redirect to {loggable(target)}, off the allowed domains"
    return None


class RedirectPolicyMiddleware:
    """Refuses redirects that leave the allow-list (``allowed_domains``) before Scrapy's
    RedirectMiddleware follows them (run between it and the network, priority 620).

    A server that answers 3xx with a ``Location`` off-site, or to an address that is not
    public and not on the allow-list, gets an ``IgnoreRequest``: the target is never
    requested, the refusal is counted (``riskcrawl/refused/offsite_redirect`` or
    ``riskcrawl/refused/private_address``) and logged with its reason. Scrapy's own
    OffsiteMiddleware would drop an off-site redirect silently, at scheduling."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedirectPolicyMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        location = response.headers.get(b"Location")
        if (
            response.status not in REDIRECT_CODES
            or not location
            or request.meta.get("dont_redirect", False)
        ):
            return response
        target = urljoin(request.url, safe_url_string(location))
        allowed = list(getattr(self.crawler.spider, "allowed_domains", None) or [])
        refusal = redirect_refusal(target, allowed)
        if refusal is None:
            return response
        reason, detail = refusal
        refuse(self.stats, request, reason, detail)
        raise IgnoreRequest(f"{reason}: {detail}")


class WireStatsMiddleware:
    """Counts what the network returned (``riskcrawl/wire_status/<code>``, so 304s show)
    and downloads refused for exceeding ``DOWNLOAD_MAXSIZE`` (``riskcrawl/maxsize_refused``
    and ``riskcrawl/refused/max_size``; the URL and the limit are logged, and
    ``request.meta["refused"]`` is ``"max_size"``)."""

    def __init__(self, crawler: Crawler):
        self.stats = crawler.stats
        self.maxsize = crawler.settings.getint("DOWNLOAD_MAXSIZE")

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
            limit = request.meta.get("download_maxsize", self.maxsize)
            refuse(self.stats, request, "max_size", f"larger than DOWNLOAD_MAXSIZE ({limit} bytes)")
        return None
