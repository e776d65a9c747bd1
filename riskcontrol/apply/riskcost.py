"""Risk-cost balance of the approval cut-off.

A candidate cut-off PD ``t`` sets the degree of control: applications with PD >= t are
rejected, those in the review band ``t - review_band <= PD < t`` are approved after a manual
review, the rest are approved outright; the lower ``t``, the more control. For each
candidate the sweep computes, on a population with observed outcomes (the out-of-time
sample):

- the control effect: losses avoided, exposure x LGD summed over the rejected bads;
- the control cost: margin lost on the rejected goods (exposure x good margin) plus the
  cost of each manual review;
- the residual risk: expected loss of the approvals (exposure x LGD of the approved bads)
  per unit of approved exposure, compared with the risk tolerance;

and classifies it into area 1 invalid (cost above effect, risk above tolerance), 2 weaker
(effect at least the cost, risk still above tolerance), 3 reasonable (effect at least the
cost, risk within tolerance) or 4 override (cost above effect again from too much control,
risk within tolerance). The optimal cut-off is the area-3 point where the marginal effect
of more control equals its marginal cost: the area-3 candidate with the largest net benefit
(effect - cost), the one with less control on a tie.

The sweep is pure numpy: the population is sorted by PD once, and every candidate reads
prefix and suffix sums at the position ``searchsorted`` gives it. ``plot_balance`` draws the
classic risk-cost balance diagram of a sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, PercentFormatter

COLUMNS = (
    "cutoff_pd",
    "approve_below_pd",
    "applications",
    "approved",
    "reviewed",
    "rejected",
    "approval_rate",
    "bad_rate",
    "control_effect",
    "control_cost",
    "net_benefit",
    "marginal_effect",
    "marginal_cost",
    "residual_risk",
    "risk_tolerance",
    "area",
    "area_name",
    "optimal",
)
POPULATION_COLUMNS = ("pd", "bad", "exposure")
# Optional: what a good loan earns over its life (its interest, from its rate and term).
# Without it a good earns ``exposure x good_margin``.
REVENUE_COLUMN = "revenue"
AREA_NAMES = {1: "invalid", 2: "weaker", 3: "reasonable", 4: "override"}
AREA_COLORS = {1: "#f6c6c6", 2: "#fde2b8", 3: "#cdeccd", 4: "#cfe0f5"}
# Relative tolerance under which summed amounts count as equal: float noise must not move
# a candidate that sits exactly on an area boundary, nor break a tie of net benefits.
_RTOL = 1e-9
# Cut-offs minus the review band are rounded to this many decimals (0.2 - 0.05 is
# 0.15000000000000002 in floating point, and must review an application at PD 0.15).
_DECIMALS = 12


@dataclass(frozen=True)
class CostModel:
    """Money side of the balance: ``lgd`` (share of a bad's exposure lost), ``good_margin``
    (profit on a good loan as a share of its exposure, lost when it is rejected),
    ``review_cost`` (per manual review), ``review_band`` (PD width below the cut-off that
    goes to review) and ``risk_tolerance`` (highest acceptable residual risk)."""

    lgd: float
    good_margin: float
    review_cost: float
    review_band: float
    risk_tolerance: float
    # Share of the bads in the review band that a review catches (declines): the review's
    # effect. 0: a review costs money and changes no outcome.
    review_catch: float = 0.0

    def __post_init__(self) -> None:
        checks = {
            "lgd (RISK_LGD) must be within [0, 1]": 0 <= self.lgd <= 1,
            "good_margin (RISK_GOOD_MARGIN) must be >= 0": self.good_margin >= 0,
            "review_cost (RISK_REVIEW_COST) must be >= 0": self.review_cost >= 0,
            "review_band (RISK_REVIEW_BAND_PD) must be within [0, 1)": 0 <= self.review_band < 1,
            "risk_tolerance (RISK_RISK_TOLERANCE) must be within [0, 1]": (
                0 <= self.risk_tolerance <= 1
            ),
            "review_catch (RISK_REVIEW_CATCH) must be within [0, 1]": (0 <= self.review_catch <= 1),
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid cost model {self}: " + "; ".join(failed))

    @classmethod
    def from_settings(cls, settings) -> CostModel:
        """The cost model configured in ``Settings`` (lgd, good_margin, review_cost,
        review_band_pd, risk_tolerance)."""
        return cls(
            lgd=settings.lgd,
            good_margin=settings.good_margin,
            review_cost=settings.review_cost,
            review_band=settings.review_band_pd,
            risk_tolerance=settings.risk_tolerance,
            review_catch=settings.review_catch,
        )


def candidate_cutoffs(step: float, low: float | None = None, high: float = 1.0) -> list[float]:
    """Cut-offs ``low, low + step, ...`` up to ``high`` inclusive (``low`` defaults to
    ``step``), rounded to 10 decimals; ``high`` = 1.0 is the no-control end."""
    low = step if low is None else low
    if not step > 0:
        raise ValueError(f"cut-off step must be > 0, got {step} (RISK_CUTOFF_STEP)")
    if not 0 < low <= high <= 1:
        raise ValueError(f"cut-offs need 0 < low <= high <= 1, got low={low}, high={high}")
    count = int(np.floor((high - low) / step + 1e-9))
    grid = [float(v) for v in np.round(low + step * np.arange(count + 1), 10)]
    if np.isclose(grid[-1], high, rtol=0, atol=1e-9):
        grid[-1] = float(high)
    else:
        grid.append(float(high))
    return grid


def lifetime_interest(principal, annual_rate, term_months) -> np.ndarray:
    """Interest a fully repaid annuity loan pays over its life: ``n`` equal installments
    of ``P r / (1 - (1 + r)^-n)`` (r the monthly rate) less the principal; a rate of 0
    pays none. What a good loan earns, and what rejecting it gives up."""
    p = np.asarray(principal, dtype=float)
    r = np.asarray(annual_rate, dtype=float) / 12.0
    n = np.asarray(term_months, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        installment = np.where(r > 0, p * r / (1.0 - (1.0 + r) ** (-n)), p / n)
    return installment * n - p


def _population_arrays(population: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [c for c in POPULATION_COLUMNS if c not in population.columns]
    if missing:
        raise ValueError(
            f"population lacks column(s) {missing}; it needs pd (probability of default), "
            "bad (observed 0/1 outcome) and exposure (amount)"
        )
    if population.empty:
        raise ValueError("population is empty: the sweep needs scored applications with outcomes")
    pd_, bad, exposure = (
        population[c].to_numpy(dtype=float, na_value=np.nan) for c in POPULATION_COLUMNS
    )
    problems = {
        "pd must be a probability within [0, 1]": ~((pd_ >= 0) & (pd_ <= 1)),
        "bad must be 0 or 1": ~np.isin(bad, (0.0, 1.0)),
        "exposure must be a non-negative amount": ~(exposure >= 0),
    }
    for rule, wrong in problems.items():
        if wrong.any():
            rows = population.index[wrong][:5].tolist()
            raise ValueError(f"{rule}: {int(wrong.sum())} row(s) break it, e.g. index {rows}")
    return pd_, bad, exposure


def _cutoff_array(candidates: Sequence[float]) -> np.ndarray:
    """Distinct candidates, highest (least control) first."""
    values = np.asarray(list(candidates), dtype=float)
    if values.size == 0:
        raise ValueError("no candidate cut-offs: pass e.g. candidate_cutoffs(settings.cutoff_step)")
    wrong = values[~((values > 0) & (values <= 1))]
    if wrong.size:
        raise ValueError(f"candidate cut-offs must be within (0, 1], got {wrong[:5].tolist()}")
    return np.unique(values)[::-1]


def _at_least(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    return (a >= b) | np.isclose(a, b, rtol=_RTOL, atol=0.0)


def _prefix(values: np.ndarray) -> np.ndarray:
    """``out[i]`` = sum of ``values[:i]``."""
    return np.concatenate(([0.0], np.cumsum(values)))


def _suffix(values: np.ndarray) -> np.ndarray:
    """``out[i]`` = sum of ``values[i:]`` (summed from the end, not as total - prefix, so a
    small tail is not lost to cancellation)."""
    return np.concatenate((np.cumsum(values[::-1])[::-1], [0.0]))


def sweep(population: pd.DataFrame, candidates: Sequence[float], cost: CostModel) -> pd.DataFrame:
    """Risk-cost balance of each candidate cut-off over ``population`` (columns ``pd``,
    ``bad``, ``exposure``): one row per distinct candidate, least control (highest
    cut-off) first, with the columns of ``COLUMNS`` (those of gold.cutoff_policy it
    computes). The marginal effect and cost of a row are its increase over the previous
    row; the first row's are measured against no control at all."""
    pd_, bad, exposure = _population_arrays(population)
    revenue = _revenue(population, exposure, cost)
    cutoffs = _cutoff_array(candidates)
    # any order of equal PDs will do: a cut-off never separates them
    order = np.argsort(pd_)
    sorted_pd = pd_[order]
    bad_exposure = (exposure * bad)[order]
    good_revenue = (revenue * (1.0 - bad))[order]
    applications = len(sorted_pd)

    # Sorted positions: rows [0, approved) have PD < cut-off, rows [auto, approved) are in
    # the review band, rows [approved, n) are rejected.
    approve_below = np.maximum(np.round(cutoffs - cost.review_band, _DECIMALS), 0.0)
    approved = np.searchsorted(sorted_pd, cutoffs, side="left")
    auto = np.searchsorted(sorted_pd, approve_below, side="left")
    reviewed = approved - auto
    rejected = applications - approved

    # Reviews catch a share of the bads in the band: their loss is avoided too.
    band_bad_exposure = _prefix(bad_exposure)[approved] - _prefix(bad_exposure)[auto]
    caught = band_bad_exposure * cost.review_catch
    effect = (_suffix(bad_exposure)[approved] + caught) * cost.lgd
    control_cost = _suffix(good_revenue)[approved] + reviewed * cost.review_cost
    approved_exposure = _prefix(exposure[order])[approved] - caught
    approved_loss = (_prefix(bad_exposure)[approved] - caught) * cost.lgd
    caught_bads = (_prefix(bad[order])[approved] - _prefix(bad[order])[auto]) * cost.review_catch
    approved_bads = _prefix(bad[order])[approved] - caught_bads
    residual = np.divide(
        approved_loss,
        approved_exposure,
        out=np.zeros_like(approved_loss),
        where=approved_exposure > 0,
    )
    kept = approved - caught_bads  # expected approvals once reviews decline what they catch
    bad_rate = np.divide(approved_bads, kept, out=np.zeros_like(approved_bads), where=kept > 0)
    net = effect - control_cost

    effective = _at_least(effect, control_cost)
    within = _at_least(np.full_like(residual, cost.risk_tolerance), residual)
    area = np.select(
        [~effective & ~within, effective & ~within, effective & within], [1, 2, 3], default=4
    ).astype(np.int32)
    optimal = np.zeros(len(cutoffs), dtype=bool)
    reasonable = area == 3
    if reasonable.any():
        best = net[reasonable].max()
        # rows run from less to more control: the first of a tie has the least control
        optimal[np.flatnonzero(reasonable & _at_least(net, best))[0]] = True

    return pd.DataFrame(
        {
            "cutoff_pd": cutoffs,
            "approve_below_pd": approve_below,
            "applications": np.full(len(cutoffs), applications, dtype=np.int64),
            "approved": approved.astype(np.int64),
            "reviewed": reviewed.astype(np.int64),
            "rejected": rejected.astype(np.int64),
            "approval_rate": approved / applications,
            "bad_rate": bad_rate,
            "control_effect": effect,
            "control_cost": control_cost,
            "net_benefit": net,
            "marginal_effect": np.diff(effect, prepend=0.0),
            "marginal_cost": np.diff(control_cost, prepend=0.0),
            "residual_risk": residual,
            "risk_tolerance": np.full(len(cutoffs), float(cost.risk_tolerance)),
            "area": area,
            "area_name": [AREA_NAMES[a] for a in area],
            "optimal": optimal,
        },
        columns=list(COLUMNS),
    )


def _revenue(population: pd.DataFrame, exposure: np.ndarray, cost: CostModel) -> np.ndarray:
    """Each row's lifetime revenue if good: its ``revenue`` column when it has one, else
    ``exposure x good_margin``."""
    if REVENUE_COLUMN not in population.columns:
        return exposure * cost.good_margin
    revenue = population[REVENUE_COLUMN].to_numpy(dtype=float, na_value=np.nan)
    wrong = ~(revenue >= 0)
    if wrong.any():
        rows = population.index[wrong][:5].tolist()
        raise ValueError(
            f"revenue must be a non-negative amount: {int(wrong.sum())} row(s) break it, "
            f"e.g. index {rows}"
        )
    return revenue


def bootstrap_band(
    population: pd.DataFrame,
    candidates: Sequence[float],
    cost: CostModel,
    draws: int = 200,
    seed: int = 7,
    level: float = 0.9,
) -> dict[str, float | int | None]:
    """How much the optimal cut-off owes to the sample: the sweep on ``draws`` resamples
    of ``population`` (rows drawn with replacement), and the central ``level`` interval
    of the optimal cut-offs found. ``found``: draws with an area-3 optimum at all."""
    if draws < 1 or not 0 < level < 1:
        raise ValueError(f"draws must be >= 1 and level within (0, 1), got {draws}, {level}")
    rng = np.random.default_rng(seed)
    n = len(population)
    optima = []
    for _ in range(draws):
        frame = sweep(population.iloc[rng.integers(0, n, n)], candidates, cost)
        best = optimal_row(frame)
        if best is not None:
            optima.append(float(best["cutoff_pd"]))
    if not optima:
        return {"draws": draws, "found": 0, "low": None, "median": None, "high": None}
    tail = (1.0 - level) / 2.0
    low, median, high = np.quantile(optima, [tail, 0.5, 1.0 - tail], method="lower")
    return {
        "draws": draws,
        "found": len(optima),
        "low": float(low),
        "median": float(median),
        "high": float(high),
    }


SENSITIVITY_FACTORS = (0.5, 1.0, 1.5)


def sensitivity(
    population: pd.DataFrame,
    candidates: Sequence[float],
    cost: CostModel,
    factors: Sequence[float] = SENSITIVITY_FACTORS,
) -> list[dict[str, float | str | None]]:
    """The optimal cut-off with one input scaled at a time: the LGD (capped at 1), what a
    good earns (the revenue column or the margin) and the cost of a review."""
    rows = []
    for name in ("lgd", "revenue", "review_cost"):
        for factor in factors:
            scaled_cost, scaled = cost, population
            if name == "lgd":
                scaled_cost = replace(cost, lgd=min(cost.lgd * factor, 1.0))
            elif name == "review_cost":
                scaled_cost = replace(cost, review_cost=cost.review_cost * factor)
            elif REVENUE_COLUMN in population.columns:
                scaled = population.assign(revenue=population[REVENUE_COLUMN] * factor)
            else:
                scaled_cost = replace(cost, good_margin=cost.good_margin * factor)
            best = optimal_row(sweep(scaled, candidates, scaled_cost))
            rows.append(
                {
                    "input": name,
                    "factor": float(factor),
                    "cutoff_pd": None if best is None else float(best["cutoff_pd"]),
                    "approval_rate": None if best is None else float(best["approval_rate"]),
                    "net_benefit": None if best is None else float(best["net_benefit"]),
                }
            )
    return rows


def optimal_row(frame: pd.DataFrame) -> pd.Series | None:
    """The row flagged optimal in a sweep, or None when no candidate reached area 3."""
    hits = frame[frame["optimal"].eq(True)]
    if len(hits) > 1:
        raise ValueError(
            f"{len(hits)} rows are flagged optimal; pass the rows of one policy version"
        )
    return None if hits.empty else hits.iloc[0]


PLOT_COLUMNS = (
    "cutoff_pd",
    "applications",
    "rejected",
    "control_effect",
    "control_cost",
    "residual_risk",
    "risk_tolerance",
    "area",
    "optimal",
)


def _area_runs(area: np.ndarray) -> list[tuple[int, int, int]]:
    """``(area, first row, last row)`` of each run of equal areas."""
    starts = np.flatnonzero(np.diff(area, prepend=area[0] - 1))
    ends = np.append(starts[1:] - 1, len(area) - 1)
    return [(int(area[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def _shade_areas(ax: Axes, x: np.ndarray, area: np.ndarray) -> None:
    """Shade each run of equal areas as an x-span reaching halfway to its neighbours, and
    name each area once at the top of the plot, over its widest run; names closer than a
    tenth of the x range step down so they do not overlap."""
    middles = (x[:-1] + x[1:]) / 2
    left = np.concatenate(([x[0]], middles))
    right = np.concatenate((middles, [x[-1]]))
    widest: dict[int, tuple[float, float]] = {}
    for number, first, last in _area_runs(area):
        name = f"{number} {AREA_NAMES[number]}"
        span = (left[first], right[last])
        ax.axvspan(
            *span,
            color=AREA_COLORS[number],
            alpha=0.8,
            zorder=0,
            label=f"_{name}" if number in widest else name,
        )
        if number not in widest or span[1] - span[0] > widest[number][1] - widest[number][0]:
            widest[number] = span
    previous, y = None, 0.98
    for number, (start, end) in sorted(widest.items(), key=lambda item: sum(item[1])):
        centre = (start + end) / 2
        close = previous is not None and centre - previous < (x[-1] - x[0]) / 10
        y = y - 0.05 if close else 0.98
        previous = centre
        ax.text(
            centre,
            y,
            f"{number} {AREA_NAMES[number]}",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=8,
            fontweight="bold",
        )


def _cutoff_ticks(ax: Axes, x: np.ndarray, cutoffs: np.ndarray, at_optimal: int | None) -> None:
    """Cut-off PDs on a top axis: about eight ticks spread over the x range, plus the
    optimal one."""
    spacing = (x[-1] - x[0]) / 8
    chosen: list[int] = []
    for i in range(len(x)):
        if not chosen or x[i] - x[chosen[-1]] >= spacing > 0:
            chosen.append(i)
    if at_optimal is not None:
        chosen = [i for i in chosen if abs(x[i] - x[at_optimal]) >= spacing / 2]
        chosen = sorted({*chosen, at_optimal})
    top = ax.secondary_xaxis("top")
    top.set_xticks(x[chosen], labels=[f"{cutoffs[i]:g}" for i in chosen], fontsize=8)
    top.set_xlabel("cut-off PD (reject at or above)")


def plot_balance(frame: pd.DataFrame, ax: Axes | None = None, title: str | None = None) -> Figure:
    """The classic risk-cost balance diagram of a sweep (or of the rows of one policy
    version read back from gold.cutoff_policy, in any order): control effect and control
    cost (left axis) and residual risk against the dashed tolerance line (right axis) over
    the degree of control (share of applications rejected), the four areas shaded, the
    cut-off PDs on the top axis and the optimal cut-off marked. Draws on ``ax`` when given,
    else on a new Agg figure; returns the figure."""
    missing = [c for c in PLOT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"plot_balance needs the columns of riskcost.sweep; missing {missing}")
    if frame.empty:
        raise ValueError("plot_balance got no rows: run riskcost.sweep first")
    data = frame.sort_values("cutoff_pd", ascending=False, kind="stable").reset_index(drop=True)
    if data["cutoff_pd"].duplicated().any():
        raise ValueError("frame repeats cut-offs: pass the rows of a single policy_version")
    if ax is None:
        fig = Figure(figsize=(9.0, 6.0), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    fig = ax.get_figure()

    x = (100.0 * data["rejected"] / data["applications"]).to_numpy(dtype=float)
    effect = data["control_effect"].to_numpy(dtype=float)
    control_cost = data["control_cost"].to_numpy(dtype=float)
    residual = data["residual_risk"].to_numpy(dtype=float)
    tolerance = float(data["risk_tolerance"].iloc[0])
    flagged = np.flatnonzero(data["optimal"].eq(True).to_numpy())
    at_optimal = int(flagged[0]) if flagged.size else None

    _shade_areas(ax, x, data["area"].to_numpy(dtype=int))
    ax.plot(x, effect, color="tab:green", marker=".", label="control effect (losses avoided)")
    ax.plot(
        x, control_cost, color="tab:red", marker=".", label="control cost (margin lost + reviews)"
    )
    risk = ax.twinx()
    risk.plot(x, residual, color="tab:purple", marker=".", label="residual risk (right axis)")
    risk.axhline(
        tolerance, color="tab:purple", linestyle="--", label=f"risk tolerance ({tolerance:.1%})"
    )
    risk.set_ylim(0, max(residual.max(), tolerance) * 1.15 or 1.0)
    risk.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    risk.set_ylabel("residual risk (expected loss / approved exposure)")

    if at_optimal is not None:
        cutoff = float(data["cutoff_pd"].iloc[at_optimal])
        point = (x[at_optimal], effect[at_optimal])
        ax.axvline(point[0], color="black", linestyle=":", linewidth=1)
        ax.plot(
            *point,
            linestyle="none",
            marker="*",
            markersize=15,
            color="gold",
            markeredgecolor="black",
            zorder=5,
            label=f"optimal cut-off PD {cutoff:g}",
        )
        net = point[1] - control_cost[at_optimal]
        ax.annotate(
            f"optimal: cut-off PD {cutoff:g}\nnet benefit {net:,.0f}",
            xy=point,
            xytext=(12, -36),
            textcoords="offset points",
            fontsize=8,
            arrowprops={"arrowstyle": "->", "color": "black"},
        )
    _cutoff_ticks(ax, x, data["cutoff_pd"].to_numpy(dtype=float), at_optimal)
    ax.set(
        title=title or "Risk-cost balance of the approval cut-off",
        xlabel="degree of control: applications rejected (%)",
        ylabel="amount (currency units)",
    )
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(EngFormatter())
    ax.grid(alpha=0.3)
    # areas first, in their order, then the curves
    handles = sorted(
        ax.get_legend_handles_labels()[0] + risk.get_legend_handles_labels()[0],
        key=lambda h: h.get_label() if h.get_label()[:1].isdigit() else "5",
    )
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=3, fontsize=8)
    return fig
