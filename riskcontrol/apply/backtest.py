"""Policy backtest: replay a proposed policy against the active one on history.

A policy (model, cut-off, rules) is one versioned object, backtested before it is approved.
``replay`` decides every historical application under both policies and reports, per
policy, the approvals, their bad rate, expected loss and profit; the same by segment; the
swap matrix (active decision x proposed decision) and the swap-in set (rejected by the
active policy, lent by the proposed) and swap-out set (the reverse); and which policy rule
drove the rule-driven swaps.

Decisions. A row whose fired rules include one of the policy's ``rules`` is rejected (a
rule reject wins over the thresholds); otherwise PD < ``approve_below_pd`` approves, PD >=
``reject_from_pd`` rejects and the band in between goes to a manual review, with the
thresholds of the first ``SegmentOverride`` the row matches, if any. A review approves
after the manual check, as in ``riskcost``: "approvals" counts approve and review (the
rows lent), "reviews" the reviewed among them, and approvals + rejections = applications.

Economics: the same as ``riskcost.sweep``, with the policy's own thresholds in place of the
cost model's review band (``CostModel.review_band`` and ``risk_tolerance`` are not used).
A lent good earns its ``revenue`` column if the history has one, else exposure x
``good_margin``; a lent bad loses exposure x ``lgd``; each review costs ``review_cost``;
and a review catches (declines) ``review_catch`` of the bads it sees, whose loss is then
avoided and who then count neither as bads nor as lent in the bad rate (bads -
caught) / (approvals - caught) and the residual risk (expected loss / (approved exposure
- caught exposure)), as in the sweep. All of it is summed over the approvals with an
outcome (known, or inferred below); an approval without one (an immature loan) is counted
as an approval but enters no rate, loss or profit, nor does its review cost.

Reject inference. The historically rejected have no outcome, so a policy that lends to
them (the swap-in set) cannot be judged on known outcomes alone. Each result is given
for three methods:

- ``none``: known outcomes only;
- ``parcelling``: the known-outcome rows are grouped into bands of the inference PD (the
  caller's band edges, or the deciles of the known rows' PD), and each unknown rejected
  row gets its band's observed bad rate times ``reject_factor`` (default 1.0; a factor
  above 1 says a rejected applicant is worse than an accepted one at the same score,
  common practice since the historical decision saw more than the score), capped at 1. A
  band without known outcomes takes the overall known bad rate times the factor, and the
  result says how many rows that happened to;
- ``fuzzy`` (fuzzy augmentation): each unknown rejected row counts as a bad with weight
  ``p`` and a good with weight ``1 - p``, ``p`` being the inference PD rescaled by one
  calibration-in-the-large factor (the observed bad rate of the known-outcome rows over
  their mean PD, so that on those rows the mean rescaled PD equals the observed rate),
  capped at 1.

Either way an unknown rejected row enters the sums with an expected bad count in [0, 1].
Historically approved rows without an outcome (immature loans) are never inferred.

The inference PD is the active model's (``pd_active``) unless the caller asks for the
proposed model's (``replay(..., inference_pd="pd_proposed")``): the unknown outcomes are
inferred with the model already validated in production, not with the candidate under
test. The rejected region is where a candidate is least tested (one fitted on approved
loans only extrapolates there), and inferring with its own PD would let it grade its own
homework: whatever its PD gets wrong on the rejected, the inferred outcomes of its
swap-ins get wrong too, and the backtest could not tell. Parcelling on the active PD has
a limit to watch: if the history was decided on that PD, its bands above the active
cut-off hold known outcomes only where rejects were let through, and the others take the
overall known rate (``fallback_rows`` in the result's details).

A range, not one figure. The swap-in set is, by construction, where the two models
disagree: the active model's PD put its rows above the active cut-off, the proposed
model's below the proposed one. Neither model has earned trust there, so an outcome
inferred with either PD is a guess (on the default synthetic book its rejected rows are
12.8% bad by the generator's hidden outcomes; inference says 27.7% parcelling / 31.8%
fuzzy with the active model's PD, 26.9% / 22.6% with the proposed model's). ``replay``
therefore infers twice, once with each model's PD, and reports for every method the
swap sets' and each policy's ``RANGE_METRICS`` (bad rate, expected loss, profit) as a
range: ``<metric>`` stays the headline figure, inferred with ``inference_pd`` (the active
model's PD by default, so ``metric`` and ``swap`` answer as before), and
``<metric>_low`` / ``<metric>_high`` are the smaller and larger of it and the figure
inferred with the other model's PD (for ``none``, and for a set with nothing to infer,
both equal the headline). The range is the spread between the two models, not a
confidence interval: the truth can lie outside it, as it does on the book above, where
both models overstate the swap-ins' bad rate.

Everything here is plain pandas/numpy over in-memory frames: no Spark and no I/O.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from riskcontrol.apply.riskcost import REVENUE_COLUMN, CostModel, _revenue

DECISIONS = ("approve", "review", "reject")
METHODS = ("none", "parcelling", "fuzzy")
POLICIES = ("active", "proposed")
SWAPS = ("swap_in", "swap_out")
HISTORICAL_DECISIONS = ("approved", "rejected")
# The PD columns reject inference may use; the first, the active model's, is the default.
INFERENCE_PDS = ("pd_active", "pd_proposed")
# The history contract: one row per historical application. ``rules_fired`` and
# ``revenue`` are optional.
HISTORY_COLUMNS = (
    "application_id",
    "pd_active",
    "pd_proposed",
    "exposure",
    "historical_decision",
    "bad",
)
RULES_COLUMN = "rules_fired"
DEFAULT_SEGMENTS = ("channel", "province", "product", "score_band")
MISSING_SEGMENT = "(missing)"
PARCELLING_BANDS = 10  # without band edges: deciles of the known rows' PD
# Metrics of a policy's decisions over a set of rows (see the module docstring).
METRICS = (
    "applications",
    "approvals",
    "reviews",
    "rejections",
    "approval_rate",
    "approved_exposure",
    "known_outcomes",
    "inferred_outcomes",
    "outcomes",
    "bads",
    "bad_rate",
    "expected_loss",
    "residual_risk",
    "profit",
)
# Metrics of a set of rows as a population (swap matrix cells, swap sets).
POPULATION_METRICS = (
    "applications",
    "exposure",
    "known_outcomes",
    "known_bads",
    "known_bad_rate",
    "inferred_outcomes",
    "outcomes",
    "bads",
    "bad_rate",
    "expected_loss",
)
# The metrics given as a range over the two models' PDs (see the module docstring), as
# ``<metric>_low`` and ``<metric>_high`` columns of ``policies`` and ``swaps``.
RANGE_METRICS = ("bad_rate", "expected_loss", "profit")
RANGE_COLUMNS = tuple(f"{m}_{end}" for m in RANGE_METRICS for end in ("low", "high"))
# A shift equal to the allowed amount passes; float noise must not make it fail.
_SHIFT_TOLERANCE = 1e-12


# --------------------------------------------------------------------------- policy


def _is_missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NA
        or (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(value))
    )


def _thresholds(where: str, approve_below: Any, reject_from: Any) -> tuple[float, float]:
    """The two thresholds as floats, or a ValueError saying what to fix."""
    for name, value in (("approve_below_pd", approve_below), ("reject_from_pd", reject_from)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
            raise ValueError(f"{where}: {name} must be a number within [0, 1], got {value!r}")
    low, high = float(approve_below), float(reject_from)
    problems = [
        f"{name} {value:g} is outside [0, 1]"
        for name, value in (("approve_below_pd", low), ("reject_from_pd", high))
        if not 0 <= value <= 1
    ]
    if low > high:
        problems.append(
            f"approve_below_pd {low:g} is above reject_from_pd {high:g}: lower approve_below_pd "
            "or raise reject_from_pd (the review band lies between them)"
        )
    if problems:
        raise ValueError(
            f"{where}: " + "; ".join(problems) + " (need 0 <= approve_below_pd <= "
            "reject_from_pd <= 1)"
        )
    return low, high


def _check_keys(
    data: Any, allowed: Sequence[str], required: Sequence[str], what: str
) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(
            f"{what} must be a mapping with keys {', '.join(allowed)}; got {type(data).__name__}"
        )
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ValueError(
            f"{what}: unknown key(s) {', '.join(unknown)}; allowed keys: {', '.join(allowed)}"
        )
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(f"{what}: missing key(s) {', '.join(missing)}")
    return data


@dataclass(frozen=True)
class SegmentOverride:
    """Thresholds of their own for the rows whose ``column`` equals ``value`` (compared with
    ``==``: a value of 3 does not match the string "3")."""

    column: str
    value: str | int | float | bool
    approve_below_pd: float
    reject_from_pd: float

    KEYS = ("column", "value", "approve_below_pd", "reject_from_pd")

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise ValueError(f"segment override: column must be a column name, got {self.column!r}")
        if _is_missing(self.value) or not isinstance(self.value, str | numbers.Real):
            raise ValueError(
                f"segment override on {self.column}: value must be a string or a number, "
                f"got {self.value!r}"
            )
        low, high = _thresholds(
            f"segment override {self.column}={self.value!r}",
            self.approve_below_pd,
            self.reject_from_pd,
        )
        object.__setattr__(self, "approve_below_pd", low)
        object.__setattr__(self, "reject_from_pd", high)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KEYS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str = "segment override") -> SegmentOverride:
        _check_keys(data, cls.KEYS, cls.KEYS, what)
        return cls(**{k: data[k] for k in cls.KEYS})


@dataclass(frozen=True)
class Policy:
    """A versioned lending policy: the ``model`` whose PD it reads (free text, e.g.
    "logistic v3"), its thresholds (approve below ``approve_below_pd``, reject from
    ``reject_from_pd``, review in between), the codes of the ``rules`` that reject when
    they fire (checked in this order), and segment ``overrides`` of the thresholds (the
    first one a row matches wins)."""

    version: str
    model: str
    approve_below_pd: float
    reject_from_pd: float
    rules: tuple[str, ...] = ()
    overrides: tuple[SegmentOverride, ...] = ()

    KEYS = ("version", "model", "approve_below_pd", "reject_from_pd", "rules", "overrides")
    REQUIRED = ("version", "model", "approve_below_pd", "reject_from_pd")

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not self.version:
            raise ValueError(
                f"policy version must be a non-empty string, got {self.version!r} "
                '(in YAML quote a number: version: "3")'
            )
        where = f"policy {self.version}"
        if not isinstance(self.model, str):
            raise ValueError(f"{where}: model must be a string, got {self.model!r}")
        low, high = _thresholds(where, self.approve_below_pd, self.reject_from_pd)
        object.__setattr__(self, "approve_below_pd", low)
        object.__setattr__(self, "reject_from_pd", high)
        if isinstance(self.rules, str) or not isinstance(self.rules, Sequence):
            raise ValueError(
                f"{where}: rules must be a list of rule codes, got {self.rules!r} "
                "(one rule is a list of one)"
            )
        rules = tuple(self.rules)
        wrong = [r for r in rules if not isinstance(r, str) or not r]
        if wrong:
            raise ValueError(f"{where}: rule codes must be non-empty strings, got {wrong}")
        object.__setattr__(self, "rules", rules)
        if not isinstance(self.overrides, Sequence):
            raise ValueError(f"{where}: overrides must be a list, got {self.overrides!r}")
        overrides = tuple(self.overrides)
        seen: set[tuple[str, Any]] = set()
        for i, override in enumerate(overrides, 1):
            if not isinstance(override, SegmentOverride):
                raise ValueError(
                    f"{where}: override {i} must be a SegmentOverride, got {override!r}"
                )
            key = (override.column, override.value)
            if key in seen:
                raise ValueError(
                    f"{where}: override {i} repeats {override.column}={override.value!r}; "
                    "the first match wins, so it would never apply: remove one"
                )
            seen.add(key)
        object.__setattr__(self, "overrides", overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists, not tuples), for a YAML or JSON policy file."""
        return {
            "version": self.version,
            "model": self.model,
            "approve_below_pd": self.approve_below_pd,
            "reject_from_pd": self.reject_from_pd,
            "rules": list(self.rules),
            "overrides": [o.to_dict() for o in self.overrides],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """The policy of a parsed YAML or JSON policy file; unknown keys are refused."""
        _check_keys(data, cls.KEYS, cls.REQUIRED, "policy")
        where = f"policy {data['version']}"
        rules = data.get("rules") or ()
        raw_overrides = data.get("overrides") or ()
        if isinstance(raw_overrides, Mapping | str) or not isinstance(raw_overrides, Sequence):
            raise ValueError(f"{where}: overrides must be a list of mappings")
        overrides = tuple(
            SegmentOverride.from_dict(o, f"{where}: override {i}")
            for i, o in enumerate(raw_overrides, 1)
        )
        return cls(
            version=data["version"],
            model=data["model"],
            approve_below_pd=data["approve_below_pd"],
            reject_from_pd=data["reject_from_pd"],
            rules=rules,
            overrides=overrides,
        )


# ------------------------------------------------------------------------- decisions


def _bad_rows(frame: pd.DataFrame, wrong: np.ndarray, rule: str) -> None:
    if wrong.any():
        rows = frame.index[wrong][:5].tolist()
        raise ValueError(f"{rule}: {int(wrong.sum())} row(s) break it, e.g. index {rows}")


def _pd_array(frame: pd.DataFrame, pd_col: str) -> np.ndarray:
    if pd_col not in frame.columns:
        raise ValueError(f"frame has no PD column {pd_col!r}")
    values = pd.to_numeric(frame[pd_col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    _bad_rows(frame, ~((values >= 0) & (values <= 1)), f"{pd_col} must be a PD within [0, 1]")
    return values


def _row_thresholds(frame: pd.DataFrame, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    low = np.full(len(frame), policy.approve_below_pd)
    high = np.full(len(frame), policy.reject_from_pd)
    taken = np.zeros(len(frame), dtype=bool)
    for override in policy.overrides:
        if override.column not in frame.columns:
            raise ValueError(
                f"policy {policy.version} overrides thresholds on column {override.column!r}, "
                "which the frame does not have"
            )
        match = frame[override.column].eq(override.value).fillna(False).to_numpy(dtype=bool)
        match &= ~taken
        low[match], high[match] = override.approve_below_pd, override.reject_from_pd
        taken |= match
    return low, high


def _fired(frame: pd.DataFrame, rules_col: str | None) -> list[tuple[str, ...]]:
    """Each row's fired rule codes; None or NaN is none fired."""
    if rules_col is None:
        return [()] * len(frame)
    if rules_col not in frame.columns:
        raise ValueError(f"frame has no rules column {rules_col!r} (pass rules_col=None for none)")
    out: list[tuple[str, ...]] = []
    for index, value in zip(frame.index, frame[rules_col], strict=True):
        if isinstance(value, list | tuple | set | frozenset | np.ndarray):
            out.append(tuple(value))
        elif _is_missing(value):
            out.append(())
        else:
            raise ValueError(
                f"{rules_col} must hold a list of fired rule codes (or None) per row; index "
                f"{index} holds {value!r}"
                + (f" (write [{value!r}])" if isinstance(value, str) else "")
            )
    return out


def _rule_array(frame: pd.DataFrame, policy: Policy, rules_col: str | None) -> np.ndarray:
    rule = np.full(len(frame), None, dtype=object)
    if not policy.rules:
        _fired(frame, rules_col)  # still validated
        return rule
    for i, fired in enumerate(_fired(frame, rules_col)):
        if fired:
            hits = set(fired)
            rule[i] = next((code for code in policy.rules if code in hits), None)
    return rule


def _decide(
    frame: pd.DataFrame, policy: Policy, pd_col: str, rules_col: str | None
) -> tuple[np.ndarray, np.ndarray]:
    pd_ = _pd_array(frame, pd_col)
    low, high = _row_thresholds(frame, policy)
    decision = np.where(pd_ < low, "approve", np.where(pd_ >= high, "reject", "review"))
    decision = decision.astype(object)
    rule = _rule_array(frame, policy, rules_col)
    decision[rule != None] = "reject"  # noqa: E711 (elementwise on an object array)
    return decision, rule


def decide(
    frame: pd.DataFrame, policy: Policy, pd_col: str = "pd", rules_col: str | None = RULES_COLUMN
) -> pd.Series:
    """Each row's decision under ``policy``, "approve" / "review" / "reject": a row whose
    ``rules_col`` (a list of fired rule codes, None or NaN for none) holds one of the
    policy's rules is rejected; the others go by the thresholds, a segment override's if
    the row matches one. ``rules_col=None``: no rule fired anywhere."""
    decision, _ = _decide(frame, policy, pd_col, rules_col)
    return pd.Series(decision, index=frame.index, name="decision", dtype=object)


def rejecting_rule(
    frame: pd.DataFrame, policy: Policy, rules_col: str | None = RULES_COLUMN
) -> pd.Series:
    """The policy rule that rejects each row: the first of the policy's rules, in the
    policy's order, among the row's fired ones; None when none of them fired."""
    rule = _rule_array(frame, policy, rules_col)
    return pd.Series(rule, index=frame.index, name="rejecting_rule", dtype=object)


# ------------------------------------------------------------------ reject inference


@dataclass(frozen=True, eq=False)
class Inference:
    """An outcome for every row the method can give one: ``bad`` is the observed 0/1 of a
    known outcome, the expected bad count of an inferred one, NaN otherwise; ``inferred``
    marks the inferred rows (the historically rejected without an outcome); ``details``
    says how the method went (``pd_col``: the PD column it inferred with); ``bands`` and
    ``band`` are parcelling's band table and each row's band."""

    method: str
    bad: pd.Series
    inferred: pd.Series
    details: dict[str, float | int | str]
    bands: pd.DataFrame | None = None
    band: pd.Series | None = None  # parcelling: each row's band number


def _outcomes(history: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 0/1/NaN outcome, and the masks of known outcomes and of rows to infer (no
    outcome, historically rejected)."""
    for col in ("bad", "historical_decision"):
        if col not in history.columns:
            raise ValueError(f"history has no {col} column")
    bad = pd.to_numeric(history["bad"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    raw_missing = history["bad"].isna().to_numpy()
    _bad_rows(
        history,
        ~(np.isin(bad, (0.0, 1.0)) | raw_missing),
        "bad must be 1 (bad), 0 (good) or missing (outcome unknown)",
    )
    decided = history["historical_decision"].to_numpy(dtype=object)
    _bad_rows(
        history,
        ~np.isin(decided, HISTORICAL_DECISIONS),
        "historical_decision must be 'approved' or 'rejected'",
    )
    known = ~np.isnan(bad)
    return bad, known, ~known & (decided == "rejected")


def _no_inference(history: pd.DataFrame) -> Inference:
    bad, known, _ = _outcomes(history)
    return Inference(
        "none",
        pd.Series(np.where(known, bad, np.nan), index=history.index, name="bad"),
        pd.Series(False, index=history.index, name="inferred"),
        {"inferred_rows": 0},
    )


def _need_known(known: np.ndarray, method: str) -> None:
    if not known.any():
        raise ValueError(
            f"{method} reject inference needs rows with a known outcome (bad 0 or 1); "
            "the history has none"
        )


def parcelling(
    history: pd.DataFrame,
    band_edges: Sequence[float] | None = None,
    reject_factor: float = 1.0,
    pd_col: str = "pd_active",
) -> Inference:
    """Parcelling: each unknown rejected row gets the observed bad rate of the known rows in
    its ``pd_col`` band, times ``reject_factor``, capped at 1. Bands: ``band_edges`` in
    increasing order, band i holding ``edges[i] <= PD < edges[i + 1]`` (PDs below the first
    edge join the first band, at or above the last edge the last band); without edges, the
    deciles of the known rows' PD. A band without known outcomes takes the overall known
    rate times the factor (``details["fallback_rows"]`` counts the rows it gave one to)."""
    if isinstance(reject_factor, bool) or not (
        isinstance(reject_factor, numbers.Real) and math.isfinite(reject_factor)
    ):
        raise ValueError(f"reject_factor must be a number > 0, got {reject_factor!r}")
    if not reject_factor > 0:
        raise ValueError(
            f"reject_factor must be > 0 (1.0: rejects like accepts), got {reject_factor}"
        )
    bad, known, unknown = _outcomes(history)
    _need_known(known, "parcelling")
    pd_ = _pd_array(history, pd_col)
    if band_edges is None:
        edges = np.unique(np.quantile(pd_[known], np.linspace(0.0, 1.0, PARCELLING_BANDS + 1)))
    else:
        edges = np.asarray(list(band_edges), dtype=float)
        if len(edges) < 2 or not (np.diff(edges) > 0).all():
            raise ValueError(
                f"band_edges must be at least two strictly increasing PDs, got {edges.tolist()}"
            )
    count = max(len(edges) - 1, 1)
    band = np.searchsorted(edges[1:-1], pd_, side="right")
    known_n = np.bincount(band[known], minlength=count).astype(float)
    known_bads = np.bincount(band[known], weights=bad[known], minlength=count)
    overall = float(bad[known].mean())
    observed = np.divide(known_bads, known_n, out=np.full(count, np.nan), where=known_n > 0)
    raw = np.where(known_n > 0, observed, overall) * reject_factor
    rate = np.minimum(raw, 1.0)
    unknown_n = np.bincount(band[unknown], minlength=count)
    fallback = known_n == 0
    bands = pd.DataFrame(
        {
            "band": np.arange(count),
            "low": edges[:count],
            "high": edges[1 : count + 1] if len(edges) > 1 else edges[:1],
            "known_outcomes": known_n.astype(np.int64),
            "known_bads": known_bads.astype(np.int64),
            "bad_rate": observed,
            "inferred_rate": rate,
            "unknown_rows": unknown_n.astype(np.int64),
            "fallback": fallback,
        }
    )
    inferred_bad = np.where(known, bad, np.where(unknown, rate[band], np.nan))
    return Inference(
        "parcelling",
        pd.Series(inferred_bad, index=history.index, name="bad"),
        pd.Series(unknown, index=history.index, name="inferred"),
        {
            "pd_col": pd_col,
            "reject_factor": float(reject_factor),
            "bands": count,
            "overall_known_bad_rate": overall,
            "inferred_rows": int(unknown.sum()),
            "fallback_rows": int((unknown & fallback[band]).sum()),
            "capped_rows": int((unknown & (raw[band] > 1.0)).sum()),
        },
        bands,
        pd.Series(band, index=history.index, name="band"),
    )


def fuzzy(history: pd.DataFrame, pd_col: str = "pd_active") -> Inference:
    """Fuzzy augmentation: each unknown rejected row is a bad with weight ``p`` and a good
    with weight ``1 - p``, i.e. an expected bad count ``p`` = its ``pd_col`` times the
    calibration-in-the-large factor (observed bad rate / mean PD of the known-outcome
    rows), capped at 1."""
    bad, known, unknown = _outcomes(history)
    _need_known(known, "fuzzy")
    pd_ = _pd_array(history, pd_col)
    observed = float(bad[known].mean())
    mean_pd = float(pd_[known].mean())
    if mean_pd == 0:
        raise ValueError(
            f"fuzzy reject inference cannot calibrate {pd_col}: its mean over the known-outcome "
            "rows is 0"
        )
    factor = observed / mean_pd
    scaled = pd_ * factor
    inferred_bad = np.where(known, bad, np.where(unknown, np.minimum(scaled, 1.0), np.nan))
    return Inference(
        "fuzzy",
        pd.Series(inferred_bad, index=history.index, name="bad"),
        pd.Series(unknown, index=history.index, name="inferred"),
        {
            "pd_col": pd_col,
            "calibration_factor": factor,
            "observed_bad_rate": observed,
            "mean_pd_known": mean_pd,
            "inferred_rows": int(unknown.sum()),
            "capped_rows": int((unknown & (scaled > 1.0)).sum()),
        },
    )


# ---------------------------------------------------------------------------- replay


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """What ``replay`` found. Frames, all tidy (long), ``method`` one of ``METHODS``:

    - ``policies``: method, policy ("active"/"proposed"), version, model, ``METRICS``,
      ``RANGE_COLUMNS``;
    - ``segments``: method, segment_type (the column), segment (its value as a string),
      policy, ``METRICS``;
    - ``swap_matrix``: method, active, proposed (the two decisions; all nine pairs),
      ``POPULATION_METRICS``;
    - ``swaps``: method, swap ("swap_in": active rejects, proposed approves or reviews;
      "swap_out": the reverse), ``POPULATION_METRICS`` and ``profit``, what lending the set
      earns under the policy that lends it (the proposed for a swap-in, the active for a
      swap-out), its reviews costing and catching as in ``METRICS``; the population
      metrics are the rows' own outcomes, before any review catch; ``RANGE_COLUMNS``;
    - ``swap_rules``: swap, policy (whose rule), rule, applications, exposure: a swap-in
      rejected by an active rule, a swap-out rejected by a proposed rule;
    - ``rows``: per application its decisions, rejecting rules, swap, outcome ("known",
      "inferred" or "unknown"), parcelling band and the two methods' inferred bad;
    - ``bands``: parcelling's band table.

    ``inference`` holds each method's details (``pd_col``, the PD column parcelling and
    fuzzy inferred with, ``fallback_rows``, ``calibration_factor``, ...); ``notes`` what
    the caller should know about the history, and with which model's PD the outcomes were
    inferred."""

    active: Policy
    proposed: Policy
    cost: CostModel
    policies: pd.DataFrame
    segments: pd.DataFrame
    swap_matrix: pd.DataFrame
    swaps: pd.DataFrame
    swap_rules: pd.DataFrame
    rows: pd.DataFrame
    bands: pd.DataFrame
    inference: dict[str, dict[str, float | int | str]]
    notes: tuple[str, ...]

    def metric(self, policy: str, name: str, method: str = "none") -> float:
        """One policy's metric, e.g. ``metric("proposed", "bad_rate", "fuzzy")``, or the
        end of its range, e.g. ``metric("proposed", "bad_rate_high", "fuzzy")``."""
        row = self.policies[
            (self.policies["policy"] == policy) & (self.policies["method"] == method)
        ]
        if len(row) != 1 or name not in (*METRICS, *RANGE_COLUMNS):
            raise KeyError(f"no metric {name!r} of policy {policy!r} under method {method!r}")
        return row[name].iloc[0]

    def swap(self, swap: str, name: str, method: str = "none") -> float:
        """One swap set's metric, e.g. ``swap("swap_in", "bad_rate", "parcelling")``."""
        row = self.swaps[(self.swaps["swap"] == swap) & (self.swaps["method"] == method)]
        if len(row) != 1 or name not in self.swaps.columns:
            raise KeyError(f"no metric {name!r} of {swap!r} under method {method!r}")
        return row[name].iloc[0]

    def matrix(self, value: str = "applications", method: str = "none") -> pd.DataFrame:
        """The 3x3 swap matrix of one value: active decision down, proposed across."""
        cells = self.swap_matrix[self.swap_matrix["method"] == method]
        if cells.empty or value not in POPULATION_METRICS:
            raise KeyError(f"no swap matrix of {value!r} under method {method!r}")
        table = cells.pivot(index="active", columns="proposed", values=value)
        return table.reindex(index=list(DECISIONS), columns=list(DECISIONS))


def _validate_history(history: pd.DataFrame, segments: Sequence[str]) -> list[str]:
    missing = [c for c in (*HISTORY_COLUMNS, *segments) if c not in history.columns]
    if missing:
        raise ValueError(
            f"history lacks column(s) {missing}; it needs {', '.join(HISTORY_COLUMNS)}, the "
            f"segment columns {list(segments)}, optionally {RULES_COLUMN} and {REVENUE_COLUMN}"
        )
    if history.empty:
        raise ValueError("history is empty: the backtest needs historical applications")
    duplicated = history["application_id"].duplicated()
    if duplicated.any():
        ids = history.loc[duplicated, "application_id"].head(5).tolist()
        raise ValueError(f"application_id must be unique; repeated: {ids}")
    exposure = pd.to_numeric(history["exposure"], errors="coerce").to_numpy(dtype=float)
    _bad_rows(history, ~(exposure >= 0), "exposure must be a non-negative amount")
    notes = []
    if RULES_COLUMN not in history.columns:
        notes.append(f"history has no {RULES_COLUMN} column: no policy rule fired on any row")
    return notes


def _contributions(
    decision: np.ndarray,
    bad: np.ndarray,
    known: np.ndarray,
    inferred: np.ndarray,
    exposure: np.ndarray,
    revenue: np.ndarray,
    cost: CostModel,
) -> pd.DataFrame:
    """Each row's share of the sums behind ``METRICS`` (riskcost's economics)."""
    lent = decision != "reject"
    reviewed = decision == "review"
    has = lent & ~np.isnan(bad)
    bad0 = np.where(has, bad, 0.0)
    caught = bad0 * np.where(reviewed, cost.review_catch, 0.0)
    loss = cost.lgd * exposure * (bad0 - caught)
    return pd.DataFrame(
        {
            "applications": np.ones(len(decision)),
            "approvals": lent.astype(float),
            "reviews": reviewed.astype(float),
            "rejections": (~lent).astype(float),
            "approved_exposure": np.where(lent, exposure, 0.0),
            "known_outcomes": (lent & known).astype(float),
            "inferred_outcomes": (lent & inferred).astype(float),
            "outcomes": has.astype(float),
            "bads": bad0 - caught,
            "kept": has - caught,
            "kept_exposure": np.where(has, exposure, 0.0) - exposure * caught,
            "expected_loss": loss,
            "profit": np.where(
                has, revenue * (1.0 - bad0) - loss - cost.review_cost * reviewed, 0.0
            ),
        }
    )


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).astype(float)


def _metrics(sums: pd.DataFrame) -> pd.DataFrame:
    out = sums.copy()
    counts = ("applications", "approvals", "reviews", "rejections")
    for col in (*counts, "known_outcomes", "inferred_outcomes", "outcomes"):
        out[col] = out[col].round().astype(np.int64)
    out["approval_rate"] = _ratio(sums["approvals"], sums["applications"])
    out["bad_rate"] = _ratio(sums["bads"], sums["kept"])
    out["residual_risk"] = _ratio(sums["expected_loss"], sums["kept_exposure"])
    return out[list(METRICS)]


def _population(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    sums = frame.groupby(keys, sort=False).sum(numeric_only=True)
    sums["known_bad_rate"] = _ratio(sums["known_bads"], sums["known_outcomes"])
    sums["bad_rate"] = _ratio(sums["bads"], sums["outcomes"])
    for col in ("applications", "known_outcomes", "known_bads", "inferred_outcomes", "outcomes"):
        sums[col] = sums[col].round().astype(np.int64)
    return sums


def _segment_key(values: pd.Series) -> np.ndarray:
    return np.array([MISSING_SEGMENT if _is_missing(v) else str(v) for v in values], dtype=object)


def replay(
    history: pd.DataFrame,
    active: Policy,
    proposed: Policy,
    cost: CostModel,
    segments: Sequence[str] = DEFAULT_SEGMENTS,
    band_edges: Sequence[float] | None = None,
    reject_factor: float = 1.0,
    inference_pd: str = "pd_active",
) -> BacktestResult:
    """Backtest ``proposed`` against ``active`` on ``history`` (the columns of
    ``HISTORY_COLUMNS`` plus the ``segments`` columns; ``rules_fired`` and ``revenue``
    optional; ``bad`` NaN where the outcome is unknown). The active policy decides by
    ``pd_active``, the proposed by ``pd_proposed``; the reject inference (``band_edges``
    and ``reject_factor`` for parcelling) works on ``inference_pd``, one of
    ``INFERENCE_PDS``: by default the active model's PD, validated in production, so that
    the proposed model does not infer the outcomes it is judged on (see the module
    docstring). Every result is given per method of ``METHODS``; see ``BacktestResult``.
    The inference is run again on the other model's PD (same ``band_edges`` and
    ``reject_factor``) for the ``RANGE_METRICS`` ranges, ``<metric>_low`` and
    ``<metric>_high``, of ``policies`` and ``swaps``."""
    if inference_pd not in INFERENCE_PDS:
        raise ValueError(
            "inference_pd must be 'pd_active' (the active model's PD, the default) or "
            f"'pd_proposed' (the proposed model's), got {inference_pd!r}"
        )
    args = (history, active, proposed, cost)
    headline = _replay(*args, segments, band_edges, reject_factor, inference_pd)
    other_pd = next(c for c in INFERENCE_PDS if c != inference_pd)
    other = _replay(*args, (), band_edges, reject_factor, other_pd)
    return replace(
        headline,
        policies=_with_range(headline.policies, other.policies, ["method", "policy"]),
        swaps=_with_range(headline.swaps, other.swaps, ["method", "swap"]),
    )


def _with_range(headline: pd.DataFrame, other: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``headline`` with ``<metric>_low`` and ``<metric>_high`` of each ``RANGE_METRICS``:
    the smaller and larger of its figure and ``other``'s (the same rows, matched on
    ``keys``)."""
    theirs = headline[keys].merge(other, on=keys, how="left", validate="one_to_one")
    out = headline.copy()
    for name in RANGE_METRICS:
        mine, alt = out[name].to_numpy(dtype=float), theirs[name].to_numpy(dtype=float)
        out[f"{name}_low"] = np.minimum(mine, alt)
        out[f"{name}_high"] = np.maximum(mine, alt)
    return out


def _replay(
    history: pd.DataFrame,
    active: Policy,
    proposed: Policy,
    cost: CostModel,
    segments: Sequence[str],
    band_edges: Sequence[float] | None,
    reject_factor: float,
    inference_pd: str,
) -> BacktestResult:
    """``replay`` with one inference PD: no ranges."""
    segments = list(segments)
    notes = _validate_history(history, segments)
    rules_col = RULES_COLUMN if RULES_COLUMN in history.columns else None
    exposure = pd.to_numeric(history["exposure"]).to_numpy(dtype=float)
    revenue = _revenue(history, exposure, cost)
    decisions = {
        "active": _decide(history, active, "pd_active", rules_col),
        "proposed": _decide(history, proposed, "pd_proposed", rules_col),
    }
    bad, known, unknown = _outcomes(history)
    inferences = {
        "none": _no_inference(history),
        "parcelling": parcelling(history, band_edges, reject_factor, inference_pd),
        "fuzzy": fuzzy(history, inference_pd),
    }
    immature = ~known & ~unknown
    if immature.any():
        notes.append(
            f"{int(immature.sum())} historically approved row(s) have no outcome yet (immature):"
            " counted in the decisions, left out of every rate, loss and profit"
        )
    notes.append(_inference_pd_note(inference_pd, active, proposed))
    policy_of = {"active": active, "proposed": proposed}
    active_d, proposed_d = decisions["active"][0], decisions["proposed"][0]
    swap_of = {
        "swap_in": (active_d == "reject") & (proposed_d != "reject"),
        "swap_out": (active_d != "reject") & (proposed_d == "reject"),
    }
    lender = {"swap_in": "proposed", "swap_out": "active"}
    seg_keys = {s: _segment_key(history[s]) for s in segments}

    policy_rows, segment_frames, matrix_frames, swap_rows = [], [], [], []
    for method, inference in inferences.items():
        method_bad = inference.bad.to_numpy(dtype=float)
        inferred = inference.inferred.to_numpy(dtype=bool)
        contributions = {
            name: _contributions(
                decisions[name][0], method_bad, known, inferred, exposure, revenue, cost
            )
            for name in POLICIES
        }
        for name, contrib in contributions.items():
            total = _metrics(contrib.sum().to_frame().T).reset_index(drop=True)
            labels = {
                "method": method,
                "policy": name,
                "version": policy_of[name].version,
                "model": policy_of[name].model,
            }
            policy_rows.append(pd.concat([pd.DataFrame([labels]), total], axis=1))
            for segment_type, key in seg_keys.items():
                per = _metrics(contrib.groupby(key, sort=True).sum())
                per.insert(0, "policy", name)
                per.insert(0, "segment", per.index.to_numpy())
                per.insert(0, "segment_type", segment_type)
                per.insert(0, "method", method)
                segment_frames.append(per.reset_index(drop=True))

        has = ~np.isnan(method_bad)
        bad0 = np.where(has, method_bad, 0.0)
        population = pd.DataFrame(
            {
                "active": active_d,
                "proposed": proposed_d,
                "applications": 1.0,
                "exposure": exposure,
                "known_outcomes": known.astype(float),
                "known_bads": np.where(known, bad, 0.0),
                "inferred_outcomes": inferred.astype(float),
                "outcomes": has.astype(float),
                "bads": bad0,
                "expected_loss": cost.lgd * exposure * bad0,
            }
        )
        cells = _population(population, ["active", "proposed"])
        cells = cells.reindex(pd.MultiIndex.from_product([DECISIONS, DECISIONS]))
        zero = {c: 0 for c in cells.columns if c not in ("known_bad_rate", "bad_rate")}
        cells = cells.fillna(zero).reset_index(names=["active", "proposed"])
        cells.insert(0, "method", method)
        matrix_frames.append(cells[["method", "active", "proposed", *POPULATION_METRICS]])

        for swap, mask in swap_of.items():
            if mask.any():
                row = _population(population[mask].assign(set=swap), ["set"]).iloc[0].to_dict()
            else:
                row = {c: 0 for c in POPULATION_METRICS}
                row["known_bad_rate"] = row["bad_rate"] = np.nan
            profit = float(contributions[lender[swap]]["profit"].to_numpy()[mask].sum())
            swap_rows.append(
                {"method": method, "swap": swap}
                | {c: row[c] for c in POPULATION_METRICS}
                | {"profit": profit}
            )

    int_cols = ["applications", "known_outcomes", "known_bads", "inferred_outcomes", "outcomes"]
    swap_matrix = pd.concat(matrix_frames, ignore_index=True)
    swaps = pd.DataFrame(swap_rows)
    for frame in (swap_matrix, swaps):
        frame[int_cols] = frame[int_cols].astype(np.int64)

    return BacktestResult(
        active=active,
        proposed=proposed,
        cost=cost,
        policies=pd.concat(policy_rows, ignore_index=True),
        segments=(
            pd.concat(segment_frames, ignore_index=True)
            if segment_frames
            else pd.DataFrame(columns=["method", "segment_type", "segment", "policy", *METRICS])
        ),
        swap_matrix=swap_matrix,
        swaps=swaps,
        swap_rules=_swap_rules(history, active, proposed, decisions, swap_of, exposure),
        rows=_rows(history, decisions, swap_of, known, unknown, inferences),
        bands=inferences["parcelling"].bands,
        inference={m: dict(i.details) for m, i in inferences.items()},
        notes=tuple(notes),
    )


def _inference_pd_note(inference_pd: str, active: Policy, proposed: Policy) -> str:
    if inference_pd == "pd_active":
        return (
            "reject inference: the rejected applications' outcomes inferred with the active "
            f"model's PD (pd_active, {active.model}), not with the proposed model under test"
        )
    return (
        "reject inference: the rejected applications' outcomes inferred with the proposed "
        f"model's PD (pd_proposed, {proposed.model}): the model under test infers the outcomes "
        "it is judged on"
    )


def _swap_rules(
    history: pd.DataFrame,
    active: Policy,
    proposed: Policy,
    decisions: dict[str, tuple[np.ndarray, np.ndarray]],
    swap_of: dict[str, np.ndarray],
    exposure: np.ndarray,
) -> pd.DataFrame:
    """Rule-driven swaps by rule: a swap-in rejected by an active rule, a swap-out by a
    proposed rule; rules in their policy's order, those that drove none left out."""
    rows = []
    for swap, name, policy in (("swap_in", "active", active), ("swap_out", "proposed", proposed)):
        rule = decisions[name][1]
        for code in policy.rules:
            hit = swap_of[swap] & (rule == code)
            if hit.any():
                rows.append(
                    {
                        "swap": swap,
                        "policy": name,
                        "rule": code,
                        "applications": int(hit.sum()),
                        "exposure": float(exposure[hit].sum()),
                    }
                )
    return pd.DataFrame(rows, columns=["swap", "policy", "rule", "applications", "exposure"])


def _rows(
    history: pd.DataFrame,
    decisions: dict[str, tuple[np.ndarray, np.ndarray]],
    swap_of: dict[str, np.ndarray],
    known: np.ndarray,
    unknown: np.ndarray,
    inferences: dict[str, Inference],
) -> pd.DataFrame:
    swap = np.full(len(history), None, dtype=object)
    for name, mask in swap_of.items():
        swap[mask] = name
    parcels = inferences["parcelling"]
    return pd.DataFrame(
        {
            "application_id": history["application_id"].to_numpy(),
            "active_decision": decisions["active"][0],
            "active_rule": decisions["active"][1],
            "proposed_decision": decisions["proposed"][0],
            "proposed_rule": decisions["proposed"][1],
            "swap": swap,
            "outcome": np.where(known, "known", np.where(unknown, "inferred", "unknown")),
            "parcelling_band": parcels.band.to_numpy(),
            "inferred_parcelling": np.where(unknown, parcels.bad.to_numpy(dtype=float), np.nan),
            "inferred_fuzzy": np.where(
                unknown, inferences["fuzzy"].bad.to_numpy(dtype=float), np.nan
            ),
        },
        index=history.index,
    )


# ----------------------------------------------------------------------------- guard


def guard(
    result: BacktestResult,
    max_approval_shift: float,
    max_bad_rate_shift: float,
    method: str = "fuzzy",
) -> list[str]:
    """Plain-English flags, empty when fine: the proposed policy's approval rate, or the bad
    rate of its approvals under ``method`` (default the fuzzy reject inference, so the
    swap-ins count), moves more than the allowed absolute amount (a share: 0.05 is 5
    points) from the active policy's, in either direction. A bad rate that cannot be
    computed (no approval with an outcome) is flagged too."""
    for name, value in (
        ("max_approval_shift", max_approval_shift),
        ("max_bad_rate_shift", max_bad_rate_shift),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
            raise ValueError(f"{name} must be a share >= 0 (0.05 is 5 points), got {value!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    versions = f"active {result.active.version} -> proposed {result.proposed.version}"
    flags = []
    checks = (
        ("approval rate", "approval_rate", max_approval_shift, ""),
        (
            "bad rate of approvals",
            "bad_rate",
            max_bad_rate_shift,
            f" ({method} reject inference)" if method != "none" else " (known outcomes only)",
        ),
    )
    for label, name, allowed, how in checks:
        before = float(result.metric("active", name, method))
        after = float(result.metric("proposed", name, method))
        if math.isnan(before) or math.isnan(after):
            which = "active" if math.isnan(before) else "proposed"
            flags.append(
                f"{label}{how} cannot be compared ({versions}): the {which} policy has no "
                "approval with an outcome"
            )
            continue
        shift = after - before
        if abs(shift) > allowed + _SHIFT_TOLERANCE:
            flags.append(
                f"{label}{how} {'rises' if shift > 0 else 'falls'} from {before:.1%} to "
                f"{after:.1%} ({versions}): {shift * 100:+.1f} points, more than the "
                f"{allowed * 100:.1f} allowed"
            )
    return flags
