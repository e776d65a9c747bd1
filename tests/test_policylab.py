"""The policy lab's history from gold.application_features, and a replay of it (Spark)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pyspark.sql import functions as F

from riskcontrol.apply import backtest_store, policylab
from riskcontrol.apply.backtest import Policy, replay
from riskcontrol.apply.riskcost import CostModel
from riskcontrol.core.catalog import GOLD_POLICY_BACKTESTS

FEATURES = (
    "application_id string, application_month string, status string, label_status string, "
    "label int, channel string, province string, purpose string, requested_amount double, "
    "x double, age int, monthly_income double"
)
ROWS = [
    # id, month, status, label status, label, channel, province, purpose, amount, x, age,
    # monthly income (A4's below the service's KO_INCOME_BELOW_MIN, 3000; A2's age unknown)
    ("A1", "2025-01", "approved", "good", 0, "app", "GD", "cash", 1000.0, 0.04, 30, 8000.0),
    ("A2", "2025-01", "approved", "bad", 1, "app", "ZJ", "cash", 2000.0, 0.15, None, 5000.0),
    ("A3", "2025-02", "approved", "indeterminate", None, "web", "GD", "bnpl", 1000.0, 0.08, 45,
     9000.0),
    ("A4", "2025-02", "approved", "immature", None, "web", "GD", "cash", 3000.0, 0.12, 28,
     2500.0),
    ("A5", "2025-02", "rejected", None, None, "web", "ZJ", "cash", 1000.0, 0.25, 33, 6000.0),
    ("A6", "2025-03", "rejected", None, None, "app", "GD", "bnpl", 500.0, 0.18, 50, 7000.0),
    ("A7", "2025-01", "pending", None, None, "app", "GD", "cash", 800.0, 0.01, 22, 4000.0),
    ("A8", "2024-12", "approved", "good", 0, "app", "GD", "cash", 900.0, 0.02, 61, 4000.0),
]  # fmt: skip
# A6 is later than the window, A7 undecided, A8 earlier.


def _model(scale: float) -> SimpleNamespace:
    """A stand-in for a registered model: pd = x times ``scale``."""
    return SimpleNamespace(transform=lambda df: df.withColumn("pd", F.col("x") * scale))


def test_the_history_holds_the_decided_applications_of_the_window(spark) -> None:
    features = spark.createDataFrame(ROWS, FEATURES)
    got = policylab.backtest_history(features, _model(1.0), _model(2.0), "2025-01..2025-02")
    assert got[
        [
            "application_id",
            "historical_decision",
            "bad",
            "pd_active",
            "pd_proposed",
            "exposure",
            "product",
            "score_band",
        ]
    ].to_dict("records") == [
        # a known outcome: good or bad of an approved application
        _r("A1", "approved", 0.0, 0.04, 0.08, 1000.0, "cash", "medium"),
        _r("A2", "approved", 1.0, 0.15, 0.30, 2000.0, "cash", "very_high"),
        # approved without an outcome: indeterminate, immature
        _r("A3", "approved", None, 0.08, 0.16, 1000.0, "bnpl", "high"),
        _r("A4", "approved", None, 0.12, 0.24, 3000.0, "cash", "very_high"),
        # rejected: no outcome, reject inference's
        _r("A5", "rejected", None, 0.25, 0.50, 1000.0, "cash", "very_high"),
    ]
    with pytest.raises(ValueError, match="no application was approved or rejected in 2023-01"):
        policylab.backtest_history(features, _model(1.0), _model(1.0), "2023-01..2023-06")


def _r(app, decision, bad, pd_active, pd_proposed, exposure, product, band) -> dict:
    return {
        "application_id": app,
        "historical_decision": decision,
        "bad": pytest.approx(bad, nan_ok=True) if bad is not None else _NaN(),
        "pd_active": pytest.approx(pd_active),
        "pd_proposed": pytest.approx(pd_proposed),
        "exposure": exposure,
        "product": product,
        "score_band": band,
    }


class _NaN:
    """Equal to a missing value, as pandas gives one (None or NaN)."""

    def __eq__(self, other) -> bool:
        return other is None or other != other

    def __repr__(self) -> str:
        return "missing"


def test_the_history_replays(spark) -> None:
    """The frame is what replay reads: the active policy (model x) approves below 0.10 and
    rejects from 0.20; the proposed (model 2x) approves below 0.20 and rejects from 0.40.
    A1 0.04/0.08: approve/approve; A2 0.15/0.30: review/review; A3 0.08/0.16: approve/
    approve; A4 0.12/0.24: review/review; A5 0.25/0.50: reject/reject. No swap."""
    features = spark.createDataFrame(ROWS, FEATURES)
    history = policylab.backtest_history(features, _model(1.0), _model(2.0), "2025-01..2025-02")
    cost = CostModel(lgd=0.5, good_margin=0.1, review_cost=0.0, review_band=0.0, risk_tolerance=1)
    result = replay(
        history,
        Policy("v1", "x", 0.10, 0.20),
        Policy("v2", "2x", 0.20, 0.40),
        cost,
        segments=policylab.SEGMENTS,
    )
    assert result.metric("active", "approvals") == 4
    assert result.metric("proposed", "approvals") == 4
    # known outcomes of the approvals: A1 good, A2 bad
    assert result.metric("active", "bad_rate") == pytest.approx(0.5)
    assert result.swap("swap_in", "applications") == 0


# --- the proposal, the models and the command ------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("champion", ("alias", "champion")),
        (" Challenger ", ("alias", "challenger")),
        ("5", ("version", "5")),
        ("v12", ("version", "12")),
        ("V007", ("version", "7")),
    ],
)
def test_a_policys_model_is_a_version_or_an_alias(text, expected) -> None:
    assert policylab.model_reference(text) == expected


@pytest.mark.parametrize("text", ["gbt", "v0", "0", "-3", "v", "", "champion2", "5.0"])
def test_anything_else_is_refused_with_what_to_write(text) -> None:
    with pytest.raises(ValueError, match=r"a version of the registered model \(5 or v5\)"):
        policylab.model_reference(text)


def test_a_policy_file_is_read_or_refused_with_its_path(tmp_path) -> None:
    good = tmp_path / "p.yaml"
    good.write_text(
        "version: v9\nmodel: v5\napprove_below_pd: 0.1\nreject_from_pd: 0.2\n"
        "rules: [KO_BLOCKLIST]\n"
        "overrides:\n  - {column: channel, value: broker, approve_below_pd: 0.05, "
        "reject_from_pd: 0.1}\n",
        encoding="utf-8",
    )
    policy = policylab.load_policy(good)
    assert (policy.version, policy.model, policy.approve_below_pd, policy.reject_from_pd) == (
        "v9",
        "v5",
        0.1,
        0.2,
    )
    assert policy.rules == ("KO_BLOCKLIST",)
    assert [(o.column, o.value) for o in policy.overrides] == [("channel", "broker")]
    as_json = tmp_path / "p.json"
    as_json.write_text(
        '{"version": "v9", "model": "champion", "approve_below_pd": 0.1, "reject_from_pd": 0.2}',
        encoding="utf-8",
    )
    assert policylab.load_policy(as_json).model == "champion"
    cases = {
        "missing.yaml": None,
        "list.yaml": "- version: v1\n",
        "broken.yaml": "version: [v1\n",
        "model.yaml": "version: v1\nmodel: gbt\napprove_below_pd: 0.1\nreject_from_pd: 0.2\n",
        "order.yaml": "version: v1\nmodel: '5'\napprove_below_pd: 0.3\nreject_from_pd: 0.2\n",
        "extra.yaml": "version: v1\nmodel: '5'\napprove_below_pd: 0.1\nreject_from_pd: 0.2\n"
        "cutof: 0.3\n",
    }
    messages = {}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError) as caught:
            policylab.load_policy(path)
        messages[name] = str(caught.value)
    assert messages["missing.yaml"] == f"no policy file at {tmp_path / 'missing.yaml'}"
    mapping = "must hold one mapping (version, model, approve_below_pd, reject_from_pd, ...)"
    assert messages["list.yaml"].endswith(f"{mapping}, not list")
    assert messages["broken.yaml"].startswith(f"{tmp_path / 'broken.yaml'} is not YAML or JSON")
    assert "a version of the registered model" in messages["model.yaml"]
    assert messages["order.yaml"].startswith(f"{tmp_path / 'order.yaml'}: ")
    assert "cutof" in messages["extra.yaml"]


def _stub_book(spark, monkeypatch) -> None:
    """The command's reads on the hand rows: gold.application_features, the champion
    (pd = x) and version 7 (pd = 2x), and an out-of-time window of 2025-01..2025-02."""
    features = spark.createDataFrame(ROWS, FEATURES)
    models = {"champion": _model(1.0), "7": _model(2.0)}
    monkeypatch.setattr(policylab.lakehouse, "read", lambda spark, table, settings: features)
    monkeypatch.setattr(policylab, "load_model", lambda settings, ref: models[ref])
    split = SimpleNamespace(windows={"oot": "2025-01..2025-02"})
    monkeypatch.setattr(policylab, "training_split", lambda spark, settings: split)


def test_the_command_replays_writes_the_page_and_flags(spark, cli_home, monkeypatch, capsys):
    """`riskctl policy backtest` on the hand rows: the active policy is the configured
    cut-off (no gold.cutoff_policy yet) on the champion (a stub: pd = x), the proposed
    v2 on version 7 (pd = 2x) approves below 0.30 and rejects from 0.60."""
    from riskcontrol.cli.main import main
    from riskcontrol.core.config import get_settings

    _stub_book(spark, monkeypatch)
    proposal = cli_home / "v2.yaml"
    proposal.write_text(
        "version: v2 <b>\nmodel: '7'\napprove_below_pd: 0.30\nreject_from_pd: 0.60\n",
        encoding="utf-8",
    )
    settings = get_settings()
    assert main(["policy", "backtest", "--proposed", str(proposal)]) == 0
    out = capsys.readouterr().out
    page = settings.reports_dir / "policy_backtest_v2__b_.html"
    assert f"page {page}" in out
    html_text = page.read_text(encoding="utf-8")
    assert "v2 &lt;b&gt;" in html_text and "v2 <b>" not in html_text
    assert "applications decided in 2025-01..2025-02" in html_text
    # the configured cut-off (approve below 0.08, reject from 0.20) on pd = x: A1 approve,
    # A2, A3 review, A5 reject; the proposed on 2x: A1, A3 approve, A2 and A5 review. Both
    # keep the service's reject rules (the file names none): KO_INCOME_BELOW_MIN rejects A4
    # (income 2500 < 3000) under both; A2's unknown age fires no age rule.
    # A5 swaps in; nothing swaps out
    assert (settings.approve_below_pd, settings.reject_from_pd) == (0.08, 0.20)
    assert "swap-in: 1 applications" in out
    assert "swap-out: 0 applications" in out
    assert "FLAG: " in out  # the approval rate moves from 3/5 to 4/5: beyond 0.05
    for code, field in (
        ("KO_DISHONEST_DEBTOR", "pr_court_hits"),
        ("KO_FRAUD_LINK", "shared_with_fraud"),
        ("KO_BLOCKLIST", "blocklisted"),
    ):
        assert f"note: rule {code} not replayed: the history has no {field} (" in out
    assert "KO_AGE_BELOW_MIN not replayed" not in out
    assert "note: reject inference: " in out and "the active model's PD (pd_active" in out

    # gold.policy_backtests holds the backtest: one id, the figures above, the flag
    monkeypatch.undo()  # the real lakehouse reads from here on
    (found,) = backtest_store.backtests(spark, settings)
    assert f"backtest {found['backtest_id']}: " in out
    assert found["window"] == "2025-01..2025-02"
    assert found["proposed"]["version"] == "v2 <b>" and found["active"]["model"] == "champion"
    none = found["policies"]["none"]
    assert none["active"]["approvals"]["value"] == 3
    assert none["proposed"]["approval_rate"]["value"] == 0.8
    assert found["swaps"]["none"]["swap_in"]["applications"]["value"] == 1
    assert len(found["flags"]) == out.count("FLAG: ") >= 1
    table = spark.read.format("delta").load(GOLD_POLICY_BACKTESTS.path(settings))
    assert table.select("backtest_id").distinct().count() == 1
    # no application id in any column of the table
    strings = [f.name for f in table.schema.fields if f.dataType.simpleString() == "string"]
    cells = {v for r in table.select(*strings).collect() for v in r if v is not None}
    assert not cells & {row[0] for row in ROWS}


def test_the_guard_limits_come_from_the_settings(spark, cli_home, monkeypatch, capsys):
    """The same replay with RISK_POLICY_MAX_APPROVAL_SHIFT at 0.5: the 20-point move in the
    approval rate (4/5 -> 5/5) is within it, and nothing else moves beyond its limit."""
    from riskcontrol.cli.main import main
    from riskcontrol.core.config import get_settings

    _stub_book(spark, monkeypatch)
    monkeypatch.setenv("RISK_POLICY_MAX_APPROVAL_SHIFT", "0.5")
    monkeypatch.setenv("RISK_POLICY_MAX_BAD_RATE_SHIFT", "0.5")
    get_settings.cache_clear()
    proposal = cli_home / "v2.yaml"
    proposal.write_text(
        "version: v2\nmodel: '7'\napprove_below_pd: 0.30\nreject_from_pd: 0.60\n",
        encoding="utf-8",
    )
    assert main(["policy", "backtest", "--proposed", str(proposal)]) == 0
    assert "FLAG: " not in capsys.readouterr().out
    # the command line overrides the setting for one run
    assert (
        main(["policy", "backtest", "--proposed", str(proposal), "--max-approval-shift", "0.1"])
        == 0
    )
    assert "FLAG: " in capsys.readouterr().out


RULES_YAML = """
version: "t-1"
products:
  consumer_loan: {min_amount: 1000, max_amount: 200000, terms: [3, 6, 12]}
rules:
  - code: KO_YOUNG
    action: reject
    when: [{field: age, op: "<", value: 18}]
    on_missing: reject
    reason: {en: "young", zh: "young"}
  - code: KO_POOR_CASH
    action: reject
    when: [{field: monthly_income, op: "<", value: 3000}, {field: product, op: "==", value: cash}]
    on_missing: pass
    reason: {en: "poor", zh: "poor"}
  - code: KO_COURT
    action: reject
    when: [{field: pr_court_hits, op: ">", value: 0}]
    reason: {en: "court", zh: "court"}
  - code: RF_DEBT
    action: review
    when: [{field: overdue_accounts, op: ">=", value: 3}]
    reason: {en: "debt", zh: "debt"}
"""


def _rules():
    from riskcontrol.serve.engine import RULE_FIELDS
    from riskcontrol.serve.rules import parse_rules

    return parse_rules(RULES_YAML, "rules.yaml", RULE_FIELDS)


def test_rules_replay_on_the_history_as_the_service_applies_them():
    import pandas as pd

    history = pd.DataFrame(
        {
            "rule__age": [30, 16, None, 40],
            "rule__monthly_income": [2000.0, 9000.0, 2500.0, None],
            "rule__product": ["cash", "cash", "bnpl", "cash"],
        }
    )
    rules = _rules()
    fired, notes = policylab.replay_rules(history, rules, ("KO_YOUNG", "KO_POOR_CASH", "KO_COURT"))
    # row 1: poor and cash; row 2: young; row 3: age unknown -> KO_YOUNG's on_missing
    # (reject), poor but bnpl; row 4: income unknown -> KO_POOR_CASH's on_missing (pass)
    assert fired == [("KO_POOR_CASH",), ("KO_YOUNG",), ("KO_YOUNG",), ()]
    assert notes == [
        "rule KO_COURT not replayed: the history has no pr_court_hits (known only when the "
        "service decides, or not in gold.application_features); it rejects no row here"
    ]
    with pytest.raises(ValueError, match=r"no rule KO_NONE in the service's rules \(rules.yaml"):
        policylab.replay_rules(history, rules, ("KO_NONE",))


def test_a_policy_without_rules_keeps_the_services_and_only_those_activate(tmp_path):
    service = ("KO_YOUNG", "KO_POOR_CASH")
    path = tmp_path / "p.yaml"
    path.write_text("version: v3\nmodel: champion\napprove_below_pd: 0.1\nreject_from_pd: 0.2\n")
    inherited = policylab.load_policy(path)
    assert inherited.rules == (policylab.SERVICE_RULES,)
    assert policylab.with_service_rules(inherited, service).rules == service
    policylab.activatable(inherited, service)  # the service's rules: fine
    path.write_text(path.read_text() + "rules: []\n")
    none = policylab.load_policy(path)
    assert none.rules == () and policylab.with_service_rules(none, service).rules == ()
    with pytest.raises(ValueError, match=r"changes the service's reject rules \(drops "
                       r"KO_POOR_CASH, KO_YOUNG\): rules change through a rule-set"):  # fmt: skip
        policylab.activatable(none, service)
    extra = Policy("v4", "5", 0.1, 0.2, (policylab.SERVICE_RULES, "KO_COURT"))
    assert policylab.with_service_rules(extra, service).rules == (*service, "KO_COURT")
    with pytest.raises(ValueError, match=r"\(adds KO_COURT\)"):
        policylab.activatable(extra, service)


def test_dropping_a_rule_swaps_in_what_it_rejected(spark, cli_home, monkeypatch, capsys):
    """The proposal `rules: []` drops the service's rules: A4, rejected today by
    KO_INCOME_BELOW_MIN (income 2500) with PD 0.12 (a review on the cut-off), swaps in and
    the swap is put down to that rule."""
    from riskcontrol.cli.main import main

    _stub_book(spark, monkeypatch)
    proposal = cli_home / "norules.yaml"
    proposal.write_text(
        "version: v5\nmodel: champion\napprove_below_pd: 0.08\nreject_from_pd: 0.20\nrules: []\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(policylab, "run_backtest", _keep(policylab.run_backtest))
    assert main(["policy", "backtest", "--proposed", str(proposal)]) == 0
    out = capsys.readouterr().out
    assert "swap-in: 1 applications" in out and "swap-out: 0 applications" in out
    result = _keep.last.result
    assert result.swap_rules.to_dict("records") == [
        {
            "swap": "swap_in",
            "policy": "active",
            "rule": "KO_INCOME_BELOW_MIN",
            "applications": 1,
            "exposure": 3000.0,
        }
    ]
    swapped = result.rows[result.rows["swap"] == "swap_in"]
    assert swapped[["application_id", "active_rule", "proposed_decision"]].values.tolist() == [
        ["A4", "KO_INCOME_BELOW_MIN", "review"]
    ]


def _keep(function):
    """``function``, remembering its last result as ``_keep.last``."""

    def wrapper(*args, **kwargs):
        _keep.last = function(*args, **kwargs)
        return _keep.last

    return wrapper
