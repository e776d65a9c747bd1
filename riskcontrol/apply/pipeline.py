"""The apply tier's steps: cut-off policy, scoring, loan book, early warning, alerts, report.

Each step reads the tables the tiers before it wrote and writes its own, idempotently:

* ``run_cutoff``: the risk-cost sweep of the approval cut-off over the out-of-time
  population -> ``gold.cutoff_policy`` (a new version only when the result changes);
  the chosen cut-off of the active version is what scoring decides with.
* ``run_score``: pending applications -> ``gold.scored_applications`` (MERGE by
  application: re-scoring replaces).
* ``run_book``: every active loan on the as-of day -> ``gold.loan_book_risk`` (that
  day's rows replaced).
* ``run_warning``: daily indicators over the look-back window ->
  ``gold.warning_indicators``; breaches open or escalate alerts in ``gold.alerts`` and
  go out through the configured notifiers.
* ``run_report``: the HTML (and PDF) risk report under ``reports/``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from riskcontrol.apply import alerts, book, notify, provision, report, riskcost, scoring, warning
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    GOLD_APPLICATION_FEATURES,
    GOLD_CUTOFF_POLICY,
    GOLD_DECISION_LOG,
    GOLD_LOAN_BOOK_RISK,
    GOLD_SCORED_APPLICATIONS,
    GOLD_WARNING_INDICATORS,
    SILVER_APPLICATIONS,
    SILVER_ENTITY_LINKS,
    SILVER_LOANS,
    SILVER_REPAYMENTS,
    SILVER_SETTLEMENTS,
)
from riskcontrol.core.dates import as_of_date
from riskcontrol.core.landing import rejected_rows
from riskcontrol.core.runs import Run, StepCounts
from riskcontrol.modeling import tracking
from riskcontrol.modeling.training import training_split

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _read(run: Run, table) -> DataFrame:
    return lakehouse.read(run.spark, table, run.settings)


# --- cut-off policy ---------------------------------------------------------------------
@dataclass
class CutoffResult:
    version: int | None  # None: no policy written (no cut-off met the tolerance)
    frame: pd.DataFrame  # the sweep, one row per candidate cut-off
    chosen: pd.Series | None
    created: bool  # False: the active policy already said the same, or none was chosen
    plot: Path | None
    note: str = ""  # why no policy was chosen, when none was


def cutoff_population(run: Run, champion: tracking.Champion) -> tuple[pd.DataFrame, str]:
    """The out-of-time window's judged, approved applications with the champion's PD, the
    observed outcome, the exposure (the amount its loan disbursed) and the revenue the loan
    earns if good: its lifetime interest by rate and term (``riskcost.lifetime_interest``);
    a loan without them (or an application without its loan) falls back to the amount
    applied for and ``RISK_GOOD_MARGIN`` of it."""

    split = training_split(run.spark, run.settings)
    loans = _read(run, SILVER_LOANS).select(
        "application_id",
        F.col("principal").alias("_principal"),
        F.col("annual_rate").alias("_rate"),
        F.col("term_months").alias("_term"),
    )
    population = (
        champion.model.transform(split.oot)
        .join(loans, "application_id", "left")
        .select(
            "pd",
            F.col("label").alias("bad"),
            F.coalesce("_principal", "requested_amount").alias("exposure"),
            "_rate",
            "_term",
        )
        .toPandas()
    )
    known = (population["_rate"].notna() & population["_term"].gt(0)).to_numpy()
    revenue = population["exposure"].to_numpy(dtype=float) * run.settings.good_margin
    revenue[known] = riskcost.lifetime_interest(
        population["exposure"][known], population["_rate"][known], population["_term"][known]
    )
    population = population.drop(columns=["_rate", "_term"]).assign(revenue=revenue)
    window = split.windows.get("oot", "")
    return population, f"out-of-time {window}: {len(population):,} judged approved applications"


def _active_versions(run: Run) -> pd.DataFrame:
    if not lakehouse.exists(run.spark, GOLD_CUTOFF_POLICY, run.settings):
        return pd.DataFrame(columns=GOLD_CUTOFF_POLICY.columns)
    return _read(run, GOLD_CUTOFF_POLICY).where(F.col("status") == "active").toPandas()


def _same_policy(active: pd.DataFrame, frame: pd.DataFrame, model_version: str) -> bool:
    if active.empty or set(active["model_version"]) != {model_version}:
        return False
    cols = ["cutoff_pd", "approved", "control_effect", "control_cost", "chosen"]
    a = active.sort_values("cutoff_pd")[cols].reset_index(drop=True)
    b = frame.sort_values("cutoff_pd")[cols].reset_index(drop=True)
    return a.shape == b.shape and bool((a.round(6) == b.round(6)).all().all())


def run_cutoff(
    run: Run,
    progress: Progress = _quiet,
    cutoff: float | None = None,
    activate: bool = True,
    champion: tracking.Champion | None = None,
    keep_when_infeasible: bool = False,
) -> CutoffResult:
    """Sweep the approval cut-off, choose the optimal one (or ``cutoff``) and record it.

    A new policy version is written only when the sweep or the choice differs from the
    active one; ``activate`` makes it the active policy (the previous one is superseded).
    When no candidate is in area 3 the command fails, saying what to do; a scheduled run
    (``keep_when_infeasible``) instead keeps the active policy (or the configured
    thresholds), says so, and goes on to score and watch the book.
    """
    spark, settings = run.spark, run.settings
    approval = activate and settings.policy_approval
    activate = activate and not approval
    champion = champion or tracking.load_champion(settings)
    population, described = cutoff_population(run, champion)
    progress(f"apply: cut-off sweep with {champion.name} v{champion.version} on {described}")
    candidates = riskcost.candidate_cutoffs(settings.cutoff_step)
    if cutoff is not None:
        if not 0 < cutoff <= 1:
            raise ValueError(f"--cutoff {cutoff}: a PD in (0, 1]")
        candidates = sorted(set(candidates) | {round(cutoff, 6)}, reverse=True)
    frame = riskcost.sweep(population, candidates, riskcost.CostModel.from_settings(settings))
    best = riskcost.optimal_row(frame)
    if cutoff is None and best is None:
        message = (
            "no candidate cut-off is in area 3 (control effect above cost with residual risk "
            f"within RISK_RISK_TOLERANCE={settings.risk_tolerance}): raise the tolerance, or "
            "choose a cut-off yourself with `riskctl cutoff --cutoff PD`"
        )
        if not keep_when_infeasible:
            raise RuntimeError(message)
        lowest = frame.loc[frame["residual_risk"].idxmin()]
        note = (
            f"{message}. The lowest residual risk of the sweep is {lowest['residual_risk']:.2%} "
            f"(reject from PD {lowest['cutoff_pd']:.3f}); the policy in force stays"
        )
        progress(f"apply: WARNING: {note}")
        return CutoffResult(None, frame, None, False, None, note)
    chosen_pd = round(cutoff, 6) if cutoff is not None else float(best["cutoff_pd"])
    frame["chosen"] = (frame["cutoff_pd"] - chosen_pd).abs() < 1e-9
    active = _active_versions(run)
    if (activate or approval) and _same_policy(active, frame, champion.version):
        version = int(active["policy_version"].iloc[0])
        progress(f"apply: cut-off policy v{version} is unchanged and stays active")
        chosen = frame[frame["chosen"]].iloc[0]
        return CutoffResult(version, frame, chosen, False, None)
    version = scoring.next_policy_version(spark, settings)
    out = frame.assign(
        policy_version=version,
        status="active" if activate else "draft",
        model_name=champion.name,
        model_version=champion.version,
        population=described,
        created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
    )
    df = spark.createDataFrame(out[GOLD_CUTOFF_POLICY.columns], GOLD_CUTOFF_POLICY.schema)
    scoring.write_policy_version(spark, settings, df, activate)
    if approval:
        progress(
            f"apply: cut-off policy v{version} is a draft (RISK_POLICY_APPROVAL is on): a risk "
            "manager proposes it in the workbench and an approver activates it"
        )
    chosen = frame[frame["chosen"]].iloc[0]
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    plot = settings.reports_dir / f"cutoff_policy_v{version}.png"
    fig = riskcost.plot_balance(frame, title=f"Risk-cost balance, policy v{version}")
    fig.savefig(plot, dpi=110, bbox_inches="tight")
    # How far the optimum owes to the sample, and to the two settings that move it most.
    cost = riskcost.CostModel.from_settings(settings)
    band = riskcost.bootstrap_band(population, candidates, cost)
    evidence = {
        "policy_version": version,
        "population": described,
        "cost_model": dataclasses.asdict(cost),
        "chosen_cutoff_pd": float(chosen["cutoff_pd"]),
        "bootstrap_band": band,
        "sensitivity": riskcost.sensitivity(population, candidates, cost),
    }
    (settings.reports_dir / f"cutoff_policy_v{version}.json").write_text(
        json.dumps(evidence, indent=2) + "\n"
    )
    if band["found"]:
        progress(
            f"apply: the optimum over {band['draws']} resamples: PD {band['low']:.3f} to "
            f"{band['high']:.3f} (90%), median {band['median']:.3f}; "
            f"{band['found']} of them had one"
        )
    progress(
        f"apply: cut-off policy v{version} ({'active' if activate else 'draft'}): reject from "
        f"PD {chosen['cutoff_pd']:.3f}, review from {chosen['approve_below_pd']:.3f}; "
        f"approvals {chosen['approval_rate']:.1%}, bad rate {chosen['bad_rate']:.2%}, "
        f"residual risk {chosen['residual_risk']:.2%} (tolerance {settings.risk_tolerance:.2%})"
        f", area {chosen['area']} {chosen['area_name']}; plot {plot}"
    )
    return CutoffResult(version, frame, chosen, True, plot)


# --- scoring ------------------------------------------------------------------------------
def run_score(
    run: Run, progress: Progress = _quiet, champion: tracking.Champion | None = None
) -> StepCounts:
    """Score pending applications with the champion and the active cut-off policy."""
    spark, settings = run.spark, run.settings
    features = _read(run, GOLD_APPLICATION_FEATURES)
    champion = champion or tracking.load_champion(settings)
    policy = scoring.active_policy(spark, settings)
    progress(
        f"apply: scoring pending applications with {champion.name} v{champion.version} "
        f"({champion.kind}, champion), cut-off policy {policy.version} (approve below PD "
        f"{policy.approve_below_pd:.3f}, reject from {policy.reject_from_pd:.3f})"
    )
    counts = StepCounts(
        "apply", GOLD_APPLICATION_FEATURES.full_name, GOLD_SCORED_APPLICATIONS.full_name, 0, 0
    )
    counts.rows_in = features.where(F.col("status") == "pending").count()
    scored = scoring.score_applications(features, champion, settings, policy).cache()
    n_scored = scored.count()
    result = lakehouse.merge(scored, GOLD_SCORED_APPLICATIONS, settings)
    counts.rows_out = result.inserted + result.updated
    counts.rows_unchanged = n_scored - counts.rows_out
    scored.unpersist()
    return run.record(counts)


# --- the loan book ------------------------------------------------------------------------
def run_book(
    run: Run,
    progress: Progress = _quiet,
    as_of: dt.date | None = None,
    champion: tracking.Champion | None = None,
) -> StepCounts:
    """Every loan active on ``as_of`` (default: the data's as-of day) with PD, EAD, EL,
    DPD and quadrant; a loan whose application has no features is quarantined."""

    spark, settings = run.spark, run.settings
    as_of = as_of or as_of_date(spark, settings)
    champion = champion or tracking.load_champion(settings)
    progress(f"apply: loan book risk on {as_of} with {champion.name} v{champion.version}")
    loans = _read(run, SILVER_LOANS)
    repayments = _read(run, SILVER_REPAYMENTS)
    # One pass over the book gives the loans on as-of and the month-end snapshots the
    # transition matrix is counted from.
    first = loans.agg(F.min("disbursed_date")).first()[0]
    snapshots = book.month_starts(first, as_of) if first else []
    history = warning.loan_days(
        loans,
        repayments,
        _read(run, SILVER_APPLICATIONS),
        warning.days_frame(spark, sorted({*snapshots, as_of})),
    ).cache()
    active = history.where((F.col("as_of_date") == F.lit(as_of)) & F.col("active"))
    # The charge-off rule: a loan RISK_CHARGE_OFF_DPD past due is written off and leaves
    # the book, as a repaid loan does: the step's input is the loans still on it.
    written_off = (
        active.where(F.col("dpd") >= settings.charge_off_dpd)
        .agg(F.count(F.lit(1)), F.sum("outstanding"))
        .first()
    )
    if written_off[0]:
        progress(
            f"apply: {written_off[0]:,} loan(s) {settings.charge_off_dpd}+ days past due are "
            f"charged off (RISK_CHARGE_OFF_DPD), {written_off[1]:,.0f} owed: not on the book"
        )
    state = active.where(F.col("dpd") < settings.charge_off_dpd)
    counts = StepCounts("apply", SILVER_LOANS.full_name, GOLD_LOAN_BOOK_RISK.full_name, 0, 0)
    counts.window_end = as_of.isoformat()
    counts.rows_in = state.count()
    features = _read(run, GOLD_APPLICATION_FEATURES).join(
        state.join(loans.select("loan_id", "application_id"), "loan_id").select("application_id"),
        "application_id",
        "left_semi",
    )
    app_pd = champion.model.transform(features).select("application_id", "customer_key", "pd")
    provisioning = book_provisioning(
        run,
        loans,
        repayments,
        history.where(F.col("as_of_date").isin(snapshots)),
        len(snapshots),
        as_of,
        progress,
    )
    rows = book.loan_book_risk(
        state, loans, app_pd, settings, as_of, champion.name, champion.version, provisioning
    ).cache()
    bad = rows.where(F.col("pd").isNull())
    counts.rows_quarantined = run.quarantine(
        rejected_rows(
            bad,
            F.lit("no_application_features"),
            F.lit(
                "the loan's application has no row in "
                "gold.application_features: rebuild gold (`riskctl analyze`)"
            ),
        ),
        "apply",
        GOLD_LOAN_BOOK_RISK.full_name,
        attempt_id=counts.attempt_id,
    )
    # A table written before the stage columns existed gets them (null on old days).
    lakehouse.add_missing_columns(spark, GOLD_LOAN_BOOK_RISK, settings)
    counts.rows_out = lakehouse.replace_where(
        rows.where(F.col("pd").isNotNull()),
        GOLD_LOAN_BOOK_RISK,
        settings,
        f"as_of_date = DATE'{as_of.isoformat()}'",
    )
    by_stage = provision.expected_loss_by_stage(
        rows.where(F.col("pd").isNotNull()).select("stage", "pd", "lgd", "ead").toPandas()
    )
    for r in by_stage.itertuples():
        progress(
            f"apply:   stage {r.stage}: {r.loans:,} loans, EAD {r.ead:,.0f}, "
            f"EL {r.expected_loss:,.0f} ({r.coverage:.2%})"
        )
    rows.unpersist()
    history.unpersist()
    return run.record(counts)


def book_provisioning(
    run: Run,
    loans: DataFrame,
    repayments: DataFrame,
    history: DataFrame,
    snapshots: int,
    as_of: dt.date,
    progress: Progress = _quiet,
) -> book.Provisioning | None:
    """The book's transition matrix from ``history``, the ``warning.loan_days`` rows of
    its ``snapshots`` month-end days since the first loan, each loan's exposure on
    ``as_of`` and the LGD, for expected loss with horizons; None (and why) when the
    history is too thin for the matrix or shows no default from current within the label
    window: the configured floors stand then."""
    settings = run.settings
    label = settings.performance_cycles
    if snapshots <= label:
        progress(
            f"apply: {snapshots} month-end snapshot(s) of the book: too few for its "
            f"transition matrix; the PD floors of RISK_DELINQUENT_PD stand"
        )
        return None
    matrix = provision.transition_matrix(book.state_moves(book.loan_states(history)).toPandas())
    thin = matrix.thin_rows()
    start = provision.STATES.index(provision.CURRENT)
    if thin or not matrix.cumulative_default(label)[label, start] > 0:
        why = (
            f"bucket(s) left too rarely: {thin}"
            if thin
            else f"no default from current within {label} months"
        )
        progress(f"apply: the book's history is too thin ({why}): RISK_DELINQUENT_PD stands")
        return None
    pds = provision.bucket_pds(matrix)
    progress(
        f"apply: 12-month PD by bucket from {snapshots} month-end snapshots: "
        + ", ".join(f"{b} {p:.1%}" for b, p in pds.pd.items())
    )
    exposures = book.exposures(loans, repayments, as_of).cache()
    longest = exposures.agg(F.max("remaining_months")).first()[0] or 0
    lgd = book_lgd(run, loans, repayments, as_of)
    progress(f"apply: LGD {lgd.lgd:.0%} ({lgd.source})")
    return book.Provisioning(matrix, label, int(longest), exposures, lgd)


def book_lgd(
    run: Run, loans: DataFrame, repayments: DataFrame, as_of: dt.date
) -> provision.LgdEstimate:
    """The LGD of the book's own defaults (``RISK_BAD_DPD``): the cash the settlement
    files show after each default against the exposure on its day, over the defaults
    whose 12-month workout is complete (``provision.lgd_from_recoveries``); the
    configured ``RISK_LGD`` when no settlement file has been landed or too few workouts
    are complete, its source saying which."""
    spark, settings = run.spark, run.settings
    if not lakehouse.exists(spark, SILVER_SETTLEMENTS, settings):
        return provision.LgdEstimate(
            float(settings.lgd),
            0,
            0.0,
            0.0,
            f"configured RISK_LGD {settings.lgd:g}: no settlement file has been landed, "
            f"so recoveries are unknown",
        )
    defaults, cash = book.recovery_inputs(
        loans, repayments, _read(run, SILVER_SETTLEMENTS), as_of, settings.bad_dpd
    )
    return provision.lgd_from_recoveries(
        defaults.toPandas(), cash.toPandas(), as_of, float(settings.lgd)
    )


# --- early warning and alerts ---------------------------------------------------------------
@dataclass
class StabilityInputs:
    """What the score PSI and the features' CSI compare: the recent applications' PDs
    against those of every application of the training months, and their model features
    against the applications' of the months before them (on the training months' bins)."""

    score_frame: DataFrame  # application_date, pd
    baseline_pd: list[float]
    feature_frame: DataFrame  # application_date and the champion's features, reference too
    feature_bins: list[warning.FeatureBins]


def _stability_inputs(run: Run, champion, first_day: dt.date) -> StabilityInputs:
    """Applications from 30 days before the window on (their PDs for the score PSI), and
    from ``warning.REFERENCE_DAYS`` before that (the champion's features for the CSI and
    its rolling reference); every application of the training months
    (``warning.through_the_door``: all applications against all applications): the
    PSI's baseline PDs and the CSI's bins."""

    features = _read(run, GOLD_APPLICATION_FEATURES)
    start = first_day - dt.timedelta(days=warning.ROLL_DAYS)
    recent = features.where(F.col("application_date") >= F.lit(start))
    reference = start - dt.timedelta(days=warning.REFERENCE_DAYS)
    with_reference = features.where(F.col("application_date") >= F.lit(reference))
    score_frame = champion.model.transform(recent).select("application_date", "pd")
    months = training_split(run.spark, run.settings).windows["train"]
    door = warning.through_the_door(features, months)
    baseline = [r.pd for r in champion.model.transform(door).select("pd").collect()]
    spec = champion.spec
    bins = warning.csi_baseline(door, spec.numeric, spec.categorical) if baseline else []
    return StabilityInputs(
        score_frame, baseline, with_reference.select("application_date", *spec.columns), bins
    )


@dataclass
class WarningResult:
    counts: StepCounts
    breaches: int
    alerts: list[dict]
    # Notifications of this run that failed (notifier, alert_id, redacted error): all that
    # is undelivered, pending in ops.alert_notifications for the next run to send again.
    failures: list[tuple[str, str, str]]
    sent: list[tuple[str, str]] = field(default_factory=list)


def run_warning(
    run: Run,
    progress: Progress = _quiet,
    as_of: dt.date | None = None,
    days: int | None = None,
    champion: tracking.Champion | None = None,
) -> WarningResult:
    """Indicators for each of the ``days`` days up to ``as_of``; breaches open alerts."""

    spark, settings = run.spark, run.settings
    notifiers = notify.notifiers_from_settings(settings)  # wrong settings fail before work
    as_of = as_of or as_of_date(spark, settings)
    day_list = warning.days(as_of, days or settings.warning_lookback_days)
    thresholds = warning.load_thresholds(settings.warning_thresholds)
    progress(
        f"apply: early warning, {len(thresholds)} indicators x {len(day_list)} days "
        f"({day_list[0]}..{day_list[-1]})"
    )
    days_df = warning.days_frame(spark, day_list)
    applications = _read(run, SILVER_APPLICATIONS)
    loans, repayments = _read(run, SILVER_LOANS), _read(run, SILVER_REPAYMENTS)
    # The default and roll rates compare each day with the state ROLL_DAYS before it.
    state_days = warning.days(as_of, len(day_list) + warning.ROLL_DAYS)
    loan_days = warning.loan_days(
        loans, repayments, applications, warning.days_frame(spark, state_days)
    ).cache()
    links = (
        _read(run, SILVER_ENTITY_LINKS)
        if lakehouse.exists(spark, SILVER_ENTITY_LINKS, settings)
        else None
    )
    stability = None
    try:
        champion = champion or tracking.load_champion(settings)
    except RuntimeError:
        progress("apply: no champion model yet: score PSI and feature CSI are left out")
    else:
        stability = _stability_inputs(run, champion, day_list[0])
    indicators = warning.compute_indicators(
        loan_days,
        applications,
        links,
        thresholds,
        settings.min_segment_loans,
        days_df,
        score_frame=stability and stability.score_frame,
        baseline_pd=stability and stability.baseline_pd,
        feature_frame=stability and stability.feature_frame,
        feature_bins=stability and stability.feature_bins,
        cohorts=warning.vintage_cohorts(loans, repayments),
        charge_off_dpd=settings.charge_off_dpd,
        decisions=(
            _read(run, GOLD_DECISION_LOG)
            if lakehouse.exists(spark, GOLD_DECISION_LOG, settings)
            else None
        ),
    )
    out = indicators.select(
        "*",
        F.lit(run.run_id).alias("run_id"),
        F.current_timestamp().alias("computed_at"),
    ).cache()
    counts = StepCounts("apply", SILVER_LOANS.full_name, GOLD_WARNING_INDICATORS.full_name, 0, 0)
    counts.window_start, counts.window_end = day_list[0].isoformat(), as_of.isoformat()
    counts.rows_in = out.count()
    # A table written before threshold_source existed gets the column (null on old rows).
    lakehouse.add_missing_columns(spark, GOLD_WARNING_INDICATORS, settings)
    changed = lakehouse.changed(GOLD_WARNING_INDICATORS, ignore=("run_id", "computed_at"))
    result = lakehouse.merge(out, GOLD_WARNING_INDICATORS, settings, update_when=changed)
    counts.rows_out = result.inserted + result.updated
    counts.rows_unchanged = counts.rows_in - counts.rows_out
    run.record(counts)
    window = _read(run, GOLD_WARNING_INDICATORS).where(
        F.col("as_of_date").between(F.lit(day_list[0]), F.lit(as_of))
    )
    breaches = window.where(F.col("status").isin("warning", "critical")).count()
    opened = alerts.open_alerts(spark, settings, window)
    # Every open alert a notifier has not got yet, not only those opened now: a send that
    # failed on an earlier run (or attempt) goes out now.
    delivery = notify.deliver(spark, settings, notifiers)
    out.unpersist()
    loan_days.unpersist()
    progress(
        f"apply: early warning: {breaches} breached indicator-days; {len(opened)} alert(s) "
        f"opened or escalated (gold.alerts; `riskctl alerts list`); {delivery.summary()}"
    )
    return WarningResult(counts, breaches, opened, delivery.failures, delivery.sent)


@dataclass
class CalibrationResult:
    path: Path
    first: dt.date
    last: dt.date
    thresholds: dict[str, dict]  # indicator -> warning, critical, source
    refused: dict[str, str]  # indicator -> why it was not calibrated


def run_calibration(
    run: Run,
    out: Path,
    progress: Progress = _quiet,
    first: dt.date | None = None,
    last: dt.date | None = None,
    names: list[str] | None = None,
) -> CalibrationResult:
    """Thresholds calibrated on ``gold.warning_indicators`` history (``warning.calibrate``:
    mean + 3 / 4 sd of the days ``first..last``, by default the look-back days up to the
    latest day computed) into a YAML for ``RISK_WARNING_THRESHOLDS``; an indicator
    with too few days is left out and says why. Writes nothing when none calibrates."""
    spark, settings = run.spark, run.settings
    if not lakehouse.exists(spark, GOLD_WARNING_INDICATORS, settings):
        raise ValueError("no gold.warning_indicators yet: run `riskctl warn --days N` first")
    history = _read(run, GOLD_WARNING_INDICATORS)
    last = last or history.agg(F.max("as_of_date")).first()[0]
    if last is None:
        raise ValueError("gold.warning_indicators is empty: run `riskctl warn --days N` first")
    first = first or last - dt.timedelta(days=settings.warning_lookback_days - 1)
    if first > last:
        raise ValueError(f"calibration window {first}..{last} is empty: first after last")
    progress(f"apply: calibrating thresholds on gold.warning_indicators {first}..{last}")
    done, refused = warning.calibrate_history(history, first, last, names)
    if not done:
        raise ValueError(
            "no indicator could be calibrated:\n" + "\n".join(f"  {m}" for m in refused.values())
        )
    warning.write_thresholds(out, done)
    return CalibrationResult(Path(out), first, last, done, refused)


# --- the report -----------------------------------------------------------------------------
def run_report(run: Run, progress: Progress = _quiet, out_dir: Path | None = None):
    """The risk report (HTML, and PDF when Chromium is installed)."""

    data = report.collect(run.spark, run.settings)
    html, pdf = report.write_report(data, out_dir or run.settings.reports_dir)
    progress(f"apply: risk report {html}" + (f" and {pdf}" if pdf else " (no PDF: no Chromium)"))
    return html, pdf


def run_apply(run: Run, progress: Progress = _quiet) -> list[StepCounts]:
    """The whole apply tier in order, with the champion loaded once."""
    champion = tracking.load_champion(run.settings)
    run_cutoff(run, progress, champion=champion, keep_when_infeasible=True)
    steps = [run_score(run, progress, champion), run_book(run, progress, champion=champion)]
    steps.append(run_warning(run, progress, champion=champion).counts)
    run_report(run, progress)
    return steps
