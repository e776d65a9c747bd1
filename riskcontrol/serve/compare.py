"""Champion against challenger on the decisions the service made.

Every decision scores the champion and, when a challenger is registered, the challenger
too (acting on its share of traffic, or in shadow on all of it). This compares the two
on the same applications: how often their decisions agree, the crosstab of their
decisions, their mean PDs, and the decisions each arm acted on.

Per policy arm (the requests the champion decided against those the challenger decided,
each labelled with its model and cut-off policy version): decisions, the approval rate
and, among approved applications whose outcome is known, the bad rate, each with a 95%
Wilson score interval, and the challenger's bad rate minus the champion's with Newcombe's
hybrid score interval (Newcombe 1998, method 10: the two Wilson intervals combined).
Outcomes come as a map application key (the journal's keyed pseudonym) -> bad (1/0).

Before outcomes mature, the score distributions: the two models' PDs on the same (paired)
requests (mean, quantiles, the PSI of the challenger's PDs on the champion's decile bins
against its sampling noise, and the two-sample Kolmogorov-Smirnov statistic), and each
arm's PDs on the requests it decided. No identifier is kept in the result.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from riskcontrol.apply.warning import NOISE_SE, PSI_FLOOR, decile_bins

DECISIONS = ("approve", "review", "reject")
ARMS = ("champion", "challenger")
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (None without observations)."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> dict[str, float] | None:
    """p2 - p1 with Newcombe's hybrid score interval (method 10): the difference minus
    (plus) the root sum of squares of each proportion's distance to its Wilson bounds."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p2 - p1
    return {
        "difference": d,
        "low": d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
        "high": d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2),
    }


def psi_noise(recent: int, reference: int, bins: int) -> float:
    """``warning.stability_noise`` on plain numbers (it takes Spark columns, and this
    module runs without Spark; a test holds the two equal): ``NOISE_SE`` standard errors
    above the PSI two samples of one population reach by chance,
    (1/recent + 1/reference) * (df + NOISE_SE * sqrt(2 df)), df = max(bins - 1, 1).
    For two models' PDs on the same requests the samples are not independent, so this
    is a yardstick of sampling noise, not an exact test."""
    df = max(bins - 1, 1)
    return (1 / recent + 1 / reference) * (df + NOISE_SE * math.sqrt(2 * df))


def psi(actual: Iterable[float], reference: Iterable[float]) -> dict[str, Any] | None:
    """PSI of ``actual`` against ``reference`` on the reference's decile bins (as the
    ``score_psi`` indicator: ``warning.decile_bins``, shares floored at ``PSI_FLOOR``)."""
    actual, reference = np.asarray(list(actual), float), np.asarray(list(reference), float)
    if not len(actual) or not len(reference):
        return None
    edges, counts = decile_bins(reference)
    expected = counts / len(reference)
    got = np.bincount(np.searchsorted(edges, actual, side="left"), minlength=len(expected))
    a = np.maximum(got / len(actual), PSI_FLOOR)
    e = np.maximum(expected, PSI_FLOOR)
    value = float(np.sum((a - e) * np.log(a / e)))
    noise = psi_noise(len(actual), len(reference), len(expected))
    return {"psi": value, "noise": noise, "beyond_noise": value > noise, "bins": len(expected)}


def ks(a: Iterable[float], b: Iterable[float]) -> float | None:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap of the two ECDFs."""
    a, b = np.sort(np.asarray(list(a), float)), np.sort(np.asarray(list(b), float))
    if not len(a) or not len(b):
        return None
    at = np.concatenate([a, b])
    gap = np.searchsorted(a, at, side="right") / len(a) - np.searchsorted(
        b, at, side="right"
    ) / len(b)
    return float(np.max(np.abs(gap)))


def distribution(pds: list[float]) -> dict[str, Any]:
    """Count, mean and the 10/25/50/75/90% quantiles (linear interpolation) of PDs."""
    if not pds:
        return {"n": 0, "mean": None, "quantiles": None}
    q = np.quantile(np.asarray(pds, float), QUANTILES)
    return {
        "n": len(pds),
        "mean": float(np.mean(pds)),
        "quantiles": {f"p{round(k * 100)}": float(v) for k, v in zip(QUANTILES, q, strict=True)},
    }


@dataclass
class Arm:
    """The requests one arm decided (no identifier kept)."""

    decisions: int = 0
    approved: int = 0
    approved_known: int = 0  # approved, with a matured outcome
    bad: int = 0  # of those, bad
    pds: list = field(default_factory=list)  # the acting model's PD of each decision
    labels: Counter = field(default_factory=Counter)  # (model, policy version) -> n

    def as_dict(self) -> dict[str, Any]:
        approval = wilson(self.approved, self.decisions)
        bad = wilson(self.bad, self.approved_known)
        return {
            "decisions": self.decisions,
            "models": [
                {"model": m, "policy_version": p, "decisions": n}
                for (m, p), n in sorted(self.labels.items(), key=lambda kv: str(kv[0]))
            ],
            "approved": self.approved,
            "approval_rate": self.approved / self.decisions if self.decisions else None,
            "approval_rate_ci95": list(approval) if approval else None,
            "approved_with_outcome": self.approved_known,
            "bad": self.bad,
            "bad_rate": self.bad / self.approved_known if self.approved_known else None,
            "bad_rate_ci95": list(bad) if bad else None,
            "pd_distribution": distribution(self.pds),
        }


@dataclass
class Comparison:
    decisions: int = 0  # decisions read
    paired: int = 0  # scored by both models
    agree: int = 0
    crosstab: Counter = field(default_factory=Counter)  # (champion, challenger) -> n
    champion_pd_sum: float = 0.0
    challenger_pd_sum: float = 0.0
    by_arm: Counter = field(default_factory=Counter)  # (arm, final decision) -> n
    models: set = field(default_factory=set)
    champion_pds: list = field(default_factory=list)  # paired requests, in order
    challenger_pds: list = field(default_factory=list)
    arms: dict = field(default_factory=dict)  # arm -> Arm
    outcomes_given: bool = False  # an outcome map was passed (it may match nothing)

    @property
    def agreement(self) -> float | None:
        return self.agree / self.paired if self.paired else None

    @property
    def outcomes_known(self) -> int:
        return sum(a.approved_known for a in self.arms.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "decisions": self.decisions,
            "paired": self.paired,
            "agreement": self.agreement,
            "champion_mean_pd": self.champion_pd_sum / self.paired if self.paired else None,
            "challenger_mean_pd": self.challenger_pd_sum / self.paired if self.paired else None,
            "crosstab": {f"{a}->{b}": n for (a, b), n in sorted(self.crosstab.items())},
            "by_arm": {f"{a}:{d}": n for (a, d), n in sorted(self.by_arm.items())},
            "models": sorted(self.models),
        }

    def bad_rate_difference(self) -> dict[str, float] | None:
        """Challenger arm's bad rate minus the champion arm's, Newcombe's 95% interval."""
        one, two = self.arms.get("champion"), self.arms.get("challenger")
        if one is None or two is None:
            return None
        return newcombe(one.bad, one.approved_known, two.bad, two.approved_known)

    def score_comparison(self) -> dict[str, Any]:
        """The two models' PDs on the paired requests."""
        return {
            "paired": self.paired,
            "champion": distribution(self.champion_pds),
            "challenger": distribution(self.challenger_pds),
            "psi": psi(self.challenger_pds, self.champion_pds),
            "ks": ks(self.champion_pds, self.challenger_pds),
        }

    def summary(self) -> dict[str, Any]:
        """``as_dict`` with the per-arm figures and the score comparison (``--json``)."""
        return {
            **self.as_dict(),
            "outcomes_given": self.outcomes_given,
            "outcomes_known": self.outcomes_known,
            "arms": {a: self.arms[a].as_dict() for a in ARMS if a in self.arms},
            "bad_rate_difference": self.bad_rate_difference(),
            "scores": self.score_comparison(),
        }


def compare(
    records: Iterable[dict[str, Any]], outcomes: Mapping[str, int] | None = None
) -> Comparison:
    """Compare over journal records (``DecisionJournal.since(...)`` entries' records).

    ``outcomes``: application key (``record["application_key"]``, the keyed pseudonym the
    journal and ``gold.decision_log`` carry) -> 1 bad, 0 good, for matured loans only.
    """
    out = Comparison(outcomes_given=outcomes is not None)
    outcomes = outcomes or {}
    for r in records:
        out.decisions += 1
        out.by_arm[(r["arm"], r["decision"])] += 1
        champion, challenger = r.get("champion"), r.get("challenger")
        _arm(out, r, champion, challenger, outcomes)
        if not champion or not challenger:
            continue
        out.paired += 1
        out.models.add((champion["model"], challenger["model"]))
        out.agree += champion["decision"] == challenger["decision"]
        out.crosstab[(champion["decision"], challenger["decision"])] += 1
        out.champion_pd_sum += champion["pd"]
        out.challenger_pd_sum += challenger["pd"]
        out.champion_pds.append(champion["pd"])
        out.challenger_pds.append(challenger["pd"])
    return out


def _arm(out: Comparison, r, champion, challenger, outcomes: Mapping[str, int]) -> None:
    arm = out.arms.setdefault(r["arm"], Arm())
    acting = (challenger if r["arm"] == "challenger" else champion) or {}
    arm.decisions += 1
    arm.labels[(acting.get("model"), (r.get("versions") or {}).get("policy"))] += 1
    pd = r.get("pd", acting.get("pd"))
    if pd is not None:
        arm.pds.append(pd)
    if r["decision"] != "approve":
        return
    arm.approved += 1
    bad = outcomes.get(r.get("application_key"))
    if bad is not None:
        arm.approved_known += 1
        arm.bad += int(bad)


def _rate(value: float | None, ci: list | None) -> str:
    if value is None:
        return f"{'-':>24}"
    return f"{value:>7.1%} [{ci[0]:6.1%}, {ci[1]:6.1%}]"


def _quantiles(d: dict[str, Any]) -> str:
    if not d["n"]:
        return "no PDs"
    q = "  ".join(f"{k} {v:.4f}" for k, v in d["quantiles"].items())
    return f"n {d['n']:,}  mean {d['mean']:.4f}  {q}"


def render(c: Comparison) -> str:
    """The comparison as the text `riskctl decisions compare` prints."""
    lines = [f"decisions: {c.decisions:,}   scored by champion and challenger: {c.paired:,}"]
    if not c.paired:
        lines.append(
            "no decision carries a challenger score: register a challenger "
            "(`riskctl` train / set the 'challenger' alias) and serve with "
            "--shadow or --challenger-share"
        )
    else:
        d = c.as_dict()
        lines.append(f"models (champion, challenger): {', '.join(map(str, d['models']))}")
        lines.append(f"agreement: {d['agreement']:.1%}")
        lines.append(
            f"mean PD: champion {d['champion_mean_pd']:.4f}  challenger "
            f"{d['challenger_mean_pd']:.4f}"
        )
        lines.append("champion (rows) x challenger (columns):")
        lines.append("  " + " " * 9 + "".join(f"{x:>9}" for x in DECISIONS))
        for a in DECISIONS:
            lines.append(f"  {a:9}" + "".join(f"{c.crosstab[(a, b)]:>9,}" for b in DECISIONS))
    lines.append("acted on, by arm:")
    for (arm, decision), n in sorted(c.by_arm.items()):
        lines.append(f"  {arm:10} {decision:8} {n:>9,}")
    lines.extend(_render_arms(c))
    lines.extend(_render_scores(c))
    return "\n".join(lines)


def _render_arms(c: Comparison) -> list[str]:
    s = c.summary()
    if not s["arms"]:
        return []
    lines = [
        "by policy arm (95% Wilson intervals):",
        f"  {'arm':10} {'decisions':>9} {'approval rate':>24} {'with outcome':>12} "
        f"{'bad rate':>24}",
    ]
    for name, a in s["arms"].items():
        lines.append(
            f"  {name:10} {a['decisions']:>9,} "
            f"{_rate(a['approval_rate'], a['approval_rate_ci95'])} "
            f"{a['approved_with_outcome']:>12,} {_rate(a['bad_rate'], a['bad_rate_ci95'])}"
        )
        for m in a["models"]:
            lines.append(
                f"  {'':10} model {m['model'] or '-'}  policy {m['policy_version'] or '-'}"
                f"  ({m['decisions']:,} decisions)"
            )
    diff = s["bad_rate_difference"]
    if not s["outcomes_known"]:
        why = "" if c.outcomes_given else " (give --outcomes to read them from the lake)"
        lines.append(f"outcomes: not known yet for any approved decision{why}")
    elif diff is not None:
        lines.append(
            f"bad rate, challenger - champion: {diff['difference']:+.1%} "
            f"[{diff['low']:+.1%}, {diff['high']:+.1%}] (95%, Newcombe hybrid score)"
        )
    else:
        lines.append("bad rate difference: needs outcomes on both arms' approvals")
    return lines


def _render_scores(c: Comparison) -> list[str]:
    s = c.score_comparison()
    lines = ["score distributions:"]
    if s["paired"]:
        lines.append(f"  same requests, champion PD:   {_quantiles(s['champion'])}")
        lines.append(f"  same requests, challenger PD: {_quantiles(s['challenger'])}")
        p = s["psi"]
        verdict = "beyond" if p["beyond_noise"] else "within"
        lines.append(
            f"  PSI challenger vs champion deciles: {p['psi']:.4f} ({verdict} sampling noise "
            f"{p['noise']:.4f})   KS: {s['ks']:.4f}"
        )
    for name in ARMS:
        if name in c.arms:
            lines.append(f"  decided by {name:10}: {_quantiles(distribution(c.arms[name].pds))}")
    return lines
