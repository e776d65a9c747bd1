"""Loan-book expected loss with horizons: stages, term-structured PDs, EAD and LGD.

The arithmetic of an IFRS 9-style provision, on numbers the book itself gives (pure
numpy and pandas: a transition matrix is 6 x 6, and Spark only counts the moves):

* **Transition matrix** (``transition_matrix``): month-end to month-end moves of loans
  between the states ``STATES`` (current, the three arrears buckets, default = 90+ DPD
  at least once, closed = repaid or prepaid). Default and closed absorb: a loan that
  reached 90 DPD has defaulted whatever it does next, which is what "PD within h
  months" counts.
* **Bucket PDs** (``bucket_pds``): the probability that a loan in each bucket defaults
  within a horizon, ``(P^h)[bucket, default]``: estimates of the book's own, in place of
  constant floors.
* **Horizons** (``horizon_pd``): the model's PD is over the label window (the first
  ``RISK_PERFORMANCE_CYCLES`` installments). A 12-month or lifetime PD keeps the loan's
  relative risk and takes the *shape* of the book's hazard from ``current``:
  ``1 - (1 - pd)^(H(h) / H(label))`` with ``H(h) = -ln(1 - c(h))`` the cumulative hazard
  of the matrix's ``current`` row, so a horizon as long as the label window gives the
  model's PD back.
* **Stages** (``stage``): 3 when 90+ DPD (PD 1); 2 from 30 DPD, the backstop, or when
  flagged for a significant increase in credit risk (lifetime PD); 1 otherwise (12-month
  PD, no longer than the loan has left).
* **EAD** (``amortization``, ``exposure``): outstanding principal (the principal parts of
  the installments not paid), the interest billed and unpaid (past-due installments'
  interest parts), interest accrued since the last due day on the balance, and fees;
  never the future interest of installments not yet due.
* **LGD** (``lgd_from_recoveries``): one minus the recoveries after write-off, discounted
  to the write-off day, over the exposure written off, on write-offs whose workout is
  complete; too few of them and the configured LGD stands, saying so.
* **EL** = PD x LGD x EAD, summed by stage (``expected_loss_by_stage``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

CURRENT = "current"
DEFAULT = "default"
CLOSED = "closed"
ARREARS = ("1-29", "30-59", "60-89")  # the buckets of book.DPD_BUCKETS below 90
STATES = (CURRENT, *ARREARS, DEFAULT, CLOSED)
ABSORBING = (DEFAULT, CLOSED)
TRANSIENT = (CURRENT, *ARREARS)
BACKSTOP_DPD = 30  # stage 2 from this many days past due, whatever the PD says
DEFAULT_DPD = 90  # stage 3 (credit-impaired) from this many days past due
MIN_MOVES = 30  # a transient row estimated from fewer observed moves is too thin
MIN_WRITE_OFFS = 30  # fewer complete workouts than this: the configured LGD stands


@dataclass(frozen=True)
class TransitionMatrix:
    """Observed month-to-month moves between ``STATES`` (``counts[i, j]``: loans in
    state i at one month end and j at the next) and the row-stochastic matrix they give,
    with default and closed absorbing."""

    counts: np.ndarray

    @property
    def probabilities(self) -> np.ndarray:
        p = np.zeros((len(STATES), len(STATES)))
        for i, state in enumerate(STATES):
            if state in ABSORBING:
                p[i, i] = 1.0
            elif self.counts[i].sum() > 0:
                p[i] = self.counts[i] / self.counts[i].sum()
            else:  # never observed: it cannot be estimated, and says so (thin_rows)
                p[i, i] = 1.0
        return p

    def thin_rows(self, min_moves: int = MIN_MOVES) -> dict[str, int]:
        """Transient states observed leaving fewer than ``min_moves`` times: their row
        of probabilities is too thin to estimate from."""
        return {
            s: int(self.counts[STATES.index(s)].sum())
            for s in TRANSIENT
            if self.counts[STATES.index(s)].sum() < min_moves
        }

    def cumulative_default(self, months: int) -> np.ndarray:
        """``c[h, i]``: probability of default within ``h`` months from state ``i``, for
        h = 0..months (row 0 is 0 but for the default state itself)."""
        if months < 0:
            raise ValueError(f"months must be >= 0, got {months}")
        p = self.probabilities
        d = STATES.index(DEFAULT)
        out = np.empty((months + 1, len(STATES)))
        reach = np.eye(len(STATES))
        out[0] = reach[:, d]
        for h in range(1, months + 1):
            reach = reach @ p
            out[h] = reach[:, d]
        return out


def transition_matrix(moves: pd.DataFrame) -> TransitionMatrix:
    """The matrix of ``moves`` (columns ``from_state``, ``to_state``, ``loans``: how many
    loans made that move between two consecutive month ends). A state outside
    ``STATES`` or a negative count is refused; moves out of an absorbing state are
    counted but do not change its row."""
    missing = {"from_state", "to_state", "loans"} - set(moves.columns)
    if missing:
        raise ValueError(f"moves lack column(s) {sorted(missing)}: from_state, to_state, loans")
    unknown = (set(moves["from_state"]) | set(moves["to_state"])) - set(STATES)
    if unknown:
        raise ValueError(f"unknown state(s) {sorted(map(str, unknown))}; states: {STATES}")
    loans = moves["loans"].to_numpy(dtype=float)
    if not (loans >= 0).all():
        raise ValueError("a move's loan count is negative or missing")
    counts = np.zeros((len(STATES), len(STATES)))
    index = {s: i for i, s in enumerate(STATES)}
    np.add.at(
        counts,
        (moves["from_state"].map(index).to_numpy(), moves["to_state"].map(index).to_numpy()),
        loans,
    )
    return TransitionMatrix(counts)


@dataclass(frozen=True)
class BucketPds:
    """PD within ``horizon`` months per starting state, and where each comes from."""

    horizon: int
    pd: dict[str, float]
    source: dict[str, str]


def bucket_pds(
    matrix: TransitionMatrix,
    horizon: int = 12,
    fallback: dict[str, float] | None = None,
    min_moves: int = MIN_MOVES,
) -> BucketPds:
    """Each arrears bucket's PD within ``horizon`` months, ``(P^h)[bucket, default]``.

    A bucket whose own row is thin (``thin_rows``) takes ``fallback[bucket]`` (the
    configured floor) when there is one, and its source says why; without one it is
    refused, naming the bucket and its count."""
    c = matrix.cumulative_default(horizon)[horizon]
    thin = matrix.thin_rows(min_moves)
    out, source = {}, {}
    for bucket in ARREARS:
        if bucket in thin:
            if fallback is None or bucket not in fallback:
                raise ValueError(
                    f"bucket {bucket} was left only {thin[bucket]} time(s) in the history "
                    f"(fewer than {min_moves}): give its PD (RISK_DELINQUENT_PD) or more history"
                )
            out[bucket] = float(fallback[bucket])
            source[bucket] = f"configured: only {thin[bucket]} observed moves out of {bucket}"
        else:
            out[bucket] = float(c[STATES.index(bucket)])
            source[bucket] = (
                f"transition matrix, {int(matrix.counts[STATES.index(bucket)].sum())} moves"
            )
    return BucketPds(horizon, out, source)


def horizon_pd(
    model_pd: Sequence[float], label_months: int, months: Sequence[int], matrix: TransitionMatrix
) -> np.ndarray:
    """The model's label-window PD of each loan carried to ``months`` (per loan) along
    the book's hazard curve from ``current``: ``1 - (1 - pd)^(H(m) / H(label))``.

    A horizon of ``label_months`` gives ``pd`` back; 0 months gives 0; a PD of 1 stays 1.
    Refused when the book shows no default from ``current`` within the label window
    (there is no curve to scale along)."""
    pd_ = np.asarray(model_pd, dtype=float)
    m = np.asarray(months, dtype=int)
    if pd_.shape != m.shape:
        raise ValueError(f"{pd_.shape[0]} PDs but {m.shape[0]} horizons")
    if ((pd_ < 0) | (pd_ > 1) | np.isnan(pd_)).any():
        raise ValueError("a PD is outside [0, 1] or missing")
    if (m < 0).any():
        raise ValueError("a horizon is negative")
    longest = int(max(label_months, m.max(initial=0)))
    c = matrix.cumulative_default(longest)[:, STATES.index(CURRENT)]
    if not c[label_months] > 0:
        raise ValueError(
            f"no default from current within {label_months} months in the history: the "
            "book's hazard curve cannot scale PDs to other horizons"
        )
    with np.errstate(divide="ignore"):
        hazard = -np.log1p(-np.minimum(c, 1.0))
    ratio = hazard[m] / hazard[label_months]
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = 1.0 - np.power(1.0 - pd_, ratio)
    return np.where(pd_ >= 1.0, 1.0, np.where(m == 0, 0.0, scaled))


def stage(dpd: Sequence[int], sicr: Sequence[bool] | None = None) -> np.ndarray:
    """IFRS 9 stage per loan: 3 from ``DEFAULT_DPD``, 2 from the ``BACKSTOP_DPD``
    backstop or when ``sicr`` flags a significant increase in credit risk, else 1."""
    d = np.asarray(dpd, dtype=int)
    flagged = np.zeros(d.shape, dtype=bool) if sicr is None else np.asarray(sicr, dtype=bool)
    return np.where(d >= DEFAULT_DPD, 3, np.where((d >= BACKSTOP_DPD) | flagged, 2, 1))


def bucket_of(dpd: Sequence[int]) -> np.ndarray:
    """The state of a loan ``dpd`` days past due (current below 1, default from 90)."""
    d = np.asarray(dpd, dtype=int)
    return np.select(
        [d >= DEFAULT_DPD, d >= 60, d >= 30, d >= 1], [DEFAULT, "60-89", "30-59", "1-29"], CURRENT
    )


def loan_pds(
    model_pd: Sequence[float],
    dpd: Sequence[int],
    remaining_months: Sequence[int],
    label_months: int,
    matrix: TransitionMatrix,
    sicr: Sequence[bool] | None = None,
    horizon: int = 12,
) -> pd.DataFrame:
    """``stage`` and the PD each loan's EL takes: stage 1 within ``horizon`` months (no
    longer than it has left), stage 2 over its remaining life, stage 3 is 1; a loan in
    arrears has at least the months it needs to reach 90 DPD.

    A current loan's PD is its model PD on the horizon (``horizon_pd``); a loan in
    arrears takes the larger of that and its bucket's PD from the matrix over the same
    months, since arrears say more about a booked loan than its application did."""
    pd_ = np.asarray(model_pd, dtype=float)
    remaining = np.maximum(np.asarray(remaining_months, dtype=int), 0)
    stages = stage(dpd, sicr)
    months = np.where(stages == 1, np.minimum(remaining, horizon), remaining)
    # A loan in arrears past its last due day can still default: it has at least the
    # months it needs to reach DEFAULT_DPD.
    dpd_ = np.asarray(dpd, dtype=int)
    to_default = np.ceil(np.maximum(DEFAULT_DPD - dpd_, 0) / 30.0).astype(int)
    months = np.where((dpd_ >= 1) & (stages < 3), np.maximum(months, to_default), months)
    scaled = horizon_pd(pd_, label_months, months, matrix)
    buckets = bucket_of(dpd)
    c = matrix.cumulative_default(int(months.max(initial=0)))
    from_bucket = c[months, [STATES.index(b) for b in buckets]]
    pd_out = np.where(
        stages == 3, 1.0, np.where(buckets == CURRENT, scaled, np.maximum(scaled, from_bucket))
    )
    return pd.DataFrame(
        {"stage": stages, "bucket": buckets, "horizon_months": months, "pd": pd_out}
    )


# --- exposure ---------------------------------------------------------------------------
def amortization(principal: float, annual_rate: float, term: int) -> pd.DataFrame:
    """An annuity's schedule: per installment (1..term) its ``interest`` and ``principal``
    parts and the ``balance`` after it, at the monthly rate annual_rate / 12."""
    if term < 1 or principal < 0 or annual_rate < 0:
        raise ValueError("need term >= 1, principal >= 0 and annual_rate >= 0")
    r = annual_rate / 12.0
    k = np.arange(1, term + 1)
    if r > 0:
        payment = principal * r / (1.0 - (1.0 + r) ** (-term))
        before = principal * (1.0 + r) ** (k - 1) - payment * ((1.0 + r) ** (k - 1) - 1.0) / r
    else:
        payment = principal / term
        before = principal - payment * (k - 1)
    interest = before * r
    part = payment - interest
    return pd.DataFrame(
        {"installment": k, "interest": interest, "principal": part, "balance": before - part}
    )


def exposure(
    schedule: pd.DataFrame,
    paid: Sequence[bool],
    due_before: Sequence[bool],
    annual_rate: float,
    days_since_due: int,
    fees: float = 0.0,
) -> dict[str, float]:
    """EAD of one loan: the principal parts of its unpaid installments, the interest
    parts of the unpaid ones already due (billed), the interest accrued on the
    outstanding principal for ``days_since_due`` days since the last due day
    (actual/365), and ``fees``; the future interest of installments not yet due is not
    owed and is not exposure."""
    paid_ = np.asarray(paid, dtype=bool)
    due = np.asarray(due_before, dtype=bool)
    if not (len(paid_) == len(due) == len(schedule)):
        raise ValueError("paid and due_before need one flag per installment")
    outstanding = float(schedule["principal"].to_numpy()[~paid_].sum())
    billed = float(schedule["interest"].to_numpy()[~paid_ & due].sum())
    not_yet_due = float(schedule["principal"].to_numpy()[~paid_ & ~due].sum())
    accrued = not_yet_due * annual_rate * max(days_since_due, 0) / 365.0
    return {
        "outstanding_principal": outstanding,
        "billed_interest": billed,
        "accrued_interest": accrued,
        "fees": float(fees),
        "ead": outstanding + billed + accrued + float(fees),
    }


# --- loss given default -------------------------------------------------------------------
@dataclass(frozen=True)
class LgdEstimate:
    lgd: float
    write_offs: int  # complete workouts the estimate stands on (0: the configured LGD)
    exposure: float
    recovered: float  # discounted to the write-off days
    source: str


def lgd_from_recoveries(
    write_offs: pd.DataFrame,
    recoveries: pd.DataFrame,
    as_of: dt.date,
    fallback: float,
    workout_months: int = 12,
    discount_rate: float = 0.0,
    min_write_offs: int = MIN_WRITE_OFFS,
) -> LgdEstimate:
    """The book's LGD: over the write-offs at least ``workout_months`` before ``as_of``
    (``write_offs``: loan_id, written_off_date, ead), the exposure-weighted
    ``1 - PV(recoveries) / ead`` with each loan's LGD within [0, 1]; ``recoveries``
    (loan_id, paid_date, amount) count from the write-off day on, discounted at
    ``discount_rate`` a year (actual/365). Fewer than ``min_write_offs`` complete
    workouts and the configured ``fallback`` stands, its source saying why."""
    for name, frame, cols in (
        ("write_offs", write_offs, {"loan_id", "written_off_date", "ead"}),
        ("recoveries", recoveries, {"loan_id", "paid_date", "amount"}),
    ):
        missing = cols - set(frame.columns)
        if missing:
            raise ValueError(f"{name} lacks column(s) {sorted(missing)}")
    horizon = pd.Timestamp(as_of) - pd.DateOffset(months=workout_months)
    done = write_offs[pd.to_datetime(write_offs["written_off_date"]) <= horizon]
    done = done[done["ead"] > 0]
    if len(done) < min_write_offs:
        return LgdEstimate(
            float(fallback),
            0,
            0.0,
            0.0,
            f"configured RISK_LGD {fallback:g}: {len(done)} default(s) with a complete "
            f"{workout_months}-month workout (needs {min_write_offs})",
        )
    cash = recoveries.merge(done[["loan_id", "written_off_date"]], on="loan_id")
    paid, off = pd.to_datetime(cash["paid_date"]), pd.to_datetime(cash["written_off_date"])
    cash = cash[paid >= off]
    years = (
        pd.to_datetime(cash["paid_date"]) - pd.to_datetime(cash["written_off_date"])
    ).dt.days / 365.0
    cash = cash.assign(pv=cash["amount"].to_numpy(dtype=float) / (1.0 + discount_rate) ** years)
    pv = done["loan_id"].map(cash.groupby("loan_id")["pv"].sum()).fillna(0.0).to_numpy()
    ead = done["ead"].to_numpy(dtype=float)
    loss = np.clip(1.0 - pv / ead, 0.0, 1.0) * ead
    lgd = float(loss.sum() / ead.sum())
    return LgdEstimate(
        lgd,
        len(done),
        float(ead.sum()),
        float(ead.sum() - loss.sum()),
        f"recoveries on {len(done)} defaults with a complete {workout_months}-month workout "
        f"(discounted at {discount_rate:.1%} a year)",
    )


def expected_loss_by_stage(book: pd.DataFrame) -> pd.DataFrame:
    """Loans, EAD, EL and coverage (EL / EAD) per stage 1-3 and in total, from a book with
    ``stage``, ``pd``, ``lgd`` and ``ead`` per loan; a stage with no loan shows zeros."""
    el = book["pd"] * book["lgd"] * book["ead"]
    frame = book.assign(expected_loss=el)
    rows = []
    for s in (1, 2, 3):
        part = frame[frame["stage"] == s]
        rows.append(
            (str(s), len(part), float(part["ead"].sum()), float(part["expected_loss"].sum()))
        )
    rows.append(
        ("total", len(frame), float(frame["ead"].sum()), float(frame["expected_loss"].sum()))
    )
    out = pd.DataFrame(rows, columns=["stage", "loans", "ead", "expected_loss"])
    out["coverage"] = np.divide(
        out["expected_loss"], out["ead"], out=np.zeros(len(out)), where=out["ead"].to_numpy() > 0
    )
    return out
