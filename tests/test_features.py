"""Feature store: exact gold fs_* transforms, the point-in-time leakage test, Feast round trip."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from riskcontrol.analyze import feature_store
from riskcontrol.analyze.labels import LabelDefinition
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    NUMERIC_FEATURES,
    SILVER_APPLICATIONS,
    SILVER_BUREAU,
    SILVER_CUSTOMERS,
    SILVER_EVENTS,
    SILVER_LOANS,
    SILVER_NOTES,
    SILVER_REPAYMENTS,
    ZERO_WHEN_MISSING,
    Table,
)
from riskcontrol.core.runs import Run

D = dt.date
TS = dt.datetime
CREATED = TS(2030, 1, 1)


def frame(spark: SparkSession, table: Table, rows: list[dict]) -> DataFrame:
    """Rows of ``table`` given as dicts; columns left out are null."""
    unknown = {k for r in rows for k in r} - set(table.columns)
    assert not unknown, f"not columns of {table.full_name}: {unknown}"
    return spark.createDataFrame(
        [tuple(r.get(c) for c in table.columns) for r in rows], table.schema
    )


def rows(df: DataFrame, columns: list[str] | None = None) -> list[tuple]:
    columns = columns or [c for c in df.columns if c != "created_timestamp"]
    return [tuple(r) for r in df.select(*columns).orderBy(*columns[:2]).collect()]


def day(y: int, m: int, d: int) -> dt.datetime:
    return TS(y, m, d)


# --- transforms -----------------------------------------------------------------------------
def test_fs_application_one_row_per_application_at_applied_at(spark):
    customers = frame(
        spark,
        SILVER_CUSTOMERS,
        [
            {
                "customer_id": "C1",
                "birth_year": 1990,
                "monthly_income": 10000.0,
                "employment_type": "salaried",
                "education": "bachelor",
            }
        ],
    )
    apps = frame(
        spark,
        SILVER_APPLICATIONS,
        [
            {
                "application_id": "A1",
                "customer_id": "C1",
                "applied_at": TS(2024, 6, 15, 10),
                "application_date": D(2024, 6, 15),
                "requested_amount": 5000.0,
                "term_months": 12,
                "purpose": "consumer",
                "channel": "app",
                "province": "GD",
            },
            {"application_id": "A2", "customer_id": "C1", "applied_at": None},
            {
                "application_id": "A3",
                "customer_id": "C9",
                "applied_at": TS(2024, 7, 1, 8),
                "application_date": D(2024, 7, 1),
                "requested_amount": 100.0,
                "term_months": 3,
            },
        ],
    )
    out = feature_store.fs_application(apps, customers, CREATED)
    assert out.columns == feature_store.FS_APPLICATION.columns
    assert rows(out, out.columns) == [
        ("A1", "C1", TS(2024, 6, 15, 10), 5000.0, 12, 10000.0, 33, 0.5, "app", "consumer")
        + ("GD", "salaried", "bachelor", CREATED),
        ("A3", "C9", TS(2024, 7, 1, 8), 100.0, 3, None, None, None, None, None)
        + (None, None, None, CREATED),
    ]


REPAYMENT_COLUMNS = [
    "event_timestamp",
    "prior_loans",
    "prior_open_loans",
    "prior_installments_due",
    "prior_late_installments",
    "prior_max_dpd",
    "prior_current_dpd",
    "prior_late_3m",
    "prior_late_6m",
    "prior_late_12m",
    "prior_open_principal",
    "prior_utilization",
]


def test_fs_repayment_snapshots_dpd_late_windows_and_open_principal(spark):
    """One loan of 1000 in four installments of 250, due on the 10th of Feb..May 2024:
    #1 paid a day early, #2 paid 10 days late, #3 never paid, #4 paid early (May 1)."""
    loans = frame(
        spark,
        SILVER_LOANS,
        [
            {
                "loan_id": "L1",
                "customer_id": "C1",
                "disbursed_date": D(2024, 1, 10),
                "principal": 1000.0,
            }
        ],
    )
    lines = [
        (1, D(2024, 2, 10), D(2024, 2, 9)),
        (2, D(2024, 3, 10), D(2024, 3, 20)),
        (3, D(2024, 4, 10), None),
        (4, D(2024, 5, 10), D(2024, 5, 1)),
    ]
    repayments = frame(
        spark,
        SILVER_REPAYMENTS,
        [
            # silver's dpd is "as of extraction": a look-ahead the features must not use
            {
                "repayment_id": f"P{n}",
                "loan_id": "L1",
                "installment_no": n,
                "due_date": due,
                "paid_date": paid,
                "amount_due": 250.0,
                "dpd": 999,
            }
            for n, due, paid in lines
        ],
    )
    out = feature_store.fs_repayment(loans, repayments, CREATED)
    assert out.columns == feature_store.FS_REPAYMENT.columns
    # day: loans, open loans, due, late, max dpd, current dpd, late 3m/6m/12m, open principal, util
    expected = [
        (day(2024, 1, 11), 1, 1, 0, 0, 0, 0, 0, 0, 0, 1000.0, 1.0),  # disbursed + 1
        (day(2024, 2, 10), 1, 1, 0, 0, 0, 0, 0, 0, 0, 750.0, 0.75),  # #1 paid (Feb 9) + 1
        (day(2024, 2, 11), 1, 1, 1, 0, 0, 0, 0, 0, 0, 750.0, 0.75),  # #1 due + 1: on time
        (day(2024, 3, 11), 1, 1, 2, 1, 1, 1, 1, 1, 1, 750.0, 0.75),  # #2 due + 1: 1 DPD
        (day(2024, 3, 21), 1, 1, 2, 1, 10, 0, 1, 1, 1, 500.0, 0.5),  # #2 paid + 1: final 10
        (day(2024, 4, 11), 1, 1, 3, 2, 10, 1, 2, 2, 2, 500.0, 0.5),  # #3 due + 1
        (day(2024, 5, 2), 1, 1, 3, 2, 22, 22, 2, 2, 2, 250.0, 0.25),  # #4 paid early + 1
        (day(2024, 5, 10), 1, 1, 3, 2, 30, 30, 2, 2, 2, 250.0, 0.25),  # #3 at 30 DPD
        (day(2024, 5, 11), 1, 1, 4, 2, 31, 31, 2, 2, 2, 250.0, 0.25),  # #4 due + 1: not late
        (day(2024, 6, 9), 1, 1, 4, 2, 60, 60, 2, 2, 2, 250.0, 0.25),  # #3 at 60 DPD
        (day(2024, 6, 11), 1, 1, 4, 2, 62, 62, 1, 2, 2, 250.0, 0.25),  # #2 leaves 3m
        (day(2024, 7, 9), 1, 1, 4, 2, 90, 90, 1, 2, 2, 250.0, 0.25),  # #3 at 90 DPD
        (day(2024, 7, 11), 1, 1, 4, 2, 92, 92, 0, 2, 2, 250.0, 0.25),  # #3 leaves 3m
        (day(2024, 9, 11), 1, 1, 4, 2, 154, 154, 0, 1, 2, 250.0, 0.25),  # #2 leaves 6m
        (day(2024, 10, 11), 1, 1, 4, 2, 184, 184, 0, 0, 2, 250.0, 0.25),  # #3 leaves 6m
        (day(2025, 3, 11), 1, 1, 4, 2, 335, 335, 0, 0, 1, 250.0, 0.25),  # #2 leaves 12m
        (day(2025, 4, 11), 1, 1, 4, 2, 366, 366, 0, 0, 0, 250.0, 0.25),  # #3 leaves 12m
    ]
    assert rows(out, REPAYMENT_COLUMNS) == expected
    assert {r.customer_id for r in out.select("customer_id").distinct().collect()} == {"C1"}


def test_fs_bureau_per_report_at_report_time_for_known_customers(spark):
    customers = frame(
        spark,
        SILVER_CUSTOMERS,
        [{"customer_id": "C1", "customer_key": "K1"}, {"customer_id": "C2", "customer_key": None}],
    )
    report = {
        "schema_version": 2,
        "bureau_score": 700,
        "inquiries_6m": 2,
        "open_loans": 3,
        "total_credit_limit": 20000.0,
        "total_balance": 5000.0,
        "overdue_accounts": 0,
        "max_dpd_24m": 15,
        "credit_history_months": 48,
        "consumer_finance_loans": 1,
        "n_accounts": 4,
        "n_alerts": 0,
    }
    bureau = frame(
        spark,
        SILVER_BUREAU,
        [
            {"report_id": "R1", "application_id": "A1", "customer_key": "K1"}
            | {"report_time": TS(2024, 1, 5, 8)}
            | report,
            {"report_id": "R2", "application_id": "A2", "customer_key": "K9"}  # unknown person
            | {"report_time": TS(2024, 1, 6)}
            | report,
            {"report_id": "R3", "customer_key": "K1", "report_time": None} | report,
        ],
    )
    out = feature_store.fs_bureau(bureau, customers, CREATED)
    assert out.columns == feature_store.FS_BUREAU.columns
    assert rows(out, out.columns) == [
        ("R1", "A1", "C1", TS(2024, 1, 5, 8), 700, 2, 3, 20000.0, 5000.0, 0.25, 0, 15, 48)
        + (1, 4, 0, CREATED)
    ]


def test_fs_events_trailing_windows_end_the_day_before(spark):
    events = frame(
        spark,
        SILVER_EVENTS,
        [
            {"event_id": "e1", "customer_id": "C1", "event_type": "loan_calc", "is_night": False}
            | {"event_ts": TS(2024, 1, 1, 10)},
            {"event_id": "e2", "customer_id": "C1", "event_type": "apply_click", "is_night": True}
            | {"event_ts": TS(2024, 1, 1, 23, 30)},
            {"event_id": "e3", "customer_id": "C1", "event_type": "loan_calc", "is_night": True}
            | {"event_ts": TS(2024, 1, 5, 2)},
            {"event_id": "e4", "customer_id": "C1", "event_type": "login", "is_night": False}
            | {"event_ts": TS(2024, 1, 5, 12)},
            {"event_id": "e5", "customer_id": None, "event_type": "login", "is_night": False}
            | {"event_ts": TS(2024, 1, 5, 12)},
        ],
    )
    out = feature_store.fs_events(events, CREATED)
    assert out.columns == feature_store.FS_EVENTS.columns
    # day: count 7d, count 30d, night share 30d, loan_calc 30d, apply_click 30d
    assert rows(out) == [
        ("C1", day(2024, 1, 2), 2, 2, 0.5, 1, 1),  # Jan 1 complete
        ("C1", day(2024, 1, 6), 4, 4, 0.5, 2, 1),  # Jan 5 complete
        ("C1", day(2024, 1, 9), 2, 4, 0.5, 2, 1),  # Jan 1 leaves the 7 days
        ("C1", day(2024, 1, 13), 0, 4, 0.5, 2, 1),  # Jan 5 leaves the 7 days
        ("C1", day(2024, 2, 1), 0, 2, 0.5, 1, 0),  # Jan 1 leaves the 30 days
        ("C1", day(2024, 2, 5), 0, 0, None, 0, 0),  # Jan 5 leaves the 30 days
    ]


NOTES = [
    ("n1", TS(2024, 1, 1, 9), 2, 0.8),
    ("n2", TS(2024, 2, 15, 9), 0, 0.0),
    ("n3", TS(2024, 3, 1, 9), 1, 0.2),
]


def test_fs_text_90_day_counts_and_mean_negative_hits(spark):
    notes = spark.createDataFrame(
        [(i, "C1", t, h) for i, t, h, _ in NOTES],
        "note_id string, customer_id string, noted_at timestamp, negative_hits int",
    )
    out = feature_store.fs_text(notes, CREATED)
    assert out.columns == feature_store.FS_TEXT.columns
    assert rows(out) == [
        ("C1", day(2024, 1, 2), 1, 1, 2.0),
        ("C1", day(2024, 2, 16), 2, 1, 1.0),
        ("C1", day(2024, 3, 2), 3, 2, 1.0),
        ("C1", day(2024, 4, 1), 2, 1, 0.5),  # Jan 1 leaves the 90 days
        ("C1", day(2024, 5, 16), 1, 1, 1.0),
        ("C1", day(2024, 5, 31), 0, 0, None),
    ]


def test_fs_text_uses_the_negativity_score_when_silver_has_one(spark):
    notes = spark.createDataFrame(
        [("C1", t, h, s) for _, t, h, s in NOTES],
        "customer_id string, noted_at timestamp, negative_hits int, negativity double",
    )
    out = feature_store.fs_text(notes, CREATED)
    assert rows(out, ["event_timestamp", "notes_negativity_90d"]) == [
        (day(2024, 1, 2), 0.8),
        (day(2024, 2, 16), 0.4),
        (day(2024, 3, 2), pytest.approx(1.0 / 3)),
        (day(2024, 4, 1), 0.1),
        (day(2024, 5, 16), 0.2),
        (day(2024, 5, 31), None),
    ]


def links_frame(spark: SparkSession, links: list[tuple]) -> DataFrame:
    """(record_kind, record_id, customer_id, match_method, record_date) rows."""
    return frame(
        spark,
        feature_store.SILVER_ENTITY_LINKS,
        [
            {
                "record_kind": kind,
                "record_id": rid,
                "entity_type": "company" if cid is None else "customer",
                "customer_id": cid,
                "company_key": "CO1" if method == "employer" or cid is None else None,
                "match_method": method,
                "confidence": 0.9,
                "record_date": date,
            }
            for kind, rid, cid, method, date in links
        ],
    )


def test_fs_public_records_cumulative_hits_known_the_day_after(spark):
    links = links_frame(
        spark,
        [
            ("court", "R1", "C1", "id_number", D(2024, 2, 1)),
            ("court", "R1", "C1", "employer", D(2024, 2, 1)),  # same record twice: once
            ("penalty", "P1", "C1", "employer", D(2024, 3, 1)),
            ("news", "N1", "C1", "name_mention", D(2024, 3, 1)),
            ("news", "N2", "C1", "name_mention", D(2024, 4, 1)),
            ("penalty", "P2", "C2", "id_number", D(2024, 1, 15)),
            ("penalty", "P3", None, "company_name", D(2024, 1, 10)),  # company only
            ("lawsuit", "X1", "C2", "id_number", D(2024, 1, 1)),  # not a kind we count
        ],
    )
    out = feature_store.fs_public_records(links, CREATED)
    assert out.columns == feature_store.FS_PUBLIC_RECORDS.columns
    # court, penalty, employer-only, news, latest court/penalty record
    assert rows(out) == [
        ("C1", day(2024, 2, 2), 1, 0, 0, 0, day(2024, 2, 1)),
        ("C1", day(2024, 3, 2), 1, 1, 1, 1, day(2024, 3, 1)),
        ("C1", day(2024, 4, 2), 1, 1, 1, 2, day(2024, 3, 1)),
        ("C2", day(2024, 1, 16), 0, 1, 0, 0, day(2024, 1, 15)),
    ]


def test_application_entities_move_to_the_own_bureau_report(spark):
    apps = frame(
        spark,
        SILVER_APPLICATIONS,
        [
            {"application_id": "A1", "customer_id": "C1", "applied_at": TS(2024, 6, 15, 10)},
            {"application_id": "A2", "customer_id": "C1", "applied_at": TS(2024, 9, 1, 9)},
        ],
    )
    bureau = frame(
        spark,
        SILVER_BUREAU,
        [
            {"report_id": "B1", "application_id": "A1", "report_time": TS(2024, 6, 15, 10, 5)},
            {"report_id": "B2", "application_id": "A2", "report_time": TS(2024, 9, 3, 9)},
        ],
    )
    assert rows(feature_store.application_entities(apps)) == [
        ("A1", "C1", TS(2024, 6, 15, 10)),
        ("A2", "C1", TS(2024, 9, 1, 9)),
    ]
    assert rows(feature_store.application_entities(apps, bureau)) == [
        ("A1", "C1", TS(2024, 6, 15, 10, 5)),  # the decision had its report at 10:05
        ("A2", "C1", TS(2024, 9, 1, 9)),  # a report two days later is not this decision's
    ]


def history_case(spark: SparkSession) -> dict[Table, DataFrame]:
    """C1 applies (A1) on Mar 31 2024 at 12:00 and its bureau report comes at 12:05; C2
    applies (A2) with nothing but a report older than a year."""
    night = {"event_type": "loan_calc", "is_night": True}
    day_click = {"event_type": "apply_click", "is_night": False}
    data = {
        SILVER_CUSTOMERS: [
            {"customer_id": "C1", "customer_key": "K1", "birth_year": 1990}
            | {"monthly_income": 10000.0, "employment_type": "salaried", "education": "college"},
            {"customer_id": "C2", "customer_key": "K2", "birth_year": 1985}
            | {"monthly_income": 8000.0},
        ],
        SILVER_APPLICATIONS: [
            {"application_id": "A1", "customer_id": "C1", "applied_at": TS(2024, 3, 31, 12)}
            | {"application_date": D(2024, 3, 31), "requested_amount": 5000.0}
            | {"term_months": 12, "channel": "app", "status": "approved"},
            {"application_id": "A2", "customer_id": "C2", "applied_at": TS(2024, 3, 31, 10)}
            | {"application_date": D(2024, 3, 31), "requested_amount": 3000.0}
            | {"term_months": 3, "channel": "web", "status": "pending"},
        ],
        SILVER_BUREAU: [
            {"report_id": "B0", "customer_key": "K1", "report_time": TS(2023, 1, 5, 8)}
            | {"bureau_score": 700, "total_balance": 1000.0, "total_credit_limit": 20000.0},
            {"report_id": "B1", "customer_key": "K1", "report_time": TS(2024, 3, 31, 12, 5)}
            | {"application_id": "A1", "bureau_score": 640, "total_balance": 5000.0}
            | {"total_credit_limit": 20000.0},
            # more than 365 days before A2: too stale to stand for C2
            {"report_id": "B2", "customer_key": "K2", "report_time": TS(2023, 3, 30, 8)}
            | {"bureau_score": 610},
        ],
        SILVER_EVENTS: [
            {"event_id": "E1", "customer_id": "C1", "event_ts": TS(2024, 3, 30, 23, 30)} | night,
            {"event_id": "E2", "customer_id": "C1", "event_ts": TS(2024, 3, 10, 10)} | day_click,
            # 40 days before: outside the 30
            {"event_id": "E3", "customer_id": "C1", "event_ts": TS(2024, 2, 20, 10)} | night,
            # the application's own day: known once the day is complete, after the decision
            {"event_id": "E4", "customer_id": "C1", "event_ts": TS(2024, 3, 31, 9)} | night,
            {"event_id": "E5", "customer_id": "C1", "event_ts": TS(2024, 3, 31, 13)} | night,
            {"event_id": "E6", "customer_id": "C3", "event_ts": TS(2024, 3, 30, 10)} | night,
        ],
        SILVER_NOTES: [
            {"note_id": "N1", "customer_id": "C1", "noted_at": TS(2024, 3, 1), "negative_hits": 2},
            {"note_id": "N2", "customer_id": "C1", "noted_at": TS(2024, 3, 2), "negative_hits": 0},
            {"note_id": "N3", "customer_id": "C1", "noted_at": TS(2024, 4, 1), "negative_hits": 5},
        ],
        SILVER_LOANS: [
            {"loan_id": "L0", "customer_id": "C1", "disbursed_date": D(2023, 12, 1)}
            | {"principal": 750.0},
            # disbursed after A1
            {"loan_id": "L9", "customer_id": "C1", "disbursed_date": D(2024, 4, 5)}
            | {"principal": 500.0},
        ],
        SILVER_REPAYMENTS: [
            {"repayment_id": f"P{n}", "loan_id": loan, "due_date": due, "paid_date": paid}
            | {"installment_no": n, "amount_due": 250.0}
            for n, loan, due, paid in [
                (1, "L0", D(2024, 1, 1), D(2024, 1, 11)),  # 10 days late
                (2, "L0", D(2024, 2, 1), None),  # unpaid: 59 days late on Mar 31
                (3, "L0", D(2024, 4, 1), None),  # due after the application
                (1, "L9", D(2024, 5, 5), None),
            ]
        ],
    }
    return {t: frame(spark, t, r) for t, r in data.items()}


HISTORY_CHECKED = [
    "prior_loans",
    "prior_max_dpd",
    "prior_current_dpd",
    "prior_late_installments",
    "bureau_score",
    "utilization",
    "ev_count_30d",
    "ev_night_share_30d",
    "ev_loan_calc_30d",
    "ev_apply_click_30d",
    "notes_count_90d",
    "notes_negative_90d",
    "pr_court_hits",
    "pr_days_since_last",
]


def test_gold_reads_the_customers_history_from_the_feature_store_as_of_the_decision(spark):
    from riskcontrol.analyze import application_features

    silver = history_case(spark)
    links = links_frame(spark, [("court", "R1", "C1", "id_number", D(2024, 3, 1))])
    views = {
        feature_store.FS_REPAYMENT: feature_store.fs_repayment(
            silver[SILVER_LOANS], silver[SILVER_REPAYMENTS], CREATED
        ),
        feature_store.FS_BUREAU: feature_store.fs_bureau(
            silver[SILVER_BUREAU], silver[SILVER_CUSTOMERS], CREATED
        ),
        feature_store.FS_EVENTS: feature_store.fs_events(silver[SILVER_EVENTS], CREATED),
        feature_store.FS_TEXT: feature_store.fs_text(silver[SILVER_NOTES], CREATED),
        feature_store.FS_PUBLIC_RECORDS: feature_store.fs_public_records(links, CREATED),
    }
    history = feature_store.history_at_applications(
        silver[SILVER_APPLICATIONS], silver[SILVER_BUREAU], views
    )
    got = {r.application_id: tuple(r[c] for c in HISTORY_CHECKED) for r in history.collect()}
    assert got == {
        # the repayment snapshot of Mar 2 (installment 2 at 30 DPD) read on Mar 31: 59 DPD
        "A1": (1, 59, 59, 2, 640, 0.25, 2, 0.5, 1, 1, 2, 1, 1, 30),
        "A2": (None,) * 4 + (None, None) + (None,) * 8,
    }
    # the one-row reading of the online store is the same arithmetic
    (snapshot,) = (
        views[feature_store.FS_REPAYMENT]
        .where(F.col("event_timestamp") == TS(2024, 3, 2))
        .collect()
    )
    assert (snapshot.prior_max_dpd, snapshot.prior_current_dpd) == (30, 30)
    online = feature_store._as_of_row(snapshot.asDict(), D(2024, 3, 31))
    assert (online["prior_max_dpd"], online["prior_current_dpd"]) == (59, 59)

    gold = application_features.application_features(
        silver[SILVER_APPLICATIONS],
        silver[SILVER_CUSTOMERS],
        history,
        silver[SILVER_LOANS],
        silver[SILVER_REPAYMENTS],
        as_of=D(2024, 4, 30),
        definition=LabelDefinition(),
    )
    checked = [c for c in HISTORY_CHECKED if c in NUMERIC_FEATURES]
    checked += ["requested_amount", "age", "amount_to_income", "label_matured"]
    statuses = {r.application_id: r.label_status for r in gold.collect()}
    assert statuses == {"A1": "no_loan", "A2": "no_loan"}  # the loans here are earlier ones
    by_id = {r.application_id: tuple(r[c] for c in checked) for r in gold.collect()}
    assert by_id == {
        "A1": (1.0, 59.0, 2.0, 640.0, 0.25, 2.0, 0.5, 1.0, 1.0, 2.0, 1.0, 5000.0, 33.0, 0.5, False),
        # no history: counts are 0, the stale report and the night share unknown
        "A2": (0.0, 0.0, 0.0, None, None, 0.0, None, 0.0, 0.0, 0.0, 0.0, 3000.0, 38.0, 0.375)
        + (False,),
    }


# --- feature statistics ---------------------------------------------------------------------
def test_feature_stats_per_feature_merged_per_run(spark, settings):
    run = Run(spark, settings, run_id="run-1")
    df = spark.createDataFrame(
        [
            ("C1", TS(2024, 1, 1), CREATED, 1, 1.5, "a"),
            ("C2", TS(2024, 1, 1), CREATED, 2, None, "b"),
            ("C3", TS(2024, 1, 1), CREATED, 3, 2.5, None),
            ("C4", TS(2024, 1, 1), CREATED, None, 3.5, "a"),
        ],
        "customer_id string, event_timestamp timestamp, created_timestamp timestamp, "
        "n int, x double, s string",
    )
    columns = ["run_id", "feature_view", "feature", "rows", "nulls", "mean", "stddev"]
    columns += ["min", "p50", "max"]
    expected = [
        ("run-1", "fs_x", "n", 4, 1, 2.0, 1.0, 1.0, 2.0, 3.0),
        ("run-1", "fs_x", "s", 4, 1, None, None, None, None, None),
        ("run-1", "fs_x", "x", 4, 1, 2.5, 1.0, 1.5, 2.5, 3.5),
    ]
    out = feature_store.feature_stats(run, {"fs_x": df})
    assert sorted(rows(out, columns)) == expected
    feature_store.feature_stats(run, {"fs_x": df})  # the same run again: replaced, not added
    stored = lakehouse.read(spark, feature_store.OPS_FEATURE_STATS, settings)
    assert sorted(rows(stored, columns)) == expected


# --- Feast ----------------------------------------------------------------------------------
def test_feast_definitions_match_the_table_contracts():
    import importlib.util
    import warnings

    from feast import types as ft

    spec = importlib.util.spec_from_file_location("_defs", feature_store.DEFINITIONS)
    defs = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # Feast: Spark support "experimental"
        spec.loader.exec_module(defs)
    spark_type = {ft.Int32: "int", ft.Float64: "double", ft.String: "string"}
    spark_type[ft.UnixTimestamp] = "timestamp"
    views = [o for o in defs.OBJECTS if type(o).__name__ == "FeatureView"]
    assert {v.name for v in views} == set(feature_store.FEATURE_TABLES_BY_NAME)
    for view in views:
        table = feature_store.FEATURE_TABLES_BY_NAME[view.name]
        types = {f.name: f.dataType.simpleString() for f in table.schema.fields}
        declared = {f.name: spark_type[f.dtype] for f in view.schema if f.name != "customer_id"}
        assert {k: types.get(k) for k in declared} == declared, view.name
        # every column is a feature, an id or a timestamp: nothing is built and not served
        assert set(types) - set(declared) <= set(feature_store.ID_COLUMNS), view.name
        assert view.batch_source.name == table.name
    # what the store fills with 0 when missing is what gold fills with 0, for the model's features
    zero = {f.name for v in views for f in v.schema if f.tags.get("missing") == "zero"}
    assert sorted(zero & set(NUMERIC_FEATURES)) == sorted(ZERO_WHEN_MISSING)


def test_feature_store_yaml_is_rendered_from_settings(settings):
    config = feature_store.render_config(settings)
    runtime = feature_store.runtime_dir(settings)
    assert config["registry"]["path"] == str(runtime / "registry.db")
    assert config["online_store"] == {"type": "sqlite", "path": str(runtime / "online_store.db")}
    conf = config["offline_store"]["spark_conf"]
    assert "delta-spark_" in conf["spark.jars"]
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.shuffle.partitions"] == "2"
    assert config["materialization"] == {"online_write_batch_size": 10_000}


def write_silver(spark: SparkSession, settings, data: dict[Table, list[dict]]) -> None:
    for table, table_rows in data.items():
        lakehouse.overwrite(frame(spark, table, table_rows), table, settings)


# The negativity score of a note when silver carries one, else the count of negative hits.
HAS_SCORE = "negativity" in SILVER_NOTES.columns


def score(value: float) -> dict:
    return {"negativity": value} if HAS_SCORE else {}


D_APPLIED = TS(2024, 6, 15, 10)  # application A1: the day D of the leakage test


def leakage_case() -> dict[Table, list[dict]]:
    """Customer C1 applies on D (A1) and again on Sep 1 (A2); between the two, a court
    record, an installment going 45 days late, a worse bureau report, an app event and
    a note appear, and C1's record gets a new income. Customer C2 (A3) has no history at
    all."""
    bureau_fields = {"total_credit_limit": 20000.0, "schema_version": 2}
    return {
        SILVER_CUSTOMERS: [
            {"customer_id": "C1", "customer_key": "K1", "birth_year": 1990}
            | {"monthly_income": 10000.0, "employment_type": "salaried"},
            {"customer_id": "C2", "customer_key": "K2", "birth_year": 1985}
            | {"monthly_income": 8000.0},
        ],
        SILVER_APPLICATIONS: [
            # A1 declared an income of 6,000: the record's 10,000 is a later edit
            {"application_id": "A1", "customer_id": "C1", "applied_at": D_APPLIED}
            | {"application_date": D(2024, 6, 15), "requested_amount": 5000.0, "term_months": 12}
            | {"monthly_income": 6000.0},
            {"application_id": "A2", "customer_id": "C1", "applied_at": TS(2024, 9, 1, 9)}
            | {"application_date": D(2024, 9, 1), "requested_amount": 8000.0, "term_months": 6},
            {"application_id": "A3", "customer_id": "C2", "applied_at": TS(2024, 6, 15, 11)}
            | {"application_date": D(2024, 6, 15), "requested_amount": 3000.0, "term_months": 3},
        ],
        SILVER_LOANS: [
            {"loan_id": "L1", "customer_id": "C1", "disbursed_date": D(2024, 3, 1)}
            | {"principal": 1000.0, "term_months": 2}
        ],
        SILVER_REPAYMENTS: [
            {"repayment_id": "P1", "loan_id": "L1", "installment_no": 1, "amount_due": 500.0}
            | {"due_date": D(2024, 4, 1), "paid_date": D(2024, 4, 1)},
            # due after D, paid 45 days late: by D nothing about it was known
            {"repayment_id": "P2", "loan_id": "L1", "installment_no": 2, "amount_due": 500.0}
            | {"due_date": D(2024, 7, 1), "paid_date": D(2024, 8, 15)},
        ],
        SILVER_BUREAU: [
            {"report_id": "B0", "customer_key": "K1", "report_time": TS(2024, 1, 5, 8)}
            | {"bureau_score": 700, "total_balance": 5000.0}
            | bureau_fields,
            {"report_id": "B2", "customer_key": "K1", "report_time": TS(2024, 7, 20, 12)}
            | {"bureau_score": 580, "total_balance": 15000.0}
            | bureau_fields,
        ],
        SILVER_EVENTS: [
            {"event_id": "E1", "customer_id": "C1", "event_ts": TS(2024, 6, 10, 12)}
            | {"event_type": "loan_calc", "is_night": False},
            {"event_id": "E2", "customer_id": "C1", "event_ts": TS(2024, 6, 20, 23, 30)}
            | {"event_type": "apply_click", "is_night": True},
        ],
        SILVER_NOTES: [
            {"note_id": "N1", "customer_id": "C1", "noted_at": TS(2024, 6, 1, 9)}
            | {"negative_hits": 2}
            | score(0.8),
            {"note_id": "N2", "customer_id": "C1", "noted_at": TS(2024, 8, 20, 9)}
            | {"negative_hits": 0}
            | score(0.0),
        ],
    }


LEAKAGE_LINKS = [
    ("court", "R1", "C1", "id_number", D(2024, 3, 1)),
    ("court", "R2", "C1", "id_number", D(2024, 7, 1)),  # dated after D
    ("penalty", "P9", None, "company_name", D(2024, 5, 1)),  # about a company nobody works at
]

CHECKED = [
    "application_id",
    "requested_amount",
    "age",
    "amount_to_income",
    "prior_max_dpd",
    "prior_late_3m",
    "prior_late_installments",
    "prior_installments_due",
    "prior_open_principal",
    "prior_utilization",
    "bureau_score",
    "utilization",
    "ev_count_7d",
    "ev_count_30d",
    "ev_apply_click_30d",
    "ev_night_share_30d",
    "notes_count_90d",
    "notes_negative_90d",
    "notes_negativity_90d",
    "pr_court_hits",
    "pr_last_record_ts",
    "pr_days_since_last",
]


@pytest.mark.slow
def test_point_in_time_training_set_does_not_leak_and_online_store_serves_latest(spark, settings):
    from feast.infra.offline_stores.contrib.spark_offline_store.spark import (
        get_spark_session_or_start_new_with_repoconfig,
    )

    write_silver(spark, settings, leakage_case())
    lakehouse.overwrite(
        links_frame(spark, LEAKAGE_LINKS), feature_store.SILVER_ENTITY_LINKS, settings
    )
    run = Run(spark, settings, run_id="fs-run")
    written = feature_store.build_feature_tables(run, until=TS(2024, 9, 30), created_at=CREATED)
    assert written == {
        "gold.fs_application": 3,
        "gold.fs_repayment": 5,  # Mar 2, Apr 2, Jul 2, Jul 31, Aug 16 (later ones cut)
        "gold.fs_bureau": 2,
        "gold.fs_events": 6,
        "gold.fs_text": 3,  # Jun 2, Aug 21, Aug 31 (Nov 19 is after `until`)
        "gold.fs_public_records": 2,
    }
    flag = "spark.sql.parser.quotedRegexColumnNames"
    flag_before = spark.conf.get(flag, None)

    store = feature_store.feature_store(settings)
    # materialized 10,000 rows at a time: Feast's default converts a whole view at once
    # (9.4 GB of Python on a 1M-customer book)
    assert store.config.materialization_config.online_write_batch_size == 10_000
    entities = feature_store.application_entities(
        lakehouse.read(spark, SILVER_APPLICATIONS, settings)
    )
    started = time.perf_counter()
    training = feature_store.training_set(store, entities)
    got = {r.application_id: r for r in training.collect()}
    historical_s = time.perf_counter() - started

    # gold's point-in-time join (feature_store.point_in_time) reads what Feast reads
    views = {t: lakehouse.read(spark, t, settings) for t in feature_store.HISTORY_TABLES}
    ours = feature_store.as_of_day(
        feature_store.point_in_time(entities, views), F.to_date("event_timestamp")
    )
    _, zero = feature_store._missing_as_zero(store.get_feature_service("application_pd"))
    history = [c for t in views for c in t.columns if c not in feature_store.ID_COLUMNS]
    history.append("pr_days_since_last")
    for r in ours.collect():
        mine = {c: zero.get(c) if r[c] is None else r[c] for c in history}
        assert mine == {c: got[r.application_id][c] for c in history}, r.application_id
    assert ours.count() == 3

    assert set(training.columns) >= set(CHECKED) | {"customer_id", "event_timestamp"}
    assert [tuple(got[a][c] for c in CHECKED) for a in ("A1", "A2", "A3")] == [
        # A1 on D: only what was known before D
        ("A1", 5000.0, 33, 5000 / 6000, 0, 0, 0, 1, 500.0, 0.5, 700, 0.25, 1, 1, 0, 0.0)
        + (1, 1, 0.8 if HAS_SCORE else 2.0, 1, day(2024, 3, 1), 106),
        # A2 after the record, the late installment and the new report: all of them
        ("A2", 8000.0, 34, 0.8, 45, 1, 1, 2, 0.0, 0.0, 580, 0.75, 0, 0, 0, None)
        + (1, 0, 0.0, 2, day(2024, 7, 1), 62),
        # A3: a customer with no history: counts 0, the rest unknown
        ("A3", 3000.0, 38, 0.375, 0, 0, 0, 0, 0.0, None, None, None, 0, 0, 0, None)
        + (0, 0, None, 0, None, None),
    ]

    started = time.perf_counter()
    feature_store.materialize(store, end=TS(2024, 9, 2))
    materialize_s = time.perf_counter() - started

    online = feature_store.online_features(store, "C1", at=TS(2024, 9, 2))
    assert {c: online[c] for c in CHECKED[4:]} == {
        "prior_max_dpd": 45,
        "prior_late_3m": 1,
        "prior_late_installments": 1,
        "prior_installments_due": 2,
        "prior_open_principal": 0.0,
        "prior_utilization": 0.0,
        "bureau_score": 580,
        "utilization": 0.75,
        "ev_count_7d": 0,
        "ev_count_30d": 0,
        "ev_apply_click_30d": 0,
        "ev_night_share_30d": None,
        "notes_count_90d": 1,
        "notes_negative_90d": 0,
        "notes_negativity_90d": 0.0,
        "pr_court_hits": 2,
        "pr_last_record_ts": dt.datetime(2024, 7, 1, tzinfo=dt.UTC),
        "pr_days_since_last": 63,
    }
    assert "requested_amount" not in online  # the application's own fields: the request's
    reader = feature_store.OnlineReader(store)
    assert reader("C1", at=TS(2024, 9, 2)) == online
    # a year after the report of Jul 20 it is too old to stand for C1 (the view's ttl),
    # although it stays in the online store; the repayment record never ages out
    late = feature_store.online_features(store, "C1", at=TS(2025, 7, 21))
    assert (late["bureau_score"], late["utilization"], late["prior_max_dpd"]) == (None, None, 45)
    assert reader("C1", at=TS(2025, 7, 21)) == late
    assert feature_store.online_features(store, "C1", at=TS(2025, 7, 19))["bureau_score"] == 580
    unknown = feature_store.online_features(store, "C2", at=TS(2024, 9, 2))
    assert {c: unknown[c] for c in ("prior_loans", "prior_open_principal", "bureau_score")} == {
        "prior_loans": 0,
        "prior_open_principal": 0.0,
        "bureau_score": None,
    }
    assert type(unknown["prior_open_principal"]) is float

    # Feast ran on the session of the pipeline, and left its parser flag as it found it.
    assert spark.conf.get(flag, None) == flag_before
    assert get_spark_session_or_start_new_with_repoconfig(store.config.offline_store) is spark
    spark.conf.unset(flag) if flag_before is None else spark.conf.set(flag, flag_before)
    stats = lakehouse.read(spark, feature_store.OPS_FEATURE_STATS, settings)
    assert stats.where(F.col("run_id") == "fs-run").select("feature_view").distinct().count() == 6
    print(f"\nfeast: historical retrieval {historical_s:.1f}s, materialize {materialize_s:.1f}s")


def test_the_as_of_date_is_the_runs_day_and_a_day_before_the_data_is_refused(spark, settings):
    from riskcontrol.core.dates import as_of_date

    apps = [
        {"application_id": "A1", "customer_id": "C1", "application_date": D(2024, 3, 2)},
        {"application_id": "A2", "customer_id": "C2", "application_date": D(2024, 3, 30)},
    ]
    lakehouse.overwrite(frame(spark, SILVER_APPLICATIONS, apps), SILVER_APPLICATIONS, settings)
    assert as_of_date(spark, settings) == D(2024, 3, 31)  # the day after the last one
    for day in (D(2024, 3, 3), D(2024, 3, 15), D(2025, 1, 1)):
        assert as_of_date(spark, settings.model_copy(update={"as_of": day})) == day
    for day in (D(2024, 3, 2), D(2023, 12, 31)):
        with pytest.raises(RuntimeError, match=f"RISK_AS_OF is {day}, but the first"):
            as_of_date(spark, settings.model_copy(update={"as_of": day}))
