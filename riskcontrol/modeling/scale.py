"""The score scale: how a probability of default becomes a 300-900 score.

One object, built from the settings (``RISK_SCORE_BASE``, ``RISK_SCORE_BASE_ODDS``,
``RISK_SCORE_PDO``, ``RISK_SCORE_MIN``, ``RISK_SCORE_MAX``), is used everywhere a score is
made: the scorecard's points are fitted on it and its exported SQL clips to it, batch and
online scoring map every model's PD through it, and the local scorer reads its numbers.

score = base + factor * (ln(odds of good) - ln(base_odds)), factor = pdo / ln 2,
rounded half away from zero and clipped to [low, high]; a missing PD has no score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

# PDs are clipped to [PD_EPSILON, 1 - PD_EPSILON] before the log-odds, so 0 and 1 score.
PD_EPSILON = 1e-6


@dataclass(frozen=True)
class ScoreScale:
    base: int = 600  # the score at ``base_odds``
    base_odds: float = 19.0  # good:bad odds that ``base`` stands for
    pdo: float = 50.0  # points to double the odds
    low: int = 300  # scores are clipped to [low, high]
    high: int = 900

    def __post_init__(self) -> None:
        if not (self.base_odds > 0 and self.pdo > 0):
            raise ValueError(
                f"score scale: base_odds and pdo must be > 0; got {self.base_odds}, {self.pdo}"
            )
        if not self.low < self.high:
            raise ValueError(f"score scale: low {self.low} must be below high {self.high}")

    @classmethod
    def from_settings(cls, settings: Any) -> ScoreScale:
        return cls(
            base=settings.score_base,
            base_odds=settings.score_base_odds,
            pdo=settings.score_pdo,
            low=settings.score_min,
            high=settings.score_max,
        )

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    def as_dict(self) -> dict[str, float]:
        return {
            "base": self.base,
            "base_odds": self.base_odds,
            "pdo": self.pdo,
            "low": self.low,
            "high": self.high,
        }

    def clip(self, raw: Column) -> Column:
        """Round half away from zero and clip to [low, high], as an integer column."""
        return F.least(F.greatest(F.round(raw), F.lit(self.low)), F.lit(self.high)).cast("int")

    def clip_sql(self, raw: str) -> str:
        """``clip`` as Spark SQL text around the expression ``raw``."""
        return f"CAST(LEAST(GREATEST(ROUND({raw}), {self.low}), {self.high}) AS INTEGER)"

    def column(self, pd_col: Column) -> Column:
        """The score of a PD column (null where the PD is null)."""
        p = F.least(F.greatest(pd_col, F.lit(PD_EPSILON)), F.lit(1 - PD_EPSILON))
        raw = F.lit(self.base) + F.lit(self.factor) * (
            F.log((1 - p) / p) - F.lit(math.log(self.base_odds))
        )
        # greatest/least skip nulls: without the guard a missing PD would score ``high``.
        return F.when(pd_col.isNotNull(), self.clip(raw))
