"""Extensions: AutoThrottle that learns from 304s, and progress lines.

:class:`ConditionalAutoThrottle` replaces Scrapy's AutoThrottle. AutoThrottle only ever
lowers a delay on 200 responses (small error pages would otherwise speed it up), so on a
re-crawl, where nearly every answer is a ``304 Not Modified``, one slow page raised the
delay for good and the crawl crept. A 304 is a real, complete answer: it counts as a 200.

:class:`ProgressReporter` (enabled by the runner): every ``RISKCRAWL_PROGRESS_INTERVAL``
seconds, and once at the end, each spider prints::

    [court] 412 responses, 398 pages, 371 records, 9 rejects, 12 retries, 0 unchanged
"""

from __future__ import annotations

import sys
from typing import Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.extensions.throttle import AutoThrottle
from scrapy.utils.asyncio import create_looping_call


class ConditionalAutoThrottle(AutoThrottle):
    """AutoThrottle whose delay also adapts to ``304 Not Modified`` answers."""

    def _adjust_delay(self, slot: Any, latency: float, response: Any) -> None:
        if response.status == 304:
            response = response.replace(status=200)
        super()._adjust_delay(slot, latency, response)


def progress_line(name: str, stats: dict[str, Any]) -> str:
    return (
        f"[{name}] {stats.get('response_received_count', 0)} responses, "
        f"{stats.get('riskcrawl/pages_written', 0)} pages, "
        f"{stats.get('riskcrawl/records_written', 0)} records, "
        f"{stats.get('riskcrawl/rejects_written', 0)} rejects, "
        f"{stats.get('retry/count', 0)} retries, "
        f"{stats.get('riskcrawl/pages_unchanged', 0)} unchanged"
    )


class ProgressReporter:
    def __init__(self, crawler: Any, interval: float):
        self.crawler = crawler
        self.interval = interval
        self.loop: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> ProgressReporter:
        interval = crawler.settings.getfloat("RISKCRAWL_PROGRESS_INTERVAL", 0)
        if interval <= 0:
            raise NotConfigured
        o = cls(crawler, interval)
        crawler.signals.connect(o.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(o.spider_closed, signal=signals.spider_closed)
        return o

    def report(self, final: bool = False) -> None:
        line = progress_line(self.crawler.spider.name, self.crawler.stats.get_stats())
        print(line + (" (done)" if final else ""), file=sys.stdout, flush=True)

    def spider_opened(self, spider: Any) -> None:
        self.loop = create_looping_call(self.report)
        self.loop.start(self.interval, now=False)

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.report(final=True)
