"""The lists the policy rules check: an internal blocklist of customers and the devices and
phones of known fraud cases.

A list is a text file of keyed pseudonyms (HMAC-SHA256 with the project's pseudonym key,
64 hex characters a line), never of clear identifiers: ``riskctl lists add`` reads the
identifiers from a file or standard input and writes only their pseudonyms. The service
pseudonymizes the request's customer id, device id and phone the same way and looks the
pseudonyms up, so neither the list files nor the service ever hold a clear identifier.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from riskcontrol.core.pii import hmac_hex

# What each list holds, as `riskctl lists` explains it.
KINDS = {
    "blocklist": "customer ids the lender will not lend to (internal blocklist)",
    "fraud_devices": "device ids seen in a confirmed fraud case",
    "fraud_phones": "phone numbers seen in a confirmed fraud case",
}
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")


def folder(home: Path) -> Path:
    return Path(home) / "service" / "lists"


def normalize(kind: str, value: str) -> str:
    """The identifier as it is pseudonymized: phones keep their digits only, so that
    "+86 138-0000-0000" and "8613800000000" are the same phone."""
    value = value.strip()
    if kind == "fraud_phones":
        digits = re.sub(r"\D", "", value)
        return digits[2:] if digits.startswith("86") and len(digits) == 13 else digits
    return value


def pseudonym(kind: str, value: str, key: bytes) -> str:
    return hmac_hex(normalize(kind, value).encode("utf-8"), key)


@dataclass(frozen=True)
class Lists:
    """The loaded lists: each a frozen set of pseudonyms."""

    entries: dict[str, frozenset[str]]

    def contains(self, kind: str, value_pseudonym: str) -> bool:
        return value_pseudonym in self.entries.get(kind, frozenset())

    def sizes(self) -> dict[str, int]:
        return {k: len(self.entries.get(k, ())) for k in KINDS}

    @classmethod
    def load(cls, where: Path) -> Lists:
        entries = {}
        for kind in KINDS:
            path = Path(where) / f"{kind}.txt"
            if not path.exists():
                entries[kind] = frozenset()
                continue
            values = set()
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if not _PSEUDONYM.match(line):
                    raise ValueError(
                        f"{path}:{n}: not a pseudonym (64 hex characters); add identifiers "
                        "with `riskctl lists add`, which pseudonymizes them"
                    )
                values.add(line)
            entries[kind] = frozenset(values)
        return cls(entries)


def signature(where: Path) -> tuple:
    """What changes when a list file changes (for the service's reload)."""
    out = []
    for kind in KINDS:
        path = Path(where) / f"{kind}.txt"
        st = path.stat() if path.exists() else None
        out.append((kind, st.st_mtime_ns if st else None, st.st_size if st else None))
    return tuple(out)


def add(where: Path, kind: str, values: Iterable[str], key: bytes) -> tuple[int, int]:
    """Append the pseudonyms of ``values`` to list ``kind``: (added, already listed)."""
    if kind not in KINDS:
        raise ValueError(f"unknown list {kind!r}; lists: {', '.join(KINDS)}")
    where = Path(where)
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = where / f"{kind}.txt"
    have = Lists.load(where).entries[kind]
    given = [v for v in values if v.strip()]
    new: list[str] = []
    for value in given:
        p = pseudonym(kind, value, key)
        if p not in have and p not in new:
            new.append(p)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.writelines(p + "\n" for p in new)
    return len(new), len(given) - len(new)
