"""`riskctl` commands of the apply tier: cutoff, policy, score-application, book, warn, alerts,
report.

``add_apply_parsers(add)`` registers them on the main parser (``add(name, fn, help)``
returns the subparser, as in ``riskcontrol.cli.main``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import textwrap
from pathlib import Path

# The tiers are imported inside the commands that use them, not here: `riskctl --help`
# and a command's own start-up then load no Spark, MLflow or Airflow they do not need.
from riskcontrol.cli.common import load_settings, new_run, print_steps, say, start_spark


def _run():
    return new_run(load_settings())


def cmd_cutoff(args: argparse.Namespace) -> int:
    from riskcontrol.apply import pipeline as apply_tier

    run = _run()
    result = apply_tier.run_cutoff(run, say, cutoff=args.cutoff, activate=not args.draft)
    frame = result.frame.sort_values("cutoff_pd", ascending=False).reset_index(drop=True)
    every = 1 if args.all else max(1, len(frame) // 20)
    shown = frame[(frame.index % every == 0) | frame["chosen"]]
    print(
        f"\n{'cut-off':>8} {'approve':>8} {'bad rate':>8} {'effect':>12} {'cost':>12} "
        f"{'net':>12} {'resid.':>7}  area"
    )
    for _, r in shown.iterrows():
        mark = " <- chosen" if r["chosen"] else (" (optimal)" if r["optimal"] else "")
        print(
            f"{r.cutoff_pd:8.3f} {r.approval_rate:8.1%} {r.bad_rate:8.2%} "
            f"{r.control_effect:12,.0f} {r.control_cost:12,.0f} {r.net_benefit:12,.0f} "
            f"{r.residual_risk:7.2%}  {r.area} {r.area_name}{mark}"
        )
    draft = args.draft or run.settings.policy_approval
    state = "active" if not draft else "draft (not active)"
    if not result.created:
        state = "unchanged, stays active"
    print(
        f"\npolicy v{result.version}: {state}; gold.cutoff_policy"
        + (f"; plot {result.plot}" if result.plot else "")
    )
    return 0


def _or(given: float | None, configured: float) -> float:
    return configured if given is None else given


def cmd_policy_backtest(args: argparse.Namespace) -> int:
    from riskcontrol.apply import policylab
    from riskcontrol.serve.engine import service_rules

    proposed = policylab.load_policy(Path(args.proposed))  # a bad file fails before Spark
    run = _run()
    done = policylab.run_backtest(
        run,
        proposed,
        args.window,
        max_approval_shift=_or(args.max_approval_shift, run.settings.policy_max_approval_shift),
        max_bad_rate_shift=_or(args.max_bad_rate_shift, run.settings.policy_max_bad_rate_shift),
        progress=say,
        rules=service_rules(run.settings),
    )
    result = done.result
    print(f"\n{'method':<11} {'policy':<9} {'approvals':>9} {'approval':>9} "
          f"{'bad rate (range)':>22} {'exp. loss':>12} {'profit':>12}")  # fmt: skip
    for _, r in result.policies.iterrows():
        print(
            f"{r.method:<11} {r.policy:<9} {r.approvals:>9,.0f} {r.approval_rate:>9.1%} "
            f"{_ranged(r.bad_rate, r.bad_rate_low, r.bad_rate_high):>22} "
            f"{r.expected_loss:>12,.0f} {r.profit:>12,.0f}"
        )
    for swap in ("swap_in", "swap_out"):
        n = result.swap(swap, "applications")
        rates = ", ".join(
            f"{m} "
            + _ranged(*(result.swap(swap, f"bad_rate{e}", m) for e in ("", "_low", "_high")))
            for m in ("none", "parcelling", "fuzzy")
        )
        print(f"{swap.replace('_', '-')}: {n:,.0f} applications; bad rate {rates}")
    print(
        "(range: the same figure with the rejects' outcomes inferred by the other model's "
        "PD; the spread between the two models, not a confidence interval)"
    )
    for note in result.notes:  # whose PD inferred the rejects' outcomes, what the history lacks
        print(f"note: {note}")
    for flag in done.flags:
        print(f"FLAG: {flag}")
    print(
        f"\nbacktest {done.backtest_id}: {done.rows_written:,} rows in gold.policy_backtests; "
        "propose it for approval in the workbench (Policies)"
    )
    print(f"page {done.page}")
    return 0


def _ranged(value: float, low: float, high: float) -> str:
    """A rate with its range over the two models' PDs when the two differ: 6.4% (6.1-6.9%)."""
    if value != value:  # NaN: no approval with an outcome
        return "n/a"
    if low != low or high != high or f"{low:.1%}" == f"{high:.1%}":
        return f"{value:.2%}"
    return f"{value:.2%} ({low:.1%}-{high:.1%})"


def cmd_score_application(args: argparse.Namespace) -> int:
    from riskcontrol.apply import online

    settings = load_settings()
    requests = online.load_requests(Path(args.json))
    say("loading the champion, the feature store and the cut-off policy")
    scorer = online.ApplicationScorer(settings)
    for _ in range(max(1, args.repeat)):  # timing: the last pass is after warm-up
        results = [online.jsonable(scorer.score(request)) for request in requests]
    out = results if len(results) > 1 else results[0]
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    from riskcontrol.apply import pipeline as apply_tier

    run = _run()
    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
    print_steps([apply_tier.run_book(run, say, as_of=as_of)])
    return 0


def cmd_warn(args: argparse.Namespace) -> int:
    from riskcontrol.apply import pipeline as apply_tier

    run = _run()
    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
    if args.calibrate:
        return _calibrate(apply_tier, run, args, as_of)
    result = apply_tier.run_warning(run, say, as_of=as_of, days=args.days)
    print_steps([result.counts])
    return 1 if result.failures else 0


def _calibrate(apply_tier, run, args: argparse.Namespace, as_of: dt.date | None) -> int:
    first = dt.date.fromisoformat(args.calibrate_from) if args.calibrate_from else None
    names = [n.strip() for n in (args.indicators or "").split(",") if n.strip()] or None
    result = apply_tier.run_calibration(
        run, Path(args.calibrate), say, first=first, last=as_of, names=names
    )
    for name, levels in result.thresholds.items():
        print(f"{name:<24} warning {levels['warning']:.6g}  critical {levels['critical']:.6g}")
    for message in result.refused.values():
        print(f"not calibrated: {message}")
    print(
        f"\nwrote {result.path} ({len(result.thresholds)} indicators, {result.first}.."
        f"{result.last}); use it with RISK_WARNING_THRESHOLDS={result.path}"
    )
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from riskcontrol.apply import alerts

    settings = load_settings()
    spark = start_spark(settings)
    if args.action == "list":
        found = alerts.list_alerts(spark, settings, open_only=not args.all)
        if args.json:
            print(json.dumps(found, indent=2, default=str, ensure_ascii=False))
        else:
            print(alerts.format_table(found))
        return 0
    if not args.alert_id:
        raise ValueError(f"`riskctl alerts {args.action}` needs an ALERT_ID (see `alerts list`)")
    try:
        alert = _alert_action(alerts, spark, settings, args)
    except alerts.AlertNotFound as exc:
        raise ValueError(str(exc)) from None
    if args.json:
        print(json.dumps(alert, indent=2, default=str, ensure_ascii=False))
    else:
        print(alerts.format_alert(alert))
    return 0


def _alert_action(alerts, spark, settings, args: argparse.Namespace) -> dict:
    if args.action == "show":
        return alerts.get_alert(spark, settings, args.alert_id)
    return alerts.advance(
        spark,
        settings,
        args.alert_id,
        by=args.by,
        note=args.note or "",
        to_stage=args.to,
    )


def cmd_report(args: argparse.Namespace) -> int:
    from riskcontrol.apply import pipeline as apply_tier

    run = _run()
    html, pdf = apply_tier.run_report(run, say, out_dir=Path(args.out) if args.out else None)
    print(html)
    if pdf:
        print(pdf)
    return 0


def add_apply_parsers(add) -> None:
    """Register the apply-tier commands (``add(name, fn, help) -> ArgumentParser``)."""
    p = add(
        "cutoff",
        cmd_cutoff,
        "risk-cost balance: sweep the approval cut-off over the out-of-time population "
        "(control effect = losses avoided; control cost = profit lost on rejected goods + "
        "RISK_REVIEW_COST per review; residual risk vs RISK_RISK_TOLERANCE), classify each "
        "candidate into areas 1 invalid / 2 weaker / 3 reasonable / 4 override, choose the "
        "area-3 point where marginal effect equals marginal cost, write gold.cutoff_policy "
        "(a new version when it changed), make it the active policy scoring decides with, and "
        "plot the balance into reports/",
    )
    p.add_argument(
        "--cutoff",
        type=float,
        default=None,
        help="choose this reject-from PD instead of the optimum",
    )
    p.add_argument("--draft", action="store_true", help="record the sweep without activating it")
    p.add_argument("--all", action="store_true", help="print every candidate, not 20")
    p = add(
        "policy",
        None,
        "policy lab: try a proposed policy (model, cut-off, rules, segment overrides) on "
        "history before it goes live",
    )
    policy = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    b = policy.add_parser(
        "backtest",
        help="replay a proposed policy and the active one on the same decided applications",
        description=textwrap.fill(
            "Replay the proposed policy and the active one (the active cut-off on "
            "the champion) on the same historical applications: approvals, reviews, "
            "rejections, bad rate, expected loss and profit (RISK_LGD, RISK_GOOD_MARGIN, "
            "RISK_REVIEW_COST, RISK_REVIEW_CATCH), by channel, province, product and score "
            "band; the swap-in / swap-out matrix; with and without reject inference "
            "(parcelling, fuzzy augmentation) for the historically rejected, whose outcome "
            "is unknown, each inferred figure also as a range over the two models' PDs. "
            "The service's rules are replayed where the history has their fields. Writes "
            "reports/policy_backtest_<version>.html and appends the backtest to "
            "gold.policy_backtests, from where the workbench proposes it for approval.",
            88,
        ),
        epilog="example proposal (v2.yaml):\n"
        "  version: v2-logistic\n"
        "  model: v5                # or champion / challenger\n"
        "  approve_below_pd: 0.20\n"
        "  reject_from_pd: 0.25     # review in between\n"
        "  # rules: leave out to keep the service's reject rules; [] drops them\n"
        "  overrides:               # optional, first match wins\n"
        "    - {column: channel, value: partner_b, approve_below_pd: 0.15, "
        "reject_from_pd: 0.20}\n\n"
        "  riskctl policy backtest --proposed v2.yaml --window 2025-03..2025-05",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.set_defaults(fn=cmd_policy_backtest)
    b.add_argument(
        "--proposed",
        required=True,
        help="YAML or JSON file: version, model (a registered version like 5, or "
        "champion / challenger), approve_below_pd, reject_from_pd, optional rules (codes "
        "of the service's rules; left out: the service's reject rules) and overrides "
        "[{column, value, approve_below_pd, reject_from_pd}]",
    )
    b.add_argument(
        "--window",
        default=None,
        help="application months A..B, e.g. 2025-03..2025-05 (default: the out-of-time "
        "window, the latest months with matured outcomes)",
    )
    b.add_argument(
        "--max-approval-shift",
        type=float,
        default=None,
        help="flag a proposal moving the approval rate by more than this "
        "(RISK_POLICY_MAX_APPROVAL_SHIFT, 0.05)",
    )
    b.add_argument(
        "--max-bad-rate-shift",
        type=float,
        default=None,
        help="flag a proposal moving the bad rate of approvals (fuzzy inference) by more "
        "than this (RISK_POLICY_MAX_BAD_RATE_SHIFT, 0.01)",
    )
    p = add(
        "score-application",
        cmd_score_application,
        "score one application (or a JSON list) like the batch: request fields plus the "
        "customer's online features from the feature store; prints the scored_applications "
        "fields as JSON (PD, score, band, quadrant, strategy, decision, reason codes, model, "
        "policy) with latency_ms",
    )
    p.add_argument("--json", required=True, metavar="FILE", help="application request JSON")
    p.add_argument("--repeat", type=int, default=1, help="score N times (latency after warm-up)")
    p = add(
        "book",
        cmd_book,
        "loan book risk: every active loan's PD, EAD, expected loss, DPD, quadrant and strategy "
        "on the as-of day into gold.loan_book_risk (that day replaced on a re-run)",
    )
    p.add_argument("--as-of", default=None, help="YYYY-MM-DD (default: the data's as-of day)")
    p = add(
        "warn",
        cmd_warn,
        "early warning: daily indicators (DPD 1+/30+/90+ overall and by channel and province, "
        "default rate, roll rates, vintage, score PSI, CSI of each model feature, approval-rate "
        "shift, concentration, new public records per 1,000 borrowers) against warning/critical "
        "thresholds (RISK_WARNING_THRESHOLDS YAML; each row says where its thresholds come "
        "from) into gold.warning_indicators; breaches open or escalate "
        "alerts (gold.alerts) and notify (RISK_NOTIFIERS). Exit 1 if a notification failed.",
    )
    p.add_argument("--as-of", default=None, help="last day (default: the data's as-of day)")
    p.add_argument(
        "--days", type=int, default=None, help="days back (default RISK_WARNING_LOOKBACK_DAYS)"
    )
    p.add_argument(
        "--calibrate",
        default=None,
        metavar="OUT.yaml",
        help="instead of computing: propose thresholds from gold.warning_indicators history "
        "(control limits mean+3sd warning, mean+4sd critical, over calm days --calibrate-from "
        "..--as-of; at least 90 days an indicator) and write them, each with its source, to "
        "OUT.yaml for RISK_WARNING_THRESHOLDS",
    )
    p.add_argument(
        "--calibrate-from",
        default=None,
        help="first calm day YYYY-MM-DD (default: RISK_WARNING_LOOKBACK_DAYS before --as-of)",
    )
    p.add_argument(
        "--indicators", default=None, help="comma-separated indicators to calibrate (default all)"
    )
    p = add(
        "alerts",
        cmd_alerts,
        "alerts: `list` the open ones (--all: closed too), `show ID`, `advance ID --note ...` "
        "to the next stage of identify -> assess -> decide -> dispose -> feedback; every step "
        "is timestamped in the alert's history; skipping or going back is refused",
    )
    p.add_argument("action", choices=["list", "show", "advance"])
    p.add_argument("alert_id", nargs="?", default=None, help="alert id (a unique prefix will do)")
    p.add_argument("--note", default=None, help="what was found / decided / done (advance)")
    p.add_argument("--by", default="risk-analyst", help="who (advance)")
    p.add_argument("--to", default=None, help="the stage to move to (must be the next one)")
    p.add_argument("--all", action="store_true", help="list closed alerts too")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add(
        "report",
        cmd_report,
        "write the risk report: self-contained HTML (and PDF when Chromium is installed) with "
        "the portfolio, score distribution, quadrant matrix, cut-off curve, indicator trends, "
        "open alerts and model performance",
    )
    p.add_argument("--out", default=None, help="folder (default: reports/)")
