"""What the crawler remembers between crawls: the content hash of every page in bronze.

One SQLite file per spider in the state directory (``pages-<spider>.sqlite``), so spiders
running in one process never contend for a write lock. Two tables:

* ``pending``: every page line a crawl wrote (crawl id, URL, hash), recorded after the
  line was written (the ``item_scraped`` signal of its :class:`PageItem`);
* ``pages``: per URL the hash that *landed*: :func:`mark_landed` moves a crawl's pending
  rows there, and the bronze landing (``riskcontrol.collect.crawl``) calls it only after
  its Delta commits of that crawl, before it retires the crawl's files.

Only landed hashes count as seen (:meth:`PageStore.is_unchanged`), so a page is emitted
again by every crawl until a crawl that emitted it has landed. Whatever is killed when:
a page line not yet written is not pending; a crawl not yet landed keeps its folder and
its pending rows, and the next crawl re-emits the page too; a landing that dies after its
Delta commit lands the folder again (the MERGE on key and hash adds nothing) and marks it
then. A page is emitted at least once more than needed, never lost. Each marking is one
transaction per file; a hash only replaces one emitted later (``seq``), so crawls may
land in any order.

Also here, free of Scrapy (the Spark driver imports this module): :func:`crawl_folder_lock`,
the lock a crawl attempt holds on its output folder and the landing takes before it reads
and retires the folder's files, so a landing never deletes lines a crawl is still writing.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS pages (
        url          TEXT PRIMARY KEY,
        content_hash TEXT NOT NULL,
        page_kind    TEXT,
        crawl_id     TEXT,
        first_seen   TEXT NOT NULL,
        last_changed TEXT NOT NULL,
        seq          INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS pending (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        crawl_id     TEXT NOT NULL,
        url          TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        page_kind    TEXT,
        emitted_at   TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS pending_crawl ON pending (crawl_id)",
)
STORE_GLOB = "pages-*.sqlite"
BUSY_TIMEOUT_SECONDS = 60.0


def store_path(state_dir: Path, spider: str) -> Path:
    return Path(state_dir) / f"pages-{spider}.sqlite"


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)
    db.execute("PRAGMA journal_mode=WAL")
    with db:
        for statement in _SCHEMA:
            db.execute(statement)
        columns = {row[1] for row in db.execute("PRAGMA table_info(pages)")}
        if "seq" not in columns:  # a store written before pages were marked landed
            db.execute("ALTER TABLE pages ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
    return db


class PageStore:
    """Per-URL landed content hashes, read into memory at open; the page lines this crawl
    writes are recorded as pending, in batches."""

    def __init__(self, path: Path, batch_size: int = 500):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self._db = _connect(self.path)
        self._hashes: dict[str, str] = dict(self._db.execute("SELECT url, content_hash FROM pages"))
        self._pending: list[tuple[str, str, str, str | None, str]] = []

    def __len__(self) -> int:
        """Pages whose hash landed."""
        return len(self._hashes)

    def pending_count(self) -> int:
        """Page lines written by crawls that have not landed yet (this one's included)."""
        self.flush()
        return self._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]

    def get(self, url: str) -> str | None:
        """The hash of ``url`` in bronze, or None for a page that never landed."""
        return self._hashes.get(url)

    def is_unchanged(self, url: str, content_hash: str) -> bool:
        """True when bronze already holds ``url`` with this content."""
        return self._hashes.get(url) == content_hash

    def put(
        self, url: str, content_hash: str, page_kind: str | None = None, crawl_id: str | None = None
    ) -> None:
        """Record that crawl ``crawl_id`` wrote the line of ``url`` with ``content_hash``:
        pending until :func:`mark_landed` of that crawl."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self._pending.append((crawl_id or "", url, content_hash, page_kind, now))
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        with self._db:
            self._db.executemany(
                "INSERT INTO pending (crawl_id, url, content_hash, page_kind, emitted_at) "
                "VALUES (?, ?, ?, ?, ?)",
                self._pending,
            )
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._db.close()


_PROMOTE = """
INSERT INTO pages (url, content_hash, page_kind, crawl_id, first_seen, last_changed, seq)
SELECT url, content_hash, page_kind, crawl_id, emitted_at, emitted_at, seq
FROM pending WHERE crawl_id = ? ORDER BY seq
ON CONFLICT (url) DO UPDATE SET
    last_changed = CASE WHEN excluded.content_hash = pages.content_hash
                        THEN pages.last_changed ELSE excluded.last_changed END,
    content_hash = excluded.content_hash,
    page_kind = excluded.page_kind,
    crawl_id = excluded.crawl_id,
    seq = excluded.seq
WHERE excluded.seq > pages.seq
"""


def mark_landed(state_dir: Path | str | None, crawl_id: str) -> int:
    """Crawl ``crawl_id`` is in bronze: its pending hashes become the pages' landed hashes.

    Call it after the Delta commits of every line of the crawl's folder and before the
    folder's files are retired. Idempotent; one transaction per spider's file. Returns
    how many pending rows were moved (0 without a state directory)."""
    if state_dir is None or not Path(state_dir).is_dir():
        return 0
    moved = 0
    for path in sorted(Path(state_dir).glob(STORE_GLOB)):
        db = _connect(path)
        try:
            with db:
                db.execute(_PROMOTE, (crawl_id,))
                moved += db.execute("DELETE FROM pending WHERE crawl_id = ?", (crawl_id,)).rowcount
        finally:
            db.close()
    return moved


class CrawlFolderBusy(RuntimeError):
    """Another process holds the lock of a crawl folder (a crawl writing, or a landing)."""


@contextmanager
def crawl_folder_lock(folder: Path | str) -> Iterator[None]:
    """An exclusive ``flock`` on the crawl folder itself (no lock file: the folder lists
    only what the crawl wrote), held by a crawl attempt while it writes and by the landing
    while it reads and retires; released by the kernel when its process dies. Raises
    :class:`CrawlFolderBusy` at once when another process holds it."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CrawlFolderBusy(f"{folder} is in use by another crawl or landing") from None
        yield
    finally:
        os.close(fd)
