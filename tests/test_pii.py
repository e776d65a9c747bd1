"""Pseudonyms and masks are exact and reproducible; ID and phone validation."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pyspark.sql import functions as F

from riskcontrol.core import landing, pii


def test_pseudonym_matches_python_hmac(spark, settings):
    df = spark.createDataFrame([("11010519491231002X",), ("张三",), (None,)], "v string")
    got = [r[0] for r in df.select(pii.pseudonym("v", settings)).collect()]
    key = settings.pii_secret()
    want = [
        hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest() if v else None
        for v in ("11010519491231002X", "张三", None)
    ]
    assert got == want


def test_masks(spark):
    df = spark.createDataFrame(
        [("110105194912310021", "13812345678", "张三丰"), ("12", "1", "李")],
        "id string, phone string, name string",
    )
    got = df.select(
        pii.mask_national_id("id"), pii.mask_phone("phone"), pii.mask_name("name")
    ).collect()
    assert [tuple(r) for r in got] == [
        ("**************0021", "138****5678", "张**"),
        ("**", "*", "李*"),  # too short to keep anything: starred whole
    ]


def test_identifiers_in_free_text_are_masked_but_other_numbers_kept(spark):
    texts = [
        "ID 11010519491231002x, 110105194912310021 and phone 13812345678.",
        "card 6222 0212 3456 7890 123, 6222021234567890123 / 4111111111111111, 138 1234 5678",
        "mail Zhang.San+x@mail.example.com.cn; order A13812345678B; loan 12000; tel 12345678901",
        None,
    ]
    df = spark.createDataFrame([(t,) for t in texts], "t string")
    got = [r[0] for r in df.select(pii.mask_identifiers("t")).collect()]
    assert got == [
        "ID **************002x, **************0021 and phone 138****5678.",
        "card **** **** **** ****, ************0123 / ************1111, 138 **** 5678",
        "mail Z***@mail.example.com.cn; order A138****5678B; loan 12000; tel 12345678901",
        None,
    ]


def test_national_id_and_mobile_validation(spark):
    df = spark.createDataFrame(
        [
            ("11010519491231002X", "13812345678"),  # valid check char X
            ("11010519491231002x", "19912345678"),  # lower-case x accepted
            ("110105194912310021", "12812345678"),  # wrong check digit; 12x not mobile
            ("1101051949123100", "1381234567"),  # too short
            (None, None),
        ],
        "id string, phone string",
    )
    got = df.select(
        F.coalesce(pii.valid_national_id("id"), F.lit(False)),
        F.coalesce(pii.valid_mobile("phone"), F.lit(False)),
    ).collect()
    assert [tuple(r) for r in got] == [
        (True, True),
        (True, True),
        (False, False),
        (False, False),
        (False, False),
    ]


def test_encryption_is_authenticated_aes_gcm_bound_to_its_column(spark, settings):
    import base64

    import pytest
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = settings.bronze_secret()
    kid = pii.key_id(key)
    values = ["110105194912310021", "张三丰", None]
    df = spark.createDataFrame([(v,) for v in values], "v string")
    aad = "bronze.t.v"
    enc = df.select(
        pii.encrypt("v", aad, settings).alias("e"), pii.encrypt("v", aad, settings).alias("again")
    )
    rows = enc.select("e", "again", pii.decrypt("e", aad, settings).alias("d")).collect()
    assert [r.d for r in rows] == values
    # Equal values encrypt equally (synthetic IV), so re-landing a row is idempotent.
    assert [r.e == r.again for r in rows[:2]] == [True, True]
    assert rows[2].e is None
    prefix = f"enc:v2:{kid}:"
    for row, value in zip(rows[:2], values[:2], strict=True):
        assert row.e.startswith(prefix) and value not in row.e
        blob = base64.b64decode(row.e.removeprefix(prefix))
        # Standard AES-256-GCM (12-byte nonce, ciphertext, 16-byte tag), "table.column"
        # as associated data: readable by any AES-GCM implementation with the key.
        assert AESGCM(key).decrypt(blob[:12], blob[12:], aad.encode()).decode() == value
        assert pii.decrypt_text(row.e, aad, settings) == value
        assert pii.encrypt_text(value, aad, settings) == row.e
    # A ciphertext copied into another column does not decrypt there.
    moved = enc.select(pii.decrypt("e", "bronze.t.other", settings)).where("e is not null")
    with pytest.raises(Exception, match="failed authentication"):
        moved.collect()
    # A flipped byte fails authentication instead of decrypting to other text.
    blob = bytearray(base64.b64decode(rows[0].e.removeprefix(prefix)))
    blob[14] ^= 1
    tampered = prefix + base64.b64encode(bytes(blob)).decode()
    bad = spark.createDataFrame([(tampered,)], "e string").select(pii.decrypt("e", aad, settings))
    with pytest.raises(Exception, match="failed authentication"):
        bad.collect()
    # A key id nobody configured says what is missing.
    with pytest.raises(pii.DecryptionError, match="RISK_BRONZE_RETIRED_KEYS"):
        pii.decrypt_text("enc:v2:00000000:AAAA", aad, settings)
    # Values landed before encryption pass through.
    assert pii.decrypt_text("plain", aad, settings) == "plain"


def test_legacy_v1_values_still_decrypt(settings):
    import base64

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = settings.bronze_secret()
    nonce = bytes(12)
    token = "enc:v1:" + base64.b64encode(nonce + AESGCM(key).encrypt(nonce, b"x", None)).decode()
    assert pii.decrypt_text(token, "bronze.t.v", settings) == "x"


def test_the_jvm_functions_give_the_python_reference_bytes(spark, tmp_path):
    """Spark's functions (the project's Java UDFs) and the plain-Python cipher must agree
    byte for byte: equal values encrypt equally across both, so a row landed before the
    change is still recognised as unchanged, and each reads the other's values."""
    import base64

    from conftest import make_settings
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    old_key = bytes(range(32))
    settings = make_settings(tmp_path, bronze_retired_keys=old_key.hex())
    old = make_settings(tmp_path, bronze_key=old_key.hex())
    aad = "bronze.t.v"
    # Equal values in a row: the same synthetic IV twice (the JDK's GCM refuses that on
    # one Cipher object unless the UDF takes a fresh one).
    values = [
        "",
        "a",
        "a",
        "110105194912310021",
        "张三丰",
        "张三丰",
        "emoji 😀\t",
        "x" * 5000,
        None,
    ]
    df = spark.createDataFrame([(v,) for v in values], "v string").coalesce(1)
    rows = df.select(
        pii.encrypt("v", aad, settings).alias("e"), pii.pseudonym("v", settings).alias("p")
    ).collect()
    assert [r.e for r in rows] == [
        None if v is None else pii.encrypt_text(v, aad, settings) for v in values
    ]
    assert [r.p for r in rows] == [
        None if v is None else pii.hmac_hex(v.encode(), settings.pii_secret()) for v in values
    ]
    # Tokens made in Python (active key, a retired key, the legacy v1 form) decrypt in Spark.
    nonce = bytes(range(12))
    legacy = (
        "enc:v1:"
        + base64.b64encode(nonce + AESGCM(old_key).encrypt(nonce, "旧".encode(), None)).decode()
    )
    tokens = [
        pii.encrypt_text("新", aad, settings),
        pii.encrypt_text("退役", aad, old),
        legacy,
        "clear text passes through",
        None,
    ]
    got = spark.createDataFrame([(t,) for t in tokens], "e string").select(
        pii.decrypt("e", aad, settings)
    )
    assert [r[0] for r in got.collect()] == ["新", "退役", "旧", "clear text passes through", None]
    # A value already sealed is never sealed twice.
    sealed = spark.createDataFrame([(tokens[0],)], "v string").select(
        pii.encrypt("v", aad, settings)
    )
    assert sealed.first()[0] == tokens[0]
    # A key id nobody configured says what is missing, from Spark as from Python.
    unknown = spark.createDataFrame([("enc:v2:00000000:AAAA",)], "e string")
    with pytest.raises(Exception, match="RISK_BRONZE_RETIRED_KEYS"):
        unknown.select(pii.decrypt("e", aad, settings)).collect()


def test_typed_columns_round_trip_through_delta(spark, settings, tmp_path):
    import datetime as dt

    df = spark.createDataFrame(
        [(1, 2.5, ["a", "b"], dt.date(2024, 1, 31), dt.datetime(2024, 1, 31, 8, 0), "x")],
        "i int, d double, a array<string>, day date, at timestamp, s string",
    )
    enc = pii.encrypt_columns(df, ["i", "d", "a", "day", "at", "s"], "bronze.t", settings)
    assert {f.dataType.simpleString() for f in enc.schema.fields} == {"string"}
    path = str(tmp_path / "t")
    enc.write.format("delta").save(path)
    stored = spark.read.format("delta").load(path)
    assert all(v.startswith("enc:v2:") for v in stored.first())
    clear = pii.decrypt_columns(stored, "bronze.t", settings)
    assert clear.schema.simpleString() == df.schema.simpleString()
    assert clear.collect() == df.collect()


def test_no_key_in_any_plan_or_delta_log(spark, settings, tmp_path):
    """The attack: keys used to be Spark literals, so plans and Delta's commitInfo held them."""
    from delta.tables import DeltaTable

    df = spark.createDataFrame([("C1", "110105194912310021")], "k string, v string")
    enc = df.select("k", pii.encrypt("v", "bronze.t.v", settings).alias("v"))
    path = str(tmp_path / "t")
    enc.write.format("delta").save(path)
    stored = spark.read.format("delta").load(path)
    # A DELETE whose condition decrypts and hashes: Delta logs its predicate.
    condition = (pii.decrypt("v", "bronze.t.v", settings) == "110105194912310021") | (
        pii.pseudonym("k", settings) == "nothing"
    )
    plan_text = stored.where(condition)._jdf.queryExecution().toString()
    ref = pii.hmac_hex(b"C1", settings.pii_secret())
    DeltaTable.forPath(spark, path).delete(pii.pseudonym("k", settings) == ref)
    assert spark.read.format("delta").load(path).count() == 0
    log = b"".join(p.read_bytes() for p in (tmp_path / "t" / "_delta_log").glob("*.json"))
    needles = pii.key_material(settings)
    assert len(needles) == 14
    for label, needle in needles:
        assert needle not in plan_text.encode(), label
        assert needle not in log, label
    assert b"pseudonym" in log  # the predicate was logged: only the UDF's name


def test_bronze_and_quarantine_hold_sensitive_fields_encrypted(spark, settings):
    from riskcontrol.collect import extracts
    from riskcontrol.core import lakehouse
    from riskcontrol.core.catalog import BRONZE_CUSTOMERS, OPS_QUARANTINE
    from riskcontrol.core.landing import Rule
    from riskcontrol.core.runs import Run

    rows = [
        ("C1", "11010519491231002X", "张三", "13812345678", "2024-01-01 00:00:00"),
        ("C2", "bad-id", "李四", "13900000000", "2024-01-01 00:00:00"),
    ]
    df = spark.createDataFrame(
        rows,
        "customer_id string, national_id string, name string, mobile string, updated_at string",
    )
    df = landing.with_provenance(df, "r1", "test", F.lit("mem://customers"))
    run = Run(spark, settings, "r1")
    rule = Rule("invalid_national_id", pii.valid_national_id("national_id"), "bad check digit")
    counts = extracts.land(run, df, BRONZE_CUSTOMERS, "test", [rule], ("customer_id",))
    assert (counts.rows_in, counts.rows_out, counts.rows_quarantined) == (2, 1, 1)
    stored = lakehouse.read(spark, BRONZE_CUSTOMERS, settings).first()
    assert stored.customer_id == "C1"
    # Deny by default: everything but the key, the timestamp and provenance is sealed.
    assert all(
        stored[c].startswith(pii.ENCRYPTED_PREFIX) for c in ("national_id", "name", "mobile")
    )
    assert stored.updated_at == "2024-01-01 00:00:00"
    clear = lakehouse.read_clear(spark, BRONZE_CUSTOMERS, settings).first()
    assert (clear.national_id, clear.name, clear.mobile) == rows[0][1:4]
    (q,) = lakehouse.read(spark, OPS_QUARANTINE, settings).collect()
    assert q.rule == "invalid_national_id"
    assert q.record.startswith(pii.ENCRYPTED_PREFIX) and q.reason.startswith(pii.ENCRYPTED_PREFIX)
    assert not any(v in q.record for v in ("C2", "bad-id", "李四", "13900000000"))
    (q,) = lakehouse.read_clear(spark, OPS_QUARANTINE, settings).collect()
    assert '"customer_id":"C2"' in q.record and q.reason == "bad check digit"
    # Decrypted (in memory, for a reviewer), the record is the row as it was read.
    assert all(f'"{v}"' in q.record for v in ("bad-id", "李四", "13900000000"))
    # Landing the same rows again changes nothing: ciphertexts are reproducible.
    again = extracts.land(
        Run(spark, settings, "r2"),
        df,
        BRONZE_CUSTOMERS,
        "test",
        [rule],
        ("customer_id", "_content_hash"),
    )
    assert (again.rows_out, again.rows_unchanged, again.rows_quarantined) == (0, 1, 1)
    # each attempt keeps its rejected row; the keyed hash of the same record is the same
    quarantined = lakehouse.read(spark, OPS_QUARANTINE, settings).orderBy("run_id").collect()
    assert [q.run_id for q in quarantined] == ["r1", "r2"]
    assert len({q.record_hash for q in quarantined}) == 1


def test_a_column_the_source_adds_later_lands_encrypted(spark, settings):
    from riskcontrol.collect import extracts
    from riskcontrol.core import lakehouse
    from riskcontrol.core.catalog import BRONZE_CUSTOMERS
    from riskcontrol.core.runs import Run

    cols = "customer_id string, national_id string, name string, mobile string, updated_at string"
    first = spark.createDataFrame([("C1", "1", "a", "2", "2024-01-01")], cols)
    extracts.land(
        Run(spark, settings, "r1"),
        landing.with_provenance(first, "r1", "test", F.lit("mem://c")),
        BRONZE_CUSTOMERS,
        "test",
        [],
        ("customer_id",),
    )
    later = spark.createDataFrame(
        [("C2", "3", "b", "4", "2024-01-02", "zhang@example.com", 5000.0)],
        cols + ", email string, income double",
    )
    extracts.land(
        Run(spark, settings, "r2"),
        landing.with_provenance(later, "r2", "test", F.lit("mem://c")),
        BRONZE_CUSTOMERS,
        "test",
        [],
        ("customer_id",),
    )
    raw = {r.customer_id: r for r in lakehouse.read(spark, BRONZE_CUSTOMERS, settings).collect()}
    assert raw["C2"].email.startswith(pii.ENCRYPTED_PREFIX)
    assert raw["C2"].income.startswith(pii.ENCRYPTED_PREFIX)
    clear = lakehouse.read_clear(spark, BRONZE_CUSTOMERS, settings).where("customer_id = 'C2'")
    row = clear.first()
    assert (row.email, row.income) == ("zhang@example.com", 5000.0)


def test_rotate_keys_reencrypts_under_the_new_key_and_drops_old_files(spark, tmp_path):
    from conftest import TEST_BRONZE_KEY, make_settings

    from riskcontrol.core import lakehouse
    from riskcontrol.core.catalog import BRONZE_CUSTOMERS
    from riskcontrol.privacy import keys

    old = make_settings(tmp_path)
    new_key = "fedcba9876543210" * 4
    new = make_settings(tmp_path, bronze_key=new_key, bronze_retired_keys=TEST_BRONZE_KEY)
    df = spark.createDataFrame(
        [("C1", "110105194912310021", "2024-01-01"), ("C2", None, "2024-01-02")],
        "customer_id string, national_id string, updated_at string",
    )
    sealed = pii.encrypt_columns(df, ["national_id"], BRONZE_CUSTOMERS.full_name, old)
    sealed.write.format("delta").save(BRONZE_CUSTOMERS.path(old))
    path = tmp_path / "lakehouse" / "bronze" / "customers"
    files_before = set(path.glob("*.parquet"))

    assert [r.stale_values for r in keys.rotate_all(spark, new, dry_run=True)] == [1]
    assert [(r.table, r.columns, r.stale_values) for r in keys.rotate_all(spark, new)] == [
        ("bronze.customers", ("national_id",), 1)
    ]
    stored = lakehouse.read(spark, BRONZE_CUSTOMERS, new).orderBy("customer_id").collect()
    assert stored[0].national_id.startswith(f"enc:v2:{pii.key_id(bytes.fromhex(new_key))}:")
    assert stored[1].national_id is None
    # The files under the old key are gone (VACUUM), and the new key alone reads the table.
    assert not files_before & set(path.glob("*.parquet"))
    alone = make_settings(tmp_path, bronze_key=new_key)
    clear = lakehouse.read_clear(spark, BRONZE_CUSTOMERS, alone).orderBy("customer_id")
    assert [r.national_id for r in clear.collect()] == ["110105194912310021", None]
    assert keys.rotate_all(spark, alone) == []  # nothing stale: nothing rewritten
    # The old key alone can no longer read it, and says which variable to set.
    with pytest.raises(Exception, match="RISK_BRONZE_RETIRED_KEYS"):
        lakehouse.read_clear(spark, BRONZE_CUSTOMERS, old).collect()
