"""The crawl sources file (``crawlers/sources.yaml``): one entry per spider.

Keys per spider: ``start_urls``, ``allowed_domains``, ``download_delay``,
``concurrency_per_domain``, ``autothrottle_target``, ``enabled`` and ``source`` (the
provenance label written into every page and record); spiders may read more keys
(the news spider's ``feeds`` and ``deny_paths``). A ``defaults`` entry applies to all.

Strings may use ``{site_url}`` (the site's base URL, no trailing slash) and
``{site_host}`` (its host name), filled from the crawl's ``--site-url``: the loopback
site by default, so the same file serves tests, ``riskctl`` and Airflow.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

# The spiders of the project, by name: the one list the runner, the sources file and the
# landing in bronze (riskcontrol.collect.crawl) use.
SPIDERS = ("court", "penalties", "news")

DEFAULT_SITE_URL = "http://127.0.0.1:8765"
DEFAULT_SOURCES = Path(__file__).resolve().parents[1] / "sources.yaml"

# sources.yaml key -> the Scrapy settings it sets for that spider (the delay is also
# AutoThrottle's start delay, which never drops on 304s: re-crawls keep the pace)
SETTING_KEYS = {
    "download_delay": ("DOWNLOAD_DELAY", "AUTOTHROTTLE_START_DELAY"),
    "concurrency_per_domain": ("CONCURRENT_REQUESTS_PER_DOMAIN",),
    "autothrottle_target": ("AUTOTHROTTLE_TARGET_CONCURRENCY",),
    "autothrottle_enabled": ("AUTOTHROTTLE_ENABLED",),
    "autothrottle_max_delay": ("AUTOTHROTTLE_MAX_DELAY",),
}


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names) if "{" in value else value
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


@lru_cache(maxsize=16)
def _load(path: str, site_url: str) -> dict[str, dict[str, Any]]:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    site_url = site_url.rstrip("/")
    names = {"site_url": site_url, "site_host": urlparse(site_url).hostname or ""}
    defaults = raw.pop("defaults", {}) or {}
    sources = {}
    for name, entry in raw.items():
        merged = {"enabled": True, "source": name, **defaults, **(entry or {})}
        sources[name] = _fill(merged, names)
    return sources


def load_sources(
    path: str | Path | None = None, site_url: str | None = None
) -> dict[str, dict[str, Any]]:
    """{spider name: its entry, placeholders filled}; ``defaults`` merged into each."""
    return _load(str(path or DEFAULT_SOURCES), site_url or DEFAULT_SITE_URL)


def source_for(settings: Any, spider_name: str) -> dict[str, Any]:
    """The entry of ``spider_name`` for a Scrapy settings object (``RISKCRAWL_SOURCES``,
    ``RISKCRAWL_SITE_URL``); an empty dict when the file has none."""
    sources = load_sources(settings.get("RISKCRAWL_SOURCES"), settings.get("RISKCRAWL_SITE_URL"))
    return dict(sources.get(spider_name, {}))
