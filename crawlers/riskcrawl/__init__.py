"""riskcrawl: the Scrapy project that crawls public risk sources.

Court enforcement and dishonest-debtor lists, regulator penalty announcements and news,
written as the JSON lines of the crawl contract (pages, records, rejects) plus stats.
Run it with ``python -m riskcrawl.run`` or :func:`riskcrawl.run.crawl`.
"""
