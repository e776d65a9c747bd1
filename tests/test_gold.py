"""Point-in-time features and matured labels, hand-checked on tiny books."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from riskcontrol.analyze import application_features
from riskcontrol.core import dates

D = dt.date
TS = dt.datetime


def test_pit_dpd(spark):
    rows = [
        (D(2024, 1, 10), None, D(2024, 3, 1)),  # unpaid: 51 days late on Mar 1
        (D(2024, 1, 10), D(2024, 1, 15), D(2024, 3, 1)),  # paid 5 days late
        (D(2024, 1, 10), D(2024, 5, 1), D(2024, 3, 1)),  # paid after as-of: still unpaid then
        (D(2024, 4, 10), None, D(2024, 3, 1)),  # not yet due
        (D(2024, 1, 10), D(2024, 1, 1), D(2024, 3, 1)),  # paid early
    ]
    df = spark.createDataFrame(rows, "due date, paid date, asof date")
    got = [
        r[0] for r in df.select(dates.pit_dpd(F.col("due"), F.col("paid"), F.col("asof"))).collect()
    ]
    assert got == [51, 5, 51, 0, 0]


def test_loan_labels_use_only_the_performance_window(spark):
    loans = spark.createDataFrame(
        [
            ("L1", "A1", D(2024, 1, 1)),  # misses installment 2 -> 61 days late by Jul 1: bad
            ("L2", "A2", D(2024, 1, 1)),  # late only after the window: good
            ("L3", "A3", D(2024, 1, 1)),  # 59 days late at window end: good
            ("L4", "A4", D(2024, 3, 1)),  # window ends Sep 1 > as-of Aug 1: not matured
        ],
        "loan_id string, application_id string, disbursed_date date",
    )
    reps = spark.createDataFrame(
        [
            ("L1", D(2024, 2, 1), D(2024, 2, 1)),
            ("L1", D(2024, 5, 1), None),
            ("L2", D(2024, 2, 1), D(2024, 2, 1)),
            ("L2", D(2024, 8, 1), None),
            ("L3", D(2024, 5, 3), None),
            ("L4", D(2024, 4, 1), None),
        ],
        "loan_id string, due_date date, paid_date date",
    )
    got = {
        r.application_id: (r.label, r.label_matured)
        for r in application_features.loan_labels(loans, reps, D(2024, 8, 1), 6, 60).collect()
    }
    assert got == {"A1": (1, True), "A2": (0, True), "A3": (0, True), "A4": (None, False)}


def test_event_note_and_prior_features_see_only_the_past(spark):
    apps = spark.createDataFrame(
        [("A1", "C1", TS(2024, 3, 31, 12, 0), D(2024, 3, 31))],
        "application_id string, customer_id string, applied_at timestamp, application_date date",
    )
    events = spark.createDataFrame(
        [
            ("C1", TS(2024, 3, 30, 23, 30), "loan_calc", True),
            ("C1", TS(2024, 3, 10, 10, 0), "apply_click", False),
            ("C1", TS(2024, 2, 20, 10, 0), "loan_calc", False),  # 40 days before: outside
            ("C1", TS(2024, 3, 31, 13, 0), "loan_calc", True),  # after applying: never seen
            ("C2", TS(2024, 3, 30, 10, 0), "loan_calc", True),  # someone else
        ],
        "customer_id string, event_ts timestamp, event_type string, is_night boolean",
    )
    ev = application_features.event_features(apps, events).collect()[0].asDict()
    assert ev == {
        "application_id": "A1",
        "ev_count_30d": 2.0,
        "ev_night_share_30d": 0.5,
        "ev_loan_calc_30d": 1.0,
        "ev_apply_click_30d": 1.0,
    }
    notes = spark.createDataFrame(
        [("C1", TS(2024, 3, 1), 2), ("C1", TS(2024, 3, 2), 0), ("C1", TS(2024, 4, 1), 5)],
        "customer_id string, noted_at timestamp, negative_hits int",
    )
    nt = application_features.note_features(apps, notes).collect()[0]
    assert (nt.notes_count_90d, nt.notes_negative_90d) == (2.0, 1.0)
    loans = spark.createDataFrame(
        [("L0", "C1", D(2023, 12, 1)), ("L9", "C1", D(2024, 4, 5))],
        "loan_id string, customer_id string, disbursed_date date",
    )
    reps = spark.createDataFrame(
        [
            ("L0", D(2024, 1, 1), D(2024, 1, 11)),  # 10 days late
            ("L0", D(2024, 2, 1), None),  # unpaid: 59 days by Mar 31
            ("L0", D(2024, 4, 1), None),  # due after the application date
            ("L9", D(2024, 5, 5), None),  # a later loan
        ],
        "loan_id string, due_date date, paid_date date",
    )
    pr = application_features.prior_loan_features(apps, loans, reps).collect()[0]
    assert (pr.prior_loans, pr.prior_max_dpd, pr.prior_late_installments) == (1.0, 59.0, 2.0)
