"""Which paths misbehave, and how: a stable hash of (seed, path), never a random draw.

Crawler tests must see the same paths fail in every run and in every process, so each
fault is a pure function of the seed and the request target (path plus query string).
"""

from __future__ import annotations

import hashlib

FIRST_500_RATE = 0.05
FIRST_429_RATE = 0.03
SLOW_RATE = 0.05
BROKEN_MARKUP_RATE = 0.05
UNPARSEABLE_RATE = 0.02
META_ONLY_CHARSET_RATE = 0.05

# Paths that never fail: a failing robots.txt makes crawlers ignore the rules, and the
# admin pages and the oversized dump are faults of their own.
EXEMPT_PREFIXES = ("/robots.txt", "/admin/", "/private/", "/news/archive/")
DETAIL_PREFIXES = ("/court/case/", "/regulator/penalty/", "/news/2")


def unit(seed: int, target: str, label: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, target, label)."""
    digest = hashlib.sha256(f"{seed}\x1f{label}\x1f{target}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def is_detail(target: str) -> bool:
    """True for the detail pages of the three sections (court case, penalty, article)."""
    return target.startswith(DETAIL_PREFIXES) and target.endswith(".html")


def first_request_fault(seed: int, target: str) -> int | None:
    """500 or 429 for the first request to this target, or None.

    One draw decides both, so a target never gets both faults.
    """
    if target.startswith(EXEMPT_PREFIXES):
        return None
    u = unit(seed, target, "first")
    if u < FIRST_500_RATE:
        return 500
    if u < FIRST_500_RATE + FIRST_429_RATE:
        return 429
    return None


def is_slow(seed: int, target: str) -> bool:
    """Detail pages that always answer after the server's ``slow_seconds``."""
    return is_detail(target) and unit(seed, target, "slow") < SLOW_RATE


def has_broken_markup(seed: int, target: str) -> bool:
    """Detail pages rendered with unclosed tags a lenient parser still reads correctly."""
    return unit(seed, target, "broken") < BROKEN_MARKUP_RATE


def is_unparseable(seed: int, target: str) -> bool:
    """Court pages without 案号 / penalty pages without any decision text."""
    return unit(seed, target, "unparseable") < UNPARSEABLE_RATE


def charset_in_meta_only(seed: int, target: str) -> bool:
    """GBK pages whose Content-Type header omits the charset (only the meta tag has it)."""
    return unit(seed, target, "meta_charset") < META_ONLY_CHARSET_RATE
