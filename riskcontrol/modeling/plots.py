"""Model-evaluation charts for risk managers: ROC, KS, calibration, score drift,
feature importance and AUC by month.

Each function returns a ``matplotlib.figure.Figure`` with a title, axis labels and a
legend; ``save`` writes it as a PNG (or pass it to ``mlflow.log_figure``). Figures are
built with the object-oriented API on an Agg canvas, never through ``pyplot``: nothing is
registered in pyplot's global figure list, no display is needed, and the process-wide
backend of a caller (a notebook, Airflow) is left alone. A figure is freed once dropped.
Every text is drawn as given (``plain_text``): a feature, group or file name with a "$"
is not TeX math, which an unbalanced or unknown command would fail to draw.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from riskcontrol.modeling import metrics

DPI = 110
BAD_COLOR, GOOD_COLOR = "tab:red", "tab:blue"


def plain_text(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Decorate a plot function: every text of the figure it returns (titles, labels,
    tick labels, legends) is drawn as given, with no TeX math parsing."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs) -> Figure:
        fig = plot(*args, **kwargs)
        for text in fig.findobj(Text):
            text.set_parse_math(False)
        return fig

    return wrapper


def _figure(width: float = 7.0, height: float = 5.0) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


@plain_text
def roc_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "ROC curve") -> Figure:
    """ROC curve of each ``name -> (scores, labels)``, AUC in the legend, chance diagonal."""
    if not curves:
        raise ValueError("roc_plot needs at least one name -> (scores, labels)")
    fig, ax = _figure(6.0, 6.0)
    for name, (scores, labels) in curves.items():
        fpr, tpr, _ = metrics.roc_curve(scores, labels)
        ax.plot(fpr, tpr, label=f"{name} (AUC = {metrics.auc(scores, labels):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random (AUC = 0.500)")
    ax.set(
        title=title,
        xlabel="false positive rate (share of goods flagged)",
        ylabel="true positive rate (share of bads caught)",
        xlim=(0, 1),
        ylim=(0, 1),
        aspect="equal",
    )
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


@plain_text
def ks_plot(scores, labels, title: str = "Kolmogorov-Smirnov") -> Figure:
    """Cumulative share of bads and goods by score, the KS gap marked where it is largest
    (the lowest such score)."""
    thresholds, cdf_bad, cdf_good = metrics.ks_curve(scores, labels)
    gap = np.abs(cdf_bad - cdf_good)
    at = int(np.argmax(gap))
    fig, ax = _figure()
    x = np.concatenate(([thresholds[0]], thresholds))
    for cdf, color, who in ((cdf_bad, BAD_COLOR, "bads (1)"), (cdf_good, GOOD_COLOR, "goods (0)")):
        ax.plot(
            x,
            np.concatenate(([0.0], cdf)),
            drawstyle="steps-post",
            color=color,
            label=f"{who}: share scoring <= score",
        )
    low, high = sorted((cdf_bad[at], cdf_good[at]))
    text = f"KS = {gap[at]:.3f} at score {thresholds[at]:.3f}"
    ax.vlines(thresholds[at], low, high, colors="black", linestyles="--", label=text)
    ax.annotate(
        text,
        xy=(thresholds[at], (low + high) / 2),
        xytext=(8, 0),
        textcoords="offset points",
        va="center",
    )
    ax.set(title=title, xlabel="probability of default", ylabel="cumulative share", ylim=(0, 1.02))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


@plain_text
def calibration_plot(table: list[dict], title: str = "Calibration by score bin") -> Figure:
    """Mean predicted PD vs observed bad rate per bin of ``metrics.calibration_table``;
    points on the diagonal are well calibrated. Rows from ``metrics.hosmer_lemeshow`` also
    draw each bin's observed-rate interval: a bin whose interval misses the diagonal is
    mispriced beyond chance."""
    if not table:
        raise ValueError("calibration_plot needs the rows of metrics.calibration_table")
    predicted = [row["mean_score"] for row in table]
    observed = [row["bad_rate"] for row in table]
    intervals = all("rate_low" in row for row in table)
    highs = [row["rate_high"] for row in table] if intervals else observed
    top = max(max(predicted), max(highs)) * 1.05 or 1.0
    fig, ax = _figure(6.0, 6.0)
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(predicted, observed, marker="o", color=BAD_COLOR, label="score bins (low to high)")
    if intervals:
        ax.errorbar(
            predicted,
            observed,
            yerr=[
                [o - row["rate_low"] for o, row in zip(observed, table, strict=True)],
                [row["rate_high"] - o for o, row in zip(observed, table, strict=True)],
            ],
            fmt="none",
            ecolor=BAD_COLOR,
            alpha=0.5,
            capsize=3,
            label="95% interval of the observed rate",
        )
    for row in table:
        ax.annotate(
            f"{row['bin']}",
            xy=(row["mean_score"], row["bad_rate"]),
            xytext=(4, -10),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set(
        title=title,
        xlabel="mean predicted probability of default",
        ylabel="observed bad rate",
        xlim=(0, top),
        ylim=(0, top),
        aspect="equal",
    )
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


@plain_text
def score_distribution_plot(
    distributions: dict[str, np.ndarray],
    xlabel: str = "probability of default",
    psi: float | None = None,
    title: str = "Score distribution",
) -> Figure:
    """Overlaid density histograms on shared bins (e.g. train vs out-of-time); the PSI
    between them goes in the title when given."""
    if not distributions:
        raise ValueError("score_distribution_plot needs at least one name -> scores")
    values = {name: np.asarray(v, dtype=float) for name, v in distributions.items()}
    edges = np.histogram_bin_edges(np.concatenate(list(values.values())), bins=30)
    fig, ax = _figure()
    for name, v in values.items():
        ax.hist(v, bins=edges, density=True, alpha=0.45, label=f"{name} (n = {len(v):,})")
    if psi is not None:
        title = f"{title} (PSI = {psi:.3f})"
    ax.set(title=title, xlabel=xlabel, ylabel="density")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


@plain_text
def importance_plot(
    importances: dict[str, float], top: int = 20, title: str = "Feature importance"
) -> Figure:
    """Horizontal bars of the ``top`` largest importances, the largest on top."""
    if not importances:
        raise ValueError("importance_plot needs at least one feature -> importance")
    ranked = sorted(importances.items(), key=lambda kv: kv[1], reverse=True)[:top]
    names = [name for name, _ in ranked][::-1]
    values = [value for _, value in ranked][::-1]
    fig, ax = _figure(7.0, 1.5 + 0.3 * len(ranked))
    label = f"top {len(ranked)} of {len(importances)} features"
    ax.barh(range(len(ranked)), values, color=GOOD_COLOR, label=label)
    ax.set_yticks(range(len(ranked)), labels=names)
    ax.set(title=title, xlabel="importance", ylabel="feature")
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return fig


@plain_text
def auc_by_month_plot(
    by_group: dict[str, dict], title: str = "AUC and bad rate by month"
) -> Figure:
    """AUC per group (``metrics.auc_by_group``) as a line, skipping groups whose AUC is
    None, over bars of every group's bad rate on a second axis."""
    if not by_group:
        raise ValueError("auc_by_month_plot needs the result of metrics.auc_by_group")
    names = list(by_group)
    fig, ax = _figure(max(7.0, 0.5 * len(names)), 5.0)
    rates = ax.twinx()
    rates.bar(
        range(len(names)),
        [g["bads"] / g["n"] for g in by_group.values()],
        color="lightgrey",
        label="bad rate (right axis)",
    )
    rates.set_ylabel("bad rate")
    # AUC on the primary axis, drawn in front of the bars of the twin axis.
    ax.set_zorder(rates.get_zorder() + 1)
    ax.patch.set_visible(False)
    known = [(i, g["auc"]) for i, g in enumerate(by_group.values()) if g["auc"] is not None]
    ax.plot(
        [i for i, _ in known],
        [a for _, a in known],
        marker="o",
        color=BAD_COLOR,
        label="AUC (left axis)",
    )
    lowest = min((a for _, a in known), default=0.5)
    ax.set_xticks(range(len(names)), labels=names, rotation=45 if len(names) > 6 else 0)
    ax.set(title=title, xlabel="month", ylabel="AUC", ylim=(min(0.5, lowest) - 0.02, 1.0))
    handles = ax.get_legend_handles_labels()[0] + rates.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower left")
    ax.grid(axis="y", alpha=0.3)
    return fig


@plain_text
def label_choice_plot(justification: dict) -> Figure:
    """The evidence for the default definition (``label_choice.justify``): the share of
    loans back under 30 DPD after each depth of delay, and the bad rate by installment of
    the loans watched the longest, with the definition's depth and window marked."""
    definition = justification["definition"]
    fig = Figure(figsize=(11.0, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    cures, curve = fig.subplots(1, 2)
    rows = justification["cure_rates"]
    labels = [f"{r['dpd']}+\n({r['loans']:,} loans)" for r in rows]
    cures.bar(
        labels,
        [r["cure_rate"] or 0.0 for r in rows],
        color=[BAD_COLOR if r["dpd"] == definition["bad_dpd"] else "lightgrey" for r in rows],
    )
    cures.set(
        title="How late is too late: cured after the delay",
        xlabel="ever this many days past due",
        ylabel="share now under 30 DPD",
        ylim=(0, 1),
    )
    cures.grid(axis="y", alpha=0.3)
    vintage = justification["vintage"]
    cycles = range(1, vintage["horizon"] + 1)
    rates = [r if r is not None else np.nan for r in vintage["bad_rate_by_cycle"]]
    curve.plot(cycles, rates, marker="o", color=BAD_COLOR)
    curve.axvline(definition["cycles"], color="black", linestyle="--", label="the window")
    curve.set(
        title=f"How long to watch: {vintage['loans']:,} loans, {vintage['horizon']} installments",
        xlabel="installments watched",
        ylabel=f"bad rate ({definition['bad_dpd']}+ DPD)",
    )
    curve.legend(loc="lower right")
    curve.grid(alpha=0.3)
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at 110 dpi, creating parent directories, then release its
    artists (the figure is not reusable afterwards)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    fig.clear()
    return path
