"""`riskctl serve | lists | decisions` without a server: argument checks, the lists of
pseudonyms, and champion/challenger comparison over a journal (no Spark here)."""

from __future__ import annotations

import io
import json

import pytest
from conftest import TEST_PII_KEY

from riskcontrol.cli import main
from riskcontrol.core.pii import hmac_hex
from riskcontrol.serve import compare, lists
from riskcontrol.serve.journal import DecisionJournal, default_path

KEY = TEST_PII_KEY.encode()


@pytest.fixture
def home(cli_home):
    return cli_home


def test_lists_hold_pseudonyms_only(home, capsys, monkeypatch):
    source = home / "ids.txt"
    source.write_text("C000001\n\nC000002\nC000001\n", encoding="utf-8")
    assert main.main(["lists", "add", "blocklist", str(source)]) == 0
    assert capsys.readouterr().out.strip() == (
        "blocklist: 2 added, 1 already listed (stored as pseudonyms only)"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("+86 138-0000-0000\n13800000000\n"))
    assert main.main(["lists", "add", "fraud_phones", "-"]) == 0
    assert capsys.readouterr().out.strip().startswith("fraud_phones: 1 added, 1 already")
    folder = lists.folder(home)
    stored = (folder / "blocklist.txt").read_text().split()
    assert stored == [hmac_hex(b"C000001", KEY), hmac_hex(b"C000002", KEY)]
    assert (folder / "fraud_phones.txt").read_text().split() == [hmac_hex(b"13800000000", KEY)]
    every = b"".join(p.read_bytes() for p in folder.iterdir())
    assert b"C000001" not in every and b"13800000000" not in every
    assert (folder / "blocklist.txt").stat().st_mode & 0o777 == 0o600
    assert main.main(["lists", "show"]) == 0
    shown = capsys.readouterr().out.split("\n")
    assert [line.split()[:2] for line in shown if line.strip()] == [
        ["blocklist", "2"],
        ["fraud_devices", "0"],
        ["fraud_phones", "1"],
    ]


def test_a_hand_edited_list_with_a_clear_id_is_refused(home):
    folder = lists.folder(home)
    folder.mkdir(parents=True)
    (folder / "blocklist.txt").write_text("C000001\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"blocklist.txt:1: not a pseudonym"):
        lists.Lists.load(folder)


def test_list_errors_exit_2(home, capsys):
    assert main.main(["lists", "add", "blocklist", str(home / "absent.txt")]) == 2
    assert "absent.txt: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main.main(["lists", "add", "friends", "-"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--host", "0.0.0.0"], "plain HTTP is served on loopback only"),
        (["serve", "--tls-cert", "a.pem"], "give both --tls-cert and --tls-key"),
        (["serve", "--client-ca", "ca.pem"], "--client-ca (mutual TLS) needs TLS"),
        (["serve", "--tls-cert", "no.pem", "--tls-key", "no.key"], "--tls-cert no.pem: no such"),
    ],
)
def test_serve_refuses_unsafe_or_incomplete_options_before_starting(home, capsys, argv, message):
    assert main.main(argv) == 2
    assert message in capsys.readouterr().err


def test_serve_refuses_a_broken_rules_file_with_every_error(home, capsys):
    rules = home / "rules.yaml"
    rules.write_text(
        "version: 2026-12-01\nproducts: {p: {min_amount: 1, max_amount: 2, terms: [3]}}\n"
        "rules:\n  - {code: KO_X, action: reject, when: [{field: agee, op: '<', value: 18}],"
        " reason: {en: x}}\n",
        encoding="utf-8",
    )
    assert main.main(["serve", "--rules", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "version must be a quoted string" in err
    assert "rule 1 (KO_X): unknown field 'agee'; did you mean age?" in err
    assert "rule 1 (KO_X): reason.zh is missing or empty" in err


def test_share_must_be_a_fraction(home, capsys):
    with pytest.raises(SystemExit):
        main.main(["serve", "--challenger-share", "1.5"])
    assert "a share is between 0 and 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main.main(["serve", "--shadow", "--challenger-share", "0.1"])


def _record(arm, decision, champion, challenger):
    return {
        "arm": arm,
        "decision": decision,
        "champion": {"model": "m/1", "decision": champion[0], "pd": champion[1]},
        "challenger": (
            None
            if challenger is None
            else {"model": "m/2", "decision": challenger[0], "pd": challenger[1]}
        ),
    }


RECORDS = [
    _record("champion", "approve", ("approve", 0.02), ("approve", 0.03)),
    _record("champion", "review", ("review", 0.15), ("reject", 0.40)),
    _record("challenger", "reject", ("review", 0.20), ("reject", 0.35)),
    _record("champion", "approve", ("approve", 0.05), None),
]


def test_compare_counts_agreement_and_crosstab():
    result = compare.compare(RECORDS).as_dict()
    assert result == {
        "decisions": 4,
        "paired": 3,
        "agreement": 1 / 3,
        "champion_mean_pd": pytest.approx((0.02 + 0.15 + 0.20) / 3),
        "challenger_mean_pd": pytest.approx((0.03 + 0.40 + 0.35) / 3),
        "crosstab": {"approve->approve": 1, "review->reject": 2},
        "by_arm": {"challenger:reject": 1, "champion:approve": 2, "champion:review": 1},
        "models": [("m/1", "m/2")],
    }


def test_decisions_compare_reads_the_journal(home, capsys):
    assert main.main(["decisions", "compare"]) == 2
    assert "no decision journal" in capsys.readouterr().err
    journal = DecisionJournal(default_path(home))
    for i, record in enumerate(RECORDS):
        journal.record(hmac_hex(f"A-{i}".encode(), KEY), record)
    assert main.main(["decisions", "compare"]) == 0
    out = capsys.readouterr().out
    assert "agreement: 33.3%" in out
    assert "  review           0        0        2" in out
    assert main.main(["decisions", "compare", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["crosstab"] == {
        "approve->approve": 1,
        "review->reject": 2,
    }
