"""Names of the files a crawl writes into ``<out>/<crawl-id>/``.

Kept free of Scrapy imports: the pipeline's driver process imports ``riskcrawl.run`` to
launch crawls, and importing Scrapy (Twisted, zope.interface) there breaks PySpark ML's
parameter introspection in the same interpreter.
"""

PAGES_FILE, RECORDS_FILE, REJECTS_FILE = "pages.jsonl", "records.jsonl", "rejects.jsonl"
DATA_FILES = (PAGES_FILE, RECORDS_FILE, REJECTS_FILE)  # what the landing reads and retires
STATS_FILE = "stats.json"  # of the folder's latest attempt
ATTEMPTS_FILE = "attempts.jsonl"  # one line per attempt: {"attempt", "started_at", "pid"}
