"""API keys of the channel systems that call the decision service.

A key is ``rk_<id>_<secret>``: the id (16 hex) names it in lists and logs, the secret (32
random bytes) proves it. Only the SHA-256 of the whole key is stored; the key is shown
once, when it is made. Keys are scoped (``decide``: ask for decisions; ``read``: read
stored decisions), may expire, and are revoked with effect on the next request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from riskcontrol.serve.sqlite import private_db

SCOPES = frozenset({"decide", "read"})
# Matched with fullmatch: `$` alone would also accept the key followed by a newline.
_TOKEN = re.compile(r"^rk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_DUMMY = hashlib.sha256(b"no such key").hexdigest()
SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);
"""


def default_path(home: Path) -> Path:
    return Path(home) / "service" / "api_keys.db"


class Refused(Exception):
    """A caller the service turns away: 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def state(self, now: dt.datetime | None = None) -> str:
        """active, revoked or expired (at ``now``; a naive ``now`` is taken as UTC)."""
        now = now or dt.datetime.now(dt.UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def _ts(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _key(row) -> ApiKey:
    key_id, name, scopes, created, expires, revoked = row
    return ApiKey(key_id, name, tuple(scopes.split(",")), _ts(created), _ts(expires), _ts(revoked))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_scopes(values: str | Iterable[str]) -> tuple[str, ...]:
    """Sorted, distinct scopes from ``["decide", "read"]``, ``"decide,read"`` or both."""
    if isinstance(values, str):
        values = [values]
    scopes = sorted({s.strip() for v in values for s in str(v).split(",") if s.strip()})
    valid = ", ".join(sorted(SCOPES))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {', '.join(map(repr, unknown))}; valid scopes: {valid}")
    if not scopes:
        raise ValueError(f"give at least one scope: {valid}")
    return tuple(scopes)


class KeyStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _db(self):
        return private_db(self.path, SCHEMA)

    def create(
        self, name: str, scopes: str | Iterable[str], days: int | None = None
    ) -> tuple[str, ApiKey]:
        """A new key: (the key itself, shown once; its stored description)."""
        name = (name or "").strip()
        if not name or len(name) > 64 or not name.isprintable():
            raise ValueError("a key's name is 1 to 64 printable characters")
        scopes = parse_scopes(scopes)
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
            raise ValueError(f"--days must be a whole number of days, 1 or more (got {days!r})")
        now = dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(days=days) if days else None
        key_id = secrets.token_hex(8)
        token = f"rk_{key_id}_{secrets.token_urlsafe(32)}"
        with self._db() as db:
            db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (
                    key_id,
                    name,
                    _digest(token),
                    ",".join(scopes),
                    now.isoformat(),
                    expires.isoformat() if expires else None,
                ),
            )
        return token, ApiKey(key_id, name, scopes, now, expires, None)

    def list(self) -> list[ApiKey]:
        with self._db() as db:
            rows = db.execute(
                "SELECT key_id, name, scopes, created_at, expires_at, revoked_at FROM api_keys "
                "ORDER BY created_at, key_id"
            ).fetchall()
        return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        now = dt.datetime.now(dt.UTC).isoformat()
        with self._db() as db:
            db.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?",
                (now, key_id),
            )
            row = db.execute(
                "SELECT key_id, name, scopes, created_at, expires_at, revoked_at FROM api_keys "
                "WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        if row is None:
            raise ValueError(f"no API key with id {key_id!r}; `riskctl keys list` shows them")
        return _key(row)

    def check(self, token: str | None, scope: str, now: dt.datetime | None = None) -> ApiKey:
        """The key behind ``token`` if it may use ``scope``; else raises Refused."""
        if not token:
            raise Refused(401, "missing key")
        m = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if not m:
            raise Refused(401, "malformed key")
        with self._db() as db:
            row = db.execute(
                "SELECT key_id, name, scopes, created_at, expires_at, revoked_at, digest "
                "FROM api_keys WHERE key_id = ?",
                (m.group(1),),
            ).fetchone()
        stored = row[6] if row else _DUMMY
        matches = hmac.compare_digest(stored, _digest(token))
        if row is None:
            raise Refused(401, "unknown key")
        if not matches:
            raise Refused(401, "wrong secret")
        key = _key(row[:6])
        state = key.state(now)
        if state != "active":
            raise Refused(401, state)
        if scope not in key.scopes:
            raise Refused(403, f"scope {scope!r} not granted")
        return key
