"""Policy rules: knock-outs and referrals beside the model, declared in a versioned file.

A rules file (YAML) carries a quoted ``version``, the ``products`` the service sells
(amount range and terms) and the ordered ``rules``. Each rule has a reason ``code``, an
``action`` (``reject``: a knock-out; ``review``: a referral), conditions that must all
hold, what to do when a field is unknown (``on_missing``) and the reason the applicant
is told, in English and Chinese. The whole file is checked when it is loaded and every
error is reported at once, each naming the file and the rule.

Every rule is evaluated (so rule hit rates are complete); the outcome is the most severe
action of the rules that fired.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import numbers
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ACTIONS = ("reject", "review")
ON_MISSING = ("pass", "review", "reject")
SEVERITY = {"pass": 0, "review": 1, "reject": 2}
COMPARE = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
OPS = ("==", "!=", *COMPARE, "in", "not_in", "is_true", "is_false")
CODE = re.compile(r"^[A-Z][A-Z0-9_]{2,47}$")
RULE_KEYS = {"code", "action", "when", "on_missing", "reason", "description"}
CONDITION_KEYS = {"field", "op", "value"}
PRODUCT_KEYS = {"min_amount", "max_amount", "terms"}
TOP_KEYS = {"version", "products", "rules"}


class RulesError(ValueError):
    """A rules file that cannot be used; the message lists every problem, one a line."""


class _Missing(Exception):
    """A condition's field is unknown, or of a type its operator cannot compare."""


def _is_bool(value: Any) -> bool:
    """Python's bool, or NumPy's (values may come from a feature store's arrays)."""
    t = type(value)
    return t is bool or (t.__module__ == "numpy" and t.__name__ in ("bool_", "bool"))


def _is_number(value: Any) -> bool:
    """int, float and NumPy's numbers, but never a bool (True is not 1 here)."""
    return isinstance(value, numbers.Real) and not _is_bool(value)


def _number(value: Any) -> float:
    if not _is_number(value):
        raise _Missing
    x = float(value)
    if math.isnan(x):
        raise _Missing
    return x


def _unknown(value: Any) -> bool:
    """None and NaN are unknown values, whatever the operator."""
    return value is None or (_is_number(value) and math.isnan(float(value)))


def _scalar(value: Any) -> bool:
    """What ``==``, ``!=``, ``in`` and ``not_in`` may compare with: a string, a boolean or
    a finite number."""
    return isinstance(value, str | bool) or (_is_number(value) and math.isfinite(value))


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any = None

    def holds(self, values: Mapping[str, Any]) -> bool:
        """True or False; raises _Missing when the field's value cannot be judged."""
        v = values.get(self.field)
        if _unknown(v):
            raise _Missing
        if self.op in COMPARE:
            return COMPARE[self.op](_number(v), float(self.value))
        if self.op in ("is_true", "is_false"):
            if not _is_bool(v):
                raise _Missing
            return bool(v) is (self.op == "is_true")
        if self.op in ("==", "!="):
            same = _equal(v, self.value)
            return same if self.op == "==" else not same
        found = any(_equal(v, x) for x in self.value)
        return found if self.op == "in" else not found


def _equal(a: Any, b: Any) -> bool:
    """Numbers equal numbers, strings strings, bools bools; never across kinds."""
    if _is_bool(a) or _is_bool(b):
        return _is_bool(a) and _is_bool(b) and bool(a) is bool(b)
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    return isinstance(a, str) and isinstance(b, str) and a == b


def _all(conditions: Iterable[Condition], values: Mapping[str, Any]) -> bool:
    """AND of the conditions: False if any is False (whatever else is unknown), else
    _Missing if any is unknown, else True. So the outcome does not depend on their order."""
    unknown = False
    for cond in conditions:
        try:
            if not cond.holds(values):
                return False
        except _Missing:
            unknown = True
    if unknown:
        raise _Missing
    return True


@dataclass(frozen=True)
class Rule:
    code: str
    action: str
    when: tuple[Condition, ...]
    on_missing: str
    reason_en: str
    reason_zh: str
    description: str = ""

    def fires(self, values: Mapping[str, Any]) -> bool:
        """Whether the rule fires on ``values`` as a reject would: its conditions hold,
        or a field it reads is unknown and its ``on_missing`` is reject (as the service
        decides; the policy backtest replays rules on history with it)."""
        try:
            return _all(self.when, values)
        except _Missing:
            return self.on_missing == "reject"


@dataclass(frozen=True)
class Fired:
    code: str
    action: str
    reason_en: str
    reason_zh: str
    missing: bool  # fired because a field was unknown (``on_missing``)


@dataclass(frozen=True)
class Outcome:
    action: str  # pass | review | reject
    fired: tuple[Fired, ...]
    undecided: tuple[str, ...]  # rules whose fields were unknown


@dataclass(frozen=True)
class Product:
    name: str
    min_amount: float
    max_amount: float
    terms: tuple[int, ...]

    def problems(self, amount: float, term: int) -> Iterator[tuple[str, str]]:
        """(message, field) for each request value outside this product."""
        if not self.min_amount <= amount <= self.max_amount:
            yield (
                f"requested_amount is outside product {self.name!r}: "
                f"{self.min_amount:g} to {self.max_amount:g}",
                "requested_amount",
            )
        if term not in self.terms:
            yield (
                f"term_months must be one of {list(self.terms)} for product {self.name!r}",
                "term_months",
            )


@dataclass(frozen=True)
class RuleSet:
    version: str
    digest: str  # sha256 of the file's bytes
    source: str
    rules: tuple[Rule, ...]
    products: Mapping[str, Product]

    def evaluate(self, values: Mapping[str, Any]) -> Outcome:
        fired: list[Fired] = []
        undecided: list[str] = []
        for rule in self.rules:
            try:
                hit = _all(rule.when, values)
                action, missing = (rule.action if hit else "pass"), False
            except _Missing:
                undecided.append(rule.code)
                action, missing = rule.on_missing, True
            if action != "pass":
                fired.append(Fired(rule.code, action, rule.reason_en, rule.reason_zh, missing))
        action = max((f.action for f in fired), key=SEVERITY.__getitem__, default="pass")
        return Outcome(action, tuple(fired), tuple(undecided))


def _check_condition(
    cond: Any, where: str, fields: set[str], errors: list[str]
) -> Condition | None:
    if not isinstance(cond, dict):
        errors.append(f"{where}: a condition is a mapping with field, op and value")
        return None
    bad = sorted(map(str, set(cond) - CONDITION_KEYS))
    if bad:
        errors.append(f"{where}: unknown key(s) {bad} in a condition (allowed: field, op, value)")
    field, op, value = cond.get("field"), cond.get("op"), cond.get("value")
    ok = True
    if field is None:
        errors.append(f"{where}: a condition needs a field")
        ok = False
    elif not isinstance(field, str) or field not in fields:
        close = difflib.get_close_matches(str(field), sorted(fields), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        errors.append(f"{where}: unknown field {field!r}{hint}")
        ok = False
    if op not in OPS:
        errors.append(f"{where}: unknown op {op!r} (one of {' '.join(OPS)})")
        return None
    if op in COMPARE and not (_is_number(value) and math.isfinite(value)):
        errors.append(f"{where}: op {op!r} compares with a number, got {value!r}")
        ok = False
    elif op in ("in", "not_in") and (not isinstance(value, list) or not value):
        errors.append(f"{where}: op {op!r} takes a non-empty list as its value, got {value!r}")
        ok = False
    elif op in ("in", "not_in") and not all(_scalar(x) for x in value):
        errors.append(f"{where}: op {op!r} takes a list of numbers, strings or booleans")
        ok = False
    elif op in ("is_true", "is_false") and "value" in cond:
        errors.append(f"{where}: op {op!r} takes no value")
        ok = False
    elif op in ("==", "!=") and not _scalar(value):
        errors.append(
            f"{where}: op {op!r} compares with a number, string or boolean, got {value!r}"
        )
        ok = False
    return Condition(field, op, value) if ok else None


def _check_rule(raw: Any, i: int, src: str, fields: set[str], errors: list[str]) -> Rule | None:
    if not isinstance(raw, dict):
        errors.append(f"{src}: rule {i + 1}: a rule is a mapping (code, action, when, reason)")
        return None
    code = raw.get("code")
    where = f"{src}: rule {i + 1} ({code})"
    n = len(errors)
    bad = sorted(map(str, set(raw) - RULE_KEYS))
    if bad:
        errors.append(f"{where}: unknown key(s) {bad} (allowed: {', '.join(sorted(RULE_KEYS))})")
    if not isinstance(code, str) or not CODE.match(code):
        errors.append(f"{where}: code must be 3-48 of A-Z, 0-9, _ starting with a letter")
    action = raw.get("action")
    if action not in ACTIONS:
        errors.append(f"{where}: action must be reject or review, got {action!r}")
    on_missing = raw.get("on_missing", "review")
    if on_missing not in ON_MISSING:
        errors.append(f"{where}: on_missing must be pass, review or reject, got {on_missing!r}")
    when = raw.get("when")
    conditions = []
    if not isinstance(when, list) or not when:
        errors.append(f"{where}: 'when' must be a non-empty list of conditions")
    else:
        for cond in when:
            conditions.append(_check_condition(cond, where, fields, errors))
    reason = raw.get("reason")
    texts = {}
    if not isinstance(reason, dict):
        errors.append(f"{where}: 'reason' needs 'en' and 'zh' texts for the applicant")
    else:
        for lang in ("en", "zh"):
            text = reason.get(lang)
            if not isinstance(text, str) or not text.strip():
                errors.append(f"{where}: reason.{lang} is missing or empty")
            texts[lang] = text
        extra = sorted(map(str, set(reason) - {"en", "zh"}))
        if extra:
            errors.append(f"{where}: reason has unknown language(s) {extra} (en, zh)")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        errors.append(f"{where}: description must be text")
    if len(errors) > n:
        return None
    return Rule(
        code,
        action,
        tuple(conditions),
        on_missing,
        texts["en"],
        texts["zh"],
        description or "",
    )


def _check_products(raw: Any, src: str, errors: list[str]) -> dict[str, Product]:
    if not isinstance(raw, dict) or not raw:
        errors.append(f"{src}: 'products' must map each product name to its amounts and terms")
        return {}
    out = {}
    for name, spec in raw.items():
        where = f"{src}: product {name!r}"
        if not isinstance(spec, dict):
            errors.append(f"{where}: give min_amount, max_amount and terms")
            continue
        bad = sorted(set(spec) - PRODUCT_KEYS)
        if bad:
            errors.append(f"{where}: unknown key(s) {bad} (min_amount, max_amount, terms)")
        lo, hi, terms = spec.get("min_amount"), spec.get("max_amount"), spec.get("terms")
        try:
            lo, hi = _number(lo), _number(hi)
        except _Missing:
            errors.append(f"{where}: min_amount and max_amount must be numbers")
            continue
        if not 0 < lo <= hi:
            errors.append(f"{where}: need 0 < min_amount <= max_amount")
        if (
            not isinstance(terms, list)
            or not terms
            or not all(isinstance(t, int) and not isinstance(t, bool) and t > 0 for t in terms)
        ):
            errors.append(f"{where}: terms must be a list of whole months")
            continue
        out[str(name)] = Product(str(name), lo, hi, tuple(terms))
    return out


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """`` at line L, column C: what`` on one line, from PyYAML's multi-line message."""
    mark = getattr(exc, "problem_mark", None)
    what = ", ".join(
        str(x) for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x
    )
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{where}: {what or ' '.join(str(exc).split())}"


def parse_rules(text: str, source: str, fields: Iterable[str]) -> RuleSet:
    """Check a whole rules file (``source`` names it in the messages) against the
    ``fields`` the rules may name; RulesError lists every problem, one a line."""
    return _parse(text, source, fields, hashlib.sha256(text.encode("utf-8")).hexdigest())


def _parse(text: str, source: str, fields: Iterable[str], digest: str) -> RuleSet:
    fields = set(fields)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML{_yaml_problem(exc)}") from None
    if not isinstance(doc, dict):
        raise RulesError(f"{source}: expected a mapping with version, products and rules")
    errors: list[str] = []
    bad = sorted(map(str, set(doc) - TOP_KEYS))
    if bad:
        errors.append(f"{source}: unknown top-level key(s) {bad} (version, products, rules)")
    version = doc.get("version")
    if not isinstance(version, str) or not version.strip():
        errors.append(
            f'{source}: version must be a quoted string, e.g. version: "2026-12-01" '
            f"(got {version!r})"
        )
    products = _check_products(doc.get("products"), source, errors)
    rules_raw = doc.get("rules")
    rules: list[Rule] = []
    if not isinstance(rules_raw, list):
        errors.append(f"{source}: 'rules' must be a list (it may be empty)")
    else:
        first: dict[str, int] = {}  # code -> the rule number that has it first
        for i, raw in enumerate(rules_raw):
            rule = _check_rule(raw, i, source, fields, errors)
            code = raw.get("code") if isinstance(raw, dict) else None
            if isinstance(code, str) and code in first:
                errors.append(
                    f"{source}: rule {i + 1} ({code}): duplicate code "
                    f"(rule {first[code]} has it already)"
                )
                continue
            if isinstance(code, str):
                first[code] = i + 1
            if rule is not None:
                rules.append(rule)
    if errors:
        raise RulesError("\n".join(errors))
    return RuleSet(version, digest, source, tuple(rules), products)


def load_rules(path: str | Path, fields: Iterable[str]) -> RuleSet:
    """Read and check a rules file; its digest is the sha256 of its bytes."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RulesError(f"{path}: no such rules file") from None
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the rules file ({exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesError(f"{path}: the rules file is not UTF-8 text ({exc})") from None
    return _parse(text, str(path), fields, hashlib.sha256(data).hexdigest())


DEFAULT_RULES = """\
# Policy rules of the decision service (riskctl serve). Edit to your credit policy; the
# service reloads this file when it changes. A file with any error is refused whole.
version: "example-1"

products:
  consumer_loan: {min_amount: 1000, max_amount: 200000, terms: [3, 6, 12, 24, 36]}

rules:
  - code: KO_DISHONEST_DEBTOR
    action: reject
    when: [{field: pr_court_hits, op: ">", value: 0}]
    on_missing: pass
    reason:
      en: "You appear on a court list of dishonest debtors."
      zh: "您已被法院列入失信被执行人名单。"
  - code: RF_REGULATOR_PENALTY
    action: review
    when: [{field: pr_penalty_hits, op: ">", value: 0}]
    on_missing: pass
    reason:
      en: "A regulator penalty on record needs a manual review."
      zh: "存在监管处罚记录，需要人工审核。"
  - code: KO_AGE_BELOW_MIN
    action: reject
    when: [{field: age, op: "<", value: 18}]
    reason:
      en: "You are below the minimum age for this product."
      zh: "您未达到本产品的最低年龄要求。"
  - code: KO_AGE_ABOVE_MAX
    action: reject
    when: [{field: age, op: ">", value: 60}]
    reason:
      en: "You are above the maximum age for this product."
      zh: "您超过了本产品的最高年龄限制。"
  - code: KO_INCOME_BELOW_MIN
    action: reject
    when: [{field: monthly_income, op: "<", value: 3000}]
    reason:
      en: "Your income is below the minimum for this product."
      zh: "您的收入低于本产品的最低要求。"
  - code: RF_VELOCITY_24H
    action: review
    when: [{field: apps_24h, op: ">", value: 3}]
    reason:
      en: "Several applications in 24 hours need a manual review."
      zh: "24小时内多次申请，需要人工审核。"
  - code: KO_FRAUD_LINK
    action: reject
    when: [{field: shared_with_fraud, op: is_true}]
    reason:
      en: "We cannot offer you a loan at this time."
      zh: "我们暂时无法为您提供贷款。"
  - code: KO_BLOCKLIST
    action: reject
    when: [{field: blocklisted, op: is_true}]
    reason:
      en: "We cannot offer you a loan at this time."
      zh: "我们暂时无法为您提供贷款。"
  - code: RF_OVERDUE_ACCOUNTS
    action: review
    when: [{field: overdue_accounts, op: ">=", value: 3}]
    on_missing: pass
    reason:
      en: "Several overdue accounts on your credit report need a manual review."
      zh: "您的征信报告中有多个逾期账户，需要人工审核。"
"""


def default_rules(fields: Iterable[str]) -> RuleSet:
    """The example rules (``DEFAULT_RULES``), checked against ``fields``."""
    return parse_rules(DEFAULT_RULES, "<default rules>", fields)


def rules_path(settings) -> Path:
    """Where the service's rules file lives: RISK_HOME/service/rules.yaml."""
    return Path(settings.home) / "service" / "rules.yaml"


def ensure_rules(path: Path) -> bool:
    """Write the example rules to ``path`` when there is no rules file yet (True if so)."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(DEFAULT_RULES, encoding="utf-8")
    return True
