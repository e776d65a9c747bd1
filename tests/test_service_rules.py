"""The policy rules (knock-outs and referrals) and the champion/challenger split: pure
Python, small inline rules files, exact expected outcomes."""

from __future__ import annotations

import dataclasses
import hashlib
import math

import pytest
import yaml

from riskcontrol.serve.rules import (
    DEFAULT_RULES,
    Fired,
    Outcome,
    RulesError,
    default_rules,
    load_rules,
    parse_rules,
)
from riskcontrol.serve.split import arm, bucket

FIELDS = frozenset(
    {
        "age",
        "monthly_income",
        "pr_court_hits",
        "pr_penalty_hits",
        "apps_24h",
        "shared_with_fraud",
        "blocklisted",
        "overdue_accounts",
        "city",
        "product",
    }
)
PRODUCTS = {"consumer_loan": {"min_amount": 1000, "max_amount": 200000, "terms": [6, 12]}}
SRC = "rules.yaml"


def rule(code: str, *when: dict, action: str = "reject", **extra) -> dict:
    return {
        "code": code,
        "action": action,
        "when": list(when),
        "reason": {"en": f"{code} en", "zh": f"{code} 中文"},
        **extra,
    }


def text(*rules: dict, version: str = "2026-12-01") -> str:
    doc = {"version": version, "products": PRODUCTS, "rules": list(rules)}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def ruleset(*rules: dict):
    return parse_rules(text(*rules), SRC, FIELDS)


def errors(source: str) -> list[str]:
    with pytest.raises(RulesError) as info:
        parse_rules(source, SRC, FIELDS)
    return str(info.value).splitlines()


def fires(cond: dict, values: dict) -> str:
    """The action of a one-rule set with ``cond`` (on_missing: pass), or ``missing``."""
    out = ruleset(rule("KO_ONE", cond, on_missing="pass")).evaluate(values)
    return "missing" if out.undecided else out.action


# --- operators --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "age", "expected"),
    [
        ("==", 30, 30, "reject"),
        ("==", 30, 30.0, "reject"),
        ("==", 30, 31, "pass"),
        ("!=", 30, 31, "reject"),
        ("!=", 30, 30, "pass"),
        ("<", 18, 17, "reject"),
        ("<", 18, 18, "pass"),
        ("<=", 18, 18, "reject"),
        ("<=", 18, 18.5, "pass"),
        (">", 60, 61, "reject"),
        (">", 60, 60, "pass"),
        (">=", 60, 60, "reject"),
        (">=", 60, 59.99, "pass"),
        ("<", 2.5, 2, "reject"),
    ],
)
def test_comparison_ops(op, value, age, expected):
    assert fires({"field": "age", "op": op, "value": value}, {"age": age}) == expected


@pytest.mark.parametrize(
    ("op", "value", "city", "expected"),
    [
        ("in", ["Beijing", "Shanghai"], "Shanghai", "reject"),
        ("in", ["Beijing", "Shanghai"], "Shenzhen", "pass"),
        ("not_in", ["Beijing", "Shanghai"], "Shenzhen", "reject"),
        ("not_in", ["Beijing", "Shanghai"], "Beijing", "pass"),
        ("in", [1, 2], 2.0, "reject"),
        ("in", [1, 2], "2", "pass"),  # a string is never a number
        ("not_in", [1, 2], "2", "reject"),
        ("in", [True], 1, "pass"),  # nor is a number a boolean
        ("==", "Beijing", "Beijing", "reject"),
        ("==", "Beijing", "beijing", "pass"),
        ("==", 1, "1", "pass"),
        ("!=", 1, "1", "reject"),
        ("==", True, 1, "pass"),
        ("==", True, True, "reject"),
    ],
)
def test_equality_and_membership_never_mix_kinds(op, value, city, expected):
    assert fires({"field": "city", "op": op, "value": value}, {"city": city}) == expected


@pytest.mark.parametrize(
    ("op", "flag", "expected"),
    [
        ("is_true", True, "reject"),
        ("is_true", False, "pass"),
        ("is_false", False, "reject"),
        ("is_false", True, "pass"),
        ("is_true", 1, "missing"),  # 1 is not a boolean
        ("is_true", "yes", "missing"),
    ],
)
def test_boolean_ops(op, flag, expected):
    assert fires({"field": "blocklisted", "op": op}, {"blocklisted": flag}) == expected


@pytest.mark.parametrize(
    ("op", "value", "age"),
    [
        (">", 60, "61"),  # a string compared with a number
        (">", 60, True),  # a bool is not a number
        (">", 60, [61]),
        ("<", 18, math.nan),
        ("==", 30, math.nan),
        ("!=", 30, math.nan),  # NaN is unknown, not "different from 30"
        ("not_in", [1, 2], None),
        ("<", 18, None),
    ],
)
def test_a_value_of_the_wrong_type_or_unknown_counts_as_missing(op, value, age):
    assert fires({"field": "age", "op": op, "value": value}, {"age": age}) == "missing"


def test_a_missing_field_counts_as_missing():
    assert fires({"field": "age", "op": "<", "value": 18}, {}) == "missing"


def test_numpy_values_are_numbers_and_booleans():
    np = pytest.importorskip("numpy")
    assert fires({"field": "age", "op": "<", "value": 18}, {"age": np.int64(17)}) == "reject"
    assert fires({"field": "age", "op": "<", "value": 18}, {"age": np.float32(18)}) == "pass"
    assert fires({"field": "blocklisted", "op": "is_true"}, {"blocklisted": np.bool_(1)}) == (
        "reject"
    )


# --- on_missing, order and severity ----------------------------------------------------


@pytest.mark.parametrize(
    ("on_missing", "action", "fired"),
    [
        ("pass", "pass", ()),
        ("review", "review", (Fired("KO_AGE", "review", "KO_AGE en", "KO_AGE 中文", True),)),
        ("reject", "reject", (Fired("KO_AGE", "reject", "KO_AGE en", "KO_AGE 中文", True),)),
        (None, "review", (Fired("KO_AGE", "review", "KO_AGE en", "KO_AGE 中文", True),)),
    ],
)
def test_on_missing(on_missing, action, fired):
    extra = {} if on_missing is None else {"on_missing": on_missing}
    rules = ruleset(rule("KO_AGE", {"field": "age", "op": "<", "value": 18}, **extra))
    assert rules.evaluate({"age": None}) == Outcome(action, fired, ("KO_AGE",))
    assert rules.evaluate({"age": 40}) == Outcome("pass", (), ())


def test_conditions_are_anded_and_a_false_one_decides_whatever_is_missing():
    rules = ruleset(
        rule(
            "KO_YOUNG_POOR",
            {"field": "age", "op": "<", "value": 25},
            {"field": "monthly_income", "op": "<", "value": 3000},
            on_missing="reject",
        )
    )
    fired = Fired("KO_YOUNG_POOR", "reject", "KO_YOUNG_POOR en", "KO_YOUNG_POOR 中文", False)
    assert rules.evaluate({"age": 20, "monthly_income": 2000}) == Outcome("reject", (fired,), ())
    assert rules.evaluate({"age": 20, "monthly_income": 5000}) == Outcome("pass", (), ())
    # one condition false: the rule does not fire, in either order, though the other is unknown
    assert rules.evaluate({"age": None, "monthly_income": 5000}) == Outcome("pass", (), ())
    assert rules.evaluate({"age": 30, "monthly_income": None}) == Outcome("pass", (), ())
    # true and unknown: undecided, on_missing decides
    missing = Outcome("reject", (dataclasses.replace(fired, missing=True),), ("KO_YOUNG_POOR",))
    assert rules.evaluate({"age": 20, "monthly_income": None}) == missing


def test_every_rule_is_evaluated_in_order_and_the_most_severe_action_wins():
    rules = ruleset(
        rule("RF_VELOCITY", {"field": "apps_24h", "op": ">", "value": 3}, action="review"),
        rule("KO_COURT", {"field": "pr_court_hits", "op": ">", "value": 0}),
        rule("RF_PENALTY", {"field": "pr_penalty_hits", "op": ">", "value": 0}, action="review"),
        rule("KO_AGE", {"field": "age", "op": "<", "value": 18}, on_missing="pass"),
        rule("RF_OVERDUE", {"field": "overdue_accounts", "op": ">=", "value": 3}, action="review"),
    )
    out = rules.evaluate({"apps_24h": 5, "pr_court_hits": 1, "pr_penalty_hits": 2})
    assert out.action == "reject"
    assert [(f.code, f.action, f.missing) for f in out.fired] == [
        ("RF_VELOCITY", "review", False),
        ("KO_COURT", "reject", False),
        ("RF_PENALTY", "review", False),
        ("RF_OVERDUE", "review", True),
    ]
    assert out.undecided == ("KO_AGE", "RF_OVERDUE")

    out = rules.evaluate({"apps_24h": 5, "pr_court_hits": 0, "age": 30, "overdue_accounts": 0})
    assert out == Outcome(
        "review",
        (
            Fired("RF_VELOCITY", "review", "RF_VELOCITY en", "RF_VELOCITY 中文", False),
            Fired("RF_PENALTY", "review", "RF_PENALTY en", "RF_PENALTY 中文", True),
        ),
        ("RF_PENALTY",),
    )


def test_an_empty_rules_list_passes_everything():
    rules = parse_rules(
        'version: "v0"\nproducts: {p: {min_amount: 1, max_amount: 2, terms: [1]}}\nrules: []\n',
        SRC,
        FIELDS,
    )
    assert (rules.version, rules.rules, rules.source) == ("v0", (), SRC)
    assert rules.evaluate({}) == Outcome("pass", (), ())


def test_rule_fields_are_kept():
    rules = ruleset(
        rule("KO_AGE", {"field": "age", "op": "<", "value": 18}, description="under age")
    )
    (r,) = rules.rules
    assert (r.code, r.action, r.on_missing, r.reason_en, r.reason_zh, r.description) == (
        "KO_AGE",
        "reject",
        "review",
        "KO_AGE en",
        "KO_AGE 中文",
        "under age",
    )
    assert [(c.field, c.op, c.value) for c in r.when] == [("age", "<", 18)]


# --- validation -------------------------------------------------------------------------


def test_an_unquoted_date_version_is_refused_with_a_hint_to_quote_it():
    (line,) = errors(
        text().replace('"2026-12-01"', "2026-12-01").replace("'2026-12-01'", "2026-12-01")
    )
    assert line.startswith(f"{SRC}: version must be a quoted string")
    assert "datetime.date(2026, 12, 1)" in line
    (line,) = errors(text(version="x").replace("version: x", "version: 3"))
    assert "quoted string" in line and "got 3" in line


def test_an_unknown_field_names_the_rule_and_close_matches():
    (line,) = errors(text(rule("KO_AGE", {"field": "agee", "op": "<", "value": 18})))
    assert line == f"{SRC}: rule 1 (KO_AGE): unknown field 'agee'; did you mean age?"


def test_an_unknown_op():
    (line,) = errors(text(rule("KO_AGE", {"field": "age", "op": "=<", "value": 18})))
    assert line.startswith(f"{SRC}: rule 1 (KO_AGE): unknown op '=<' (one of == != < <=")


def test_a_missing_chinese_reason():
    bad = rule("KO_AGE", {"field": "age", "op": "<", "value": 18})
    bad["reason"] = {"en": "Too young."}
    good = rule("KO_OLD", {"field": "age", "op": ">", "value": 60})
    assert errors(text(good, bad)) == [f"{SRC}: rule 2 (KO_AGE): reason.zh is missing or empty"]
    bad["reason"] = {"en": "Too young.", "zh": "  "}
    assert errors(text(good, bad)) == [f"{SRC}: rule 2 (KO_AGE): reason.zh is missing or empty"]


def test_a_duplicate_code():
    a = rule("KO_AGE", {"field": "age", "op": "<", "value": 18})
    b = rule("KO_AGE", {"field": "age", "op": ">", "value": 60})
    assert errors(text(a, b)) == [f"{SRC}: rule 2 (KO_AGE): duplicate code (rule 1 has it already)"]


@pytest.mark.parametrize("code", ["ko_age", "KO", "1KO", "KO-AGE", "K" * 49])
def test_a_code_outside_the_pattern(code):
    (line,) = errors(text(rule(code, {"field": "age", "op": "<", "value": 18})))
    assert line == (
        f"{SRC}: rule 1 ({code}): code must be 3-48 of A-Z, 0-9, _ starting with a letter"
    )


@pytest.mark.parametrize("value", ["18", True, None, [18], math.inf])
def test_a_comparison_needs_a_number(value):
    (line,) = errors(text(rule("KO_AGE", {"field": "age", "op": "<", "value": value})))
    assert line == f"{SRC}: rule 1 (KO_AGE): op '<' compares with a number, got {value!r}"


@pytest.mark.parametrize("value", ["Beijing", [], None, {"a": 1}])
def test_in_needs_a_non_empty_list(value):
    (line,) = errors(text(rule("KO_CITY", {"field": "city", "op": "in", "value": value})))
    assert line == (
        f"{SRC}: rule 1 (KO_CITY): op 'in' takes a non-empty list as its value, got {value!r}"
    )


def test_other_value_problems():
    got = errors(
        text(
            rule("KO_A", {"field": "city", "op": "not_in", "value": [["Beijing"]]}),
            rule("KO_B", {"field": "blocklisted", "op": "is_true", "value": True}),
            rule("KO_C", {"field": "city", "op": "==", "value": None}),
            rule("KO_D", {"op": "==", "value": 1}),
        )
    )
    assert got == [
        f"{SRC}: rule 1 (KO_A): op 'not_in' takes a list of numbers, strings or booleans",
        f"{SRC}: rule 2 (KO_B): op 'is_true' takes no value",
        f"{SRC}: rule 3 (KO_C): op '==' compares with a number, string or boolean, got None",
        f"{SRC}: rule 4 (KO_D): a condition needs a field",
    ]


def test_unknown_keys_in_a_rule_and_in_a_condition():
    bad = rule("KO_AGE", {"field": "age", "op": "<", "value": 18, "vaule": 1}, severity=3)
    assert errors(text(bad)) == [
        f"{SRC}: rule 1 (KO_AGE): unknown key(s) ['severity'] (allowed: action, code, "
        "description, on_missing, reason, when)",
        f"{SRC}: rule 1 (KO_AGE): unknown key(s) ['vaule'] in a condition "
        "(allowed: field, op, value)",
    ]


def test_rule_shape_problems():
    got = errors(
        text(
            {**rule("KO_A", {"field": "age", "op": "<", "value": 1}), "action": "deny"},
            {**rule("KO_B"), "on_missing": "ignore"},
            "KO_C",
        )
    )
    assert got == [
        f"{SRC}: rule 1 (KO_A): action must be reject or review, got 'deny'",
        f"{SRC}: rule 2 (KO_B): on_missing must be pass, review or reject, got 'ignore'",
        f"{SRC}: rule 2 (KO_B): 'when' must be a non-empty list of conditions",
        f"{SRC}: rule 3: a rule is a mapping (code, action, when, reason)",
    ]


def test_the_whole_file_is_checked_and_every_error_reported_at_once():
    got = errors(
        text(
            rule("KO_AGE", {"field": "agee", "op": "<", "value": 18}),
            rule("KO_OK", {"field": "age", "op": ">", "value": 60}),
            rule("KO_INCOME", {"field": "monthly_income", "op": "<", "value": "3000"}),
        )
    )
    assert got == [
        f"{SRC}: rule 1 (KO_AGE): unknown field 'agee'; did you mean age?",
        f"{SRC}: rule 3 (KO_INCOME): op '<' compares with a number, got '3000'",
    ]


def test_the_rules_key_is_required_and_the_file_must_be_a_mapping():
    doc = {"version": "v1", "products": PRODUCTS}
    assert errors(yaml.safe_dump(doc)) == [f"{SRC}: 'rules' must be a list (it may be empty)"]
    assert errors("- a\n- b\n") == [f"{SRC}: expected a mapping with version, products and rules"]
    assert errors("version: [unclosed\n") == [
        f"{SRC}: not valid YAML at line 2, column 1: "
        "while parsing a flow sequence, expected ',' or ']', but got '<stream end>'"
    ]
    doc = {"version": "v1", "products": PRODUCTS, "rules": [], "rulez": []}
    assert errors(yaml.safe_dump(doc)) == [
        f"{SRC}: unknown top-level key(s) ['rulez'] (version, products, rules)"
    ]


def test_products_are_checked():
    doc = {
        "version": "v1",
        "products": {"p": {"min_amount": 0, "max_amount": 5, "terms": [3]}},
        "rules": [],
    }
    assert errors(yaml.safe_dump(doc)) == [f"{SRC}: product 'p': need 0 < min_amount <= max_amount"]
    rules = parse_rules(text(), SRC, FIELDS)
    product = rules.products["consumer_loan"]
    assert list(product.problems(5000, 12)) == []
    assert [name for _, name in product.problems(500, 3)] == ["requested_amount", "term_months"]


# --- files and digests ------------------------------------------------------------------


def test_load_rules_digest_is_the_sha256_of_the_file_bytes(tmp_path):
    path = tmp_path / "rules.yaml"
    data = text(rule("KO_AGE", {"field": "age", "op": "<", "value": 18})).encode()
    path.write_bytes(data)
    first = load_rules(path, FIELDS)
    assert first.digest == hashlib.sha256(data).hexdigest()
    assert first.source == str(path) and first.version == "2026-12-01"
    # same text with Windows line ends: other bytes, other digest, same rules
    path.write_bytes(data.replace(b"\n", b"\r\n"))
    crlf = load_rules(path, FIELDS)
    assert crlf.digest == hashlib.sha256(data.replace(b"\n", b"\r\n")).hexdigest()
    assert crlf.digest != first.digest and crlf.rules == first.rules
    path.write_bytes(data.replace(b"18", b"21"))
    assert load_rules(path, FIELDS).digest not in (first.digest, crlf.digest)
    assert parse_rules(data.decode(), "x", FIELDS).digest == first.digest


def test_load_rules_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RulesError, match=r"nope\.yaml: no such rules file"):
        load_rules(missing, FIELDS)
    with pytest.raises(RulesError, match="cannot read the rules file"):
        load_rules(tmp_path, FIELDS)  # a directory
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00version")
    with pytest.raises(RulesError, match=r"bin\.yaml: the rules file is not UTF-8 text"):
        load_rules(binary, FIELDS)
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"broken\.yaml: not valid YAML"):
        load_rules(broken, FIELDS)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text(rule("KO_AGE", {"field": "agee", "op": "<", "value": 18})))
    with pytest.raises(RulesError, match=r"bad\.yaml: rule 1 \(KO_AGE\): unknown field"):
        load_rules(bad, FIELDS)


# --- the example rules ------------------------------------------------------------------

CLEAN = {
    "pr_court_hits": 0,
    "pr_penalty_hits": 0,
    "age": 35,
    "monthly_income": 8000,
    "apps_24h": 1,
    "shared_with_fraud": False,
    "blocklisted": False,
    "overdue_accounts": 0,
}


def test_the_default_rules_parse_and_decide():
    rules = default_rules(FIELDS)
    assert rules.digest == hashlib.sha256(DEFAULT_RULES.encode()).hexdigest()
    assert [r.code for r in rules.rules] == [
        "KO_DISHONEST_DEBTOR",
        "RF_REGULATOR_PENALTY",
        "KO_AGE_BELOW_MIN",
        "KO_AGE_ABOVE_MAX",
        "KO_INCOME_BELOW_MIN",
        "RF_VELOCITY_24H",
        "KO_FRAUD_LINK",
        "KO_BLOCKLIST",
        "RF_OVERDUE_ACCOUNTS",
    ]
    assert rules.evaluate(CLEAN) == Outcome("pass", (), ())

    out = rules.evaluate({**CLEAN, "pr_court_hits": 2})
    assert out.action == "reject"
    assert [(f.code, f.reason_zh) for f in out.fired] == [
        ("KO_DISHONEST_DEBTOR", "您已被法院列入失信被执行人名单。")
    ]


@pytest.mark.parametrize(
    ("change", "action", "code"),
    [
        ({"pr_penalty_hits": 1}, "review", "RF_REGULATOR_PENALTY"),
        ({"age": 17}, "reject", "KO_AGE_BELOW_MIN"),
        ({"age": 61}, "reject", "KO_AGE_ABOVE_MAX"),
        ({"monthly_income": 2999.99}, "reject", "KO_INCOME_BELOW_MIN"),
        ({"apps_24h": 4}, "review", "RF_VELOCITY_24H"),
        ({"shared_with_fraud": True}, "reject", "KO_FRAUD_LINK"),
        ({"blocklisted": True}, "reject", "KO_BLOCKLIST"),
        ({"overdue_accounts": 3}, "review", "RF_OVERDUE_ACCOUNTS"),
    ],
)
def test_each_default_rule(change, action, code):
    out = default_rules(FIELDS).evaluate({**CLEAN, **change})
    assert (out.action, [f.code for f in out.fired], out.undecided) == (action, [code], ())


def test_the_default_rules_at_their_edges_pass():
    edges = {"age": 18, "monthly_income": 3000, "apps_24h": 3, "overdue_accounts": 2}
    assert default_rules(FIELDS).evaluate({**CLEAN, **edges}).action == "pass"
    assert default_rules(FIELDS).evaluate({**CLEAN, "age": 60}).action == "pass"


def test_the_default_rules_need_their_fields():
    with pytest.raises(RulesError) as info:
        default_rules(FIELDS - {"apps_24h"})
    assert str(info.value) == "<default rules>: rule 6 (RF_VELOCITY_24H): unknown field 'apps_24h'"


# --- the champion/challenger split ------------------------------------------------------


def test_bucket_is_the_first_8_bytes_of_the_salted_sha256():
    digest = hashlib.sha256(b"s\0A-1").digest()
    assert bucket("A-1", "s") == int.from_bytes(digest[:8], "big") / 2**64
    assert bucket("A-1", "s") == bucket("A-1", "s")
    assert bucket("A-1", "s") != bucket("A-1", "t")
    assert 0.0 <= bucket("A-1", "s") < 1.0


def test_arm_with_share_0_and_1():
    ids = [f"A-{i}" for i in range(1000)]
    assert {arm(i, 0.0, "s") for i in ids} == {"champion"}
    assert {arm(i, 1.0, "s") for i in ids} == {"challenger"}


def test_arm_sends_about_the_share_to_the_challenger_the_same_way_each_time():
    ids = [f"A-{i}" for i in range(10_000)]
    first = sum(arm(i, 0.2, "s") == "challenger" for i in ids)
    again = sum(arm(i, 0.2, "s") == "challenger" for i in ids)
    assert 1800 <= first <= 2200
    assert first == again


@pytest.mark.parametrize("share", [-0.1, 1.01, math.nan])
def test_arm_refuses_a_share_outside_0_1(share):
    with pytest.raises(ValueError, match="challenger share must be in"):
        arm("A-1", share, "s")
