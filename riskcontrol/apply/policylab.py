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

import html
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

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
OUTCOME_STATUSES = ("good", "bad")  # label statuses that are an outcome
SEGMENTS = ("channel", "province", "product", "score_band")


class Scorer(Protocol):
    """What scores a frame of application features: a fitted Spark ML pipeline with a
    ``pd`` output column (a registered model version, the champion)."""

    def transform(self, df: DataFrame) -> DataFrame: ...


def _pd(model: Scorer, features: DataFrame, name: str) -> DataFrame:
    return model.transform(features).select("application_id", F.col("pd").alias(name))


def backtest_history(
    features: DataFrame, active: Scorer, proposed: Scorer, months: str
) -> pd.DataFrame:
    """The decided applications of ``months`` ("first..last", application months), one
    row each, with the columns ``backtest.replay`` reads: ``pd_active`` and
    ``pd_proposed`` (each model's PD), ``exposure`` (the requested amount: what the
    proposed policy would lend a swap-in), ``historical_decision``, ``bad`` (the label
    where an approved application's outcome is known, else missing), and the segments
    ``channel``, ``province``, ``product`` (the loan purpose) and ``score_band`` (the
    proposed model's risk band)."""
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
        policy = Policy.from_dict(data)
        model_reference(policy.model)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return policy


def active_policy(spark: SparkSession, settings: Settings) -> Policy:
    """What decides today: the active cut-off policy (``riskctl cutoff``, else the
    configured thresholds) on the champion model."""
    cut = scoring.active_policy(spark, settings)
    return Policy(f"cutoff {cut.version}", "champion", cut.approve_below_pd, cut.reject_from_pd)


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
) -> BacktestRun:
    """Replay ``proposed`` and the active policy on the applications decided in
    ``window`` (default: the out-of-time months, the latest with matured outcomes),
    guard the shift, and write the page to the reports folder."""
    spark, settings = run.spark, run.settings
    window = window or training_split(spark, settings).windows["oot"]
    active = active_policy(spark, settings)
    progress(
        f"policy: backtesting {proposed.version} ({proposed.model}) against the active "
        f"{active.version} (champion) on the applications decided in {window}"
    )
    features = lakehouse.read(spark, GOLD_APPLICATION_FEATURES, settings)
    history = backtest_history(
        features,
        load_model(settings, active.model),
        load_model(settings, proposed.model),
        window,
    )
    result = replay(history, active, proposed, CostModel.from_settings(settings), segments=SEGMENTS)
    flags = guard(result, max_approval_shift, max_bad_rate_shift)
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    page = settings.reports_dir / f"policy_backtest_{_file_name(proposed.version)}.html"
    page.write_text(backtest_page(result, flags, window), encoding="utf-8")
    backtest_id = uuid.uuid4().hex[:16]
    written = write_backtest(
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


def write_backtest(spark: SparkSession, settings: Settings, rows: pd.DataFrame) -> int:
    """Append one backtest's rows (``backtest_store.records``) to gold.policy_backtests;
    returns the rows the commit wrote."""
    frame = rows.astype(object).where(rows.notna(), None)

    def plain(value):  # Spark takes a datetime, not a pandas Timestamp
        return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value

    df = spark.createDataFrame(
        [tuple(map(plain, r)) for r in frame.itertuples(index=False)],
        GOLD_POLICY_BACKTESTS.schema,
    )
    tag = f"policy-backtest-{rows['backtest_id'].iloc[0]}"
    return lakehouse.append(df, GOLD_POLICY_BACKTESTS, settings, tag)


def backtests(spark: SparkSession, settings: Settings, limit: int = 20) -> list[dict]:
    """The latest ``limit`` backtests of gold.policy_backtests, newest first, each as
    ``backtest_store.summary`` gives it; none when the table does not exist yet."""
    if not lakehouse.exists(spark, GOLD_POLICY_BACKTESTS, settings):
        return []
    table = lakehouse.read(spark, GOLD_POLICY_BACKTESTS, settings)
    ids = [
        r["backtest_id"]
        for r in table.groupBy("backtest_id")
        .agg(F.max("created_at").alias("at"))
        .orderBy(F.desc("at"), F.desc("backtest_id"))
        .limit(limit)
        .collect()
    ]
    if not ids:
        return []
    wanted = table.where(
        F.col("backtest_id").isin(*ids) & F.col("section").isin("policy", "swap", "flag", "note")
    ).toPandas()
    found = {i: backtest_store.summary(g) for i, g in wanted.groupby("backtest_id")}
    return [found[i] for i in ids if i in found]


# --- activation of an approved policy ----------------------------------------------------
def activatable(policy: Policy) -> None:
    """Refuse a policy the decision service and batch scoring cannot apply as it stands:
    they apply one model and one cut-off (gold.cutoff_policy); rules live in the service's
    rule file (proposed as a rule set), and per-segment thresholds are not applied yet."""
    model_reference(policy.model)
    if policy.overrides:
        raise ValueError(
            f"policy {policy.version} has segment overrides, which the decision service and "
            "batch scoring do not apply yet (they apply one cut-off): backtest it without "
            "overrides to propose it"
        )
    if policy.rules:
        raise ValueError(
            f"policy {policy.version} names rules ({', '.join(policy.rules)}): rules are "
            "activated as the service's rule set; propose them there, and backtest the "
            "model and cut-off without them"
        )


def activate(
    spark: SparkSession,
    settings: Settings,
    policy: Policy,
    population: str,
    figures: dict | None = None,
) -> str:
    """Make an approved ``policy`` the one that decides: its model becomes the champion
    (when it is another version) and its thresholds the active gold.cutoff_policy
    version, judged on ``figures`` from ``population``. If the cut-off cannot be written
    the champion alias is moved back. Returns what it did, in words."""
    activatable(policy)
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
