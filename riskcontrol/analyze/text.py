"""Language-aware text analytics for unstructured sources: service notes, news, penalties.

Customer-service notes mix Chinese and English; news bodies and regulator penalty texts
come in simplified or traditional Chinese, often with full-width characters. Everything
here works on the *normalized* text (``normalize_text``): full-width ASCII folded to
half-width, traditional characters mapped to simplified, whitespace collapsed.

Per-row work is plain Spark SQL (translate, regular expressions, higher-order functions),
so it runs in the JVM; only word segmentation (``tokenize``) is a pandas UDF, because it
needs jieba. Spark 4 runs with ANSI SQL on, so parsing uses ``try_*`` functions: an
unparseable amount or an impossible date (2024-02-30) is dropped, never an error.

Null text gives null results throughout (null map, null arrays, null negativity).

``text_signals("body")`` bundles everything for ``df.transform``; see its docstring for
the columns it adds.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from importlib import resources

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType

from riskcontrol.core import pii

Transform = Callable[[DataFrame], DataFrame]

# Risk lexicon: category -> terms, Chinese (simplified, as after normalize_text) and
# English (lower case; matched case-insensitively as whole words).
LEXICON: dict[str, tuple[str, ...]] = {
    "overdue": ("逾期", "拖欠", "欠款", "overdue", "arrears", "past due", "late payment"),
    "fraud": ("欺诈", "诈骗", "骗贷", "fraud", "scam"),
    "lawsuit": (
        "起诉",
        "诉讼",
        "法院",
        "强制执行",
        "失信",
        "lawsuit",
        "sued",
        "court",
        "enforcement",
    ),
    "bankruptcy": (
        "破产",
        "清算",
        "资不抵债",
        "bankrupt",
        "bankruptcy",
        "insolvency",
        "liquidation",
    ),
    "penalty": ("罚款", "处罚", "警告", "没收", "penalty", "fine", "fined", "sanction"),
    "collection": ("催收", "催款", "collection", "debt collector"),
    "hardship": (
        "失业",
        "困难",
        "无力还款",
        "延期",
        "unemployed",
        "hardship",
        "unable to pay",
        "extend",
    ),
    "complaint": ("投诉", "complaint"),
}
# Terms that speak for the borrower; they offset the lexicon's hits in ``negativity``.
POSITIVE: tuple[str, ...] = (
    "按时还款",
    "已结清",
    "结案",
    "履行完毕",
    "repaid",
    "settled",
    "on time",
    "paid in full",
)

# --- normalization ----------------------------------------------------------------------

# Full-width forms U+FF01..U+FF5E are ASCII U+0021..U+007E shifted; U+3000 is a space.
_FULL_WIDTH = {chr(0xFF01 + i): chr(0x21 + i) for i in range(0x5E)} | {"\u3000": " "}
# Whitespace in the Unicode sense (Java's \s is ASCII-only): tabs, newlines, NBSP, U+2028...
_WHITESPACE = r"[\s\p{Z}\u0085]+"
# Zero-width characters split words invisibly ("逾\u200b期"): removed outright.
_ZERO_WIDTH = r"[\u200B-\u200D\u2060\uFEFF]"


def _traditional_to_simplified() -> dict[str, str]:
    """OpenCC's character table (TSCharacters.txt), one character to one character.

    Where OpenCC lists several simplified candidates (``乾 -> 干 乾``) the first is taken,
    as OpenCC itself does; phrase-level conversions (TSPhrases) need a segmenter and are
    not applied, so 乾隆 becomes 干隆. Identity entries are skipped.
    """
    table = resources.files("opencc").joinpath("dictionary", "TSCharacters.txt")
    mapping: dict[str, str] = {}
    for line in table.read_text(encoding="utf-8").splitlines():
        source, _, targets = line.partition("\t")
        target = targets.split(" ")[0] if targets else ""
        if len(source) == 1 and len(target) == 1 and source != target:
            mapping[source] = target
    return mapping


@functools.cache
def _char_map() -> dict[str, str]:
    """Every single-character rewrite of normalization: full width, then T -> S."""
    return _FULL_WIDTH | _traditional_to_simplified()


@functools.cache
def _translate_args() -> tuple[str, str]:
    mapping = _char_map()
    return "".join(mapping), "".join(mapping.values())


def fold_width(col: str | Column) -> Column:
    """Full-width ASCII (and the ideographic space) to half-width: ＡＢＣ１２３ -> ABC123."""
    full = "".join(_FULL_WIDTH)
    return F.translate(_col(col), full, "".join(_FULL_WIDTH[c] for c in full))


def normalize_text(col: str | Column) -> Column:
    """Full width -> half width, traditional -> simplified, whitespace runs -> one space.

    Case is kept (matching lower-cases on its own). Zero-width characters are removed,
    and the result is trimmed.
    """
    matching, replace = _translate_args()
    c = F.translate(_col(col).cast("string"), matching, replace)
    c = F.regexp_replace(c, F.lit(_ZERO_WIDTH), F.lit(""))
    return F.trim(F.regexp_replace(c, F.lit(_WHITESPACE), F.lit(" ")))


def _normalize_str(text: str) -> str:
    """``normalize_text`` in Python, for ``tokens`` (same table, same whitespace rules)."""
    text = text.translate(_char_table())
    text = re.sub("[\u200b-\u200d\u2060\ufeff]", "", text)
    return " ".join(text.split())


@functools.cache
def _char_table() -> dict[int, str]:
    return str.maketrans(_char_map())


# --- tokenization -----------------------------------------------------------------------

# Numbers (thousands separators allowed; dotted runs such as 2024.03.05 kept whole), ASCII
# words, runs of Han characters, and other letters (kana, hangul, accented Latin);
# everything else (punctuation, symbols, spaces) separates tokens and is dropped.
_TOKEN = re.compile(
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)*)"
    r"|(?P<word>[A-Za-z][A-Za-z0-9]*(?:['’-][A-Za-z0-9]+)*)"
    r"|(?P<han>[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)"
    r"|(?P<other>[^\W\d_]+)"
)


@functools.cache
def _jieba():
    """A private jieba tokenizer (not the global one), quiet, with the lexicon added."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    segmenter = jieba.Tokenizer()
    segmenter.initialize()
    for term in sorted({*(t for terms in LEXICON.values() for t in terms), *POSITIVE}):
        if not term.isascii():
            segmenter.add_word(term)
    return segmenter


def tokens(text: str) -> list[str]:
    """Word tokens of ``text``: Chinese segmented by jieba, English lower-cased.

    The text is normalized first (as ``normalize_text``). Numbers are kept without their
    thousands separators (``1,234.50`` -> ``1234.50``); punctuation and whitespace are
    dropped. Lexicon terms (``资不抵债``, ``无力还款``) stay whole tokens; multi-word English
    terms (``past due``) come out as their words.
    """
    out: list[str] = []
    for m in _TOKEN.finditer(_normalize_str(text)):
        kind, value = m.lastgroup, m.group()
        if kind == "num":
            out.append(value.replace(",", ""))
        elif kind == "han":
            out.extend(w for w in _jieba().lcut(value) if w.strip())
        else:
            out.append(value.lower())
    return out


# A DataType, not the DDL "array<string>": parsing DDL needs a live session at import.
@F.pandas_udf(ArrayType(StringType()))
def tokenize(texts: pd.Series) -> pd.Series:
    """``tokens`` of each text as a pandas UDF: ``array<string>``, null for null."""
    return texts.map(lambda t: tokens(t) if isinstance(t, str) else None)


# --- lexicon ----------------------------------------------------------------------------


def _term_pattern(term: str) -> str:
    """A Java regex for one term; ASCII terms only as whole words.

    Lookarounds rather than ``\\b``: on the JVM ``\\b`` counts Han characters as word
    characters, so ``客户overdue`` would have no boundary before ``overdue``.
    """
    escaped = re.escape(term)
    if term.isascii():
        return rf"(?<![a-z0-9]){escaped}(?![a-z0-9])"
    return escaped


def _terms_pattern(terms: tuple[str, ...]) -> str:
    # Longest first, so a longer term wins where two start at the same place.
    return "|".join(_term_pattern(t.lower()) for t in sorted(terms, key=len, reverse=True))


def _count(lowered: Column, terms: tuple[str, ...]) -> Column:
    """Non-overlapping occurrences of any of ``terms`` in already lower-cased text."""
    return F.regexp_count(lowered, F.lit(_terms_pattern(terms))).cast("int")


def _hits(norm: Column) -> Column:
    lowered = F.lower(norm)
    pairs = [x for cat, terms in LEXICON.items() for x in (F.lit(cat), _count(lowered, terms))]
    return F.when(norm.isNotNull(), F.create_map(*pairs))


def _categories(hits: Column) -> Column:
    return F.array_sort(F.map_keys(F.map_filter(hits, lambda _, v: v > 0)))


def _negativity(norm: Column, hits: Column) -> Column:
    neg = F.aggregate(F.map_values(hits), F.lit(0), lambda acc, n: acc + n)
    pos = _count(F.lower(norm), POSITIVE)
    total = neg + pos
    ratio = F.when(total == 0, F.lit(0.0)).otherwise((neg - pos).cast("double") / total)
    return F.when(norm.isNotNull(), ratio)


def lexicon_hits(col: str | Column) -> Column:
    """``map<string,int>``: every LEXICON category -> occurrences in the normalized text.

    Matching is case-insensitive; English terms match whole words only (``fine`` not in
    ``fined``); within a category, occurrences do not overlap. Categories with no hit map
    to 0.
    """
    return _hits(normalize_text(col))


def risk_categories(col: str | Column) -> Column:
    """``array<string>``: the LEXICON categories the text hits, sorted."""
    return _categories(lexicon_hits(col))


def negativity(col: str | Column) -> Column:
    """``double`` in [-1, 1]: ``(neg - pos) / (neg + pos)``, 0.0 when both are 0.

    ``neg`` is the total of ``lexicon_hits`` over all categories, ``pos`` the occurrences
    of POSITIVE terms (counted the same way): -1 is purely positive wording, 1 purely
    negative.
    """
    norm = normalize_text(col)
    return _negativity(norm, _hits(norm))


# --- amounts ----------------------------------------------------------------------------

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_UNIT = r"[万亿]"
_CUR_PREFIX = r"[¥￥$]|(?<![a-z])(?:rmb|cny|usd|us\$)(?![a-z])|人民币|美元"
_CUR_SUFFIX = r"元|人民币|美元|(?<![a-z])(?:yuan|rmb|cny|usd|dollars?)(?![a-z])"
# A number counts as money only with a currency marker before it, or a unit (万/亿) or a
# currency after it: "5万元", "1.2亿", "¥1,234.50", "RMB 1234.5", "3,000 yuan", "$2,000".
_AMOUNT = (
    rf"(?i)(?:{_CUR_PREFIX}) ?(?:{_NUM})(?: ?{_UNIT})?(?: ?(?:{_CUR_SUFFIX}))?"
    rf"|(?<![\d.,])(?:{_NUM}) ?(?:{_UNIT}(?: ?(?:{_CUR_SUFFIX}))?|(?:{_CUR_SUFFIX}))"
)
_USD = r"(?i)\$|usd|美元|dollar"


def _money(norm: Column) -> Column:
    def parse(m: Column) -> Column:
        number = F.regexp_replace(F.regexp_extract(m, _NUM, 0), ",", "")
        scale = F.when(m.contains("亿"), F.lit(100_000_000)).when(m.contains("万"), 10_000)
        value = number.try_cast("decimal(30,8)") * F.coalesce(scale, F.lit(1))
        currency = F.when(m.rlike(_USD), F.lit("USD")).otherwise(F.lit("CNY"))
        return F.struct(value.cast("double").alias("amount"), currency.alias("currency"))

    found = F.transform(F.regexp_extract_all(norm, F.lit(_AMOUNT), F.lit(0)), parse)
    return F.filter(found, lambda s: s["amount"].isNotNull())


def extract_currency_amounts(col: str | Column) -> Column:
    """``array<struct<amount:double,currency:string>>`` of money amounts, in text order.

    ``万`` multiplies by 10,000 and ``亿`` by 100,000,000; the currency is ``USD`` for
    ``$``/``USD``/``美元``/``dollars``, otherwise ``CNY``. No exchange rates are applied.
    """
    return _money(normalize_text(col))


def extract_amounts(col: str | Column) -> Column:
    """``array<double>``: the amounts of ``extract_currency_amounts`` (USD ones unconverted)."""
    return F.transform(extract_currency_amounts(col), lambda s: s["amount"])


# --- dates ------------------------------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_NUMERIC_DATE = r"(?<!\d)\d{4}(?:年\d{1,2}月\d{1,2}日|([-/.])\d{1,2}\1\d{1,2}(?!\d))"
_DATE = (
    rf"(?i){_NUMERIC_DATE}"
    rf"|(?<![a-z]){_MONTH}\.? \d{{1,2}},? \d{{4}}(?!\d)"
    rf"|(?<!\d)\d{{1,2}} {_MONTH}\.?,? \d{{4}}(?!\d)"
)
_ENGLISH_DATE_FORMATS = ("MMMM d yyyy", "MMM d yyyy", "d MMMM yyyy", "d MMM yyyy")


def _dates(norm: Column) -> Column:
    def parse(m: Column) -> Column:
        numeric = F.regexp_replace(F.regexp_replace(m, "日", ""), "[年月/.]", "-")
        # English: drop "." and ",", capitalize the month ("march" -> "March").
        english = F.initcap(F.regexp_replace(m, r"[.,]", ""))
        return F.coalesce(
            F.try_to_date(numeric, "yyyy-M-d"),
            *(F.try_to_date(english, f) for f in _ENGLISH_DATE_FORMATS),
        )

    found = F.transform(F.regexp_extract_all(norm, F.lit(_DATE), F.lit(0)), parse)
    return F.filter(found, lambda d: d.isNotNull())


def extract_dates(col: str | Column) -> Column:
    """``array<date>`` in text order: ``2024年3月5日``, ``2024-03-05``, ``2024/3/5``,
    ``2024.03.05``, ``March 5, 2024``, ``5 March 2024`` (month names full or abbreviated,
    any case). Impossible dates (``2024-02-30``) are dropped.
    """
    return _dates(normalize_text(col))


# --- all together -----------------------------------------------------------------------


def text_signals(text_col: str, prefix: str = "") -> Transform:
    """Add the text signals of ``text_col``, each column name starting with ``prefix``:

    ``normalized_text`` string, ``tokens`` array<string>, ``token_count`` int,
    ``lexicon_hits`` map<string,int>, ``risk_categories`` array<string>,
    ``negativity`` double, ``amounts`` array<double>, ``dates`` array<date>.

    Everything is computed from ``normalized_text``, so normalization runs once. National
    IDs, mobile numbers, bank cards and e-mails in the text are masked first
    (``pii.mask_identifiers``): neither the text nor its tokens keep them.
    """

    def _apply(df: DataFrame) -> DataFrame:
        norm_name = f"{prefix}normalized_text"
        norm = F.col(norm_name)
        hits = _hits(norm)
        return (
            df.withColumn(norm_name, pii.mask_identifiers(normalize_text(text_col)))
            .withColumn(f"{prefix}tokens", tokenize(norm))
            .withColumns(
                {
                    f"{prefix}token_count": F.when(norm.isNotNull(), F.size(f"{prefix}tokens")),
                    f"{prefix}lexicon_hits": hits,
                    f"{prefix}risk_categories": _categories(hits),
                    f"{prefix}negativity": _negativity(norm, hits),
                    f"{prefix}amounts": F.transform(_money(norm), lambda s: s["amount"]),
                    f"{prefix}dates": _dates(norm),
                }
            )
        )

    return _apply


def _col(col: str | Column) -> Column:
    return F.col(col) if isinstance(col, str) else col
