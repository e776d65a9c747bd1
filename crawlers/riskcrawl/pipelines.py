"""Item pipelines: validate records, then write pages, records and rejects as JSON lines.

* :class:`ValidationPipeline` checks every record against the contract (required fields,
  enums, ISO dates, amounts, provenance) and raises :class:`InvalidItem` (a ``DropItem``
  with a ``rule`` and a ``reason``).
* :class:`PagesWriterPipeline`, :class:`RecordsWriterPipeline`,
  :class:`RejectsWriterPipeline` append ``pages.jsonl``, ``records.jsonl`` and
  ``rejects.jsonl`` in ``RISKCRAWL_OUT_DIR``. The rejects writer also listens to
  ``item_dropped``, so a dropped record lands in ``rejects.jsonl`` with its rule and the
  page it came from: nothing is lost.

Several spiders of one process append to the same files: each line is one unbuffered
``write`` on a file opened with ``O_APPEND``, so lines never interleave.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.http import TextResponse

from riskcrawl.items import PROVENANCE, PageItem, RecordItem, RejectItem
from riskcrawl.outputs import PAGES_FILE, RECORDS_FILE, REJECTS_FILE
from riskcrawl.parsers import PENALTY_TYPES


class InvalidItem(DropItem):
    """A record that breaks a rule of the contract."""

    def __init__(self, rule: str, reason: str):
        super().__init__(f"{rule}: {reason}", log_level="INFO")
        self.rule = rule
        self.reason = reason


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ID_NUMBER = re.compile(r"^[0-9A-Z*]{18}$")
_LATEST = date(2100, 1, 1)


def _require(record: ItemAdapter, *fields: str) -> None:
    for name in fields:
        if record.get(name) in (None, "", []):
            raise InvalidItem(f"missing_{name}", f"{record.get('record_type')} without {name}")


def _check_date(record: ItemAdapter, name: str, earliest: str = "1990-01-01") -> None:
    value = record.get(name)
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise InvalidItem(f"bad_{name}", f"{name} {value!r} is not YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidItem(f"bad_{name}", f"{name} {value!r} is not a date") from None
    if not date.fromisoformat(earliest) <= day <= _LATEST:
        raise InvalidItem(f"bad_{name}", f"{name} {value} is out of range")


def _check_amount(record: ItemAdapter, required: bool) -> None:
    value = record.get("amount")
    if value is None:
        if required:
            raise InvalidItem("missing_amount", f"{record.get('record_type')} without amount")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidItem("bad_amount", f"amount {value!r} is not a non-negative number")


def _check_enum(record: ItemAdapter, name: str, allowed: tuple[str, ...]) -> None:
    if record.get(name) not in allowed:
        raise InvalidItem(f"bad_{name}", f"{name} {record.get(name)!r} not in {allowed}")


def validate_record(record: ItemAdapter) -> None:
    """Raise :class:`InvalidItem` when ``record`` breaks the contract of its type."""
    _require(record, "record_type", "record_id", *PROVENANCE)
    if not _SHA256.match(str(record.get("content_hash"))):
        raise InvalidItem("bad_content_hash", "content_hash is not a sha256 hex digest")
    if not str(record.get("url")).startswith(("http://", "https://")):
        raise InvalidItem("bad_url", f"url {record.get('url')!r} is not http(s)")
    kind = record["record_type"]
    if kind == "court_record":
        _require(record, "subject_name", "court", "case_no", "filing_date", "list_type")
        _check_enum(record, "subject_type", ("person", "company"))
        _check_enum(record, "list_type", ("enforcement", "dishonest"))
        _check_date(record, "filing_date")
        _check_amount(record, required=False)
        if record.get("record_id") != record.get("case_no"):
            raise InvalidItem("bad_record_id", "court record_id must equal case_no")
        id_number = record.get("id_number")
        if id_number is not None and not _ID_NUMBER.match(id_number):
            # The reason is kept in clear (rejects, quarantine): it never repeats the value.
            raise InvalidItem(
                "bad_id_number",
                f"id_number has {len(str(id_number))} characters, not 18 of 0-9, X or *",
            )
        if bool(record.get("id_masked")) != ("*" in (id_number or "")):
            raise InvalidItem("bad_id_masked", "id_masked does not match id_number")
    elif kind == "penalty":
        _require(record, "institution", "decision_date", "form")
        _check_enum(record, "form", ("table", "text", "attachment"))
        _check_date(record, "decision_date")
        _check_amount(record, required=False)
        types = record.get("penalty_types")
        if not types or not isinstance(types, list) or not set(types) <= set(PENALTY_TYPES):
            raise InvalidItem("bad_penalty_types", f"penalty_types {types!r}")
    elif kind == "news_article":
        _require(record, "title", "body", "published_at")
        _check_enum(record, "language", ("zh", "en"))
        try:
            published = datetime.fromisoformat(record["published_at"])
        except (TypeError, ValueError):
            raise InvalidItem("bad_published_at", "published_at is not ISO 8601") from None
        if published.tzinfo is None:
            raise InvalidItem("bad_published_at", "published_at has no UTC offset")
    else:
        raise InvalidItem("unknown_record_type", f"record_type {kind!r}")


class ValidationPipeline:
    """Drops records that break the contract (``InvalidItem``: rule + reason)."""

    def __init__(self, crawler: Any):
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> ValidationPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, RecordItem):
            return item
        try:
            validate_record(ItemAdapter(item))
        except InvalidItem as exc:
            self.stats.inc_value(f"riskcrawl/invalid/{exc.rule}")
            raise
        return item


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class JsonLinesWriter:
    """Appends items of ``item_class`` to ``RISKCRAWL_OUT_DIR/filename``, every declared
    field in declaration order (``null`` when unset)."""

    filename: str = ""
    item_class: type = object
    stat: str = ""

    def __init__(self, crawler: Any, out_dir: Path):
        self.crawler = crawler
        self.stats = crawler.stats
        self.path = Path(out_dir) / self.filename
        self._fh: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> JsonLinesWriter:
        out_dir = crawler.settings.get("RISKCRAWL_OUT_DIR")
        if not out_dir:
            raise NotConfigured("RISKCRAWL_OUT_DIR is not set")
        return cls(crawler, Path(out_dir))

    def open_spider(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 - closed in close_spider

    def close_spider(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def write(self, row: dict[str, Any]) -> None:
        data = memoryview((json.dumps(row, ensure_ascii=False, default=str) + "\n").encode())
        while data:
            written = self._fh.write(data)
            data = data[written:]

    @staticmethod
    def row(item: Any) -> dict[str, Any]:
        return {name: item.get(name) for name in item.fields}

    def process_item(self, item: Any) -> Any:
        if isinstance(item, self.item_class):
            self.write(self.row(item))
            self.stats.inc_value(self.stat)
            self.count(item)
        return item

    def count(self, item: Any) -> None:
        pass


class PagesWriterPipeline(JsonLinesWriter):
    filename, item_class, stat = PAGES_FILE, PageItem, "riskcrawl/pages_written"

    def count(self, item: Any) -> None:
        self.stats.inc_value(f"riskcrawl/pages_written/{item.get('page_kind')}")


class RecordsWriterPipeline(JsonLinesWriter):
    filename, item_class, stat = RECORDS_FILE, RecordItem, "riskcrawl/records_written"

    def count(self, item: Any) -> None:
        self.stats.inc_value(f"riskcrawl/records_written/{item.get('record_type')}")


class RejectsWriterPipeline(JsonLinesWriter):
    """Writes :class:`RejectItem` (pages that failed to parse or download) and, from the
    ``item_dropped`` signal, every record dropped by validation."""

    filename, item_class, stat = REJECTS_FILE, RejectItem, "riskcrawl/rejects_written"

    @classmethod
    def from_crawler(cls, crawler: Any) -> JsonLinesWriter:
        pipe = super().from_crawler(crawler)
        crawler.signals.connect(pipe.item_dropped, signal=signals.item_dropped)
        return pipe

    def count(self, item: Any) -> None:
        self.stats.inc_value(f"riskcrawl/rejects/{item.get('rule')}")

    def item_dropped(self, item: Any, response: Any, exception: Exception) -> None:
        if self._fh is None or isinstance(item, RejectItem):
            return
        adapter = ItemAdapter(item)
        body = response.text if isinstance(response, TextResponse) else None
        reject = RejectItem(
            crawl_id=adapter.get("crawl_id"),
            spider=self.crawler.spider.name,
            url=adapter.get("url"),
            fetched_at=adapter.get("fetched_at") or now_iso(),
            content_hash=adapter.get("content_hash"),
            rule=getattr(exception, "rule", "dropped"),
            reason=getattr(exception, "reason", str(exception)),
            body=body if body is not None else json.dumps(adapter.asdict(), ensure_ascii=False),
        )
        self.process_item(reject)
