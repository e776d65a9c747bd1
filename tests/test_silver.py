"""Bronze -> silver transforms on small inline rows, with exact expected output."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

from chispa import assert_df_equality
from conftest import TEST_PII_KEY
from pyspark.sql import functions as F

from riskcontrol.analyze import silver
from riskcontrol.core.landing import Rule, split_by_rules

KEY = TEST_PII_KEY.encode()


def _hmac(v: str) -> str:
    return hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest()


def test_latest_by_key_keeps_the_newest_version(spark):
    df = spark.createDataFrame(
        [("a", "2024-01-01", 1), ("a", "2024-02-01", 2), ("b", "2024-01-05", 3)],
        "k string, updated_at string, v int",
    )
    got = df.transform(silver.latest_by_key(["k"], ["updated_at"]))
    want = spark.createDataFrame(
        [("a", "2024-02-01", 2), ("b", "2024-01-05", 3)], "k string, updated_at string, v int"
    )
    assert_df_equality(got, want, ignore_row_order=True)


def test_split_by_rules_quarantines_once_under_the_first_broken_rule(spark):
    from pyspark.sql import functions as F

    df = spark.createDataFrame([(1, 5), (-1, 5), (-2, -5), (3, None)], "a int, b int")
    valid, rejected = split_by_rules(
        df,
        [Rule("a_positive", F.col("a") > 0, "a <= 0"), Rule("b_positive", F.col("b") > 0, "b bad")],
    )
    assert [tuple(r) for r in valid.collect()] == [(1, 5)]
    got = sorted((r.rule, r.reason, r.record) for r in rejected.collect())
    assert got == [
        ("a_positive", "a <= 0", '{"a":-1,"b":5}'),
        ("a_positive", "a <= 0", '{"a":-2,"b":-5}'),
        ("b_positive", "b bad", '{"a":3}'),
    ]


def _bronze_apps(spark, rows):
    cols = (
        "application_id string, customer_id string, applied_at string, requested_amount string, "
        "term_months string, purpose string, channel string, province string, status string, "
        "decided_at string, updated_at string, _ingested_at timestamp, _source_uri string"
    )
    return spark.createDataFrame(rows, cols)


def test_clean_applications_types_dedupes_and_quarantines(spark):
    t = dt.datetime(2024, 5, 1)
    rows = [
        (
            "A1",
            "C1",
            "2024-03-05 10:00:00",
            "5000",
            "6",
            "travel",
            "app",
            "p",
            "pending",
            None,
            "2024-03-05 10:00:00",
            t,
            "db",
        ),
        (
            "A1",
            "C1",
            "2024-03-05 10:00:00",
            "5000",
            "6",
            "travel",
            "app",
            "p",
            "Approved",
            "2024-03-06 09:00:00",
            "2024-03-06 09:00:00",
            t,
            "db",
        ),
        (
            "A2",
            "C2",
            "2024-03-07T08:00:00+08:00",
            "-1",
            "6",
            "x",
            "web",
            "p",
            "rejected",
            None,
            "2024-03-07 00:00:00",
            t,
            "db",
        ),
        (
            "A3",
            "C3",
            "not a date",
            "100",
            "6",
            "x",
            "web",
            "p",
            "pending",
            None,
            "2024-03-07 00:00:00",
            t,
            "db",
        ),
        (
            "A4",
            "C4",
            "2024-03-08",
            "100",
            "7",
            "x",
            "web",
            "p",
            "pending",
            None,
            "2024-03-08 00:00:00",
            t,
            "db",
        ),
    ]
    valid, rejected = silver.clean_applications(_bronze_apps(spark, rows))
    got = [r.asDict() for r in valid.collect()]
    assert got == [
        {
            "application_id": "A1",
            "customer_id": "C1",
            "applied_at": dt.datetime(2024, 3, 5, 10, 0),
            "application_date": dt.date(2024, 3, 5),
            "requested_amount": 5000.0,
            "term_months": 6,
            "purpose": "travel",
            "channel": "app",
            "province": "p",
            "status": "approved",
            "decided_at": dt.datetime(2024, 3, 6, 9, 0),
            "updated_at": dt.datetime(2024, 3, 6, 9, 0),
            # a source without the declared attributes leaves them null
            "monthly_income": None,
            "employment_type": None,
            "education": None,
        }
    ]
    assert sorted((r.rule, json.loads(r.record)["application_id"]) for r in rejected.collect()) == [
        ("invalid_applied_at", "A3"),
        ("invalid_term", "A4"),
        ("non_positive_amount", "A2"),
    ]


def test_declared_attributes_are_kept_and_a_bad_income_is_quarantined(spark):
    from pyspark.sql import functions as F

    base = _bronze_apps(spark, []).columns
    rows = [
        ("A1", " 8000 ", "salaried", "bachelor"),
        ("A2", "", None, None),
        ("A3", "eight thousand", "salaried", "bachelor"),
        ("A4", "-100", "salaried", "bachelor"),
    ]
    t = dt.datetime(2024, 5, 1)
    bronze = spark.createDataFrame(
        [
            (a, "C1", "2024-03-05 10:00:00", "5000", "6", "travel", "app", "p", "pending")
            + (None, "2024-03-05 10:00:00", t, "db", income, job, edu)
            for a, income, job, edu in rows
        ],
        ", ".join(f"{c} {'timestamp' if c == '_ingested_at' else 'string'}" for c in base)
        + ", monthly_income string, employment_type string, education string",
    )
    valid, rejected = silver.clean_applications(bronze)
    got = {
        r.application_id: (r.monthly_income, r.employment_type, r.education)
        for r in valid.collect()
    }
    assert got == {"A1": (8000.0, "salaried", "bachelor"), "A2": (None, None, None)}
    assert sorted(
        (r.rule, r.reason, json.loads(r.record)["application_id"]) for r in rejected.collect()
    ) == [
        ("invalid_income", "declared monthly_income unparseable or negative", "A3"),
        ("invalid_income", "declared monthly_income unparseable or negative", "A4"),
    ]

    # As of the application: what it declared; the customer record only where it is silent.
    customers = spark.createDataFrame(
        [("C1", "k1", 1990, 20000.0, "self_employed", "master")],
        "customer_id string, customer_key string, birth_year int, monthly_income double, "
        "employment_type string, education string",
    )
    joined = silver.with_applicant(valid, customers).orderBy("application_id")
    assert [
        tuple(r)
        for r in joined.select(
            "application_id", "customer_key", "birth_year", *silver.DECLARED
        ).collect()
    ] == [
        ("A1", "k1", 1990, 8000.0, "salaried", "bachelor"),
        ("A2", "k1", 1990, 20000.0, "self_employed", "master"),
    ]
    assert joined.columns.count("monthly_income") == 1
    assert joined.where(F.col("customer_id") == "C1").count() == 2


def test_clean_customers_pseudonymizes_and_never_keeps_clear_identifiers(spark, settings):
    t = dt.datetime(2024, 5, 1)
    cols = (
        "customer_id string, national_id string, name string, mobile string, gender string, "
        "birth_date string, province string, city string, education string, "
        "employment_type string, employer_name string, monthly_income string, "
        "registered_at string, updated_at string, _ingested_at timestamp, _source_uri string"
    )
    rows = [
        (
            "C1",
            "11010519491231002X",
            "张三",
            "13812345678",
            "F",
            "1949-12-31",
            "北京市",
            "北京市",
            "bachelor",
            "salaried",
            "华信科技有限公司",
            "8000.5",
            "2023-01-01 00:00:00",
            "2023-01-01 00:00:00",
            t,
            "db",
        ),
        (
            "C2",
            "110105194912310021",
            "李四",
            "13812345679",
            "M",
            "1949-12-31",
            "北京市",
            "北京市",
            "college",
            "salaried",
            "",
            "5000",
            "2023-01-01 00:00:00",
            "2023-01-01 00:00:00",
            t,
            "db",
        ),
    ]
    minor = ("C3", "110105201001010010", "王五", "13812345670", "M", "2010-01-01")
    rows.append((*minor, *rows[0][6:]))
    valid, rejected = silver.clean_customers(spark.createDataFrame(rows, cols), settings)
    (row,) = valid.collect()
    assert row.customer_key == _hmac("11010519491231002X")
    assert row.phone_key == _hmac("13812345678")
    assert (row.national_id_masked, row.phone_masked, row.name_masked) == (
        "**************002X",
        "138****5678",
        "张*",
    )
    assert (row.birth_year, row.monthly_income) == (1949, 8000.5)
    # Nothing that, with the last four characters, rebuilds the ID (region, birth date).
    assert "region_code" not in valid.columns and "birth_date" not in valid.columns
    by_rule = {r.rule: r for r in rejected.collect()}
    assert sorted(by_rule) == ["invalid_age", "invalid_national_id"]
    assert '"customer_id":"C3"' in by_rule["invalid_age"].record
    for text in ("110105194912310021", "李四", "13812345679", "王五", "110105201001010010"):
        assert all(text not in r.record for r in by_rule.values())
    assert "national_id" not in valid.columns and "mobile" not in valid.columns


def _raw(spark, payloads):
    t = dt.datetime(2024, 5, 1)
    return spark.createDataFrame(
        [(p, t, f"file{i}") for i, p in enumerate(payloads)],
        "payload string, _ingested_at timestamp, _source_uri string",
    )


def test_clean_bureau_flattens_both_schema_versions_and_quarantines_type_conflicts(spark, settings):
    v1 = {
        "report_id": "R1",
        "query_ref": "A1",
        "id_number": "11010519491231002X",
        "name": "张三",
        "report_time": "2024-03-05T10:22:01+08:00",
        "score": {"value": 712, "model": "BCS3"},
        "summary": {
            "inquiries_6m": 3,
            "open_loans": 2,
            "total_credit_limit": 52000.0,
            "total_balance": 21000.0,
            "overdue_accounts": 0,
            "max_dpd_24m": 0,
            "credit_history_months": 48,
        },
        "accounts": [
            {
                "type": "credit_card",
                "limit": 2.0,
                "balance": 1.0,
                "status": "normal",
                "opened": "2019-05",
            }
        ],
        "schema_version": 1,
    }
    v2 = dict(
        v1,
        report_id="R2",
        query_ref="A2",
        schema_version=2,
        score={"value": 600},
        summary=dict(v1["summary"], consumer_finance_loans=4),
        alerts=[{"code": "X", "date": "2025-01-01"}],
        extra_new_field="kept in bronze",
        contact_name="王五",  # fields a source adds later: personal ones hidden or masked
        backup_contact="13912345678",
    )
    conflict = dict(v1, report_id="R3", summary=dict(v1["summary"], inquiries_6m="three"))
    payloads = [
        json.dumps(v1, ensure_ascii=False),
        json.dumps(v2, ensure_ascii=False),
        json.dumps(conflict, ensure_ascii=False),
    ]
    valid, rejected = silver.clean_bureau(_raw(spark, payloads), settings)
    got = {r.report_id: r.asDict() for r in valid.collect()}
    assert set(got) == {"R1", "R2"}
    assert got["R1"]["report_time"] == dt.datetime(2024, 3, 5, 2, 22, 1)  # UTC
    assert (got["R1"]["bureau_score"], got["R1"]["consumer_finance_loans"]) == (712, None)
    assert (got["R2"]["bureau_score"], got["R2"]["consumer_finance_loans"]) == (600, 4)
    assert (got["R1"]["n_accounts"], got["R1"]["n_alerts"], got["R2"]["n_alerts"]) == (1, 0, 1)
    assert got["R1"]["customer_key"] == _hmac("11010519491231002X")
    # Drift: an unknown field is kept, the personal fields the pseudonym came from are not.
    assert (got["R1"]["extra_fields"], got["R2"]["extra_fields"]) == (
        None,
        '{"extra_new_field":"kept in bronze","contact_name":"***","backup_contact":"139****5678"}',
    )
    (bad,) = rejected.collect()
    assert bad.rule == "type_conflict"
    assert "11010519491231002X" not in bad.record


def test_clean_notes_parses_header_and_counts_negative_terms(spark):
    payloads = [
        "#NOTE id=N1 customer=C1 time=2024-03-05 10:22:31 agent=A017 channel=phone\n"
        "客户表示工资延迟，申请延期还款。\nCustomer mentions a LAWSUIT and overdue bills.",
        "#NOTE id=N2 customer=C2 time=yesterday noon agent=A1 channel=chat\nhello",
    ]
    valid, rejected = silver.clean_notes(_raw(spark, payloads))
    (row,) = valid.collect()
    assert (row.note_id, row.customer_id, row.noted_at, row.agent, row.channel) == (
        "N1",
        "C1",
        dt.datetime(2024, 3, 5, 10, 22, 31),
        "A017",
        "phone",
    )
    assert (
        row.text == "客户表示工资延迟,申请延期还款。 Customer mentions a LAWSUIT and overdue bills."
    )  # full-width comma folded, line break collapsed
    assert row.negative_hits == 3  # 延期 (hardship), lawsuit, overdue
    assert row.risk_categories == ["hardship", "lawsuit", "overdue"]
    assert row.negativity == 1.0
    assert "lawsuit" in row.tokens and "延期" in row.tokens
    assert [r.rule for r in rejected.collect()] == ["invalid_note_time"]


def test_notes_mask_known_names_ids_phones_cards_and_emails(spark):
    payload = (
        "#NOTE id=N1 customer=C1 time=2024-03-05 10:22:31 agent=A017 channel=phone\n"
        "张三丰来电，身份证11010519491231002X，手机13812345678，"
        "卡号6222021234567890123，邮箱 zhang.san@example.com，订单号A13812345678B。"
    )
    names = spark.createDataFrame([("张三丰",), ("张三",)], "name string")
    (row,), _ = silver.clean_notes(_raw(spark, [payload]), names)[0].collect(), None
    assert row.text == (
        "张**来电,身份证**************002X,手机138****5678,"
        "卡号************0123,邮箱 z***@example.com,订单号A138****5678B。"
    )
    for clear in ("张三丰", "11010519491231002X", "13812345678", "6222021234567890123", "zhang"):
        assert not any(clear in t for t in row.tokens), clear


def test_a_repayment_without_a_loan_is_quarantined_not_dropped(spark):
    cols = (
        "repayment_id string, loan_id string, installment_no string, due_date string, "
        "amount_due string, paid_date string, amount_paid string, dpd string, "
        "updated_at string, _ingested_at timestamp, _source_uri string"
    )
    t = dt.datetime(2024, 5, 1)
    rows = [
        ("P1", "L1", "1", "2024-02-01", "100", "2024-02-01", "100", "0", "2024-02-01", t, "db"),
        ("P2", "L9", "1", "2024-02-01", "100", None, None, "30", "2024-03-02", t, "db"),
    ]
    loans = spark.createDataFrame([("L1",)], "loan_id string")
    valid, rejected = silver.clean_repayments(spark.createDataFrame(rows, cols), loans)
    assert [r.repayment_id for r in valid.collect()] == ["P1"]
    (bad,) = rejected.collect()
    assert (bad.rule, json.loads(bad.record)["repayment_id"]) == ("orphan_repayment", "P2")


def test_clean_settlements_keeps_cash_and_leaves_the_payer_and_memo_in_bronze(spark):
    cols = (
        "settlement_id string, loan_id string, paid_at timestamp, amount double, "
        "currency string, channel string, payer_account string, memo string, "
        "_ingested_at timestamp, _source_uri string"
    )
    t1, t2 = dt.datetime(2024, 5, 1), dt.datetime(2024, 6, 1)
    paid = dt.datetime(2024, 4, 30, 10, 21, 33)
    rows = [
        ("S1", "L1", paid, 120.5, " rmb ", " Alipay", "6222020200112233", "Zhang San", t1, "f1"),
        ("S2", "L1", paid, 80.0, "人民币", "wechat", "acct", "note", t1, "f1"),
        ("S2", "L1", paid, 90.0, "CNY", "wechat", "acct", "resent", t2, "f2"),  # newer
        ("S3", "L9", paid, 10.0, "CNY", "bank", "acct", "", t1, "f1"),  # no such loan
        ("S4", "L1", paid, 10.0, "USD", "bank", "acct", "", t1, "f1"),
        ("S5", "L1", paid, 10.0, None, "bank", "acct", "", t1, "f1"),
        ("S6", "L1", paid, -10.0, "CNY", "bank", "acct", "reversal", t1, "f1"),
    ]
    loans = spark.createDataFrame([("L1",)], "loan_id string")
    valid, rejected = silver.clean_settlements(spark.createDataFrame(rows, cols), loans)
    assert valid.columns == ["settlement_id", "loan_id", "paid_at", "amount", "currency", "channel"]
    got = sorted(tuple(r) for r in valid.collect())
    assert got == [
        ("S1", "L1", paid, 120.5, "CNY", "alipay"),
        ("S2", "L1", paid, 90.0, "CNY", "wechat"),
    ]
    bad = {json.loads(r.record)["settlement_id"]: (r.rule, r.reason) for r in rejected.collect()}
    assert bad == {
        "S3": ("orphan_settlement", "loan_id not in silver.loans (settlement without a loan)"),
        "S4": (
            "unsupported_currency",
            "currency 'USD' is not the book's (CNY): convert the amount before landing",
        ),
        "S5": (
            "unsupported_currency",
            "currency '' is not the book's (CNY): convert the amount before landing",
        ),
        "S6": ("non_positive_amount", "amount <= 0 (a refund or reversal)"),
    }


_CRAWL = "url string, fetched_at string, crawl_id string, _source_uri string, _ingested_at string"


def test_court_records_keep_pseudonyms_and_masks_only(spark, settings):
    rows = [
        ("R1", "张三", "person", "11010519491231002X", False, "2024-03-05", "执行中"),
        ("R2", "李四", "person", "1101**********0021", True, "2024年3月6日", "已结案"),
        (
            "R3",
            "杭州腾达科技有限公司",
            "company",
            "91330100MA27XXXX1K",
            False,
            "2024-03-07",
            "执行中",
        ),
        ("R4", "王五", "person", None, None, "not a date", "执行中"),
    ]
    bronze = spark.createDataFrame(
        [
            (
                *r[:5],
                "某法院",
                f"(2024)案{r[0]}",
                1000.0,
                *r[5:],
                "enforcement",
                "http://x/" + r[0],
                "2024-04-01T00:00:00+08:00",
                "c1",
                "f",
                "2024-04-01",
            )
            for r in rows
        ],
        "record_id string, subject_name string, subject_type string, id_number string, "
        "id_masked boolean, court string, case_no string, amount double, filing_date string, "
        "status string, list_type string, " + _CRAWL,
    )
    valid, rejected = silver.clean_court_records(bronze, settings)
    got = {
        r.record_id: (
            r.subject_key,
            r.subject_display,
            r.id_key,
            r.id_display,
            r.id_is_masked,
            r.filing_date,
            r.is_active,
        )
        for r in valid.collect()
    }
    assert got == {
        "R1": (
            _hmac("张三"),
            "张*",
            _hmac("11010519491231002X"),
            "**************002X",
            False,
            dt.date(2024, 3, 5),
            True,
        ),
        "R2": (_hmac("李四"), "李*", None, "1101**********0021", True, dt.date(2024, 3, 6), False),
        "R3": (
            _hmac("杭州腾达科技"),  # keyed like entity resolution's company_key
            "杭州腾达科技有限公司",
            _hmac("91330100MA27XXXX1K"),
            "91330100MA27XXXX1K",
            False,
            dt.date(2024, 3, 7),
            True,
        ),
    }
    (bad,) = rejected.collect()
    assert bad.rule == "invalid_filing_date" and "王五" not in bad.record


def test_names_in_penalty_and_news_text_are_masked_longest_first(spark, settings):
    names = spark.createDataFrame([("张三",), ("张三丰",), ("李四",)], "name string")
    penalties = spark.createDataFrame(
        [
            (
                "P1",
                "赵六（时任某银行支行行长）",
                "赵六对违规放贷负有直接责任，张三丰协助。",
                "2024-01-02",
            ),
            ("P2", "某某农村商业银行", "贷款三查不到位。", "2024-01-03"),
            # a person, with the company they represent named after the name
            ("P3", "王五（深圳市某某科技有限公司法定代表人）", "王五虚构业务。", "2024-01-04"),
        ],
        "record_id string, institution string, reason string, decision_date string",
    ).selectExpr(
        "*",
        "'No.' || record_id AS decision_no",
        "array('fine') AS penalty_types",
        "10000.0 AS amount",
        "'监管分局' AS authority",
        "'text' AS form",
        "'u' AS url",
        "'2024-04-01 00:00:00' AS fetched_at",
        "'c' AS crawl_id",
        "'f' AS _source_uri",
        "'2024-04-01' AS _ingested_at",
    )
    valid, _ = silver.clean_penalties(penalties, settings, names)
    got = {
        r.record_id: (r.subject_type, r.subject_key, r.subject_display, r.reason)
        for r in valid.collect()
    }
    assert got == {
        "P1": ("person", _hmac("赵六"), "赵*", "赵*对违规放贷负有直接责任,张**协助。"),
        "P2": ("organisation", _hmac("某某农村商业银行"), "某某农村商业银行", "贷款三查不到位。"),
        "P3": ("person", _hmac("王五"), "王*", "王*虚构业务。"),
    }
    news = spark.createDataFrame(
        [("N1", "张三欠款被执行", "张三与李四的纠纷，张某称……", "2024-02-01T08:00:00+08:00")],
        "record_id string, title string, body string, published_at string",
    ).selectExpr(
        "*",
        "'src' AS news_source",
        "'zh' AS language",
        "'rss' AS feed",
        "'u' AS url",
        "'2024-04-01 00:00:00' AS fetched_at",
        "'c' AS crawl_id",
        "'f' AS _source_uri",
        "'2024-04-01' AS _ingested_at",
    )
    (article,), _ = silver.clean_news(news, names)[0].collect(), None
    assert (article.title, article.body) == ("张*欠款被执行", "张*与李*的纠纷,张某称……")


def test_silver_merge_of_unchanged_rows_with_map_columns_updates_nothing(spark, settings):
    """Maps have no SQL equality: the change condition compares them as JSON."""
    from riskcontrol.core import lakehouse
    from riskcontrol.core.catalog import SILVER_NOTES

    row = {
        "note_id": "N1",
        "customer_id": "C1",
        "noted_at": dt.datetime(2024, 3, 5, 10, 0),
        "agent": "A1",
        "channel": "phone",
        "text": "逾期",
        "tokens": ["逾期"],
        "lexicon_hits": {"overdue": 1, "fraud": 0},
        "risk_categories": ["overdue"],
        "negative_hits": 1,
        "negativity": 1.0,
        "amounts": [],
    }
    df = spark.createDataFrame([row], SILVER_NOTES.schema)
    changed = lakehouse.changed(SILVER_NOTES)
    first = lakehouse.merge(df, SILVER_NOTES, settings, update_when=changed)
    again = lakehouse.merge(df, SILVER_NOTES, settings, update_when=changed)
    two = F.create_map(F.lit("overdue"), F.lit(2)).cast("map<string,int>")
    edited = df.withColumn("lexicon_hits", two)
    third = lakehouse.merge(edited, SILVER_NOTES, settings, update_when=changed)
    assert [(r.inserted, r.updated) for r in (first, again, third)] == [(1, 0), (0, 0), (0, 1)]
