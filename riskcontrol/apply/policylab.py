"""Policy lab, Spark side: the historical applications a policy backtest replays.

``backtest_history`` turns ``gold.application_features`` into the frame
``backtest.replay`` reads: every application decided in a window of months, scored by
the active policy's model and by the proposed one's, with what the lender knows of its
outcome. An approved application carries its label (1 bad, 0 good) once the label has
matured and is not indeterminate; a rejected one has none, and is what reject
inference is for; an approved one without a label (immature, indeterminate, no
schedule) is counted in the decisions but enters no rate.

The frame is collected to the driver: one row per decided application of the window,
a few numbers each (a year of a million-customer book is about a million rows).
"""

from __future__ import annotations

import dataclasses
import html
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

import pandas as pd
import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from riskcontrol.apply import backtest_store, backtest_view, report, scoring, warning
from riskcontrol.apply.backtest import BacktestResult, Policy, guard, replay
from riskcontrol.apply.pipeline import Progress, _quiet
from riskcontrol.apply.riskcost import CostModel
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import GOLD_APPLICATION_FEATURES, GOLD_POLICY_BACKTESTS
from riskcontrol.core.config import Settings
from riskcontrol.core.runs import Run
from riskcontrol.modeling import tracking
from riskcontrol.modeling.training import training_split

DECIDED = ("approved", "rejected")
# In a policy's rules: the decision service's reject rules (a policy file without
# ``rules`` means them; ``rules: []`` means none).
SERVICE_RULES = "@service"
RULE_PREFIX = "rule__"  # a rule's field in the history frame, apart from its own columns
# A field of the service's rules and the column of gold.application_features holding it.
RULE_FIELD_COLUMNS = {"product": "purpose"}
OUTCOME_STATUSES = ("good", "bad")  # label statuses that are an outcome
SEGMENTS = ("channel", "province", "product", "score_band")


class Scorer(Protocol):
    """What scores a frame of application features: a fitted Spark ML pipeline with a
    ``pd`` output column (a registered model version, the champion)."""

    def transform(self, df: DataFrame) -> DataFrame: ...


def _pd(model: Scorer, features: DataFrame, name: str) -> DataFrame:
    return model.transform(features).select("application_id", F.col("pd").alias(name))


def backtest_history(
    features: DataFrame,
    active: Scorer,
    proposed: Scorer,
    months: str,
    rule_columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The decided applications of ``months`` ("first..last", application months), one
    row each, with the columns ``backtest.replay`` reads: ``pd_active`` and
    ``pd_proposed`` (each model's PD), ``exposure`` (the requested amount: what the
    proposed policy would lend a swap-in), ``historical_decision``, ``bad`` (the label
    where an approved application's outcome is known, else missing), and the segments
    ``channel``, ``province``, ``product`` (the loan purpose) and ``score_band`` (the
    proposed model's risk band). ``rule_columns`` maps a field the replayed rules read to
    its column of the features; each comes along as ``rule__<field>``."""
    window = warning.through_the_door(features, months).where(F.col("status").isin(*DECIDED))
    outcome = (F.col("status") == "approved") & F.col("label_status").isin(*OUTCOME_STATUSES)
    rows = (
        window.select(
            "application_id",
            "application_month",
            "channel",
            "province",
            F.col("purpose").alias("product"),
            F.col("requested_amount").alias("exposure"),
            F.col("status").alias("historical_decision"),
            F.when(outcome, F.col("label").cast("double")).alias("bad"),
            *[F.col(c).alias(f"{RULE_PREFIX}{f}") for f, c in (rule_columns or {}).items()],
        )
        .join(_pd(active, window, "pd_active"), "application_id")
        .join(_pd(proposed, window, "pd_proposed"), "application_id")
        .withColumn("score_band", scoring.risk_band(F.col("pd_proposed")))
    )
    frame = rows.toPandas()
    if frame.empty:
        raise ValueError(
            f"no application was approved or rejected in {months}: choose a window of "
            "months the book has decided applications in (`riskctl tables` shows "
            "gold.application_features)"
        )
    return frame.sort_values("application_id", kind="stable").reset_index(drop=True)


# --- the proposal and the models -----------------------------------------------------------
ALIASES = ("champion", "challenger")


def model_reference(text: str) -> tuple[str, str]:
    """A policy's ``model``: an alias of the registered model (``champion``,
    ``challenger``) as ("alias", name), or a version (``5``, ``v5``) as ("version",
    "5")."""
    ref = str(text).strip()
    if ref.lower() in ALIASES:
        return "alias", ref.lower()
    number = ref[1:] if ref[:1] in ("v", "V") else ref
    if number.isdigit() and int(number) > 0:
        return "version", str(int(number))
    raise ValueError(
        f"a policy's model must name a version of the registered model (5 or v5) or one "
        f"of its aliases ({', '.join(ALIASES)}); got {text!r}"
    )


def load_model(settings: Settings, reference: str) -> Scorer:
    """The registered model version or alias ``reference`` names, ready to score."""
    kind, value = model_reference(reference)
    if kind == "alias":
        return tracking.load_alias(settings, value).model
    return tracking.load_version(settings, value)


def load_policy(path: Path) -> Policy:
    """A proposed policy from a YAML (or JSON) file: ``version``, ``model`` (a version or
    an alias of the registered model), ``approve_below_pd``, ``reject_from_pd``, and
    optionally ``rules`` and ``overrides`` (``backtest.Policy.from_dict``)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no policy file at {path}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not YAML or JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{path} must hold one mapping (version, model, approve_below_pd, "
            f"reject_from_pd, ...), not {type(data).__name__}"
        )
    try:
        if "rules" not in data:  # as today: the service's reject rules
            data = {**data, "rules": [SERVICE_RULES]}
        policy = Policy.from_dict(data)
        model_reference(policy.model)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return policy


_NO_RULES = SimpleNamespace(version="none", source="no rule set given", rules=())


class Rules(Protocol):
    """A rule set as the decision service holds it (``riskcontrol.serve.rules.RuleSet``,
    handed in by the caller: the apply tier does not import the service): ``version``,
    ``source`` and ``rules``, each with ``code``, ``action``, ``when`` (conditions with a
    ``field``) and ``fires(values)``."""

    version: str
    source: str
    rules: Sequence[Any]


def reject_codes(rules: Rules) -> tuple[str, ...]:
    """The codes of the rules of ``rules`` whose action is reject, in their order."""
    return tuple(r.code for r in rules.rules if r.action == "reject")


def active_policy(spark: SparkSession, settings: Settings, rules: Rules | None = None) -> Policy:
    """What decides today: the active cut-off policy (``riskctl cutoff``, else the
    configured thresholds) on the champion model, with the reject rules of ``rules`` (the
    service's)."""
    cut = scoring.active_policy(spark, settings)
    codes = reject_codes(rules) if rules else ()
    return Policy(
        f"cutoff {cut.version}", "champion", cut.approve_below_pd, cut.reject_from_pd, codes
    )


def with_service_rules(policy: Policy, service: Sequence[str]) -> Policy:
    """``policy`` with ``SERVICE_RULES`` in its rules replaced by the ``service`` codes."""
    if SERVICE_RULES not in policy.rules:
        return policy
    expanded: list[str] = []
    for code in policy.rules:
        expanded.extend(service if code == SERVICE_RULES else (code,))
    return dataclasses.replace(policy, rules=tuple(dict.fromkeys(expanded)))


def replay_rules(
    history: pd.DataFrame, rules: Rules, codes: Sequence[str]
) -> tuple[list[tuple[str, ...]], list[str]]:
    """The ``codes`` of ``rules`` that fire on each row of ``history`` (a rule's field
    ``f`` in its column ``rule__f``), and notes. A rule fires when its conditions hold, or
    when a field is unknown and its ``on_missing`` is reject, as in the service. A rule
    reading a field the history lacks (known only when the service decides: public-record
    hits, velocity, lists) is not replayed, and a note says so; a code the rule set does not
    define is refused."""
    by_code = {r.code: r for r in rules.rules}
    unknown = [c for c in codes if c not in by_code]
    if unknown:
        raise ValueError(
            f"no rule {', '.join(unknown)} in the service's rules ({rules.source}, version "
            f"{rules.version}): name rules of that file ({', '.join(by_code)})"
        )
    have = {c[len(RULE_PREFIX) :] for c in history.columns if c.startswith(RULE_PREFIX)}
    replayed, notes = [], []
    for code in codes:
        fields = {c.field for c in by_code[code].when}
        if fields <= have:
            replayed.append(by_code[code])
        else:
            notes.append(
                f"rule {code} not replayed: the history has no {', '.join(sorted(fields - have))}"
                " (known only when the service decides, or not in gold.application_features); "
                "it rejects no row here"
            )
    values = history[[f"{RULE_PREFIX}{f}" for f in sorted(have)]]
    values = values.rename(columns=lambda c: c[len(RULE_PREFIX) :]).astype(object)
    values = values.where(values.notna(), None)
    fired = []
    # (a frame without columns gives no records, whatever its length)
    for row in values.to_dict("records") if have else [{}] * len(history):
        fired.append(tuple(rule.code for rule in replayed if rule.fires(row)))
    return fired, notes


# --- the backtest --------------------------------------------------------------------------
@dataclass
class BacktestRun:
    result: BacktestResult
    flags: list[str]
    window: str
    page: Path
    backtest_id: str
    rows_written: int


def backtest_page(result: BacktestResult, flags: list[str], window: str) -> str:
    """The backtest as one HTML document in the risk report's style."""
    plots = backtest_view.plot_data_uris(result, ("channel", "score_band"))
    title = f"Policy backtest: {result.proposed.version} against {result.active.version}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{report.CSS}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="meta">applications decided in '
        f"{html.escape(window)}</p>{backtest_view.backtest_section(result, flags, plots)}"
        "</body></html>\n"
    )


def _file_name(version: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in version)[:80] or "proposed"


def run_backtest(
    run: Run,
    proposed: Policy,
    window: str | None = None,
    max_approval_shift: float = 0.05,
    max_bad_rate_shift: float = 0.01,
    progress: Progress = _quiet,
    rules: Rules | None = None,
) -> BacktestRun:
    """Replay ``proposed`` and the active policy on the applications decided in
    ``window`` (default: the out-of-time months, the latest with matured outcomes),
    guard the shift, write the page to the reports folder and the figures to
    gold.policy_backtests. ``rules``: the decision service's rule set (`riskctl` hands in
    the service's), whose reject rules the active policy carries and are replayed where
    the history has their fields; without it no rule rejects."""
    spark, settings = run.spark, run.settings
    window = window or training_split(spark, settings).windows["oot"]
    rules = rules or _NO_RULES
    active = active_policy(spark, settings, rules)
    proposed = with_service_rules(proposed, active.rules)
    progress(
        f"policy: backtesting {proposed.version} ({proposed.model}) against the active "
        f"{active.version} (champion) on the applications decided in {window}"
    )
    features = lakehouse.read(spark, GOLD_APPLICATION_FEATURES, settings)
    codes = tuple(dict.fromkeys((*active.rules, *proposed.rules)))
    fields = sorted({c.field for r in rules.rules if r.code in codes for c in r.when})
    columns = {f: RULE_FIELD_COLUMNS.get(f, f) for f in fields}
    history = backtest_history(
        features,
        load_model(settings, active.model),
        load_model(settings, proposed.model),
        window,
        {f: c for f, c in columns.items() if c in features.columns},
    )
    fired, rule_notes = replay_rules(history, rules, codes)
    history["rules_fired"] = fired
    for note in rule_notes:
        progress(f"policy: {note}")
    result = replay(history, active, proposed, CostModel.from_settings(settings), segments=SEGMENTS)
    result = dataclasses.replace(result, notes=(*result.notes, *rule_notes))
    flags = guard(result, max_approval_shift, max_bad_rate_shift)
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    page = settings.reports_dir / f"policy_backtest_{_file_name(proposed.version)}.html"
    page.write_text(backtest_page(result, flags, window), encoding="utf-8")
    backtest_id = uuid.uuid4().hex[:16]
    written = backtest_store.write(
        spark,
        settings,
        backtest_store.records(
            result,
            flags,
            backtest_id=backtest_id,
            window=window,
            created_at=datetime.now(UTC).replace(tzinfo=None),
        ),
    )
    progress(f"policy: backtest {backtest_id} written to {GOLD_POLICY_BACKTESTS.full_name}")
    return BacktestRun(result, flags, window, page, backtest_id, written)


# --- activation of an approved policy ----------------------------------------------------
def activatable(policy: Policy, service: Sequence[str]) -> None:
    """Refuse a policy the decision service and batch scoring cannot apply as it stands:
    they apply one model and one cut-off (gold.cutoff_policy); their rules are the
    service's rule file (``service``: its reject rules), changed by a rule-set proposal;
    per-segment thresholds are not applied yet."""
    model_reference(policy.model)
    if policy.overrides:
        raise ValueError(
            f"policy {policy.version} has segment overrides, which the decision service and "
            "batch scoring do not apply yet (they apply one cut-off): backtest it without "
            "overrides to propose it"
        )
    rules = with_service_rules(policy, service).rules
    if set(rules) != set(service):
        added, dropped = sorted(set(rules) - set(service)), sorted(set(service) - set(rules))
        change = "; ".join(
            f"{what} {', '.join(codes)}"
            for what, codes in (("adds", added), ("drops", dropped))
            if codes
        )
        raise ValueError(
            f"policy {policy.version} changes the service's reject rules ({change}): rules "
            "change through a rule-set proposal; backtest the model and cut-off with the "
            "service's rules (leave out `rules:`) to propose them"
        )


def activate(
    spark: SparkSession,
    settings: Settings,
    policy: Policy,
    service: Sequence[str],
    population: str,
    figures: dict | None = None,
) -> str:
    """Make an approved ``policy`` the one that decides: its model becomes the champion
    (when it is another version) and its thresholds the active gold.cutoff_policy
    version, judged on ``figures`` from ``population``. If the cut-off cannot be written
    the champion alias is moved back. Returns what it did, in words."""
    activatable(policy, service)
    kind, value = model_reference(policy.model)
    champion = tracking.alias_version(settings, "champion")
    target = value if kind == "version" else tracking.alias_version(settings, value)
    if target is None:
        raise ValueError(
            f"no registered model version holds the alias {value!r}: name a version "
            "(`riskctl models` lists them)"
        )
    moved = target != champion
    if moved:
        tracking.make_champion(settings, target, f"policy {policy.version}: {population}")
    try:
        version = scoring.activate_cutoff(
            spark,
            settings,
            policy.approve_below_pd,
            policy.reject_from_pd,
            population=f"policy {policy.version}: {population}",
            figures=figures,
            model_version=target,
        )
    except Exception:
        if moved and champion is not None:
            tracking.make_champion(settings, champion, f"policy {policy.version} not activated")
        raise
    done = f"active as gold.cutoff_policy v{version} on model v{target}"
    if moved:
        done += f", now the champion (was {'v' + champion if champion else 'none'})"
    return done
