"""The policy backtest for people: two charts and a section of the risk report.

``plot_swaps`` draws what a risk manager looks at first: the 3x3 swap matrix (active
decision down, proposed decision across) as a heat map of counts with each cell's bad rate,
the swap-in and swap-out cells outlined; and, beside it, the approval rate and the bad rate
of approvals of both policies, the bad rate under each reject-inference method, so the
effect of inferring the rejects' outcomes is in plain view. ``plot_segments`` compares the
two policies segment by segment. ``backtest_section`` renders a ``BacktestResult`` as an
HTML section in the report's own style: a one-line verdict under the fuzzy inference, the
guard's flags, the per-policy metrics for every method (each with a line on how the
outcomes were inferred, and with which model's PD), the swap sets (an inferred bad rate
with its range over the two models' PDs, see ``backtest``'s docstring), the rules behind
rule-driven swaps, and the charts.

Figures are built on an Agg canvas, never through ``pyplot`` (as ``modeling.plots`` and
``riskcost.plot_balance``). The HTML reuses the report's helpers, private ones included
(``_e``, ``_section``, ``_table_html``, ``_empty``, ``_figure``), so the section looks like
the rest of the report; every text is escaped. Importing ``report`` imports pyspark (its
``collect`` reads the gold tables), but nothing here starts Spark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, PercentFormatter

from riskcontrol.apply.backtest import DECISIONS, METHODS, METRICS, BacktestResult
from riskcontrol.apply.formats import MISSING, absent, count, money, pct
from riskcontrol.apply.report import (
    _e,
    _empty,
    _figure,
    _section,
    _table_html,
    png_data_uri,
)

METHOD_LABELS = {
    "none": "known outcomes only",
    "parcelling": "parcelling",
    "fuzzy": "fuzzy augmentation",
}
SWAP_LABELS = {"swap_in": "swap-in", "swap_out": "swap-out"}
# The policy whose model's PD a reject inference used, by the PD column it records.
INFERENCE_POLICIES = {"pd_active": "active", "pd_proposed": "proposed"}
POLICY_COLORS = {"active": "tab:gray", "proposed": "tab:orange"}
SWAP_COLORS = {"swap_in": "tab:green", "swap_out": "tab:red"}
RATE_METRICS = ("approval_rate", "bad_rate", "residual_risk")
MONEY_METRICS = ("approved_exposure", "expected_loss", "profit")
METRIC_LABELS = {
    "applications": "applications",
    "approvals": "approvals (incl. reviewed)",
    "reviews": "reviews",
    "rejections": "rejections",
    "approval_rate": "approval rate",
    "approved_exposure": "approved exposure",
    "known_outcomes": "approvals with a known outcome",
    "inferred_outcomes": "approvals with an inferred outcome",
    "outcomes": "approvals with an outcome",
    "bads": "bads",
    "bad_rate": "bad rate of approvals",
    "expected_loss": "expected loss",
    "residual_risk": "residual risk",
    "profit": "profit",
}
# The per-policy table: header and metric, in order.
POLICY_COLUMNS = (
    ("Applications", "applications"),
    ("Approvals (incl. reviewed)", "approvals"),
    ("Reviews", "reviews"),
    ("Rejections", "rejections"),
    ("Approval rate", "approval_rate"),
    ("Bad rate of approvals", "bad_rate"),
    ("Expected loss", "expected_loss"),
    ("Profit", "profit"),
    ("Known-outcome approvals", "known_outcomes"),
    ("Inferred-outcome approvals", "inferred_outcomes"),
)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def _label(result: BacktestResult, policy: str) -> str:
    """'active v1' or 'proposed v2'."""
    return f"{policy} {getattr(result, policy).version}"


def _show(metric: str, value: Any, digits: int = 2) -> str:
    """A metric as the report writes it."""
    if metric in RATE_METRICS:
        return pct(value, digits)
    if metric in MONEY_METRICS:
        return money(value)
    return count(value)


# --- charts -------------------------------------------------------------------------------
def _plain(texts: Sequence[Text]) -> None:
    """Draw texts as given: a "$" in a version or a segment name is no TeX math (an
    unbalanced one would fail the drawing)."""
    for text in texts:
        text.set_parse_math(False)


def plot_swaps(result: BacktestResult, method: str = "fuzzy") -> Figure:
    """Left: the swap matrix as a heat map of applications, each cell annotated with its
    count and its bad rate under ``method`` (the rows' own outcomes, before any review
    catch), the swap-in cells (active rejects, proposed lends) and swap-out cells outlined.
    Right: approval rate and bad rate of approvals, active vs proposed; the bad rate under
    each method (none, parcelling, fuzzy), the approval rate once, as no method changes
    it. Count texts carry the gid "count", bad-rate texts "bad_rate"."""
    _check_method(method)
    counts = result.matrix("applications", method).fillna(0).to_numpy(dtype=float)
    bad_rate = result.matrix("bad_rate", method).to_numpy(dtype=float)
    fig = _figure(12.0, 5.0)
    left, right = fig.subplots(1, 2, width_ratios=[1.0, 1.25])
    top = max(float(counts.max()), 1.0)
    left.imshow(counts, cmap="Blues", vmin=0, vmax=top)
    for i in range(len(DECISIONS)):
        for j in range(len(DECISIONS)):
            color = "white" if counts[i, j] > 0.6 * top else "black"
            left.text(
                j, i - 0.08, count(counts[i, j]), ha="center", va="center", fontsize=14,
                fontweight="bold", color=color, gid="count",
            )  # fmt: skip
            left.text(
                j, i + 0.25, f"bad {pct(bad_rate[i, j], 1)}", ha="center", va="center",
                fontsize=8, color=color, gid="bad_rate",
            )  # fmt: skip
    reject = DECISIONS.index("reject")
    outlines = {
        "swap_in": Rectangle((-0.5, reject - 0.5), reject, 1),  # reject row, lent columns
        "swap_out": Rectangle((reject - 0.5, -0.5), 1, reject),  # lent rows, reject column
    }
    for swap, box in outlines.items():
        box.set(fill=False, edgecolor=SWAP_COLORS[swap], linewidth=3, label=SWAP_LABELS[swap])
        left.add_patch(box)
    ticks = range(len(DECISIONS))
    left.set_xticks(ticks, labels=list(DECISIONS))
    left.set_yticks(ticks, labels=list(DECISIONS))
    left.set_xlabel(f"{_label(result, 'proposed')} decision", parse_math=False)
    left.set_ylabel(f"{_label(result, 'active')} decision", parse_math=False)
    left.set_title(f"Swap matrix: applications and bad rate ({METHOD_LABELS[method]})")
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2, fontsize=8)

    groups = ["approval rate\n(any method)"] + [f"bad rate\n{METHOD_LABELS[m]}" for m in METHODS]
    x = np.arange(len(groups))
    width = 0.38
    heights = []
    for k, policy in enumerate(("active", "proposed")):
        values = [float(result.metric(policy, "approval_rate", "none"))] + [
            float(result.metric(policy, "bad_rate", m)) for m in METHODS
        ]
        heights.extend(values)
        bars = _policy_bars(right.bar, result, policy, x + (k - 0.5) * width, values, width)
        right.bar_label(bars, labels=[pct(v, 1) for v in values], padding=2, fontsize=8)
    right.set_xticks(x, labels=groups, fontsize=8)
    right.set_ylim(0, max(np.nanmax(heights + [0.0]) * 1.2, 0.05))
    right.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    right.set_title("Approval rate and bad rate of approvals, by reject inference")
    _plain(right.legend(loc="upper right", fontsize=8).get_texts())
    right.grid(axis="y", alpha=0.3)
    active, proposed = result.active, result.proposed
    fig.suptitle(
        f"Policy backtest: active {active.version} ({active.model}) vs proposed "
        f"{proposed.version} ({proposed.model})",
        parse_math=False,
    )
    return fig


def _policy_bars(draw, result: BacktestResult, policy: str, positions, values, width):
    """One policy's bars (``draw``: an Axes' ``bar`` or ``barh``), a missing value drawn
    as 0 in the policy's colour; returns the bar container."""
    return draw(
        positions,
        np.nan_to_num(np.asarray(values, dtype=float), nan=0.0),
        width,
        color=POLICY_COLORS[policy],
        label=_label(result, policy),
    )


def plot_segments(
    result: BacktestResult, segment_type: str, metric: str = "approval_rate", method: str = "fuzzy"
) -> Figure:
    """``metric`` of both policies per value of the ``segment_type`` column under
    ``method``, as horizontal bars, the segments sorted by the proposed policy's value,
    highest on top (a missing value last, ties by name)."""
    _check_method(method)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    frame = result.segments[result.segments["method"] == method]
    types = list(dict.fromkeys(frame["segment_type"]))
    if segment_type not in types:
        raise ValueError(
            f"the backtest has no segment type {segment_type!r}; it has "
            f"{', '.join(map(str, types)) or 'none (replay got segments=())'}"
        )
    table = frame[frame["segment_type"] == segment_type].pivot(
        index="segment", columns="policy", values=metric
    )
    order = table.assign(name=table.index).sort_values(
        ["proposed", "name"], ascending=[False, True], na_position="last", kind="stable"
    )
    table = table.loc[order.index]
    names = [str(s) for s in table.index]
    fig = _figure(8.0, max(2.8, 0.55 * len(names) + 1.6))
    ax = fig.add_subplot()
    y = np.arange(len(names))
    height = 0.38
    for k, policy in enumerate(("active", "proposed")):
        values = table[policy].to_numpy(dtype=float)
        bars = _policy_bars(ax.barh, result, policy, y + (k - 0.5) * height, values, height)
        ax.bar_label(bars, labels=[_show(metric, v, 1) for v in values], padding=2, fontsize=8)
    ax.set_yticks(y, labels=names, parse_math=False)
    ax.invert_yaxis()
    if metric in RATE_METRICS:
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.margins(x=0.15)
    ax.set_xlabel(f"{METRIC_LABELS[metric]} ({METHOD_LABELS[method]})")
    ax.set_ylabel(segment_type, parse_math=False)
    ax.set_title(
        f"{METRIC_LABELS[metric].capitalize()} by {segment_type}: {_label(result, 'active')} "
        f"vs {_label(result, 'proposed')}",
        parse_math=False,
    )
    _plain(fig.legend(loc="outside lower center", ncols=2, fontsize=8).get_texts())
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_data_uris(
    result: BacktestResult,
    segment_types: Sequence[str] = (),
    metric: str = "approval_rate",
    method: str = "fuzzy",
) -> dict[str, str]:
    """The charts of ``backtest_section`` as PNG data URIs, keyed by their alt text: the
    swap chart, then ``metric`` by each of ``segment_types``."""
    uris = {
        "swap matrix, approval and bad rates by reject inference": png_data_uri(
            plot_swaps(result, method)
        )
    }
    for segment_type in segment_types:
        fig = plot_segments(result, segment_type, metric, method)
        uris[f"{METRIC_LABELS[metric]} by {segment_type}"] = png_data_uri(fig)
    return uris


# --- HTML ---------------------------------------------------------------------------------
def _signed_count(value: float) -> str:
    return f"{round(value):+,}"


def _signed_money(value: float) -> str:
    return MISSING if absent(value) else f"{round(value):+,}"


def _points(value: float) -> str:
    return MISSING if absent(value) else f"{value * 100:+.2f} points"


def verdict(result: BacktestResult) -> str:
    """One line, plain text: approvals, bad rate and profit, active -> proposed, under the
    fuzzy reject inference."""

    def both(name: str) -> tuple[float, float]:
        return (
            float(result.metric("active", name, "fuzzy")),
            float(result.metric("proposed", name, "fuzzy")),
        )

    approvals, rate, bad, profit = (
        both(n) for n in ("approvals", "approval_rate", "bad_rate", "profit")
    )
    return (
        f"Under fuzzy reject inference, {_label(result, 'proposed')} against "
        f"{_label(result, 'active')}: approvals {count(approvals[0])} → {count(approvals[1])} "
        f"({_signed_count(approvals[1] - approvals[0])}), approval rate {pct(rate[0])} → "
        f"{pct(rate[1])}; bad rate of approvals {pct(bad[0])} → {pct(bad[1])} "
        f"({_points(bad[1] - bad[0])}); profit {money(profit[0])} → {money(profit[1])} "
        f"({_signed_money(profit[1] - profit[0])})."
    )


def _flags_html(flags: Sequence[str] | None) -> str:
    if flags is None:
        return ""
    if not flags:
        return "<p>Guard: no flag, the shifts are within the allowed.</p>"
    items = "".join(f"<li><b>{_e(flag)}</b></li>" for flag in flags)
    return (
        '<div class="guard"><p><span class="sev sev-critical">guard</span> '
        f"<b>{_e(count(len(flags)))} flag(s): check before approving</b></p>"
        f"<ul>{items}</ul></div>"
    )


def _inference_pd(result: BacktestResult, details: Mapping[str, Any]) -> str:
    """Whose PD inferred the outcomes: "the active model's PD (logistic v3)"."""
    column = details.get("pd_col")
    policy = INFERENCE_POLICIES.get(column)
    if policy is None:
        return f"the PD in column {column}" if column else "the PD"
    return f"the {policy} model's PD ({getattr(result, policy).model})"


def _inference_note(result: BacktestResult, method: str) -> str:
    details = result.inference.get(method, {})
    if method == "none":
        return "Known outcomes only: the rejected applications without one enter no rate."
    rows = count(details.get("inferred_rows"))
    pd_ = _inference_pd(result, details)
    if method == "parcelling":
        return (
            f"Parcelling: {rows} rejected application(s) without an outcome take the known bad "
            f"rate of their band of {pd_} x {details.get('reject_factor', float('nan')):g}; "
            f"{count(details.get('fallback_rows'))} in a band without known outcomes take "
            f"the overall rate; {count(details.get('capped_rows'))} capped at 100%."
        )
    return (
        f"Fuzzy augmentation: {rows} rejected application(s) without an outcome count as "
        f"bad with weight {pd_} x {details.get('calibration_factor', float('nan')):.4g} (the "
        f"calibration factor); {count(details.get('capped_rows'))} capped at 1."
    )


def _policy_tables(result: BacktestResult) -> str:
    header = ["Policy", "Model", *(h for h, _ in POLICY_COLUMNS)]
    parts = []
    for method in METHODS:
        rows = [
            [_e(_label(result, p)), _e(getattr(result, p).model)]
            + [_e(_show(m, result.metric(p, m, method))) for _, m in POLICY_COLUMNS]
            for p in ("active", "proposed")
        ]
        parts.append(f"<h3>{_e(METHOD_LABELS[method].capitalize())}</h3>")
        parts.append(f"<p>{_e(_inference_note(result, method))}</p>")
        parts.append(_table_html(header, rows, numeric=range(2, len(header))))
    return "".join(parts)


def _swap_table(result: BacktestResult) -> str:
    header = [
        "Set",
        "Meaning",
        "Applications",
        "Exposure",
        "Known outcomes",
        *(f"Bad rate ({METHOD_LABELS[m]})" for m in METHODS),
        "Profit under its lender (fuzzy)",
    ]
    active, proposed = _label(result, "active"), _label(result, "proposed")
    meaning = {
        "swap_in": f"rejected by {active}, lent by {proposed}",
        "swap_out": f"lent by {active}, rejected by {proposed}",
    }
    rows, empties = [], []
    for swap in ("swap_in", "swap_out"):
        n = result.swap(swap, "applications")
        rows.append(
            [
                _e(SWAP_LABELS[swap]),
                _e(meaning[swap]),
                _e(count(n)),
                _e(money(result.swap(swap, "exposure"))),
                _e(count(result.swap(swap, "known_outcomes"))),
                *(_e(_bad_rate_range(result, swap, m)) for m in METHODS),
                _e(money(result.swap(swap, "profit", "fuzzy")) if n else MISSING),
            ]
        )
        if not n:
            empties.append(_empty(f"no {SWAP_LABELS[swap]}s: no application is {meaning[swap]}"))
    caption = (
        "Bad rates are the sets' own outcomes (inferred for the rejected without one), "
        "before any review catch. Where a set has inferred outcomes, the bracket gives the "
        "range over the two models' PDs: the outcomes inferred once with the active model's "
        "PD and once with the proposed model's. The swap-in set is where the two models "
        "disagree, so neither is proven there; the range is their spread, not a confidence "
        "interval, and the truth can lie outside it."
    )
    return (
        _table_html(header, rows, numeric=range(2, len(header)))
        + "".join(empties)
        + f"<p>{_e(caption)}</p>"
    )


def _bad_rate_range(result: BacktestResult, swap: str, method: str) -> str:
    """A swap set's bad rate under ``method``, followed by its range over the two models'
    PDs when the set has inferred outcomes: "50.00% (50.00%–58.33% by model)"."""
    value = pct(result.swap(swap, "bad_rate", method))
    if method == "none" or not result.swap(swap, "inferred_outcomes", method):
        return value
    low = pct(result.swap(swap, "bad_rate_low", method))
    high = pct(result.swap(swap, "bad_rate_high", method))
    return f"{value} ({low}–{high} by model)"


def _rules_table(result: BacktestResult) -> str:
    rules = result.swap_rules
    if rules.empty:
        return _empty("no swap is driven by a policy rule: the PD thresholds make every swap")
    rows = []
    for r in rules.itertuples(index=False):
        size = result.swap(r.swap, "applications")
        rows.append(
            [
                _e(SWAP_LABELS[r.swap]),
                _e(f"{_label(result, r.policy)} rejects"),
                _e(r.rule),
                _e(count(r.applications)),
                _e(pct(r.applications / size if size else np.nan)),
                _e(money(r.exposure)),
            ]
        )
    header = ["Swap", "Rule of", "Rule", "Applications", "Share of the set", "Exposure"]
    return _table_html(header, rows, numeric={3, 4, 5})


def _plots_html(plots: Mapping[str, str] | Sequence[str]) -> str:
    if isinstance(plots, str | bytes):
        raise ValueError("plots must be a list of paths or data URIs (or alt text -> one)")
    if isinstance(plots, Mapping):
        items = list(plots.items())
    else:
        items = [(f"policy backtest chart {i}", src) for i, src in enumerate(plots, 1)]
    return "".join(f'<img class="chart" alt="{_e(alt)}" src="{_e(src)}">' for alt, src in items)


def backtest_section(
    result: BacktestResult,
    flags: Sequence[str] | None = None,
    plots: Mapping[str, str] | Sequence[str] = (),
) -> str:
    """The backtest as a section of the risk report: the verdict (``verdict``), the guard's
    ``flags`` (from ``backtest.guard``; None: the guard did not run, an empty list: it
    found nothing), the result's notes, the per-policy metrics under each method, the swap
    sets, the rules behind rule-driven swaps, and the ``plots`` (file paths or data URIs,
    a list or a mapping alt text -> source; ``plot_data_uris`` makes them)."""
    parts = [f"<p><b>{_e(verdict(result))}</b></p>", _flags_html(flags)]
    parts.extend(f'<p class="meta">{_e(note)}</p>' for note in result.notes)
    parts.append(_policy_tables(result))
    parts.append("<h3>Swap-in and swap-out</h3>")
    parts.append(_swap_table(result))
    parts.append("<h3>Rule-driven swaps</h3>")
    parts.append(_rules_table(result))
    charts = _plots_html(plots)
    if charts:
        parts.append("<h3>Charts</h3>" + charts)
    title = (
        f"Policy backtest: {_label(result, 'active')} ({result.active.model}) vs "
        f"{_label(result, 'proposed')} ({result.proposed.model})"
    )
    return _section("backtest", title, "".join(parts))
