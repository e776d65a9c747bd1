"""Bring-your-own-extract: reading, parsing, type inference, mappings and landing in bronze.

Small inline files in ``tmp_path``, exact expected values. Spark actions are few: one
select for every parser, one inference, and five ingests (a CSV twice, a GBK file with
a mapping, Parquet, JSON lines).
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from riskcontrol.core import lakehouse, readers, values
from riskcontrol.core.catalog import OPS_MANIFEST, OPS_QUARANTINE
from riskcontrol.core.runs import Run
from riskcontrol.core.values import ColumnType
from riskcontrol.lenderfile import land
from riskcontrol.lenderfile.land import MappingError

PROJECT = Path(__file__).resolve().parents[1]

# --- pure helpers -----------------------------------------------------------------------


def test_headers_become_unique_snake_case():
    assert readers.normalize_headers(
        [
            "\ufeffLoan Amount",
            "loanAmnt",
            "ID",
            "id",
            "",
            "借据号",
            "2nd Lien",
            "Int. Rate (%)",
            "loan_amount",
        ]
    ) == [
        "loan_amount",
        "loan_amnt",
        "id",
        "id_2",
        "column_5",
        "借据号",
        "c_2nd_lien",
        "int_rate",
        "loan_amount_2",
    ]


def test_encoding_and_multiline_detection(tmp_path):
    text = 'id,memo\n1,"line one\nline two"\n2,"say ""hi"""\n3,¥5\n'
    (tmp_path / "bom.csv").write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    (tmp_path / "utf8.csv").write_bytes(text.encode("utf-8"))
    (tmp_path / "gbk.csv").write_bytes("编号,备注\n1,客户说：“你好”\n".encode("gbk"))
    (tmp_path / "flat.csv").write_bytes(b'id,memo\n1,"a, b"\n2,"say ""hi"""\n')
    assert readers.detect_encoding(tmp_path / "bom.csv") == "utf-8-sig"
    assert readers.detect_encoding(tmp_path / "utf8.csv") == "utf-8"
    assert readers.detect_encoding(tmp_path / "gbk.csv") == "gb18030"
    assert readers.has_multiline_records(tmp_path / "utf8.csv")
    assert not readers.has_multiline_records(tmp_path / "flat.csv")
    sniffed = readers.sniff_csv(tmp_path / "gbk.csv")
    assert (sniffed.header, sniffed.delimiter) == (("编号", "备注"), ",")
    (tmp_path / "semi.csv").write_text('a;"b;c";d\n1;2;3\n', encoding="utf-8")
    assert readers.sniff_csv(tmp_path / "semi.csv").header == ("a", "b;c", "d")


def test_date_format_shapes():
    assert values.format_regex("d-MMM-yy") == r"^\d{1,2}-[A-Za-z]{3}-\d{2}$"
    assert values.format_regex("yyyy-MM-dd HH:mm:ss[.SSSSSS]") == (
        r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?$"
    )
    assert values.format_regex("yyyy'年'M'月'd'日'") == r"^\d{4}年\d{1,2}月\d{1,2}日$"


def test_type_decision_rules():
    base = {"n": 100, "boolean": 0, "integer": 0, "leading_zero": 0, "double": 0}
    base |= {"percent": 0, "money": 0, "date:any": 0, "timestamp:any": 0}
    base |= {f"date:{f}": 0 for f in values.DATE_FORMATS}
    base |= {f"timestamp:{f}": 0 for f in values.TIMESTAMP_FORMATS}
    ints = base | {"integer": 98, "double": 98, "money": 98}
    assert land.decide_type(ints) == (ColumnType("integer"), 98)
    assert land.decide_type(ints | {"integer": 97}) == (ColumnType("double"), 98)
    assert land.decide_type(ints | {"leading_zero": 3}) == (ColumnType("string"), 100)
    assert land.decide_type(base | {"n": 0}) == (ColumnType("string"), 0)
    mixed = base | {"date:MMM-yyyy": 60, "date:MMM-yy": 40, "date:any": 100}
    assert land.decide_type(mixed) == (ColumnType("date", ("MMM-yyyy", "MMM-yy")), 100)


def test_mapping_validation_and_the_documented_example():
    example = land.load_mapping(PROJECT / "infra" / "examples" / "mapping.yaml")
    assert example.key == ("id",)
    assert example.columns["earliest_cr_line"] == ColumnType(
        "date", ("MMM-yyyy", "dd-MMM-yy", "MMM-yy")
    )
    assert example.rename["loan_amnt"] == "loan_amount"
    with pytest.raises(MappingError, match=r"unknown keys \['colums'\]"):
        land.parse_mapping({"colums": {}})
    with pytest.raises(MappingError, match="unknown type 'dollars'"):
        land.parse_mapping({"columns": {"x": "dollars"}})
    with pytest.raises(MappingError, match="formats apply to date and timestamp only"):
        land.parse_mapping({"columns": {"x": {"type": "money", "format": "x"}}})


def test_cli_parser_has_help_and_examples():
    parser = argparse.ArgumentParser(prog="riskctl")
    sub = land.add_ingest_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ingest-file", "x.csv", "--table", "t", "--sample-rows", "0"])
    assert (args.path, args.table, args.sample_rows, args.fn) == (
        "x.csv",
        "t",
        0,
        land.cmd_ingest_file,
    )
    assert "riskctl ingest-file loans.csv --table lc_loans" in sub.format_help()


# --- parsing and inference on Spark -----------------------------------------------------

PARSE_CASES = {
    "money": [
        ("$60,000.00 ", "60000.0"),
        ("¥1,234.50", "1234.5"),
        ("1,234.50", "1234.5"),
        ("RMB 1234.5", "1234.5"),
        ("1234.50元", "1234.5"),
        ("￥1,234.50", "1234.5"),
        ("(12.50)", "-12.5"),
        ("-$5", "-5.0"),
        ("US$ 7", "7.0"),
        ("1.234,50", None),
        ("12O.5", None),
        ("1,23", None),
    ],
    "percent": [("13.56%", "0.1356"), ("7%", "0.07"), (" 0.5 %", "0.005"), ("13.56", None)],
    "date": [
        ("28-Feb-97", "1997-02-28"),
        ("Dec-2015", "2015-12-01"),
        ("Jan-85", "1985-01-01"),
        ("Feb-68", "1968-02-01"),  # not 2068: more than a year ahead
        ("2024/3/5", "2024-03-05"),
        ("20240305", "2024-03-05"),
        ("05-Mar-2024", "2024-03-05"),
        ("2024年3月5日", "2024-03-05"),
        ("2024-02-30", None),
        ("62220305", None),
    ],
    "timestamp": [
        ("2024-03-05 10:21:33", "2024-03-05 10:21:33"),
        ("2024/3/5 10:21", "2024-03-05 10:21:00"),
        ("2024-03-05T10:21:33+08:00", "2024-03-05 02:21:33"),
        ("2024年3月5日 10:21", "2024-03-05 10:21:00"),
        ("20240305102133", "2024-03-05 10:21:33"),
        ("2024-03-05", None),
    ],
    "boolean": [("Y", "true"), ("no", "false"), ("TRUE", "true"), ("是", "true"), ("0", None)],
    "integer": [("1077501", "1077501"), ("-3", "-3"), (" 7 ", "7"), ("1.5", None)],
    "double": [("1.5", "1.5"), ("-2", "-2.0"), ("1e3", "1000.0"), (".5", "0.5"), ("1,5", None)],
}


def test_parsers_give_exact_values_and_null_tokens_are_null(spark):
    rows = [(kind, raw) for kind, cases in PARSE_CASES.items() for raw, _ in cases]
    rows += [("null", token) for token in ("NA", "n/a", "", " N/A ", "null", None)]
    df = spark.createDataFrame(rows, "kind string, raw string")
    raw = F.col("raw")
    parsed = {
        kind: values.typed_value(raw, ColumnType(kind)).cast("string")
        for kind in PARSE_CASES
        if kind not in ("date", "timestamp")
    }
    parsed["date"] = values.typed_value(raw, ColumnType("date")).cast("string")
    parsed["timestamp"] = F.date_format(
        values.typed_value(raw, ColumnType("timestamp")), "yyyy-MM-dd HH:mm:ss"
    )
    got = df.select(
        "kind",
        "raw",
        values.is_null_token(raw).alias("null"),
        *[v.alias(k) for k, v in parsed.items()],
    ).collect()
    for r in got:
        if r.kind == "null":
            assert r.null and all(r[k] is None for k in PARSE_CASES), r
        else:
            assert not r.null, r
    results = {(r.kind, r.raw): r[r.kind] for r in got if r.kind != "null"}
    expected = {(k, raw): want for k, cases in PARSE_CASES.items() for raw, want in cases}
    assert results == expected


def test_inference_picks_the_expected_type_per_column(spark):
    n = 100
    rows = [
        (
            str(i),
            f"{i:03d}",
            f"${i * 1000:,.2f} " if i % 2 else str(i * 10),
            f"{i / 7:.2f}%",
            f"{i / 4}",
            "Dec-2015",
            "Jan-85" if i % 2 else "Feb-2001",
            f"2024-03-05 10:{i % 60:02d}:33",
            "Y" if i % 3 else "N",
            f"free text {i}, with a comma",
            "x" if i == 50 else str(i),
            "NA" if i % 2 else "",
            "20240305",
        )
        for i in range(1, n + 1)
    ]
    cols = [
        "id",
        "code",
        "amount",
        "rate",
        "ratio",
        "issued",
        "opened",
        "updated",
        "flag",
        "note",
        "dirty_int",
        "empty",
        "ymd",
    ]
    df = spark.createDataFrame(rows, ", ".join(f"{c} string" for c in cols))
    got = land.infer_types(df, cols)
    assert {c: inf.type.describe() for c, inf in got.items()} == {
        "id": "integer",
        "code": "string",
        "amount": "money",
        "rate": "percent",
        "ratio": "double",
        "issued": "date (MMM-yyyy)",
        "opened": "date (MMM-yyyy | MMM-yy)",
        "updated": "timestamp (yyyy-MM-dd HH:mm:ss[.SSSSSS])",
        "flag": "boolean",
        "note": "string",
        "dirty_int": "integer",
        "empty": "string",
        "ymd": "date (yyyyMMdd)",
    }
    assert (got["dirty_int"].parsed, got["dirty_int"].non_null) == (99, 100)
    assert got["empty"].non_null == 0
    assert got["amount"].example in {r[2].strip() for r in rows}


# --- ingest end to end ------------------------------------------------------------------

LOANS_CSV = (
    "ID,Loan Amount,Int Rate,Issue D,Memo,Grade,Verified\r\n"
    '1,"$1,000.00 ",10.5%,Dec-2015,"He said ""hi"", then\nleft",A,Y\r\n'
    "2,$250.00,NA,Jan-2016,plain,B,N\r\n"
    '3,"$2,500.00",7%,Feb-2016,,C,Y\r\n'
    "4,12O.00,8%,Mar-2016,typo,A,N\r\n"
    "5,$30.00,9%\r\n"
)


def _manifest(spark, settings):
    rows = lakehouse.read(spark, OPS_MANIFEST, settings).orderBy("run_id").collect()
    return [
        (m.run_id, m.rows_in, m.rows_out, m.rows_unchanged, m.rows_duplicate)
        + (m.rows_quarantined, m.rows_rescued)
        for m in rows
    ]


def test_csv_lands_typed_quarantines_bad_rows_and_a_rerun_lands_nothing(spark, settings, tmp_path):
    path = tmp_path / "loans.csv"
    path.write_bytes(LOANS_CSV.encode("utf-8"))
    first = land.ingest_file(Run(spark, settings, run_id="i1"), path, "lc_loans", threshold=0.75)
    assert {c: i.type.describe() for c, i in first.types.items()} == {
        "id": "integer",
        "loan_amount": "money",
        "int_rate": "percent",
        "issue_d": "date (MMM-yyyy)",
        "memo": "string",
        "grade": "string",
        "verified": "boolean",
    }
    assert first.key == ("id",)
    # "12O.00" (a letter O) is no money amount: the row lands, the value is rescued
    assert first.quarantined_by_rule == {"malformed_row": 1}
    assert first.rescued_by_column == {"loan_amount": 1}
    again = land.ingest_file(Run(spark, settings, run_id="i2"), path, "lc_loans", threshold=0.75)
    assert _manifest(spark, settings) == [("i1", 5, 4, 0, 0, 1, 1), ("i2", 5, 0, 4, 0, 1, 1)]
    assert again.counts.source == str(path) and again.counts.stage == "ingest"

    bronze = lakehouse.read(spark, first.table, settings)
    assert [f"{f.name} {f.dataType.simpleString()}" for f in bronze.schema][:8] == [
        "id bigint",
        "loan_amount double",
        "int_rate double",
        "issue_d date",
        "memo string",
        "grade string",
        "verified boolean",
        "_rescued_data map<string,string>",
    ]
    got = sorted(tuple(r)[:8] + (r._ingest_id, r._source) for r in bronze.collect())
    assert got == [
        (1, 1000.0, 0.105, dt.date(2015, 12, 1), 'He said "hi", then\nleft', "A", True, None)
        + ("i1", "file.lc_loans"),
        (2, 250.0, None, dt.date(2016, 1, 1), "plain", "B", False, None) + ("i1", "file.lc_loans"),
        (3, 2500.0, 0.07, dt.date(2016, 2, 1), None, "C", True, None) + ("i1", "file.lc_loans"),
        (4, None, 0.08, dt.date(2016, 3, 1), "typo", "A", False, {"loan_amount": "12O.00"})
        + ("i1", "file.lc_loans"),
    ]
    # every attempt keeps its own rejected rows: as many as its manifest row counts
    quarantine = lakehouse.read_clear(spark, OPS_QUARANTINE, settings).orderBy("run_id").collect()
    assert [(q.run_id, q.stage, q.target, q.rule, q.reason) for q in quarantine] == [
        (
            run_id,
            "ingest",
            "bronze.lc_loans",
            "malformed_row",
            "record does not split into the header's fields: 5,$30.00,9%",
        )
        for run_id in ("i1", "i2")
    ]
    record = json.loads(quarantine[0].record)
    assert (record["id"], record["__corrupt"]) == ("5", "5,$30.00,9%")
    assert quarantine[0].source_uri.endswith("loans.csv")


PARTNER_MAPPING = """\
delimiter: ";"
rename: {借据号: loan_id, 客户: customer_name, 放款金额: amount, 放款日期: disbursed, 状态: status}
drop: [备注]
columns:
  amount: money
  disbursed: {type: date, format: "yyyy/M/d"}
key: [loan_id]
null_tokens: ["", "-"]
infer: false
"""


def test_gbk_file_with_a_mapping(spark, settings, tmp_path):
    path = tmp_path / "partner.csv"
    path.write_bytes(
        (
            "借据号;客户;放款金额;放款日期;状态;备注\r\n"
            'L001;张三;"1,200.50元";2024/3/5;正常;-\r\n'
            "L002;李四;￥800.00;2024/3/6;逾期;首期未还\r\n"
            "L003;王五;-;2024/3/7;正常;x\r\n"
        ).encode("gbk")
    )
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(PARTNER_MAPPING, encoding="utf-8")
    mapping = land.load_mapping(mapping_file)
    result = land.ingest_file(Run(spark, settings, run_id="m1"), path, "partner", mapping)
    assert result.details[0].startswith("encoding gb18030; delimiter ';'")
    assert result.key == ("loan_id",)
    assert (result.counts.rows_in, result.counts.rows_out) == (3, 3)
    bronze = lakehouse.read(spark, result.table, settings)
    assert [f"{f.name} {f.dataType.simpleString()}" for f in bronze.schema][:5] == [
        "loan_id string",
        "customer_name string",
        "amount double",
        "disbursed date",
        "status string",
    ]
    # customer_name is a person's name (pii_detect): encrypted at rest, clear when read.
    assert all(r.customer_name.startswith("enc:v2:") for r in bronze.collect())
    bronze = lakehouse.read_clear(spark, result.table, settings)
    assert sorted(tuple(r)[:5] for r in bronze.collect()) == [
        ("L001", "张三", 1200.5, dt.date(2024, 3, 5), "正常"),
        ("L002", "李四", 800.0, dt.date(2024, 3, 6), "逾期"),
        ("L003", "王五", None, dt.date(2024, 3, 7), "正常"),
    ]

    bad = land.parse_mapping({"rename": {"loan_amnt": "amount"}}, "bad.yaml")
    with pytest.raises(MappingError) as err:
        land.ingest_file(Run(spark, settings, run_id="m2"), path, "partner", bad)
    assert str(err.value) == (
        "bad.yaml: column(s) ['loan_amnt'] (rename/drop) are not in the file; its columns "
        "are: 借据号, 客户, 放款金额, 放款日期, 状态, 备注"
    )
    with pytest.raises(MappingError, match=r"\['amount'\] \(columns/key\) are not in the file"):
        land.ingest_file(
            Run(spark, settings, run_id="m3"),
            path,
            "partner",
            land.parse_mapping({"columns": {"amount": "money"}}),
        )


def test_parquet_and_json_lines_inputs(spark, settings, tmp_path):
    pq.write_table(
        pa.table(
            {
                "LoanId": ["P1", "P2"],
                "Amount": [100.5, 200.0],
                "Opened": ["2024-01-05", "2024-02-06"],
                "Rate": ["5%", "6.5%"],
            }
        ),
        tmp_path / "loans.parquet",
    )
    result = land.ingest_file(Run(spark, settings, run_id="p1"), tmp_path / "loans.parquet", "pq")
    assert result.key == ("loan_id",)
    got = lakehouse.read(spark, result.table, settings).orderBy("loan_id").collect()
    assert [tuple(r)[:4] for r in got] == [
        ("P1", 100.5, dt.date(2024, 1, 5), 0.05),
        ("P2", 200.0, dt.date(2024, 2, 6), 0.065),
    ]

    (tmp_path / "events.jsonl").write_text(
        '{"id": 1, "Event Type": "login", "ts": "2024-03-05 10:21:33", "props": {"a": 1}}\n'
        '{"id": 2, "Event Type": "apply", "ts": "2024-03-06 11:00:00", "props": {"a": 2}}\n'
        '{"id": 3, "Event Type": \n',
        encoding="utf-8",
    )
    result = land.ingest_file(Run(spark, settings, run_id="j1"), tmp_path / "events.jsonl", "ev")
    assert {c: i.type.type for c, i in result.types.items()} == {
        "event_type": "string",
        "ts": "timestamp",
    }
    assert (result.counts.rows_in, result.counts.rows_out, result.counts.rows_quarantined) == (
        3,
        2,
        1,
    )
    bronze = lakehouse.read(spark, result.table, settings)
    got = bronze.select(
        "id", "event_type", F.date_format("ts", "yyyy-MM-dd HH:mm:ss"), "props.a"
    ).orderBy("id")
    assert [tuple(r) for r in got.collect()] == [
        (1, "login", "2024-03-05 10:21:33", 1),
        (2, "apply", "2024-03-06 11:00:00", 2),
    ]
    (q,) = (
        lakehouse.read_clear(spark, OPS_QUARANTINE, settings)
        .where("target = 'bronze.ev'")
        .collect()
    )
    assert (q.rule, q.reason) == (
        "malformed_row",
        'not a complete JSON record: {"id": 3, "Event Type": ',
    )
