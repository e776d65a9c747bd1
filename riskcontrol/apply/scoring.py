"""Apply tier: probability of default -> score, band, severity quadrant, decision.

The quadrant follows the design's severity matrix, by probability of default and by
impact (exposure at default x loss given default):

* A: low impact, low probability -> periodic review
* B: high impact, low probability -> emergency plans, loss-reduction measures
* C: low impact, high probability -> measures that cut frequency
* D: high impact, high probability -> resolve step by step, remove or transfer the risk
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import GOLD_CUTOFF_POLICY, GOLD_SCORED_APPLICATIONS
from riskcontrol.core.config import Settings
from riskcontrol.modeling import models
from riskcontrol.modeling.scale import ScoreScale

QUADRANT_STRATEGY = {
    "A": "periodic review",
    "B": "emergency plan and loss-reduction measures (collateral, guarantee, lower limit)",
    "C": "measures that cut frequency (verification, shorter term, monitoring)",
    "D": "highest priority: resolve step by step, remove or transfer the risk",
}
# Upper PD bound (exclusive) of each band; the last band takes the rest.
RISK_BANDS = (("very_low", 0.02), ("low", 0.05), ("medium", 0.10), ("high", 0.20))
LAST_BAND = "very_high"


def risk_band(pd_col: Column) -> Column:
    expr = None
    for name, upper in RISK_BANDS:
        expr = F.when(pd_col < upper, name) if expr is None else expr.when(pd_col < upper, name)
    return expr.otherwise(LAST_BAND)


def quadrant_of(high_probability: bool, high_impact: bool) -> str:
    """The severity quadrant of a judged probability and impact (plain Python)."""
    if high_probability:
        return "D" if high_impact else "C"
    return "B" if high_impact else "A"


def quadrant(
    pd_col: Column, impact: Column, pd_threshold: float, impact_threshold: float
) -> Column:
    """A/B/C/D by probability (>= threshold is high) and impact (>= threshold is high)."""
    high_p = pd_col >= pd_threshold
    high_i = impact >= impact_threshold
    return F.when(high_p & high_i, "D").when(high_p, "C").when(high_i, "B").otherwise("A")


def strategy(quadrant_col: Column) -> Column:
    mapping = F.create_map(*[x for k, v in QUADRANT_STRATEGY.items() for x in (F.lit(k), F.lit(v))])
    return mapping[quadrant_col]


def decision(pd_col: Column, approve_below: float, reject_from: float) -> Column:
    return (
        F.when(pd_col < approve_below, "approve")
        .when(pd_col >= reject_from, "reject")
        .otherwise("review")
    )


@dataclass(frozen=True)
class CutoffPolicy:
    """The decision rule: approve below ``approve_below_pd``, reject from ``reject_from_pd``,
    review in between. ``version`` is the gold.cutoff_policy version it came from, or
    ``config`` for the RISK_APPROVE_BELOW_PD / RISK_REJECT_FROM_PD defaults."""

    version: str
    approve_below_pd: float
    reject_from_pd: float

    @classmethod
    def from_settings(cls, settings: Settings) -> CutoffPolicy:
        return cls("config", settings.approve_below_pd, settings.reject_from_pd)


def active_policy(spark: SparkSession, settings: Settings) -> CutoffPolicy:
    """The chosen cut-off of the active gold.cutoff_policy version (``riskctl cutoff``),
    or the configured thresholds before any policy was activated."""

    if not lakehouse.exists(spark, GOLD_CUTOFF_POLICY, settings):
        return CutoffPolicy.from_settings(settings)
    rows = (
        lakehouse.read(spark, GOLD_CUTOFF_POLICY, settings)
        .where((F.col("status") == "active") & F.col("chosen"))
        .select("policy_version", "approve_below_pd", "cutoff_pd")
        .collect()
    )
    if not rows:
        return CutoffPolicy.from_settings(settings)
    if len(rows) > 1:
        raise RuntimeError(
            f"{GOLD_CUTOFF_POLICY.full_name} has {len(rows)} active chosen cut-offs; "
            "re-run `riskctl cutoff` to activate exactly one"
        )
    (row,) = rows
    return CutoffPolicy(str(row.policy_version), row.approve_below_pd, row.cutoff_pd)


def next_policy_version(spark: SparkSession, settings: Settings) -> int:
    """The number the next gold.cutoff_policy version takes."""
    if not lakehouse.exists(spark, GOLD_CUTOFF_POLICY, settings):
        return 1
    latest = lakehouse.read(spark, GOLD_CUTOFF_POLICY, settings).agg(F.max("policy_version"))
    return (latest.first()[0] or 0) + 1


def write_policy_version(
    spark: SparkSession, settings: Settings, version: DataFrame, activate: bool
) -> None:
    """Write one gold.cutoff_policy version; when ``activate``, the active versions it
    supersedes change in the same commit (a crash between two commits would leave two
    active policies, or none)."""
    if activate and lakehouse.exists(spark, GOLD_CUTOFF_POLICY, settings):
        superseded = (
            lakehouse.read(spark, GOLD_CUTOFF_POLICY, settings)
            .where(F.col("status") == "active")
            .withColumn("status", F.lit("superseded"))
        )
        version = version.unionByName(superseded.select(*GOLD_CUTOFF_POLICY.columns))
    lakehouse.merge(version, GOLD_CUTOFF_POLICY, settings)


def activate_cutoff(
    spark: SparkSession,
    settings: Settings,
    approve_below_pd: float,
    reject_from_pd: float,
    population: str,
    figures: dict | None = None,
    model_version: str | None = None,
) -> int:
    """Write an approved cut-off as the new active gold.cutoff_policy version (the active
    one superseded in the same commit), with the ``figures`` it was judged on
    (applications, approved, reviewed, rejected, approval_rate, bad_rate: those given)
    and the ``population`` they come from; the decision service's watcher picks it up.
    Returns the version."""
    import datetime as dt

    version = next_policy_version(spark, settings)
    row = dict.fromkeys(GOLD_CUTOFF_POLICY.columns)
    known = ("applications", "approved", "reviewed", "rejected", "approval_rate", "bad_rate")
    for k, v in (figures or {}).items():
        if k in known and v is not None:
            row[k] = float(v) if k.endswith("_rate") else int(v)
    row.update(
        policy_version=version,
        cutoff_pd=float(reject_from_pd),
        approve_below_pd=float(approve_below_pd),
        risk_tolerance=float(settings.risk_tolerance),
        optimal=False,
        chosen=True,
        status="active",
        model_name=settings.registered_model if model_version else None,
        model_version=model_version,
        population=population,
        created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
    )
    df = spark.createDataFrame([row], GOLD_CUTOFF_POLICY.schema)
    write_policy_version(spark, settings, df, activate=True)
    return version


def activate_draft(spark: SparkSession, settings: Settings, version: int) -> CutoffPolicy:
    """Make the draft gold.cutoff_policy ``version`` (``riskctl cutoff --draft``, or any cut-off
    written while RISK_POLICY_APPROVAL is on) the active one, superseding the active one in
    the same commit; returns its chosen cut-off."""
    rows = (
        lakehouse.read(spark, GOLD_CUTOFF_POLICY, settings).where(
            F.col("policy_version") == int(version)
        )
        if lakehouse.exists(spark, GOLD_CUTOFF_POLICY, settings)
        else None
    )
    found = rows.collect() if rows is not None else []
    if not found:
        raise LookupError(f"no gold.cutoff_policy version {version}")
    statuses = {r.status for r in found}
    if statuses != {"draft"}:
        raise ValueError(
            f"gold.cutoff_policy v{version} is {', '.join(sorted(statuses))}, not a draft: "
            "only a draft is activated"
        )
    chosen = [r for r in found if r.chosen]
    if len(chosen) != 1:
        raise ValueError(f"gold.cutoff_policy v{version} has {len(chosen)} chosen cut-offs, not 1")
    write_policy_version(spark, settings, rows.withColumn("status", F.lit("active")), True)
    (row,) = chosen
    return CutoffPolicy(str(version), row.approve_below_pd, row.cutoff_pd)


def drafts(spark: SparkSession, settings: Settings) -> list[dict]:
    """The chosen row of every draft gold.cutoff_policy version, newest first."""
    if not lakehouse.exists(spark, GOLD_CUTOFF_POLICY, settings):
        return []
    rows = (
        lakehouse.read(spark, GOLD_CUTOFF_POLICY, settings)
        .where((F.col("status") == "draft") & F.col("chosen"))
        .orderBy(F.col("policy_version").desc())
        .collect()
    )
    return [r.asDict() for r in rows]


def classify(
    scored: DataFrame,
    settings: Settings,
    policy: CutoffPolicy | None = None,
    exposure_col: str = "requested_amount",
) -> DataFrame:
    """Add score, band, impact, quadrant, strategy, decision and the policy version to rows
    carrying ``pd`` (``policy`` defaults to the configured thresholds)."""
    policy = policy or CutoffPolicy.from_settings(settings)
    impact = F.col(exposure_col) * F.lit(settings.lgd)
    q = quadrant(
        F.col("pd"), impact, settings.quadrant_pd_threshold, settings.quadrant_impact_threshold
    )
    return scored.select(
        "*",
        ScoreScale.from_settings(settings).column(F.col("pd")).alias("score"),
        risk_band(F.col("pd")).alias("risk_band"),
        impact.alias("impact"),
        q.alias("quadrant"),
        strategy(q).alias("strategy"),
        decision(F.col("pd"), policy.approve_below_pd, policy.reject_from_pd).alias("decision"),
        F.lit(policy.version).alias("policy_version"),
    )


def score_applications(
    features: DataFrame, champion, settings: Settings, policy: CutoffPolicy | None = None
) -> DataFrame:
    """Score pending applications with the champion into the scored_applications contract,
    with each application's top-3 reason codes (what pushed its risk up) and the decision
    of ``policy`` (default: the configured thresholds)."""

    pending = features.where(F.col("status") == "pending")
    predicted = models.with_reason_codes(
        champion, pending, champion.model.transform(pending), id_col="application_id"
    )
    # A scorecard writes its own points score; classify maps its PD to the same value.
    out = classify(predicted.drop("score"), settings, policy).select(
        *[
            c
            for c in GOLD_SCORED_APPLICATIONS.columns
            if c not in ("model_name", "model_version", "scored_at")
        ],
        F.lit(champion.name).alias("model_name"),
        F.lit(champion.version).alias("model_version"),
        F.current_timestamp().alias("scored_at"),
    )
    return out.select(*GOLD_SCORED_APPLICATIONS.columns)
