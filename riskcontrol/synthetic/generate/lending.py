"""Applications, lender decisions, loans and repayment schedules with their performance.

The lender approves with a simple rule on the bureau score, income, inquiries and
current arrears plus noise, so approved loans are a selected sample. Whether a loan
ever falls into arrears is logistic in the latent risk ``z``, the loan size relative to
income, the channel and the employer, plus loan-level noise no feature can see; such a
borrower misses one installment (mostly one of the first four). Everyone else pays on
time or a few days late, late more often around the Spring Festival (January and
February), and now and then in two parts on two days.

A borrower in arrears may cure: after ``m`` missed installments, near the next due date,
with a probability falling with ``m`` (``CURE_P``, lower for a riskier ``z``), paying
every arrear and the installment then due at once, then paying as before; a cured
borrower misses again later with probability ``REDEFAULT_P``. The first missed
installment may be part-paid (the rest comes with a cure, or never). A performing loan
prepays with a small monthly hazard (``PREPAY_HAZARD``, higher for safer borrowers and
later months on book): its remaining installments are settled on that day for their
principal only. A loan 90+ days past due on ``as_of`` is ``defaulted``, written off the
night it reached 90 days; collections later recover part of the principal of some of
the loans that never cure (``_draw_recoveries``), cash that only the settlement files
show.

A deterioration is planted for the early-warning indicators to catch: from
``DETERIORATION_DAYS`` before ``as_of``, a share of the ``DETERIORATION_CHANNEL`` loans
still running then stop paying from their first installment due on or after that day.

``draw_rejected_outcomes`` runs the same simulation for the historically rejected, as if
lent what they asked for: the hidden truth reject inference is judged against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskcontrol.synthetic.generate import reference as ref
from riskcontrol.synthetic.generate.bureau import Bureau, draw_bureau
from riskcontrol.synthetic.generate.dates import DAY, Calendar, add_months, month_index
from riskcontrol.synthetic.generate.population import Population
from riskcontrol.synthetic.generate.rng import KeyedRandom, ragged_index, sigmoid

NONPOSITIVE_AMOUNT_RATE = 0.001
REPEAT_GAP_DAYS = 150  # mean gap from a customer's first application to a later one
# The default definition (riskcontrol.analyze.labels), at the settings' defaults:
PERFORMANCE_CYCLES = 6  # installments judged, = RISK_PERFORMANCE_CYCLES
BAD_DPD = 90  # bad at this many days past due, = RISK_BAD_DPD
INDETERMINATE_DPD = 30  # the indeterminate band's start, = RISK_INDETERMINATE_DPD
WRITE_OFF_DPD = 90  # a loan counts as 'defaulted' once an installment is this late
NEVER = np.iinfo(np.int64).max // 4  # "paid" day of an installment that is never paid

_APPROVAL_CUTOFF = -0.8
_CHANNEL_RISK = np.array([0.0, 0.1, 0.25, 0.55, -0.15])
_DEFAULT_INTERCEPT = -1.85  # more fall into arrears than before: many cure
# Arrears and cures: the chance to cure after 1, 2, 3 and 4+ missed installments (for
# z = 0; the logit falls by CURE_Z per unit of z), on a day in [due + CURE_DAYS[0],
# due + CURE_DAYS[1]) of the next due date, up to CURE_MONTHS_AFTER_TERM months past the
# last one; a cured borrower misses again with REDEFAULT_P, ~3 installments later.
CURE_P = np.array([0.45, 0.25, 0.10, 0.03])
CURE_Z = 0.5
CURE_DAYS = (-10, 6)
CURE_MONTHS_AFTER_TERM = 4
REDEFAULT_P = 0.3
STOP_PART_PAID = 0.25  # share of first missed installments part-paid
PARTIAL_LOGIT = -3.2  # an ordinary installment paid in two parts: sigmoid(this + 0.5 z)
# Prepayment: monthly hazard PREPAY_HAZARD * exp(-PREPAY_Z z) * (1 + PREPAY_MOB (k - 1))
# before installment k >= 2.
PREPAY_HAZARD = 0.009
PREPAY_Z = 0.35
PREPAY_MOB = 0.05
# Seasonality by calendar month (January first): late payment around the Spring Festival.
SEASON_LATE_LOGIT = np.array([0.35, 0.6, 0.1, 0, 0, 0, 0, 0, 0, 0, 0, 0.1])
# Recoveries after a write-off: a loan that never cures gets any with probability
# sigmoid(RECOVERY_LOGIT - 0.4 z); then 1-4 payments, 10-90 days apart, adding up to
# 5-90% of its unpaid principal (less for a riskier z).
RECOVERY_LOGIT = 0.4
_STOP_WEIGHTS = np.concatenate([[0.30, 0.25, 0.18, 0.12], np.full(20, 0.0075)])
DETERIORATION_CHANNEL = "partner_a"  # a value of reference.CHANNELS
DETERIORATION_DAYS = 75  # the deterioration starts this many days before as_of
DETERIORATION_SHARE = 0.35  # share of the channel's running loans that stop paying


def deterioration_start(cal: Calendar) -> int:
    """Day number from which the planted deterioration's loans stop paying."""
    return cal.as_of_day - DETERIORATION_DAYS


@dataclass
class Applications:
    """Applications of a chunk in (customer, time) order, with their bureau reports."""

    customer: np.ndarray  # position of the customer within the chunk
    key: np.ndarray  # global key: customer index * 4 + rank
    applied_ts: np.ndarray
    month: np.ndarray  # month index of applied_at
    purpose: np.ndarray
    channel: np.ndarray
    term: np.ndarray
    amount: np.ndarray  # requested amount as recorded (faults included)
    amount_fault: np.ndarray
    pending: np.ndarray
    approved: np.ndarray
    decided_ts: np.ndarray
    bureau: Bureau


@dataclass
class Loans:
    """Loans of a chunk (one per approved application) and their installments."""

    app: np.ndarray  # position of the application within the chunk
    disbursed_day: np.ndarray
    disbursed_ts: np.ndarray
    principal: np.ndarray
    term: np.ndarray
    rate: np.ndarray
    status: np.ndarray  # 0 active, 1 closed, 2 defaulted, 3 prepaid
    updated_ts: np.ndarray
    matured: np.ndarray  # judged by the default definition's day
    bad: np.ndarray
    indeterminate: np.ndarray
    trouble_day: np.ndarray  # first day the loan was in arrears, -1 if never
    defaults: np.ndarray  # the default draw: falls into arrears at some installment
    inst_loan: np.ndarray  # loan position of each installment
    inst_no: np.ndarray
    due_day: np.ndarray
    amount_due: np.ndarray
    paid_day: np.ndarray  # NEVER when unpaid as of as_of
    paid_ts: np.ndarray
    dpd: np.ndarray
    inst_updated_ts: np.ndarray
    amount_paid: np.ndarray  # as recorded: settled amount, a first part, or 0
    settled_by: np.ndarray  # -1 not settled, 0 ordinary payment, 1 a cure, 2 a prepayment
    part_ts: np.ndarray  # time of a recorded first part, -1 if none
    part_amount: np.ndarray  # the recorded first part, 0 if none
    final_amount: np.ndarray  # the payment that settled it (less a first part); 0 if none
    # per loan
    written_off_ts: np.ndarray  # -1 unless defaulted
    prepay_ts: np.ndarray  # -1 unless prepaid
    prepay_amount: np.ndarray  # the principal a prepayment settled, 0 if none
    written_off_principal: np.ndarray  # principal unpaid of a defaulted loan, 0 otherwise
    # ground truth of the simulation, counted as of as_of
    cures: int
    cures_from_30_dpd: int
    cures_from_90_dpd: int
    cured_loans: int
    redefaults: int
    # collections' recoveries on written-off loans (rows before as_of)
    recovery_loan: np.ndarray  # loan position
    recovery_ts: np.ndarray
    recovery_amount: np.ndarray
    recovery_key: np.ndarray  # a key of its own for the settlement row's draws


def age_at(pop: Population, customer: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Age in (fractional) years of chunk customers at timestamps ``ts``."""
    return (ts // DAY - pop.birth_day[customer]) / 365.2425


def declared_income(pop: Population, apps: Applications) -> np.ndarray:
    """The monthly income each application declared: the customer's income of its day,
    the income from before the record's edit for an application made before it."""
    c = apps.customer
    return np.where(apps.applied_ts < pop.updated_ts[c], pop.income[c], pop.current_income[c])


def draw_applications(seed: int, pop: Population, cal: Calendar) -> Applications:
    """1-3 applications per customer, bureau reports, and the lender's decisions."""
    rng = KeyedRandom(seed, "application")
    cid = pop.index
    crng = KeyedRandom(seed, "customer")
    second = crng.bernoulli(cid, sigmoid(-1.1 + 0.25 * pop.z), "app2")
    third = crng.bernoulli(cid, sigmoid(-1.0 + 0.25 * pop.z), "app3")
    n_apps = 1 + second + (second & third)
    customer, raw_rank = ragged_index(n_apps)
    as_of_ts = cal.as_of_day * DAY
    first = pop.first_app_ts[customer]
    # A later application comes a gap after the first (exponential, REPEAT_GAP_DAYS on
    # average). One that would fall on or after as-of has not happened yet and is left
    # out, as a real book's future applications are: squeezing it into the days left
    # crowded the last month with repeat applications (a fifth of them within 30 days of
    # the one before, against 2-4% a year earlier).
    later_key = cid[customer] * 4 + raw_rank
    gap = -np.log(rng.uniform(later_key, "later_gap")) * REPEAT_GAP_DAYS * DAY
    ts = np.where(raw_rank == 0, first, first + 60 + gap.astype(np.int64))
    kept = ts < as_of_ts
    customer, ts = customer[kept], ts[kept]
    n_apps = np.bincount(customer, minlength=len(cid))
    order = np.lexsort((ts, customer))
    applied_ts = ts[order]
    _, rank = ragged_index(n_apps)
    key = cid[customer] * 4 + rank
    z = pop.z[customer]
    income = pop.income[customer]
    month = month_index(applied_ts // DAY)
    pending = month == cal.last_month
    age = age_at(pop, customer, applied_ts)

    purpose_logits = np.zeros((len(key), len(ref.PURPOSES))) + np.log(
        [0.42, 0.08, 0.06, 0.1, 0.12, 0.1, 0.12]
    )
    purpose_logits[:, 6] += 0.6 * z
    purpose_logits[:, 5] += 0.2 * z
    purpose_logits[:, 2] += 0.2 * z
    purpose = rng.choice(key, _softmax(purpose_logits), "purpose")
    progress = (month - cal.first_month) / max(cal.last_month - cal.first_month, 1)
    channel_logits = np.zeros((len(key), len(ref.CHANNELS))) + np.log([0.45, 0.15, 0.15, 0.1, 0.15])
    channel_logits[:, 3] += 0.3 * z + 1.0 * progress  # partner_b grows over the book
    channel = rng.choice(key, _softmax(channel_logits), "channel")
    term_idx = rng.choice(key, [0.15, 0.3, 0.4, 0.15], "term")
    term = ref.TERMS[term_idx]
    multiple = np.exp(0.45 + 0.25 * z + 0.5 * rng.normal(key, "amount"))
    multiple *= np.array([0.5, 0.8, 1.0, 1.5])[term_idx]
    amount = np.clip(np.round(income * multiple / 500) * 500, 1000, 200_000)
    amount_fault = rng.bernoulli(key, NONPOSITIVE_AMOUNT_RATE, "amount_fault") & ~pending
    amount = np.where(
        amount_fault, np.where(rng.bernoulli(key, 0.5, "fault_sign"), 0.0, -amount), amount
    )

    bureau = draw_bureau(seed, key, z, age, income, applied_ts, cal.drift_month)

    lender = (
        (bureau.score - 620) / 55.0
        + 0.6 * np.log(income / 6000.0)
        - 0.12 * bureau.inquiries_6m
        - 0.8 * (bureau.overdue_accounts > 0)
        - 0.4 * np.log(np.maximum(amount, 1.0) / income / 2.0)
        + 0.8 * rng.normal(key, "lender_noise")
    )
    approved = ~pending & (amount > 0) & (lender > _APPROVAL_CUTOFF)
    manual = rng.bernoulli(key, 0.2, "manual_review")
    delay = np.where(
        manual,
        2 * 3600 + rng.uniform(key, "manual_delay") * 46 * 3600,
        30 + rng.uniform(key, "auto_delay") * 600,
    ).astype(np.int64)
    decided_ts = np.where(pending, -1, np.minimum(applied_ts + delay, as_of_ts - 1))
    return Applications(
        customer=customer,
        key=key,
        applied_ts=applied_ts,
        month=month,
        purpose=purpose,
        channel=channel,
        term=term,
        amount=amount,
        amount_fault=amount_fault,
        pending=pending,
        approved=approved,
        decided_ts=decided_ts,
        bureau=bureau,
    )


def _plant_deterioration(
    seed: int,
    key: np.ndarray,
    channel: np.ndarray,
    disbursed_day: np.ndarray,
    inst_loan: np.ndarray,
    inst_no: np.ndarray,
    due_day: np.ndarray,
    cal: Calendar,
    share: float = DETERIORATION_SHARE,
) -> np.ndarray:
    """Per loan, the installment from which the planted deterioration stops it paying for
    good (``NEVER`` for a loan it does not hit).

    A loan of the deteriorating channel disbursed before the start day, with an
    installment due on or after it, stops paying from that installment with probability
    ``share`` (its own random stream, so no other draw changes; 0 plants nothing): from
    then on it neither pays, part-pays, cures nor prepays.
    """
    start = deterioration_start(cal)
    first_due_after = np.full(len(key), NEVER)
    np.minimum.at(first_due_after, inst_loan, np.where(due_day >= start, inst_no, NEVER))
    hit = (
        (channel == ref.CHANNELS.index(DETERIORATION_CHANNEL))
        & (disbursed_day < start)
        & (first_due_after != NEVER)
        & KeyedRandom(seed, "deterioration").bernoulli(key, share, "stop")
    )
    return np.where(hit, first_due_after, NEVER)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _draw_recoveries(
    seed: int,
    key: np.ndarray,
    z: np.ndarray,
    written_off_ts: np.ndarray,
    never_cures: np.ndarray,
    unpaid_cents: np.ndarray,
    as_of: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Collections' cash on written-off loans that never cure: (loan, ts, amount, key) of
    each payment before ``as_of``, in loan then time order."""
    rrng = KeyedRandom(seed, "recovery")
    cand = np.flatnonzero((written_off_ts >= 0) & never_cures & (unpaid_cents > 0))
    ck = key[cand]
    cz = z[cand]
    some = rrng.bernoulli(ck, sigmoid(RECOVERY_LOGIT - 0.4 * cz), "any")
    share = np.clip(0.25 + 0.5 * rrng.uniform(ck, "share") - 0.12 * cz, 0.05, 0.9)
    total = np.round(unpaid_cents[cand] * share).astype(np.int64)
    count = np.where(some, 1 + rrng.integers(ck, 0, 4, "payments"), 0)
    owner, rank = ragged_index(count)
    rkey = (ck[owner] * 32 + 31) * 8 + 4 + rank
    weight = 0.2 + rrng.uniform(rkey, "weight")
    gap = rrng.integers(rkey, 10, 91, "gap")
    starts = np.cumsum(count) - count
    cum_w, cum_gap = np.cumsum(weight), np.cumsum(gap)
    w_before = (cum_w - weight)[starts[owner]]
    g_before = (cum_gap - gap)[starts[owner]]
    w_total = np.zeros(len(cand))
    np.add.at(w_total, owner, weight)
    last = rank == count[owner] - 1
    cum_cents = np.where(
        last,
        total[owner],
        np.round(total[owner] * (cum_w - w_before) / np.maximum(w_total[owner], 1e-12)),
    ).astype(np.int64)
    cents = cum_cents - np.where(rank > 0, np.roll(cum_cents, 1), 0)
    off_day = written_off_ts[cand][owner] // DAY + cum_gap - g_before
    ts = off_day * DAY + rrng.integers(rkey, 9 * 3600, 21 * 3600, "clock")
    keep = (ts < as_of * DAY) & (cents > 0)
    return cand[owner][keep], ts[keep], cents[keep] / 100.0, rkey[keep]


def _schedule_principal_cents(
    principal: np.ndarray, rate: np.ndarray, term: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """Outstanding principal in cents just after ``k`` installments, on the annuity schedule.

    ``round(B_k * 100)`` with ``B_k = P (1 + r)^k - A* ((1 + r)^k - 1) / r``, ``r`` the
    monthly rate and ``A*`` the unrounded annuity (so ``B_term = 0``). The principal part
    of installment ``j`` is ``B_{j-1} - B_j`` in these cents, so the parts of the
    installments from ``j`` on add up exactly to the principal outstanding before ``j``.
    """
    r = rate / 12.0
    annuity = principal * r / (1.0 - (1.0 + r) ** (-term))
    grow = (1.0 + r) ** k
    balance = principal * grow - annuity * (grow - 1.0) / r
    return np.where(k >= term, 0, np.round(np.maximum(balance, 0.0) * 100.0)).astype(np.int64)


def season_logit(days: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The calendar-month entry of ``table`` (12 values, January first) for each day."""
    return table[month_index(days) % 12]


def draw_loans(
    seed: int,
    pop: Population,
    apps: Applications,
    cal: Calendar,
    deterioration_share: float = DETERIORATION_SHARE,
    lend: np.ndarray | None = None,
    cut: bool = True,
) -> Loans:
    """Loans of the approved applications and their repayment history as of ``as_of``
    (``deterioration_share``: the share of the planted deterioration, 0 for none).

    The history is simulated installment by installment for all loans at once (a loop
    over the installment number, vectorized over loans); every draw is keyed by the
    installment's global key, so no draw depends on the chunk.

    ``lend`` (a mask over the applications, the approved ones by default) and ``cut``
    (False: lend the requested amount, never less) serve ``draw_rejected_outcomes``.
    """
    rng = KeyedRandom(seed, "loan")
    app = np.flatnonzero(apps.approved if lend is None else lend)
    key = apps.key[app]
    customer = apps.customer[app]
    z = pop.z[customer]
    income = pop.income[customer]
    score = apps.bureau.score[app]
    as_of = cal.as_of_day
    nightly = (as_of - 1) * DAY + 2 * 3600

    applied_day = apps.applied_ts[app] // DAY
    disbursed_day = applied_day + rng.choice(key, [0.5, 0.3, 0.15, 0.05], "disburse_lag")
    disbursed_ts = np.maximum(
        disbursed_day * DAY + 9 * 3600 + rng.integers(key, 0, 12 * 3600, "disburse_clock"),
        apps.decided_ts[app] + 60,
    )
    disbursed_day = disbursed_ts // DAY
    if cut:
        is_cut = rng.bernoulli(key, sigmoid(-(score - 600) / 40.0) * 0.6, "cut")
        share = np.where(is_cut, 0.7 + 0.2 * rng.uniform(key, "cut_share"), 1.0)
    else:
        share = np.ones(len(app))
    principal = np.maximum(np.round(apps.amount[app] * share, -2), 1000.0)
    term = apps.term[app]
    rate = np.clip(
        0.24 - 0.12 * sigmoid((score - 650) / 60.0) + 0.01 * rng.normal(key, "rate"), 0.072, 0.24
    ).round(4)

    company_effect = np.where(
        pop.company[customer] >= 0,
        0.5 * KeyedRandom(seed, "company").normal(np.maximum(pop.company[customer], 0), "risk"),
        0.0,
    )
    logit = (
        _DEFAULT_INTERCEPT
        + 1.55 * z
        + 0.45 * np.log(principal / income / 2.0)
        + _CHANNEL_RISK[apps.channel[app]]
        + company_effect
        + 0.7 * rng.normal(key, "default_noise")
    )
    defaults = rng.bernoulli(key, sigmoid(logit), "default")
    stop_p = np.where(np.arange(1, 25)[None, :] <= term[:, None], _STOP_WEIGHTS[None, :], 0.0)
    stop = np.where(
        defaults, 1 + rng.choice(key, stop_p / stop_p.sum(1, keepdims=True), "stop"), NEVER
    )

    nloans = len(app)
    loan, k0 = ragged_index(term)
    k = k0 + 1
    first_inst = np.cumsum(term) - term  # position of each loan's first installment
    ikey = key[loan] * 32 + k
    irng = KeyedRandom(seed, "installment")
    due_day = add_months(disbursed_day[loan], k)
    halt = _plant_deterioration(
        seed, key, apps.channel[app], disbursed_day, loan, k, due_day, cal, deterioration_share
    )
    r = rate[loan] / 12.0
    n = term[loan]
    p = principal[loan]
    amount_due = np.round(p * r / (1.0 - (1.0 + r) ** (-n)), 2)
    due_cents = np.round(amount_due * 100).astype(np.int64)
    # principal part of each installment, in cents (what a prepayment settles it for)
    principal_cents = _schedule_principal_cents(p, rate[loan], n, k - 1) - (
        _schedule_principal_cents(p, rate[loan], n, k)
    )

    # installment-level draws of an ordinary payment (on time, a few days early or late)
    late = irng.bernoulli(
        ikey, sigmoid(-2.6 + 0.6 * z[loan] + season_logit(due_day, SEASON_LATE_LOGIT)), "late"
    )
    late_days = np.minimum(
        1
        + (-np.log(irng.uniform(ikey, "late_days")) * (3.0 + 3.0 * sigmoid(z[loan]))).astype(
            np.int64
        ),
        25,
    )
    early_days = irng.integers(ikey, 0, 4, "early_days")
    ordinary_day = np.where(late, due_day + late_days, due_day - early_days)
    split = irng.bernoulli(ikey, sigmoid(PARTIAL_LOGIT + 0.5 * z[loan]), "partial")
    split_gap = irng.integers(ikey, 1, 11, "partial_gap")
    split_share = 0.2 + 0.6 * irng.uniform(ikey, "partial_share")
    stop_part = irng.bernoulli(ikey, STOP_PART_PAID, "stop_part")
    stop_part_day = due_day + irng.integers(ikey, -3, 11, "stop_part_day")

    # per-installment outcome
    paid = np.full(len(k), NEVER)  # the day it is fully settled (NEVER: not in the history)
    how = np.zeros(len(k), dtype=np.int64)  # 0 ordinary, 1 with a cure, 2 by a prepayment
    part_day = np.full(len(k), NEVER)  # the day of a first part, NEVER if paid in one go
    part_cents = np.zeros(len(k), dtype=np.int64)
    event_key = ikey.copy()  # the key of the payment's clock (a cure's is shared)

    # per-loan state: 0 performing, 1 in arrears (``missed`` installments from ``since``),
    # 2 prepaid
    mode = np.zeros(nloans, dtype=np.int64)
    missed = np.zeros(nloans, dtype=np.int64)
    since = np.zeros(nloans, dtype=np.int64)
    next_miss = stop.copy()
    last_day = disbursed_day.copy()  # day of the loan's latest payment so far
    prepay_k = np.full(nloans, NEVER)
    prepay_day = np.full(nloans, NEVER)
    episodes = np.zeros(nloans, dtype=np.int64)
    cure_loan, cure_day_all, cure_from_due = [], [], []
    redefault_due = []  # due day of the first missed installment of each re-default
    cure_logit0 = np.log(CURE_P / (1.0 - CURE_P))
    lkey = key * 32  # + installment number: the installment keys, also past the term
    for kk in range(1, int(term.max(initial=0)) + 1 + CURE_MONTHS_AFTER_TERM):
        has = term >= kk
        due_k = add_months(disbursed_day, kk)
        key_k = lkey + kk
        inst_k = first_inst + kk - 1  # index of installment kk (valid where ``has``)

        # in arrears: cure near this due date, paying every arrear (and this one) at once
        arrears = (mode == 1) & (kk <= term + CURE_MONTHS_AFTER_TERM)
        cure_p = sigmoid(cure_logit0[np.minimum(missed, len(CURE_P)) - 1] - CURE_Z * z)
        cure = arrears & (kk < halt) & irng.bernoulli(key_k, np.where(arrears, cure_p, 0.0), "cure")
        cure_day = np.maximum(
            due_k + irng.integers(key_k, CURE_DAYS[0], CURE_DAYS[1], "cure_day"), last_day + 1
        )
        cured = np.flatnonzero(cure)
        if len(cured):
            upto = np.minimum(kk, term[cured])
            owner, rank = ragged_index(upto - since[cured] + 1)
            idx = first_inst[cured][owner] + since[cured][owner] - 1 + rank
            paid[idx] = cure_day[cured][owner]
            how[idx] = 1
            event_key[idx] = key_k[cured][owner]
            cure_loan.append(cured)
            cure_day_all.append(cure_day[cured])
            cure_from_due.append(due_day[first_inst[cured] + since[cured] - 1])
            last_day[cured] = cure_day[cured]
            mode[cured] = 0
            missed[cured] = 0
            again = irng.bernoulli(key_k[cured], REDEFAULT_P, "redefault")
            gap = 1 + (-np.log(irng.uniform(key_k[cured], "redefault_gap")) * 3.0).astype(np.int64)
            next_miss[cured] = np.where(again, kk + gap, NEVER)
        missed += arrears & ~cure

        # performing with an installment due: prepay, miss it, or pay it
        going = np.flatnonzero((mode == 0) & has & ~cure)
        g_inst = inst_k[going]
        g_z = z[going]
        hazard = PREPAY_HAZARD * np.exp(-PREPAY_Z * g_z) * (1.0 + PREPAY_MOB * (kk - 1))
        prepay = (kk >= 2) & (kk < halt[going]) & irng.bernoulli(key_k[going], hazard, "prepay")
        pre = going[prepay]
        if len(pre):
            lo = np.maximum(add_months(disbursed_day[pre], kk - 1), last_day[pre]) + 1
            span = np.maximum(due_k[pre] - lo, 1)
            prepay_day[pre] = lo + irng.integers(key_k[pre], 0, span, "prepay_day")
            prepay_k[pre] = kk
            mode[pre] = 2
        rest = ~prepay
        miss = rest & ((next_miss[going] == kk) | (kk >= halt[going]))
        gone = going[miss]
        if len(gone):
            mi = g_inst[miss]
            mode[gone] = 1
            missed[gone] = 1
            since[gone] = kk
            episodes[gone] += 1
            redefault_due.append(due_k[gone][(episodes[gone] > 1) & (kk < halt[gone])])
            part = stop_part[mi] & (kk < halt[gone])
            pday = np.maximum(stop_part_day[mi], last_day[gone] + 1)
            part_day[mi] = np.where(part, pday, NEVER)
            part_cents[mi] = np.where(
                part, np.round(due_cents[mi] * split_share[mi]).astype(np.int64), 0
            )
            last_day[gone] = np.where(part, pday, last_day[gone])
        pay = rest & ~miss
        ok = going[pay]
        oi = g_inst[pay]
        day_ok = np.maximum(ordinary_day[oi], last_day[ok] + 1)
        paid[oi] = day_ok
        first = day_ok - split_gap[oi]
        two = split[oi] & (first > last_day[ok])
        part_day[oi] = np.where(two, first, NEVER)
        part_cents[oi] = np.where(
            two, np.round(due_cents[oi] * split_share[oi]).astype(np.int64), 0
        )
        last_day[ok] = day_ok

    # a prepayment settles every installment from the one it came before
    settled_by_prepay = k >= prepay_k[loan]
    paid = np.where(settled_by_prepay, prepay_day[loan], paid)
    how = np.where(settled_by_prepay, 2, how)
    event_key = np.where(settled_by_prepay, key[loan] * 32 + prepay_k[loan], event_key)
    settled_cents = np.where(how == 2, principal_cents, due_cents)

    # what the lending system holds on as_of: a payment is recorded once made, of an
    # installment already due (a prepayment settles the later ones too)
    recorded = (paid < as_of) & ((due_day < as_of) | (how == 2))
    part_recorded = (part_day < as_of) & (due_day < as_of)
    paid_day = np.where(recorded, paid, NEVER)
    clock = irng.integers(event_key, 6 * 3600, 86_400, "paid_clock")
    paid_ts = np.where(recorded, paid_day * DAY + clock, -1)
    part_ts = np.where(
        part_recorded, part_day * DAY + irng.integers(ikey, 6 * 3600, 86_400, "part_clock"), -1
    )
    amount_paid = np.where(recorded, settled_cents, np.where(part_recorded, part_cents, 0)) / 100.0
    dpd = np.where(recorded, np.maximum(paid_day - due_day, 0), np.maximum(as_of - due_day, 0))
    overdue_unpaid = ~recorded & (due_day < as_of)
    inst_updated_ts = np.where(
        recorded,
        paid_ts,
        np.where(overdue_unpaid, nightly, np.where(part_recorded, part_ts, disbursed_ts[loan])),
    )

    max_unpaid_dpd = np.zeros(nloans, dtype=np.int64)
    np.maximum.at(max_unpaid_dpd, loan, np.where(overdue_unpaid, dpd, 0))
    all_paid = np.bincount(loan, weights=recorded, minlength=nloans) == term
    first_unpaid_due = np.full(nloans, NEVER)
    np.minimum.at(first_unpaid_due, loan, np.where(overdue_unpaid, due_day, NEVER))
    prepaid = prepay_day < as_of
    defaulted = max_unpaid_dpd >= WRITE_OFF_DPD
    status = np.where(prepaid, 3, np.where(defaulted, 2, np.where(all_paid, 1, 0)))
    last_paid_ts = np.full(nloans, -1, dtype=np.int64)
    np.maximum.at(last_paid_ts, loan, np.maximum(paid_ts, part_ts))
    written_off_ts = np.where(
        defaulted, np.minimum((first_unpaid_due + WRITE_OFF_DPD) * DAY + 2 * 3600, nightly), -1
    )
    updated_ts = np.maximum(np.maximum(disbursed_ts, last_paid_ts), written_off_ts)

    # Judged BAD_DPD days after the last of the first PERFORMANCE_CYCLES installments
    # falls due, on the delays as of that day (core.dates.pit_dpd's rule).
    cycles = np.minimum(term, PERFORMANCE_CYCLES)
    judged = add_months(disbursed_day, cycles) + BAD_DPD
    due_by = (k <= cycles[loan]) & (due_day < judged[loan])
    worst = np.where(due_by, np.maximum(np.minimum(paid_day, judged[loan]) - due_day, 0), 0)
    max_window_dpd = np.zeros(nloans, dtype=np.int64)
    np.maximum.at(max_window_dpd, loan, worst)
    matured = judged <= as_of

    troubled = overdue_unpaid | (recorded & (paid_day - due_day > 10))
    trouble_day = np.full(nloans, NEVER)
    np.minimum.at(trouble_day, loan, np.where(troubled, due_day, NEVER))

    # cures before as_of, each with the due day of the oldest arrear it paid
    cure_loan_a = np.concatenate(cure_loan) if cure_loan else np.zeros(0, dtype=np.int64)
    cure_day_a = np.concatenate(cure_day_all) if cure_day_all else np.zeros(0, dtype=np.int64)
    cure_due_a = np.concatenate(cure_from_due) if cure_from_due else np.zeros(0, dtype=np.int64)
    seen = cure_day_a < as_of
    redefault_a = np.concatenate(redefault_due) if redefault_due else np.zeros(0, dtype=np.int64)

    # the principal a written-off loan still owes: that of its unpaid installments
    unpaid_principal = np.bincount(
        loan, weights=np.where(recorded, 0, principal_cents), minlength=nloans
    ).astype(np.int64)
    prepay_cents = np.bincount(
        loan, weights=np.where(recorded & (how == 2), principal_cents, 0), minlength=nloans
    ).astype(np.int64)
    prepay_ts = np.full(nloans, -1, dtype=np.int64)
    np.maximum.at(prepay_ts, loan, np.where(recorded & (how == 2), paid_ts, -1))
    rec = _draw_recoveries(seed, key, z, written_off_ts, mode == 1, unpaid_principal, as_of)
    return Loans(
        app=app,
        disbursed_day=disbursed_day,
        disbursed_ts=disbursed_ts,
        principal=principal,
        term=term,
        rate=rate,
        status=status,
        updated_ts=updated_ts,
        matured=matured,
        bad=matured & (max_window_dpd >= BAD_DPD),
        indeterminate=matured & (max_window_dpd >= INDETERMINATE_DPD) & (max_window_dpd < BAD_DPD),
        trouble_day=np.where(trouble_day == NEVER, -1, trouble_day),
        defaults=defaults,
        inst_loan=loan,
        inst_no=k,
        due_day=due_day,
        amount_due=amount_due,
        paid_day=paid_day,
        paid_ts=paid_ts,
        dpd=dpd,
        inst_updated_ts=inst_updated_ts,
        amount_paid=amount_paid,
        settled_by=np.where(recorded, how, -1),
        part_ts=part_ts,
        part_amount=np.where(part_recorded, part_cents, 0) / 100.0,
        final_amount=np.where(recorded, settled_cents - np.where(part_recorded, part_cents, 0), 0)
        / 100.0,
        written_off_ts=written_off_ts,
        prepay_ts=prepay_ts,
        prepay_amount=np.where(prepaid, prepay_cents, 0) / 100.0,
        written_off_principal=np.where(defaulted, unpaid_principal, 0) / 100.0,
        cures=int(seen.sum()),
        cures_from_30_dpd=int((seen & (cure_day_a - cure_due_a >= 30)).sum()),
        cures_from_90_dpd=int((seen & (cure_day_a - cure_due_a >= 90)).sum()),
        cured_loans=len(np.unique(cure_loan_a[seen])),
        redefaults=int((redefault_a < as_of).sum()),
        recovery_loan=rec[0],
        recovery_ts=rec[1],
        recovery_amount=rec[2],
        recovery_key=rec[3],
    )


def rejected_decided(apps: Applications) -> np.ndarray:
    """The historically rejected applications with a decision on a positive amount: not
    pending, amount > 0, not approved (a non-positive amount is a data fault, not a
    credit decision)."""
    return ~apps.pending & (apps.amount > 0) & ~apps.approved


def draw_rejected_outcomes(
    seed: int,
    pop: Population,
    apps: Applications,
    cal: Calendar,
    deterioration_share: float = DETERIORATION_SHARE,
) -> Loans:
    """The loans the historically rejected would have been, had the lender approved them:
    the ground truth of reject inference, which the pipeline never sees.

    Each ``rejected_decided`` application is lent as ``draw_loans`` lends an approved
    one -- the requested amount (never cut), its term, the rate of its bureau score,
    disbursed after its decision -- and its history is simulated by the same code: the
    same default logit and stop installment, cures, re-defaults, prepayments and planted
    deterioration. So its ``bad``, ``indeterminate`` and ``matured`` mean what they mean
    for a booked loan (the default definition of ``riskcontrol.analyze.labels``, judged
    on its would-be schedule as of ``as_of``), and ``defaults`` whether it would ever
    fall into arrears.

    The draws are a booked loan's (same streams, same labels) under the rejected
    application's key, which no other draw in those streams uses: the values are fresh,
    independent of everything written, and no written value changes. A rejected
    applicant is riskier than an approved one at the same score only through what the
    default logit holds (latent risk ``z``, amount against income, channel, employer);
    no extra "rejects are worse" effect is added. What the loan would have changed
    elsewhere (the customer's later applications, bureau report) is not simulated.
    """
    return draw_loans(
        seed, pop, apps, cal, deterioration_share, lend=rejected_decided(apps), cut=False
    )
