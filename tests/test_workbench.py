"""The workbench without a browser: users and passwords, lock-out, sessions, the audit
log, reviews in the decision journal, and the dashboard's and the policy preview's
figures on hand-built decisions (no Spark here)."""

from __future__ import annotations

import datetime as dt
import io
import sqlite3

import pytest
from conftest import TEST_PII_KEY

from riskcontrol.cli import main
from riskcontrol.core.pii import hmac_hex
from riskcontrol.serve.journal import DecisionJournal
from riskcontrol.serve.journal import default_path as journal_path
from riskcontrol.workbench import cli as wb_cli
from riskcontrol.workbench import data
from riskcontrol.workbench.store import (
    LOCK_AFTER,
    ROLES,
    LoginFailed,
    UserError,
    WorkbenchStore,
    default_path,
)

PW = "correct horse battery staple"
KEY = TEST_PII_KEY.encode()


def key(value: str) -> str:
    return hmac_hex(value.encode(), KEY)


@pytest.fixture
def home(cli_home):
    return cli_home


def test_the_cli_role_choices_are_the_roles():
    assert wb_cli.ROLE_CHOICES == ROLES


def test_users_cli_adds_lists_resets_and_disables(home, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(PW + "\n"))
    assert main.main(["users", "add", "root", "--role", "admin", "--password-stdin"]) == 0
    assert capsys.readouterr().out.strip() == "user root added with role admin"
    monkeypatch.setattr("sys.stdin", io.StringIO(PW + "\n"))
    assert main.main(["users", "add", "root", "--role", "viewer", "--password-stdin"]) == 2
    assert "user 'root' exists" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main.main(["users", "add", "vera", "--role", "viewer", "--password-stdin"]) == 2
    assert "at least 12 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PW + "\n"))
    assert main.main(["users", "add", "bad name", "--role", "viewer", "--password-stdin"]) == 2
    assert "no spaces" in capsys.readouterr().err

    store = WorkbenchStore(default_path(home))
    raw = b"".join(p.read_bytes() for p in default_path(home).parent.glob("workbench.db*"))
    assert PW.encode() not in raw and b"$argon2id$" in raw
    assert default_path(home).stat().st_mode & 0o777 == 0o600
    assert store.login("root", PW)

    assert main.main(["users", "reset", "root", "--role", "approver", "--keep-password"]) == 0
    assert store.user("root").role == "approver"
    assert main.main(["users", "disable", "root"]) == 0
    with pytest.raises(LoginFailed):
        store.login("root", PW)
    assert main.main(["users", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[-1].split()[:3] == ["root", "approver", "disabled"]
    actions = [(r["action"], r["target"]) for r in reversed(store.audit_rows())]
    assert actions == [
        ("user.add", "root"),
        ("login.ok", "root"),
        ("user.reset", "root"),
        ("user.disable", "root"),
        ("login.refused", "root"),
    ]
    assert all(r["actor"].startswith("cli:") for r in store.audit_rows(action="user."))


def test_five_failures_lock_the_user_and_every_login_is_audited(tmp_path):
    store = WorkbenchStore(tmp_path / "wb.db")
    store.add_user("li.wei", "reviewer", PW, by="test")
    for _ in range(LOCK_AFTER):
        with pytest.raises(LoginFailed):
            store.login("li.wei", "wrong password!!", client="10.0.0.9")
    with pytest.raises(LoginFailed):  # the right password, but locked
        store.login("li.wei", PW)
    with pytest.raises(LoginFailed):
        store.login("nobody", PW)
    assert store.user("li.wei").locked_until is not None
    rows = list(reversed(store.audit_rows()))
    assert [r["action"] for r in rows] == [
        "user.add",
        *["login.failed"] * LOCK_AFTER,
        "user.locked",
        "login.refused",
        "login.failed",
    ]
    assert rows[1]["client"] == "10.0.0.9"
    assert rows[-1]["actor"] == "(unknown user)" and rows[-1]["target"] is None
    store.reset("li.wei", by="admin", password=PW + "2")
    token = store.login("li.wei", PW + "2")
    session = store.session(token)
    assert (session.username, session.role) == ("li.wei", "reviewer")
    assert store.session(token + "x") is None
    store.logout(token)
    assert store.session(token) is None


def test_the_audit_log_is_append_only(tmp_path):
    store = WorkbenchStore(tmp_path / "wb.db")
    store.audit("a", "x.y", "t", {"k": 1})
    db = sqlite3.connect(tmp_path / "wb.db")
    for sql in ("UPDATE audit SET actor = 'b'", "DELETE FROM audit"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(sql)
    db.close()
    (row,) = store.audit_rows()
    assert (row["actor"], row["action"], row["target"], row["detail"]) == (
        "a",
        "x.y",
        "t",
        '{"k": 1}',
    )


def _decision(
    customer: str,
    decision: str,
    pd_: float,
    amount: float,
    rules_action="pass",
    fired=(),
    arm="champion",
    latency=5.0,
    challenger=None,
) -> dict:
    return {
        "customer_key": key(customer),
        "product": "consumer_loan",
        "decision": decision,
        "pd": pd_,
        "champion": {"pd": pd_},
        "challenger": None if challenger is None else {"pd": challenger},
        "features": {"requested_amount": amount, "age": 30},
        "rules_action": rules_action,
        "rules_fired": list(fired),
        "arm": arm,
        "latency_ms": latency,
        "reasons": [],
        "decided_at": dt.datetime.now(dt.UTC).isoformat(),
    }


# Six applications: under the default cut-off (approve below 0.08, reject from 0.20) two
# are approved, three reviewed (A2 by its rule too) and one rejected (by its rule too).
BOOK = {
    "A1": _decision("C1", "review", 0.10, 10_000),
    "A2": _decision("C2", "review", 0.12, 20_000, "review", ["RF_PENALTY"]),
    "A3": _decision("C3", "review", 0.08, 5_000, arm="challenger", challenger=0.08),
    "A4": _decision("C4", "approve", 0.02, 8_000, latency=3.0),
    "A5": _decision("C5", "approve", 0.04, 12_000, latency=9.0),
    "A6": _decision("C6", "reject", 0.30, 15_000, "reject", ["KO_DEBTOR", "RF_PENALTY"]),
}


def seed_journal(path) -> DecisionJournal:
    journal = DecisionJournal(path)
    for app_id, record in BOOK.items():
        journal.record(key(app_id), {**record, "application_key": key(app_id)})
    return journal


def test_a_review_is_a_new_immutable_event_and_the_decision_stays(tmp_path):
    journal = seed_journal(journal_path(tmp_path))
    waiting = journal.awaiting_review()
    assert [e.key for e in waiting] == [key("A1"), key("A2"), key("A3")]  # oldest first
    before = journal.get(key("A2")).record
    journal.review(key("A2"), {"decision": "reject", "reason": "penalty confirmed"})
    assert journal.get(key("A2")).record == before
    assert [e.key for e in journal.awaiting_review()] == [key("A1"), key("A3")]
    with pytest.raises(ValueError, match="reviewed already"):
        journal.review(key("A2"), {"decision": "approve", "reason": "again"})
    with pytest.raises(ValueError, match="only an application decided 'review'"):
        journal.review(key("A4"), {"decision": "reject", "reason": "no"})
    db = sqlite3.connect(journal_path(tmp_path))
    for sql in ("UPDATE reviews SET record = '{}'", "DELETE FROM reviews"):
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            db.execute(sql)
    db.close()
    assert journal.review_of(key("A2")).record["reason"] == "penalty confirmed"
    # an erasure takes the customer's review with the decision
    assert journal.erase(key("C2")) == 2
    assert journal.review_of(key("A2")) is None and not journal.holds(key("C2"))


def test_dashboard_figures_on_six_decisions(tmp_path):
    journal = seed_journal(journal_path(tmp_path))
    now = dt.datetime.now(dt.UTC)
    f = data.decision_figures(
        journal.decided_since(now - dt.timedelta(days=31)),
        [{"decision": "approve"}],
        now,
    )
    for block in (f["today"], f["month"]):
        assert (block["n"], block["approve"], block["review"], block["reject"]) == (6, 2, 3, 1)
        assert block["approval_rate"] == pytest.approx(2 / 6)
        assert block["review_rate"] == pytest.approx(3 / 6)
        assert block["rule_hits"] == [("KO_DEBTOR", 1, 1 / 6), ("RF_PENALTY", 2, 2 / 6)]
        assert (block["latency_p50"], block["latency_p95"]) == (5.0, 9.0)
        assert block["arms"]["challenger"] == {"n": 1, "approval_rate": 0.0, "mean_pd": 0.08}
        assert block["arms"]["champion"]["n"] == 5
        assert block["challenger_scored"] == 1
    assert f["per_day"]["review"][-1] == 3 and sum(f["per_day"]["review"]) == 3
    assert sorted(f["pds"]) == [0.02, 0.04, 0.08, 0.10, 0.12, 0.30]
    assert f["reviews"] == {"approve": 1, "reject": 0}


def test_the_policy_preview_on_recent_decisions():
    rows = [
        {**r, "champion_pd": r["pd"], "requested_amount": r["features"]["requested_amount"]}
        for r in BOOK.values()
    ]
    current = data.preview_cutoff(rows, 0.08, 0.20, 0.45)
    assert current == {
        "applications": 6,
        "approved": 2,
        "reviewed": 3,
        "rejected": 1,
        "approval_rate": pytest.approx(2 / 6),
        "bad_rate": pytest.approx(0.03),
        "expected_loss": 288.0,  # 0.45 x (0.02 x 8000 + 0.04 x 12000)
    }
    wider = data.preview_cutoff(rows, 0.11, 0.25, 0.45)
    # A2 stays in review (its rule refers it), A6 rejected (its rule knocks it out)
    assert (wider["approved"], wider["reviewed"], wider["rejected"]) == (4, 1, 1)
    assert wider["bad_rate"] == pytest.approx(0.06)
    assert wider["expected_loss"] == 918.0  # 0.45 x (1000 + 400 + 160 + 480)
    with pytest.raises(ValueError, match="0 < approve-below PD <= reject-from PD <= 1"):
        data.preview_cutoff(rows, 0.3, 0.2, 0.45)


def test_a_user_store_refuses_an_unknown_role(tmp_path):
    store = WorkbenchStore(tmp_path / "wb.db")
    with pytest.raises(UserError, match="unknown role 'boss'"):
        store.add_user("x", "boss", PW, by="t")


def test_a_customers_assignments_are_erased_without_a_trace(tmp_path):
    store = WorkbenchStore(tmp_path / "wb.db")
    store.assign(key("A1"), key("C1"), "rita", "mona")
    store.assign(key("A2"), key("C2"), "rita", "mona")
    assert store.holds(key("C1")) and not store.holds(key("C9"))
    assert store.erase(key("C1")) == 1
    assert store.assignments() == {key("A2"): "rita"}
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("wb.db*"))
    assert key("A1").encode() not in raw and key("C1").encode() not in raw
    assert key("A2").encode() in raw
