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

from riskcontrol.cli import main
from riskcontrol.core.config import get_settings
from riskcontrol.privacy import scan

PEOPLE = [
    # customer_id, national_id, name, mobile, email
    ("C1", "11010519491231002X", "王小明", "13812345678", "wxm@example.cn"),
    ("C2", "110105198001010037", "李四光", "13912345670", "lsg@example.cn"),
    ("C3", "310101199203040051", "Alexander Hamilton", "13700000001", "ah@example.com"),
]
NEEDLES = [v for p in PEOPLE for v in p[1:]] + [TEST_BRONZE_KEY, TEST_PII_KEY]


def _lending_db(settings) -> None:
    path = settings.lending_db_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (customer_id, national_id, name, mobile, email)")
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", PEOPLE)


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    return buf.getvalue()


def _found(result) -> list[tuple[str, str, str, str]]:
    return sorted((f.path, f.store, f.kind, f.sample) for f in result.findings)


def _no_needle_in(text: str) -> None:
    for needle in NEEDLES:
        assert needle not in text


@pytest.fixture
def home(tmp_path):
    settings = make_settings(tmp_path)
    _lending_db(settings)
    # Sources and .env hold personal data and keys by design: never findings.
    _write(tmp_path / ".env", f"RISK_BRONZE_KEY={TEST_BRONZE_KEY}\n")
    _write(settings.landing_dir / "bureau" / "b.json", '{"id_number": "11010519491231002X"}')
    _write(settings.site_dir / "court" / "1.html", "<p>王小明 11010519491231002X</p>")
    _write(tmp_path / "data" / "drops" / "d.csv", "13812345678,wxm@example.cn\n")
    _write(tmp_path / ".venv" / "x.txt", TEST_PII_KEY)
    return settings


def test_finds_a_planted_identifier_or_key_in_every_kind_of_store(home):
    root = Path(home.home)
    # text log: a national ID
    _write(root / "logs" / "run.log", "landing row 11010519491231002X failed\n")
    # gzip: a phone number
    _write(root / "reports" / "dump.txt.gz", gzip.compress(b"call 13912345670 back"))
    # snappy Parquet: a name inside a longer text
    _write(
        root / "mlartifacts" / "1" / "x.parquet",
        _parquet(pa.table({"who": ["客户王小明来电"], "n": [1]})),
    )
    # zip (an exported model folder): a latin name
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as f:
        f.writestr("model/input_example.json", '{"name": "Alexander Hamilton"}')
    _write(root / "export.zip", z.getvalue())
    # SQLite cell: an e-mail
    with sqlite3.connect(root / "mlflow.db") as db:
        db.execute("CREATE TABLE params (k, v)")
        db.execute("INSERT INTO params VALUES ('contact', 'LSG@example.cn')")
    # Delta log: the bronze key in hex, as a predicate literal would put it
    _write(
        root / "lakehouse" / "bronze" / "t" / "_delta_log" / "00000000000000000000.json",
        json.dumps({"commitInfo": {"predicate": f"aes_decrypt(v, unhex('{TEST_BRONZE_KEY}'))"}}),
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
    # masked values, other people and a longer latin word are not findings
    _write(
        root / "reports" / "ok.txt",
        "王** 110**************X 138****5678 11010519491231003X Alexander Hamiltonian",
    )

    result = scan.scan(home)

    rebuild = "national ID rebuildable from region_code (region) + birth_date (birth)"
    assert _found(result) == [
        ("conf/spark.conf", "text", "key:pii_key:base64", "pii_key:base64"),
        ("data/landing/crawl/c1/records.jsonl", "json", "name", "李*光"),
        ("export.zip", "zip", "name", "A****************n"),
        (
            "lakehouse/bronze/t/_delta_log/00000000000000000000.json",
            "json",
            "key:bronze_key:hex",
            "bronze_key:hex",
        ),
        ("lakehouse/silver/customers/part-0.parquet", "parquet", "rebuildable_id", rebuild),
        ("logs/run.log", "text", "national_id", "110**************X"),
        ("mlartifacts/1/x.parquet", "parquet", "name", "王*明"),
        ("mlflow.db", "sqlite", "email", "L***@example.cn"),
        ("reports/dump.txt.gz", "gzip", "phone", "139*******0"),
    ]
    assert result.files_scanned == 10
    text = scan.report(result)
    _no_needle_in(text)
    assert text.splitlines()[-1] == "privacy-scan: 10 file(s) scanned, 9 finding(s)"


def test_a_delta_table_written_by_spark_is_read_cell_by_cell_and_its_log_too(spark, home):
    root = Path(home.home)
    rows = [("110105", dt.date(1949, 12, 31), "王小明"), ("310101", dt.date(1992, 3, 4), "王小明")]
    df = spark.createDataFrame(rows, "region string, born date, note string")
    df.coalesce(1).write.format("delta").save(str(root / "lakehouse" / "gold" / "leak"))

    found = {
        (f.path.split("/")[-1].split("-")[0], f.store, f.kind) for f in scan.scan(home).findings
    }

    # the data file (snappy Parquet) gives the name and the rebuildable pair; the Delta
    # log's column statistics (min/max) and its checksum file give the name again
    assert found == {
        ("part", "parquet", "name"),
        ("part", "parquet", "rebuildable_id"),
        ("00000000000000000000.json", "json", "name"),
        ("00000000000000000000.crc", "json", "name"),
    }


def test_byo_identifiers_archives_in_archives_and_stores_outside_the_home(tmp_path):
    settings = make_settings(tmp_path / "home", lakehouse_root=str(tmp_path / "lake"))
    Path(settings.home).mkdir()
    # no lending database: the identifiers come from the caller
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v)")
    db.execute("INSERT INTO t VALUES (?)", ("ping 13812345678",))
    _write(Path(settings.home) / "cache.db.gz", gzip.compress(db.serialize()))
    _write(tmp_path / "lake" / "x.txt", "Grace Hopper")

    result = scan.scan(settings, known=["13812345678", "Grace Hopper", "王"])

    assert _found(result) == [
        (str(tmp_path / "lake" / "x.txt"), "text", "name", "G**********r"),
        ("cache.db.gz", "gzip", "phone", "138*******8"),
    ]


def test_cli_exits_1_on_findings_and_0_on_a_clean_home(home, monkeypatch, capsys):
    monkeypatch.setenv("RISK_HOME", str(home.home))
    monkeypatch.setenv("RISK_PII_KEY", TEST_PII_KEY)
    monkeypatch.setenv("RISK_BRONZE_KEY", TEST_BRONZE_KEY)
    get_settings.cache_clear()
    try:
        assert main.main(["privacy-scan"]) == 0
        assert capsys.readouterr().out.endswith("0 finding(s)\n")

        _write(Path(home.home) / "reports" / "leak.txt", f"borrower 李四光 {TEST_BRONZE_KEY}")
        assert main.main(["privacy-scan"]) == 1
        out = capsys.readouterr()
        _no_needle_in(out.out + out.err)
        assert out.out.splitlines() == [
            "reports/leak.txt  [text]  2 finding(s)",
            "    key:bronze_key:hex: bronze_key:hex",
            "    name: 李*光",
            "privacy-scan: 1 file(s) scanned, 2 finding(s)",
        ]

        assert main.main(["privacy-scan", "--json"]) == 1
        out = capsys.readouterr().out
        _no_needle_in(out)
        assert [(f["path"], f["kind"]) for f in json.loads(out)["findings"]] == [
            ("reports/leak.txt", "key:bronze_key:hex"),
            ("reports/leak.txt", "name"),
        ]

        assert main.main(["privacy-scan", "--exclude", str(Path(home.home) / "reports")]) == 0
        capsys.readouterr()
        assert main.main(["privacy-scan", "--exclude", "/no/such/dir"]) == 2
        assert "--exclude /no/such/dir: no such file or folder" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
