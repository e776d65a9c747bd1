"""Early-warning indicators: exact values on hand-built books, and the planted
deterioration of the generated book caught on the day an independent count expects."""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from riskcontrol.apply import alerts, warning
from riskcontrol.synthetic.generate import generate

D = dt.date
LOAN_DAYS_SCHEMA = (
    "as_of_date date, loan_id string, customer_id string, channel string, province string, "
    "disbursed_date date, outstanding double, dpd int, active boolean"
)
APPS_SCHEMA = (
    "application_id string, customer_id string, application_date date, channel string, "
    "province string, status string, decided_at timestamp"
)


# --- thresholds and days -----------------------------------------------------------------
def test_days_end_on_the_as_of_day() -> None:
    assert warning.days(D(2025, 3, 2), 3) == [D(2025, 2, 28), D(2025, 3, 1), D(2025, 3, 2)]
    with pytest.raises(ValueError, match="at least 1"):
        warning.days(D(2025, 3, 2), 0)


def test_yaml_overrides_merge_into_the_defaults(tmp_path) -> None:
    defaults = warning.load_thresholds(None)
    assert defaults == warning.default_thresholds()
    assert {
        k: {"warning": v["warning"], "critical": v["critical"]} for k, v in defaults.items()
    } == (warning.DEFAULT_THRESHOLDS)
    assert set(warning.DEFAULT_SOURCES) == set(warning.DEFAULT_THRESHOLDS)
    path = tmp_path / "thresholds.yaml"
    path.write_text(
        "dpd30_rate: {warning: 0.1}\nscore_psi:\n  warning: 0.2\n  critical: 0.3\n"
        "dpd1_rate: {warning: 0.2, critical: 0.3, source: risk committee 2025-05}\n"
    )
    got = warning.load_thresholds(path)
    generated = "generated books seeds 1-11, see tests/test_warning.py"
    assert got["dpd30_rate"] == {
        "warning": 0.1,
        "critical": 0.35,
        "source": f"warning file {path}; critical default: {generated}",
    }
    assert got["score_psi"] == {"warning": 0.2, "critical": 0.3, "source": f"file {path}"}
    assert got["dpd1_rate"]["source"] == f"file {path}: risk committee 2025-05"
    changed = ("dpd30_rate", "score_psi", "dpd1_rate")
    assert {k: v for k, v in got.items() if k not in changed} == {
        k: v for k, v in defaults.items() if k not in changed
    }
    assert warning.DEFAULT_THRESHOLDS["dpd30_rate"]["warning"] == 0.25  # defaults untouched
    assert defaults["csi"]["source"].startswith("default: PSI convention: under 0.1 stable")

    path.write_text("dpd31_rate: {warning: 0.1}\n")
    with pytest.raises(ValueError, match="unknown indicator 'dpd31_rate'; known: dpd1_rate, "):
        warning.load_thresholds(path)
    path.write_text("dpd30_rate: {warning: 0.5}\n")
    with pytest.raises(ValueError, match="warning 0.5 is above critical 0.35"):
        warning.load_thresholds(path)
    path.write_text("dpd30_rate: {warn: 0.1}\n")
    with pytest.raises(ValueError, match="only 'warning' and 'critical'"):
        warning.load_thresholds(path)
    path.write_text("dpd30_rate: {source: no numbers}\n")  # a source alone changes nothing
    assert warning.load_thresholds(path)["dpd30_rate"] == defaults["dpd30_rate"]


# --- loan state per day, vintages -----------------------------------------------------------
def test_loan_days_dpd_outstanding_and_active(spark) -> None:
    loans = spark.createDataFrame(
        [
            ("L1", "A1", "C1", D(2025, 1, 1)),
            ("L2", "A2", "C2", D(2025, 1, 15)),
            ("L3", "A3", "C3", D(2025, 3, 5)),  # no application row: channel 'unknown'
            ("L4", "A4", "C4", D(2024, 10, 1)),  # settled before the first day: no rows
        ],
        "loan_id string, application_id string, customer_id string, disbursed_date date",
    )
    reps = spark.createDataFrame(
        [
            ("L1", D(2025, 2, 1), 100.0, D(2025, 2, 1)),  # paid on the due day
            ("L1", D(2025, 3, 1), 100.0, D(2025, 3, 11)),  # paid 10 days late
            ("L1", D(2025, 4, 1), 100.0, None),  # never paid
            ("L2", D(2025, 2, 15), 50.0, D(2025, 2, 14)),
            ("L2", D(2025, 3, 15), 50.0, D(2025, 4, 20)),  # 36 days late: paid in full
            ("L3", D(2025, 4, 5), 70.0, None),
            ("L4", D(2024, 11, 1), 40.0, D(2024, 11, 1)),
        ],
        "loan_id string, due_date date, amount_due double, paid_date date",
    )
    apps = spark.createDataFrame(
        [
            ("A1", "C1", D(2025, 1, 1), "app", "P1", "approved", None),
            ("A2", "C2", D(2025, 1, 15), "web", "P2", "approved", None),
            ("A4", "C4", D(2024, 10, 1), "web", "P2", "approved", None),
        ],
        APPS_SCHEMA,
    )
    day_list = [D(2025, m, d) for m, d in ((2, 1), (2, 2), (3, 2), (3, 11), (3, 12))] + [
        D(2025, 4, 20),
        D(2025, 4, 21),
        D(2025, 5, 1),
    ]
    rows = warning.loan_days(loans, reps, apps, warning.days_frame(spark, day_list)).collect()
    got = {
        (r.loan_id, r.as_of_date.isoformat()[5:]): (r.outstanding, r.dpd, r.active) for r in rows
    }
    assert got == {
        # a payment counts from the day after it is made; due today is not yet overdue
        ("L1", "02-01"): (300.0, 0, True),
        ("L1", "02-02"): (200.0, 0, True),
        ("L1", "03-02"): (200.0, 1, True),
        ("L1", "03-11"): (200.0, 10, True),
        ("L1", "03-12"): (100.0, 0, True),
        ("L1", "04-20"): (100.0, 19, True),
        ("L1", "04-21"): (100.0, 20, True),
        ("L1", "05-01"): (100.0, 30, True),
        ("L2", "02-01"): (100.0, 0, True),
        ("L2", "02-02"): (100.0, 0, True),
        ("L2", "03-02"): (50.0, 0, True),
        ("L2", "03-11"): (50.0, 0, True),
        ("L2", "03-12"): (50.0, 0, True),
        ("L2", "04-20"): (50.0, 36, True),
        ("L2", "04-21"): (0.0, 0, False),
        ("L2", "05-01"): (0.0, 0, False),
        ("L3", "03-11"): (70.0, 0, True),
        ("L3", "03-12"): (70.0, 0, True),
        ("L3", "04-20"): (70.0, 15, True),
        ("L3", "04-21"): (70.0, 16, True),
        ("L3", "05-01"): (70.0, 26, True),
    }
    assert {(r.loan_id, r.customer_id, r.channel, r.province, r.disbursed_date) for r in rows} == {
        ("L1", "C1", "app", "P1", D(2025, 1, 1)),
        ("L2", "C2", "web", "P2", D(2025, 1, 15)),
        ("L3", "C3", "unknown", "unknown", D(2025, 3, 5)),
    }

    # ever 30+ DPD by month on book 3: L2's second installment is 31 days late on Apr 15
    cohorts = {
        r.cohort: (r.complete_date, r.loans, r.ever30_loans)
        for r in warning.vintage_cohorts(loans, reps).collect()
    }
    assert cohorts == {
        "2024-10": (D(2025, 1, 1), 1.0, 0.0),
        "2025-01": (D(2025, 4, 15), 2.0, 1.0),
        "2025-03": (D(2025, 6, 5), 1.0, 1.0),
    }
    curves = sorted(
        tuple(r) for r in warning.vintage_curves(loans, reps, D(2025, 5, 1), 3).collect()
    )
    assert curves == [
        ("2024-10", 1, 1, 0.0),
        ("2024-10", 2, 1, 0.0),
        ("2024-10", 3, 1, 0.0),
        ("2025-01", 1, 2, 0.0),
        ("2025-01", 2, 2, 0.0),
        ("2025-01", 3, 2, 0.5),
        ("2025-03", 1, 1, 0.0),  # month on book 2 is May 5, after as-of
    ]


# --- indicators on a hand-built book ------------------------------------------------------
DAY = D(2025, 6, 30)
BASE = DAY - dt.timedelta(days=30)
# loan: customer, channel, province, outstanding, dpd t days after BASE (None: paid off)
MINI_BOOK = {
    "A1": ("C1", "app", "P1", 1000.0, lambda t: 0),
    "A2": ("C2", "app", "P1", 500.0, lambda t: 10 + t),  # 1-29 -> 30+: rolls
    "A3": ("C3", "app", "P2", 300.0, lambda t: 5 + t if t < 10 else 0),  # cures
    "A4": ("C4", "web", "P1", 800.0, lambda t: 70 + t),  # reaches 90 on day 20: default
    "A5": ("C5", "web", "P2", 400.0, lambda t: 45 + t),  # 30-59 -> 60+: rolls
    "A6": ("C6", "web", "P2", 200.0, lambda t: 40 + t if t < 5 else 0),  # cures
    "A7": ("C7", "partner_a", "P1", 600.0, lambda t: 0 if t < 15 else None),  # paid off
    "A8": ("C8", "partner_a", "P1", 600.0, lambda t: 0 if t > 10 else None),  # new loan
    "A9": ("C9", "offline", "P2", 100.0, lambda t: 95 + t),  # 90+ before the window
}


def mini_loan_days(spark):
    rows = []
    for loan, (customer, channel, province, owed, dpd_at) in MINI_BOOK.items():
        disbursed = BASE + dt.timedelta(days=10) if loan == "A8" else D(2025, 1, 1)
        for t in range(31):
            day = BASE + dt.timedelta(days=t)
            if day <= disbursed:
                continue
            dpd = dpd_at(t)
            active = dpd is not None
            row = (day, loan, customer, channel, province, disbursed)
            rows.append((*row, owed if active else 0.0, dpd or 0, active))
    return spark.createDataFrame(rows, LOAN_DAYS_SCHEMA)


def test_indicators_on_a_hand_built_book(spark) -> None:
    ts = dt.datetime
    applications = spark.createDataFrame(
        [  # last 30 days: 1 of 4 approved; the 90 days before: 3 of 4 -> shift -0.5
            ("X1", "C1", D(2025, 6, 1), "app", "P1", "approved", ts(2025, 6, 1, 10)),
            ("X2", "C2", D(2025, 6, 10), "app", "P1", "rejected", ts(2025, 6, 10, 10)),
            ("X3", "C3", D(2025, 6, 20), "app", "P1", "rejected", ts(2025, 6, 21, 10)),
            ("X4", "C4", D(2025, 5, 31), "app", "P1", "rejected", ts(2025, 5, 31, 10)),
            ("X5", "C5", D(2025, 6, 29), "app", "P1", "approved", ts(2025, 6, 30, 9)),  # later
            ("X6", "C6", D(2025, 6, 25), "app", "P1", "pending", None),
            ("Y1", "C1", D(2025, 5, 30), "app", "P1", "approved", ts(2025, 5, 30, 10)),
            ("Y2", "C2", D(2025, 4, 1), "app", "P1", "approved", ts(2025, 4, 1, 10)),
            ("Y3", "C3", D(2025, 3, 2), "app", "P1", "approved", ts(2025, 3, 2, 10)),
            ("Y4", "C4", D(2025, 4, 15), "app", "P1", "rejected", ts(2025, 4, 15, 10)),
            ("Y5", "C5", D(2025, 3, 1), "app", "P1", "approved", ts(2025, 3, 1, 10)),  # older
        ],
        APPS_SCHEMA,
    )
    before = [DAY - dt.timedelta(days=n) for n in (1, 5, 30)]
    links = spark.createDataFrame(
        [
            ("court", "R1", "customer", "C2", None, before[1]),
            ("penalty", "R2", "employer", "C5", None, before[0]),  # one record, two staff
            ("penalty", "R2", "employer", "C6", None, before[0]),
            ("court", "R3", "customer", "C4", None, DAY - dt.timedelta(days=40)),  # too old
            ("news", "R4", "customer", "C1", None, before[0]),  # not a court or penalty
            ("court", "R5", "customer", "C7", None, before[0]),  # paid off: no borrower
            ("court", "R6", "customer", "C1", None, DAY),  # known only tomorrow
            ("penalty", "R7", "company", None, "K1", before[0]),
            ("court", "R8", "customer", "C9", None, before[2]),  # first day of the window
            ("court", "R9", "customer", "C9", None, DAY - dt.timedelta(days=31)),
        ],
        "record_kind string, record_id string, entity_type string, customer_id string, "
        "company_key string, record_date date",
    )
    scores = spark.createDataFrame(
        [(D(2025, 6, 1), 0.05)] * 5
        + [(D(2025, 6, 29), 0.95)] * 5
        + [(DAY, 0.5)] * 3  # not yet known
        + [(DAY - dt.timedelta(days=31), 0.5)] * 3,  # before the window
        "application_date date, pd double",
    )
    cohorts = spark.createDataFrame(
        [
            ("2025-02", D(2025, 5, 31), 10.0, 2.0),
            ("2025-03", D(2025, 6, 30), 4.0, 1.0),  # complete on the day: the latest
            ("2025-04", D(2025, 7, 31), 8.0, 8.0),
        ],
        "cohort string, complete_date date, loans double, ever30_loans double",
    )
    decided = [  # the decision service: (days before DAY, decision, rules fired)
        (1, "approve", []),
        (2, "reject", ["KO_LIST"]),
        (3, "review", ["REF_APPS_24H"]),
        (6, "reject", ["KO_LIST", "KO_LIST"]),  # a rule counts once per decision
        (8, "approve", None),  # the 23 days before the recent 7: 2 of 3 approved
        (20, "approve", []),
        (30, "reject", ["KO_LIST"]),
        (31, "approve", []),  # before the window
        (0, "reject", ["KO_LIST"]),  # known only tomorrow
    ]
    decisions = spark.createDataFrame(
        [
            (dt.datetime.combine(DAY - dt.timedelta(days=n), dt.time(10)), decision, fired)
            for n, decision, fired in decided
        ],
        "decided_at timestamp, decision string, rules_fired array<string>",
    )
    baseline, shifted = csi_populations(spark)
    recent = shifted.select(F.lit(DAY - dt.timedelta(days=2)).alias("application_date"), "*")
    outside = baseline.select(F.lit(DAY).alias("application_date"), "*")  # known tomorrow
    reference = baseline.select(F.lit(DAY - dt.timedelta(days=40)).alias("application_date"), "*")
    thresholds = warning.load_thresholds(None)
    thresholds["dpd30_rate"] = {"warning": 0.5, "critical": 0.6}
    thresholds["approval_rate_shift"] = {"warning": 0.3, "critical": 0.6}
    thresholds["vintage_mob3_dpd30"] = {"warning": 0.2, "critical": 0.25}
    rows = warning.compute_indicators(
        mini_loan_days(spark),
        applications,
        links,
        thresholds,
        2,
        warning.days_frame(spark, [DAY]),
        score_frame=scores,
        baseline_pd=(np.arange(1, 101) / 100).tolist(),
        cohorts=cohorts,
        decisions=decisions,
        feature_frame=recent.unionByName(outside).unionByName(reference),
        feature_bins=warning.csi_baseline(baseline, ["x"], ["c"]),
    ).collect()
    assert {r.as_of_date for r in rows} == {DAY}
    assert all(
        (r.warning_threshold, r.critical_threshold)
        == (thresholds[r.indicator]["warning"], thresholds[r.indicator]["critical"])
        for r in rows
    )
    sources = {r.indicator: r.threshold_source for r in rows}
    assert sources["dpd30_rate"] == "given by the caller, source not stated"
    assert sources["csi"] == sources["score_psi"] == f"default: {warning.DEFAULT_SOURCES['csi']}"
    assert sources["dpd1_rate"] == (
        "default: generated books seeds 1-11, see tests/test_warning.py"
    )
    got = {
        (r.indicator, r.segment_type, r.segment): (
            r.value,
            r.numerator,
            r.denominator,
            r.status,
            r.exposure,
        )
        for r in rows
    }
    psi = 2 * (0.5 - 0.1) * math.log(0.5 / 0.1) + 8 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    ov = ("overall", "all")
    expected = {
        # active on DAY: A1-A6, A8, A9 (8 loans, 3,900 owed); 30+: A2, A4, A5, A9
        ("dpd1_rate", *ov): (0.5, 4, 8, "critical", 3900),
        ("dpd30_rate", *ov): (0.5, 4, 8, "warning", 3900),  # at warning: breaches
        ("dpd90_rate", *ov): (0.25, 2, 8, "warning", 3900),
        ("dpd1_rate", "channel", "app"): (1 / 3, 1, 3, "warning", 1800),
        ("dpd30_rate", "channel", "app"): (1 / 3, 1, 3, "ok", 1800),
        ("dpd90_rate", "channel", "app"): (0.0, 0, 3, "ok", 1800),
        ("dpd1_rate", "channel", "web"): (2 / 3, 2, 3, "critical", 1400),
        ("dpd30_rate", "channel", "web"): (2 / 3, 2, 3, "critical", 1400),
        ("dpd90_rate", "channel", "web"): (1 / 3, 1, 3, "critical", 1400),
        ("dpd1_rate", "channel", "partner_a"): (0.0, 0, 1, "too_few", 600),
        ("dpd30_rate", "channel", "partner_a"): (0.0, 0, 1, "too_few", 600),
        ("dpd90_rate", "channel", "partner_a"): (0.0, 0, 1, "too_few", 600),
        ("dpd1_rate", "channel", "offline"): (1.0, 1, 1, "too_few", 100),
        ("dpd30_rate", "channel", "offline"): (1.0, 1, 1, "too_few", 100),
        ("dpd90_rate", "channel", "offline"): (1.0, 1, 1, "too_few", 100),
        ("dpd1_rate", "province", "P1"): (0.5, 2, 4, "critical", 2900),
        ("dpd30_rate", "province", "P1"): (0.5, 2, 4, "warning", 2900),
        ("dpd90_rate", "province", "P1"): (0.25, 1, 4, "warning", 2900),
        ("dpd1_rate", "province", "P2"): (0.5, 2, 4, "critical", 1000),
        ("dpd30_rate", "province", "P2"): (0.5, 2, 4, "warning", 1000),
        ("dpd90_rate", "province", "P2"): (0.25, 1, 4, "warning", 1000),
        # active on BASE: A1-A7, A9; A4 reaches 90 within (BASE, DAY], A9 did before
        ("default_rate", *ov): (0.125, 1, 8, "critical", 3900),
        ("roll_1_30", *ov): (0.5, 1, 2, "ok", 3900),  # A2 rolls, A3 cures
        ("roll_30_60", *ov): (0.5, 1, 2, "ok", 3900),  # A5 rolls, A6 cures
        ("vintage_mob3_dpd30", *ov): (0.25, 1, 4, "critical", 3900),
        ("score_psi", *ov): (pytest.approx(psi), 10, 100, "critical", 3900),
        # -50 points on 4 decisions: within 3 standard errors (0.75) of no shift
        ("approval_rate_shift", *ov): (-0.5, 1, 4, "too_few", 3900),
        ("concentration_channel", "channel", "app"): (1800 / 3900, 1800, 3900, "ok", 1800),
        ("concentration_province", "province", "P1"): (
            2900 / 3900,
            2900,
            3900,
            "critical",
            2900,
        ),
        # R1 (C2), R2 (C5 and C6 through their employer) and R8 (C9): 3 records over the
        # 8 customers with an active loan, per 1,000 of them
        ("public_record_hits_30d", *ov): (375, 3, 8, "critical", 1200),
        # the features of the 10 applications two days before DAY against the 10 of the
        # reference window (the baseline's): critical, but within the noise of 10 against
        # 10 over 11 bins (NOISE_X) and 4 bins (NOISE_C)
        ("csi", "feature", "x"): (CSI_X, 10, 10, "too_few", 3900),
        ("csi", "feature", "c"): (CSI_C, 10, 10, "too_few", 3900),
        # the service's last 7 days: 1 of 4 approved, against 2 of 3 before: critical,
        # within 3 standard errors (0.74, the 23 days before as 23/7 weeks) of no shift
        ("rt_approval_rate_shift", *ov): (0.25 - 2 / 3, 1, 4, "too_few", 3900),
        ("rt_rule_hit_rate", *ov): (0.75, 3, 4, "critical", 3900),
        ("rt_rule_hit_rate", "rule", "KO_LIST"): (0.5, 2, 4, "critical", 3900),
        ("rt_rule_hit_rate", "rule", "REF_APPS_24H"): (0.25, 1, 4, "warning", 3900),
    }
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        assert got[key] == pytest.approx(want), key


# --- the planted deterioration -----------------------------------------------------------------
def _day_numbers(values: pd.Series) -> np.ndarray:
    """Day numbers of 'YYYY-MM-DD[...]' strings; missing -> a day far in the future."""
    days = pd.to_datetime(values.str[:10]).to_numpy().astype("datetime64[D]").astype(np.int64)
    return np.where(values.isna(), 10**9, days)


def as_date(value: str | None) -> dt.date | None:
    return None if value is None else D.fromisoformat(value[:10])


def as_ts(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def silver_rows(df: pd.DataFrame, columns: dict) -> list[tuple]:
    """Rows of a lending-system table with its columns converted to the silver types
    (``disbursed_at`` -> ``disbursed_date``, ``applied_at`` -> ``application_date``)."""
    return list(zip(*[[convert(v) for v in df[c]] for c, convert in columns.items()], strict=True))


def _from_day(n: int) -> dt.date:
    return D(1970, 1, 1) + dt.timedelta(days=int(n))


def _lending_rows(out) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A generated book's loans, repayment lines and applications, as the generator wrote
    them."""
    con = sqlite3.connect(out / "lending.db")
    loans = pd.read_sql("SELECT loan_id, application_id, customer_id, disbursed_at FROM loans", con)
    reps = pd.read_sql("SELECT loan_id, due_date, amount_due, paid_date FROM repayments", con)
    apps = pd.read_sql("SELECT * FROM applications", con)
    con.close()
    return loans, reps, apps


def _lending_frames(spark, loans, reps, apps):
    """``_lending_rows`` as the silver columns the indicators read."""
    loans_df = spark.createDataFrame(
        silver_rows(
            loans,
            {"loan_id": str, "application_id": str, "customer_id": str, "disbursed_at": as_date},
        ),
        "loan_id string, application_id string, customer_id string, disbursed_date date",
    )
    reps_df = spark.createDataFrame(
        silver_rows(
            reps, {"loan_id": str, "due_date": as_date, "amount_due": float, "paid_date": as_date}
        ),
        "loan_id string, due_date date, amount_due double, paid_date date",
    )
    apps_df = spark.createDataFrame(
        silver_rows(
            apps,
            {"application_id": str, "customer_id": str, "applied_at": as_date, "channel": str}
            | {"province": str, "status": str, "decided_at": as_ts},
        ),
        APPS_SCHEMA,
    )
    return loans_df, reps_df, apps_df


def test_the_planted_deterioration_is_caught_on_the_right_day(spark, tmp_path) -> None:
    out = tmp_path / "book"
    generate(out, customers=1500, seed=3)
    truth = json.loads((out / "generation.json").read_text(encoding="utf-8"))["deterioration"]
    assert truth == {
        "segment_type": "channel",
        "segment": "partner_a",
        "start_date": "2026-01-16",
        "share": 0.35,
    }
    start = D.fromisoformat(truth["start_date"])
    as_of = D(2026, 4, 1)
    loans, reps, apps = _lending_rows(out)

    # expected, counted directly from the raw rows: per day, the share of each channel's
    # loans with an installment unpaid that day whose oldest overdue one is 1+ / 30+ late
    day_list = warning.days(as_of, 90)
    first_day = (day_list[0] - D(1970, 1, 1)).days
    raw = reps.merge(loans, on="loan_id").merge(apps[["application_id", "channel"]])
    due, paid = _day_numbers(raw.due_date), _day_numbers(raw.paid_date)
    disbursed = _day_numbers(raw.disbursed_at)
    codes, loan_index = np.unique(raw.loan_id, return_inverse=True)
    channel_of = raw.groupby(loan_index).channel.first().to_numpy()
    expected: dict[tuple[str, dt.date, str], float] = {}
    for d in range(first_day, first_day + len(day_list)):
        unpaid = (disbursed < d) & (paid >= d)
        late = np.where(unpaid & (due < d), d - due, 0)
        active = np.bincount(loan_index, weights=unpaid, minlength=len(codes)) > 0
        worst = np.zeros(len(codes), dtype=np.int64)
        np.maximum.at(worst, loan_index, late)
        for channel in np.unique(channel_of):
            mine = active & (channel_of == channel)
            for k in (1, 30):
                rate = (worst[mine] >= k).sum() / mine.sum()
                expected[f"dpd{k}_rate", _from_day(d), channel] = rate

    loans_df, reps_df, apps_df = _lending_frames(spark, loans, reps, apps)
    days_df = warning.days_frame(spark, day_list)
    indicators = warning.compute_indicators(
        warning.loan_days(loans_df, reps_df, apps_df, days_df),
        apps_df,
        None,
        warning.load_thresholds(None),
        30,
        days_df,
    ).where("indicator IN ('dpd1_rate', 'dpd30_rate') AND segment_type = 'channel'")
    rows = indicators.cache().collect()
    assert {(r.indicator, r.as_of_date, r.segment): r.value for r in rows} == pytest.approx(
        expected
    )
    statuses = {(r.indicator, r.as_of_date, r.segment): r.status for r in rows}
    assert {ch for (_, _, ch) in statuses} == {"app", "web", "partner_a", "partner_b", "offline"}
    # (the book's cures, partial payments and prepayments moved these from S + 18 and S + 44,
    # and repeat applications left out after as-of moved S + 39 to S + 38)
    for indicator, caught_on in (("dpd1_rate", D(2026, 1, 26)), ("dpd30_rate", D(2026, 2, 23))):
        warn = warning.DEFAULT_THRESHOLDS[indicator]["warning"]
        first = min(
            day
            for (name, day, ch), v in expected.items()
            if (name, ch) == (indicator, "partner_a") and v >= warn
        )
        assert first == caught_on > start  # S + 10 and S + 38 days
        breached = [
            day
            for (name, day, ch), status in statuses.items()
            if (name, ch) == (indicator, "partner_a") and status in ("warning", "critical")
        ]
        assert min(breached) == first
        assert warning.first_breach(indicators, indicator, "channel", "partner_a") == first
        others = {
            s for (name, _, ch), s in statuses.items() if name == indicator and ch != "partner_a"
        }
        assert others == {"ok"}
    # once caught, DPD 30+ stays above warning to the end of the book
    assert (
        min(
            v
            for (name, day, ch), v in expected.items()
            if (name, ch) == ("dpd30_rate", "partner_a") and day >= D(2026, 2, 24)
        )
        >= warning.DEFAULT_THRESHOLDS["dpd30_rate"]["warning"]
    )


def test_a_charged_off_loan_leaves_every_rate(spark) -> None:
    """On DAY A4 is 100 and A9 125 days past due: a charge-off at 120 days takes A9 off
    the book, out of the numerators and the denominators alike."""
    apps = spark.createDataFrame([], APPS_SCHEMA)

    def overall(charge_off_dpd):
        rows = warning.compute_indicators(
            mini_loan_days(spark),
            apps,
            None,
            warning.load_thresholds(None),
            2,
            warning.days_frame(spark, [DAY]),
            charge_off_dpd=charge_off_dpd,
        ).where("segment_type = 'overall' AND indicator LIKE 'dpd%'")
        return {r.indicator: (r.numerator, r.denominator, r.exposure) for r in rows.collect()}

    assert overall(None) == {
        "dpd1_rate": (4, 8, 3900.0),
        "dpd30_rate": (4, 8, 3900.0),
        "dpd90_rate": (2, 8, 3900.0),
    }
    assert overall(120) == {
        "dpd1_rate": (3, 7, 3800.0),
        "dpd30_rate": (3, 7, 3800.0),
        "dpd90_rate": (1, 7, 3800.0),
    }


def test_score_psi_baseline_is_every_application_of_the_training_months(spark) -> None:
    apps = spark.createDataFrame(
        [
            ("X1", "2023-12", "approved", True),
            ("X2", "2024-01", "rejected", False),
            ("X3", "2024-02", "pending", False),
            ("X4", "2024-03", "approved", False),  # not matured yet: still through the door
            ("X5", "2024-03", "approved", True),
            ("X6", "2024-04", "approved", True),
        ],
        "application_id string, application_month string, status string, label_matured boolean",
    )
    door = warning.through_the_door(apps, "2024-01..2024-03")
    assert sorted(r.application_id for r in door.collect()) == ["X2", "X3", "X4", "X5"]
    for bad in ("2024-01", "2024-03..2024-01", "..2024-01"):
        with pytest.raises(ValueError, match="must read 'first..last'"):
            warning.through_the_door(apps, bad)


def test_score_psi_of_identical_populations_is_zero_and_of_a_cut_one_is_not(spark) -> None:
    day = dt.date(2024, 5, 1)
    baseline = [round(0.01 * i, 2) for i in range(1, 101)]  # every application, PDs .01-1
    # The same 100 PDs on the 30 days before the day: the same population.
    same = spark.createDataFrame(
        [(day - dt.timedelta(days=1 + i % 30), pd_) for i, pd_ in enumerate(baseline)],
        "application_date date, pd double",
    )
    days_df = warning.days_frame(spark, [day])
    row = warning._psi(same, baseline, days_df).first()
    assert (row.value, row.numerator, row.denominator) == (0.0, 100, 100)
    # Against the approved half only (PDs up to 0.5, as a cut-off leaves them), the very
    # same applications look drifted: its deciles end at .05, .10, ..., .45, so the first
    # nine bins get 5% of the applications each against 10%, and the last 55%.
    approved = [p for p in baseline if p <= 0.5]
    cut = warning._psi(same, approved, days_df).first()
    expected = 9 * (0.05 - 0.1) * math.log(0.05 / 0.1) + (0.55 - 0.1) * math.log(0.55 / 0.1)
    assert cut.value == pytest.approx(expected)  # 1.079: critical, for no change at all


# --- characteristic stability of the model's features --------------------------------------
FLOOR = warning.PSI_FLOOR


def _term(actual: float, expected: float) -> float:
    a, e = max(actual, FLOOR), max(expected, FLOOR)
    return (a - e) * math.log(a / e)


def _smoothed(recent: list[int], reference: list[int], times: int = 1) -> float:
    """A stability index of two samples' counts per bin, half an application added to
    each bin of each (``warning.SMOOTHING``), both samples ``times`` over."""
    k, n, m = len(recent), sum(recent) * times, sum(reference) * times
    return sum(
        _term((r * times + 0.5) / (n + 0.5 * k), (q * times + 0.5) / (m + 0.5 * k))
        for r, q in zip(recent, reference, strict=True)
    )


# x: baseline 1..10, one per decile bin; recent five 1s, a 2, 3 and 4, two missing
X_COUNTS = ([5, 1, 1, 1, 0, 0, 0, 0, 0, 0, 2], [1] * 10 + [0])  # recent, reference; missing last
CSI_X = _smoothed(*X_COUNTS)
# c: baseline a 5, b 4, missing 1; recent a 3, b 3, the unseen z 2, missing 2
C_COUNTS = ([3, 3, 2, 2], [5, 4, 0, 1])
CSI_C = _smoothed(*C_COUNTS)


def csi_populations(spark):
    """A through-the-door baseline of 10 applications and a shifted recent population."""
    schema = "x int, c string"
    baseline = spark.createDataFrame(
        [(x, c) for x, c in zip(range(1, 11), ["a"] * 5 + ["b"] * 4 + [None], strict=True)],
        schema,
    )
    shifted = spark.createDataFrame(
        list(
            zip(
                [1, 1, 1, 1, 1, 2, 3, 4, None, None],
                ["a"] * 3 + ["b"] * 3 + ["z"] * 2 + [None] * 2,
                strict=True,
            )
        ),
        schema,
    )
    return baseline, shifted


def test_csi_baseline_bins_on_deciles_and_levels(spark) -> None:
    baseline, _ = csi_populations(spark)
    x, c = warning.csi_baseline(baseline, ["x"], ["c"])
    assert (x.feature, x.rows, x.levels) == ("x", 10, None)
    assert x.edges == pytest.approx([1.9, 2.8, 3.7, 4.6, 5.5, 6.4, 7.3, 8.2, 9.1])
    assert x.shares == {**{i: 0.1 for i in range(10)}, warning.NULL_BIN: 0.0}
    # levels a, b; bin 2 for a level the baseline never had; missing values their own bin
    assert (c.feature, c.rows, c.levels, c.edges) == ("c", 10, ("a", "b"), ())
    assert c.shares == {0: 0.5, 1: 0.4, 2: 0.0, warning.NULL_BIN: 0.1}


# 3 standard errors above the index of two samples of 10 of one population:
# (1/10 + 1/10) (df + 3 sqrt(2 df)), df = occupied bins - 1 (x: 10 deciles and missing)
NOISE_X = 0.2 * (10 + 3 * math.sqrt(20))
NOISE_C = 0.2 * (3 + 3 * math.sqrt(6))  # c: a, b, the unseen z and missing


def test_csi_compares_the_last_30_days_with_the_180_before_them(spark) -> None:
    day = D(2024, 5, 1)
    baseline, shifted = csi_populations(spark)
    bins = warning.csi_baseline(baseline, ["x"], ["c"])
    days_df = warning.days_frame(spark, [day])

    def frame(population, dated: int = 3, reference: int = 31, times: int = 1):
        """``population`` dated ``dated`` days before ``day`` and the baseline
        ``reference`` days before it, each ``times`` over."""

        def at(one, days: int):
            dated = one.select(F.lit(day - dt.timedelta(days=days)).alias("application_date"), "*")
            return dated.crossJoin(spark.range(times)).drop("id")

        return warning._csi(
            at(population, dated).unionByName(at(baseline, reference)), bins, days_df
        )

    def csi(population, **kwargs) -> dict:
        return {
            r.segment: (r.indicator, r.segment_type, r.value, r.numerator, r.denominator, r.noise)
            for r in frame(population, **kwargs).collect()
        }

    assert csi(baseline) == {
        "x": ("csi", "feature", 0.0, 10, 10, pytest.approx(0.2 * (9 + 3 * math.sqrt(18)))),
        "c": ("csi", "feature", 0.0, 10, 10, pytest.approx(0.2 * (2 + 3 * 2))),
    }  # exactly 0: the very same shares; x over its 10 deciles, c over a, b, missing
    got = csi(shifted)
    assert got["x"] == ("csi", "feature", pytest.approx(CSI_X), 10, 10, pytest.approx(NOISE_X))
    assert got["c"] == ("csi", "feature", pytest.approx(CSI_C), 10, 10, pytest.approx(NOISE_C))
    # both critical (0.25) but within the sampling noise of 10 applications against 10
    assert NOISE_X > CSI_X > 0.25 and NOISE_C > CSI_C > 0.25
    # the unseen level z and the missing values count: without them c would be far lower
    assert _smoothed([3, 3], [5, 4]) < 0.02 < 0.4 < CSI_C
    # five times the applications: the same shares, a larger index, a fifth of the noise,
    # and both breaches beyond it
    five = frame(shifted, times=5)
    noise = {r.segment: r.noise for r in five.collect()}
    assert noise == {"x": pytest.approx(NOISE_X / 5), "c": pytest.approx(NOISE_C / 5)}
    assert {
        r.segment: (r.value, r.numerator, r.denominator, r.status)
        for r in warning._with_status(five, warning.load_thresholds(None), 30).collect()
    } == {
        "x": (pytest.approx(_smoothed(*X_COUNTS, times=5)), 50, 50, "critical"),
        "c": (pytest.approx(_smoothed(*C_COUNTS, times=5)), 50, 50, "critical"),
    }
    # the reference's last day is 31 days before day, its first 30 + 180 before
    assert csi(shifted, reference=210)["x"][3:5] == (10, 10)
    assert csi(shifted, reference=211) == {}  # no reference: no index
    assert csi(shifted, reference=30) == {}  # in the recent window: no reference either
    assert csi(shifted, dated=0) == {}  # applications of the day itself are known tomorrow
    assert csi(shifted, dated=31) == {}  # before the 30-day window: reference, no recent


# --- public-record hits as a rate -------------------------------------------------------------
def test_public_record_hits_are_per_thousand_current_borrowers(spark) -> None:
    day = D(2025, 6, 30)
    active = spark.createDataFrame(
        [(day, f"C{i}", 100.0) for i in range(400)] + [(day, "C0", 50.0)],  # C0: two loans
        "as_of_date date, customer_id string, outstanding double",
    )
    links = spark.createDataFrame(
        [("court", "R1", "customer", "C0", day - dt.timedelta(days=3))],
        "record_kind string, record_id string, entity_type string, customer_id string, "
        "record_date date",
    )
    (row,) = warning._public_record_hits(active, links).collect()
    # one record among 400 borrowers: 2.5 per 1,000, under the warning of 5
    assert (row.value, row.numerator, row.denominator, row.exposure) == (2.5, 1, 400, 150.0)
    assert warning.DEFAULT_THRESHOLDS["public_record_hits_30d"] == {
        "warning": 5.0,
        "critical": 10.0,
    }
    assert "per 1,000 current borrowers" in warning.DEFAULT_SOURCES["public_record_hits_30d"]


# --- thresholds calibrated on the book's history ----------------------------------------------
def _series(values, start: dt.date | None = None) -> list[tuple[dt.date, float | None]]:
    start = start or D(2025, 1, 1)
    return [(start + dt.timedelta(days=i), v) for i, v in enumerate(values)]


def test_calibration_gives_mean_plus_k_sd_control_limits() -> None:
    # 45 days at 0.1 and 45 at 0.3: mean 0.2, sample sd 0.1 * sqrt(90 / 89)
    series = _series([0.1, 0.3] * 45 + [None])  # a day without a value is left out
    got = warning.calibrate("dpd30_rate", series)
    sd = 0.1 * math.sqrt(90 / 89)
    assert got["warning"] == pytest.approx(0.2 + 3 * sd, rel=1e-12)
    assert got["critical"] == pytest.approx(0.2 + 4 * sd, rel=1e-12)
    assert got["source"] == (
        "calibrated: control limit mean+3sd (critical mean+4sd) over 90 days "
        "2025-01-01..2025-03-31: mean 0.2, sd 0.10056"
    )
    # a signed indicator is compared by its absolute value, so calibrated on it
    signed = warning.calibrate("approval_rate_shift", _series([-0.1, 0.3] * 45))
    assert signed["warning"] == pytest.approx(got["warning"], rel=1e-12)
    other_k = warning.calibrate("dpd30_rate", series, k=(2.0, 2.5))
    assert other_k["critical"] == pytest.approx(0.2 + 2.5 * sd, rel=1e-12)
    assert "mean+2sd (critical mean+2.5sd)" in other_k["source"]


def test_calibration_refuses_too_few_days_and_no_spread() -> None:
    with pytest.raises(
        ValueError,
        match=r"dpd30_rate: 89 day\(s\) with a value \(2025-01-01..2025-03-30\); calibrating "
        r"needs at least 90: compute more days \(riskctl warn --days\) or keep the current",
    ):
        warning.calibrate("dpd30_rate", _series([0.1, 0.3] * 44 + [0.2, None]))
    with pytest.raises(ValueError, match=r"0 day\(s\) with a value \(no days\)"):
        warning.calibrate("dpd30_rate", [])
    with pytest.raises(ValueError, match="the value is 0.1 on every day .* no spread"):
        warning.calibrate("dpd30_rate", _series([0.1] * 90))
    with pytest.raises(ValueError, match="more than one value on a day"):
        warning.calibrate("dpd30_rate", _series([0.1, 0.3] * 45) * 2)
    with pytest.raises(ValueError, match="0 < warning <= critical"):
        warning.calibrate("dpd30_rate", _series([0.1, 0.3] * 45), k=(4.0, 3.0))


INDICATOR_SCHEMA = (
    "as_of_date date, indicator string, segment_type string, segment string, value double, "
    "status string"
)


def test_calibrated_thresholds_round_trip_with_their_source_into_the_rows(spark, tmp_path) -> None:
    first = D(2025, 1, 1)
    history = spark.createDataFrame(
        [
            *[(d, "dpd30_rate", "overall", "all", v, "ok") for d, v in _series([0.1, 0.2, 0.3])],
            (first, "dpd30_rate", "channel", "app", 0.9, "ok"),  # the whole book's is used
            (D(2025, 1, 4), "dpd30_rate", "overall", "all", 5.0, "ok"),  # after the window
            # no whole-book row: the day's largest, too_few rows left out
            *[(d, "csi", "feature", "x", v, "ok") for d, v in _series([0.01, 0.02, 0.06])],
            *[(d, "csi", "feature", "c", v, "ok") for d, v in _series([0.03, 0.01, 0.01])],
            (first, "csi", "feature", "y", 0.9, "too_few"),
            (first, "score_psi", "overall", "all", 0.05, "ok"),  # one day: refused
        ],
        INDICATOR_SCHEMA,
    )
    last = D(2025, 1, 3)
    assert warning.daily_series(history, "csi", first, last) == _series([0.03, 0.02, 0.06])
    done, refused = warning.calibrate_history(
        history, first, last, ["dpd30_rate", "csi", "score_psi"], min_days=3
    )
    assert set(done) == {"dpd30_rate", "csi"}
    assert done["dpd30_rate"]["warning"] == pytest.approx(0.2 + 3 * 0.1)
    assert refused == {
        "score_psi": "score_psi: 1 day(s) with a value (2025-01-01..2025-01-01); calibrating "
        "needs at least 3: compute more days (riskctl warn --days) or keep the current thresholds"
    }
    with pytest.raises(ValueError, match="unknown indicator"):
        warning.calibrate_history(history, first, last, ["dpd31_rate"])

    path = tmp_path / "calibrated.yaml"
    warning.write_thresholds(path, done)
    loaded = warning.load_thresholds(path)
    calibrated = "calibrated: control limit mean+3sd (critical mean+4sd) over 3 days"
    assert loaded["dpd30_rate"]["source"] == (
        f"file {path}: {calibrated} 2025-01-01..2025-01-03: mean 0.2, sd 0.1"
    )
    assert loaded["dpd30_rate"]["critical"] == pytest.approx(0.2 + 4 * 0.1)

    # each row carries its thresholds' source: calibrated (through the file), default
    rows = spark.createDataFrame(
        [
            (last, "dpd30_rate", "overall", "all", 0.55, 1.0, 2.0, None),
            (last, "dpd1_rate", "overall", "all", 0.1, 1.0, 10.0, None),
        ],
        "as_of_date date, indicator string, segment_type string, segment string, "
        "value double, numerator double, denominator double, exposure double",
    )
    got = {
        r.indicator: (r.status, r.warning_threshold, r.threshold_source)
        for r in warning._with_status(rows, loaded, 0).collect()
    }
    assert got == {
        "dpd30_rate": ("warning", pytest.approx(0.5), loaded["dpd30_rate"]["source"]),
        "dpd1_rate": ("ok", 0.3, f"default: {warning.DEFAULT_SOURCES['dpd1_rate']}"),
    }


def test_an_approval_shift_within_its_sampling_noise_is_not_a_breach(spark) -> None:
    day = dt.date(2026, 2, 20)
    rows = spark.createDataFrame(
        [
            # value, approved and decided in the last 30 days
            (day, "approval_rate_shift", "overall", "60", 0.12, 51.0, 60.0, None),
            (day, "approval_rate_shift", "overall", "2000", 0.12, 1700.0, 2000.0, None),
            (day, "approval_rate_shift", "overall", "-60", -0.2, 48.0, 60.0, None),
            # the service's: a week's decisions against the 23 days before
            (day, "rt_approval_rate_shift", "overall", "rt60", 0.12, 51.0, 60.0, None),
            (day, "rt_approval_rate_shift", "overall", "rt2000", 0.12, 1700.0, 2000.0, None),
        ],
        "as_of_date date, indicator string, segment_type string, segment string, "
        "value double, numerator double, denominator double, exposure double",
    )
    got = {
        r.segment: r.status
        for r in warning._with_status(rows, warning.load_thresholds(None), 30).collect()
    }
    # 3 standard errors of the shift, sqrt(p (1 - p) (1 + 1/3) / n): 0.160 at 51/60,
    # 0.028 at 1,700/2,000, 0.179 at 48/60; thresholds 0.08 (warning), 0.15 (critical).
    # The service's, sqrt(p (1 - p) (1 + 7/23) / n): 0.158 at 51/60, 0.027 at 1,700/2,000;
    # thresholds 0.10 and 0.20
    assert got == {
        "60": "too_few",
        "2000": "warning",
        "-60": "critical",
        "rt60": "too_few",
        "rt2000": "warning",
    }


def test_the_alert_text_says_where_the_breached_threshold_comes_from() -> None:
    breach = {
        "as_of_date": D(2025, 6, 30),
        "indicator": "csi",
        "segment_type": "feature",
        "segment": "bureau_score",
        "value": 0.3,
        "warning_threshold": 0.1,
        "critical_threshold": 0.25,
        "status": "critical",
        "exposure": 1000.0,
        "threshold_source": "default: PSI convention",
    }
    now = dt.datetime(2025, 6, 30, 12)
    kwargs = {"now": now, "by": "system", "lgd": 0.45, "impact_threshold": 100_000.0}
    _, (opened,) = alerts.reconcile([breach], [], **kwargs)
    assert opened["history"][0]["note"] == (
        "CRITICAL breach: csi feature=bureau_score = 0.3 breaches its critical threshold 0.25 "
        "(thresholds: default: PSI convention) on 2025-06-30"
    )
    _, (plain,) = alerts.reconcile([{**breach, "threshold_source": None}], [], **kwargs)
    assert "thresholds:" not in plain["history"][0]["note"]


def test_a_calm_book_breaches_no_indicator_on_more_than_a_tenth_of_its_days(
    spark, tmp_path
) -> None:
    """The same book without the planted deterioration: every indicator the book's rows
    give (default and roll rates, vintage, approval shift; overall and per channel and
    province) is in breach on at most 10% of the 90 days, at the default thresholds and
    the default charge-off rule (without it the 90+ stock piles up: one province's 90+
    rate breached on 10 of the 90 days). So is each application feature's CSI, against
    the 180 days before its window on the bins of the book's first year; the number of
    the customer's earlier applications among them, which grows as the book seasons."""
    out = tmp_path / "calm"
    generate(out, customers=1500, seed=3, deterioration_share=0.0)
    loans, reps, apps = _lending_rows(out)
    loans_df, reps_df, apps_df = _lending_frames(spark, loans, reps, apps)
    apps = apps.assign(application_date=pd.to_datetime(apps["applied_at"]).dt.date)
    apps = apps.sort_values(["applied_at", "application_id"])
    apps["earlier_applications"] = apps.groupby("customer_id").cumcount()
    numeric = ["requested_amount", "term_months", "monthly_income", "earlier_applications"]
    categorical = ["purpose", "channel", "employment_type"]
    features = spark.createDataFrame(
        apps[["application_date", *numeric, *categorical]].astype(object).where(apps.notna(), None)
    )
    first_year = features.where(F.col("application_date") < F.lit(D(2025, 4, 1)))
    as_of = D(2026, 4, 1)
    day_list = warning.days(as_of, 90)
    days_df = warning.days_frame(spark, day_list)
    state = warning.loan_days(
        loans_df, reps_df, apps_df, warning.days_frame(spark, warning.days(as_of, 120))
    ).cache()
    indicators = warning.compute_indicators(
        state,
        apps_df,
        None,
        warning.load_thresholds(None),
        30,
        days_df,
        cohorts=warning.vintage_cohorts(loans_df, reps_df),
        charge_off_dpd=180,  # RISK_CHARGE_OFF_DPD's default
        feature_frame=features,
        feature_bins=warning.csi_baseline(first_year, numeric, categorical),
    )
    shares = {
        (r.indicator, r.segment_type, r.segment): (r.breached, r.days)
        for r in indicators.groupBy("indicator", "segment_type", "segment")
        .agg(
            F.sum(F.col("status").isin("warning", "critical").cast("int")).alias("breached"),
            F.count("*").alias("days"),
        )
        .collect()
    }
    state.unpersist()
    names = {name for name, _, _ in shares}
    assert {"dpd1_rate", "dpd30_rate", "dpd90_rate", "roll_1_30", "roll_30_60"} <= names
    assert {"vintage_mob3_dpd30", "approval_rate_shift"} <= names
    assert {s for _, s, _ in shares} == {"overall", "channel", "province", "feature"}
    assert {segment for name, _, segment in shares if name == "csi"} == {*numeric, *categorical}
    noisy = {k: v for k, v in shares.items() if v[0] > 0.10 * v[1]}
    assert noisy == {}
