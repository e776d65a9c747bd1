"""Collect tier over a real SQLite database through Spark JDBC, and file drops."""

from __future__ import annotations

import sqlite3

import pytest

from riskcontrol.collect import extracts
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    BRONZE_APPLICATIONS,
    BRONZE_NOTES,
    OPS_MANIFEST,
    OPS_QUARANTINE,
    OPS_WATERMARKS,
)
from riskcontrol.core.runs import ReconciliationError, Run, StepCounts


def _lending_db(path, rows):
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE IF NOT EXISTS applications (application_id TEXT PRIMARY KEY, "
        "customer_id TEXT, requested_amount REAL, updated_at TEXT)"
    )
    con.execute("DELETE FROM applications")
    con.executemany("INSERT INTO applications VALUES (?, ?, ?, ?)", rows)
    con.commit()
    con.close()


def test_jdbc_driver_and_redaction():
    assert extracts.jdbc_driver("jdbc:postgresql://h/db") == "org.postgresql.Driver"
    assert extracts.jdbc_driver("jdbc:sqlite:/x.db") == "org.sqlite.JDBC"
    with pytest.raises(ValueError, match="unsupported JDBC URL"):
        extracts.jdbc_driver("jdbc:oracle:thin:@h")
    assert (
        extracts.redact("jdbc:postgresql://h/db?user=bob&password=s3cret")
        == "jdbc:postgresql://h/db?user=***&password=***"
    )


def test_window_query_and_look_back():
    src = extracts.JDBC_SOURCES["loans"]
    assert extracts.window_query(src, None, "2024-02-01 00:00:00") == (
        "(SELECT * FROM loans WHERE (updated_at <= '2024-02-01 00:00:00') "
        "OR updated_at IS NULL) extract_window"
    )
    by_id = extracts.JdbcSource("loans", src.table, watermark="id")
    assert extracts.window_query(by_id, "10", "25") == (
        "(SELECT * FROM loans WHERE (id > 10 AND id <= 25) OR id IS NULL) extract_window"
    )
    assert extracts.sql_literal("O'Brien") == "'O''Brien'"
    assert extracts._looked_back("2024-02-01 00:30:00", 60) == "2024-01-31 23:30:00"
    assert extracts._looked_back("1234", 60) == "1234"
    assert extracts._after("10", "9") and extracts._after("2024-02-01", "2024-01-31")


def _extract(spark, settings, run_id, **window):
    step = extracts.collect_jdbc(Run(spark, settings, run_id=run_id), "applications", **window)
    return (step.rows_in, step.rows_out, step.rows_unchanged, step.rows_quarantined)


def test_jdbc_extract_is_incremental_by_watermark_and_idempotent(spark, settings):
    settings.data_dir.mkdir(parents=True)
    db = settings.lending_db_path
    rows = [
        ("A1", "C1", 1000.0, "2024-01-01"),
        ("A2", "C2", 2000.0, "2024-01-02"),
        (None, "C3", 5.0, "2024-01-03"),
    ]
    _lending_db(db, rows)
    assert _extract(spark, settings, "r1") == (3, 2, 0, 1)
    # Nothing changed at the source: the window is empty.
    assert _extract(spark, settings, "r2") == (0, 0, 0, 0)
    # A1 changes, A3 is new, A4 has no watermark at all (read on every run, never lost).
    _lending_db(
        db,
        [
            ("A1", "C1", 1500.0, "2024-02-01"),
            *rows[1:],
            ("A3", "C3", 3000.0, "2024-02-02"),
            ("A4", "C4", 4000.0, None),
        ],
    )
    assert _extract(spark, settings, "r3") == (3, 3, 0, 0)
    # The same window again changes nothing; so does a full re-read.
    assert _extract(spark, settings, "r4", since="2024-01-03", until="2024-02-02") == (3, 0, 3, 0)
    assert _extract(spark, settings, "r5", full=True) == (5, 0, 4, 1)

    bronze = lakehouse.read_clear(spark, BRONZE_APPLICATIONS, settings)
    got = sorted(
        (r.application_id, r.requested_amount, r._ingest_id, r._source) for r in bronze.collect()
    )
    assert got == [
        ("A1", 1000.0, "r1", "lending_db.applications"),
        ("A1", 1500.0, "r3", "lending_db.applications"),
        ("A2", 2000.0, "r1", "lending_db.applications"),
        ("A3", 3000.0, "r3", "lending_db.applications"),
        ("A4", 4000.0, "r3", "lending_db.applications"),
    ]
    # The row without a key was quarantined by each run that read it (as its manifest row
    # counts), under the same keyed hash.
    quarantined = lakehouse.read_clear(spark, OPS_QUARANTINE, settings).orderBy("run_id").collect()
    assert [(q.run_id, q.target, q.rule, q.stage) for q in quarantined] == [
        (run_id, "bronze.applications", "missing_key", "collect") for run_id in ("r1", "r5")
    ]
    assert len({q.record_hash for q in quarantined}) == 1
    manifest = lakehouse.read(spark, OPS_MANIFEST, settings).orderBy("run_id").collect()
    assert [(m.run_id, m.window_start, m.window_end, m.rows_in) for m in manifest] == [
        ("r1", None, "2024-01-03", 3),
        ("r2", "2024-01-03", "2024-01-03", 0),
        ("r3", "2024-01-03", "2024-02-02", 3),
        ("r4", "2024-01-03", "2024-02-02", 3),
        ("r5", None, "2024-02-02", 5),
    ]
    (wm,) = lakehouse.read(spark, OPS_WATERMARKS, settings).collect()
    assert (wm.source, wm.column, wm.high_water, wm.run_id) == (
        "jdbc:applications",
        "updated_at",
        "2024-02-02",
        "r3",
    )


def test_notes_drop_splits_records_on_blank_lines_and_quarantines_headless_text(spark, settings):
    folder = settings.landing_dir / "notes"
    folder.mkdir(parents=True)
    (folder / "notes_202401.txt").write_text(
        "#NOTE id=N1 customer=C1 time=2024-01-05 10:00:00 agent=A1 channel=phone\n"
        "客户咨询额度。\n"
        "\n"
        "text that lost its header\n"
        "\n"
        "#NOTE id=N2 customer=C2 time=2024-01-06 11:00:00 agent=A2 channel=chat\n"
        "Customer says they are unemployed.\n",
        encoding="utf-8",
    )
    step = extracts.collect_files(Run(spark, settings, run_id="n1"), "notes")
    assert (step.rows_in, step.rows_out, step.rows_quarantined) == (3, 2, 1)
    payloads = sorted(
        r.payload for r in lakehouse.read_clear(spark, BRONZE_NOTES, settings).collect()
    )
    assert payloads[0].startswith("#NOTE id=N1") and payloads[0].endswith("客户咨询额度。")
    (q,) = lakehouse.read_clear(spark, OPS_QUARANTINE, settings).collect()
    assert q.rule == "missing_note_header" and "text that lost its header" in q.record


def test_a_step_that_loses_rows_fails_loudly(spark, settings):
    run = Run(spark, settings, run_id="bad")
    with pytest.raises(ReconciliationError, match="rows in 10 != out 7"):
        run.record(
            StepCounts("collect", "src", "bronze.x", rows_in=10, rows_out=7, rows_unchanged=2)
        )
    # The failing step's numbers are still on record for whoever investigates.
    (m,) = lakehouse.read(spark, OPS_MANIFEST, settings).collect()
    assert (m.run_id, m.rows_in, m.rows_out) == ("bad", 10, 7)


def test_manifest_and_quarantine_rows_are_appended_one_commit_each(spark, settings):
    """Their keys hold a fresh attempt id: one append per step, its count read back from
    that commit (tagged with the attempt id), never a MERGE searching for the key."""
    from delta.tables import DeltaTable

    run = Run(spark, settings, run_id="a1")
    rejected = spark.createDataFrame(
        [("bad", "why", "r1", "file:///x"), ("bad", "why", "r1", "file:///x")],
        "rule string, reason string, record string, source_uri string",
    )
    first = StepCounts("collect", "src", "bronze.x", rows_in=5, rows_out=3, rows_quarantined=2)
    assert run.quarantine(rejected, "collect", "bronze.x", attempt_id=first.attempt_id) == 2
    run.record(first)
    second = StepCounts("collect", "src", "bronze.y", rows_in=1, rows_out=1)
    run.record(second)
    with pytest.raises(ValueError, match=f"attempt {second.attempt_id} is recorded already"):
        run.record(second)
    history = (
        DeltaTable.forPath(spark, OPS_MANIFEST.path(settings))
        .history()
        .orderBy("version")
        .select("version", "operation", "userMetadata", "operationMetrics.numOutputRows")
        .collect()
    )
    assert [tuple(h) for h in history] == [
        (0, "WRITE", first.attempt_id, "1"),
        (1, "WRITE", second.attempt_id, "1"),
    ]
    rows = lakehouse.read(spark, OPS_MANIFEST, settings).orderBy("target").collect()
    assert [(r.target, r.rows_in, r.rows_quarantined) for r in rows] == [
        ("bronze.x", 5, 2),
        ("bronze.y", 1, 0),
    ]
    (q,) = DeltaTable.forPath(spark, OPS_QUARANTINE.path(settings)).history().collect()
    assert (q.operation, q.userMetadata) == ("WRITE", first.attempt_id)
    assert sorted(
        r.occurrence for r in lakehouse.read(spark, OPS_QUARANTINE, settings).collect()
    ) == [1, 2]


def test_a_record_in_two_files_keeps_the_same_provenance_whatever_order_it_arrives_in(spark):
    """The same record (key and content) in two monthly files: bronze keeps one copy, and
    always the same one (the first file by name), however the rows are partitioned; a
    standalone cluster and local[2] once kept different ones."""
    from riskcontrol.core.landing import first_per_key

    rows = [
        ("R1", "h1", "file:/drop/bureau_202411.jsonl", "payload-1"),
        ("R1", "h1", "file:/drop/bureau_202410.jsonl", "payload-1"),
        ("R1", "h2", "file:/drop/bureau_202411.jsonl", "payload-1b"),  # changed content
        ("R2", "h3", "file:/drop/bureau_202411.jsonl", "payload-2"),
    ]
    cols = ["report_id", "_content_hash", "_source_uri", "payload"]
    want = [
        ("R1", "h1", "file:/drop/bureau_202410.jsonl", "payload-1"),
        ("R1", "h2", "file:/drop/bureau_202411.jsonl", "payload-1b"),
        ("R2", "h3", "file:/drop/bureau_202411.jsonl", "payload-2"),
    ]
    for ordered in (rows, rows[::-1]):
        for parts in (1, 4):
            df = spark.createDataFrame(ordered, cols).repartition(parts)
            kept = first_per_key(df, ("report_id", "_content_hash")).collect()
            assert sorted(tuple(r) for r in kept) == want


def _bronze_rows(spark, settings) -> list[tuple]:
    bronze = lakehouse.read_clear(spark, BRONZE_APPLICATIONS, settings)
    return sorted((r.application_id, r.requested_amount, r.updated_at) for r in bronze.collect())


def test_days_extracted_one_at_a_time_equal_the_last_day_at_once(spark, tmp_path):
    """RISK_AS_OF (an Airflow run's logical date) ends the extract at the start of that
    day. Backfilling three days one after the other lands what one run as of the last
    day lands; a day run again lands nothing; the watermark never passes the source."""
    import datetime as dt

    from conftest import make_settings

    rows = [
        ("A1", "C1", 1000.0, "2024-03-01 09:00:00"),
        ("A2", "C2", 2000.0, "2024-03-02 23:59:59"),
        ("A3", "C3", 3000.0, "2024-03-03 00:00:00"),
        ("A4", "C4", 4000.0, "2024-03-03 17:30:00"),
        ("A5", "C5", 5000.0, "2024-03-05 08:00:00"),
    ]
    daily, once = make_settings(tmp_path / "daily"), make_settings(tmp_path / "once")
    for s in (daily, once):
        s.data_dir.mkdir(parents=True)
        _lending_db(s.lending_db_path, rows)

    def extract(s, day, run_id):
        dated = s.model_copy(update={"as_of": dt.date.fromisoformat(day)})
        return _extract(spark, dated, run_id)

    # Each day lands the rows written before it began.
    assert extract(daily, "2024-03-02", "d1") == (1, 1, 0, 0)
    assert extract(daily, "2024-03-03", "d2") == (1, 1, 0, 0)
    assert extract(daily, "2024-03-04", "d3") == (2, 2, 0, 0)
    assert _bronze_rows(spark, daily) == [(r[0], r[2], r[3]) for r in rows[:4]]
    assert extract(daily, "2024-03-04", "d3-again") == (0, 0, 0, 0)
    assert extract(once, "2024-03-04", "once") == (4, 4, 0, 0)
    assert _bronze_rows(spark, once) == _bronze_rows(spark, daily)
    manifest = lakehouse.read(spark, OPS_MANIFEST, daily).orderBy("run_id").collect()
    assert [(m.run_id, m.window_start, m.window_end) for m in manifest] == [
        ("d1", None, "2024-03-02"),
        ("d2", "2024-03-01 09:00:00", "2024-03-03"),
        ("d3", "2024-03-02 23:59:59", "2024-03-04"),
        ("d3-again", "2024-03-03 17:30:00", "2024-03-04"),
    ]
    # A day past the data: the watermark stops at the source's last row, so a row
    # written later with an earlier time than that day is not skipped.
    assert extract(daily, "2024-12-31", "future") == (1, 1, 0, 0)
    (wm,) = lakehouse.read(spark, OPS_WATERMARKS, daily).collect()
    assert wm.high_water == "2024-03-05 08:00:00"
    _lending_db(daily.lending_db_path, [*rows, ("A6", "C6", 6000.0, "2024-03-06 10:00:00")])
    assert _extract(spark, daily, "next") == (1, 1, 0, 0)
    assert _bronze_rows(spark, daily)[-1] == ("A6", 6000.0, "2024-03-06 10:00:00")
