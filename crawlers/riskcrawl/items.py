"""Items: what the spiders yield and the pipelines validate and write.

Field names and order are exactly the JSON lines of crawlers/CONTRACT.md ("Crawl output"): the
writers emit every declared field, ``null`` when a spider left it unset.

* :class:`PageItem` -> ``pages.jsonl`` (one per downloaded page whose content is new or
  changed since the last crawl);
* :class:`CourtRecordItem`, :class:`PenaltyItem`, :class:`NewsArticleItem` ->
  ``records.jsonl`` (``record_type`` tells them apart);
* :class:`RejectItem` -> ``rejects.jsonl`` (pages that failed to parse; items dropped
  by validation are written there too, by the rejects writer).

Every record carries its provenance: ``source``, ``url``, ``fetched_at`` (ISO 8601 UTC),
``content_hash`` (sha256 of the page bytes) and ``crawl_id``.
"""

from __future__ import annotations

import scrapy

PROVENANCE = ("source", "url", "fetched_at", "content_hash", "crawl_id")


class PageItem(scrapy.Item):
    crawl_id = scrapy.Field()
    spider = scrapy.Field()
    source = scrapy.Field()
    url = scrapy.Field()
    status = scrapy.Field()
    fetched_at = scrapy.Field()
    content_type = scrapy.Field()
    encoding = scrapy.Field()
    content_hash = scrapy.Field()
    etag = scrapy.Field()
    last_modified = scrapy.Field()
    body = scrapy.Field()
    page_kind = scrapy.Field()  # list | detail | feed | attachment | search


class RecordItem(scrapy.Item):
    """Base of the parsed records: the type, the id, and provenance (declared last by the
    subclasses so the JSON lines read as in the contract)."""


class CourtRecordItem(RecordItem):
    record_type = scrapy.Field()
    record_id = scrapy.Field()  # = case_no
    subject_name = scrapy.Field()
    subject_type = scrapy.Field()  # person | company
    id_number = scrapy.Field()  # as shown: full or masked
    id_masked = scrapy.Field()
    court = scrapy.Field()
    case_no = scrapy.Field()
    amount = scrapy.Field()  # float yuan
    filing_date = scrapy.Field()  # YYYY-MM-DD
    status = scrapy.Field()
    list_type = scrapy.Field()  # enforcement | dishonest
    source = scrapy.Field()
    url = scrapy.Field()
    fetched_at = scrapy.Field()
    content_hash = scrapy.Field()
    crawl_id = scrapy.Field()


class PenaltyItem(RecordItem):
    record_type = scrapy.Field()
    record_id = scrapy.Field()  # decision number, or the penalty page id
    institution = scrapy.Field()
    penalty_types = scrapy.Field()  # list of fine | warning | confiscation | ...
    amount = scrapy.Field()  # float yuan or None
    reason = scrapy.Field()
    decision_date = scrapy.Field()  # YYYY-MM-DD
    authority = scrapy.Field()
    decision_no = scrapy.Field()
    form = scrapy.Field()  # table | text | attachment
    source = scrapy.Field()
    url = scrapy.Field()
    fetched_at = scrapy.Field()
    content_hash = scrapy.Field()
    crawl_id = scrapy.Field()


class NewsArticleItem(RecordItem):
    record_type = scrapy.Field()
    record_id = scrapy.Field()  # feed guid, or the URL
    title = scrapy.Field()
    published_at = scrapy.Field()  # ISO 8601 with offset
    news_source = scrapy.Field()
    body = scrapy.Field()
    language = scrapy.Field()  # zh | en
    feed = scrapy.Field()  # rss | atom
    source = scrapy.Field()
    url = scrapy.Field()
    fetched_at = scrapy.Field()
    content_hash = scrapy.Field()
    crawl_id = scrapy.Field()


class RejectItem(scrapy.Item):
    crawl_id = scrapy.Field()
    spider = scrapy.Field()
    url = scrapy.Field()
    fetched_at = scrapy.Field()
    content_hash = scrapy.Field()
    rule = scrapy.Field()
    reason = scrapy.Field()
    body = scrapy.Field()


RECORD_TYPES: dict[str, type[RecordItem]] = {
    "court_record": CourtRecordItem,
    "penalty": PenaltyItem,
    "news_article": NewsArticleItem,
}


def make_record(record_type: str, fields: dict, provenance: dict) -> RecordItem:
    """A record item of ``record_type`` from parsed ``fields`` plus ``provenance``;
    keys the item does not declare are ignored (parsers may return extras)."""
    cls = RECORD_TYPES[record_type]
    values = {"record_type": record_type, **fields, **provenance}
    return cls({k: v for k, v in values.items() if k in cls.fields})
