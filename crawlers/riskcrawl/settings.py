"""Scrapy settings of the risk crawlers: polite by default.

These defaults suit real public sources (one request at a time per domain, a second
apart, AutoThrottle on top). ``sources.yaml`` sets per-spider delay, concurrency and
AutoThrottle target (the loopback site is crawled faster); the runner
(``python -m riskcrawl.run``) sets the crawl's site URL, output and state directories
and crawl id. With ``scrapy crawl`` pass them with ``-s``, e.g.
``-s RISKCRAWL_OUT_DIR=/tmp/crawl -s RISKCRAWL_STATE_DIR=/tmp/state`` (the files then go
straight into RISKCRAWL_OUT_DIR).
"""

from riskcrawl.sources import DEFAULT_SITE_URL, DEFAULT_SOURCES

BOT_NAME = "riskcrawl"
SPIDER_MODULES = ["riskcrawl.spiders"]
NEWSPIDER_MODULE = "riskcrawl.spiders"

USER_AGENT = "riskcrawl/1.0 (risk-control public records crawler; obeys robots.txt)"
ROBOTSTXT_OBEY = True

# --- politeness ---------------------------------------------------------------------
CONCURRENT_REQUESTS = 32  # over all domains; the per-domain limit is what servers feel
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

# --- robustness -----------------------------------------------------------------------
DOWNLOAD_TIMEOUT = 30  # a page still not there is retried, then a reject (rule timeout)
DOWNLOAD_MAXSIZE = 2 * 1024 * 1024  # larger pages are refused (riskcrawl/refused/max_size)
DOWNLOAD_WARNSIZE = 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 408, 429]
RETRY_BACKOFF_BASE = 1.0  # seconds before the first retry; doubles per attempt
RETRY_BACKOFF_MAX = 60.0
RETRY_AFTER_MAX = 120.0  # a longer Retry-After is waited this long
RETRY_BACKOFF_JITTER = 0.1
REDIRECT_MAX_TIMES = 5

DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8",
    # Revalidate every cached page (If-None-Match / If-Modified-Since) instead of trusting
    # the Last-Modified freshness heuristic: a re-crawl must see changed pages.
    "Cache-Control": "max-age=0",
}

# --- incremental re-crawls: with RISKCRAWL_STATE_DIR set, the spiders enable the HTTP
# cache in <state dir>/httpcache and the page-hash store (IncrementalMiddleware) -------
HTTPCACHE_ENABLED = False
HTTPCACHE_POLICY = "scrapy.extensions.httpcache.RFC2616Policy"
# Encrypted at rest with the bronze key: cached pages name people (riskcrawl/cache.py).
HTTPCACHE_STORAGE = "riskcrawl.cache.EncryptedFilesystemCacheStorage"
HTTPCACHE_IGNORE_HTTP_CODES = [408, 429, 500, 502, 503, 504]
HTTPCACHE_GZIP = True

# --- components -----------------------------------------------------------------------
SPIDER_MIDDLEWARES = {
    "riskcrawl.middlewares.SchemeFilterMiddleware": 40,
}
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "riskcrawl.middlewares.BackoffRetryMiddleware": 550,
    "riskcrawl.middlewares.IncrementalMiddleware": 540,
    # sees a 3xx before RedirectMiddleware (600) follows it: off-site / private refused
    "riskcrawl.middlewares.RedirectPolicyMiddleware": 620,
    "riskcrawl.middlewares.WireStatsMiddleware": 950,
}
ITEM_PIPELINES = {
    "riskcrawl.pipelines.ValidationPipeline": 100,
    "riskcrawl.pipelines.PagesWriterPipeline": 800,
    "riskcrawl.pipelines.RecordsWriterPipeline": 810,
    "riskcrawl.pipelines.RejectsWriterPipeline": 820,
}
EXTENSIONS = {
    "scrapy.extensions.throttle.AutoThrottle": None,
    "riskcrawl.extensions.ConditionalAutoThrottle": 0,  # 304s count as 200s
}
SPIDER_CONTRACTS = {
    "riskcrawl.contracts.RecordContract": 10,
}
DEFAULT_DROPITEM_LOG_LEVEL = "INFO"  # drops are expected: they go to rejects.jsonl
# Log lines name items by kind and id, never with their content (names, ID numbers).
LOG_FORMATTER = "riskcrawl.logformatter.PrivateLogFormatter"

# --- this project's settings ------------------------------------------------------------
RISKCRAWL_SITE_URL = DEFAULT_SITE_URL  # fills {site_url} in sources.yaml
RISKCRAWL_SOURCES = str(DEFAULT_SOURCES)
RISKCRAWL_OUT_DIR = None  # pages/records/rejects .jsonl go here; unset: not written
RISKCRAWL_STATE_DIR = None  # page hashes and the HTTP cache, kept between crawls
RISKCRAWL_INCREMENTAL = True
RISKCRAWL_CRAWL_ID = None  # default: adhoc-<UTC timestamp>
RISKCRAWL_ALLOWED_SCHEMES = ["http", "https"]

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
