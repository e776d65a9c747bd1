"""Pseudonyms and masks are exact and reproducible; ID and phone validation."""

from __future__ import annotations

import hashlib
import hmac

from pyspark.sql import functions as F

from riskcontrol import pii


def test_hmac_matches_python_hmac_for_short_and_long_keys(spark):
    df = spark.createDataFrame([("11010519491231002X",), ("张三",), (None,)], "v string")
    for key in (b"k", b"x" * 100):
        got = [r[0] for r in df.select(pii.hmac_sha256("v", key)).collect()]
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
        ("110***********0021", "138****5678", "张**"),
        ("12", "1", "李*"),
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


KEY32 = bytes(range(32))


def test_encryption_is_authenticated_aes_gcm_readable_outside_spark(spark):
    import base64

    import pytest
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    values = ["110105194912310021", "张三丰", None]
    df = spark.createDataFrame([(v,) for v in values], "v string")
    enc = df.select(pii.encrypt("v", KEY32).alias("e"), pii.encrypt("v", KEY32).alias("again"))
    rows = enc.select("e", "again", pii.decrypt("e", KEY32).alias("d")).collect()
    assert [r.d for r in rows] == values
    # Equal values encrypt equally (synthetic IV), so re-landing a row is idempotent.
    assert [r.e == r.again for r in rows[:2]] == [True, True]
    assert rows[2].e is None
    for row, value in zip(rows[:2], values[:2], strict=True):
        assert row.e.startswith(pii.ENCRYPTED_PREFIX) and value not in row.e
        blob = base64.b64decode(row.e.removeprefix(pii.ENCRYPTED_PREFIX))
        # Standard AES-256-GCM: 12-byte IV, then ciphertext and 16-byte tag.
        assert AESGCM(KEY32).decrypt(blob[:12], blob[12:], None).decode() == value
    # A flipped byte fails authentication instead of decrypting to other text.
    blob = bytearray(base64.b64decode(rows[0].e.removeprefix(pii.ENCRYPTED_PREFIX)))
    blob[14] ^= 1
    tampered = pii.ENCRYPTED_PREFIX + base64.b64encode(bytes(blob)).decode()
    bad = spark.createDataFrame([(tampered,)], "e string").select(pii.decrypt("e", KEY32))
    with pytest.raises(Exception, match="(?i)decrypt|tag|AES"):
        bad.collect()
    with pytest.raises(ValueError, match="32 bytes"):
        pii.encrypt("v", b"short")


def test_bronze_and_quarantine_hold_sensitive_fields_encrypted(spark, settings):
    from riskcontrol import collect, lakehouse
    from riskcontrol.catalog import BRONZE_CUSTOMERS, OPS_QUARANTINE
    from riskcontrol.ops import Rule, Run

    rows = [
        ("C1", "11010519491231002X", "张三", "13812345678", "2024-01-01 00:00:00"),
        ("C2", "bad-id", "李四", "13900000000", "2024-01-01 00:00:00"),
    ]
    df = spark.createDataFrame(
        rows,
        "customer_id string, national_id string, name string, mobile string, updated_at string",
    )
    df = collect.with_provenance(df, "r1", "test", F.lit("mem://customers"))
    run = Run(spark, settings, "r1")
    rule = Rule("invalid_national_id", pii.valid_national_id("national_id"), "bad check digit")
    counts = collect.land(run, df, BRONZE_CUSTOMERS, "test", [rule], ("customer_id",))
    assert (counts.rows_in, counts.rows_out, counts.rows_quarantined) == (2, 1, 1)
    stored = lakehouse.read(spark, BRONZE_CUSTOMERS, settings).first()
    assert stored.customer_id == "C1"
    assert all(
        stored[c].startswith(pii.ENCRYPTED_PREFIX) for c in ("national_id", "name", "mobile")
    )
    clear = lakehouse.read_clear(spark, BRONZE_CUSTOMERS, settings).first()
    assert (clear.national_id, clear.name, clear.mobile) == rows[0][1:4]
    (q,) = lakehouse.read(spark, OPS_QUARANTINE, settings).collect()
    assert q.rule == "invalid_national_id" and '"customer_id":"C2"' in q.record
    assert not any(v in q.record for v in ("bad-id", "李四", "13900000000"))
    # Landing the same rows again changes nothing: ciphertexts are reproducible.
    again = collect.land(
        Run(spark, settings, "r2"),
        df,
        BRONZE_CUSTOMERS,
        "test",
        [rule],
        ("customer_id", "_content_hash"),
    )
    assert (again.rows_out, again.rows_unchanged, again.rows_quarantined) == (0, 1, 1)
    assert lakehouse.read(spark, OPS_QUARANTINE, settings).count() == 1
