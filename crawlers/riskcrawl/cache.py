"""Scrapy's filesystem HTTP cache, encrypted at rest.

The cache keeps whole pages (court lists name people and their ID numbers) between
crawls so that a re-crawl can revalidate them (``If-None-Match``/``If-Modified-Since``)
instead of downloading them again. Stored in clear, it would be personal data outside
the lakehouse. Here every file of an entry is sealed with the pipeline's bronze key
(``riskcontrol.core.pii.encrypt_text``, AES-256-GCM bound to the cache) and written 0600.
An entry that no longer decrypts (the key was rotated) is dropped and fetched again.
A cache folder written by an earlier, unencrypted version is purged on first use.
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import shutil
from pathlib import Path
from typing import Any

from scrapy.extensions.httpcache import FilesystemCacheStorage

MAGIC = b"RCENC1\n"
AAD = "crawl_state.httpcache"
SEALED_MARKER = ".sealed-v1"


class _SealOnClose(io.BytesIO):
    """A write buffer that lands on disk, sealed, when closed."""

    def __init__(self, path: Path, seal) -> None:
        super().__init__()
        self._path, self._seal = path, seal

    def close(self) -> None:
        if not self.closed:
            data = self._seal(self.getvalue())
            tmp = self._path.with_name(self._path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self._path)
        super().close()


class EncryptedFilesystemCacheStorage(FilesystemCacheStorage):
    """``FilesystemCacheStorage`` whose files hold ciphertext only."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        from riskcontrol.core.config import Settings

        self._settings = Settings()
        self._settings.bronze_secret()  # fails now, with instructions, if no key is set
        self._open = self._sealed_open  # type: ignore[assignment]

    def open_spider(self, spider: Any) -> None:
        root = Path(self.cachedir)
        if root.exists() and not (root / SEALED_MARKER).exists():
            shutil.rmtree(root)  # written in clear by an earlier version
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        (root / SEALED_MARKER).touch(mode=0o600)
        super().open_spider(spider)

    def _seal(self, data: bytes) -> bytes:
        from riskcontrol.core import pii

        text = base64.b64encode(gzip.compress(data)).decode("ascii")
        return MAGIC + pii.encrypt_text(text, AAD, self._settings).encode("ascii")

    def _unseal(self, data: bytes) -> bytes:
        from riskcontrol.core import pii

        if not data.startswith(MAGIC):
            raise pii.DecryptionError("cache file is not sealed")
        text = pii.decrypt_text(data[len(MAGIC) :].decode("ascii"), AAD, self._settings)
        return gzip.decompress(base64.b64decode(text))

    def _sealed_open(self, path: str | os.PathLike, mode: str = "rb"):
        path = Path(path)
        if "w" in mode:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            return _SealOnClose(path, self._seal)
        return io.BytesIO(self._unseal(path.read_bytes()))

    def retrieve_response(self, spider: Any, request: Any):
        from riskcontrol.core import pii

        try:
            return super().retrieve_response(spider, request)
        except (pii.DecryptionError, ValueError, OSError):
            # Under another key or damaged: forget the entry, fetch the page again.
            shutil.rmtree(Path(self._get_request_path(spider, request)), ignore_errors=True)
            return None
