"""Entity resolution: public-web records (court cases, penalties, news) -> customers and employers.

Pure transforms over clear-text inputs (the caller decrypts bronze in memory); the output
holds no clear name or ID, only ``customer_id``, HMAC pseudonyms (``company_key``) and
evidence strings such as ``name=exact;city=match;birth_year=match``.

How a record links to a customer (one best customer per record):

* ``exact_id``: the record shows a full 18-character ID whose HMAC equals the customer's:
  confidence 1.0. A full ID that equals no customer's is another person: no name match.
* ``masked_id_name``: the record shows a masked ID (``1101**********1234``); the visible
  prefix and suffix agree with the customer's ID (same length) and the normalized names
  are equal: prior 0.98.
* ``name_attributes`` (the record's subject is a named person) and ``name_mention`` (a
  customer's full name occurs in a news text): equal normalized names; prior ``0.5 / n``,
  ``n`` the number of customers of that name no attribute contradicts (a unique name
  alone is even odds). A two-character name found in free text starts at ``0.25 / n``:
  short names double as words (许可 in 金融许可证) and as parts of longer names.

Attributes compared with each candidate: the masked ID's visible digits, the province,
the city of every court named in ``text`` (``深圳市龙华区人民法院`` -> 深圳) and the
birth year implied by ``age`` at ``record_date`` (within one year). Any disagreement
drops the candidate: a namesake lives elsewhere and was born in another year.
Agreements multiply the prior odds by likelihood ratios (Fellegi-Sunter style): city x8,
province x4 (only when the city did not already agree), birth year x10; a mention glued
to characters of the book's names (a surname character before it, a given-name
character after it: 王旭 in 王旭辉) x0.2. Confidence = odds / (1 + odds), rounded to 4
places: a unique name with a matching province 0.8, plus the birth year 0.9756; a
unique three-character name in an article naming a court of the customer's city 0.8889,
a two-character one 0.7273. Evidence lists every comparison made (``name=exact;
province=match;birth_year=match``), ``boundary=glued``, and ``name_shared=N`` when N
customers of the book share the name; never a value.

Ties (two customers with the best confidence of a record) give no link: either choice is
a coin flip, and a link to the wrong person is the costly error in credit decisions. A
name shared by compatible customers is always such a tie.

``DEFAULT_THRESHOLD`` is 0.5, so a unique, uncontradicted name links without support.
That maximizes F1 on the generated site (20,000 customers, scale 3): penalized
individuals and names in penalty stories carry no attributes, half of them are
customers, and an outside name rarely hits a unique customer name; the 0.5 links are
right 27 times in 31. Raising the threshold above 0.5 takes penalty person recall from
0.62 to 0, news person F1 from 0.936 to 0.914; lowering it to 0.35 admits only wrong
links (glued and short unsupported mentions).

Companies: a record whose subject is not a person links to an employer of the book when
``normalize_company`` of its subject name equals the employer's (``company_name``, 0.95);
a news text links to every employer whose normalized name (4+ characters) it contains
(``company_mention``, 0.9; a name inside a longer matched one is dropped). Person
mentions are searched after matched company names and court names are masked, so the
龙华 of 深圳市龙华区人民法院 is not a person. Mention search covers CJK names of 2-4
characters and news records only; ``张某``-style partial names never link.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.analyze.text import fold_width
from riskcontrol.core import pii
from riskcontrol.core.catalog import SILVER_ENTITY_LINKS, SchemaError, schema
from riskcontrol.core.config import Settings

RECORD_SCHEMA = schema(
    "record_kind string",  # court | penalty | news
    "record_id string",
    "subject_type string",  # person | company | institution | null
    "subject_name string",
    "id_number string",  # full, masked with '*', or null
    "province string",
    "age int",  # at record_date
    "record_date date",
    "text string",  # news title + body; penalty reason; court name for court records
)
CUSTOMER_SCHEMA = schema(
    "customer_id string",
    "name string",
    "national_id string",
    "province string",
    "city string",
    "birth_date date",
    "employer_name string",
)
LINK_SCHEMA = SILVER_ENTITY_LINKS.schema  # entity_type: customer | company
EMPLOYER_LINK_SCHEMA = schema(
    "customer_id string",
    "record_kind string",
    "record_id string",
    "record_date date",
    "match_method string",
    "company_key string",
    "confidence double",
)
RECORD_COLUMNS = tuple(RECORD_SCHEMA.fieldNames())
CUSTOMER_COLUMNS = tuple(CUSTOMER_SCHEMA.fieldNames())
LINK_COLUMNS = tuple(LINK_SCHEMA.fieldNames())
EMPLOYER_LINK_COLUMNS = tuple(EMPLOYER_LINK_SCHEMA.fieldNames())

DEFAULT_THRESHOLD = 0.5
PRIOR_UNIQUE_NAME = 0.5
PRIOR_SHORT_MENTION = 0.25  # a two-character name found in free text may be a word (许可)
PRIOR_MASKED_ID = 0.98
LIKELIHOOD_RATIOS = {"city": 8.0, "province": 4.0, "birth_year": 10.0, "glued": 0.2}
COMPANY_NAME_CONFIDENCE = 0.95
COMPANY_MENTION_CONFIDENCE = 0.9
MIN_COMPANY_CHARS = 4  # shorter normalized company names are not searched in texts
MENTION_LENGTHS = (2, 3, 4)

_LATIN_SUFFIXES = (
    r"(?:[\s,.]*\b(?:co|ltd|limited|inc|corp|corporation|company|group|llc|plc)\b\.?)+[\s,.]*$"
)
_CHINESE_SUFFIXES = "(?:股份有限公司|有限责任公司|有限公司|集团公司|集团|公司)+$"
_REGION_SUFFIXES = "(?:维吾尔自治区|壮族自治区|回族自治区|特别行政区|自治区|省|市)$"
# A court named in a text: a two-character city, an optional district or 中级, 人民法院.
# (Exactly two characters before 市, so a name right before the city is never swallowed.)
COURT_PATTERN = r"(\p{IsHan}{2})市(?:\p{IsHan}{1,6}?[区县市]|中级)?人民法院"
_PARTIAL_NAME = "[某*＊×○〇]"
_PERSON_ID = r"^\d{17}[\dX]$"
_COMPANY_WORDS = "公司|集团|企业|合伙|工作室|商行|经营部|厂|店|中心|事务所"
_INSTITUTION_WORDS = "银行|支行|分行|信用社|合作联社|保险|证券|信托"


# --- normalization ------------------------------------------------------------------------------
def _col(c: Column | str) -> Column:
    return F.col(c) if isinstance(c, str) else c


def fold(col: Column | str) -> Column:
    """Full-width ASCII and the ideographic space to half-width, then lower case."""
    return F.lower(fold_width(_col(col)))


def normalize_name(col: Column | str) -> Column:
    """A name as letters and digits only: half-width, lower case, no space, dot or mark.

    ``' 张 · 三 '`` -> ``张三``, ``'ＭＡＲＹ  O'Neil'`` -> ``maryoneil``; empty -> null.
    """
    return F.nullif(F.regexp_replace(fold(col), r"[^\p{L}\p{N}]", ""), F.lit(""))


def normalize_company(col: Column | str) -> Column:
    """``normalize_name`` without the legal-form suffix, so variants of one company agree.

    Removes (repeatedly, at the end) 股份有限公司, 有限责任公司, 有限公司, 集团(公司), 公司
    and the Latin Co., Ltd., Limited, Inc., Corp., Group, LLC, PLC (as separate words).
    """
    latin = F.regexp_replace(fold(col), _LATIN_SUFFIXES, "")
    letters = F.regexp_replace(latin, r"[^\p{L}\p{N}]", "")
    return F.nullif(F.regexp_replace(letters, _CHINESE_SUFFIXES, ""), F.lit(""))


def normalize_region(col: Column | str) -> Column:
    """A province or city without its 省/市/自治区 suffix: 广东省 -> 广东, 北京市 -> 北京."""
    return F.nullif(F.regexp_replace(normalize_name(col), _REGION_SUFFIXES, ""), F.lit(""))


def is_partial_name(col: Column | str) -> Column:
    """True for names a paper or a masked page shortens: 张某, 王**, 李×."""
    return F.coalesce(_col(col).rlike(_PARTIAL_NAME), F.lit(False))


def court_cities(text: Column | str) -> Column:
    """Normalized cities of the courts named in a text (array, possibly empty)."""
    return F.coalesce(
        F.regexp_extract_all(fold(text), F.lit(COURT_PATTERN), 1), F.array().cast("array<string>")
    )


# --- boundaries ---------------------------------------------------------------------------------
def _conform(df: DataFrame, contract: T.StructType, what: str) -> DataFrame:
    """The declared columns, cast to the declared types; missing ones fail loudly."""
    missing = [c for c in contract.fieldNames() if c not in df.columns]
    if missing:
        raise SchemaError(f"{what}: missing columns {missing}")
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in contract.fields])


def _records(records: DataFrame, as_of: dt.date | None) -> DataFrame:
    df = _conform(records, RECORD_SCHEMA, "records")
    if as_of is not None:
        df = df.where(F.col("record_date") <= F.lit(as_of))
    id_clean = F.upper(F.regexp_replace("id_number", r"\s", ""))
    masked = id_clean.contains("*")
    return df.select(
        "*",
        F.when(is_partial_name("subject_name"), None)
        .otherwise(normalize_name("subject_name"))
        .alias("r_name"),
        F.when(masked, F.regexp_extract(id_clean, r"^([0-9X]*)", 1)).alias("r_id_prefix"),
        F.when(masked, F.regexp_extract(id_clean, r"([0-9X]*)$", 1)).alias("r_id_suffix"),
        F.coalesce(~masked & id_clean.rlike(_PERSON_ID), F.lit(False)).alias("r_id_full"),
        F.coalesce(masked, F.lit(False)).alias("r_id_masked"),
        id_clean.alias("r_id_clean"),
        normalize_region("province").alias("r_province"),
        court_cities("text").alias("r_cities"),
        (F.year("record_date") - F.col("age")).alias("r_birth_year"),
    )


def _customers(customers: DataFrame, settings: Settings) -> DataFrame:
    df = _conform(customers, CUSTOMER_SCHEMA, "customers")
    nid = F.upper(F.regexp_replace("national_id", r"\s", ""))
    out = df.select(
        "customer_id",
        normalize_name("name").alias("c_name"),
        nid.alias("c_nid"),
        pii.pseudonym(nid, settings).alias("c_id_key"),
        normalize_region("province").alias("c_province"),
        normalize_region("city").alias("c_city"),
        F.year("birth_date").alias("c_birth_year"),
        normalize_company("employer_name").alias("c_company"),
    )
    return out.withColumn(
        "c_name_count", F.count("*").over(Window.partitionBy("c_name"))
    ).withColumn("c_company_key", pii.pseudonym("c_company", settings))


def _employers(cust: DataFrame) -> DataFrame:
    """Distinct employers: normalized name and its HMAC company key."""
    return (
        cust.where(F.col("c_company").isNotNull()).select("c_company", "c_company_key").distinct()
    )


# --- person links -------------------------------------------------------------------------------
def _compare(known: Column, agree: Column) -> Column:
    """'match' / 'mismatch' when ``known``, else null."""
    return F.when(known, F.when(agree, F.lit("match")).otherwise(F.lit("mismatch")))


def _text_for_mentions(recs: DataFrame, employers: DataFrame) -> tuple[DataFrame, DataFrame]:
    """News texts with matched employer names and court names masked; plus the matches."""
    news = recs.where((F.col("record_kind") == "news") & F.col("text").isNotNull()).select(
        "record_kind",
        "record_id",
        "record_date",
        normalize_name("text").alias("letters"),
        F.regexp_replace(fold("text"), r"\s+", "").alias("folded"),
    )
    searchable = employers.where(F.length("c_company") >= MIN_COMPANY_CHARS)
    hits = news.join(
        F.broadcast(searchable), F.instr(F.col("letters"), F.col("c_company")) > 0
    ).select("record_kind", "record_id", "record_date", "c_company", "c_company_key")
    # A company name inside a longer matched one (深圳市东方 in 深圳市东方贸易) is not a mention.
    longer = hits.select("record_kind", "record_id", F.col("c_company").alias("longer_company"))
    mentions = (
        hits.join(longer, ["record_kind", "record_id"])
        .groupBy("record_kind", "record_id", "record_date", "c_company", "c_company_key")
        .agg(
            F.max(
                (
                    (F.col("longer_company") != F.col("c_company"))
                    & (F.instr("longer_company", F.col("c_company")) > 0)
                ).cast("int")
            ).alias("contained")
        )
        .where(F.col("contained") == 0)
        .drop("contained")
    )
    return news, mentions


def _mention_candidates(news: DataFrame, company_hits: DataFrame, cust: DataFrame) -> DataFrame:
    """(record, customer) pairs where the customer's full name occurs in the masked text."""
    per_record = company_hits.groupBy("record_kind", "record_id").agg(
        F.collect_set("c_company").alias("companies")
    )
    # The folded text keeps its punctuation as separators, so n-grams never join words
    # across a comma; company names are masked as the normalized form found.
    masked = (
        news.join(per_record, ["record_kind", "record_id"], "left")
        .select(
            "record_kind",
            "record_id",
            F.aggregate(
                F.coalesce("companies", F.array().cast("array<string>")),
                F.col("folded"),
                lambda acc, company: F.replace(acc, company, F.lit("|")),
            ).alias("masked"),
        )
        .select(
            "record_kind",
            "record_id",
            F.regexp_replace("masked", COURT_PATTERN, "|").alias("masked"),
        )
    )
    grams = (
        masked.select(
            "record_kind",
            "record_id",
            "masked",
            F.explode(F.sequence(F.lit(1), F.greatest(F.length("masked"), F.lit(1)))).alias("pos"),
        )
        .select(
            "record_kind",
            "record_id",
            "pos",
            F.explode(F.array(*[F.lit(n) for n in MENTION_LENGTHS])).alias("len"),
            "masked",
        )
        .select(
            "record_kind",
            "record_id",
            "pos",
            "len",
            F.substring("masked", F.col("pos"), F.col("len")).alias("gram"),
            F.when(F.col("pos") > 1, F.substring("masked", F.col("pos") - 1, 1)).alias("before"),
            F.substring("masked", F.col("pos") + F.col("len"), 1).alias("after"),
        )
        .where((F.length("gram") == F.col("len")) & F.col("gram").rlike(r"^\p{L}+$"))
        .where(~is_partial_name("gram"))
    )
    han = cust.where(F.col("c_name").rlike(r"^\p{IsHan}{2,4}$")).select("c_name").distinct()
    surname_chars = han.select(F.substring("c_name", 1, 1).alias("before")).distinct()
    given_chars = (
        han.select(F.explode(F.split(F.substring("c_name", 2, 3), "")).alias("after"))
        .where(F.col("after") != "")
        .distinct()
    )
    found = (
        grams.join(han, grams["gram"] == han["c_name"])
        .join(F.broadcast(surname_chars.withColumn("glued_before", F.lit(True))), "before", "left")
        .join(F.broadcast(given_chars.withColumn("glued_after", F.lit(True))), "after", "left")
        .select(
            "record_kind",
            "record_id",
            "pos",
            "len",
            "c_name",
            (
                F.coalesce("glued_before", F.lit(False)) | F.coalesce("glued_after", F.lit(False))
            ).alias("glued"),
        )
    )
    spans = found.groupBy("record_kind", "record_id").agg(
        F.collect_list(F.struct("pos", "len")).alias("spans")
    )
    inside_longer = F.exists(
        "spans",
        lambda s: (
            (s["len"] > F.col("len"))
            & (s["pos"] <= F.col("pos"))
            & (s["pos"] + s["len"] >= F.col("pos") + F.col("len"))
        ),
    )
    # A name glued to name characters may be part of a longer name (王旭 of 王旭辉): a
    # mention is ambiguous when every occurrence is glued.
    return (
        found.join(spans, ["record_kind", "record_id"])
        .where(~inside_longer)
        .groupBy("record_kind", "record_id", F.col("c_name").alias("r_name"))
        .agg(F.min(F.col("glued").cast("int")).cast("boolean").alias("r_glued"))
    )


def _confidence(prior: Column, factors: list[Column]) -> Column:
    odds = prior / (F.lit(1.0) - prior)
    for factor in factors:
        odds = odds * factor
    return F.round(odds / (F.lit(1.0) + odds), 4)


def _person_links(
    recs: DataFrame, cust: DataFrame, settings: Settings, mentions: DataFrame
) -> DataFrame:
    persons = recs.where(F.col("subject_type") == "person")
    # exact ID: the HMAC of the full ID as shown against the customers' ID keys
    by_id = (
        persons.where(F.col("r_id_full"))
        .withColumn("r_id_key", pii.pseudonym("r_id_clean", settings))
        .join(cust, F.col("r_id_key") == F.col("c_id_key"))
        .select(
            "record_kind",
            "record_id",
            "record_date",
            "customer_id",
            F.lit("exact_id").alias("match_method"),
            F.lit(1.0).alias("confidence"),
            F.lit("id=exact").alias("evidence"),
        )
    )
    # name-blocked candidates: the record's subject, or a full name mentioned in news text
    attrs = [
        "record_kind",
        "record_id",
        "record_date",
        "r_id_full",
        "r_id_masked",
        "r_id_clean",
        "r_id_prefix",
        "r_id_suffix",
        "r_province",
        "r_cities",
        "r_birth_year",
    ]
    # A full ID decides alone: equal is exact_id above, different is another person.
    named = persons.where(F.col("r_name").isNotNull() & ~F.col("r_id_full")).select(
        *attrs, "r_name", F.lit(False).alias("r_glued"), F.lit("exact").alias("via")
    )
    mentioned = (
        recs.select(*attrs)
        .join(mentions, ["record_kind", "record_id"])
        .select(*attrs, "r_name", "r_glued", F.lit("mention").alias("via"))
    )
    cands = named.unionByName(mentioned).join(cust, F.col("r_name") == F.col("c_name"))
    visible = F.length("r_id_prefix") + F.length("r_id_suffix")
    cands = cands.select(
        "*",
        _compare(
            F.col("r_id_masked") & (visible > 0) & F.col("c_nid").isNotNull(),
            F.col("c_nid").startswith(F.col("r_id_prefix"))
            & F.col("c_nid").endswith(F.col("r_id_suffix"))
            & (F.length("r_id_clean") == F.length("c_nid")),
        ).alias("id_digits"),
        _compare(
            F.col("r_province").isNotNull() & F.col("c_province").isNotNull(),
            F.col("r_province") == F.col("c_province"),
        ).alias("province"),
        _compare(
            (F.size("r_cities") > 0) & F.col("c_city").isNotNull(),
            F.array_contains("r_cities", F.col("c_city")),
        ).alias("city"),
        _compare(
            F.col("r_birth_year").isNotNull() & F.col("c_birth_year").isNotNull(),
            F.abs(F.col("r_birth_year") - F.col("c_birth_year")) <= 1,
        ).alias("birth_year"),
    )
    checks = ["province", "city", "birth_year", "id_digits"]
    contradicted = F.lit(False)
    for c in checks:
        contradicted = contradicted | F.coalesce(F.col(c) == "mismatch", F.lit(False))
    compatible = cands.where(~contradicted).withColumn(
        "n_compatible",
        F.count("*").over(Window.partitionBy("record_kind", "record_id", "via", "r_name")),
    )
    masked_ok = F.col("id_digits") == "match"
    short_mention = (F.col("via") == "mention") & (F.length("r_name") <= 2)
    prior = F.when(masked_ok, F.lit(PRIOR_MASKED_ID)).otherwise(
        F.when(short_mention, F.lit(PRIOR_SHORT_MENTION)).otherwise(F.lit(PRIOR_UNIQUE_NAME))
        / F.col("n_compatible")
    )
    lr = LIKELIHOOD_RATIOS

    def factor(name: str, value: float, extra: Column | None = None) -> Column:
        agrees = F.col(name) == "match"
        if extra is not None:
            agrees = agrees & extra
        return F.when(agrees, F.lit(value)).otherwise(F.lit(1.0))

    factors = [
        factor("city", lr["city"]),
        factor("province", lr["province"], F.coalesce(F.col("city") != "match", F.lit(True))),
        factor("birth_year", lr["birth_year"]),
        F.when(F.col("r_glued"), F.lit(lr["glued"])).otherwise(F.lit(1.0)),
    ]
    evidence = F.concat_ws(
        ";",
        F.concat(F.lit("name="), F.col("via")),
        *[F.when(F.col(c).isNotNull(), F.concat(F.lit(f"{c}="), F.col(c))) for c in checks],
        F.when(F.col("r_glued"), F.lit("boundary=glued")),
        F.when(F.col("c_name_count") > 1, F.concat(F.lit("name_shared="), F.col("c_name_count"))),
    )
    by_name = compatible.select(
        "record_kind",
        "record_id",
        "record_date",
        "customer_id",
        F.when(masked_ok, F.lit("masked_id_name"))
        .when(F.col("via") == "mention", F.lit("name_mention"))
        .otherwise(F.lit("name_attributes"))
        .alias("match_method"),
        _confidence(prior, factors).alias("confidence"),
        evidence.alias("evidence"),
    )
    return by_id.unionByName(by_name)


def _best_per_record(cands: DataFrame, threshold: float) -> DataFrame:
    """The single best customer of each record; a tie at the top gives no link."""
    record = Window.partitionBy("record_kind", "record_id")
    per_customer = Window.partitionBy("record_kind", "record_id", "customer_id")
    ranked = (
        cands.withColumn(
            "__rn",
            F.row_number().over(per_customer.orderBy(F.desc("confidence"), "match_method")),
        )
        .where("__rn = 1")
        .withColumn("__top", F.max("confidence").over(record))
        .where(F.col("confidence") == F.col("__top"))
        .withColumn("__n_top", F.count("*").over(record))
    )
    return ranked.where((F.col("__n_top") == 1) & (F.col("confidence") >= threshold)).drop(
        "__rn", "__top", "__n_top"
    )


# --- company links ------------------------------------------------------------------------------
def _company_links(recs: DataFrame, employers: DataFrame, mentions: DataFrame) -> DataFrame:
    subjects = recs.where(
        F.coalesce(F.col("subject_type") != "person", F.lit(True))
        & F.col("subject_name").isNotNull()
    ).select(
        "record_kind", "record_id", "record_date", normalize_company("subject_name").alias("r")
    )
    named = subjects.join(F.broadcast(employers), F.col("r") == F.col("c_company")).select(
        "record_kind",
        "record_id",
        "record_date",
        "c_company_key",
        F.lit("company_name").alias("match_method"),
        F.lit(COMPANY_NAME_CONFIDENCE).alias("confidence"),
        F.lit("company=exact").alias("evidence"),
    )
    mentioned = mentions.select(
        "record_kind",
        "record_id",
        "record_date",
        "c_company_key",
        F.lit("company_mention").alias("match_method"),
        F.lit(COMPANY_MENTION_CONFIDENCE).alias("confidence"),
        F.lit("company=mention").alias("evidence"),
    )
    both = named.unionByName(mentioned)
    best = Window.partitionBy("record_kind", "record_id", "c_company_key").orderBy(
        F.desc("confidence")
    )
    return (
        both.withColumn("__rn", F.row_number().over(best))
        .where("__rn = 1")
        .select(
            "record_kind",
            "record_id",
            F.lit("company").alias("entity_type"),
            F.lit(None).cast("string").alias("customer_id"),
            F.col("c_company_key").alias("company_key"),
            "match_method",
            "confidence",
            "evidence",
            "record_date",
        )
    )


# --- public API ---------------------------------------------------------------------------------
def link_records(
    records: DataFrame,
    customers: DataFrame,
    settings: Settings,
    as_of: dt.date | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> DataFrame:
    """Links of records (``RECORD_SCHEMA``) to customers and employers (``LINK_SCHEMA``).

    ``customers`` follow ``CUSTOMER_SCHEMA`` (clear text, in memory only). With ``as_of``,
    only records dated on or before it are linked. Person links: at most one per record,
    with ``confidence >= threshold``; company links: one per record and employer.
    """
    recs = _records(records, as_of)
    cust = _customers(customers, settings)
    employers = _employers(cust)
    news, company_hits = _text_for_mentions(recs, employers)
    person_mentions = _mention_candidates(news, company_hits, cust)
    persons = _best_per_record(
        _person_links(recs, cust, settings, person_mentions), threshold
    ).select(
        "record_kind",
        "record_id",
        F.lit("customer").alias("entity_type"),
        "customer_id",
        F.lit(None).cast("string").alias("company_key"),
        "match_method",
        F.col("confidence").cast("double"),
        "evidence",
        "record_date",
    )
    companies = _company_links(recs, employers, company_hits)
    return _conform(persons.unionByName(companies), LINK_SCHEMA, "links")


def employer_links(links: DataFrame, customers: DataFrame, settings: Settings) -> DataFrame:
    """Company links expanded to every customer employed there (``EMPLOYER_LINK_SCHEMA``)."""
    staff = _customers(customers, settings).where(F.col("c_company_key").isNotNull())
    return (
        links.where(F.col("entity_type") == "company")
        .drop("customer_id")
        .join(staff, F.col("company_key") == F.col("c_company_key"))
        .select(
            "customer_id",
            "record_kind",
            "record_id",
            "record_date",
            F.lit("employer").alias("match_method"),
            "company_key",
            "confidence",
        )
        .transform(lambda df: _conform(df, EMPLOYER_LINK_SCHEMA, "employer links"))
    )


# --- bronze -> records --------------------------------------------------------------------------
def court_records(bronze: DataFrame) -> DataFrame:
    """Crawled court records -> ``RECORD_SCHEMA``; the court's name is the text (its city).

    Bronze court rows carry no province or age (the detail page shows them for some
    persons, the crawl item does not keep them), so those are null.
    """
    return bronze.select(
        F.lit("court").alias("record_kind"),
        "record_id",
        "subject_type",
        "subject_name",
        "id_number",
        F.lit(None).cast("string").alias("province"),
        F.lit(None).cast("int").alias("age"),
        F.to_date(F.substring("filing_date", 1, 10)).alias("record_date"),
        F.col("court").alias("text"),
    )


def penalty_subject(institution: Column | str) -> tuple[Column, Column]:
    """(subject_type, subject_name) of a penalty's 当事人: ``王伟（时任…行长）`` is a person."""
    inst = F.trim(_col(institution))
    head = F.trim(F.regexp_extract(inst, r"^([^（(]+)", 1))
    person = head.rlike(r"^\p{IsHan}{2,4}$") & (
        inst.rlike(r"[（(]\s*(?:时任|原任|曾任|时为)") | (inst == head)
    )
    kind = (
        F.when(person, "person")
        .when(inst.rlike(_INSTITUTION_WORDS), "institution")
        .when(inst.rlike(_COMPANY_WORDS), "company")
        .otherwise("institution")
    )
    return kind, F.when(person, head).otherwise(inst)


def penalty_records(bronze: DataFrame) -> DataFrame:
    """Crawled penalties -> ``RECORD_SCHEMA``: subject from 当事人, reason as the text."""
    kind, name = penalty_subject("institution")
    return bronze.select(
        F.lit("penalty").alias("record_kind"),
        "record_id",
        kind.alias("subject_type"),
        name.alias("subject_name"),
        F.lit(None).cast("string").alias("id_number"),
        F.lit(None).cast("string").alias("province"),
        F.lit(None).cast("int").alias("age"),
        F.to_date(F.substring("decision_date", 1, 10)).alias("record_date"),
        F.col("reason").alias("text"),
    )


def news_records(bronze: DataFrame) -> DataFrame:
    """Crawled news -> ``RECORD_SCHEMA``: title and body are the text, no subject."""
    return bronze.select(
        F.lit("news").alias("record_kind"),
        "record_id",
        F.lit(None).cast("string").alias("subject_type"),
        F.lit(None).cast("string").alias("subject_name"),
        F.lit(None).cast("string").alias("id_number"),
        F.lit(None).cast("string").alias("province"),
        F.lit(None).cast("int").alias("age"),
        F.to_date(F.substring("published_at", 1, 10)).alias("record_date"),
        F.concat_ws("\n", "title", "body").alias("text"),
    )


# --- evaluation ---------------------------------------------------------------------------------
def load_ground_truth(path: Path | str) -> list[dict]:
    """The site's ``ground_truth.jsonl`` as a list of dicts."""
    with Path(path).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _scores(truth: set, predicted: set) -> dict:
    tp, fp, fn = len(truth & predicted), len(predicted - truth), len(truth - predicted)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall
        else (0.0 if precision is not None and recall is not None else None)
    )
    return {
        "truth": len(truth),
        "predicted": len(predicted),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": None if precision is None else round(precision, 4),
        "recall": None if recall is None else round(recall, 4),
        "f1": None if f1 is None else round(f1, 4),
    }


def evaluate(
    links: DataFrame, truth: list[dict], settings: Settings, kinds: Iterable[str] | None = None
) -> dict:
    """Precision, recall and F1 of ``links`` against the site's ground truth.

    Per record kind and overall (``"all"``), for person links (record, customer_id) and
    company links (record, company_key; the truth's company is normalized and keyed like
    the links'). Only truth rows with ``expect_record`` count: links on records the crawl
    cannot produce are ignored, links on records the truth does not know are false
    positives, and a truth customer or company without its link is a false negative.
    """
    kinds = sorted(set(kinds) if kinds is not None else {t["kind"] for t in truth})
    known = {(t["kind"], t["record_id"]) for t in truth}
    expected = {
        (t["kind"], t["record_id"]): t
        for t in truth
        if t["kind"] in kinds and t.get("expect_record", True)
    }
    spark = links.sparkSession
    names = sorted({t["company"] for t in expected.values() if t.get("company")})
    company_keys: dict[str, str] = {}
    if names:
        df = spark.createDataFrame([(n,) for n in names], "company string")
        company_keys = {
            r["company"]: r["k"]
            for r in df.select(
                "company", pii.pseudonym(normalize_company("company"), settings).alias("k")
            ).collect()
        }
    rows = (
        links.where(F.col("record_kind").isin(*kinds))
        .select("record_kind", "record_id", "entity_type", "customer_id", "company_key")
        .collect()
    )
    result: dict[str, dict] = {}
    for kind in [*kinds, "all"]:
        in_kind = [k for k in kinds if kind in ("all", k)]
        truth_person = {
            (rec[0], rec[1], t["customer_id"])
            for rec, t in expected.items()
            if rec[0] in in_kind and t.get("customer_id")
        }
        truth_company = {
            (rec[0], rec[1], company_keys[t["company"]])
            for rec, t in expected.items()
            if rec[0] in in_kind and t.get("company")
        }
        counted = [
            r
            for r in rows
            if r["record_kind"] in in_kind
            and (
                (r["record_kind"], r["record_id"]) in expected
                or (r["record_kind"], r["record_id"]) not in known
            )
        ]
        pred_person = {
            (r["record_kind"], r["record_id"], r["customer_id"])
            for r in counted
            if r["entity_type"] == "customer"
        }
        pred_company = {
            (r["record_kind"], r["record_id"], r["company_key"])
            for r in counted
            if r["entity_type"] == "company"
        }
        result[kind] = {
            "records": sum(1 for rec in expected if rec[0] in in_kind),
            "person": _scores(truth_person, pred_person),
            "company": _scores(truth_company, pred_company),
        }
    return result
