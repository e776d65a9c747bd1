"""Text analytics on small inline texts, with exact expected output.

Each Spark test collects all its cases in one DataFrame: one action per test.
"""

from __future__ import annotations

import datetime as dt

from riskcontrol.analyze import text


def _one_column(spark, values: list[str | None]):
    return spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, t string")


def _rows(df) -> list:
    """The rows in case order, sorted in Python: ``orderBy`` would add a sampling job."""
    return sorted(df.collect(), key=lambda r: r[0])


# --- pure Python ------------------------------------------------------------------------


def test_tokens_of_a_mixed_chinese_english_note():
    note = "客户说Unable to pay，要求延期还款；已被催收3次, owes ¥1,234.50 since 2024.03.05!"
    assert text.tokens(note) == [
        "客户",
        "说",
        "unable",
        "to",
        "pay",
        "要求",
        "延期",
        "还款",
        "已",
        "被",
        "催收",
        "3",
        "次",
        "owes",
        "1234.50",
        "since",
        "2024.03.05",
    ]


def test_tokens_keep_lexicon_terms_whole_and_normalize_first():
    assert text.tokens("公司資不抵債，無力還款，法院強制執行；借款人按時還款並已結清") == [
        "公司",
        "资不抵债",
        "无力还款",
        "法院",
        "强制执行",
        "借款人",
        "按时还款",
        "并",
        "已结清",
    ]
    assert text.tokens("ＯＶＥＲＤＵＥ　３０ days, 履行完毕。") == [
        "overdue",
        "30",
        "days",
        "履行完毕",
    ]
    assert text.tokens(" \n，。!? ") == []


def test_lexicon_is_declarative_and_complete():
    assert list(text.LEXICON) == [
        "overdue",
        "fraud",
        "lawsuit",
        "bankruptcy",
        "penalty",
        "collection",
        "hardship",
        "complaint",
    ]
    assert all(isinstance(terms, tuple) and terms for terms in text.LEXICON.values())
    assert {"按时还款", "已结清", "结案", "履行完毕", "repaid", "settled"} <= set(text.POSITIVE)


# --- Spark ------------------------------------------------------------------------------


def test_normalize_text(spark):
    every_mapped_char = "".join(text._char_map())
    cases = [
        "ＡＢＣ１２３，",
        "貸款逾期後被起訴",
        "  Late\t\n payment\u00a0\u00a0并\u2028投诉\u3000\u3000OK \r\n",
        "逾\u200b期",
        "",
        None,
        every_mapped_char,
    ]
    df = _one_column(spark, cases).select("i", text.normalize_text("t").alias("t"))
    assert [r.t for r in _rows(df)] == [
        "ABC123,",
        "贷款逾期后被起诉",
        "Late payment 并 投诉 OK",
        "逾期",
        "",
        None,
        # The Python twin used by ``tokens`` agrees with Spark on every mapped character.
        text._normalize_str(every_mapped_char),
    ]
    # Spark's translate maps code points, including those beyond the BMP (㒓 -> 𠉂).
    assert text._normalize_str("㒓開戰") == "𠉂开战"


def test_lexicon_hits_categories_and_negativity(spark):
    cases = [
        "客户Overdue了，逾期3天、拖欠欠款；已被法院強制執行。Fine, fined, FINE! finest, courtesy",
        "Customer overdue twice; 逾期后被起诉 but settled.",
        "按时还款，已结清。但曾逾期",
        "借款人按时还款",
        "No signal here",
        None,
    ]
    df = _one_column(spark, cases).select(
        "i",
        text.lexicon_hits("t").alias("hits"),
        text.risk_categories("t").alias("categories"),
        text.negativity("t").alias("negativity"),
    )
    rows = _rows(df)
    zero = dict.fromkeys(text.LEXICON, 0)
    assert rows[0].hits == zero | {"overdue": 4, "lawsuit": 2, "penalty": 3}
    assert rows[0].categories == ["lawsuit", "overdue", "penalty"]
    assert rows[0].negativity == 1.0
    # neg = overdue + 逾期 + 起诉 = 3, pos = settled = 1: (3 - 1) / (3 + 1)
    assert rows[1].hits == zero | {"overdue": 2, "lawsuit": 1}
    assert rows[1].negativity == 0.5
    # neg = 1, pos = 2: (1 - 2) / 3
    assert rows[2].negativity == -1 / 3
    assert [r.negativity for r in rows[3:]] == [-1.0, 0.0, None]
    assert (rows[4].hits, rows[4].categories) == (zero, [])
    assert (rows[5].hits, rows[5].categories) == (None, None)


def test_extract_amounts_in_each_format(spark):
    cases = [
        "罚款5万元",
        "欠款5.5万",
        "资产1.2亿",
        "还款¥1,234.50",
        "paid RMB 1234.5 today",
        "金额1234.50元",
        "USD 2,000",
        "owes $2,000.",
        "3,000 yuan",
        "全角￥８，０００",
        "0.07万元 then 2,000美元",
        "逾期3天，共2笔，2024年3月5日",
        None,
    ]
    df = _one_column(spark, cases).select(
        "i",
        text.extract_amounts("t").alias("amounts"),
        text.extract_currency_amounts("t").alias("money"),
    )
    rows = _rows(df)
    assert [r.amounts for r in rows] == [
        [50000.0],
        [55000.0],
        [120000000.0],
        [1234.5],
        [1234.5],
        [1234.5],
        [2000.0],
        [2000.0],
        [3000.0],
        [8000.0],
        [700.0, 2000.0],
        [],
        None,
    ]
    money = [
        [(m.amount, m.currency) for m in r.money] if r.money is not None else None for r in rows
    ]
    assert money[:10] == [
        [(50000.0, "CNY")],
        [(55000.0, "CNY")],
        [(120000000.0, "CNY")],
        [(1234.5, "CNY")],
        [(1234.5, "CNY")],
        [(1234.5, "CNY")],
        [(2000.0, "USD")],
        [(2000.0, "USD")],
        [(3000.0, "CNY")],
        [(8000.0, "CNY")],
    ]
    assert money[10:] == [[(700.0, "CNY"), (2000.0, "USD")], [], None]


def test_extract_dates_in_each_format_dropping_impossible_ones(spark):
    march_5 = dt.date(2024, 3, 5)
    cases = [
        "2024年3月5日立案",
        "due 2024-03-05",
        "2024/3/5",
        "2024.03.05",
        "on March 5, 2024",
        "5 March 2024",
        "sept: sep 5 2024 and 5 DEC. 2024",
        "2024-02-30 and 2024年13月1日",
        "2024-02-29至2024/3-5, 12024-01-01",
        None,
    ]
    df = _one_column(spark, cases).select("i", text.extract_dates("t").alias("d"))
    assert [r.d for r in _rows(df)] == [
        [march_5],
        [march_5],
        [march_5],
        [march_5],
        [march_5],
        [march_5],
        [dt.date(2024, 9, 5), dt.date(2024, 12, 5)],
        [],
        [dt.date(2024, 2, 29)],
        None,
    ]


def test_text_signals_adds_every_column(spark):
    df = spark.createDataFrame(
        [(1, "貸款逾期，被催收，欠款5万元；2024年3月5日已结清"), (2, None)],
        "id int, body string",
    )
    got = df.transform(text.text_signals("body", prefix="body_"))
    assert got.schema.simpleString() == (
        "struct<id:int,body:string,body_normalized_text:string,body_tokens:array<string>,"
        "body_token_count:int,body_lexicon_hits:map<string,int>,"
        "body_risk_categories:array<string>,body_negativity:double,"
        "body_amounts:array<double>,body_dates:array<date>>"
    )
    first, second = _rows(got)
    assert first.asDict() == {
        "id": 1,
        "body": "貸款逾期，被催收，欠款5万元；2024年3月5日已结清",
        "body_normalized_text": "贷款逾期,被催收,欠款5万元;2024年3月5日已结清",
        "body_tokens": [
            "贷款",
            "逾期",
            "被",
            "催收",
            "欠款",
            "5",
            "万元",
            "2024",
            "年",
            "3",
            "月",
            "5",
            "日",
            "已结清",
        ],
        "body_token_count": 14,
        "body_lexicon_hits": dict.fromkeys(text.LEXICON, 0) | {"overdue": 2, "collection": 1},
        "body_risk_categories": ["collection", "overdue"],
        # neg = 逾期 + 欠款 + 催收 = 3, pos = 已结清 = 1
        "body_negativity": 0.5,
        "body_amounts": [50000.0],
        "body_dates": [dt.date(2024, 3, 5)],
    }
    assert second.asDict() == {"id": 2, "body": None} | {
        c: None for c in got.columns if c.startswith("body_")
    }
