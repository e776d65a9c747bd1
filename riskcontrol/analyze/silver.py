"""Analyze tier, bronze -> silver: typed, deduplicated, validated, pseudonymized.

Each ``clean_*`` function is pure: it takes the bronze DataFrame (and the HMAC key
where identifiers are involved) and returns ``(silver_rows, rejected_rows)``; the
rejected rows carry the rule they broke and go to ``ops.quarantine``.
Spark 4 runs with ANSI SQL on, so parsing uses ``try_*`` functions: a bad value
becomes null and is caught by a rule instead of failing the whole job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from riskcontrol.analyze import resolve, text
from riskcontrol.core import pii, values
from riskcontrol.core.catalog import (
    NOTE_PATTERN,
    SILVER_APPLICATIONS,
    SILVER_BUREAU,
    SILVER_COURT_RECORDS,
    SILVER_CUSTOMERS,
    SILVER_EVENTS,
    SILVER_LOANS,
    SILVER_NEWS,
    SILVER_NOTES,
    SILVER_PENALTIES,
    SILVER_REPAYMENTS,
    SILVER_SETTLEMENTS,
    Table,
)
from riskcontrol.core.config import Settings
from riskcontrol.core.landing import Rule, split_by_rules

Transform = Callable[[DataFrame], DataFrame]

VALID_TERMS = (3, 6, 9, 12, 18, 24, 36)
MIN_AGE, MAX_AGE = 18, 100
MAX_REQUESTED_AMOUNT = 1_000_000.0  # above: a unit error (fen for yuan) or a typo


def latest_by_key(keys: Sequence[str], order_by: Sequence[str]) -> Transform:
    """Keep one row per key: the one greatest in ``order_by`` (latest version wins)."""

    def _apply(df: DataFrame) -> DataFrame:
        window = Window.partitionBy(*keys).orderBy(*[F.col(c).desc_nulls_last() for c in order_by])
        return df.withColumn("__rn", F.row_number().over(window)).where("__rn = 1").drop("__rn")

    return _apply


# The timestamp forms the lending sources send (parsed by ``core.values``, the one parser).
TIMESTAMP_FORMATS = (
    "yyyy-MM-dd HH:mm:ss",
    "yyyy-MM-dd'T'HH:mm:ssXXX",
    "yyyy-MM-dd'T'HH:mm:ss",
    "yyyy-MM-dd",
    "yyyy年M月d日",
    "yyyy/M/d",
    "yyyy.M.d",
)


def parse_ts(col: str | Column) -> Column:
    """A timestamp from 'yyyy-MM-dd HH:mm:ss', ISO 8601 with offset, or a bare date.

    Dates also come as 2024年3月6日, 2024/3/6 or 2024.3.6 (Chinese sources).
    """
    c = F.col(col) if isinstance(col, str) else col
    return values.parse_timestamp(F.trim(c.cast("string")), TIMESTAMP_FORMATS)


def parse_date(col: str | Column) -> Column:
    return F.to_date(parse_ts(col))


def num(col: str, type_name: str = "double") -> Column:
    return F.col(col).cast("string").try_cast(type_name)


def _finish(df: DataFrame, rules: list[Rule], table: Table) -> tuple[DataFrame, DataFrame]:
    valid, rejected = split_by_rules(df, rules)
    return valid.select(*table.columns), rejected


def age_at(date: str | Column, birth_year: str | Column = "birth_year") -> Column:
    """Whole years from the middle of ``birth_year`` to ``date`` (off by at most 6 months).

    Silver keeps the year of birth only: a full date next to the masked ID and the
    province would let anyone rebuild the national ID it came from.
    """
    born = F.make_date(
        F.col(birth_year) if isinstance(birth_year, str) else birth_year, F.lit(7), F.lit(1)
    )
    return F.floor(F.months_between(date, born) / 12)


def clean_customers(bronze: DataFrame, settings: Settings) -> tuple[DataFrame, DataFrame]:
    latest = bronze.transform(latest_by_key(["customer_id"], ["updated_at", "_ingested_at"]))
    typed = latest.select(
        "*",
        pii.pseudonym("national_id", settings).alias("customer_key"),
        pii.mask_national_id("national_id").alias("national_id_masked"),
        pii.pseudonym("mobile", settings).alias("phone_key"),
        pii.mask_phone("mobile").alias("phone_masked"),
        pii.mask_name("name").alias("name_masked"),
        parse_date("birth_date").alias("__born"),
        F.year(parse_date("birth_date")).alias("__birth_year"),
        num("monthly_income").alias("__income"),
        parse_ts("registered_at").alias("__registered_at"),
        parse_ts("updated_at").alias("__updated_at"),
        pii.valid_national_id("national_id").alias("__id_ok"),
        pii.valid_mobile("mobile").alias("__mobile_ok"),
    )
    rules = [
        Rule("invalid_national_id", F.col("__id_ok"), "national ID fails its check digit"),
        Rule("invalid_mobile", F.col("__mobile_ok"), "mobile is not 1[3-9] + 9 digits"),
        Rule("invalid_income", F.col("monthly_income") >= 0, "monthly_income missing or negative"),
        Rule("invalid_birth_date", F.col("__born").isNotNull(), "birth_date unparseable"),
        Rule(
            "invalid_age",
            F.floor(F.months_between("registered_at", "__born") / 12).between(MIN_AGE, MAX_AGE),
            f"age at registration outside {MIN_AGE}..{MAX_AGE}",
        ),
    ]
    # Clear-text identifiers are dropped before anything (even a quarantine row) is written.
    typed = (
        typed.drop("national_id", "mobile", "name")
        .drop("birth_date", "monthly_income", "registered_at", "updated_at")
        .withColumnRenamed("__birth_year", "birth_year")
        .withColumnRenamed("__income", "monthly_income")
        .withColumnRenamed("__registered_at", "registered_at")
        .withColumnRenamed("__updated_at", "updated_at")
    )
    return _finish(typed, rules, SILVER_CUSTOMERS)


# What the applicant declared on the application: the customer's attributes as of its
# day. A source without them leaves them null (gold then takes the customer record's).
DECLARED = ("monthly_income", "employment_type", "education")


def _typed_applications(bronze: DataFrame) -> DataFrame:
    latest = bronze.transform(latest_by_key(["application_id"], ["updated_at", "_ingested_at"]))

    def declared(c: str) -> Column:
        if c not in latest.columns:
            return F.lit(None).cast("double" if c == "monthly_income" else "string").alias(c)
        return (num(c) if c == "monthly_income" else F.col(c).cast("string")).alias(c)

    return latest.select(
        "application_id",
        "customer_id",
        parse_ts("applied_at").alias("applied_at"),
        parse_date("applied_at").alias("application_date"),
        num("requested_amount").alias("requested_amount"),
        num("term_months", "int").alias("term_months"),
        "purpose",
        "channel",
        "province",
        F.lower(F.trim("status")).alias("status"),
        parse_ts("decided_at").alias("decided_at"),
        parse_ts("updated_at").alias("updated_at"),
        *[declared(c) for c in DECLARED],
        (
            F.trim(F.col("monthly_income").cast("string"))
            if "monthly_income" in latest.columns
            else F.lit(None).cast("string")
        ).alias("__declared_income"),
        "_source_uri",
    )


def with_applicant(applications: DataFrame, customers: DataFrame) -> DataFrame:
    """``applications`` with the applicant as of each application: ``customer_key`` and
    ``birth_year`` from the customer, and ``DECLARED`` (income, employment, education) as
    the application declared them, the customer record's (its latest version, which may
    postdate the application) only where the application carries none."""
    cust = customers.select(
        "customer_id",
        "customer_key",
        "birth_year",
        *[F.col(c).alias(f"__record_{c}") for c in DECLARED],
    )
    apps = applications.drop("customer_key", "birth_year")
    joined = apps.join(cust, "customer_id", "left")
    return joined.select(
        *[c for c in apps.columns if c not in DECLARED],
        "customer_key",
        "birth_year",
        *[F.coalesce(F.col(c), F.col(f"__record_{c}")).alias(c) for c in DECLARED],
    )


def clean_applications(bronze: DataFrame) -> tuple[DataFrame, DataFrame]:
    typed = _typed_applications(bronze)
    rules = [
        Rule("invalid_applied_at", F.col("applied_at").isNotNull(), "applied_at unparseable"),
        Rule("non_positive_amount", F.col("requested_amount") > 0, "requested_amount <= 0"),
        Rule(
            "amount_out_of_range",
            F.col("requested_amount") <= MAX_REQUESTED_AMOUNT,
            f"requested_amount above {MAX_REQUESTED_AMOUNT:,.0f}",
        ),
        Rule("invalid_term", F.col("term_months").isin(*VALID_TERMS), "term not in product list"),
        Rule(
            "invalid_status",
            F.col("status").isin("approved", "rejected", "pending"),
            "status not approved/rejected/pending",
        ),
        Rule(
            "invalid_income",
            F.when(F.coalesce(F.col("__declared_income"), F.lit("")) == "", True).otherwise(
                F.coalesce(F.col("monthly_income") >= 0, F.lit(False))
            ),
            "declared monthly_income unparseable or negative",
        ),
    ]
    return _finish(typed, rules, SILVER_APPLICATIONS)


def clean_loans(bronze: DataFrame) -> tuple[DataFrame, DataFrame]:
    latest = bronze.transform(latest_by_key(["loan_id"], ["updated_at", "_ingested_at"]))
    typed = latest.select(
        "loan_id",
        "application_id",
        "customer_id",
        parse_date("disbursed_at").alias("disbursed_date"),
        num("principal").alias("principal"),
        num("term_months", "int").alias("term_months"),
        num("annual_rate").alias("annual_rate"),
        F.lower(F.trim("status")).alias("status"),
        parse_ts("updated_at").alias("updated_at"),
        "_source_uri",
    )
    rules = [
        Rule("invalid_disbursed_at", F.col("disbursed_date").isNotNull(), "disbursed_at bad"),
        Rule("non_positive_principal", F.col("principal") > 0, "principal <= 0"),
    ]
    return _finish(typed, rules, SILVER_LOANS)


def _known_loan(typed: DataFrame, loans: DataFrame | None, what: str) -> tuple[DataFrame, Rule]:
    """``typed`` flagged with whether its ``loan_id`` is in ``loans`` (silver), and the
    rule ``orphan_<what>`` that quarantines a row of an unknown loan (none without
    ``loans``)."""
    known = F.lit(True)
    if loans is not None:
        flags = loans.select("loan_id", F.lit(True).alias("__loan_known")).distinct()
        typed, known = typed.join(flags, "loan_id", "left"), F.col("__loan_known")
    rule = Rule(f"orphan_{what}", known, f"loan_id not in silver.loans ({what} without a loan)")
    return typed, rule


def clean_repayments(
    bronze: DataFrame, loans: DataFrame | None = None
) -> tuple[DataFrame, DataFrame]:
    """Repayment lines; with ``loans`` (silver), a line of an unknown loan is quarantined."""
    latest = bronze.transform(latest_by_key(["repayment_id"], ["updated_at", "_ingested_at"]))
    typed = latest.select(
        "repayment_id",
        "loan_id",
        num("installment_no", "int").alias("installment_no"),
        parse_date("due_date").alias("due_date"),
        num("amount_due").alias("amount_due"),
        parse_date("paid_date").alias("paid_date"),
        F.coalesce(num("amount_paid"), F.lit(0.0)).alias("amount_paid"),
        num("dpd", "int").alias("dpd"),
        parse_ts("updated_at").alias("updated_at"),
        "_source_uri",
    )
    typed, orphan = _known_loan(typed, loans, "repayment")
    rules = [
        orphan,
        Rule("invalid_due_date", F.col("due_date").isNotNull(), "due_date unparseable"),
        Rule("invalid_installment", F.col("installment_no") >= 1, "installment_no < 1"),
        Rule("negative_dpd", F.coalesce(F.col("dpd"), F.lit(0)) >= 0, "dpd < 0"),
    ]
    return _finish(typed, rules, SILVER_REPAYMENTS)


# What processors write for the renminbi; the book is kept in it.
BOOK_CURRENCY = "CNY"
RENMINBI = ("CNY", "RMB", "人民币", "元", "¥", "￥")


def clean_settlements(
    bronze: DataFrame, loans: DataFrame | None = None
) -> tuple[DataFrame, DataFrame]:
    """Cash per loan from the settlement files (collect parsed amount and time).

    The latest version of each settlement; ``currency`` is ``CNY`` for every way the
    processors write the renminbi, and a row in another currency (or none) is
    quarantined with the value, not converted. With ``loans`` (silver), a settlement of
    an unknown loan is quarantined. The payer's account and the memo are left in bronze:
    the account is personal data and the memo is free text that may name the payer.
    """
    latest = bronze.transform(latest_by_key(["settlement_id"], ["_ingested_at"]))
    raw_currency = F.upper(F.btrim(F.col("currency")))
    typed = latest.select(
        "settlement_id",
        "loan_id",
        F.col("paid_at").cast("timestamp").alias("paid_at"),
        F.col("amount").cast("double").alias("amount"),
        F.when(raw_currency.isin(*RENMINBI), F.lit(BOOK_CURRENCY)).alias("currency"),
        F.col("currency").alias("__currency_raw"),
        F.lower(F.btrim("channel")).alias("channel"),
        "_source_uri",
    )
    typed, orphan = _known_loan(typed, loans, "settlement")
    rules = [
        orphan,
        Rule(
            "unsupported_currency",
            F.col("currency").isNotNull(),
            F.format_string(
                "currency '%s' is not the book's (%s): convert the amount before landing",
                F.coalesce(F.col("__currency_raw"), F.lit("")),
                F.lit(BOOK_CURRENCY),
            ),
        ),
        Rule("non_positive_amount", F.col("amount") > 0, "amount <= 0 (a refund or reversal)"),
    ]
    return _finish(typed, rules, SILVER_SETTLEMENTS)


BUREAU_JSON_SCHEMA = (
    "report_id string, query_ref string, id_number string, report_time string, "
    "score struct<value:int, model:string>, "
    "summary struct<inquiries_6m:int, open_loans:int, total_credit_limit:double, "
    "total_balance:double, overdue_accounts:int, max_dpd_24m:int, credit_history_months:int, "
    "consumer_finance_loans:int>, "
    "accounts array<struct<type:string, limit:double, balance:double, status:string, "
    "opened:string>>, alerts array<struct<code:string, date:string>>, schema_version int, "
    "_corrupt string"
)
_PERMISSIVE = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}


def declared_fields(json_schema: str) -> tuple[str, ...]:
    """The top-level field names of a DDL schema string."""
    return tuple(f.name for f in T.StructType.fromDDL(json_schema).fields if f.name != "_corrupt")


PERSONAL_FIELD = (
    r"name|姓名|名字|联系人|address|addr|地址|住址|account|账户|账号|card|卡号|passport|护照|"
    r"birth|生日|出生|email|e_mail|邮箱|phone|mobile|tel|手机|电话|id_?no|id_?number|身份证|ssn"
)


def extra_fields(payload: Column | str, known: Sequence[str]) -> Column:
    """Schema drift: top-level fields the declared schema does not know, kept as JSON.

    A source that starts sending a new field loses nothing: the field and its value
    (nested values as JSON text) land in ``extra_fields`` until the schema declares it.
    Fields in ``known`` (declared, or consumed and dropped such as personal data) are
    not repeated. Null when there is nothing extra.
    """
    fields = F.from_json(
        F.col(payload) if isinstance(payload, str) else payload, "map<string,string>"
    )
    kept = F.map_filter(fields, lambda k, _v: ~k.isin(*known))
    # Values are masked like free text; a field whose name says it holds a name, an
    # address or an account is hidden whole.
    masked = F.transform_values(
        kept,
        lambda k, v: F.when(F.lower(k).rlike(PERSONAL_FIELD), F.lit("***")).otherwise(
            pii.mask_identifiers(v)
        ),
    )
    return F.when(F.size(kept) > 0, F.to_json(masked))


def parse_json(bronze: DataFrame, json_schema: str) -> DataFrame:
    """Parse raw JSON lines with an explicit schema; a type conflict sets ``j._corrupt``."""
    return bronze.select(
        "payload",
        "_source_uri",
        "_ingested_at",
        F.from_json("payload", json_schema, _PERMISSIVE).alias("j"),
    )


BUREAU_PERSONAL = ("id_number", "name")  # read for the pseudonym, never kept


def clean_bureau(bronze: DataFrame, settings: Settings) -> tuple[DataFrame, DataFrame]:
    parsed = parse_json(bronze, BUREAU_JSON_SCHEMA)
    typed = parsed.select(
        F.col("j.report_id").alias("report_id"),
        F.col("j.query_ref").alias("application_id"),
        pii.pseudonym(F.col("j.id_number"), settings).alias("customer_key"),
        parse_ts(F.col("j.report_time")).alias("report_time"),
        F.coalesce(F.col("j.schema_version"), F.lit(1)).alias("schema_version"),
        F.col("j.score.value").alias("bureau_score"),
        *[
            F.col(f"j.summary.{c}").alias(c)
            for c in (
                "inquiries_6m",
                "open_loans",
                "total_credit_limit",
                "total_balance",
                "overdue_accounts",
                "max_dpd_24m",
                "credit_history_months",
                "consumer_finance_loans",
            )
        ],
        F.coalesce(F.size("j.accounts"), F.lit(0)).alias("n_accounts"),
        F.greatest(F.coalesce(F.size("j.alerts"), F.lit(0)), F.lit(0)).alias("n_alerts"),
        F.col("j._corrupt").alias("__corrupt"),
        F.col("_ingested_at"),
        F.col("_source_uri"),
        extra_fields("payload", (*declared_fields(BUREAU_JSON_SCHEMA), *BUREAU_PERSONAL)).alias(
            "extra_fields"
        ),
        # The raw payload holds the ID number in clear text: quarantine a hash of it only.
        F.sha2("payload", 256).alias("payload_sha256"),
    ).transform(latest_by_key(["report_id"], ["_ingested_at"]))
    rules = [
        Rule("type_conflict", F.col("__corrupt").isNull(), "a field has the wrong JSON type"),
        Rule("invalid_report_time", F.col("report_time").isNotNull(), "report_time bad"),
        Rule("missing_application", F.col("application_id").isNotNull(), "no query_ref"),
    ]
    return _finish(typed.drop("_ingested_at"), rules, SILVER_BUREAU)


EVENT_JSON_SCHEMA = (
    "event_id string, customer_id string, device_id string, event_type string, ts string, "
    "os string, app_version string, props struct<duration_s:int, night:boolean>, "
    "geo struct<province:string, city:string>, _corrupt string"
)


def clean_events(bronze: DataFrame) -> tuple[DataFrame, DataFrame]:
    parsed = parse_json(bronze, EVENT_JSON_SCHEMA)
    ts = parse_ts(F.col("j.ts"))
    typed = parsed.select(
        F.col("j.event_id").alias("event_id"),
        F.col("j.customer_id").alias("customer_id"),
        F.col("j.device_id").alias("device_id"),
        F.col("j.event_type").alias("event_type"),
        ts.alias("event_ts"),
        F.to_date(ts).alias("event_date"),
        F.col("j.os").alias("os"),
        F.col("j.app_version").alias("app_version"),
        F.col("j.props.duration_s").alias("duration_s"),
        F.coalesce(F.col("j.props.night"), (F.hour(ts) < 6) | (F.hour(ts) >= 23)).alias("is_night"),
        extra_fields("payload", declared_fields(EVENT_JSON_SCHEMA)).alias("extra_fields"),
        F.col("j._corrupt").alias("__corrupt"),
        "payload",
        "_ingested_at",
        "_source_uri",
    ).transform(latest_by_key(["event_id"], ["_ingested_at"]))
    rules = [
        Rule("type_conflict", F.col("__corrupt").isNull(), "a field has the wrong JSON type"),
        Rule("invalid_ts", F.col("event_ts").isNotNull(), "ts unparseable"),
        Rule("missing_customer", F.col("customer_id").isNotNull(), "no customer_id"),
    ]
    return _finish(typed, rules, SILVER_EVENTS)


def total_hits(hits: Column) -> Column:
    """All risk-lexicon hits of a text (the sum over its ``lexicon_hits`` map)."""
    return F.aggregate(F.map_values(hits), F.lit(0), lambda acc, n: acc + n).cast("int")


def clean_notes(bronze: DataFrame, names: DataFrame | None = None) -> tuple[DataFrame, DataFrame]:
    """Service notes: header parsed; known names (``names.name``), IDs, phones, cards and
    e-mails masked in the text before any signal is taken from it."""

    def part(i: int) -> Column:
        return F.regexp_extract("payload", NOTE_PATTERN, i)

    parsed = bronze.select(
        part(1).alias("note_id"),
        part(2).alias("customer_id"),
        parse_ts(part(3)).alias("noted_at"),
        part(4).alias("agent"),
        part(5).alias("channel"),
        part(6).alias("__raw_text"),
        "payload",
        "_ingested_at",
        "_source_uri",
    ).transform(latest_by_key(["note_id"], ["_ingested_at"]))
    if names is not None:
        parsed = redact_names(parsed, "note_id", ["__raw_text"], names)
    typed = (
        parsed.transform(text.text_signals("__raw_text"))
        .withColumnRenamed("normalized_text", "text")
        .withColumn("negative_hits", total_hits(F.col("lexicon_hits")))
    )
    rules = [
        Rule("invalid_note_header", F.col("note_id") != "", "header line not parseable"),
        Rule("invalid_note_time", F.col("noted_at").isNotNull(), "time unparseable"),
    ]
    return _finish(typed, rules, SILVER_NOTES)


# --- public records: court lists, regulator penalties, news -------------------------------
ORGANISATION = (
    r"(银行|公司|合作社|信用社|集团|支行|分行|中心|协会|Bank|Co\.|Ltd|Limited|Inc\b|Company)"
)
FORMER_POSITION = r"(时任|原任|former|then )"


def name_key(col: Column | str, settings: Settings, organisation: Column | None = None) -> Column:
    """HMAC pseudonym of a normalized name, equal to entity resolution's keys.

    Organisations are keyed without their legal form (``resolve.normalize_company``), so
    a court record's company key is the ``company_key`` of its entity links.
    """
    c = F.col(col) if isinstance(col, str) else col
    person = resolve.normalize_name(c)
    norm = (
        person
        if organisation is None
        else F.when(organisation, resolve.normalize_company(c)).otherwise(person)
    )
    return pii.pseudonym(norm, settings)


def name_grams(col: Column | str, lengths: Sequence[int] = (2, 3, 4)) -> Column:
    """Every substring of ``lengths`` characters (candidate Chinese names in a text)."""
    c = F.coalesce(F.col(col) if isinstance(col, str) else col, F.lit(""))

    def grams(n: int) -> Column:
        # One-argument lambda: Spark passes (element, index) to a two-argument one.
        return F.transform(
            F.sequence(F.lit(1), F.greatest(F.length(c) - n + 1, F.lit(1))),
            lambda i: F.substring(c, i, n),
        )

    parts = [grams(n) for n in lengths]
    return F.array_distinct(F.flatten(F.array(*parts)))


def redact_names(
    df: DataFrame, id_col: str, text_cols: Sequence[str], names: DataFrame
) -> DataFrame:
    """Replace every known person name (``names.name``) in ``text_cols`` by its mask.

    Names are found by joining the texts' 2-4 character substrings with the name list
    (no giant regular expression, so it scales with the list), then replaced longest
    first so 张三丰 is masked whole before 张三 could match inside it.
    """
    grams = df.select(
        id_col,
        F.explode(F.array_distinct(F.flatten(F.array(*[name_grams(c) for c in text_cols])))).alias(
            "name"
        ),
    )
    known = names.select("name").where(F.length("name").between(2, 4)).distinct()
    found = (
        grams.join(known, "name")
        .groupBy(id_col)
        .agg(F.collect_set("name").alias("__names"))
        .select(
            id_col,
            F.array_sort("__names", lambda a, b: F.length(b) - F.length(a)).alias("__names"),
        )
    )
    out = df.join(found, id_col, "left")
    empty = F.array().cast("array<string>")
    for c in text_cols:
        out = out.withColumn(
            c,
            F.aggregate(
                F.coalesce(F.col("__names"), empty),
                F.col(c),
                lambda acc, n: F.regexp_replace(
                    acc, F.concat(F.lit("\\Q"), n, F.lit("\\E")), pii.mask_name(n)
                ),
            ),
        )
    return out.drop("__names")


def crawl_trail() -> list[Column | str]:
    """Where a crawled record came from: its URL, fetch time, crawl and landing file."""
    return ["url", parse_ts("fetched_at").alias("fetched_at"), "crawl_id", "_source_uri"]


def _latest_record(bronze: DataFrame) -> DataFrame:
    return bronze.transform(latest_by_key(["record_id"], ["fetched_at", "_ingested_at"]))


def clean_court_records(bronze: DataFrame, settings: Settings) -> tuple[DataFrame, DataFrame]:
    """Court list entries: a person's name and ID become pseudonyms and masks."""
    person = F.col("subject_type") == "person"
    shown = F.upper(F.trim("id_number"))
    masked = F.coalesce(F.col("id_masked"), shown.contains("*"))
    typed = _latest_record(bronze).select(
        "record_id",
        "case_no",
        "subject_type",
        name_key("subject_name", settings, organisation=~person).alias("subject_key"),
        F.when(person, pii.mask_name("subject_name"))
        .otherwise(F.col("subject_name"))
        .alias("subject_display"),
        F.when(~masked, pii.pseudonym(shown, settings)).alias("id_key"),
        F.when(person & ~masked, pii.mask_national_id(shown)).otherwise(shown).alias("id_display"),
        masked.alias("id_is_masked"),
        "court",
        F.col("amount").cast("double").alias("amount"),
        parse_date("filing_date").alias("filing_date"),
        "status",
        (F.col("status") != "已结案").alias("is_active"),
        "list_type",
        *crawl_trail(),
    )
    rules = [
        Rule("invalid_filing_date", F.col("filing_date").isNotNull(), "filing date unparseable"),
        Rule("missing_subject", F.col("subject_key").isNotNull(), "entry without a subject"),
    ]
    return _finish(typed, rules, SILVER_COURT_RECORDS)


def is_organisation(col: Column | str) -> Column:
    c = F.col(col) if isinstance(col, str) else col
    return c.rlike(ORGANISATION) & ~c.rlike(FORMER_POSITION)


def person_part(col: Column | str) -> Column:
    """A penalised person's name without the position shown after it (张三（时任…）)."""
    c = F.col(col) if isinstance(col, str) else col
    return F.trim(F.regexp_replace(c, r"\s*[（(,，].*$", ""))


def clean_penalties(
    bronze: DataFrame, settings: Settings, names: DataFrame
) -> tuple[DataFrame, DataFrame]:
    """Penalty announcements: a penalised person is pseudonymized, texts are redacted."""
    # The party is what comes before a position in brackets: 张三（某某公司法定代表人）
    # is a person even though a company is named after the name.
    org = is_organisation(person_part("institution"))
    latest = _latest_record(bronze).withColumn(
        "__subject", F.when(org, F.trim("institution")).otherwise(person_part("institution"))
    )
    own = latest.select(F.col("__subject").alias("name")).where(~is_organisation("name"))
    latest = redact_names(latest, "record_id", ["reason"], names.unionByName(own)).transform(
        text.text_signals("reason")
    )
    typed = latest.select(
        "record_id",
        "decision_no",
        F.when(org, "organisation").otherwise("person").alias("subject_type"),
        name_key("__subject", settings, organisation=org).alias("subject_key"),
        F.when(org, F.col("__subject"))
        .otherwise(pii.mask_name("__subject"))
        .alias("subject_display"),
        "penalty_types",
        F.col("amount").cast("double").alias("amount"),
        F.col("normalized_text").alias("reason"),
        "risk_categories",
        "negativity",
        parse_date("decision_date").alias("decision_date"),
        "authority",
        "form",
        *crawl_trail(),
    )
    rules = [
        Rule("invalid_decision_date", F.col("decision_date").isNotNull(), "date unparseable"),
        Rule("missing_subject", F.col("subject_key").isNotNull(), "no party named"),
    ]
    return _finish(typed, rules, SILVER_PENALTIES)


def clean_news(bronze: DataFrame, names: DataFrame) -> tuple[DataFrame, DataFrame]:
    """News articles: person names known to the book are masked in title and body."""
    latest = (
        redact_names(_latest_record(bronze), "record_id", ["title", "body"], names)
        .withColumn("title", pii.mask_identifiers(text.normalize_text("title")))
        .transform(text.text_signals("body"))
    )
    typed = latest.select(
        "record_id",
        "title",
        parse_ts("published_at").alias("published_at"),
        "news_source",
        "language",
        F.col("normalized_text").alias("body"),
        "tokens",
        "token_count",
        "lexicon_hits",
        "risk_categories",
        "negativity",
        "amounts",
        "dates",
        "feed",
        *crawl_trail(),
    )
    rules = [
        Rule("invalid_published_at", F.col("published_at").isNotNull(), "date unparseable"),
        Rule("empty_body", F.coalesce(F.col("token_count"), F.lit(0)) > 0, "no text"),
    ]
    return _finish(typed, rules, SILVER_NEWS)
