"""privacy-scan: a planted identifier or key is found in every kind of store; sources and
.env are not findings; the output never shows a value; a clean home exits 0."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
import sqlite3
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TEST_BRONZE_KEY, TEST_PII_KEY, make_settings

from riskcontrol import cli, privacy_scan
from riskcontrol.config import get_settings

PEOPLE = [
    # customer_id, national_id, name, mobile
    ("C1", "11010519491231002X", "王小明", "13812345678"),
    ("C2", "110105198001010037", "李四光", "13912345670"),
    ("C3", "310101199203040051", "Alexander Hamilton", "13700000001"),
]


def _lending_db(settings) -> None:
    path = settings.lending_db_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (customer_id, national_id, name, mobile)")
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", PEOPLE)


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    return buf.getvalue()


@pytest.fixture
def home(tmp_path):
    settings = make_settings(tmp_path)
    _lending_db(settings)
    # Sources and .env hold personal data and keys by design: never findings.
    _write(tmp_path / ".env", f"RISK_BRONZE_KEY={TEST_BRONZE_KEY}\n")
    _write(settings.landing_dir / "bureau" / "b.json", '{"id_number": "11010519491231002X"}')
    _write(settings.site_dir / "court" / "1.html", "<p>王小明 11010519491231002X</p>")
    return settings


def test_finds_a_planted_identifier_or_key_in_every_kind_of_store(home):
    root = Path(home.home)
    # text log: a national ID
    _write(root / "logs" / "run.log", "landing row 11010519491231002X failed\n")
    # gzip: a phone number
    _write(root / "reports" / "dump.txt.gz", gzip.compress(b"call 13912345670 back"))
    # snappy Parquet (a raw byte search would miss it): a name
    _write(
        root / "mlartifacts" / "1" / "x.parquet",
        _parquet(pa.table({"who": ["客户王小明来电"], "n": [1]})),
    )
    # zip (MLflow logs models as folders, users zip them): a latin name
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as f:
        f.writestr("model/input_example.json", '{"name": "Alexander Hamilton"}')
    _write(root / "export.zip", z.getvalue())
    # SQLite cell: a phone
    with sqlite3.connect(root / "mlflow.db") as db:
        db.execute("CREATE TABLE params (k, v)")
        db.execute("INSERT INTO params VALUES ('example', '13700000001')")
    # Delta log: the bronze key in hex, as a predicate literal would put it
    key_hex = TEST_BRONZE_KEY
    _write(
        root / "lakehouse" / "bronze" / "t" / "_delta_log" / "00000000000000000000.json",
        json.dumps({"commitInfo": {"predicate": f"aes_decrypt(v, unhex('{key_hex}'))"}}),
    )
    # a config file: the pseudonym key in base64
    _write(root / "conf" / "spark.conf", base64.b64encode(TEST_PII_KEY.encode()))
    # crawl landing JSON lines with escaped Chinese: a name
    _write(
        home.crawl_landing_dir / "c1" / "records.jsonl",
        json.dumps({"subject_name": "李四光"}, ensure_ascii=True) + "\n",
    )
    # a silver table keeping region code and birth date next to the mask
    _write(
        root / "lakehouse" / "silver" / "customers" / "part-0.parquet",
        _parquet(
            pa.table(
                {
                    "region_code": ["110105", "110105", "310101"],
                    "birth_date": [dt.date(1949, 12, 31), dt.date(1980, 1, 1), dt.date(1992, 3, 4)],
                    "masked": ["**************002X", "**************0037", "**************0051"],
                }
            )
        ),
    )

    result = privacy_scan.scan(home)

    got = sorted((f.path, f.store, f.kind) for f in result.findings)
    assert got == [
        ("conf/spark.conf", "text", "key:pii_key:base64"),
        ("data/landing/crawl/c1/records.jsonl", "json", "name"),
        ("export.zip", "zip", "name"),
        ("lakehouse/bronze/t/_delta_log/00000000000000000000.json", "json", "key:bronze_key:hex"),
        ("lakehouse/silver/customers/part-0.parquet", "parquet", "rebuildable_id"),
        ("logs/run.log", "text", "national_id"),
        ("mlartifacts/1/x.parquet", "parquet", "name"),
        ("mlflow.db", "sqlite", "phone"),
        ("reports/dump.txt.gz", "gzip", "phone"),
    ]
    text = privacy_scan.report(result)
    for _, nid, name, phone in PEOPLE:
        assert nid not in text and name not in text and phone not in text
    assert TEST_BRONZE_KEY not in text
    assert "national_id: 1****************X" in text and "9 finding(s)" in text


def test_cli_exits_1_on_findings_and_0_on_a_clean_home(home, monkeypatch, capsys):
    monkeypatch.setenv("RISK_HOME", str(home.home))
    monkeypatch.setenv("RISK_PII_KEY", TEST_PII_KEY)
    monkeypatch.setenv("RISK_BRONZE_KEY", TEST_BRONZE_KEY)
    get_settings.cache_clear()
    try:
        # Masked and pseudonymised values are not findings.
        _write(Path(home.home) / "reports" / "ok.txt", "王** **************002X 138****5678")
        assert cli.main(["privacy-scan"]) == 0
        assert "0 finding(s)" in capsys.readouterr().out
        _write(Path(home.home) / "reports" / "leak.txt", "borrower 李四光")
        assert cli.main(["privacy-scan", "--json"]) == 1
        out = json.loads(capsys.readouterr().out)
        assert [(f["path"], f["kind"], f["sample"]) for f in out["findings"]] == [
            ("reports/leak.txt", "name", "李*光")
        ]
        assert cli.main(["privacy-scan", "--exclude", str(Path(home.home) / "reports")]) == 0
    finally:
        get_settings.cache_clear()
