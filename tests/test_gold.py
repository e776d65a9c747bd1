"""Point-in-time features and matured labels, hand-checked on tiny books."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from riskcontrol.analyze import application_features
from riskcontrol.core import dates

D = dt.date


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
