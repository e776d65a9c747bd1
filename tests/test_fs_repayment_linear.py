"""The linear repayment features equal the first, quadratic definition (``fsref``) on
random books full of the cases that matter: several loans per customer, installments
paid early, on the day, late, never, before the loan counts, due before it was
disbursed, amounts missing, zero or negative, loans without any line."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from fsref import fs_repayment_reference
from test_features import CREATED, frame

from riskcontrol.analyze import feature_store
from riskcontrol.core.catalog import SILVER_LOANS, SILVER_REPAYMENTS

D = dt.date
MONEY = ("prior_open_principal", "prior_utilization")


def _book(seed: int, customers: int) -> tuple[list[dict], list[dict]]:
    rnd = random.Random(seed)
    loans, lines = [], []
    for c in range(customers):
        for n in range(rnd.choice((0, 1, 1, 2, 3, 4))):
            loan = f"L{c}-{n}"
            disbursed = D(2023, 1, 1) + dt.timedelta(days=rnd.randrange(0, 600))
            loans.append(
                {
                    "loan_id": loan,
                    "customer_id": None if rnd.random() < 0.02 else f"C{c}",
                    "disbursed_date": None if rnd.random() < 0.02 else disbursed,
                    "principal": rnd.choice((1000.0, 2500.0, 3333.33, 12000.0)),
                }
            )
            if rnd.random() < 0.05:
                continue  # a loan without any repayment line
            term = rnd.choice((3, 6, 12))
            for k in range(1, term + 1):
                due = disbursed + dt.timedelta(days=30 * k + rnd.choice((0, 0, 0, -40)))
                kind = rnd.random()
                if kind < 0.55:
                    paid = due - dt.timedelta(days=rnd.randrange(0, 5))  # early or on the day
                elif kind < 0.75:
                    paid = due + dt.timedelta(days=rnd.randrange(1, 120))  # late
                elif kind < 0.8:
                    paid = disbursed - dt.timedelta(days=rnd.randrange(0, 3))  # before it counts
                else:
                    paid = None  # never
                amount = rnd.choice((250.0, 333.33, 0.0, None, 100.1, -10.0, 250.0, 250.0))
                lines.append(
                    {
                        "repayment_id": f"{loan}-{k}",
                        "loan_id": loan,
                        "installment_no": k,
                        "due_date": due,
                        "paid_date": paid,
                        "amount_due": amount,
                    }
                )
    return loans, lines


def _rows(df) -> dict:
    return {
        (r["customer_id"], r["event_timestamp"]): r.asDict()
        for r in df.drop("created_timestamp").collect()
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_the_linear_features_equal_the_reference_on_random_books(spark, seed):
    loans, lines = _book(seed, 60)
    loans_df = frame(spark, SILVER_LOANS, loans)
    lines_df = frame(spark, SILVER_REPAYMENTS, lines)
    got = _rows(feature_store.fs_repayment(loans_df, lines_df, CREATED))
    want = _rows(fs_repayment_reference(loans_df, lines_df, CREATED))
    assert len(want) > 500
    assert got.keys() == want.keys()
    for key, expected in want.items():
        actual = got[key]
        for column, value in expected.items():
            if column in MONEY and value is not None and actual[column] is not None:
                assert actual[column] == pytest.approx(value, abs=0.01), (key, column)
            else:
                assert actual[column] == value, (key, column, actual[column], value)
