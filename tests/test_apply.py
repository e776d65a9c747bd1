"""Apply tier pieces on hand-built rows: the loan book's PD/EAD/EL/quadrant, the active
cut-off policy and the decision it gives, and a single application's feature row."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from riskcontrol.apply import book, online, scoring
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import GOLD_CUTOFF_POLICY

AS_OF = dt.date(2026, 3, 1)


def test_loan_book_pd_ead_expected_loss_and_quadrant(spark, settings):
    state = spark.createDataFrame(
        [
            # loan, channel, province, disbursed, outstanding, dpd
            ("L1", "app", "Zhejiang", dt.date(2025, 9, 1), 10_000.0, 0),
            ("L2", "web", "Hebei", dt.date(2025, 8, 1), 30_000.0, 0),
            ("L3", "app", "Zhejiang", dt.date(2025, 7, 1), 2_000.0, 45),
            ("L4", "web", "Hebei", dt.date(2025, 6, 1), 40_000.0, 120),
            ("L5", "app", "Hebei", dt.date(2025, 6, 1), 1_000.0, 3),
        ],
        "loan_id string, channel string, province string, disbursed_date date, "
        "outstanding double, dpd int",
    )
    loans = spark.createDataFrame(
        [(f"L{i}", f"A{i}", 50_000.0) for i in range(1, 6)],
        "loan_id string, application_id string, principal double",
    )
    app_pd = spark.createDataFrame(
        [
            ("A1", "k1", 0.04),  # current: the model's PD
            ("A2", "k2", 0.12),  # current, high PD and 30000 x 0.45 = 13500 >= 9000 -> D
            ("A3", "k3", 0.05),  # 30-59 DPD: floor 0.60
            ("A4", "k4", 0.30),  # 90+: floor 1.0
            ("A5", "k5", 0.50),  # 1-29 DPD: the model's 0.50 is above the 0.35 floor
        ],
        "application_id string, customer_key string, pd double",
    )
    rows = {
        r.loan_id: r
        for r in book.loan_book_risk(
            state, loans, app_pd, settings, AS_OF, "application_pd", "7"
        ).collect()
    }
    got = {k: (r.dpd_bucket, r.pd, round(r.expected_loss, 6), r.quadrant) for k, r in rows.items()}
    assert got == {
        "L1": ("current", 0.04, 180.0, "A"),  # 0.04 x 0.45 x 10000
        "L2": ("current", 0.12, 1620.0, "D"),  # 0.12 x 0.45 x 30000
        "L3": ("30-59", 0.60, 540.0, "C"),  # 0.60 x 0.45 x 2000; impact 900 is low
        "L4": ("90+", 1.0, 18000.0, "D"),  # 1.0 x 0.45 x 40000
        "L5": ("1-29", 0.50, 225.0, "C"),
    }
    assert {r.as_of_date for r in rows.values()} == {AS_OF}
    assert rows["L4"].ead == 40_000.0 and rows["L4"].impact == 18_000.0
    assert rows["L2"].strategy == scoring.QUADRANT_STRATEGY["D"]
    # 600 + 50/ln2 x (ln(0.96/0.04) - ln 19) = 616.85
    assert (rows["L1"].score, rows["L1"].customer_key, rows["L1"].model_version) == (617, "k1", "7")


def test_unknown_delinquency_bucket_is_refused(spark, settings):
    from pyspark.sql import functions as F

    with pytest.raises(ValueError, match="RISK_DELINQUENT_PD has unknown buckets"):
        book.delinquent_floor(F.lit("90+"), {"120+": 1.0})


def _policy_rows(version: int, status: str, cutoff: float, chosen: bool) -> dict:
    row = {c: None for c in GOLD_CUTOFF_POLICY.columns}
    row.update(
        policy_version=version,
        cutoff_pd=cutoff,
        approve_below_pd=round(cutoff - 0.02, 6),
        chosen=chosen,
        status=status,
        area=3,
        created_at=dt.datetime(2026, 3, 1),
    )
    return row


def test_scoring_decides_with_the_active_policy(spark, settings):
    assert scoring.active_policy(spark, settings) == scoring.CutoffPolicy("config", 0.08, 0.20)
    rows = [
        _policy_rows(1, "superseded", 0.20, True),
        _policy_rows(1, "superseded", 0.15, False),
        _policy_rows(2, "active", 0.15, True),
        _policy_rows(2, "active", 0.10, False),
    ]
    df = spark.createDataFrame(
        pd.DataFrame(rows)[GOLD_CUTOFF_POLICY.columns].astype(object), GOLD_CUTOFF_POLICY.schema
    )
    lakehouse.overwrite(df, GOLD_CUTOFF_POLICY, settings)
    policy = scoring.active_policy(spark, settings)
    assert policy == scoring.CutoffPolicy("2", 0.13, 0.15)
    apps = spark.createDataFrame(
        [
            ("a", 0.1299, 1000.0),
            ("b", 0.13, 1000.0),
            ("c", 0.1499, 1000.0),
            ("d", 0.15, 1000.0),
            ("e", None, 1000.0),  # no PD: no score, and a person decides
        ],
        "id string, pd double, requested_amount double",
    )
    out = {
        r.id: (r.decision, r.policy_version, r.score)
        for r in scoring.classify(apps, settings, policy).collect()
    }
    assert out == {
        "a": ("approve", "2", 525),  # 600 + 72.13 x (ln(0.8701/0.1299) - ln 19) = 524.79
        "b": ("review", "2", 525),
        "c": ("review", "2", 513),
        "d": ("reject", "2", 513),
        "e": ("review", "2", None),
    }


def test_single_application_feature_row():
    request = {
        "application_id": "A9",
        "customer_id": "C1",
        "requested_amount": 20000,
        "term_months": 12,
        "purpose": "consumer",
        "channel": "app",
        "province": "Zhejiang",
        "monthly_income": 8000,
        "birth_date": "1990-03-02",
        "employment_type": "salaried",
        "education": "bachelor",
        "bureau_score": 700,  # a fresh report overrides the online store's
    }
    online_values = {"bureau_score": 640, "inquiries_6m": 2, "ev_count_30d": 5, "prior_loans": 1}
    row = online.feature_row(request, online_values, on=dt.date(2026, 3, 1))
    assert row["age"] == 35.0  # the birthday is a day later
    assert row["amount_to_income"] == 2.5
    assert (row["bureau_score"], row["inquiries_6m"], row["ev_count_30d"]) == (700.0, 2.0, 5.0)
    assert row["utilization"] is None  # not known: the model's imputation handles it
    assert (row["application_month"], row["status"]) == ("2026-03", "pending")
    with pytest.raises(online.RequestError, match=r"lacks \['channel'\]"):
        online.feature_row({**request, "channel": None}, online_values)
    with pytest.raises(online.RequestError, match="'age'"):
        online.feature_row({k: v for k, v in request.items() if k != "birth_date"}, {})
