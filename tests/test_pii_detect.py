"""Files the user brings: personal columns detected by name and value shape, encrypted in
bronze, never features unless allowed, erasable by their subject column."""

from __future__ import annotations

import csv
import hashlib
import hmac
from pathlib import Path

import pytest
from conftest import TEST_PII_KEY
from lakescan import file_text
from pyspark.sql import types as T

from riskcontrol.core import lakehouse, pii
from riskcontrol.core.runs import Run
from riskcontrol.lenderfile import pii_detect, prepare
from riskcontrol.lenderfile.land import ingest_file
from riskcontrol.synthetic.generate import id_check_digit


def _nid(i: int) -> str:
    first17 = f"1101051980010{i:04d}"
    return first17 + id_check_digit(first17)


def _luhn(first15: str) -> str:
    """A 16-digit number whose last digit makes the Luhn sum a multiple of 10."""
    total = 0
    for i, ch in enumerate(reversed(first15)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return first15 + str((10 - total % 10) % 10)


def _not_luhn(first15: str) -> str:
    good = _luhn(first15)
    return good[:-1] + str((int(good[-1]) + 1) % 10)


def test_luhn_helper_matches_known_card_numbers():
    # Published test numbers (Visa, MasterCard) and the textbook Luhn example.
    assert _luhn("411111111111111") == "4111111111111111"
    assert _luhn("555555555555444") == "5555555555554444"
    assert _luhn("7992739871") == "79927398713"


def test_luhn_check_as_a_spark_column(spark):
    values = ["4111111111111111", "4111111111111112", "79927398713", "0", "12a4", None]
    df = spark.createDataFrame([(v,) for v in values], "v string")
    got = [r.ok for r in df.select(pii_detect.luhn_valid(df.v).alias("ok")).collect()]
    assert got == [True, False, True, True, False, False]  # null: not a card number


COLUMNS = [
    "id_card",
    "phone",
    "姓名",
    "email",
    "card_no",
    "c7",  # e-mails under a name that says nothing
    "ssn",
    "loan_amnt",
    "product_name",
    "emp_title",
    "addr_state",
    "member_id",
    "notes",
    "card",  # card numbers under a name that says nothing: Luhn-valid
    "order_no",  # 16-digit order numbers: the card shape, but no valid Luhn digit
    "借款人",  # "borrower": Chinese names
    "city",  # two Han characters, not a person
]


def _rows(n: int = 20) -> list[tuple]:
    return [
        (
            _nid(i),
            f"1381234{i:04d}",
            "王小明" if i % 2 else "李四",
            f"user{i}@example.com",
            f"6222021234{i:06d}",
            f"x{i}@mail.example.org",
            f"{100000000 + i}",  # a 9-digit SSN: numeric-looking, personal by its name
            f"{1000 + 10 * i}",
            "cash loan",
            "teacher",
            "CA",
            f"M{i:05d}",
            "called back on 13812340001" if i == 3 else "no answer",
            _luhn(f"62212600000{i:04d}"),
            _not_luhn(f"20240101000{i:04d}"),
            ["王小明", "欧阳娜娜", "李四"][i % 3],
            ["北京", "上海"][i % 2],
        )
        for i in range(n)
    ]


def test_personal_columns_are_found_by_name_and_by_value_shape(spark):
    df = spark.createDataFrame(_rows(), ", ".join(f"`{c}` string" for c in COLUMNS))
    found = pii_detect.detect(df)
    assert [(d.column, d.kind) for d in found] == [
        ("id_card", "national_id"),
        ("phone", "phone"),
        ("姓名", "name"),
        ("email", "email"),
        ("card_no", "card"),
        ("c7", "email"),
        ("ssn", "national_id"),
        ("card", "card"),
        ("借款人", "name"),
    ]
    reasons = {d.column: d.reason for d in found}
    assert reasons["card"] == (
        "card by its values (100% of 20 sampled are 16-19 digit card numbers with a valid "
        "Luhn check digit)"
    )
    assert reasons["借款人"] == "name by its values (100% of 20 sampled are Chinese names)"
    assert reasons["姓名"] == "name by its name and its values (100% Chinese names)"
    assert reasons["id_card"] == (
        "national_id by its name and its values (100% national IDs with a valid check character)"
    )
    assert reasons["c7"] == "email by its values (100% of 20 sampled are e-mail addresses)"
    # The user corrects both ways.
    fixed = pii_detect.detect(df, force=["emp_title"], exempt=["c7", "ssn"])
    assert [d.column for d in fixed] == [
        "id_card",
        "phone",
        "姓名",
        "email",
        "card_no",
        "emp_title",
        "card",
        "借款人",
    ]
    with pytest.raises(ValueError, match="--pii/--not-pii name columns the file does not have: x"):
        pii_detect.detect(df, force=["x"])


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("first_name", "name"),
        ("Borrower_Name", "name"),
        ("product_name", None),
        ("loan_name", None),
        ("home_address", "address"),
        ("addr_state", None),
        ("e_mail", "email"),
        ("mobile_no", "phone"),
        ("hotel_rating", None),
        ("身份证号", "national_id"),
        ("bank_account", "card"),
        ("ip_address", "ip"),
        ("member_id", None),
    ],
)
def test_column_names(name, kind):
    assert pii_detect.kind_by_name(name) == kind


def _csv(path: Path, n: int = 30) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ssn", "full_name", "email", "loan_amnt", "grade", "loan_status"])
        for i in range(n):
            w.writerow(
                [
                    f"{200000000 + i}",
                    f"Alexander Hamilton{i}",
                    f"a{i}@example.com",
                    f"{1000 + 100 * i}",
                    "AB"[i % 2],
                    "Charged Off" if i % 3 == 0 else "Fully Paid",
                ]
            )


def test_evaluate_dataset_files_land_personal_columns_encrypted_and_never_as_features(
    spark, settings, tmp_path
):
    path = tmp_path / "applicants.csv"
    _csv(path)
    said = []
    ds = prepare.land(
        spark, settings, path, "loan_status", ["Charged Off"], run_id="r1", progress=said.append
    )
    kinds = {p.name: p.kind for p in ds.profiles}
    assert kinds == {
        "ssn": "personal",
        "full_name": "personal",
        "email": "personal",
        "loan_amnt": "numeric",
        "grade": "categorical",
        "loan_status": "target",
    }
    assert (ds.numeric, ds.categorical) == (["loan_amnt"], ["grade"])
    assert said[1] == (
        "personal columns: ssn (national_id by its name); full_name (name by its name); "
        "email (email by its name and its values (100% e-mail addresses)) -- encrypted in "
        "bronze, pseudonymised in silver (ssn_ref, full_name_ref, email_ref)"
    )
    bronze = lakehouse.read(
        spark, prepare.dataset_table("bronze", "applicants", T.StructType([])), settings
    )
    row = bronze.orderBy("_row_id").first()
    assert all(row[c].startswith(pii.ENCRYPTED_PREFIX) for c in ("ssn", "full_name", "email"))
    assert row.loan_amnt == "1000"
    # Silver: the keyed pseudonym of each personal value, the same HMAC as plain Python's.
    silver = ds.data.orderBy("_row_id").collect()
    assert silver[0].asDict().keys() == {
        "_row_id",
        "label",
        "loan_amnt",
        "grade",
        "ssn_ref",
        "full_name_ref",
        "email_ref",
    }
    key = settings.pii_secret()
    assert [(r.ssn_ref, r.full_name_ref, r.email_ref) for r in silver[:2]] == [
        (
            pii.hmac_hex(f"{200000000 + i}".encode(), key),
            pii.hmac_hex(f"Alexander Hamilton{i}".encode(), key),
            pii.hmac_hex(f"a{i}@example.com".encode(), key),
        )
        for i in range(2)
    ]
    assert silver[1].ssn_ref == hmac.new(key, b"200000001", hashlib.sha256).hexdigest()
    # No clear value in any file of either table (nor the quarantine, the manifest):
    # Parquet cells decoded, Delta logs unescaped, and every file's raw bytes.
    root = Path(settings.lakehouse_root)
    clear = ("200000007", "Hamilton", "a7@example")
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any("dataset_applicants" in str(p) and p.suffix == ".parquet" for p in files)
    leaked = [
        str(p.relative_to(root))
        for p in files
        if any(v in file_text(p) or v.encode() in p.read_bytes() for v in clear)
    ]
    assert leaked == []
    # Opted in per column, it is a feature (and still encrypted in bronze).
    ds = prepare.land(
        spark,
        settings,
        path,
        "loan_status",
        ["Charged Off"],
        run_id="r2",
        allow_pii_features=["ssn"],
    )
    assert {p.name: p.kind for p in ds.profiles}["ssn"] == "numeric"
    assert ds.numeric == ["ssn", "loan_amnt"]


def test_ingest_file_encrypts_detected_columns_and_records_the_subject_column(
    spark, settings, tmp_path
):
    path = tmp_path / "partner.csv"
    path.write_text(
        "customer_id,mobile,amount\nCUST-1,13812345678,100\nCUST-2,13912345678,200\n",
        encoding="utf-8",
    )
    run = Run(spark, settings, "r1")
    result = ingest_file(run, path, "partner", subject_column="customer_id")
    # The rescued values of a row may hold what its personal columns hold: encrypted too.
    assert result.table.sensitive == ("mobile", "_rescued_data")
    stored = {r.customer_id: r for r in lakehouse.read(spark, result.table, settings).collect()}
    assert stored["CUST-1"].mobile.startswith(pii.ENCRYPTED_PREFIX)
    clear = lakehouse.read_clear(spark, result.table, settings).orderBy("customer_id").collect()
    assert [(r.customer_id, r.mobile) for r in clear] == [
        ("CUST-1", 13812345678),  # typed as the file's column was inferred
        ("CUST-2", 13912345678),
    ]
    from riskcontrol.privacy import erase

    assert [(t.full_name, t.subject_column) for t in erase.user_tables(spark, settings)] == [
        ("bronze.partner", "customer_id")
    ]
    assert erase.erase_customer(spark, settings, "CUST-1", "dpo", "t").rows_deleted == {
        "bronze.partner": 1
    }
    assert [r.customer_id for r in lakehouse.read(spark, result.table, settings).collect()] == [
        "CUST-2"
    ]
    from riskcontrol.core.catalog import OPS_ERASURES

    (audit,) = lakehouse.read(spark, OPS_ERASURES, settings).collect()
    assert (
        audit.subject_ref == hmac.new(TEST_PII_KEY.encode(), b"CUST-1", hashlib.sha256).hexdigest()
    )
