"""Champion against challenger on the decisions the service made.

Every decision scores the champion and, when a challenger is registered, the challenger
too (acting on its share of traffic, or in shadow on all of it). This compares the two
on the same applications: how often their decisions agree, the crosstab of their
decisions, their mean PDs, and the decisions each arm acted on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

DECISIONS = ("approve", "review", "reject")


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

    @property
    def agreement(self) -> float | None:
        return self.agree / self.paired if self.paired else None

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


def compare(records: Iterable[dict[str, Any]]) -> Comparison:
    """Compare over journal records (``DecisionJournal.since(...)`` entries' records)."""
    out = Comparison()
    for r in records:
        out.decisions += 1
        out.by_arm[(r["arm"], r["decision"])] += 1
        champion, challenger = r.get("champion"), r.get("challenger")
        if not champion or not challenger:
            continue
        out.paired += 1
        out.models.add((champion["model"], challenger["model"]))
        out.agree += champion["decision"] == challenger["decision"]
        out.crosstab[(champion["decision"], challenger["decision"])] += 1
        out.champion_pd_sum += champion["pd"]
        out.challenger_pd_sum += challenger["pd"]
    return out


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
    return "\n".join(lines)
