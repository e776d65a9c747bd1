"""What the crawler remembers between crawls: the content hash of every page it emitted.

One SQLite file per spider in the state directory (``pages-<spider>.sqlite``), so spiders
running in one process never contend for a write lock. A URL's hash is recorded only
after its page line was written (the ``item_scraped`` signal of its :class:`PageItem`),
so a crash before the write re-emits the page next time: at-least-once, never lost.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    url          TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    page_kind    TEXT,
    crawl_id     TEXT,
    first_seen   TEXT NOT NULL,
    last_changed TEXT NOT NULL
)
"""


class PageStore:
    """Per-URL content hashes, read into memory at open, written back in batches."""

    def __init__(self, path: Path, batch_size: int = 500):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._hashes: dict[str, str] = dict(self._db.execute("SELECT url, content_hash FROM pages"))
        self._pending: list[tuple[str, str, str | None, str | None, str]] = []

    def __len__(self) -> int:
        return len(self._hashes)

    def get(self, url: str) -> str | None:
        """The hash last emitted for ``url``, or None for a page never emitted."""
        return self._hashes.get(url)

    def is_unchanged(self, url: str, content_hash: str) -> bool:
        return self._hashes.get(url) == content_hash

    def put(
        self, url: str, content_hash: str, page_kind: str | None = None, crawl_id: str | None = None
    ) -> None:
        """Record that ``url`` was emitted with ``content_hash``."""
        if self._hashes.get(url) == content_hash:
            return
        self._hashes[url] = content_hash
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self._pending.append((url, content_hash, page_kind, crawl_id, now))
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        with self._db:
            self._db.executemany(
                "INSERT INTO pages (url, content_hash, page_kind, crawl_id, first_seen, "
                "last_changed) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(url) DO UPDATE SET "
                "content_hash = excluded.content_hash, page_kind = excluded.page_kind, "
                "crawl_id = excluded.crawl_id, last_changed = excluded.last_changed",
                [(u, h, k, c, t, t) for u, h, k, c, t in self._pending],
            )
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._db.close()
