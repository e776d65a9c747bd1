"""Credit bureau reports: one per application, pulled when the customer applies.

The bureau sees the customer's credit life elsewhere, which is driven by the same latent
risk ``z`` plus its own noise: the score, inquiries, open loans, utilization and past
delinquency are informative but far from decisive. The summary is computed from the
account list, so both always agree. From the book's 13th month on the bureau ships
schema version 2 (adds ``summary.consumer_finance_loans`` and ``alerts``, drops
``score.model``), the drift the ingestion layer must absorb.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from riskcontrol.synthetic.generate import reference as ref
from riskcontrol.synthetic.generate.dates import DAY, format_dates, format_timestamps
from riskcontrol.synthetic.generate.rng import KeyedRandom, ragged_index, sigmoid

MALFORMED_RATE = 0.003
DUPLICATE_RATE = 0.01
SCORE_MODEL = "BCS3"
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

_CARD, _LOAN, _MORTGAGE, _AUTO = range(4)


@dataclass
class Bureau:
    """Bureau summaries per application plus the flat account and alert lists."""

    report_ts: np.ndarray
    score: np.ndarray
    inquiries_6m: np.ndarray
    open_loans: np.ndarray
    total_limit: np.ndarray
    total_balance: np.ndarray
    overdue_accounts: np.ndarray
    max_dpd_24m: np.ndarray
    history_months: np.ndarray
    consumer_finance_loans: np.ndarray
    v2: np.ndarray
    acc_parent: np.ndarray  # application position of each account
    acc_type: np.ndarray
    acc_limit: np.ndarray
    acc_balance: np.ndarray
    acc_status: np.ndarray  # 0 normal, 1 overdue, 2 closed
    acc_opened_month: np.ndarray  # month index (months since 1970-01)
    alert_parent: np.ndarray
    alert_code: np.ndarray
    alert_day: np.ndarray


def draw_bureau(
    seed: int,
    key: np.ndarray,
    z: np.ndarray,
    age: np.ndarray,
    income: np.ndarray,
    applied_ts: np.ndarray,
    drift_month: int,
) -> Bureau:
    """Bureau reports for applications with keys ``key`` (arrays aligned per application)."""
    rng = KeyedRandom(seed, "bureau")
    rel_income = np.log(income / 6500.0)
    n_cards = np.minimum(rng.poisson(key, np.exp(0.2 + 0.3 * rel_income - 0.1 * z), "cards"), 6)
    n_loans = np.minimum(rng.poisson(key, np.exp(0.0 + 0.45 * z), "loans"), 8)
    mortgage = rng.bernoulli(
        key, sigmoid(-2.2 + 1.0 * rel_income + 0.05 * (age - 30)), "mortgage"
    ).astype(np.int64)
    auto = rng.bernoulli(key, sigmoid(-2.5 + 0.8 * rel_income), "auto").astype(np.int64)
    n_closed = np.minimum(rng.poisson(key, np.maximum(0.6 + 0.04 * (age - 25), 0.1), "closed"), 4)
    n_open = n_cards + n_loans + mortgage + auto
    history = np.clip(
        np.round((age - 18) * 12 * (0.2 + 0.8 * rng.uniform(key, "depth")) * np.exp(-0.3 * z)),
        1,
        (age - 18) * 12 + 1,
    ).astype(np.int64)
    utilization = sigmoid(-0.7 + 0.8 * z + 0.8 * rng.normal(key, "utilization"))

    parent, rank = ragged_index(n_open + n_closed)
    akey = key[parent] * 32 + rank
    arng = KeyedRandom(seed, "bureau_account")
    acc_type = np.select(
        [
            rank < n_cards[parent],
            rank < (n_cards + n_loans)[parent],
            rank < (n_cards + n_loans + mortgage)[parent],
            rank < n_open[parent],
        ],
        [_CARD, _LOAN, _MORTGAGE, _AUTO],
        default=np.where(arng.bernoulli(akey, 0.5, "closed_type"), _CARD, _LOAN),
    )
    inc = income[parent]
    noise = arng.normal(akey, "limit")
    limit = np.choose(
        acc_type,
        [
            np.clip(np.round(inc * np.exp(0.5 + 0.5 * noise), -3), 1000, 200_000),
            np.clip(np.round(inc * np.exp(0.3 + 0.6 * noise), -2), 1000, 300_000),
            np.round(inc * np.exp(4.2 + 0.4 * noise), -4),
            np.round(inc * np.exp(2.3 + 0.3 * noise), -3),
        ],
    ).astype(np.float64)
    limit = np.maximum(limit, 1000.0)
    revolving = np.minimum(utilization[parent] * np.exp(0.3 * arng.normal(akey, "use")), 1.0)
    amortized = 0.2 + 0.75 * arng.uniform(akey, "amortized")
    closed = rank >= n_open[parent]
    balance = np.where(
        closed, 0.0, np.round(limit * np.where(acc_type <= _LOAN, revolving, amortized), 2)
    )
    overdue = ~closed & arng.bernoulli(akey, sigmoid(-4.4 + 1.2 * z[parent]), "overdue")
    status = np.where(closed, 2, overdue.astype(np.int64))
    report_month = (
        (applied_ts // DAY).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    )
    months_ago = np.where(
        rank == 0, history[parent], arng.integers(akey, 0, history[parent] + 1, "opened")
    )
    opened_month = report_month[parent] - months_ago

    n = len(key)
    open_mask = ~closed
    # float even when the chunk has no account at all (an empty bincount is int64 and
    # would print 0 for 0.0: the file would depend on the chunk size)
    total_limit = np.round(np.bincount(parent, weights=limit * open_mask, minlength=n), 2)
    total_limit = total_limit.astype(np.float64)
    total_balance = np.round(np.bincount(parent, weights=balance, minlength=n), 2)
    total_balance = total_balance.astype(np.float64)
    overdue_accounts = np.bincount(parent, weights=overdue, minlength=n).astype(np.int64)
    has_accounts = (n_open + n_closed) > 0

    past = rng.bernoulli(key, sigmoid(-2.6 + 1.0 * z), "past_delinquency")
    past_dpd = np.array([5, 12, 20, 35, 45, 70])[
        rng.choice(key, [0.3, 0.25, 0.2, 0.12, 0.08, 0.05], "past_dpd")
    ]
    current_dpd = np.array([30, 60, 90, 120, 180])[
        rng.choice(key, [0.35, 0.25, 0.2, 0.12, 0.08], "current_dpd")
    ]
    max_dpd = np.where(overdue_accounts > 0, current_dpd, np.where(past, past_dpd, 0))

    score = np.clip(np.round(650 - 55 * z + 45 * rng.normal(key, "score")), 350, 950)
    offset = 5 + rng.integers(key, 0, 85, "report_delay")
    day_end = (applied_ts // DAY + 1) * DAY - 1
    report_ts = np.minimum(applied_ts + offset, day_end)

    v2 = report_month >= drift_month
    n_alerts = np.where(v2, np.minimum(rng.poisson(key, np.exp(-1.6 + 0.7 * z), "alerts"), 3), 0)
    alert_parent, alert_rank = ragged_index(n_alerts)
    lkey = key[alert_parent] * 4 + alert_rank
    lrng = KeyedRandom(seed, "bureau_alert")
    return Bureau(
        report_ts=report_ts,
        score=score.astype(np.int64),
        inquiries_6m=np.minimum(rng.poisson(key, np.exp(0.6 + 0.5 * z), "inquiries"), 30),
        open_loans=n_loans + mortgage + auto,
        total_limit=total_limit,
        total_balance=total_balance,
        overdue_accounts=overdue_accounts,
        max_dpd_24m=max_dpd.astype(np.int64),
        history_months=np.where(has_accounts, history, 0),
        consumer_finance_loans=np.minimum(rng.poisson(key, np.exp(0.1 + 0.6 * z), "cfl"), 15),
        v2=v2,
        acc_parent=parent,
        acc_type=acc_type,
        acc_limit=limit,
        acc_balance=balance,
        acc_status=status,
        acc_opened_month=opened_month,
        alert_parent=alert_parent,
        alert_code=lrng.integers(lkey, 0, len(ref.ALERT_CODES), "code"),
        alert_day=applied_ts[alert_parent] // DAY - lrng.integers(lkey, 0, 720, "day"),
    )


_STATUS = ("normal", "overdue", "closed")


def bureau_lines(
    b: Bureau,
    report_ids: list[str],
    application_ids: list[str],
    national_ids: list[str],
    names: list[str],
) -> list[str]:
    """One JSON line (with trailing newline) per report, in application order."""
    opened = np.datetime_as_string(b.acc_opened_month.astype("datetime64[M]")).tolist()
    accounts: list[list[dict]] = [[] for _ in range(len(report_ids))]
    for p, t, lim, bal, st, op in zip(
        b.acc_parent.tolist(),
        b.acc_type.tolist(),
        b.acc_limit.tolist(),
        b.acc_balance.tolist(),
        b.acc_status.tolist(),
        opened,
        strict=True,
    ):
        accounts[p].append(
            {
                "type": ref.ACCOUNT_TYPES[t],
                "limit": lim,
                "balance": bal,
                "status": _STATUS[st],
                "opened": op,
            }
        )
    alerts: list[list[dict]] = [[] for _ in range(len(report_ids))]
    for p, c, d in zip(
        b.alert_parent.tolist(), b.alert_code.tolist(), format_dates(b.alert_day), strict=True
    ):
        alerts[p].append({"code": ref.ALERT_CODES[c], "date": d})
    columns = zip(
        report_ids,
        application_ids,
        national_ids,
        names,
        format_timestamps(b.report_ts, sep="T"),
        b.score.tolist(),
        b.inquiries_6m.tolist(),
        b.open_loans.tolist(),
        b.total_limit.tolist(),
        b.total_balance.tolist(),
        b.overdue_accounts.tolist(),
        b.max_dpd_24m.tolist(),
        b.history_months.tolist(),
        b.consumer_finance_loans.tolist(),
        b.v2.tolist(),
        accounts,
        alerts,
        strict=True,
    )
    lines = []
    for rid, aid, nid, name, t, sc, inq, ol, lim, bal, od, dpd, hist, cfl, v2, acc, al in columns:
        summary = {
            "inquiries_6m": inq,
            "open_loans": ol,
            "total_credit_limit": lim,
            "total_balance": bal,
            "overdue_accounts": od,
            "max_dpd_24m": dpd,
            "credit_history_months": hist,
        }
        score: dict = {"value": sc}
        if v2:
            summary["consumer_finance_loans"] = cfl
        else:
            score["model"] = SCORE_MODEL
        report = {
            "report_id": rid,
            "query_ref": aid,
            "id_number": nid,
            "name": name,
            "report_time": t + "+08:00",
            "score": score,
            "summary": summary,
            "accounts": acc,
        }
        if v2:
            report["alerts"] = al
        report["schema_version"] = 2 if v2 else 1
        lines.append(_JSON.encode(report) + "\n")
    return lines
