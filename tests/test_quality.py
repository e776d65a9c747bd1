"""Data-quality expectations: exact results per kind, the declarations, run_checks."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.analyze import quality
from riskcontrol.analyze.quality import (
    CRITICAL,
    EXPECTATIONS,
    OPS_DQ_RESULTS,
    WARNING,
    DataQualityError,
    DQResult,
    allowed_values,
    check,
    fresh,
    in_range,
    matches,
    min_rows,
    not_null,
    references,
    run_checks,
    unique,
)
from riskcontrol.core import catalog, lakehouse
from riskcontrol.core.runs import Run

AS_OF = dt.datetime(2024, 3, 11)  # naive: UTC
UTC = dt.UTC


def _got(results: list[DQResult]) -> list[tuple]:
    """Each result as (expectation, passed, failing_rows, total_rows, observed, threshold)."""
    return [
        (r.expectation, r.passed, r.failing_rows, r.total_rows, r.observed, r.threshold)
        for r in results
    ]


def test_not_null_counts_nulls_against_the_allowed_fraction(spark):
    df = spark.createDataFrame([("x",), (None,), ("y",), ("z",)], "a string")
    results = check(
        df,
        [
            not_null("a", table="t"),
            not_null("a", 0.25, name="a_mostly", severity=WARNING, table="t"),
        ],
        AS_OF,
    )
    assert _got(results) == [
        ("a_not_null", False, 1, 4, "null_fraction=0.25", "null_fraction<=0"),
        ("a_mostly", True, 1, 4, "null_fraction=0.25", "null_fraction<=0.25"),
    ]
    first = results[0]
    assert (first.table, first.kind, first.column, first.severity, first.status) == (
        "t",
        "not_null",
        "a",
        CRITICAL,
        "FAIL",
    )
    assert results[1].status == "PASS"


def test_range_is_inclusive_unless_told_and_ignores_nulls(spark):
    df = spark.createDataFrame([(1.0,), (5.5,), (None,), (-2.0,), (100.0,)], "x double")
    results = check(
        df,
        [
            in_range("x", 0),
            in_range("x", -2, 100, name="x_within"),
            in_range("x", -2, 100, min_exclusive=True, name="x_above"),
        ],
        AS_OF,
    )
    assert _got(results) == [
        ("x_range", False, 1, 5, "min=-2, max=100", ">=0"),
        ("x_within", True, 0, 5, "min=-2, max=100", ">=-2, <=100"),
        ("x_above", False, 1, 5, "min=-2, max=100", ">-2, <=100"),
    ]


def test_allowed_values_quote_the_lowest_and_highest_offender(spark):
    df = spark.createDataFrame(
        [("approved", 0), ("closed", 1), ("x", 1), (None, None), ("approved", 7), ("closed", 0)],
        "status string, n int",
    )
    results = check(
        df,
        [
            allowed_values("status", ("approved", "rejected", "pending")),
            allowed_values("status", ("approved", "closed", "x"), name="status_wide"),
            allowed_values("n", (0, 1)),
        ],
        AS_OF,
    )
    assert _got(results) == [
        (
            "status_allowed_values",
            False,
            3,
            6,
            "unexpected=[closed, x]",
            "in [approved, rejected, pending]",
        ),
        ("status_wide", True, 0, 6, "unexpected=[]", "in [approved, closed, x]"),
        ("n_allowed_values", False, 1, 6, "unexpected=[7]", "in [0, 1]"),
    ]


def test_unique_counts_rows_of_repeated_keys_and_ignores_null_keys(spark):
    df = spark.createDataFrame(
        [("a", 1, 1), ("a", 1, 2), ("b", 1, 3), (None, 1, 4), (None, 2, 5), ("c", 2, 6)]
        + [("c", 3, 7)],
        "k string, v int, id int",
    )
    results = check(df, [unique("k"), unique("k", "v", name="k_v_unique"), unique("id")], AS_OF)
    assert _got(results) == [
        ("k_unique", False, 4, 7, "duplicate_keys=2", "duplicate_keys=0"),
        ("k_v_unique", False, 2, 7, "duplicate_keys=1", "duplicate_keys=0"),
        ("id_unique", True, 0, 7, "duplicate_keys=0", "duplicate_keys=0"),
    ]
    assert results[1].column == "k,v"


def test_freshness_measures_the_newest_value_against_as_of(spark):
    df = spark.createDataFrame(
        [
            (dt.datetime(2024, 3, 8, 12, tzinfo=UTC), dt.date(2024, 3, 8), None),
            (dt.datetime(2024, 3, 9, 12, tzinfo=UTC), dt.date(2024, 3, 9), None),
            (None, None, None),
        ],
        "ts timestamp, d date, never timestamp",
    )
    two_days = dt.timedelta(days=2)
    results = check(
        df,
        [
            fresh("ts", two_days),
            fresh("ts", dt.timedelta(hours=12), name="ts_recent", severity=WARNING),
            fresh("d", two_days),  # a date counts as its midnight: exactly 48 hours old
            fresh("never", two_days),
        ],
        AS_OF,
    )
    assert _got(results) == [
        (
            "ts_freshness",
            True,
            None,
            3,
            "newest=2024-03-09T12:00:00Z, age_hours=36",
            "age_hours<=48",
        ),
        ("ts_recent", False, None, 3, "newest=2024-03-09T12:00:00Z, age_hours=36", "age_hours<=12"),
        (
            "d_freshness",
            True,
            None,
            3,
            "newest=2024-03-09T00:00:00Z, age_hours=48",
            "age_hours<=48",
        ),
        ("never_freshness", False, None, 3, "newest=null", "age_hours<=48"),
    ]
    assert results[1].status == "WARN"


def test_as_of_is_utc_when_naive_and_midnight_when_a_date():
    naive = quality._as_of_seconds(AS_OF)
    assert naive == int(dt.datetime(2024, 3, 11, tzinfo=UTC).timestamp())
    assert quality._as_of_seconds(dt.date(2024, 3, 11)) == naive
    beijing = dt.timezone(dt.timedelta(hours=8))
    assert quality._as_of_seconds(dt.datetime(2024, 3, 11, 8, tzinfo=beijing)) == naive


def test_row_count_and_regex(spark):
    df = spark.createDataFrame(
        [("110***********1234",), ("110**********123X",), ("110101199001011234",), (None,)],
        "m string",
    )
    masked = r"^\d{3}\*+[\dX]{4}$"
    results = check(
        df,
        [
            min_rows(4),
            min_rows(5, name="row_count_5"),
            matches("m", masked),
            matches("m", r"^\d{3}", name="m_prefix"),
        ],
        AS_OF,
    )
    assert _got(results) == [
        ("row_count", True, None, 4, "rows=4", "rows>=4"),
        ("row_count_5", False, None, 4, "rows=4", "rows>=5"),
        ("m_regex", False, 1, 4, "non_matching=1", f"matches {masked}"),
        ("m_prefix", True, 0, 4, "non_matching=0", r"matches ^\d{3}"),
    ]


def test_referential_and_unique_in_one_query(spark):
    loans = spark.createDataFrame([("L1",), ("L2",), ("L3",)], "loan_id string")
    # A referenced column with repeated values must not multiply the checked rows.
    ledger = spark.createDataFrame([("L1",), ("L1",), ("L9",), ("L0",)], "id string")
    repayments = spark.createDataFrame(
        [("R1", "L1"), ("R2", "L2"), ("R3", "L9"), ("R4", None), ("R5", "L9"), ("R5", "L0")],
        "repayment_id string, loan_id string",
    )
    results = check(
        repayments,
        [
            unique("repayment_id"),
            references("loan_id", "silver.loans"),
            references("loan_id", "ledger", "id", name="loan_in_ledger"),
        ],
        AS_OF,
        lookup={"silver.loans": loans, "ledger": ledger},
    )
    assert _got(results) == [
        ("repayment_id_unique", False, 2, 6, "duplicate_keys=1", "duplicate_keys=0"),
        ("loan_id_referential", False, 3, 6, "missing=[L0, L9]", "in silver.loans.loan_id"),
        ("loan_in_ledger", False, 1, 6, "missing=[L2]", "in ledger.id"),
    ]


def test_bad_declarations_and_inputs_fail_before_spark_runs(spark):
    with pytest.raises(ValueError, match="unknown kind 'nonnull'"):
        quality.Expectation("x", "t", "nonnull", ("a",))
    with pytest.raises(ValueError, match="range takes 1 column"):
        quality.Expectation("x", "t", "range", ("a", "b"))
    with pytest.raises(ValueError, match=r"needs params \['pattern'\]"):
        quality.Expectation("x", "t", "regex", ("a",))
    with pytest.raises(ValueError, match="names used twice"):
        quality.bind({"t": (unique("a"), unique("a"))})
    df = spark.createDataFrame([("L1",)], "loan_id string")
    with pytest.raises(ValueError, match=r"lacks columns \['dpd'\]"):
        check(df, [in_range("dpd", 0)], AS_OF)
    with pytest.raises(ValueError, match="needs silver.loans: pass lookup="):
        check(df, [references("loan_id", "silver.loans")], AS_OF)
    with pytest.raises(ValueError, match="one table"):
        check(df, [unique("loan_id", table="a"), unique("loan_id", table="b")], AS_OF)


def test_declarations_name_real_tables_and_columns():
    known = {**catalog.TABLES, OPS_DQ_RESULTS.full_name: OPS_DQ_RESULTS}
    for table_name, expectations in EXPECTATIONS.items():
        assert table_name in known, table_name
        fields = {f.name: f.dataType for f in known[table_name].schema.fields}
        for e in expectations:
            assert e.table == table_name
            assert set(e.columns) <= set(fields), (table_name, e.name)
            if e.kind == "referential":
                ref = known[e.params["ref_table"]]
                assert e.params["ref_column"] in ref.columns, (table_name, e.name)
            if e.kind == "freshness":
                assert isinstance(fields[e.columns[0]], T.DateType | T.TimestampType)
            if e.kind == "range":
                assert isinstance(fields[e.columns[0]], T.NumericType), (table_name, e.name)
    warnings = {
        (e.table, e.name) for es in EXPECTATIONS.values() for e in es if e.severity == WARNING
    }
    assert warnings == {
        ("silver.applications", "applied_at_freshness"),
        ("silver.applications", "monthly_income_not_null"),
        ("silver.loans", "annual_rate_range"),
        ("silver.bureau_reports", "bureau_score_range"),
        ("gold.application_features", "age_range"),
    }
    assert set(EXPECTATIONS) == {
        "silver.customers",
        "silver.applications",
        "silver.loans",
        "silver.repayments",
        "silver.settlements",
        "silver.bureau_reports",
        "silver.app_events",
        "silver.service_notes",
        "silver.court_records",
        "silver.penalties",
        "silver.news_articles",
        "silver.entity_links",
        "gold.application_features",
    }


def _bureau(spark):
    return spark.createDataFrame([("B1", 650), ("B2", 1000)], "report_id string, bureau_score int")


def test_run_checks_writes_every_result_then_raises_on_a_critical_breach(spark, settings):
    loans = spark.createDataFrame(
        [("L1", "A1", "C1", dt.date(2024, 1, 5), 5000.0, 12, 0.18, "active", None)],
        catalog.SILVER_LOANS.schema,
    )
    lakehouse.overwrite(loans, catalog.SILVER_LOANS, settings)  # the lookup reads it from here
    repayments = spark.createDataFrame(
        [("R1", "L1", 0), ("R2", "L9", 5), ("R3", "L1", 0)],
        "repayment_id string, loan_id string, dpd int",
    )
    run = Run(spark, settings, run_id="run-1")
    before = int(time.time())
    with pytest.raises(DataQualityError) as err:
        run_checks(
            run, {"silver.repayments": repayments, "silver.bureau_reports": _bureau(spark)}, AS_OF
        )
    after = time.time()
    assert str(err.value) == (
        "1 critical data-quality expectation(s) failed in run run-1:\n"
        "  silver.repayments loan_id_referential: observed missing=[L9], threshold in "
        "silver.loans.loan_id (1 of 3 rows)\n"
        "See ops.dq_results where run_id = 'run-1' for every result, and ops.quarantine for "
        "the rows the cleaning steps rejected."
    )
    assert [f.expectation for f in err.value.failures] == ["loan_id_referential"]
    assert [r.status for r in err.value.results] == ["PASS", "FAIL", "PASS", "PASS", "WARN"]

    written = lakehouse.read(spark, OPS_DQ_RESULTS, settings)
    rows = written.select(
        *[c for c in OPS_DQ_RESULTS.columns if c != "checked_at"],
        F.unix_seconds("checked_at").alias("checked_s"),
    ).collect()
    assert sorted(tuple(r)[:-1] for r in rows) == [
        ("run-1", "silver.bureau_reports", "bureau_score_range", "range", "bureau_score")
        + (WARNING, False, 1, 2, "min=650, max=1000", ">=300, <=900"),
        ("run-1", "silver.bureau_reports", "report_id_unique", "unique", "report_id")
        + (CRITICAL, True, 0, 2, "duplicate_keys=0", "duplicate_keys=0"),
        ("run-1", "silver.repayments", "dpd_range", "range", "dpd")
        + (CRITICAL, True, 0, 3, "min=0, max=5", ">=0"),
        ("run-1", "silver.repayments", "loan_id_referential", "referential", "loan_id")
        + (CRITICAL, False, 1, 3, "missing=[L9]", "in silver.loans.loan_id"),
        ("run-1", "silver.repayments", "repayment_id_unique", "unique", "repayment_id")
        + (CRITICAL, True, 0, 3, "duplicate_keys=0", "duplicate_keys=0"),
    ]
    assert len({r.checked_s for r in rows}) == 1
    assert before <= rows[0].checked_s <= after


def test_run_checks_only_reports_a_warning(spark, settings):
    run = Run(spark, settings, run_id="run-2")
    results = run_checks(run, {"silver.bureau_reports": _bureau(spark)}, AS_OF)
    assert [(r.expectation, r.status) for r in results] == [
        ("report_id_unique", "PASS"),
        ("bureau_score_range", "WARN"),
    ]
    assert lakehouse.exists(spark, OPS_DQ_RESULTS, settings)  # written, rows checked above
    with pytest.raises(ValueError, match="no expectations declared for \\['gold.nope'\\]"):
        run_checks(run, {"gold.nope": _bureau(spark)}, AS_OF)


def test_format_results_is_a_compact_table():
    results = [
        DQResult(
            "silver.loans",
            "loan_id_unique",
            "unique",
            "loan_id",
            CRITICAL,
            True,
            0,
            3,
            "duplicate_keys=0",
            "duplicate_keys=0",
        ),
        DQResult(
            "silver.loans",
            "annual_rate_range",
            "range",
            "annual_rate",
            WARNING,
            False,
            1,
            3,
            "min=0.1, max=0.4",
            ">=0, <=0.36",
        ),
        DQResult(
            "silver.loans",
            "row_count",
            "row_count",
            "",
            CRITICAL,
            False,
            None,
            3,
            "rows=3",
            "rows>=10",
        ),
    ]
    assert quality.format_results(results).splitlines() == [
        "STATUS  TABLE         EXPECTATION        FAILING  OBSERVED          THRESHOLD",
        "PASS    silver.loans  loan_id_unique     0/3      duplicate_keys=0  duplicate_keys=0",
        "WARN    silver.loans  annual_rate_range  1/3      min=0.1, max=0.4  >=0, <=0.36",
        "FAIL    silver.loans  row_count          -        rows=3            rows>=10",
        "3 checks: 1 passed, 1 warned, 1 failed",
    ]
