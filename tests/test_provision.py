"""Expected loss with horizons on hand-computed books: the transition matrix and its bucket
PDs, PDs carried along the hazard curve, stages with the 30-DPD backstop, EAD without
future interest, LGD from recoveries after write-off, and EL by stage."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from riskcontrol.apply import provision as pv


def moves(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["from_state", "to_state", "loans"])


# current stays 80, falls behind 15, repays 5; 1-29 cures 40 or rolls 60; 30-59 cures 50
# or rolls 50; every 60-89 loan defaults. A loan in default that pays is still defaulted.
BOOK = moves(
    [
        ("current", "current", 80),
        ("current", "1-29", 15),
        ("current", "closed", 5),
        ("1-29", "current", 40),
        ("1-29", "30-59", 60),
        ("30-59", "current", 50),
        ("30-59", "60-89", 50),
        ("60-89", "default", 100),
        ("default", "current", 7),
    ]
)


def test_the_matrix_is_the_observed_shares_with_default_and_closed_absorbing():
    p = pv.transition_matrix(BOOK).probabilities
    assert p.tolist() == [
        [0.8, 0.15, 0.0, 0.0, 0.0, 0.05],
        [0.4, 0.0, 0.6, 0.0, 0.0, 0.0],
        [0.5, 0.0, 0.0, 0.5, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    ]


def test_cumulative_default_walks_the_buckets():
    c = pv.transition_matrix(BOOK).cumulative_default(4)
    current, b1, b30, b60 = (pv.STATES.index(s) for s in ("current", "1-29", "30-59", "60-89"))
    assert c[:, b60].tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert c[:, b30].tolist() == [0.0, 0.0, 0.5, 0.5, 0.5]
    assert c[:, b1].tolist() == pytest.approx([0.0, 0.0, 0.0, 0.3, 0.3], abs=1e-15)
    # current -> 1-29 -> 30-59 -> 60-89 -> default: 0.15 x 0.6 x 0.5 x 1
    assert c[:, current].tolist() == pytest.approx([0.0, 0.0, 0.0, 0.0, 0.045], abs=1e-15)


def test_bucket_pds_come_from_the_matrix_or_say_why_not():
    got = pv.bucket_pds(pv.transition_matrix(BOOK), horizon=3)
    assert got.pd == pytest.approx({"1-29": 0.3, "30-59": 0.5, "60-89": 1.0}, abs=1e-15)
    assert got.source["30-59"] == "transition matrix, 100 moves"
    floors = {"1-29": 0.35, "30-59": 0.6, "60-89": 0.85}
    thin = pv.bucket_pds(pv.transition_matrix(BOOK), horizon=3, fallback=floors, min_moves=101)
    assert thin.pd == floors
    assert thin.source["60-89"] == "configured: only 100 observed moves out of 60-89"
    with pytest.raises(ValueError, match=r"bucket 1-29 was left only 100 time\(s\)"):
        pv.bucket_pds(pv.transition_matrix(BOOK), min_moves=101)


def test_bad_moves_are_refused():
    with pytest.raises(ValueError, match="unknown state"):
        pv.transition_matrix(moves([("current", "120+", 3)]))
    with pytest.raises(ValueError, match="negative"):
        pv.transition_matrix(moves([("current", "current", -1)]))
    with pytest.raises(ValueError, match="lack column"):
        pv.transition_matrix(pd.DataFrame({"from_state": ["current"]}))


# A constant 10% monthly hazard from current: c(h) = 1 - 0.9^h, so H(h) / H(6) = h / 6.
FLAT_MOVES = moves(
    [("current", "current", 90), ("current", "default", 10), ("1-29", "default", 50)]
)
FLAT = pv.transition_matrix(FLAT_MOVES)


def test_horizon_pd_follows_the_books_hazard_curve():
    got = pv.horizon_pd([0.1, 0.1, 0.1, 0.1, 1.0, 0.0], 6, [6, 12, 3, 0, 12, 12], FLAT)
    want = [0.1, 1 - 0.9**2, 1 - 0.9**0.5, 0.0, 1.0, 0.0]
    assert got.tolist() == pytest.approx(want, abs=1e-12)


def test_horizon_pd_refuses_a_book_without_defaults_and_bad_pds():
    never = pv.transition_matrix(moves([("current", "current", 100)]))
    with pytest.raises(ValueError, match="no default from current within 6 months"):
        pv.horizon_pd([0.1], 6, [12], never)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        pv.horizon_pd([1.5], 6, [12], FLAT)


def test_stages_have_the_30_dpd_backstop_and_90_dpd_impairment():
    got = pv.stage([0, 29, 30, 89, 90, 200, 0], [False, True, False, False, False, False, False])
    assert got.tolist() == [1, 2, 2, 2, 3, 3, 1]


def test_loan_pds_take_the_horizon_of_their_stage():
    got = pv.loan_pds(
        model_pd=[0.1, 0.1, 0.1, 0.2, 0.1],
        dpd=[0, 0, 10, 45, 120],
        remaining_months=[24, 5, 24, 0, 3],
        label_months=6,
        matrix=FLAT,
    )
    assert got["stage"].tolist() == [1, 1, 1, 2, 3]
    assert got["bucket"].tolist() == ["current", "current", "1-29", "30-59", "default"]
    # 12 months at most for stage 1; a 45-DPD loan past its last due day has the 2 months
    # it needs to reach 90 DPD.
    assert got["horizon_months"].tolist() == [12, 5, 12, 2, 3]
    assert got["pd"].tolist() == pytest.approx(
        [
            1 - 0.9**2,
            1 - 0.9 ** (5 / 6),
            1.0,  # 1-29 defaults next month in this book: the bucket PD outweighs the model's
            1 - 0.8 ** (2 / 6),  # 30-59 was never seen leaving: the model's, carried
            1.0,
        ],
        abs=1e-12,
    )


def test_amortization_splits_each_installment():
    flat = pv.amortization(1200.0, 0.0, 12)
    assert flat["principal"].tolist() == [100.0] * 12
    assert flat["interest"].tolist() == [0.0] * 12
    assert flat["balance"].tolist() == pytest.approx([1100.0 - 100 * i for i in range(12)])
    two = pv.amortization(1000.0, 0.12, 2)
    payment = 1000 * 0.01 / (1 - 1.01**-2)
    assert two["interest"].tolist() == pytest.approx([10.0, (1000 - (payment - 10)) * 0.01])
    assert two["principal"].sum() == pytest.approx(1000.0, abs=1e-9)
    assert two["balance"].iloc[-1] == pytest.approx(0.0, abs=1e-9)


def test_ead_is_principal_billed_and_accrued_interest_and_fees_not_future_interest():
    flat = pv.amortization(1200.0, 0.0, 12)
    paid = [True] * 3 + [False] * 9
    due = [True] * 5 + [False] * 7
    got = pv.exposure(flat, paid, due, 0.0, days_since_due=12)
    assert got["ead"] == 900.0 and got["billed_interest"] == 0.0
    two = pv.amortization(1000.0, 0.12, 2)
    got = pv.exposure(two, [False, False], [True, False], 0.12, days_since_due=10, fees=5.0)
    second = float(two["principal"].iloc[1])
    assert got == pytest.approx(
        {
            "outstanding_principal": 1000.0,
            "billed_interest": 10.0,
            "accrued_interest": second * 0.12 * 10 / 365,
            "fees": 5.0,
            "ead": 1000.0 + 10.0 + second * 0.12 * 10 / 365 + 5.0,
        }
    )


WRITE_OFFS = pd.DataFrame(
    {
        "loan_id": ["A", "B", "C"],
        "written_off_date": [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2025, 6, 1)],
        "ead": [1000.0, 500.0, 800.0],
    }
)
RECOVERIES = pd.DataFrame(
    {
        "loan_id": ["A", "A", "B", "C"],
        "paid_date": [
            dt.date(2024, 3, 1),  # 60 days after A's write-off
            dt.date(2023, 12, 1),  # before it: an installment, not a recovery
            dt.date(2024, 5, 1),  # more than B owed: B's loss is 0, not negative
            dt.date(2025, 7, 1),  # C's workout is not complete on the day
        ],
        "amount": [300.0, 100.0, 600.0, 100.0],
    }
)


def test_lgd_from_recoveries_after_write_off_with_complete_workouts():
    as_of = dt.date(2025, 12, 1)
    got = pv.lgd_from_recoveries(WRITE_OFFS, RECOVERIES, as_of, 0.45, min_write_offs=2)
    assert (got.lgd, got.write_offs, got.exposure, got.recovered) == pytest.approx(
        (700.0 / 1500.0, 2, 1500.0, 800.0)
    )
    assert got.source.startswith("recoveries on 2 defaults with a complete 12-month workout")
    discounted = pv.lgd_from_recoveries(
        WRITE_OFFS, RECOVERIES, as_of, 0.45, discount_rate=0.10, min_write_offs=2
    )
    a_pv = 300.0 / 1.1 ** (60 / 365)
    assert discounted.lgd == pytest.approx((1000.0 - a_pv) / 1500.0, abs=1e-12)


def test_too_few_workouts_keep_the_configured_lgd_and_say_so():
    got = pv.lgd_from_recoveries(WRITE_OFFS, RECOVERIES, dt.date(2025, 12, 1), 0.45)
    assert (got.lgd, got.write_offs) == (0.45, 0)
    assert got.source == (
        "configured RISK_LGD 0.45: 2 default(s) with a complete 12-month workout (needs 30)"
    )


def test_expected_loss_by_stage():
    book = pd.DataFrame(
        {
            "stage": [1, 1, 2, 3],
            "pd": [0.02, 0.05, 0.4, 1.0],
            "lgd": [0.5, 0.5, 0.5, 0.6],
            "ead": [1000.0, 2000.0, 500.0, 300.0],
        }
    )
    got = pv.expected_loss_by_stage(book)
    assert got["stage"].tolist() == ["1", "2", "3", "total"]
    assert got["loans"].tolist() == [2, 1, 1, 4]
    assert got["ead"].tolist() == [3000.0, 500.0, 300.0, 3800.0]
    assert got["expected_loss"].tolist() == pytest.approx([60.0, 100.0, 180.0, 340.0])
    assert got["coverage"].tolist() == pytest.approx([0.02, 0.2, 0.6, 340 / 3800])
    empty = pv.expected_loss_by_stage(book[book["stage"] == 1])
    assert empty.loc[empty["stage"] == "3", ["loans", "ead", "coverage"]].values.tolist() == [
        [0, 0.0, 0.0]
    ]


def test_the_flat_book_is_what_the_tests_assume():
    c = FLAT.cumulative_default(12)[:, pv.STATES.index("current")]
    assert c.tolist() == pytest.approx([1 - 0.9**h for h in range(13)], abs=1e-15)
    assert math.isclose(np.log1p(-c[12]) / np.log1p(-c[6]), 2.0)


# --- the moves, counted by Spark ---------------------------------------------------------
def test_month_starts():
    from riskcontrol.apply.book import month_starts

    assert month_starts(dt.date(2024, 11, 20), dt.date(2025, 2, 1)) == [
        dt.date(2024, 12, 1),
        dt.date(2025, 1, 1),
        dt.date(2025, 2, 1),
    ]
    assert month_starts(dt.date(2025, 1, 1), dt.date(2025, 1, 31)) == []
    with pytest.raises(ValueError, match="after the last"):
        month_starts(dt.date(2025, 2, 1), dt.date(2025, 1, 1))


def test_state_moves_count_each_loans_monthly_move(spark):
    from riskcontrol.apply import book, warning

    D = dt.date
    loans = spark.createDataFrame(
        [(f"L{i}", f"A{i}", f"C{i}", D(2024, 1, 1)) for i in range(1, 5)],
        "loan_id string, application_id string, customer_id string, disbursed_date date",
    )
    reps = spark.createDataFrame(
        [
            # L1 pays on time and is repaid by April
            ("L1", D(2024, 1, 15), 100.0, D(2024, 1, 15)),
            ("L1", D(2024, 2, 15), 100.0, D(2024, 2, 15)),
            ("L1", D(2024, 3, 15), 100.0, D(2024, 3, 15)),
            # L2 never pays: 17, 46, 77, 107 days past due on the 1sts
            *[("L2", D(2024, m, 15), 100.0, None) for m in (1, 2, 3, 4)],
            # L3 falls behind, catches up on 10 March, falls behind again
            ("L3", D(2024, 1, 15), 100.0, D(2024, 3, 10)),
            ("L3", D(2024, 2, 15), 100.0, D(2024, 3, 10)),
            ("L3", D(2024, 3, 15), 100.0, None),
            # L4 reaches 91 DPD on 1 April and pays in full on 10 April: still defaulted
            ("L4", D(2024, 1, 1), 100.0, D(2024, 4, 10)),
        ],
        "loan_id string, due_date date, amount_due double, paid_date date",
    )
    apps = spark.createDataFrame([], "application_id string, channel string, province string")
    days = warning.days_frame(spark, book.month_starts(D(2024, 1, 1), D(2024, 5, 1)))
    states = book.loan_states(warning.loan_days(loans, reps, apps, days))
    got = {(r.loan_id, r.as_of_date.month): r.state for r in states.collect()}
    assert [got[("L2", m)] for m in (2, 3, 4, 5)] == ["1-29", "30-59", "60-89", "default"]
    assert [got[("L3", m)] for m in (2, 3, 4, 5)] == ["1-29", "30-59", "1-29", "30-59"]
    assert [got[("L4", m)] for m in (2, 3, 4, 5)] == ["30-59", "60-89", "default", "default"]
    assert [got[("L1", m)] for m in (2, 3, 4, 5)] == ["current", "current", "closed", "closed"]
    # a 60-day default definition: L2 and L4 have defaulted on 1 April (60+ DPD)
    at_60 = {
        (r.loan_id, r.as_of_date.month): r.state
        for r in book.loan_states(warning.loan_days(loans, reps, apps, days), 60).collect()
    }
    assert [at_60[("L2", m)] for m in (2, 3, 4, 5)] == ["1-29", "30-59", "default", "default"]
    assert [at_60[("L4", m)] for m in (2, 3, 4, 5)] == ["30-59", "default", "default", "default"]
    with pytest.raises(ValueError, match="end at 90 DPD"):
        book.loan_states(states, 120)
    moves = {(r.from_state, r.to_state): r.loans for r in book.state_moves(states).collect()}
    assert moves == {
        ("current", "current"): 1,
        ("current", "closed"): 1,
        ("closed", "closed"): 1,
        ("1-29", "30-59"): 3,
        ("30-59", "1-29"): 1,
        ("30-59", "60-89"): 2,
        ("60-89", "default"): 2,
        ("default", "default"): 1,
    }
    matrix = pv.transition_matrix(pd.DataFrame(moves_rows(moves)))
    assert matrix.probabilities[pv.STATES.index("30-59")].tolist() == [
        0.0,
        1 / 3,
        0.0,
        2 / 3,
        0.0,
        0.0,
    ]


def moves_rows(moves: dict) -> list[dict]:
    return [{"from_state": a, "to_state": b, "loans": n} for (a, b), n in moves.items()]


def test_spark_exposures_follow_the_schedule(spark):
    from riskcontrol.apply import book

    D = dt.date
    loans = spark.createDataFrame(
        [("E1", 1000.0, 0.12, 2, D(2024, 1, 1)), ("E2", 1200.0, 0.0, 12, D(2024, 1, 1))],
        "loan_id string, principal double, annual_rate double, term_months int, "
        "disbursed_date date",
    )
    e2_paid = [D(2024, 2, 1), D(2024, 3, 1), D(2024, 4, 1)] + [None] * 9
    reps = spark.createDataFrame(
        [("E1", 1, D(2024, 2, 1), None), ("E1", 2, D(2024, 3, 1), None)]
        + [("E2", k, D(2024, 1 + k, 1), e2_paid[k - 1]) for k in range(1, 13) if k <= 11]
        + [("E2", 12, D(2025, 1, 1), None)],
        "loan_id string, installment_no int, due_date date, paid_date date",
    )
    e1 = book.exposures(loans.where("loan_id = 'E1'"), reps, D(2024, 2, 11)).first()
    want = pv.exposure(
        pv.amortization(1000.0, 0.12, 2), [False, False], [True, False], 0.12, days_since_due=10
    )
    got = {k: getattr(e1, k) for k in want if k != "fees"}
    assert got == pytest.approx({k: v for k, v in want.items() if k != "fees"}, abs=1e-9)
    assert e1.remaining_months == 1
    e2 = book.exposures(loans.where("loan_id = 'E2'"), reps, D(2024, 6, 15)).first()
    assert (e2.outstanding_principal, e2.billed_interest, e2.ead, e2.remaining_months) == (
        pytest.approx(900.0),
        0.0,
        pytest.approx(900.0),
        7,
    )


def test_defaults_are_dated_on_day_90_and_their_recoveries_come_from_settlements(spark):
    from riskcontrol.apply import book

    D = dt.date
    schema = "loan_id string, principal double, annual_rate double, term_months int, "
    loans = spark.createDataFrame(
        [
            ("L1", 1200.0, 0.0, 12, D(2024, 1, 1)),
            ("L2", 500.0, 0.0, 1, D(2024, 1, 1)),
            ("L3", 500.0, 0.0, 1, D(2024, 1, 1)),
            ("L4", 500.0, 0.0, 1, D(2025, 10, 1)),
        ],
        schema + "disbursed_date date",
    )
    l1_paid = [D(2024, 2, 1), D(2024, 3, 1)] + [None] * 10
    reps = spark.createDataFrame(
        [("L1", k, D(2024 + k // 12, 1 + k % 12, 1), l1_paid[k - 1]) for k in range(1, 13)]
        + [
            ("L2", 1, D(2024, 2, 1), D(2024, 5, 1)),  # paid on day 90: it had defaulted
            ("L3", 1, D(2024, 2, 1), D(2024, 4, 30)),  # paid on day 89: it never did
            ("L4", 1, D(2025, 11, 1), None),  # 30 days past due on as_of
        ],
        "loan_id string, installment_no int, due_date date, paid_date date",
    )
    as_of = D(2025, 12, 1)
    got = book.default_dates(reps, as_of, 90).orderBy("loan_id").collect()
    # L1's third installment (due Apr 1) is unpaid: 90 days later is June 30
    assert [tuple(r) for r in got] == [("L1", D(2024, 6, 30)), ("L2", D(2024, 5, 1))]
    T = dt.datetime
    settlements = spark.createDataFrame(
        [
            ("L1", T(2024, 6, 29, 9), 50.0),  # the day before its default: not a recovery
            ("L1", T(2024, 8, 1, 9), 300.0),
            ("L1", T(2025, 12, 2, 9), 99.0),  # after as_of
            ("L2", T(2024, 5, 1, 16), 500.0),  # the cure, on the default day
            ("L3", T(2024, 4, 30, 9), 500.0),
        ],
        "loan_id string, paid_at timestamp, amount double",
    )
    defaults, cash = book.recovery_inputs(loans, reps, settlements, as_of, 90)
    assert sorted(tuple(r) for r in defaults.collect()) == [
        ("L1", D(2024, 6, 30), 1000.0),
        ("L2", D(2024, 5, 1), 500.0),
    ]
    assert sorted(tuple(r) for r in cash.collect()) == [
        ("L1", D(2024, 8, 1), 300.0),
        ("L2", D(2024, 5, 1), 500.0),
    ]
    lgd = pv.lgd_from_recoveries(
        defaults.toPandas(), cash.toPandas(), as_of, 0.45, min_write_offs=2
    )
    assert (lgd.lgd, lgd.write_offs, lgd.recovered) == pytest.approx((700.0 / 1500.0, 2, 800.0))


def test_spark_loan_pds_equal_the_numpy_ones(spark):
    from riskcontrol.apply import book

    model_pd = [0.1, 0.1, 0.1, 0.2, 0.1, 0.05, 1.0, 0.3]
    dpd = [0, 0, 10, 45, 120, 65, 0, 0]
    remaining = [24, 5, 24, 0, 3, 10, 12, 0]
    for matrix in (FLAT, pv.transition_matrix(pd.concat([BOOK, FLAT_MOVES]))):
        want = pv.loan_pds(model_pd, dpd, remaining, 6, matrix)
        df = spark.createDataFrame(
            list(zip(model_pd, dpd, remaining, strict=True)), "pd double, dpd int, left int"
        )
        cols = book.loan_pd_columns(F.col("pd"), F.col("dpd"), F.col("left"), matrix, 6, 24)
        rows = df.select(*[c.alias(n) for n, c in cols.items()]).collect()
        assert [r.stage for r in rows] == want["stage"].tolist()
        assert [r.pd_horizon_months for r in rows] == want["horizon_months"].tolist()
        assert [r.pd for r in rows] == pytest.approx(want["pd"].tolist(), abs=1e-12)


def test_the_loan_book_takes_its_stages_horizons_exposures_and_lgd(spark, settings):
    from riskcontrol.apply import book

    D = dt.date
    state = spark.createDataFrame(
        [
            ("L1", "app", "Zhejiang", D(2025, 9, 1), 1100.0, 0),
            ("L2", "web", "Hebei", D(2025, 7, 1), 520.0, 45),
            ("L3", "app", "Hebei", D(2025, 6, 1), 330.0, 120),
        ],
        "loan_id string, channel string, province string, disbursed_date date, "
        "outstanding double, dpd int",
    )
    loans = spark.createDataFrame(
        [(f"L{i}", f"A{i}", 5_000.0) for i in (1, 2, 3)],
        "loan_id string, application_id string, principal double",
    )
    app_pd = spark.createDataFrame(
        [("A1", "k1", 0.1), ("A2", "k2", 0.2), ("A3", "k3", 0.1)],
        "application_id string, customer_key string, pd double",
    )
    exposures = spark.createDataFrame(
        [("L1", 1000.0, 24), ("L2", 500.0, 0), ("L3", 300.0, 3)],
        "loan_id string, ead double, remaining_months int",
    )
    lgd = pv.LgdEstimate(0.5, 40, 1.0, 0.5, "test")
    provisioning = book.Provisioning(FLAT, 6, 24, exposures, lgd)
    rows = {
        r.loan_id: r
        for r in book.loan_book_risk(
            state, loans, app_pd, settings, dt.date(2025, 12, 1), "m", "1", provisioning
        ).collect()
    }
    got = {k: (r.stage, r.pd_horizon_months, r.ead, r.lgd) for k, r in rows.items()}
    assert got == {"L1": (1, 12, 1000.0, 0.5), "L2": (2, 2, 500.0, 0.5), "L3": (3, 3, 300.0, 0.5)}
    pds = {k: r.pd for k, r in rows.items()}
    assert pds == pytest.approx({"L1": 1 - 0.9**2, "L2": 1 - 0.8 ** (2 / 6), "L3": 1.0})
    assert rows["L3"].expected_loss == 150.0
    assert rows["L1"].expected_loss == pytest.approx((1 - 0.9**2) * 0.5 * 1000.0)
