"""The workbench's own store: users, sessions, the audit log, review assignments and
policy proposals, in one private SQLite file (``service/workbench.db``, 0600 in a 0700
folder, WAL).

* Passwords are hashed with argon2id (``argon2-cffi``'s defaults); a clear password is
  never stored or logged. Five failed logins in a row lock a user for 15 minutes.
* A session cookie carries 32 random bytes; the store keeps only their SHA-256, with the
  session's CSRF token, its user and its expiry (8 hours, or 30 minutes idle).
* The audit log is append-only: triggers refuse any UPDATE or DELETE.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from riskcontrol.serve.sqlite import private_db

ROLES = ("viewer", "analyst", "reviewer", "risk_manager", "approver", "admin")
LOCK_AFTER = 5  # failed logins in a row
LOCK_FOR = dt.timedelta(minutes=15)
SESSION_FOR = dt.timedelta(hours=8)
SESSION_IDLE = dt.timedelta(minutes=30)
MIN_PASSWORD = 12

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT,
    client TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS assignments (
    application_key TEXT PRIMARY KEY,
    customer_key TEXT,
    assignee TEXT NOT NULL,
    assigned_by TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS proposals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    preview TEXT NOT NULL,
    rationale TEXT NOT NULL,
    proposer TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    decision_note TEXT,
    activated TEXT
);
"""
PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON")
_HASHER = PasswordHasher()
# Verified against when the user is unknown, so an unknown name costs the same time.
_DUMMY = _HASHER.hash("not a password of anyone")


def default_path(home: Path) -> Path:
    return Path(home) / "service" / "workbench.db"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserError(ValueError):
    """A user command that cannot be carried out; the message says why."""


class LoginFailed(Exception):
    """Wrong name or password, a disabled or a locked user (the message is the same)."""


@dataclass(frozen=True)
class User:
    username: str
    role: str
    disabled: bool
    locked_until: dt.datetime | None
    created_at: str

    def has(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class Session:
    username: str
    role: str
    csrf: str


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: one of {', '.join(ROLES)} (lowest first)")
    return role


def check_username(name: str) -> str:
    name = (name or "").strip()
    if not (1 <= len(name) <= 64) or not all(c.isalnum() or c in "._-@" for c in name):
        raise UserError(
            "a user name is 1 to 64 letters, digits or . _ - @ (no spaces), e.g. li.wei"
        )
    return name


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")
    return password


class WorkbenchStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _db(self):
        return private_db(self.path, SCHEMA, *PRAGMAS)

    # --- audit -------------------------------------------------------------------------
    def audit(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        detail: dict | str | None = None,
        client: str | None = None,
    ) -> None:
        text = (
            json.dumps(detail, ensure_ascii=False, sort_keys=True)
            if isinstance(detail, dict)
            else detail
        )
        with self._db() as db:
            db.execute(
                "INSERT INTO audit (at, actor, action, target, detail, client) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (_stamp(_now()), actor, action, target, text, client),
            )

    def audit_rows(
        self, actor: str | None = None, action: str | None = None, limit: int = 500
    ) -> list[dict[str, Any]]:
        where, args = [], []
        if actor:
            where.append("actor = ?")
            args.append(actor)
        if action:
            where.append("action LIKE ?")
            args.append(action.replace("%", "") + "%")
        sql = "SELECT seq, at, actor, action, target, detail, client FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._db() as db:
            rows = db.execute(f"{sql} ORDER BY seq DESC LIMIT ?", (*args, limit)).fetchall()
        cols = ("seq", "at", "actor", "action", "target", "detail", "client")
        return [dict(zip(cols, r, strict=True)) for r in rows]

    # --- users -------------------------------------------------------------------------
    def add_user(self, username: str, role: str, password: str, by: str) -> User:
        username, role = check_username(username), check_role(role)
        hashed = _HASHER.hash(check_password(password))
        with self._db() as db:
            if db.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                raise UserError(f"user {username!r} exists: `riskctl users reset` changes it")
            db.execute(
                "INSERT INTO users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                (username, role, hashed, _stamp(_now())),
            )
        self.audit(by, "user.add", username, {"role": role})
        return self.user(username)

    def user(self, username: str) -> User | None:
        with self._db() as db:
            row = db.execute(
                "SELECT username, role, disabled, locked_until, created_at FROM users "
                "WHERE username = ?",
                (username,),
            ).fetchone()
        if row is None:
            return None
        locked = dt.datetime.fromisoformat(row[3]) if row[3] else None
        return User(row[0], row[1], bool(row[2]), locked, row[4])

    def users(self) -> list[User]:
        with self._db() as db:
            names = [r[0] for r in db.execute("SELECT username FROM users ORDER BY username")]
        return [self.user(n) for n in names]

    def _need(self, username: str) -> User:
        found = self.user(username)
        if found is None:
            raise UserError(f"no user {username!r}: `riskctl users list` shows them")
        return found

    def disable(self, username: str, by: str) -> None:
        self._need(username)
        with self._db() as db:
            db.execute("UPDATE users SET disabled = 1 WHERE username = ?", (username,))
            db.execute("DELETE FROM sessions WHERE username = ?", (username,))
        self.audit(by, "user.disable", username)

    def reset(
        self, username: str, by: str, password: str | None = None, role: str | None = None
    ) -> None:
        """A new password and/or role; unlocks, re-enables and ends the user's sessions."""
        self._need(username)
        sets, args, detail = ["disabled = 0", "failed = 0", "locked_until = NULL"], [], {}
        if password is not None:
            sets.append("password_hash = ?")
            args.append(_HASHER.hash(check_password(password)))
            detail["password"] = "changed"
        if role is not None:
            sets.append("role = ?")
            args.append(check_role(role))
            detail["role"] = role
        with self._db() as db:
            db.execute(f"UPDATE users SET {', '.join(sets)} WHERE username = ?", (*args, username))
            db.execute("DELETE FROM sessions WHERE username = ?", (username,))
        self.audit(by, "user.reset", username, detail)

    # --- login and sessions --------------------------------------------------------------
    def login(self, username: str, password: str, client: str | None = None) -> str:
        """A new session token for a right name and password; else LoginFailed (audited)."""
        name = (username or "").strip()[:64]
        now = _now()
        with self._db() as db:
            row = db.execute(
                "SELECT password_hash, disabled, failed, locked_until FROM users "
                "WHERE username = ?",
                (name,),
            ).fetchone()
        if row is None:
            _verify(_DUMMY, password)
            # The typed name is not recorded: it may be a password typed in the wrong box.
            self.audit("(unknown user)", "login.failed", None, "no such user", client)
            raise LoginFailed
        hashed, disabled, failed, locked_until = row
        if locked_until and dt.datetime.fromisoformat(locked_until) > now:
            self.audit(name, "login.refused", name, "locked", client)
            raise LoginFailed
        ok = _verify(hashed, password)
        if not ok or disabled:
            if disabled:
                self.audit(name, "login.refused", name, "disabled", client)
                raise LoginFailed
            failed += 1
            lock = _stamp(now + LOCK_FOR) if failed >= LOCK_AFTER else None
            with self._db() as db:
                db.execute(
                    "UPDATE users SET failed = ?, locked_until = ? WHERE username = ?",
                    (0 if lock else failed, lock, name),
                )
            self.audit(name, "login.failed", name, "wrong password", client)
            if lock:
                self.audit(name, "user.locked", name, f"{LOCK_AFTER} failed logins", client)
            raise LoginFailed
        token = secrets.token_urlsafe(32)
        with self._db() as db:
            db.execute(
                "UPDATE users SET failed = 0, locked_until = NULL WHERE username = ?", (name,)
            )
            db.execute(
                "INSERT INTO sessions (token_hash, username, csrf, created_at, seen_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (_digest(token), name, secrets.token_urlsafe(32), _stamp(now), _stamp(now)),
            )
        self.audit(name, "login.ok", name, None, client)
        return token

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie's token (its idle time renewed), else None."""
        if not token:
            return None
        now = _now()
        with self._db() as db:
            row = db.execute(
                "SELECT s.username, u.role, s.csrf, s.created_at, s.seen_at, u.disabled "
                "FROM sessions s JOIN users u ON u.username = s.username "
                "WHERE s.token_hash = ?",
                (_digest(token),),
            ).fetchone()
            if row is None:
                return None
            created, seen = dt.datetime.fromisoformat(row[3]), dt.datetime.fromisoformat(row[4])
            if row[5] or now - created > SESSION_FOR or now - seen > SESSION_IDLE:
                db.execute("DELETE FROM sessions WHERE token_hash = ?", (_digest(token),))
                return None
            db.execute(
                "UPDATE sessions SET seen_at = ? WHERE token_hash = ?",
                (_stamp(now), _digest(token)),
            )
        return Session(row[0], row[1], row[2])

    def logout(self, token: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (_digest(token),))

    # --- review assignments ----------------------------------------------------------------
    def assign(
        self, application_key: str, customer_key: str | None, assignee: str, by: str
    ) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO assignments (application_key, customer_key, assignee, "
                "assigned_by, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (application_key) DO "
                "UPDATE SET assignee = excluded.assignee, assigned_by = excluded.assigned_by, "
                "at = excluded.at",
                (application_key, customer_key, assignee, by, _stamp(_now())),
            )

    # The erasure store of `riskctl erase`: a customer's review assignments (by the keyed
    # pseudonym of the customer id), deleted with their bytes zeroed and the WAL emptied.
    def holds(self, ref: str) -> bool:
        with self._db() as db:
            row = db.execute("SELECT 1 FROM assignments WHERE customer_key = ?", (ref,))
            return row.fetchone() is not None

    def erase(self, ref: str) -> int:
        with self._db() as db:
            n = db.execute("DELETE FROM assignments WHERE customer_key = ?", (ref,)).rowcount
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.close()
        if busy:
            raise RuntimeError(f"{self.path}: a reader kept the WAL; run the erasure again")
        return n

    def assignments(self) -> dict[str, str]:
        with self._db() as db:
            return dict(db.execute("SELECT application_key, assignee FROM assignments"))

    # --- policy proposals --------------------------------------------------------------
    def propose(
        self, kind: str, payload: dict, preview: dict, rationale: str, proposer: str
    ) -> int:
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO proposals (kind, payload, preview, rationale, proposer, "
                "created_at, status) VALUES (?, ?, ?, ?, ?, ?, 'proposed')",
                (
                    kind,
                    json.dumps(payload, sort_keys=True),
                    json.dumps(preview, sort_keys=True),
                    rationale,
                    proposer,
                    _stamp(_now()),
                ),
            )
            return int(cur.lastrowid)

    def proposals(self, proposal_id: int | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT id, kind, payload, preview, rationale, proposer, created_at, status, "
            "decided_by, decided_at, decision_note, activated FROM proposals"
        )
        args: tuple = ()
        if proposal_id is not None:
            sql, args = sql + " WHERE id = ?", (proposal_id,)
        with self._db() as db:
            rows = db.execute(sql + " ORDER BY id DESC", args).fetchall()
        cols = [
            "id",
            "kind",
            "payload",
            "preview",
            "rationale",
            "proposer",
            "created_at",
            "status",
            "decided_by",
            "decided_at",
            "decision_note",
            "activated",
        ]
        out = []
        for r in rows:
            d = dict(zip(cols, r, strict=True))
            d["payload"], d["preview"] = json.loads(d["payload"]), json.loads(d["preview"])
            out.append(d)
        return out

    def decide_proposal(self, proposal_id: int, status: str, by: str, note: str) -> bool:
        """Mark a proposed proposal approved or rejected; False if it was no longer open."""
        with self._db() as db:
            cur = db.execute(
                "UPDATE proposals SET status = ?, decided_by = ?, decided_at = ?, "
                "decision_note = ? WHERE id = ? AND status = 'proposed'",
                (status, by, _stamp(_now()), note, proposal_id),
            )
            return cur.rowcount == 1

    def mark_activated(self, proposal_id: int, what: str) -> None:
        with self._db() as db:
            db.execute("UPDATE proposals SET activated = ? WHERE id = ?", (what, proposal_id))


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password or "")
    except (VerificationError, InvalidHashError):
        return False


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens (False when either is missing)."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
