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
