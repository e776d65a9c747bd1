"""The risk report: one self-contained HTML page (and a PDF) a risk manager reads.

``collect`` gathers the figures from the gold tables and the champion's metrics from
MLflow into a ``ReportData``; ``render_html`` turns it into HTML with inline CSS and the
charts embedded as base64 PNG data URIs, so the file opens anywhere, offline, and nothing
is fetched from the network; ``write_report`` writes it and prints it to PDF with headless
Chromium when one is installed. Sections: portfolio summary, score distribution, the
severity-quadrant matrix, the risk-cost cut-off curve and the chosen point, early-warning
indicator trends against their thresholds with the latest breaches, open alerts, and
model performance and drift. Every text is escaped; an empty section says so.
"""

from __future__ import annotations

import base64
import html
import io
import shutil
import subprocess
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from riskcontrol.apply import riskcost
from riskcontrol.apply.alerts import CLOSED, QUADRANT_PRIORITY
from riskcontrol.apply.formats import MISSING, absent, count, money, num, pct
from riskcontrol.apply.scoring import QUADRANT_STRATEGY

# Trends are drawn for the whole book (segment_type OVERALL), not per segment.
from riskcontrol.apply.warning import INDICATOR_COLUMNS, OVERALL, SIGNED
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    GOLD_ALERTS,
    GOLD_CUTOFF_POLICY,
    GOLD_DECISION_LOG,
    GOLD_LOAN_BOOK_RISK,
    GOLD_SCORED_APPLICATIONS,
    GOLD_WARNING_INDICATORS,
    Table,
)
from riskcontrol.core.config import Settings
from riskcontrol.modeling import tracking
from riskcontrol.modeling.models import CHAMPION
from riskcontrol.modeling.scale import ScoreScale

DPI = 100
QUADRANTS = ("A", "B", "C", "D")
DECISIONS = ("approve", "review", "reject")
STATUS_COLORS = {"warning": "tab:orange", "critical": "tab:red"}
BREACHES = ("critical", "warning")  # most severe first
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# The command that writes each table, for the error when it is missing.
BUILT_BY = {
    GOLD_LOAN_BOOK_RISK.full_name: "riskctl book",
    GOLD_SCORED_APPLICATIONS.full_name: "riskctl score",
    GOLD_CUTOFF_POLICY.full_name: "riskctl cutoff",
    GOLD_WARNING_INDICATORS.full_name: "riskctl warn",
    GOLD_ALERTS.full_name: "riskctl warn",
}
ALERT_COLUMNS = (
    "alert_id",
    "indicator",
    "segment_type",
    "segment",
    "severity",
    "quadrant",
    "stage",
    "first_breach_date",
    "last_breach_date",
    "value",
    "threshold",
    "exposure",
)


@dataclass
class ReportData:
    """Everything the report shows, already aggregated (small, pandas and Python only)."""

    as_of: date
    generated_at: datetime
    # active_loans, exposure (EAD), expected_loss, el_rate, dpd30_rate, applications_scored,
    # approve, review, reject, approval_rate
    portfolio: dict[str, float | int]
    application_scores: list[int]  # 300-900 scores of the scored applications
    book_scores: list[int]  # 300-900 scores of the active loans
    quadrants: pd.DataFrame  # quadrant (A-D), strategy, loans, exposure, expected_loss
    cutoff: pd.DataFrame | None  # gold.cutoff_policy rows of the active version
    indicators: pd.DataFrame  # gold.warning_indicators rows (INDICATOR_COLUMNS, threshold_source)
    alerts: pd.DataFrame  # open gold.alerts rows (ALERT_COLUMNS)
    model: dict[str, Any]  # name, version, kind, oot_auc, oot_ks, oot_gini, psi, trained_at
    auc_by_month: pd.DataFrame | None  # month, auc
    # policy_version, cutoff_pd, approve_below_pd, risk_tolerance; optionally source,
    # quadrant_pd_threshold, quadrant_impact_threshold, lgd
    policy: dict[str, Any]
    scale: ScoreScale = ScoreScale()  # the settings' score scale
    # gold.decision_log (the real-time service), when it exists: decisions, approve,
    # review, reject, approval_rate, p50_ms, p99_ms, challenger_agreement; and the rule
    # hit counts (code, hits, rate)
    service: dict[str, Any] | None = None
    rule_hits: pd.DataFrame | None = None
    # expected loss per IFRS 9 stage (stage 1-3 and total: loans, ead, expected_loss,
    # coverage), None for a snapshot without stages
    stages: pd.DataFrame | None = None
    # the latest policy backtest (gold.policy_backtests, ``backtest_store.summary``), if any
    backtest: dict[str, Any] | None = None


# --- collect ------------------------------------------------------------------------------
def _table(spark: SparkSession, table: Table, settings: Settings) -> DataFrame:
    if not lakehouse.exists(spark, table, settings):
        raise FileNotFoundError(
            f"{table.full_name} does not exist at {table.path(settings)}: run "
            f"`{BUILT_BY[table.full_name]}` (or the whole pipeline, `riskctl run`) before "
            "`riskctl report`"
        )
    return lakehouse.read(spark, table, settings)


def _expand(counts: pd.DataFrame) -> list[int]:
    """Scores from a (score, n) frame, each repeated n times, in score order."""
    counts = counts.dropna(subset=["score"]).sort_values("score")
    return np.repeat(counts["score"].to_numpy(int), counts["n"].to_numpy(int)).tolist()


def _loan_book(
    spark: SparkSession, settings: Settings, as_of: date | None
) -> tuple[date, pd.DataFrame]:
    """The latest loan-book snapshot on or before ``as_of``, as counts, exposure, expected
    loss and 30+ DPD loans per quadrant and score (one Spark action after the date)."""
    book = _table(spark, GOLD_LOAN_BOOK_RISK, settings)
    if as_of is not None:
        book = book.where(F.col("as_of_date") <= F.lit(as_of))
    latest = book.agg(F.max("as_of_date")).first()[0]
    if latest is None:
        when = f" on or before {as_of}" if as_of else ""
        raise ValueError(
            f"{GOLD_LOAN_BOOK_RISK.full_name} has no snapshot{when}: run "
            f"`{BUILT_BY[GOLD_LOAN_BOOK_RISK.full_name]}` for that date"
        )
    # a snapshot written before stages existed has none: its stage table is left out
    stage = F.col("stage") if "stage" in book.columns else F.lit(None).cast("int")
    cells = (
        book.where(F.col("as_of_date") == F.lit(latest))
        .groupBy("quadrant", "score", stage.alias("stage"))
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum("ead").alias("exposure"),
            F.sum("expected_loss").alias("expected_loss"),
            F.sum((F.col("dpd") >= 30).cast("int")).alias("dpd30"),
        )
        .toPandas()
    )
    return latest, cells


STAGE_MEANING = {
    "1": "performing: PD over 12 months (or the life left)",
    "2": "30+ DPD (backstop) or a significant increase in risk: lifetime PD",
    "3": "90+ DPD, credit-impaired: PD 1",
    "total": "",
}


def _stage_table(cells: pd.DataFrame) -> pd.DataFrame | None:
    """Loans, EAD, expected loss and coverage per IFRS 9 stage and in total; None when the
    snapshot has no stages (written before they existed)."""
    if cells["stage"].isna().all():
        return None
    sums = cells.groupby("stage")[["n", "exposure", "expected_loss"]].sum()
    sums = sums.reindex([1, 2, 3], fill_value=0)
    sums.loc["total"] = sums.sum()
    ead = sums["exposure"].astype(float).to_numpy()
    el = sums["expected_loss"].astype(float).to_numpy()
    return pd.DataFrame(
        {
            "stage": [str(i) for i in sums.index],
            "loans": sums["n"].astype(int).to_numpy(),
            "ead": ead,
            "expected_loss": el,
            "coverage": np.divide(el, ead, out=np.zeros(len(el)), where=ead > 0),
        }
    )


def _quadrant_table(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per quadrant A-D (zeros where the book has none) with its strategy."""
    sums = cells.groupby("quadrant")[["n", "exposure", "expected_loss"]].sum()
    sums = sums.reindex(list(QUADRANTS), fill_value=0)
    return pd.DataFrame(
        {
            "quadrant": list(QUADRANTS),
            "strategy": [QUADRANT_STRATEGY[q] for q in QUADRANTS],
            "loans": sums["n"].astype(int).to_numpy(),
            "exposure": sums["exposure"].astype(float).to_numpy(),
            "expected_loss": sums["expected_loss"].astype(float).to_numpy(),
        }
    )


def _active_cutoff(spark: SparkSession, settings: Settings) -> pd.DataFrame | None:
    """The rows of the active gold.cutoff_policy version by cut-off, None before any."""
    if not lakehouse.exists(spark, GOLD_CUTOFF_POLICY, settings):
        return None
    rows = (
        lakehouse.read(spark, GOLD_CUTOFF_POLICY, settings)
        .where(F.col("status") == "active")
        .toPandas()
    )
    if rows.empty:
        return None
    rows = rows[rows["policy_version"] == rows["policy_version"].max()]
    return rows.sort_values("cutoff_pd").reset_index(drop=True)


def chosen_point(cutoff: pd.DataFrame | None) -> pd.Series | None:
    """The chosen row of a cut-off sweep (else its optimal row), None if it has neither."""
    if cutoff is None:
        return None
    for flag in ("chosen", "optimal"):
        picked = cutoff[cutoff[flag].fillna(False).astype(bool)]
        if not picked.empty:
            return picked.iloc[0]
    return None


def _policy(cutoff: pd.DataFrame | None, settings: Settings) -> dict[str, Any]:
    thresholds = {
        "quadrant_pd_threshold": settings.quadrant_pd_threshold,
        "quadrant_impact_threshold": settings.quadrant_impact_threshold,
        "lgd": settings.lgd,
    }
    row = chosen_point(cutoff)
    if row is None:
        return {
            "policy_version": None,
            "cutoff_pd": settings.reject_from_pd,
            "approve_below_pd": settings.approve_below_pd,
            "risk_tolerance": settings.risk_tolerance,
            "source": "configuration (no active cut-off policy)",
            **thresholds,
        }
    return {
        "policy_version": int(row["policy_version"]),
        "cutoff_pd": float(row["cutoff_pd"]),
        "approve_below_pd": float(row["approve_below_pd"]),
        "risk_tolerance": float(row["risk_tolerance"]),
        "source": GOLD_CUTOFF_POLICY.full_name,
        **thresholds,
    }


def _mlflow_store_absent(settings: Settings) -> bool:
    """A local SQLite tracking store that was never created: no model was ever trained
    (and reading it must not create it)."""
    uri = settings.mlflow_tracking_uri or ""
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()


def champion_metrics(settings: Settings) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """The champion's identity and out-of-time metrics from the registry, and its AUC by
    month from the run's evaluation artifacts; ``({}, None)`` when there is no champion."""
    if _mlflow_store_absent(settings):
        return {}, None

    champion = next((v for v in tracking.list_versions(settings) if CHAMPION in v["aliases"]), None)
    if champion is None:
        return {}, None
    created = champion.get("created")
    model = {
        "name": settings.registered_model,
        "version": str(champion["version"]),
        "kind": None if champion.get("kind") in (None, "?") else champion["kind"],
        "oot_auc": champion.get("oot_auc"),
        "oot_ks": champion.get("oot_ks"),
        "oot_gini": champion.get("oot_gini"),
        "psi": champion.get("psi_train_oot"),
        "trained_at": datetime.fromtimestamp(created / 1000, UTC) if created else None,
    }
    return model, _auc_by_month(settings, champion.get("run_id"))


def _auc_by_month(settings: Settings, run_id: str | None) -> pd.DataFrame | None:
    """evaluation/auc_by_month.json of the run (``metrics.auc_by_group``) as month, auc."""
    if not run_id:
        return None
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    tracking.client(settings)  # points mlflow at the project's store
    try:
        by_month = mlflow.artifacts.load_dict(f"runs:/{run_id}/evaluation/auc_by_month.json")
    except (MlflowException, OSError):
        return None
    if not by_month:
        return None
    return pd.DataFrame(
        {"month": list(by_month), "auc": [g.get("auc") for g in by_month.values()]}
    ).astype({"auc": float})


def collect(spark: SparkSession, settings: Settings, as_of: date | None = None) -> ReportData:
    """Gather the report's figures. The report is as of the latest loan-book snapshot on or
    before ``as_of`` (default: the latest); indicators cover the configured look-back up
    to that day; alerts are those still open (not at ``feedback``); scored applications are
    the whole scored queue. The loan book, scored applications and indicators must exist;
    no cut-off policy, no alerts table (no breach yet) or no champion are reported as such.
    """
    as_of, cells = _loan_book(spark, settings, as_of)
    quadrants = _quadrant_table(cells)
    loans = int(quadrants["loans"].sum())
    exposure = float(quadrants["exposure"].sum())
    expected_loss = float(quadrants["expected_loss"].sum())

    apps = (
        _table(spark, GOLD_SCORED_APPLICATIONS, settings)
        .groupBy("decision", "score")
        .agg(F.count(F.lit(1)).alias("n"))
        .toPandas()
    )
    by_decision = apps.groupby("decision")["n"].sum()
    scored = int(apps["n"].sum())

    indicators_table = _table(spark, GOLD_WARNING_INDICATORS, settings)
    since = as_of - timedelta(days=settings.warning_lookback_days - 1)
    source = (  # a table written before thresholds said where they came from has none
        F.col("threshold_source")
        if "threshold_source" in indicators_table.columns
        else F.lit(None).cast("string")
    )
    indicators = (
        indicators_table.where(F.col("as_of_date").between(F.lit(since), F.lit(as_of)))
        .select(*INDICATOR_COLUMNS, source.alias("threshold_source"))
        .toPandas()
    )
    if lakehouse.exists(spark, GOLD_ALERTS, settings):
        alerts = (
            lakehouse.read(spark, GOLD_ALERTS, settings)
            .where(F.col("stage") != CLOSED)
            .select(*ALERT_COLUMNS)
            .toPandas()
        )
    else:
        alerts = pd.DataFrame(columns=list(ALERT_COLUMNS))

    cutoff = _active_cutoff(spark, settings)
    model, auc_by_month = champion_metrics(settings)
    service, rule_hits = _service(spark, settings, datetime.now(UTC).date())
    portfolio: dict[str, float | int] = {
        "active_loans": loans,
        "exposure": exposure,
        "expected_loss": expected_loss,
        "el_rate": expected_loss / exposure if exposure else 0.0,
        "dpd30_rate": int(cells["dpd30"].sum()) / loans if loans else 0.0,
        "applications_scored": scored,
        **{d: int(by_decision.get(d, 0)) for d in DECISIONS},
        # As riskcost: a reviewed application is approved after its review.
        "approval_rate": (
            int(by_decision.get("approve", 0) + by_decision.get("review", 0)) / scored
            if scored
            else 0.0
        ),
    }
    return ReportData(
        scale=ScoreScale.from_settings(settings),
        as_of=as_of,
        generated_at=datetime.now(UTC),
        portfolio=portfolio,
        application_scores=_expand(apps),
        book_scores=_expand(cells.groupby("score", as_index=False)["n"].sum()),
        quadrants=quadrants,
        stages=_stage_table(cells),
        cutoff=cutoff,
        indicators=indicators,
        alerts=alerts,
        model=model,
        auc_by_month=auc_by_month,
        policy=_policy(cutoff, settings),
        service=service,
        rule_hits=rule_hits,
        backtest=latest_backtest(spark, settings),
    )


def latest_backtest(spark: SparkSession, settings: Settings) -> dict[str, Any] | None:
    """The most recent policy backtest of gold.policy_backtests as a summary, or None."""
    from riskcontrol.apply import backtest_store

    found = backtest_store.backtests(spark, settings, limit=1)
    return found[0] if found else None


SERVICE_DAYS = 30  # the real-time section covers the decisions of the last 30 days


def _service(
    spark: SparkSession, settings: Settings, as_of: date
) -> tuple[dict[str, Any] | None, pd.DataFrame | None]:
    """The real-time service's last ``SERVICE_DAYS`` days up to ``as_of`` (today: the
    service decides now, whatever day the book is reported as of), from
    gold.decision_log: outcomes, latency, champion/challenger agreement, and how often
    each policy rule fired."""
    if not lakehouse.exists(spark, GOLD_DECISION_LOG, settings):
        return None, None
    since = as_of - timedelta(days=SERVICE_DAYS - 1)
    log = lakehouse.read(spark, GOLD_DECISION_LOG, settings).where(
        F.to_date("decided_at").between(F.lit(since), F.lit(as_of))
    )
    row = log.agg(
        F.count(F.lit(1)).alias("decisions"),
        *[F.sum((F.col("decision") == d).cast("int")).alias(d) for d in DECISIONS],
        F.percentile_approx("latency_ms", 0.5).alias("p50_ms"),
        F.percentile_approx("latency_ms", 0.99).alias("p99_ms"),
        F.sum(F.col("challenger_decision").isNotNull().cast("int")).alias("paired"),
        F.sum((F.col("challenger_decision") == F.col("champion_decision")).cast("int")).alias(
            "agree"
        ),
    ).first()
    n = int(row["decisions"])
    if n == 0:
        return {"decisions": 0, "since": since}, None
    summary = {d: int(row[d] or 0) for d in DECISIONS}
    paired = int(row["paired"] or 0)
    summary.update(
        decisions=n,
        since=since,
        approval_rate=summary["approve"] / n,
        p50_ms=row["p50_ms"],
        p99_ms=row["p99_ms"],
        challenger_agreement=int(row["agree"] or 0) / paired if paired else None,
    )
    hits = (
        log.select(F.explode("rules_fired").alias("code"))
        .groupBy("code")
        .agg(F.count(F.lit(1)).alias("hits"))
        .orderBy(F.desc("hits"), "code")
        .toPandas()
    )
    hits["rate"] = hits["hits"] / n
    return summary, hits


# --- formatting ---------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _day(value: Any) -> str:
    return MISSING if absent(value) else pd.Timestamp(value).date().isoformat()


# --- charts -------------------------------------------------------------------------------
def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_data_uri(fig: Figure) -> str:
    """The figure as a base64 PNG data URI (the figure is released afterwards)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(fig: Figure, alt: str) -> str:
    return f'<img class="chart" alt="{_e(alt)}" src="{png_data_uri(fig)}">'


def score_histogram(
    application_scores: list[int], book_scores: list[int], scale: ScoreScale
) -> Figure:
    """Share of applications and of active loans per 20-point score band, overlaid."""
    fig = _figure(8.0, 3.6)
    ax = fig.add_subplot()
    edges = np.arange(scale.low, scale.high + 1, 20)
    for name, scores, color in (
        ("scored applications", application_scores, "tab:orange"),
        ("loan book", book_scores, "tab:blue"),
    ):
        values = np.asarray(scores, dtype=float)
        if len(values):
            weights = np.full(len(values), 1.0 / len(values))
            ax.hist(
                values,
                bins=edges,
                weights=weights,
                alpha=0.5,
                color=color,
                label=f"{name} (n = {len(values):,})",
            )
    ax.set(
        title="Score distribution",
        xlabel=f"score ({scale.low} = riskiest, {scale.high} = safest)",
        ylabel="share",
        xlim=(scale.low, scale.high),
    )
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def indicator_trends(overall: pd.DataFrame, columns: int = 3) -> Figure:
    """Small multiples: each indicator's overall series by day, its warning and critical
    thresholds as dashed lines (mirrored below zero for a signed indicator, which breaches
    on its absolute value), breached days marked."""
    from matplotlib.lines import Line2D

    names = sorted(overall["indicator"].unique())
    rows = -(-len(names) // columns)
    fig = _figure(10.0, 2.2 * rows + 0.4)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        series = overall[overall["indicator"] == name].sort_values("as_of_date")
        days = pd.to_datetime(series["as_of_date"]).to_numpy()
        ax.plot(days, series["value"].to_numpy(float), color="tab:blue", lw=1.2)
        signs = (1, -1) if name in SIGNED else (1,)
        for column, status in (
            ("warning_threshold", "warning"),
            ("critical_threshold", "critical"),
        ):
            limit = series[column].to_numpy(float)
            for sign in signs:
                ax.plot(
                    days, sign * limit, color=STATUS_COLORS[status], ls="--", lw=1, ds="steps-post"
                )
            hit = series[series["status"] == status]
            ax.scatter(
                pd.to_datetime(hit["as_of_date"]).to_numpy(),
                hit["value"].to_numpy(float),
                s=10,
                color=STATUS_COLORS[status],
                zorder=3,
            )
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        at = np.unique(np.linspace(0, len(days) - 1, min(len(days), 4)).round().astype(int))
        ax.set_xticks(days[at], labels=[pd.Timestamp(t).strftime("%d %b") for t in days[at]])
        ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    legend = [
        Line2D([], [], color="tab:blue", lw=1.2, label="value (whole book)"),
        Line2D([], [], color=STATUS_COLORS["warning"], ls="--", lw=1, label="warning threshold"),
        Line2D([], [], color=STATUS_COLORS["critical"], ls="--", lw=1, label="critical threshold"),
    ]
    fig.legend(handles=legend, loc="outside upper center", ncols=3, fontsize=8)
    return fig


def auc_by_month_chart(auc_by_month: pd.DataFrame) -> Figure:
    """Out-of-time AUC per application month; months without one (a single class) are
    skipped by the line but keep their place on the axis."""
    fig = _figure(8.0, 3.2)
    ax = fig.add_subplot()
    months = auc_by_month["month"].astype(str).tolist()
    auc = auc_by_month["auc"].to_numpy(float)
    known = np.flatnonzero(~np.isnan(auc))
    ax.plot(known, auc[known], marker="o", color="tab:red", label="AUC")
    ax.axhline(0.5, color="grey", ls="--", lw=1, label="random (0.5)")
    ax.set_xticks(range(len(months)), labels=months, rotation=45 if len(months) > 6 else 0)
    ax.set(title="AUC by application month", xlabel="month", ylabel="AUC", ylim=(0.45, 1.0))
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return fig


# --- HTML ---------------------------------------------------------------------------------
CSS = """
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #222; margin: 24px;
       font-size: 13px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; border-bottom: 2px solid #34495e; padding-bottom: 3px; }
.meta { color: #555; margin: 2px 0; }
section { margin-top: 18px; }
section + section { break-before: page; page-break-before: always; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #ccd; border-radius: 6px; padding: 8px 12px; min-width: 130px;
        background: #f7f9fc; }
.card .label { font-size: 11px; color: #555; }
.card .value { font-size: 19px; font-weight: bold; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #eef1f6; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr { break-inside: avoid; page-break-inside: avoid; }
img.chart { max-width: 100%; height: auto; display: block; margin: 6px 0; }
.matrix td { width: 45%; padding: 8px; }
.matrix th.axis { background: #fff; border: none; font-weight: normal; color: #555; }
.q-A { background: #e8f5e9; } .q-B { background: #fff8e1; }
.q-C { background: #fff3e0; } .q-D { background: #ffebee; }
.qname { font-weight: bold; font-size: 15px; }
.strategy { color: #444; font-style: italic; margin-top: 4px; }
.sev { color: #fff; padding: 1px 6px; border-radius: 3px; font-weight: bold; }
.sev-critical { background: #c62828; } .sev-warning { background: #e08e00; }
.empty { color: #666; font-style: italic; }
.flags { background: #ffebee; border: 1px solid #c62828; padding: 4px 10px; }
@page { size: A4 landscape; margin: 10mm; }
@media print { body { margin: 0; } }
"""


def _table_html(header: list[str], rows: list[list[str]], numeric: Collection[int] = ()) -> str:
    """A table from already escaped cells; columns in ``numeric`` are right-aligned."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    cell = '<td class="n">{}</td>', "<td>{}</td>"
    body = "".join(
        "<tr>" + "".join(cell[i not in numeric].format(c) for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _empty(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def _model_label(model: dict[str, Any]) -> str:
    if not model:
        return "no champion model"
    kind = f" ({model['kind']})" if model.get("kind") else ""
    return f"{model.get('name', 'model')} v{model.get('version', '?')}{kind}"


def _policy_label(policy: dict[str, Any]) -> str:
    if policy.get("policy_version") is None:
        return "none active (configured thresholds)"
    return f"v{policy['policy_version']}"


def _header(data: ReportData) -> str:
    generated = data.generated_at.strftime("%Y-%m-%d %H:%M %Z").strip()
    return (
        "<header>"
        f"<h1>Risk report as of {_e(data.as_of.isoformat())}</h1>"
        f'<p class="meta">Generated {_e(generated)}</p>'
        f'<p class="meta">Model: {_e(_model_label(data.model))} &middot; '
        f"Cut-off policy: {_e(_policy_label(data.policy))}</p>"
        "</header>"
    )


def _summary(data: ReportData) -> str:
    p, policy = data.portfolio, data.policy
    cards = [
        ("Active loans", count(p.get("active_loans"))),
        ("Exposure at default", money(p.get("exposure"))),
        ("Expected loss", money(p.get("expected_loss"))),
        ("Expected loss rate", pct(p.get("el_rate"))),
        ("30+ DPD rate (loans)", pct(p.get("dpd30_rate"))),
        ("Applications scored", count(p.get("applications_scored"))),
        ("Approve", count(p.get("approve"))),
        ("Review", count(p.get("review"))),
        ("Reject", count(p.get("reject"))),
        ("Approval rate (incl. review)", pct(p.get("approval_rate"))),
    ]
    html_cards = "".join(
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div></div>'
        for label, value in cards
    )
    rule = (
        f"Decisions: approve below PD {pct(policy.get('approve_below_pd'))}, reject from PD "
        f"{pct(policy.get('cutoff_pd'))}, review in between (source: "
        f"{policy.get('source', MISSING)})."
    )
    return _section(
        "summary", "Portfolio summary", f'<div class="cards">{html_cards}</div><p>{_e(rule)}</p>'
    )


def _distribution(data: ReportData) -> str:
    if not data.application_scores and not data.book_scores:
        return _section("scores", "Score distribution", _empty("no scores: nothing scored yet"))
    fig = score_histogram(data.application_scores, data.book_scores, data.scale)
    return _section(
        "scores", "Score distribution", _img(fig, "score distribution: applications vs book")
    )


def _quadrant_cell(row: pd.Series | None, quadrant: str) -> str:
    loans = row["loans"] if row is not None else 0
    exposure = row["exposure"] if row is not None else 0.0
    el = row["expected_loss"] if row is not None else 0.0
    strategy = QUADRANT_STRATEGY[quadrant] if row is None else row["strategy"]
    return (
        f'<td class="q-{quadrant}"><div class="qname">{_e(quadrant)}</div>'
        f"<div>Loans: <b>{_e(count(loans))}</b></div>"
        f"<div>Exposure: <b>{_e(money(exposure))}</b></div>"
        f"<div>Expected loss: <b>{_e(money(el))}</b></div>"
        f'<div class="strategy">{_e(strategy)}</div></td>'
    )


def _quadrant_matrix(data: ReportData) -> str:
    """2x2 grid: probability of default in rows (high on top), impact in columns."""
    by_q = {r["quadrant"]: r for _, r in data.quadrants.iterrows()}
    pd_t = data.policy.get("quadrant_pd_threshold")
    impact_t = data.policy.get("quadrant_impact_threshold")
    high_p = "High probability" + (f" (PD >= {pct(pd_t)})" if pd_t is not None else "")
    low_p = "Low probability" + (f" (PD < {pct(pd_t)})" if pd_t is not None else "")
    low_i = "Low impact" + (f" (EAD x LGD < {money(impact_t)})" if impact_t is not None else "")
    high_i = "High impact" + (f" (EAD x LGD >= {money(impact_t)})" if impact_t is not None else "")
    grid = (
        '<table class="matrix"><thead><tr><th class="axis"></th>'
        f"<th>{_e(low_i)}</th><th>{_e(high_i)}</th></tr></thead><tbody>"
        f"<tr><th>{_e(high_p)}</th>{_quadrant_cell(by_q.get('C'), 'C')}"
        f"{_quadrant_cell(by_q.get('D'), 'D')}</tr>"
        f"<tr><th>{_e(low_p)}</th>{_quadrant_cell(by_q.get('A'), 'A')}"
        f"{_quadrant_cell(by_q.get('B'), 'B')}</tr>"
        "</tbody></table>"
    )
    return _section("quadrants", "Severity quadrants (loan book)", grid)


def _stages(data: ReportData) -> str:
    """Expected loss by IFRS 9 stage: what the book provisions, and why."""
    if data.stages is None:
        return ""
    rows = [
        [
            _e(r.stage),
            _e(STAGE_MEANING.get(r.stage, "")),
            _e(count(r.loans)),
            _e(money(r.ead)),
            _e(money(r.expected_loss)),
            _e(pct(r.coverage)),
        ]
        for r in data.stages.itertuples()
    ]
    header = ["Stage", "", "Loans", "EAD", "Expected loss", "Coverage (EL / EAD)"]
    return _section("stages", "Expected loss by stage", _table_html(header, rows, {2, 3, 4, 5}))


def _area(row: pd.Series) -> str:
    return f"{int(row['area'])} {row.get('area_name') or ''}".strip()


# The chosen point's table: label and how to show it from the row.
CUTOFF_FIELDS = (
    ("Policy version", lambda r: str(int(r["policy_version"]))),
    ("Cut-off PD (reject from)", lambda r: pct(r["cutoff_pd"])),
    ("Approve below PD", lambda r: pct(r["approve_below_pd"])),
    ("Applications", lambda r: count(r["applications"])),
    ("Approved (incl. reviewed)", lambda r: count(r["approved"])),
    ("Reviewed", lambda r: count(r["reviewed"])),
    ("Rejected", lambda r: count(r["rejected"])),
    ("Approval rate", lambda r: pct(r["approval_rate"])),
    ("Bad rate of approvals", lambda r: pct(r["bad_rate"])),
    ("Control effect (losses avoided)", lambda r: money(r["control_effect"])),
    ("Control cost (good customers lost, reviews)", lambda r: money(r["control_cost"])),
    ("Net benefit", lambda r: money(r["net_benefit"])),
    ("Residual risk", lambda r: pct(r["residual_risk"])),
    ("Risk tolerance", lambda r: pct(r["risk_tolerance"])),
    ("Area", _area),
    ("Model", lambda r: f"{r['model_name']} v{r['model_version']}"),
)


def _cutoff(data: ReportData) -> str:
    title = "Cut-off: the risk-cost balance"
    if data.cutoff is None or data.cutoff.empty:
        return _section(
            "cutoff",
            title,
            _empty(
                "no active cut-off policy: decisions use the configured thresholds "
                "(run `riskctl cutoff` to sweep and activate one)"
            ),
        )

    chart = _img(riskcost.plot_balance(data.cutoff), "risk-cost balance of the approval cut-off")
    row = chosen_point(data.cutoff)
    if row is None:
        table = _empty("the active policy has no chosen or optimal point")
    else:
        rows = [[_e(label), _e(show(row))] for label, show in CUTOFF_FIELDS]
        table = "<h3>Chosen point</h3>" + _table_html(["", "value"], rows, numeric={1})
    return _section("cutoff", title, chart + table)


def _breach_rows(latest: pd.DataFrame) -> list[list[str]]:
    rank = {s: i for i, s in enumerate(BREACHES)}
    hits = latest[latest["status"].isin(BREACHES)].copy()
    hits["rank"] = hits["status"].map(rank)
    hits = hits.sort_values(["rank", "indicator", "segment_type", "segment"])
    return [
        [
            f'<span class="sev sev-{_e(r["status"])}">{_e(r["status"])}</span>',
            _e(r["indicator"]),
            _e(r["segment_type"]),
            _e(r["segment"]),
            _e(num(r["value"])),
            _e(num(r["warning_threshold"])),
            _e(num(r["critical_threshold"])),
            _e(r.get("threshold_source") or "not recorded"),
        ]
        for _, r in hits.iterrows()
    ]


def _indicators(data: ReportData) -> str:
    title = "Early-warning indicators"
    frame = data.indicators
    if frame is None or frame.empty:
        return _section("indicators", title, _empty("no indicators computed for this period"))
    parts = []
    overall = frame[frame["segment_type"] == OVERALL]
    if overall.empty:
        parts.append(_empty("no overall (whole-book) series to chart"))
    else:
        days = pd.to_datetime(overall["as_of_date"])
        caption = (
            f"Whole-book series, {days.min().date()} to {days.max().date()}: value (blue), "
            "warning (orange dashed) and critical (red dashed) thresholds; dots mark breaches."
        )
        parts.append(f"<p>{_e(caption)}</p>")
        parts.append(_img(indicator_trends(overall), "indicator trends against thresholds"))
    last_day = pd.to_datetime(frame["as_of_date"]).max()
    latest = frame[pd.to_datetime(frame["as_of_date"]) == last_day]
    rows = _breach_rows(latest)
    parts.append(f"<h3>Breaches on {_e(last_day.date().isoformat())}</h3>")
    if rows:
        header = [
            "Status",
            "Indicator",
            "Segment type",
            "Segment",
            "Value",
            "Warning",
            "Critical",
            "Threshold source",
        ]
        parts.append(_table_html(header, rows, numeric={4, 5, 6}))
    else:
        parts.append(_empty("no indicator breaches its thresholds on the latest day"))
    return _section("indicators", title, "".join(parts))


def _alerts(data: ReportData) -> str:
    title = "Open alerts"
    alerts = data.alerts
    if alerts is None or alerts.empty:
        return _section("alerts", title, _empty("no open alerts"))
    # As `riskctl alerts list`: critical first, then quadrant D, C, B, A, then oldest.
    rank = {s: i for i, s in enumerate(BREACHES)}
    alerts = alerts.assign(
        rank=alerts["severity"].map(rank).fillna(len(BREACHES)),
        priority=alerts["quadrant"].map(QUADRANT_PRIORITY.find),
        first=pd.to_datetime(alerts["first_breach_date"]),
    ).sort_values(["rank", "priority", "first", "alert_id"])
    as_of = pd.Timestamp(data.as_of)
    rows = [
        [
            _e(r["alert_id"]),
            f'<span class="sev sev-{_e(r["severity"])}">{_e(r["severity"])}</span>',
            _e(r["indicator"]),
            _e(f"{r['segment_type']}: {r['segment']}"),
            _e(r["quadrant"]),
            _e(r["stage"]),
            _e(_day(r["first_breach_date"])),
            _e(MISSING if absent(r["first"]) else count((as_of - r["first"]).days)),
            _e(num(r["value"])),
            _e(num(r["threshold"])),
            _e(money(r["exposure"])),
        ]
        for _, r in alerts.iterrows()
    ]
    header = [
        "Alert",
        "Severity",
        "Indicator",
        "Segment",
        "Quadrant",
        "Stage",
        "First breach",
        "Days open",
        "Value",
        "Threshold",
        "Exposure",
    ]
    body = f"<p>{_e(count(len(rows)))} open alert(s).</p>" + _table_html(
        header, rows, numeric={6, 7, 8, 9, 10}
    )
    return _section("alerts", title, body)


def psi_reading(psi: float) -> str:
    """The usual reading of a population stability index."""
    if psi < 0.10:
        return "stable"
    if psi < 0.25:
        return "moderate shift: investigate"
    return "significant shift: consider retraining"


def _model(data: ReportData) -> str:
    title = "Model performance and drift"
    m = data.model
    if not m:
        return _section(
            "model",
            title,
            _empty("no champion model registered: run `riskctl train` (and `riskctl promote`)"),
        )
    trained = m.get("trained_at")
    psi = m.get("psi")
    rows = [
        ["Model", _e(_model_label(m))],
        ["Trained", _e(trained.strftime("%Y-%m-%d %H:%M") if trained else MISSING)],
        ["Out-of-time AUC", _e(num(m.get("oot_auc")))],
        ["Out-of-time KS", _e(num(m.get("oot_ks")))],
        ["Out-of-time Gini", _e(num(m.get("oot_gini")))],
        [
            "PSI (out-of-time vs training)",
            _e(num(psi) if absent(psi) else f"{num(psi)} ({psi_reading(float(psi))})"),
        ],
    ]
    body = _table_html(["Metric", "value"], [[_e(a), b] for a, b in rows])
    frame = data.auc_by_month
    if frame is not None and not frame.dropna(subset=["auc"]).empty:
        body += _img(auc_by_month_chart(frame), "AUC by month")
    else:
        body += _empty("no AUC by month recorded for this model")
    return _section("model", title, body)


def _realtime(data: ReportData) -> str:
    title = "Real-time decisions (riskctl serve)"
    s = data.service
    if not s:
        return _section(
            "realtime",
            title,
            _empty(
                "no gold.decision_log: the service made no decision, or none was landed "
                "(`riskctl decisions land`)"
            ),
        )
    if not s["decisions"]:
        return _section("realtime", title, _empty(f"no decision since {_day(s['since'])}"))
    agreement = s.get("challenger_agreement")
    rows = [
        ["Decisions", count(s["decisions"])],
        ["Approve / review / reject", " / ".join(count(s[d]) for d in DECISIONS)],
        ["Approval rate (approve only)", pct(s["approval_rate"])],
        ["Latency p50 / p99 (ms)", f"{s['p50_ms']:.1f} / {s['p99_ms']:.1f}"],
        ["Champion-challenger agreement", MISSING if agreement is None else pct(agreement)],
    ]
    body = f"<p>Decisions since {_e(_day(s['since']))}.</p>" + _table_html(
        ["Measure", "value"], [[_e(a), _e(b)] for a, b in rows]
    )
    hits = data.rule_hits
    if hits is not None and not hits.empty:
        body += _table_html(
            ["Rule", "Hits", "Hit rate"],
            [[_e(r["code"]), _e(count(r["hits"])), _e(pct(r["rate"]))] for _, r in hits.iterrows()],
            numeric={1, 2},
        )
    else:
        body += _empty("no policy rule fired")
    return _section("realtime", title, body)


BACKTEST_METHODS = {
    "none": "known outcomes",
    "parcelling": "parcelling",
    "fuzzy": "fuzzy augmentation",
}


def _ranged_rate(figure: dict[str, Any]) -> str:
    text = pct(figure["value"])
    if figure.get("low") is not None and figure["low"] != figure["high"]:
        text += f" ({pct(figure['low'], 1)}-{pct(figure['high'], 1)})"
    return text


def _per_method(figures: dict[str, Any], subjects: tuple[str, ...], cells: Any) -> list[list[str]]:
    """Escaped table rows per inference method and subject (policy or swap set): the
    method, the subject, then ``cells`` of its figures."""
    return [
        [_e(label), _e(subject.replace("_", "-")), *map(_e, cells(figures[method][subject]))]
        for method, label in BACKTEST_METHODS.items()
        if method in figures
        for subject in subjects
    ]


def _backtest(data: ReportData) -> str:
    title = "Policy backtest (latest)"
    b = data.backtest
    if not b:
        return _section(
            "backtest",
            title,
            _empty("no policy backtest yet: `riskctl policy backtest --proposed FILE`"),
        )
    active, proposed = b["active"], b["proposed"]

    def policy(p: dict[str, Any]) -> str:
        return (
            f"{p['version']} (model {p['model']}; approve below PD {p['approve_below_pd']:.3f}, "
            f"reject from {p['reject_from_pd']:.3f})"
        )

    body = (
        f"<p>Backtest {_e(b['backtest_id'])} of {_e(str(b['created_at'])[:16])}: proposed "
        f"{_e(policy(proposed))} against the active {_e(policy(active))}, on the "
        f"applications decided in {_e(b['window'])}.</p>"
    )
    if b["flags"]:
        items = "".join(f"<li>{_e(f)}</li>" for f in b["flags"])
        body += f'<div class="flags"><b>Guard flags</b><ul>{items}</ul></div>'
    else:
        body += "<p>No guard flag.</p>"
    policies = _per_method(
        b["policies"],
        ("active", "proposed"),
        lambda m: [
            count(m["approvals"]["value"]),
            pct(m["approval_rate"]["value"], 1),
            _ranged_rate(m["bad_rate"]),
            money(m["expected_loss"]["value"]),
            money(m["profit"]["value"]),
        ],
    )
    body += _table_html(
        ["Reject inference", "Policy", "Lent", "Approval rate", "Bad rate (range)",
         "Expected loss", "Profit"],
        policies,
        numeric={2, 3, 4, 5, 6},
    )  # fmt: skip
    swaps = _per_method(
        b["swaps"],
        ("swap_in", "swap_out"),
        lambda m: [
            count(m["applications"]["value"]),
            money(m["exposure"]["value"]),
            _ranged_rate(m["bad_rate"]),
        ],
    )
    body += _table_html(
        ["Reject inference", "Set", "Applications", "Exposure", "Bad rate (range)"],
        swaps,
        numeric={2, 3, 4},
    )
    body += (
        "<p>A range is the same figure with the rejected applicants' outcomes inferred by the "
        "other model's PD: the spread between the two models, not a confidence interval. "
        "The whole backtest: reports/policy_backtest_&lt;version&gt;.html.</p>"
    )
    return _section("backtest", title, body)


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document: inline CSS, charts as data URIs."""
    body = "".join(
        [
            _header(data),
            _summary(data),
            _distribution(data),
            _quadrant_matrix(data),
            _stages(data),
            _cutoff(data),
            _indicators(data),
            _alerts(data),
            _realtime(data),
            _backtest(data),
            _model(data),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Risk report {_e(data.as_of.isoformat())}</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )


# --- files --------------------------------------------------------------------------------
def find_chromium() -> str | None:
    """A Chromium or Chrome binary on PATH (for the PDF), None if there is none."""
    return next((found for n in CHROMIUM_NAMES if (found := shutil.which(n))), None)


def chromium_command(chromium: str, profile: Path, *args: str) -> list[str]:
    """Headless Chromium with a throw-away profile; no sandbox, so it also runs as root."""
    return [
        chromium,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]


def print_pdf(chromium: str, html_path: Path, pdf_path: Path, timeout: float = 120) -> Path:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium."""
    pdf_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="riskcontrol-chromium-") as profile:
        done = subprocess.run(
            chromium_command(
                chromium,
                Path(profile),
                "--no-pdf-header-footer",
                f"--print-to-pdf={pdf_path}",
                html_path.resolve().as_uri(),
            ),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if done.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(
            f"{chromium} could not print {html_path} to PDF (exit {done.returncode}); the HTML "
            f"report is there. Chromium said:\n{tail}"
        )
    return pdf_path


def write_report(data: ReportData, out_dir: Path) -> tuple[Path, Path | None]:
    """Write ``risk_report_<as_of>.html`` into ``out_dir``, and the same as PDF when a
    Chromium binary is on PATH (else the PDF is None)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"risk_report_{data.as_of.isoformat()}.html"
    html_path.write_text(render_html(data), encoding="utf-8")
    chromium = find_chromium()
    if chromium is None:
        return html_path, None
    return html_path, print_pdf(chromium, html_path, html_path.with_suffix(".pdf"))
