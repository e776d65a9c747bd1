"""Extract the lending book from a real PostgreSQL server, started by the test session."""

from __future__ import annotations

import pytest
from conftest import make_settings, psql

from riskcontrol.collect import extracts, lendingdb
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import BRONZE_APPLICATIONS, BRONZE_LOANS
from riskcontrol.core.runs import Run
from riskcontrol.synthetic.generate import generate

pytestmark = pytest.mark.slow


def _counts(step):
    return (step.rows_in, step.rows_out, step.rows_unchanged, step.rows_quarantined)


def test_temporal_types_are_inferred_from_values(spark):
    df = spark.createDataFrame(
        [("2024-01-02", "2024-01-02 03:04:05", "x", None)],
        "paid_date string, updated_at string, note_at string, empty_at string",
    )
    with pytest.raises(ValueError, match="column note_at: 1 values are neither"):
        lendingdb.temporal_types(df)
    assert lendingdb.temporal_types(df.drop("note_at")) == {
        "paid_date": "date",
        "updated_at": "timestamp",
        "empty_at": "date",
    }


def test_postgres_book_extracts_exactly_and_incrementally(spark, tmp_path, postgres):
    book = make_settings(tmp_path)
    summary = generate(book.data_dir, customers=300, seed=5)
    expected = {t: summary.row_counts[t] for t in extracts.JDBC_SOURCES}

    copied = lendingdb.copy_lending_db(spark, book, postgres["url"], user="postgres")
    assert copied == expected
    # Real column types at the server, not text.
    types = psql(
        postgres["port"],
        "lending",
        "SELECT column_name || ':' || data_type FROM information_schema.columns "
        "WHERE table_name = 'loans' AND column_name IN ('disbursed_at', 'updated_at') "
        "ORDER BY column_name",
    )
    assert types.splitlines() == ["disbursed_at:date", "updated_at:timestamp without time zone"]

    pg = make_settings(tmp_path, lending_jdbc_url=postgres["url"], lending_jdbc_user="postgres")
    run = Run(spark, pg, run_id="pg1")
    first = {name: _counts(extracts.collect_jdbc(run, name)) for name in extracts.JDBC_SOURCES}
    assert first == {name: (n, n, 0, 0) for name, n in expected.items()}

    # The same rows read from the SQLite original land nothing: PostgreSQL's dates and
    # timestamps arrive as the same text, so every row hashes alike.
    sqlite_run = Run(spark, book, run_id="sqlite1")
    again = _counts(extracts.collect_jdbc(sqlite_run, "loans", full=True))
    assert again == (expected["loans"], 0, expected["loans"], 0)

    # Two loans change, one application arrives: only they are read and landed.
    changed = psql(
        postgres["port"],
        "lending",
        "UPDATE loans SET status = 'written_off', updated_at = updated_at + interval '400 days' "
        "WHERE loan_id IN (SELECT loan_id FROM loans ORDER BY loan_id LIMIT 2) "
        "RETURNING loan_id",
    ).splitlines()
    psql(
        postgres["port"],
        "lending",
        "INSERT INTO applications (application_id, customer_id, applied_at, requested_amount, "
        "term_months, purpose, channel, province, status, decided_at, updated_at) VALUES "
        "('A-NEW-1', 'C0000000001', '2031-01-01 09:00:00', 5000, 12, 'consumption', 'app', "
        "'北京市', 'pending', NULL, '2031-01-01 09:00:00')",
    )
    run2 = Run(spark, pg, run_id="pg2")
    second = {
        name: _counts(extracts.collect_jdbc(run2, name)) for name in ("applications", "loans")
    }
    assert second == {"applications": (1, 1, 0, 0), "loans": (2, 2, 0, 0)}
    loans = lakehouse.read_clear(spark, BRONZE_LOANS, pg).where("status = 'written_off'")
    assert sorted(r.loan_id for r in loans.collect()) == sorted(changed)
    (new_app,) = (
        lakehouse.read_clear(spark, BRONZE_APPLICATIONS, pg)
        .where("application_id = 'A-NEW-1'")
        .select("applied_at", "province", "_ingest_id", "_source_uri")
        .collect()
    )
    assert tuple(new_app) == (
        "2031-01-01 09:00:00",
        "北京市",
        "pg2",
        postgres["url"],
    )
    # A third run over an unchanged server reads nothing.
    assert _counts(extracts.collect_jdbc(Run(spark, pg, run_id="pg3"), "loans")) == (0, 0, 0, 0)
