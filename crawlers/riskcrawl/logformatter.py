"""Log lines that never hold a scraped record.

Scrapy's ``LogFormatter`` writes the whole item into the log when it is scraped (DEBUG),
dropped (``Dropped: <reason>`` and the item, INFO here) or fails in a pipeline (ERROR):
the names and ID numbers of court records would end up in ``crawl.log``, in clear and
kept. These lines name the item by its kind, id and page hash instead; the item itself
is in ``records.jsonl`` or ``rejects.jsonl``, which the landing retires.
"""

from __future__ import annotations

from typing import Any

from scrapy.logformatter import LogFormatter


def describe(item: Any) -> str:
    """``court_record 案号 (page 3f2a9c1b0d4e)``: what an item is, without what it says."""
    get = item.get if hasattr(item, "get") else (lambda _name: None)
    kind = get("record_type") or get("page_kind") or get("rule") or ""
    ident = get("record_id")  # a case or decision number, an article id: no person
    page = (get("content_hash") or "")[:12]
    parts = [type(item).__name__, str(kind), str(ident or ""), f"(page {page})" if page else ""]
    return " ".join(p for p in parts if p)


class PrivateLogFormatter(LogFormatter):
    """``LogFormatter`` with every item replaced by :func:`describe`."""

    def scraped(self, item: Any, response: Any, spider: Any) -> Any:
        entry = super().scraped(item, response, spider)
        entry["args"]["item"] = describe(item)
        return entry

    def dropped(self, item: Any, exception: BaseException, response: Any, spider: Any) -> Any:
        entry = super().dropped(item, exception, response, spider)
        entry["args"]["item"] = describe(item)
        return entry

    def item_error(self, item: Any, exception: BaseException, response: Any, spider: Any) -> Any:
        entry = super().item_error(item, exception, response, spider)
        entry["args"]["item"] = describe(item)
        return entry
