"""Applications, lender decisions, loans and repayment schedules with their performance.

The lender approves with a simple rule on the bureau score, income, inquiries and
current arrears plus noise, so approved loans are a selected sample. Whether a loan
defaults is logistic in the latent risk ``z``, the loan size relative to income, the
channel and the employer, plus loan-level noise no feature can see; defaulters stop
paying from one installment on (mostly one of the first four), everyone else pays on
time or a few days late.

A deterioration is planted for the early-warning indicators to catch: from
``DETERIORATION_DAYS`` before ``as_of``, a share of the ``DETERIORATION_CHANNEL`` loans
still running then stop paying from their first installment due on or after that day.
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
# The default definition (riskcontrol.analyze.labels), at the settings' defaults:
PERFORMANCE_CYCLES = 6  # installments judged, = RISK_PERFORMANCE_CYCLES
BAD_DPD = 90  # bad at this many days past due, = RISK_BAD_DPD
INDETERMINATE_DPD = 30  # the indeterminate band's start, = RISK_INDETERMINATE_DPD
WRITE_OFF_DPD = 90  # a loan counts as 'defaulted' once an installment is this late
NEVER = np.iinfo(np.int64).max // 4  # "paid" day of an installment that is never paid

_APPROVAL_CUTOFF = -0.8
_CHANNEL_RISK = np.array([0.0, 0.1, 0.25, 0.55, -0.15])
_DEFAULT_INTERCEPT = -2.8
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
    status: np.ndarray  # 0 active, 1 closed, 2 defaulted
    updated_ts: np.ndarray
    matured: np.ndarray  # judged by the default definition's day
    bad: np.ndarray
    indeterminate: np.ndarray
    trouble_day: np.ndarray  # first day the loan was in arrears, -1 if never
    inst_loan: np.ndarray  # loan position of each installment
    inst_no: np.ndarray
    due_day: np.ndarray
    amount_due: np.ndarray
    paid_day: np.ndarray  # NEVER when unpaid as of as_of
    paid_ts: np.ndarray
    dpd: np.ndarray
    inst_updated_ts: np.ndarray


def age_at(pop: Population, customer: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Age in (fractional) years of chunk customers at timestamps ``ts``."""
    return (ts // DAY - pop.birth_day[customer]) / 365.2425


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
    later = (
        first
        + 1
        + (rng.uniform(cid[customer] * 4 + raw_rank, "later_at") * (as_of_ts - first - 1)).astype(
            np.int64
        )
    )
    ts = np.where(raw_rank == 0, first, later)
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
    stop: np.ndarray,
    inst_loan: np.ndarray,
    inst_no: np.ndarray,
    due_day: np.ndarray,
    cal: Calendar,
) -> np.ndarray:
    """``stop`` with the planted deterioration: the first installment each loan skips.

    A loan of the deteriorating channel disbursed before the start day, with an
    installment due on or after it, stops paying from that installment with probability
    ``DETERIORATION_SHARE`` (its own random stream, so no other draw changes).
    """
    start = deterioration_start(cal)
    first_due_after = np.full(len(key), NEVER)
    np.minimum.at(first_due_after, inst_loan, np.where(due_day >= start, inst_no, NEVER))
    hit = (
        (channel == ref.CHANNELS.index(DETERIORATION_CHANNEL))
        & (disbursed_day < start)
        & (first_due_after != NEVER)
        & KeyedRandom(seed, "deterioration").bernoulli(key, DETERIORATION_SHARE, "stop")
    )
    return np.where(hit, np.minimum(stop, first_due_after), stop)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def draw_loans(seed: int, pop: Population, apps: Applications, cal: Calendar) -> Loans:
    """Loans of the approved applications and their repayment history as of ``as_of``."""
    rng = KeyedRandom(seed, "loan")
    app = np.flatnonzero(apps.approved)
    key = apps.key[app]
    customer = apps.customer[app]
    z = pop.z[customer]
    income = pop.income[customer]
    score = apps.bureau.score[app]
    as_of = cal.as_of_day

    applied_day = apps.applied_ts[app] // DAY
    disbursed_day = applied_day + rng.choice(key, [0.5, 0.3, 0.15, 0.05], "disburse_lag")
    disbursed_ts = np.maximum(
        disbursed_day * DAY + 9 * 3600 + rng.integers(key, 0, 12 * 3600, "disburse_clock"),
        apps.decided_ts[app] + 60,
    )
    disbursed_day = disbursed_ts // DAY
    cut = rng.bernoulli(key, sigmoid(-(score - 600) / 40.0) * 0.6, "cut")
    share = np.where(cut, 0.7 + 0.2 * rng.uniform(key, "cut_share"), 1.0)
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

    loan, k0 = ragged_index(term)
    k = k0 + 1
    ikey = key[loan] * 32 + k
    irng = KeyedRandom(seed, "installment")
    due_day = add_months(disbursed_day[loan], k)
    stop = _plant_deterioration(
        seed, key, apps.channel[app], disbursed_day, stop, loan, k, due_day, cal
    )
    r = rate[loan] / 12.0
    n = term[loan]
    p = principal[loan]
    amount_due = np.round(p * r / (1.0 - (1.0 + r) ** (-n)), 2)
    late = irng.bernoulli(ikey, sigmoid(-2.6 + 0.6 * z[loan]), "late")
    late_days = np.minimum(
        1
        + (-np.log(irng.uniform(ikey, "late_days")) * (3.0 + 3.0 * sigmoid(z[loan]))).astype(
            np.int64
        ),
        25,
    )
    early_days = irng.integers(ikey, 0, 4, "early_days")
    true_paid = np.where(
        k >= stop[loan], NEVER, np.where(late, due_day + late_days, due_day - early_days)
    )
    recorded = (true_paid < as_of) & (due_day < as_of)
    paid_day = np.where(recorded, true_paid, NEVER)
    paid_ts = np.where(
        recorded, paid_day * DAY + irng.integers(ikey, 6 * 3600, 86_400, "paid_clock"), -1
    )
    dpd = np.where(recorded, np.maximum(paid_day - due_day, 0), np.maximum(as_of - due_day, 0))
    overdue_unpaid = ~recorded & (due_day < as_of)
    nightly = (as_of - 1) * DAY + 2 * 3600
    inst_updated_ts = np.where(
        recorded, paid_ts, np.where(overdue_unpaid, nightly, disbursed_ts[loan])
    )

    nloans = len(app)
    max_unpaid_dpd = np.zeros(nloans, dtype=np.int64)
    np.maximum.at(max_unpaid_dpd, loan, np.where(overdue_unpaid, dpd, 0))
    all_paid = np.bincount(loan, weights=recorded, minlength=nloans) == term
    first_unpaid_due = np.full(nloans, NEVER)
    np.minimum.at(first_unpaid_due, loan, np.where(overdue_unpaid, due_day, NEVER))
    defaulted = max_unpaid_dpd >= WRITE_OFF_DPD
    status = np.where(defaulted, 2, np.where(all_paid, 1, 0))
    last_paid_ts = np.full(nloans, -1, dtype=np.int64)
    np.maximum.at(last_paid_ts, loan, paid_ts)
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
        inst_loan=loan,
        inst_no=k,
        due_day=due_day,
        amount_due=amount_due,
        paid_day=paid_day,
        paid_ts=paid_ts,
        dpd=dpd,
        inst_updated_ts=inst_updated_ts,
    )
