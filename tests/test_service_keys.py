"""API keys of the decision service: scoped, expiring, revocable, stored as digests only.

No Spark: the key store is SQLite, and `riskctl keys` is called in-process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import sqlite3
import stat
import subprocess
import sys

import pytest
from conftest import TEST_BRONZE_KEY, TEST_PII_KEY

from riskcontrol.cli import main
from riskcontrol.core.config import get_settings
from riskcontrol.serve.keys import SCOPES, ApiKey, KeyStore, Refused, default_path

TOKEN = re.compile(r"rk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
NOTICE = "this is the only time the key is shown: it cannot be shown again, store it now"


@pytest.fixture
def store(tmp_path) -> KeyStore:
    return KeyStore(default_path(tmp_path))


@pytest.fixture
def riskctl(tmp_path, monkeypatch, capsys):
    """`riskctl ARGS...` in-process with RISK_HOME=tmp_path: (exit status, stdout, stderr)."""
    for name, value in {
        "RISK_HOME": str(tmp_path),
        "RISK_ENV": "test",
        "RISK_PII_KEY": TEST_PII_KEY,
        "RISK_BRONZE_KEY": TEST_BRONZE_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RISK_DEBUG", raising=False)
    get_settings.cache_clear()
    umask = os.umask(0o022)  # riskctl sets 0077 for its process: give the test's back after
    os.umask(umask)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main.main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    yield run
    os.umask(umask)
    get_settings.cache_clear()


def refusal(store: KeyStore, token, scope: str = "decide", now=None) -> tuple[int, str]:
    with pytest.raises(Refused) as info:
        store.check(token, scope, now=now)
    assert str(info.value) == info.value.reason
    return info.value.status, info.value.reason


def stored_bytes(folder) -> bytes:
    """The key database and any journal or WAL file beside it."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob("api_keys.db*")))


# --- the store -------------------------------------------------------------------------
def test_a_key_is_accepted_for_its_scope_and_refused_403_for_another(store):
    token, key = store.create("channel", ["decide"])
    m = TOKEN.fullmatch(token)
    assert m is not None and m.group(1) == key.key_id
    assert (key.name, key.scopes, key.expires_at, key.revoked_at) == (
        "channel",
        ("decide",),
        None,
        None,
    )
    assert key.created_at.tzinfo == dt.UTC
    assert store.check(token, "decide") == key
    assert refusal(store, token, "read") == (403, "scope 'read' not granted")
    assert sorted(SCOPES) == ["decide", "read"]


def test_scopes_are_sorted_and_distinct_from_lists_or_commas(store):
    _, both = store.create("analyst", ["read", "decide,read"])
    _, one = store.create("reader", "read")
    assert (both.scopes, one.scopes) == (("decide", "read"), ("read",))
    token, _ = store.create("both", "decide, read")
    assert store.check(token, "read").scopes == ("decide", "read")
    assert store.check(token, "decide").name == "both"


def test_refusals_are_401_with_a_reason_and_never_the_secret(store):
    token, key = store.create("channel", ["decide", "read"])
    secret = TOKEN.fullmatch(token).group(2)
    other_secret = ("A" if secret[0] != "A" else "B") + secret[1:]
    other_id = ("0" if key.key_id[0] != "0" else "1") + key.key_id[1:]
    cases = {
        None: (401, "missing key"),
        "": (401, "missing key"),
        "rk_short": (401, "malformed key"),
        token + "\n": (401, "malformed key"),
        token + "=": (401, "malformed key"),
        f"Bearer {token}": (401, "malformed key"),
        token.upper(): (401, "malformed key"),
        f"rk_{other_id}_{secret}": (401, "unknown key"),
        f"rk_{key.key_id}_{other_secret}": (401, "wrong secret"),
    }
    assert {t: refusal(store, t) for t in cases} == cases
    assert store.check(token, "decide") == key  # none of that changed the key


def test_a_revoked_key_is_refused_on_the_next_request(store):
    token, key = store.create("channel", ["decide"])
    assert store.check(token, "decide") == key
    revoked = store.revoke(key.key_id)
    assert revoked.revoked_at is not None and revoked.key_id == key.key_id
    assert refusal(store, token) == (401, "revoked")
    assert refusal(store, token, "read") == (401, "revoked")  # 401 before any scope
    again = store.revoke(key.key_id)
    assert again.revoked_at == revoked.revoked_at  # the first revocation stands
    assert store.list() == [revoked]
    with pytest.raises(ValueError, match=r"^no API key with id 'ffffffffffffffff'"):
        store.revoke("ffffffffffffffff")


def test_a_key_expires_after_its_days(store):
    token, key = store.create("temp", ["decide"], days=30)
    assert key.expires_at - key.created_at == dt.timedelta(days=30)
    just_before = key.expires_at - dt.timedelta(seconds=1)
    assert store.check(token, "decide", now=just_before) == key
    assert refusal(store, token, now=key.expires_at) == (401, "expired")
    assert refusal(store, token, now=key.created_at + dt.timedelta(days=31)) == (401, "expired")
    naive = (key.expires_at + dt.timedelta(seconds=1)).replace(tzinfo=None)  # taken as UTC
    assert refusal(store, token, now=naive) == (401, "expired")
    assert key.state(just_before) == "active" and key.state(key.expires_at) == "expired"


def test_list_is_in_creation_order_and_round_trips(store):
    made = [store.create(name, ["read"], days)[1] for name, days in [("a", 1), ("b", None)]]
    made.append(store.revoke(store.create("c", ["decide"])[1].key_id))
    assert store.list() == made
    assert [k.state() for k in made] == ["active", "active", "revoked"]
    assert all(isinstance(k, ApiKey) for k in made)


@pytest.mark.parametrize(
    ("name", "scopes", "days", "message"),
    [
        ("", ["decide"], None, "a key's name is 1 to 64 printable characters"),
        ("   ", ["decide"], None, "a key's name is 1 to 64 printable characters"),
        ("x" * 65, ["decide"], None, "a key's name is 1 to 64 printable characters"),
        ("a\nb", ["decide"], None, "a key's name is 1 to 64 printable characters"),
        ("ok", [], None, "give at least one scope: decide, read"),
        ("ok", ["admin"], None, "unknown scope 'admin'; valid scopes: decide, read"),
        ("ok", "decide,admin", None, "unknown scope 'admin'; valid scopes: decide, read"),
        ("ok", ["decide"], 0, "--days must be a whole number of days, 1 or more (got 0)"),
        ("ok", ["decide"], -3, "--days must be a whole number of days, 1 or more (got -3)"),
        ("ok", ["decide"], 1.5, "--days must be a whole number of days, 1 or more (got 1.5)"),
        ("ok", ["decide"], True, "--days must be a whole number of days, 1 or more (got True)"),
    ],
)
def test_create_refuses_bad_names_scopes_and_days(store, name, scopes, days, message):
    with pytest.raises(ValueError) as info:
        store.create(name, scopes, days)
    assert str(info.value) == message
    assert store.list() == []


def test_the_file_is_private_and_holds_only_digests(store, tmp_path):
    token, key = store.create("x" * 64, ["decide", "read"], days=7)
    store.check(token, "read")
    assert store.path == tmp_path / "service" / "api_keys.db"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    data = stored_bytes(store.path.parent)
    secret = TOKEN.fullmatch(token).group(2)
    assert token.encode() not in data and secret.encode() not in data
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT key_id, digest, scopes FROM api_keys").fetchall()
    assert rows == [(key.key_id, hashlib.sha256(token.encode()).hexdigest(), "decide,read")]


# --- riskctl keys ----------------------------------------------------------------------
def test_keys_add_shows_the_key_once_and_it_works(riskctl, tmp_path):
    status, out, err = riskctl("keys", "add", "--name", "app-channel", "--scope", "decide")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    token = lines[4].removeprefix("key: ")
    key_id = TOKEN.fullmatch(token).group(1)
    assert lines == [
        f"key id:  {key_id}",
        "name:    app-channel",
        "scopes:  decide",
        "expires: never",
        f"key: {token}",
        NOTICE,
    ]
    assert out.count(token) == 1
    store = KeyStore(default_path(tmp_path))
    assert store.check(token, "decide").key_id == key_id
    assert refusal(store, token, "read") == (403, "scope 'read' not granted")


def test_keys_add_with_scopes_and_days(riskctl, tmp_path):
    status, out, _ = riskctl(
        "keys", "add", "--name", "both", "--scope", "read", "--scope", "decide", "--days", "90"
    )
    assert status == 0
    [key] = KeyStore(default_path(tmp_path)).list()
    assert (key.name, key.scopes) == ("both", ("decide", "read"))
    assert key.expires_at - key.created_at == dt.timedelta(days=90)
    assert out.splitlines()[2:4] == [
        "scopes:  decide,read",
        f"expires: {key.expires_at:%Y-%m-%d %H:%M} UTC",
    ]
    assert riskctl("keys", "add", "--name", "c", "--scope", "decide,read")[0] == 0
    assert KeyStore(default_path(tmp_path)).list()[1].scopes == ("decide", "read")


def test_keys_add_out_writes_a_new_private_file_and_prints_no_key(riskctl, tmp_path):
    out_file = tmp_path / "app.key"
    status, out, err = riskctl(
        "keys", "add", "--name", "app", "--scope", "decide", "--out", str(out_file)
    )
    assert (status, err) == (0, "")
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    text = out_file.read_text(encoding="utf-8")
    token = text.removesuffix("\n")
    assert TOKEN.fullmatch(token) and text == token + "\n"
    secret = TOKEN.fullmatch(token).group(2)
    assert secret not in out and "rk_" not in out
    key_id = TOKEN.fullmatch(token).group(1)
    assert out.splitlines() == [
        f"key id:  {key_id}",
        "name:    app",
        "scopes:  decide",
        "expires: never",
        f"key: written to {out_file} (mode 0600); it is not shown and not stored anywhere else",
    ]
    assert KeyStore(default_path(tmp_path)).check(token, "decide").key_id == key_id

    status, out, err = riskctl(
        "keys", "add", "--name", "two", "--scope", "read", "--out", str(out_file)
    )
    assert (status, out) == (2, "")
    assert err == (
        f"riskctl keys: error: {out_file} exists: "
        "--out writes a new file only (the key is secret)\n"
    )
    assert out_file.read_text(encoding="utf-8") == text  # untouched
    assert [k.name for k in KeyStore(default_path(tmp_path)).list()] == ["app"]  # no new key


def test_keys_add_out_into_a_missing_folder_makes_no_key(riskctl, tmp_path):
    out_file = tmp_path / "nowhere" / "app.key"
    status, out, err = riskctl(
        "keys", "add", "--name", "a", "--scope", "decide", "--out", str(out_file)
    )
    assert (status, out) == (2, "")
    assert err == f"riskctl keys: error: cannot create {out_file}: No such file or directory\n"
    assert KeyStore(default_path(tmp_path)).list() == []


def test_keys_add_out_with_a_bad_name_leaves_no_file(riskctl, tmp_path):
    out_file = tmp_path / "app.key"
    status, _, err = riskctl(
        "keys", "add", "--name", "x" * 65, "--scope", "decide", "--out", str(out_file)
    )
    assert status == 2
    assert err == "riskctl keys: error: a key's name is 1 to 64 printable characters\n"
    assert not out_file.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "admin"], "unknown scope 'admin'; valid scopes: decide, read"),
        (["--scope", "decide,root"], "unknown scope 'root'; valid scopes: decide, read"),
        (["--scope", ","], "give at least one scope: decide, read"),
        (
            ["--scope", "decide", "--days", "0"],
            "--days must be a whole number of days, 1 or more (got 0)",
        ),
        (
            ["--scope", "read", "--days", "-5"],
            "--days must be a whole number of days, 1 or more (got -5)",
        ),
    ],
)
def test_keys_add_bad_scope_or_days_exits_2(riskctl, tmp_path, args, message):
    status, out, err = riskctl("keys", "add", "--name", "app", *args)
    assert (status, out, err) == (2, "", f"riskctl keys: error: {message}\n")
    assert not default_path(tmp_path).exists() or KeyStore(default_path(tmp_path)).list() == []


def test_keys_add_days_not_a_number_is_a_usage_error(riskctl, capsys):
    with pytest.raises(SystemExit) as info:
        main.main(["keys", "add", "--name", "app", "--scope", "decide", "--days", "ten"])
    assert info.value.code == 2
    assert "argument --days: invalid int value: 'ten'" in capsys.readouterr().err


def test_keys_list_shows_states_and_never_a_key(riskctl, tmp_path):
    assert riskctl("keys", "list") == (
        0,
        "no API keys: create one with `riskctl keys add --name NAME --scope decide`\n",
        "",
    )
    tokens = []
    for name, scopes in [("live", "decide"), ("gone", "read"), ("old", "decide,read")]:
        status, out, _ = riskctl("keys", "add", "--name", name, "--scope", scopes, "--days", "3")
        tokens.append(out.splitlines()[4].removeprefix("key: "))
    store = KeyStore(default_path(tmp_path))
    live, gone, old = store.list()
    status, out, err = riskctl("keys", "revoke", gone.key_id)
    revoked = store.list()[1].revoked_at
    assert (status, err) == (0, "")
    assert out == f"revoked {gone.key_id} (gone) at {revoked:%Y-%m-%d %H:%M:%S} UTC\n"
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE api_keys SET expires_at = ? WHERE key_id = ?", (past, old.key_id))
    old_expires = dt.datetime.fromisoformat(past)

    status, out, err = riskctl("keys", "list")
    assert (status, err) == (0, "")

    def row(k, expires, state):
        return (
            f"  {k.key_id:16} {k.name:20} {','.join(k.scopes):13} "
            f"{k.created_at:%Y-%m-%d %H:%M} {expires:%Y-%m-%d %H:%M} {state}"
        )

    assert out.splitlines() == [
        f"  {'id':16} {'name':20} {'scopes':13} {'created':16} {'expires':16} state",
        row(live, live.expires_at, "active"),
        row(gone, gone.expires_at, "revoked"),
        row(old, old_expires, "expired"),
    ]
    for token in tokens:
        assert token not in out and TOKEN.fullmatch(token).group(2) not in out
    with sqlite3.connect(store.path) as db:
        digests = [d for (d,) in db.execute("SELECT digest FROM api_keys")]
    assert len(digests) == 3 and not any(d in out for d in digests)
    assert store.check(tokens[0], "decide") == live
    assert refusal(store, tokens[1], "read") == (401, "revoked")
    assert refusal(store, tokens[2], "read") == (401, "expired")
    data = stored_bytes(store.path.parent)
    assert not any(t.encode() in data for t in tokens)


def test_keys_revoke_an_unknown_id_exits_2(riskctl):
    status, out, err = riskctl("keys", "revoke", "0123456789abcdef")
    assert (status, out) == (2, "")
    assert err == (
        "riskctl keys: error: no API key with id '0123456789abcdef'; "
        "`riskctl keys list` shows them\n"
    )


def test_keys_help_has_examples(capsys):
    with pytest.raises(SystemExit) as info:
        main.main(["keys", "--help"])
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    for action in ("add", "list", "revoke"):
        assert action in help_text
    assert "riskctl keys add --name app-channel --scope decide --days 90 --out app.key" in help_text


def test_the_keys_command_loads_no_spark_or_web_framework():
    code = (
        "import sys; import riskcontrol.serve.cli, riskcontrol.serve.keys; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pyspark', 'py4j', 'fastapi', 'starlette', 'uvicorn', 'mlflow'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout == "[]\n"
