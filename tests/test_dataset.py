"""evaluate-dataset's data half: a messy loan file -> bronze -> profile -> clean -> silver.

One small inline CSV (RFC 4180 doubled quotes, a multi-line quoted description, money,
percentages, " 36 months", two-digit-year dates, missing values spelled several ways, a
missing target, a bad and a missing date, a short record) with exact expected rows,
quarantine rules and profile kinds; the same rows as Parquet give the same result; the
generator's ground truth equals what ``land`` quarantines. Spark actions are few: one
select for the parsers, a profile and a clean per format, one ``land``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from riskcontrol.core import lakehouse, values
from riskcontrol.core.catalog import OPS_MANIFEST, OPS_QUARANTINE
from riskcontrol.core.runs import ReconciliationError
from riskcontrol.lenderfile import prepare
from riskcontrol.lenderfile.prepare import OTHER, ColumnStats, DatasetCounts
from riskcontrol.synthetic.generate import loanfile

# --- pure rules ---------------------------------------------------------------------------


def _numeric(**parsed: int) -> dict[str, int]:
    """Values each numeric parser reads (the others: none)."""
    return {p: parsed.get(p, 0) for p in prepare.NUMERIC_PARSERS}


def _stats(name: str, n: int, distinct: int, max_count: int, **kw) -> ColumnStats:
    values = {
        "rows": n,
        "non_missing": n,
        "mean_length": 6.0,
        "code_like": n,
        "numeric": _numeric(),
        "dates": dict.fromkeys(("any", *prepare.DATE_FORMATS), 0),
        "levels": (),
        "example": "x",
    }
    values.update(kw)
    return ColumnStats(name, distinct=distinct, max_count=max_count, **values)


def test_kind_rules_for_ids_near_numbers_and_constants():
    # Unique codes make an id by name at once, without an id-like name only on 1,000 rows.
    assert prepare.decide(_stats("loan_id", 5, 5, 1)).kind == "id"
    assert prepare.decide(_stats("ref", 5, 5, 1)).kind == "categorical"
    assert prepare.decide(_stats("ref", 1000, 1000, 1)).kind == "id"
    # An id-like name with repeated values is a category, even when the values are numbers.
    branch = prepare.decide(_stats("branch_id", 90, 3, 40, numeric=_numeric(plain=90, money=90)))
    assert (branch.kind, branch.reason) == (
        "categorical",
        "3 levels in the sample (an id-like name, but values repeat) (100.0% of 90 non-missing "
        "sampled values parse as numbers)",
    )
    # 94 of 100 values with a unit: below the 95% needed, a category that says how close.
    near = prepare.decide(_stats("emp_length", 100, 11, 30, numeric=_numeric(unit=94)))
    assert (near.kind, near.reason) == (
        "categorical",
        "11 levels in the sample (94.0% of 100 non-missing sampled values parse as numbers "
        "with a unit (36 months -> 36))",
    )
    # One value and sometimes missing is a flag, not a constant.
    assert prepare.decide(_stats("flag", 10, 1, 10)).kind == "constant"
    assert prepare.decide(_stats("flag", 8, 1, 8, rows=10)).kind == "categorical"
    with pytest.raises(ReconciliationError, match=r"rows read 10 != rows used 7 \+ quarantined 2"):
        DatasetCounts(rows_read=10, rows_used=7, quarantined={"missing_target": 2})


# --- parsers on Spark ---------------------------------------------------------------------

DATE_CASES = [
    ("28-Feb-97", dt.date(1997, 2, 28)),  # Spark's yy alone says 2097
    ("15-Mar-11", dt.date(2011, 3, 15)),
    ("Feb-68", dt.date(1968, 2, 1)),  # Python's %y says 2068: in the future
    ("Dec-2011", dt.date(2011, 12, 1)),
    ("2011-03-15", dt.date(2011, 3, 15)),
    ("2011/3/15", dt.date(2011, 3, 15)),
    ("15/03/2011", dt.date(2011, 3, 15)),
    ("2011-03-15 10:21:33", dt.date(2011, 3, 15)),
    (" 15-MAR-11 ", dt.date(2011, 3, 15)),
    ("31-Feb-11", None),
    ("not a date", None),
    ("n/a", None),
]
NUMBER_CASES = [
    ("money", "$60,000.00 ", 60000.0),
    ("money", "42000", 42000.0),
    ("money", "ten thousand", None),
    ("percent", "13.56%", 0.1356),
    ("percent", "45.3", 0.453),
    ("unit", " 36 months", 36.0),
    ("unit", "10+ years", 10.0),
    ("unit", "< 1 year", None),
    ("unit", "123xx", None),
    ("plain", "1e3", 1000.0),
    ("plain", "NA", None),
]


def test_dates_pivot_two_digit_years_and_numbers_parse_by_kind(spark):
    rows = [("date", raw) for raw, _ in DATE_CASES]
    rows += [(parser, raw) for parser, raw, _ in NUMBER_CASES]
    df = spark.createDataFrame(rows, "kind string, raw string")
    v = prepare.raw_value("raw")
    numbers = {p: prepare.parse_number(v, p) for p in prepare.NUMERIC_PARSERS}
    got = df.select(
        "kind",
        "raw",
        values.parse_date(v, prepare.DATE_FORMATS).alias("date"),
        F.coalesce(*[F.when(F.col("kind") == p, n) for p, n in numbers.items()]).alias("number"),
    ).collect()
    assert [(r.raw, r.date) for r in got if r.kind == "date"] == DATE_CASES
    assert [(r.kind, r.raw, r.number) for r in got if r.kind != "date"] == NUMBER_CASES


# --- a messy file, CSV and Parquet ---------------------------------------------------------

LOANS_CSV = (
    "id,member_id,Loan Amount,term,int_rate,grade,emp_title,emp_length,annual_inc,issue_d,"
    "earliest_cr_line,desc,loan_status,policy_code\n"
    '1,101,"$60,000.00 "," 36 months",13.56%,A,"Smith, ""Barney"" & Co",10+ years,"$80,000.00",'
    "28-Feb-97,Dec-1990,,Fully Paid,1\n"
    '2,102,"$1,500.00"," 60 months",7.50%,B,Teacher,< 1 year,n/a,15-Mar-11,Jan-2001,'
    '"Borrower added on 03/01/11 > I need ""cash"" fast,\nsecond line of this long description",'
    "Charged Off,1\n"
    "3,103,ten thousand, 36 months,NA,A,Teacher,2 years,42000,01-Jan-05,Mar-1999,,DEFAULT ,1\n"
    "4,104,$900.00, 36 months,9.99%,C,,n/a,55000.50,31-Feb-11,Jan-2000,,Fully Paid,1\n"
    '5,105,"$2,000.00", 36 months,11.00%,B,Nurse,1 year,"$61,000.00",05-Jul-14,May-2005,'
    '"A long enough text about my plan to consolidate, which is why I ask for this loan.",,1\n'
    '6,106,"$3,000.00", 60 months,15.25%,C,Nurse,5 years,70000,,Jun-1998,,Fully Paid,1\n'
    '7,107,"$4,000.00", 36 months,12.00%,A,Driver,3 years,null,20-Aug-15,Feb-2010,'
    '"Another long description, with a comma, that is unique to this row.",Charged Off,1\n'
    '8,108,"$5,000.00"\n'  # a short record: malformed
)
BAD = ["Charged Off", "Default"]
# 7 well-formed rows are the sample. loan_amount: 6 of 7 parse (85.7%), emp_length: 5 of 6
# have a unit (83.3%), so a threshold of 85% makes the first numeric, the second not; with
# 3 levels at most, grade (A, B, C) stays categorical and emp_title (4 titles) does not.
PROFILE = {"threshold": 0.85, "max_levels": 3}
KINDS = {
    "id": "id",
    "member_id": "id",
    "loan_amount": "numeric",
    "term": "numeric",
    "int_rate": "numeric",
    "grade": "categorical",
    "emp_title": "high_cardinality_categorical",
    "emp_length": "high_cardinality_categorical",
    "annual_inc": "numeric",
    "issue_d": "date",
    "earliest_cr_line": "date",
    "desc": "text",
    "loan_status": "target",
    "policy_code": "constant",
}
DATA_SCHEMA = (
    "struct<_row_id:bigint,label:double,event_date:date,event_month:string,loan_amount:double,"
    "term:double,int_rate:double,annual_inc:double,days_since_earliest_cr_line:double,"
    "grade:string,emp_title:string,emp_length:string>"
)
# Rows 1, 2, 3 and 7 are used; emp_title keeps Nurse, Teacher, Driver (2, 2, 1 rows, ties
# by value), emp_length keeps "1 year", "10+ years", "2 years" (all once: by value).
DATA = [
    (1, 0.0, dt.date(1997, 2, 28), "1997-02", 60000.0, 36.0, 0.1356, 80000.0)
    + (float((dt.date(1997, 2, 28) - dt.date(1990, 12, 1)).days), "A", OTHER, "10+ years"),
    (2, 1.0, dt.date(2011, 3, 15), "2011-03", 1500.0, 60.0, 0.075, None)
    + (float((dt.date(2011, 3, 15) - dt.date(2001, 1, 1)).days), "B", "Teacher", OTHER),
    # "DEFAULT " is bad (trimmed, any case); "ten thousand" and "NA" become null
    (3, 1.0, dt.date(2005, 1, 1), "2005-01", None, 36.0, None, 42000.0)
    + (float((dt.date(2005, 1, 1) - dt.date(1999, 3, 1)).days), "A", "Teacher", "2 years"),
    (7, 1.0, dt.date(2015, 8, 20), "2015-08", 4000.0, 36.0, 0.12, None)
    + (float((dt.date(2015, 8, 20) - dt.date(2010, 2, 1)).days), "A", "Driver", OTHER),
]
QUARANTINE = [
    (4, "invalid_time", "issue_d '31-Feb-11' is not a date (d-MMM-yy)"),
    (5, "missing_target", "loan_status is missing"),
    (6, "invalid_time", "issue_d is missing"),
    (8, "malformed_row", "record does not split into the header's fields"),
]


def _evaluate(spark, path):
    bronze = prepare.read_bronze(spark, path, ingest_id="t1")
    profiles = prepare.profile(bronze, "Loan_Status", (), "issue_d", **PROFILE)
    ds = prepare.clean(bronze, "loan_status", BAD, time_col="issue_d", profile=profiles)
    quarantine = sorted(
        (r["_row_id"], r.rule, r.reason, json.loads(r.record)) for r in ds.quarantine.collect()
    )
    return ds, profiles, sorted(tuple(r) for r in ds.data.collect()), quarantine


def test_a_messy_csv_and_the_same_rows_as_parquet_clean_to_the_exact_rows(spark, tmp_path):
    path = tmp_path / "loans.csv"
    path.write_text(LOANS_CSV, encoding="utf-8")
    ds, profiles, data, quarantine = _evaluate(spark, path)

    assert {p.name: p.kind for p in profiles} == KINDS
    by_name = {p.name: p for p in profiles}
    assert by_name["loan_amount"].reason == (
        "85.7% of 7 non-missing sampled values parse as money amounts ($, thousands separators)"
    )
    assert (by_name["loan_amount"].parser, by_name["loan_amount"].unparsed) == ("money", 1)
    assert (by_name["int_rate"].parser, by_name["term"].parser) == ("percent", "unit")
    assert by_name["issue_d"].formats == ("d-MMM-yy",)
    assert by_name["earliest_cr_line"].feature == "days_since_earliest_cr_line"
    assert by_name["emp_title"].levels == ("Nurse", "Teacher", "Driver")
    assert (ds.numeric, ds.categorical) == (
        ["loan_amount", "term", "int_rate", "annual_inc", "days_since_earliest_cr_line"],
        ["grade", "emp_title", "emp_length"],
    )
    assert ds.data.schema.simpleString() == DATA_SCHEMA
    assert data == DATA
    assert [q[:3] for q in quarantine] == QUARANTINE
    # the raw record, as read: doubled quotes undone, nulls left out, the short line kept
    assert quarantine[0][3]["issue_d"] == "31-Feb-11"
    assert quarantine[3][3]["_corrupt_record"] == '8,108,"$5,000.00"'
    assert quarantine[3][3]["_source_uri"].endswith("loans.csv")
    assert ds.counts() == DatasetCounts(
        rows_read=8,
        rows_used=4,
        quarantined={"malformed_row": 1, "missing_target": 1, "invalid_time": 2},
        unparsed={
            "loan_amount": 1,
            "term": 0,
            "int_rate": 0,
            "annual_inc": 0,
            "days_since_earliest_cr_line": 0,
        },
    )

    # The well-formed rows as Parquet, every value the same string: the same result.
    header, *rows = list(csv.reader(io.StringIO(LOANS_CSV)))
    rows = [r for r in rows if len(r) == len(header)]
    table = pa.table({h: [r[i] for r in rows] for i, h in enumerate(header)})
    pq.write_table(table, tmp_path / "loans.parquet")
    p_ds, p_profiles, p_data, p_quarantine = _evaluate(spark, tmp_path / "loans.parquet")

    def shown(ps):
        return [(p.name, p.kind, p.reason, p.parser, p.formats, p.feature) for p in ps]

    assert shown(p_profiles) == shown(profiles)
    assert p_data == DATA
    assert [q[:3] for q in p_quarantine] == QUARANTINE[:3]
    assert p_ds.counts().quarantined == {"missing_target": 1, "invalid_time": 2}


def test_clean_refuses_bad_values_the_target_never_takes(spark, tmp_path):
    profiles = [
        prepare.ColumnProfile("status", "target", "the --target column", levels=("Paid", "Late"))
    ]
    bronze = spark.createDataFrame(
        [], "_row_id long, status string, _corrupt_record string, _source_uri string"
    )
    with pytest.raises(ValueError, match="no sampled value of status is one of them; its most"):
        prepare.clean(bronze, "status", ["Charged Off"], profile=profiles)


# --- generator and land ------------------------------------------------------------------


def test_generator_cli_and_parquet_ground_truth(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        loanfile.main(["--help"])
    assert done.value.code == 0
    assert "--rows" in capsys.readouterr().out
    assert loanfile.main([str(tmp_path / "l.parquet"), "--rows", "300", "--seed", "3"]) == 0
    truth = json.loads(capsys.readouterr().out)
    assert (truth["format"], truth["rows"]) == ("parquet", 300)
    assert pq.read_metadata(tmp_path / "l.parquet").num_rows == 300
    assert "malformed_row" not in truth["quarantined_by_rule"]  # Parquet has no short rows


GENERATED_KINDS = {
    "id": "id",
    "member_id": "id",
    "loan_amnt": "numeric",
    "term": "numeric",
    "int_rate": "numeric",
    "installment": "numeric",
    "grade": "categorical",
    "sub_grade": "high_cardinality_categorical",
    "emp_title": "high_cardinality_categorical",
    "emp_length": "categorical",
    "home_ownership": "categorical",
    "annual_inc": "numeric",
    "verification_status": "categorical",
    "issue_d": "date",
    "loan_status": "target",
    "purpose": "categorical",
    "zip_code": "high_cardinality_categorical",
    "addr_state": "high_cardinality_categorical",
    "dti": "numeric",
    "delinq_2yrs": "numeric",
    "earliest_cr_line": "date",
    "inq_last_6mths": "numeric",
    "open_acc": "numeric",
    "revol_bal": "numeric",
    "revol_util": "numeric",
    "total_acc": "numeric",
    "policy_code": "constant",
    "desc": "text",
}


def test_land_a_generated_file_quarantines_exactly_the_planted_rows(spark, settings, tmp_path):
    path = tmp_path / "LC Loans.csv"
    truth = loanfile.write_loan_file(path, 2000, seed=7)
    with path.open(newline="", encoding="utf-8") as fh:
        assert sum(1 for _ in csv.reader(fh)) == 1 + 2000  # header + records
    # seed 7: keys 17 and 1026 hold an amount in words; key 1000 is a short record
    assert truth["quarantined_by_rule"]["malformed_row"] == 1
    assert truth["unparseable_loan_amnt"] == 2

    ds = prepare.land(
        spark,
        settings,
        path,
        truth["target"],
        truth["bad_values"],
        time_col=truth["time_col"],
        run_id="r1",
    )
    assert ds.tables == {"bronze": "bronze.dataset_lc_loans", "silver": "silver.dataset_lc_loans"}
    assert {p.name: p.kind for p in ds.profiles} == GENERATED_KINDS
    counts = ds.counts()
    assert (counts.rows_read, counts.rows_used) == (2000, truth["usable"])
    assert counts.quarantined == truth["quarantined_by_rule"]
    assert counts.unparsed["loan_amnt"] == truth["unparseable_loan_amnt"]
    assert "    loan_amnt: 2 value(s) did not parse (null)" in prepare.summary(ds).splitlines()
    row = ds.data.agg(F.sum("label"), F.count("loan_amnt"), F.count("annual_inc")).first()
    # silver holds the bads, and nulls where an amount was in words or the income missing
    assert tuple(row) == (
        float(truth["bads"]),
        truth["usable"] - truth["unparseable_loan_amnt"],
        truth["usable"] - truth["missing_annual_inc"],
    )
    landed = {}
    for r in ds.quarantine.collect():
        landed[r.rule] = landed.get(r.rule, 0) + 1
    assert landed == truth["quarantined_by_rule"]
    manifest = lakehouse.read(spark, OPS_MANIFEST, settings).collect()
    assert [
        (m.run_id, m.stage, m.target, m.rows_in, m.rows_out, m.rows_quarantined) for m in manifest
    ] == [("r1", "dataset", "silver.dataset_lc_loans", 2000, truth["usable"], truth["quarantined"])]
    stages = lakehouse.read(spark, OPS_QUARANTINE, settings).select("stage").distinct().collect()
    assert [s.stage for s in stages] == ["dataset"]


def test_dates_after_the_time_column_are_left_out_as_leaks(spark, tmp_path):
    # 100 loans issued in 2015. earliest_cr_line is before every issue date; last_pymnt_d
    # after it on 60 rows (a payment made after the decision: the outcome); updated_d after
    # it on exactly 1 row (1%, a keying error the rule tolerates).
    lines = ["id,loan_status,issue_d,earliest_cr_line,last_pymnt_d,updated_d"]
    for i in range(100):
        issued = dt.date(2015, 1, 1) + dt.timedelta(days=3 * i)
        paid = issued + dt.timedelta(days=40 if i < 60 else -5)
        updated = issued + dt.timedelta(days=1 if i == 0 else -10)
        lines.append(
            f"{i},{'Charged Off' if i % 4 == 0 else 'Fully Paid'},{issued:%Y-%m-%d},"
            f"{issued.year - 5 - i % 7}-03-01,{paid:%Y-%m-%d},{updated:%Y-%m-%d}"
        )
    path = tmp_path / "dated.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bronze = prepare.read_bronze(spark, path, ingest_id="t2")
    profiles = {p.name: p for p in prepare.profile(bronze, "loan_status", (), "issue_d")}
    assert profiles["earliest_cr_line"].feature == "days_since_earliest_cr_line"
    assert profiles["updated_d"].feature == "days_since_updated_d"
    late = profiles["last_pymnt_d"]
    assert (late.kind, late.feature) == ("date", None)
    assert late.reason.endswith(
        "; not used: later than the --time-col issue_d on 60.0% of the 100 rows where both "
        "are dated, so it tells what happened after the decision (a payment, charge-off or "
        "update date would leak the outcome)"
    )
    ds = prepare.clean(bronze, "loan_status", ["Charged Off"], time_col="issue_d")
    assert ds.numeric == ["days_since_earliest_cr_line", "days_since_updated_d"]
    # Without a time column no date is a feature, and nothing is counted.
    plain = {p.name: p for p in prepare.profile(bronze, "loan_status", ())}
    assert plain["last_pymnt_d"].reason.endswith("no date to measure it from")


def test_rows_too_recent_for_their_outcome_are_left_out_and_counted(spark):
    from riskcontrol.lenderfile import evaluate

    days = ["2024-01-15", "2024-02-29", "2024-03-01", "2024-06-30", "2024-08-31", None]
    df = spark.createDataFrame(
        [(i, None if d is None else dt.date.fromisoformat(d)) for i, d in enumerate(days)],
        "id int, event_date date",
    )
    # Latest 2024-08-31; six months before it is 2024-02-29 (the month's last day, as
    # Spark's add_months): 2024-03-01 and later are too recent. A row without a date is
    # kept for the split to place, never dropped unseen.
    kept, maturity = evaluate.mature_rows(df, 6)
    assert sorted(r.id for r in kept.collect()) == [0, 1, 5]
    assert maturity["mature_through"] == "2024-02-29" and maturity["rows_immature"] == 3
    assert maturity["note"].startswith("3 rows dated after 2024-02-29 left out")
    everything, off = evaluate.mature_rows(df, 0)
    assert everything.count() == 6 and off["rows_immature"] == 0
    assert off["mature_through"] is None
    with pytest.raises(ValueError, match="--outcome-months needs --time-col"):
        evaluate.evaluate_dataset(spark, None, "x.csv", "t", ["1"], outcome_months=3)
    with pytest.raises(ValueError, match="must be 0 \\(every row\\) or more, got -1"):
        evaluate.evaluate_dataset(spark, None, "x.csv", "t", ["1"], time_col="d", outcome_months=-1)
