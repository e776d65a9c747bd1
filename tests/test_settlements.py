"""Payment-processor settlement files: the generator's messy CSV drops and their collection.

The generator's files are checked with Python's own csv module (independent of the
collect step); ``collect_settlements`` is checked on small inline files with exact
expected rows, and on a generated book, where what it quarantines must equal the faults
``generation.json`` says were injected.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from riskcontrol.collect.settlements import collect_settlements, settlement_columns
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import BRONZE_SETTLEMENTS, OPS_MANIFEST, OPS_QUARANTINE
from riskcontrol.core.runs import Run
from riskcontrol.synthetic.generate import generate
from riskcontrol.synthetic.generate import settlements as gen

SEED = 5  # at 300 customers, a seed for which every settlement fault occurs
CUSTOMERS = 300


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("settlement-book")
    generate(out, customers=CUSTOMERS, seed=SEED, chunk_size=100)
    return out


def _folder_bytes(out: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((out / "landing" / "settlements").iterdir())
    }


def _decode(raw: bytes) -> tuple[str, str]:
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", raw[3:].decode("utf-8")
    try:
        return "utf-8", raw.decode("utf-8")
    except UnicodeDecodeError:
        return "gbk", raw.decode("gbk")


def test_generated_settlements_are_deterministic_and_chunk_size_independent(book, tmp_path):
    again = tmp_path / "again"
    generate(again, customers=CUSTOMERS, seed=SEED, chunk_size=1000)
    assert _folder_bytes(again) == _folder_bytes(book)
    assert len(_folder_bytes(book)) == 26  # one file per month with a payment


def test_generated_files_are_messy_and_faults_are_counted_exactly(book):
    meta = json.loads((book / "generation.json").read_text(encoding="utf-8"))
    encodings, headers, line_ends = Counter(), set(), Counter()
    faults = Counter()
    multiline = doubled_quotes = 0
    per_file = {}
    for path in sorted((book / "landing" / "settlements").glob("*.csv")):
        raw = path.read_bytes()
        encoding, text = _decode(raw)
        encodings[encoding] += 1
        line_ends["crlf" if b"\r\n" in raw else "lf"] += 1
        doubled_quotes += '""' in text
        rows = list(csv.reader(io.StringIO(text, newline="")))
        header, body = rows[0], rows[1:]
        headers.add(tuple(header))
        per_file[path.name] = len(body)
        col = {name: i for i, name in enumerate(settlement_columns(header))}
        for row in body:
            multiline += "\n" in row[-1]
            if len(row) < 8:
                faults["settlements_short_rows"] += 1
            elif row[col["amount"]] in gen.BAD_AMOUNTS:
                faults["settlements_unparseable_amount"] += 1
            elif row[col["paid_at"]] in gen.BAD_DATES:
                faults["settlements_unparseable_date"] += 1
            elif row[col["loan_id"]] == "":
                faults["settlements_missing_loan_id"] += 1
    assert per_file == meta["files"]["settlements"]["per_file"]
    assert {k: meta["faults"][k] for k in gen.FAULT_KINDS} == dict(faults)
    assert all(faults[k] > 0 for k in gen.FAULT_KINDS)
    assert set(encodings) == {"utf-8", "utf-8-sig", "gbk"}
    assert set(line_ends) == {"crlf", "lf"}
    assert len(headers) == 3 and multiline > 0 and doubled_quotes > 0


def test_header_variants_map_to_canonical_names():
    canonical = list(gen.CANONICAL)
    assert settlement_columns(canonical) == canonical
    assert settlement_columns(gen.DIALECTS[1].header) == canonical
    assert settlement_columns(gen.DIALECTS[2].header) == [
        "settlement_id",
        "paid_at",
        "loan_id",
        "amount",
        "currency",
        "channel",
        "payer_account",
        "memo",
    ]
    with pytest.raises(ValueError, match=r"unknown titles \['Betrag'\]"):
        settlement_columns([*canonical[:3], "Betrag", *canonical[4:]])


SNAKE_UTF8 = (
    "settlement_id,loan_id,paid_at,amount,currency,channel,payer_account,memo\n"
    'S1,L1,2024-03-05 10:21:33,"1,234.50",CNY,alipay,138****5678,"Repayment L1, installment 3"\n'
    'S2,L2,2024-03-06 08:00:00,99.00,CNY,unionpay,622202******1234,"Auto-debit ""OK"""\n'
    "S3,L3,2024-03-07 09:30:00,#VALUE!,CNY,alipay,138****0000,\n"
    'S4,L4,2024-03-08 12:00:00,500.00,CNY,wechat_pay,139****1111,"Batch 001\nRef 123456"\n'
)
TITLE_BOM_CRLF = (
    '"Settlement ID","Loan No","Paid At","Amount","Currency","Channel","Payer Account","Memo"\r\n'
    '"S5","L5","2024/4/5 9:07","¥3,444.44","RMB","alipay","184****8541","Installment 1 of 12"\r\n'
    '"S6","L6","05-Apr-2024","RMB 1666.5","RMB","wechat_pay","157****9583","Batch 7"\r\n'
    '"S7","L7","2024/4/9 15:59"\r\n'
)
CHINESE_GBK = (
    "结算单号,交易时间,借据号,金额,币种,支付渠道,付款账户,备注\r\n"
    'S8,20240509,L8,3016.54元,人民币,支付宝,180****3013,"客户备注:""提前还款"""\r\n'
    'S9,2024年5月10日 9:31,L9,"￥1,707.95",人民币,银联代扣,622848******6312,"还款,第2期"\r\n'
    "S10,20240511,,100.00元,人民币,支付宝,131****1707,第1期还款\r\n"
    "S11,昨天,L11,200.00元,人民币,支付宝,131****1707,第2期还款\r\n"
)


def test_collect_settlements_parses_every_variant_and_a_rerun_lands_nothing(spark, settings):
    folder = settings.landing_dir / "settlements"
    folder.mkdir(parents=True)
    (folder / "settlement_202403.csv").write_bytes(SNAKE_UTF8.encode("utf-8"))
    (folder / "settlement_202404.csv").write_bytes(codecs.BOM_UTF8 + TITLE_BOM_CRLF.encode("utf-8"))
    (folder / "settlement_202405.csv").write_bytes(CHINESE_GBK.encode("gbk"))

    first = collect_settlements(Run(spark, settings, run_id="s1"))
    second = collect_settlements(Run(spark, settings, run_id="s2"))
    assert (first.source, first.target) == ("files:settlements", "bronze.settlements")
    manifest = lakehouse.read(spark, OPS_MANIFEST, settings).orderBy("run_id").collect()
    assert [
        (m.run_id, m.rows_in, m.rows_out, m.rows_unchanged, m.rows_quarantined) for m in manifest
    ] == [
        ("s1", 11, 7, 0, 4),
        ("s2", 11, 0, 7, 4),
    ]
    assert second.rows_out == 0

    bronze = lakehouse.read_clear(spark, BRONZE_SETTLEMENTS, settings)
    got = bronze.select(
        "settlement_id",
        "loan_id",
        F.date_format("paid_at", "yyyy-MM-dd HH:mm:ss"),
        "amount",
        "currency",
        "channel",
        "payer_account",
        "memo",
        "paid_at_raw",
        "amount_raw",
        "_ingest_id",
    ).collect()
    assert sorted((tuple(r) for r in got), key=lambda r: int(r[0][1:])) == [
        ("S1", "L1", "2024-03-05 10:21:33", 1234.5, "CNY", "alipay", "138****5678",
         "Repayment L1, installment 3", "2024-03-05 10:21:33", "1,234.50", "s1"),
        ("S2", "L2", "2024-03-06 08:00:00", 99.0, "CNY", "unionpay", "622202******1234",
         'Auto-debit "OK"', "2024-03-06 08:00:00", "99.00", "s1"),
        ("S4", "L4", "2024-03-08 12:00:00", 500.0, "CNY", "wechat_pay", "139****1111",
         "Batch 001\nRef 123456", "2024-03-08 12:00:00", "500.00", "s1"),
        ("S5", "L5", "2024-04-05 09:07:00", 3444.44, "RMB", "alipay", "184****8541",
         "Installment 1 of 12", "2024/4/5 9:07", "¥3,444.44", "s1"),
        ("S6", "L6", "2024-04-05 00:00:00", 1666.5, "RMB", "wechat_pay", "157****9583",
         "Batch 7", "05-Apr-2024", "RMB 1666.5", "s1"),
        ("S8", "L8", "2024-05-09 00:00:00", 3016.54, "人民币", "支付宝", "180****3013",
         '客户备注:"提前还款"', "20240509", "3016.54元", "s1"),
        ("S9", "L9", "2024-05-10 09:31:00", 1707.95, "人民币", "银联代扣", "622848******6312",
         "还款,第2期", "2024年5月10日 9:31", "￥1,707.95", "s1"),
    ]  # fmt: skip
    everything = lakehouse.read_clear(spark, OPS_QUARANTINE, settings)
    # each attempt keeps its rejected rows: s2 rejected the same records as s1
    by_run = {r.run_id: r["count"] for r in everything.groupBy("run_id").count().collect()}
    assert by_run == {"s1": 4, "s2": 4}
    quarantine = everything.where("run_id = 's1'").collect()
    got = sorted((json.loads(q.record)["settlement_id"], q.rule, q.reason) for q in quarantine)
    assert got == [
        ("S10", "missing_loan_id", "loan_id is empty"),
        (
            "S11",
            "unparseable_date",
            "paid_at '昨天' matches none of the formats "
            + " | ".join(
                [
                    "yyyy-MM-dd HH:mm:ss",
                    "yyyy/M/d H:mm",
                    "yyyy/M/d H:mm:ss",
                    "dd-MMM-yyyy",
                    "yyyyMMdd",
                    "yyyy'年'M'月'd'日' H:mm",
                ]
            ),
        ),  # fmt: skip
        ("S3", "unparseable_amount", "amount '#VALUE!' is not a money amount"),
        (
            "S7",
            "malformed_row",
            'record does not split into the header\'s 8 fields: "S7","L7","2024/4/9 15:59"',
        ),
    ]
    assert {q.stage for q in quarantine} == {"collect"}


def test_generated_faults_are_exactly_what_collect_quarantines(spark, settings, book):
    meta = json.loads((book / "generation.json").read_text(encoding="utf-8"))
    step = collect_settlements(Run(spark, settings, run_id="g1"), book / "landing" / "settlements")
    by_rule = dict(
        lakehouse.read(spark, OPS_QUARANTINE, settings).groupBy("rule").count().collect()
    )
    assert by_rule == {
        "malformed_row": meta["faults"]["settlements_short_rows"],
        "unparseable_amount": meta["faults"]["settlements_unparseable_amount"],
        "unparseable_date": meta["faults"]["settlements_unparseable_date"],
        "missing_loan_id": meta["faults"]["settlements_missing_loan_id"],
    }
    total = meta["files"]["settlements"]["total"]
    assert (step.rows_in, step.rows_quarantined) == (total, sum(by_rule.values()))
    assert step.rows_out == total - step.rows_quarantined
