"""The site on loopback: ``http.server`` around ``render``, plus the connection-level faults.

What ``render`` cannot decide lives here because it depends on the request history or
the clock: the first request to some paths fails (500, or 429 with ``Retry-After``),
some detail pages answer slowly, and conditional requests get ``304 Not Modified``.
Request counts per (target, status) let tests assert what a crawler actually did.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from collections import Counter
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from riskcontrol.synthetic.site import faults as fault_rules
from riskcontrol.synthetic.site.content import SiteContent, build_site, write_ground_truth
from riskcontrol.synthetic.site.render import Page, page_counts, render

if TYPE_CHECKING:
    from riskcontrol.core.config import Settings


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match: a list of (possibly weak) tags, or ``*``."""
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _not_modified_since(header: str, last_modified: str) -> bool:
    try:
        since = parsedate_to_datetime(header)
        modified = parsedate_to_datetime(last_modified)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    return modified <= since


def conditional(page: Page, request_headers) -> Page:
    """304 when the client's validators still match (If-None-Match wins over the date)."""
    if page.status != 200:
        return page
    inm = request_headers.get("If-None-Match")
    if inm is not None:
        fresh = _etag_matches(inm, page.headers["ETag"])
    else:
        ims = request_headers.get("If-Modified-Since")
        fresh = ims is not None and _not_modified_since(ims, page.headers["Last-Modified"])
    if not fresh:
        return page
    keep = {k: page.headers[k] for k in ("ETag", "Last-Modified")}
    return Page(304, keep, b"")


class _QuietServer(ThreadingHTTPServer):
    """A client hanging up mid-response (a crawler refusing an oversized page) is normal."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SiteServer:
    """The generated site served from a background thread (``port=0``: any free port)."""

    def __init__(
        self,
        content: SiteContent,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        faults: bool = True,
        slow_seconds: float = 1.5,
        epoch: int = 1,
        verbose: bool = False,
    ) -> None:
        self.content = content
        self.seed = content.seed if seed is None else seed
        self.faults = faults
        self.slow_seconds = slow_seconds
        self.verbose = verbose
        self._epoch = content.check_epoch(epoch)
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._counts: Counter[tuple[str, int]] = Counter()
        self._thread: threading.Thread | None = None
        self._httpd = _QuietServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True

    # --- public API ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Switch the content every later request sees (a crawl between two site updates)."""
        self._epoch = self.content.check_epoch(epoch)

    def start(self) -> SiteServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.05,), name="site-server", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def stats(self) -> dict[str, dict[int, int]]:
        """Requests so far: target (path and query) -> status -> count."""
        with self._lock:
            out: dict[str, dict[int, int]] = {}
            for (target, status), n in sorted(self._counts.items()):
                out.setdefault(target, {})[status] = n
            return out

    def reset_stats(self, rearm_faults: bool = False) -> None:
        """Forget the counts; with ``rearm_faults`` the first-request faults fire again."""
        with self._lock:
            self._counts.clear()
            if rearm_faults:
                self._seen.clear()

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- request handling ------------------------------------------------------------------
    def respond(self, target: str, headers) -> Page:
        """The page for one request, after faults and validators; counted in ``stats``."""
        with self._lock:
            first = target not in self._seen
            self._seen.add(target)
        fault = (
            fault_rules.first_request_fault(self.seed, target) if self.faults and first else None
        )
        if fault == 500:
            page = Page(
                500, {"Content-Type": "text/plain; charset=utf-8"}, b"Internal Server Error\n"
            )
        elif fault == 429:
            page = Page(
                429,
                {"Content-Type": "text/plain; charset=utf-8", "Retry-After": "1"},
                b"Too Many Requests\n",
            )
        else:
            if self.faults and fault_rules.is_slow(self.seed, target):
                time.sleep(self.slow_seconds)
            page = conditional(
                render(self.content, target, self._epoch, self.url, self.faults), headers
            )
        with self._lock:
            self._counts[(target, page.status)] += 1
        return page

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 60

            def version_string(self) -> str:
                return "nginx/1.24.0"

            def do_GET(self) -> None:
                self._answer(with_body=True)

            def do_HEAD(self) -> None:
                self._answer(with_body=False)

            def _answer(self, with_body: bool) -> None:
                parts = urlsplit(self.path)
                target = parts.path + (f"?{parts.query}" if parts.query else "")
                page = site.respond(target or "/", self.headers)
                self.send_response(page.status)
                for name, value in page.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(page.body)))
                self.end_headers()
                if with_body and page.body:
                    self.wfile.write(page.body)

            def log_message(self, format: str, *args: object) -> None:
                if site.verbose:
                    sys.stderr.write(f"{self.address_string()} {format % args}\n")

        return Handler


def describe(content: SiteContent, epoch: int) -> str:
    """One line: what the site holds at ``epoch``."""
    pages = page_counts(content, epoch)
    return (
        f"epoch {epoch}/{content.epochs}: {pages['total']:,} pages, "
        f"{pages['court_detail']:,} court cases, {pages['penalty_detail']:,} penalties, "
        f"{pages['news_article']:,} news articles"
    )


def book_seed(data_dir: Path) -> int:
    """The seed the lending book was generated with (the site's default seed)."""
    gen = Path(data_dir) / "generation.json"
    if not gen.exists():
        raise FileNotFoundError(
            f"no generated lending book in {data_dir} (generation.json missing); "
            "run `riskctl generate` first"
        )
    return int(json.loads(gen.read_text(encoding="utf-8"))["seed"])


def build_and_write(settings: Settings, seed: int | None = None, epochs: int = 3) -> SiteContent:
    """Build the site from ``settings.data_dir`` and write its ground truth to ``site_dir``."""
    data_dir = Path(settings.data_dir)
    content = build_site(data_dir, book_seed(data_dir) if seed is None else seed, epochs)
    write_ground_truth(content, settings.site_dir)
    return content


def serve_forever(
    settings: Settings,
    epoch: int = 1,
    faults: bool = True,
    seed: int | None = None,
    epochs: int = 3,
    verbose: bool = False,
) -> None:
    """Serve the site on ``settings.site_host:site_port`` until Ctrl-C (the CLI's ``serve``)."""
    content = build_and_write(settings, seed, max(epochs, epoch))
    server = SiteServer(
        content, settings.site_host, settings.site_port, faults=faults, epoch=epoch, verbose=verbose
    )
    print(f"serving {server.url}  ({describe(content, epoch)}; faults {'on' if faults else 'off'})")
    print(f"ground truth: {Path(settings.site_dir) / 'ground_truth.jsonl'}  (Ctrl-C to stop)")
    sys.stdout.flush()
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping")
    finally:
        server.stop()
