"""Entity resolution of public records: exact links on inline rows, then a generated site."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import sqlite3

import pytest
from chispa import assert_df_equality
from conftest import TEST_PII_KEY, make_settings

from riskcontrol.analyze import resolve

KEY = TEST_PII_KEY.encode()
DAY = dt.date(2025, 3, 1)
EMPLOYER = "深圳市东方贸易有限公司"


def _hmac(v: str) -> str:
    return hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest()


COMPANY_KEY = _hmac("深圳市东方贸易")

CUSTOMERS = [
    ("C1", "张伟", "440305199005011234", "广东省", "深圳市", dt.date(1990, 5, 1), EMPLOYER),
    ("C2", "李娜", "110105198503022345", "北京市", "北京市", dt.date(1985, 3, 2), None),
    ("C3", "王芳", "330106199207073456", "浙江省", "杭州市", dt.date(1992, 7, 7), None),
    ("C4", "刘洋", "510104198801014567", "四川省", "成都市", dt.date(1988, 1, 1), None),
    ("C5", "刘 洋", "510107199102025678", "四川省", "成都市", dt.date(1991, 2, 2), None),
    ("C6", "陈静", "420102198006066789", "湖北省", "武汉市", dt.date(1980, 6, 6), None),
    ("C7", "赵磊", "440304198709097890", "广东省", "深圳市", dt.date(1987, 9, 9), None),
    # the same employer under another legal form: one company key
    (
        "C8",
        "孙丽",
        "440305199303038901",
        "广东省",
        "深圳市",
        dt.date(1993, 3, 3),
        "深圳市东方贸易股份有限公司",
    ),
    # a customer named like the district of a court (深圳市龙华区人民法院)
    ("C9", "龙华", "440304199404049012", "广东省", "深圳市", dt.date(1994, 4, 4), None),
]


def _record(kind, rid, stype=None, name=None, id_number=None, province=None, age=None, text=None):
    return (kind, rid, stype, name, id_number, province, age, DAY, text)


RECORDS = [
    # full ID shown: exact match on its HMAC, whatever else the page says
    _record("court", "c1", "person", "张伟", "440305199005011234", text="深圳市南山区人民法院"),
    # masked ID: visible digits agree and the name matches; the court city agrees too
    _record("court", "c2", "person", "李 娜", "1101**********2345", text="北京市朝阳区人民法院"),
    # namesakes of 陈静: another full ID; other digits and city; other province and age
    _record("court", "c3", "person", "陈静", "440305199511113333", "广东省", 29),
    _record("court", "c4", "person", "陈静", "4403**********3333", text="深圳市福田区人民法院"),
    _record("court", "c5", "person", "陈静", None, "广东省", 29),
    # an employer in court, and a lender that is nobody's employer
    _record("court", "c6", "company", EMPLOYER, "91440300MA5EXAMPLE"),
    _record("penalty", "p5", "company", "北京汇融消费金融有限公司"),
    # a unique name with a matching province; with the birth year (age 32 in 2025) as well
    _record("penalty", "p1", "person", "王芳", province="浙江省"),
    _record("penalty", "p2", "person", "王芳", province="浙江省", age=32),
    # a name two customers share: no support, and a province both agree with
    _record("penalty", "p3", "person", "刘洋"),
    _record("penalty", "p4", "person", "刘洋", province="四川省"),
    # news: 张某 never links; a full name with the court's city does; an employer mention
    _record(
        "news",
        "n1",
        text="深圳市一男子欠款5万元拒不归还\n因民间借贷纠纷，张某被深圳市南山区人民法院立案执行。",
    ),
    _record(
        "news",
        "n2",
        text="因民间借贷纠纷，赵磊被深圳市龙华区人民法院立案执行，执行标的5万元。"
        "法院查明，赵磊名下有可供执行的财产。",
    ),
    _record("news", "n3", text=f"Staff at {EMPLOYER} say wages are 3 months late."),
    # 赵磊 inside the longer name 赵磊华 (华 is a given-name character of the book): x0.2
    _record("news", "n4", text="因借款合同纠纷，赵磊华被深圳市福田区人民法院立案执行。"),
]


def _link(kind, rid, customer, method, confidence, evidence):
    company = customer is None
    return (
        kind,
        rid,
        "company" if company else "customer",
        customer,
        COMPANY_KEY if company else None,
        method,
        confidence,
        evidence,
        DAY,
    )


EXPECTED_LINKS = [
    _link("court", "c1", "C1", "exact_id", 1.0, "id=exact"),
    # prior 0.98 (odds 49) x 8 for the city: 392/393
    _link("court", "c2", "C2", "masked_id_name", 0.9975, "name=exact;city=match;id_digits=match"),
    _link("court", "c6", None, "company_name", 0.95, "company=exact"),
    # unique name: even odds, x4 for the province = 0.8; x10 for the birth year = 40/41
    _link("penalty", "p1", "C3", "name_attributes", 0.8, "name=exact;province=match"),
    _link(
        "penalty",
        "p2",
        "C3",
        "name_attributes",
        0.9756,
        "name=exact;province=match;birth_year=match",
    ),
    # a two-character name in free text: prior 0.25 (odds 1/3), x8 for the court's city: 8/11
    _link("news", "n2", "C7", "name_mention", 0.7273, "name=mention;city=match"),
    _link("news", "n3", None, "company_mention", 0.9, "company=mention"),
]


@pytest.fixture(scope="module")
def inline(spark, tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("resolve"))
    customers = spark.createDataFrame(CUSTOMERS, resolve.CUSTOMER_SCHEMA)
    records = spark.createDataFrame(RECORDS, resolve.RECORD_SCHEMA)
    links = resolve.link_records(records, customers, settings).cache()
    yield customers, links
    links.unpersist()


def test_link_records_gives_the_exact_expected_links(spark, inline):
    _, links = inline
    want = spark.createDataFrame(EXPECTED_LINKS, resolve.LINK_SCHEMA)
    assert_df_equality(links, want, ignore_row_order=True, ignore_nullable=True)


def test_employer_links_expand_company_links_to_the_staff(spark, inline, settings):
    customers, links = inline
    got = resolve.employer_links(links, customers, settings)
    want = spark.createDataFrame(
        [
            (cid, kind, rid, DAY, "employer", COMPANY_KEY, conf)
            for cid in ("C1", "C8")
            for kind, rid, conf in (("court", "c6", 0.95), ("news", "n3", 0.9))
        ],
        resolve.EMPLOYER_LINK_SCHEMA,
    )
    assert_df_equality(got, want, ignore_row_order=True, ignore_nullable=True)


def test_normalization_and_bronze_records(spark):
    from pyspark.sql import functions as F

    names = [
        ("  张 · 三 ", "张三", "张三"),
        ("ＭＡＲＹ  O'Neil", "maryoneil", "maryoneil"),
        ("Zhang•San", "zhangsan", "zhangsan"),
        (EMPLOYER, "深圳市东方贸易有限公司", "深圳市东方贸易"),
        ("深圳市东方贸易股份有限公司", "深圳市东方贸易股份有限公司", "深圳市东方贸易"),
        ("东方集团有限公司", "东方集团有限公司", "东方"),
        ("Acme Co., Ltd.", "acmecoltd", "acme"),
        ("ＡＣＭＥ Limited", "acmelimited", "acme"),
        ("Acme Inc.", "acmeinc", "acme"),
        ("Mexico Trading Co", "mexicotradingco", "mexicotrading"),
        ("有限公司", "有限公司", None),
    ]
    df = spark.createDataFrame([(n,) for n, _, _ in names], "raw string")
    got = df.select(
        "raw", resolve.normalize_name("raw").alias("n"), resolve.normalize_company("raw").alias("c")
    ).collect()
    assert [tuple(r) for r in got] == names

    bronze = spark.createDataFrame(
        [
            ("p1", "王伟（时任深圳汇融消费金融有限公司行长）", "违规放贷", "2025-01-02"),
            ("p2", EMPLOYER, "未经批准擅自从事放贷业务", "2025-01-03"),
            ("p3", "汇融银行深圳分行", "贷款“三查”不到位", "2025-01-04"),
        ],
        "record_id string, institution string, reason string, decision_date string",
    )
    got = resolve.penalty_records(bronze).select(
        "record_id", "subject_type", "subject_name", F.col("record_date").cast("string")
    )
    assert sorted(tuple(r) for r in got.collect()) == [
        ("p1", "person", "王伟", "2025-01-02"),
        ("p2", "company", EMPLOYER, "2025-01-03"),
        ("p3", "institution", "汇融银行深圳分行", "2025-01-04"),
    ]


def test_evaluate_counts_hits_misses_and_ignores_uncrawlable_records(spark, settings):
    rows = [
        _link("court", "r1", "C1", "exact_id", 1.0, "id=exact"),
        _link("court", "r2", "C3", "name_attributes", 0.8, "name=exact;province=match"),
        _link("court", "r3", "C4", "name_attributes", 0.8, "name=exact;province=match"),
        _link("court", "r5", "C6", "exact_id", 1.0, "id=exact"),  # not crawlable: ignored
        _link("court", "r6", None, "company_name", 0.95, "company=exact"),
        _link("news", "n1", None, "company_mention", 0.9, "company=mention"),
        _link("news", "n2", "C7", "name_mention", 0.8889, "name=mention;city=match"),
        _link("news", "n9", "C8", "name_mention", 0.5, "name=mention"),  # unknown record
    ]
    links = spark.createDataFrame(rows, resolve.LINK_SCHEMA)

    def truth(kind, rid, customer=None, company=None, expect=True):
        return {
            "kind": kind,
            "record_id": rid,
            "customer_id": customer,
            "company": company,
            "expect_record": expect,
        }

    got = resolve.evaluate(
        links,
        [
            truth("court", "r1", "C1"),
            truth("court", "r2", "C2"),
            truth("court", "r3"),
            truth("court", "r4", "C5"),
            truth("court", "r5", "C6", expect=False),
            truth("court", "r6", company=EMPLOYER),
            truth("news", "n1", company="深圳市东方贸易股份有限公司"),
            truth("news", "n2", "C7"),
            truth("news", "n3"),
        ],
        settings,
    )
    json.dumps(got)  # JSON-able

    def brief(scores):
        return tuple(scores[k] for k in ("tp", "fp", "fn", "precision", "recall", "f1"))

    assert {k: v["records"] for k, v in got.items()} == {"court": 5, "news": 3, "all": 8}
    assert brief(got["court"]["person"]) == (1, 2, 2, 0.3333, 0.3333, 0.3333)
    assert brief(got["court"]["company"]) == (1, 0, 0, 1.0, 1.0, 1.0)
    assert brief(got["news"]["person"]) == (1, 1, 0, 0.5, 1.0, 0.6667)
    assert brief(got["news"]["company"]) == (1, 0, 0, 1.0, 1.0, 1.0)
    assert brief(got["all"]["person"]) == (2, 3, 2, 0.4, 0.5, 0.4444)


# --- the generated site --------------------------------------------------------------------------
def _site_records(spark, content):
    """What a crawl of the site lands in bronze, mapped to the resolver's records."""
    court = spark.createDataFrame(
        [
            (c.case_no, c.subject_name, c.subject_type, c.id_shown, c.court, str(c.filing_date))
            for c in content.court
            if "missing_case_no" not in c.faults
        ],
        "record_id string, subject_name string, subject_type string, id_number string, "
        "court string, filing_date string",
    )
    penalties = spark.createDataFrame(
        [
            (p.record_id, p.institution, p.violation, str(p.decision_date))
            for p in content.penalties
            if "no_decision_text" not in p.faults
        ],
        "record_id string, institution string, reason string, decision_date string",
    )
    news = spark.createDataFrame(
        [
            (a.guid, a.title, a.published_at.isoformat(), "\n".join(a.paragraphs))
            for a in content.news
        ],
        "record_id string, title string, published_at string, body string",
    )
    return (
        resolve.court_records(court)
        .unionByName(resolve.penalty_records(penalties))
        .unionByName(resolve.news_records(news))
    )


@pytest.mark.slow
def test_links_on_a_generated_site_are_precise_and_complete(spark, tmp_path, settings):
    from riskcontrol.synthetic.generate import generate
    from riskcontrol.synthetic.site import build_site, write_ground_truth

    generate(tmp_path / "book", customers=2000, seed=7)
    content = build_site(tmp_path / "book", 7, epochs=3, scale=3)
    truth = resolve.load_ground_truth(write_ground_truth(content, tmp_path / "site"))
    with sqlite3.connect(tmp_path / "book" / "lending.db") as db:
        rows = db.execute(
            "SELECT customer_id, name, national_id, province, city, birth_date, employer_name"
            " FROM customers"
        ).fetchall()
    customers = spark.createDataFrame(
        [(*r[:5], dt.date.fromisoformat(r[5]), r[6] or None) for r in rows],
        resolve.CUSTOMER_SCHEMA,
    )
    links = resolve.link_records(_site_records(spark, content), customers, settings)

    got = resolve.evaluate(links, truth, settings)

    # measured (seed 7, 2,000 customers, scale 3): court persons 118/118 exact; news persons
    # P 1.0 R 0.967; penalty persons P 0.909 R 0.833; company links P = R = 1.0 everywhere
    court, news, penalty = got["court"], got["news"], got["penalty"]
    assert court["person"]["truth"] > 100
    assert court["person"]["precision"] >= 0.98 and court["person"]["recall"] >= 0.98
    for kind in (court, news, penalty):
        assert kind["company"]["precision"] >= 0.98 and kind["company"]["recall"] >= 0.98
    assert news["person"]["precision"] >= 0.9 and news["person"]["recall"] >= 0.9
    assert penalty["person"]["precision"] >= 0.85 and penalty["person"]["recall"] >= 0.75
