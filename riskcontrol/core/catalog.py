"""The one place that knows every table: name, layer, path, schema, keys.

Bronze holds data as received plus provenance; silver is typed, deduplicated and
pseudonymized; gold holds features and scores; ``ops`` holds the run manifest and the
quarantine. Schemas are constants, validated where data crosses a boundary
(``validate``), so a wrong column fails loudly at the step that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from riskcontrol.core.config import Settings

_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "long": T.LongType(),
    "double": T.DoubleType(),
    "boolean": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
    "array<string>": T.ArrayType(T.StringType()),
    "array<double>": T.ArrayType(T.DoubleType()),
    "array<date>": T.ArrayType(T.DateType()),
    "map<string,int>": T.MapType(T.StringType(), T.IntegerType()),
    # An alert's workflow history: one entry per step, appended, never rewritten.
    "array<struct<stage:string,at:timestamp,by:string,note:string>>": T.ArrayType(
        T.StructType(
            [
                T.StructField("stage", T.StringType()),
                T.StructField("at", T.TimestampType()),
                T.StructField("by", T.StringType()),
                T.StructField("note", T.StringType()),
            ]
        )
    ),
}


def schema(*columns: str) -> T.StructType:
    """Build a StructType from ``"name type"`` strings (types: see ``_TYPES``)."""
    fields = []
    for spec in columns:
        name, type_name = spec.split()
        fields.append(T.StructField(name, _TYPES[type_name], True))
    return T.StructType(fields)


PROVENANCE = schema(
    "_ingest_id string",
    "_source string",
    "_source_uri string",
    "_ingested_at timestamp",
    "_content_hash string",
)
PROVENANCE_COLUMNS = tuple(PROVENANCE.fieldNames())


@dataclass(frozen=True)
class Table:
    """A Delta table of the lakehouse."""

    layer: str
    name: str
    schema: T.StructType
    keys: tuple[str, ...] = ()
    description: str = ""
    strict: bool = True  # strict: exact columns and types; else: declared columns present
    partition_by: tuple[str, ...] = field(default=())
    # Columns decrypted by ``lakehouse.read_clear`` even without the encryption marker in
    # their metadata (e.g. ``ops.quarantine.record``, written by several steps).
    sensitive: tuple[str, ...] = field(default=())
    # Raw tables only (deny by default): the columns kept in clear -- declared keys,
    # timestamps and provenance. Every other column, including one a source adds later,
    # is encrypted at rest (see ``protected_columns`` and ``pii.encrypt_columns``).
    clear: tuple[str, ...] | None = None

    @property
    def full_name(self) -> str:
        return f"{self.layer}.{self.name}"

    def path(self, settings: Settings) -> str:
        return f"{str(settings.lakehouse_root).rstrip('/')}/{self.layer}/{self.name}"

    @property
    def columns(self) -> list[str]:
        return self.schema.fieldNames()

    def protected_columns(self, columns) -> list[str]:
        """Of ``columns``, those stored encrypted: all but the clear ones (raw tables)."""
        if self.clear is None:
            return [c for c in columns if c in self.sensitive]
        keep = {*self.clear, *self.keys, *PROVENANCE_COLUMNS}
        return [c for c in columns if c not in keep and not c.startswith("__")]


class SchemaError(ValueError):
    """A DataFrame does not match the contract of the table it is written to."""


def validate(df: DataFrame, table: Table) -> DataFrame:
    """Check ``df`` against ``table``'s contract and return it ordered as declared."""
    actual = {f.name: f.dataType for f in df.schema.fields}
    missing = [c for c in table.columns if c not in actual]
    problems = []
    if missing:
        problems.append(f"missing columns {missing}")
    if table.strict:
        extra = [c for c in actual if c not in table.columns]
        if extra:
            problems.append(f"unexpected columns {extra}")
        wrong = [
            f"{f.name}: {actual[f.name].simpleString()} (want {f.dataType.simpleString()})"
            for f in table.schema.fields
            # Nullability inside arrays and maps is not part of the contract.
            if f.name in actual and actual[f.name].simpleString() != f.dataType.simpleString()
        ]
        if wrong:
            problems.append("wrong types " + ", ".join(wrong))
    if problems:
        raise SchemaError(f"{table.full_name}: " + "; ".join(problems))
    if table.strict:
        return df.select(*table.columns)
    return df


def _bronze(
    name: str,
    *columns: str,
    keys: tuple[str, ...],
    description: str,
    clear: tuple[str, ...] = (),
) -> Table:
    """A raw table: as received plus provenance, every column but ``clear`` (plus keys
    and provenance) encrypted at rest."""
    cols = schema(*columns)
    return Table(
        "bronze",
        name,
        T.StructType(cols.fields + PROVENANCE.fields),
        keys=keys,
        description=description,
        strict=False,  # as received: a source may add columns, they are kept
        clear=tuple(clear),
    )


# --- bronze: as received, with provenance -----------------------------------------
BRONZE_CUSTOMERS = _bronze(
    "customers",
    "customer_id string",
    "national_id string",
    "name string",
    "mobile string",
    "updated_at string",
    keys=("customer_id",),
    description="lending-system customers (JDBC), every non-key column encrypted",
    clear=("updated_at",),
)
BRONZE_APPLICATIONS = _bronze(
    "applications",
    "application_id string",
    "customer_id string",
    "updated_at string",
    keys=("application_id",),
    description="loan applications (JDBC)",
    clear=("customer_id", "updated_at"),
)
BRONZE_LOANS = _bronze(
    "loans",
    "loan_id string",
    "application_id string",
    "updated_at string",
    keys=("loan_id",),
    description="disbursed loans (JDBC)",
    clear=("application_id", "updated_at"),
)
BRONZE_REPAYMENTS = _bronze(
    "repayments",
    "repayment_id string",
    "loan_id string",
    "updated_at string",
    keys=("repayment_id",),
    description="repayment schedule lines with days past due (JDBC)",
    clear=("loan_id", "updated_at"),
)
RAW_LINE = ("payload string",)
BRONZE_BUREAU = _bronze(
    "bureau_reports",
    *RAW_LINE,
    keys=("_content_hash",),
    description="credit bureau reports, one raw JSON document per row (file drop)",
)
BRONZE_EVENTS = _bronze(
    "app_events",
    *RAW_LINE,
    keys=("_content_hash",),
    description="app/device events, one raw JSON line per row (file drop)",
)
BRONZE_NOTES = _bronze(
    "service_notes",
    *RAW_LINE,
    keys=("_content_hash",),
    description="customer-service notes, one raw text record per row (file drop)",
)
# A service note is a header line, then its text:
#   #NOTE id=<note_id> customer=<customer_id> time=<yyyy-MM-dd HH:mm:ss> agent=<id> channel=<c>
# Groups 1-6: note id, customer id, time, agent, channel, text. Collect quarantines a record
# that does not match; silver splits the ones that do.
NOTE_PATTERN = (
    r"^#NOTE id=(\S+) customer=(\S+) time=(\S+ \S+) agent=(\S+) channel=(\S+)\s*\n?([\s\S]*)$"
)
# A settlement file's columns, whatever a processor calls them (collect maps the titles).
SETTLEMENT_COLUMNS = (
    "settlement_id",
    "loan_id",
    "paid_at",
    "amount",
    "currency",
    "channel",
    "payer_account",
    "memo",
)
BRONZE_SETTLEMENTS = _bronze(
    "settlements",
    "settlement_id string",
    "loan_id string",
    "paid_at timestamp",
    "amount double",
    "currency string",
    "channel string",
    "payer_account string",
    "memo string",
    "paid_at_raw string",
    "amount_raw string",
    keys=("settlement_id",),
    description="payment-processor settlement rows (CSV file drop), amount and time parsed",
    clear=("loan_id", "paid_at"),
)

# Public web: what the crawlers fetched (pages) and parsed (records), as received.
_CRAWLED = ("url string", "fetched_at string", "content_hash string", "crawl_id string")
CRAWL_TRAIL = ("url", "fetched_at", "content_hash", "crawl_id")
BRONZE_CRAWL_PAGES = _bronze(
    "crawl_pages",
    "crawl_id string",
    "spider string",
    "source string",
    "url string",
    "status int",
    "fetched_at string",
    "content_type string",
    "encoding string",
    "content_hash string",
    "etag string",
    "last_modified string",
    "page_kind string",
    "body string",
    keys=("url", "content_hash"),
    description="raw public-web pages, new or changed ones per crawl (Scrapy)",
    clear=(
        "crawl_id",
        "spider",
        "source",
        "status",
        "fetched_at",
        "content_type",
        "encoding",
        "content_hash",
        "etag",
        "last_modified",
        "page_kind",
    ),
)
BRONZE_COURT_RECORDS = _bronze(
    "court_records",
    "record_id string",
    "subject_name string",
    "subject_type string",
    "id_number string",
    "id_masked boolean",
    "court string",
    "case_no string",
    "amount double",
    "filing_date string",
    "status string",
    "list_type string",
    *_CRAWLED,
    keys=("record_id",),
    description="court enforcement and dishonest-debtor list entries (crawled)",
    clear=CRAWL_TRAIL,
)
BRONZE_PENALTIES = _bronze(
    "penalties",
    "record_id string",
    "institution string",
    "penalty_types array<string>",
    "amount double",
    "reason string",
    "decision_date string",
    "authority string",
    "decision_no string",
    "form string",
    *_CRAWLED,
    keys=("record_id",),
    description="regulator penalty announcements (crawled; table, free text or attachment)",
    clear=(*CRAWL_TRAIL, "decision_date"),
)
BRONZE_NEWS = _bronze(
    "news_articles",
    "record_id string",
    "title string",
    "published_at string",
    "news_source string",
    "body string",
    "language string",
    "feed string",
    *_CRAWLED,
    keys=("record_id",),
    description="news about lenders, borrowers and their companies (crawled from RSS/Atom)",
    clear=(*CRAWL_TRAIL, "published_at"),
)

# --- silver: typed, deduplicated, pseudonymized -------------------------------------
SILVER_CUSTOMERS = Table(
    "silver",
    "customers",
    schema(
        "customer_id string",
        "customer_key string",
        "national_id_masked string",
        "phone_key string",
        "phone_masked string",
        "name_masked string",
        "gender string",
        "birth_year int",  # the year only: with a date, the mask and the province an ID
        # could be rebuilt (issue 13); age is computed from the year
        "province string",
        "city string",
        "education string",
        "employment_type string",
        "employer_name string",
        "monthly_income double",
        "registered_at timestamp",
        "updated_at timestamp",
    ),
    keys=("customer_id",),
    description="customers; national ID and phone as HMAC pseudonyms and masked values",
)
SILVER_APPLICATIONS = Table(
    "silver",
    "applications",
    schema(
        "application_id string",
        "customer_id string",
        "applied_at timestamp",
        "application_date date",
        "requested_amount double",
        "term_months int",
        "purpose string",
        "channel string",
        "province string",
        "status string",
        "decided_at timestamp",
        "updated_at timestamp",
        "monthly_income double",
        "employment_type string",
        "education string",
    ),
    keys=("application_id",),
    description="loan applications, typed, latest version per application; income, "
    "employment and education as the applicant declared them (null when the source "
    "does not carry them)",
)
SILVER_LOANS = Table(
    "silver",
    "loans",
    schema(
        "loan_id string",
        "application_id string",
        "customer_id string",
        "disbursed_date date",
        "principal double",
        "term_months int",
        "annual_rate double",
        "status string",
        "updated_at timestamp",
    ),
    keys=("loan_id",),
    description="disbursed loans",
)
SILVER_REPAYMENTS = Table(
    "silver",
    "repayments",
    schema(
        "repayment_id string",
        "loan_id string",
        "installment_no int",
        "due_date date",
        "amount_due double",
        "paid_date date",
        "amount_paid double",
        "dpd int",
        "updated_at timestamp",
    ),
    keys=("repayment_id",),
    description="repayment schedule lines",
)
SILVER_SETTLEMENTS = Table(
    "silver",
    "settlements",
    schema(
        "settlement_id string",
        "loan_id string",
        "paid_at timestamp",
        "amount double",
        "currency string",
        "channel string",
    ),
    keys=("settlement_id",),
    description=(
        "cash received per loan from the processors' settlement files (repayments, "
        "prepayments, recoveries after write-off); the payer's account and the free-text "
        "memo stay in bronze"
    ),
)
SILVER_BUREAU = Table(
    "silver",
    "bureau_reports",
    schema(
        "report_id string",
        "application_id string",
        "customer_key string",
        "report_time timestamp",
        "schema_version int",
        "bureau_score int",
        "inquiries_6m int",
        "open_loans int",
        "total_credit_limit double",
        "total_balance double",
        "overdue_accounts int",
        "max_dpd_24m int",
        "credit_history_months int",
        "consumer_finance_loans int",
        "n_accounts int",
        "n_alerts int",
        "extra_fields string",
    ),
    keys=("report_id",),
    description="bureau reports flattened to typed columns",
)
SILVER_EVENTS = Table(
    "silver",
    "app_events",
    schema(
        "event_id string",
        "customer_id string",
        "device_id string",
        "event_type string",
        "event_ts timestamp",
        "event_date date",
        "os string",
        "app_version string",
        "duration_s int",
        "is_night boolean",
        "extra_fields string",
    ),
    keys=("event_id",),
    description="app/device events, typed",
)
SILVER_NOTES = Table(
    "silver",
    "service_notes",
    schema(
        "note_id string",
        "customer_id string",
        "noted_at timestamp",
        "agent string",
        "channel string",
        "text string",
        "tokens array<string>",
        "lexicon_hits map<string,int>",
        "risk_categories array<string>",
        "negative_hits int",
        "negativity double",
        "amounts array<double>",
    ),
    keys=("note_id",),
    description="customer-service notes, normalized, tokenized, with risk-lexicon hits, "
    "negativity and the amounts they name",
)

_CRAWL_TRAIL = ("url string", "fetched_at timestamp", "crawl_id string")
SILVER_COURT_RECORDS = Table(
    "silver",
    "court_records",
    schema(
        "record_id string",
        "case_no string",
        "subject_type string",
        "subject_key string",
        "subject_display string",
        "id_key string",
        "id_display string",
        "id_is_masked boolean",
        "court string",
        "amount double",
        "filing_date date",
        "status string",
        "is_active boolean",
        "list_type string",
        *_CRAWL_TRAIL,
    ),
    keys=("record_id",),
    description="court enforcement / dishonest-debtor entries; a person's name and ID as "
    "pseudonyms and masks",
)
SILVER_PENALTIES = Table(
    "silver",
    "penalties",
    schema(
        "record_id string",
        "decision_no string",
        "subject_type string",
        "subject_key string",
        "subject_display string",
        "penalty_types array<string>",
        "amount double",
        "reason string",
        "risk_categories array<string>",
        "negativity double",
        "decision_date date",
        "authority string",
        "form string",
        *_CRAWL_TRAIL,
    ),
    keys=("record_id",),
    description="regulator penalties; penalised persons pseudonymized, names in text masked",
)
SILVER_NEWS = Table(
    "silver",
    "news_articles",
    schema(
        "record_id string",
        "title string",
        "published_at timestamp",
        "news_source string",
        "language string",
        "body string",
        "tokens array<string>",
        "token_count int",
        "lexicon_hits map<string,int>",
        "risk_categories array<string>",
        "negativity double",
        "amounts array<double>",
        "dates array<date>",
        "feed string",
        *_CRAWL_TRAIL,
    ),
    keys=("record_id",),
    description="news articles, normalized text with known person names masked",
)
SILVER_ENTITY_LINKS = Table(
    "silver",
    "entity_links",
    schema(
        "record_kind string",
        "record_id string",
        "entity_type string",
        "customer_id string",
        "company_key string",
        "match_method string",
        "confidence double",
        "evidence string",
        "record_date date",
    ),
    keys=("record_kind", "record_id", "entity_type", "customer_id", "company_key"),
    description="public records linked to customers (entity_type customer), companies "
    "(company) and, through the employer, its staff (employer); confidence and evidence",
)

# --- gold: features and scores ------------------------------------------------------
NUMERIC_FEATURES = (
    "requested_amount",
    "term_months",
    "age",
    "monthly_income",
    "amount_to_income",
    "bureau_score",
    "inquiries_6m",
    "open_loans",
    "utilization",
    "overdue_accounts",
    "max_dpd_24m",
    "credit_history_months",
    "ev_count_30d",
    "ev_night_share_30d",
    "ev_loan_calc_30d",
    "ev_apply_click_30d",
    "notes_count_90d",
    "notes_negative_90d",
    "prior_loans",
    "prior_max_dpd",
    "prior_late_installments",
)
CATEGORICAL_FEATURES = ("channel", "purpose", "province", "employment_type", "education")
# Counts over a window: 0 when there is nothing to count (no events, notes or prior
# loans), where a missing bureau or application field stays null. The feature store tags
# the same fields {"missing": "zero"} (feature_store/definitions.py; a test keeps them equal).
ZERO_WHEN_MISSING = (
    "ev_count_30d",
    "ev_loan_calc_30d",
    "ev_apply_click_30d",
    "notes_count_90d",
    "notes_negative_90d",
    "prior_loans",
    "prior_max_dpd",
    "prior_late_installments",
)

GOLD_APPLICATION_FEATURES = Table(
    "gold",
    "application_features",
    schema(
        "application_id string",
        "customer_id string",
        "customer_key string",
        "application_date date",
        "application_month string",
        "status string",
        "requested_amount double",
        "term_months double",
        "age double",
        "monthly_income double",
        "amount_to_income double",
        "bureau_score double",
        "inquiries_6m double",
        "open_loans double",
        "utilization double",
        "overdue_accounts double",
        "max_dpd_24m double",
        "credit_history_months double",
        "ev_count_30d double",
        "ev_night_share_30d double",
        "ev_loan_calc_30d double",
        "ev_apply_click_30d double",
        "notes_count_90d double",
        "notes_negative_90d double",
        "prior_loans double",
        "prior_max_dpd double",
        "prior_late_installments double",
        "channel string",
        "purpose string",
        "province string",
        "employment_type string",
        "education string",
        "label int",
        "label_status string",
        "label_matured boolean",
        "feature_time timestamp",
    ),
    keys=("application_id",),
    description="one row per application: point-in-time features and the matured label",
)
GOLD_SCORED_APPLICATIONS = Table(
    "gold",
    "scored_applications",
    schema(
        "application_id string",
        "customer_key string",
        "application_date date",
        "requested_amount double",
        "pd double",
        "score int",
        "risk_band string",
        "impact double",
        "quadrant string",
        "strategy string",
        "decision string",
        "policy_version string",
        "reason_codes array<string>",
        "model_name string",
        "model_version string",
        "feature_time timestamp",
        "scored_at timestamp",
    ),
    keys=("application_id",),
    description="new applications scored by the champion model; decision from the active "
    "cut-off policy (policy_version)",
)
GOLD_LOAN_BOOK_RISK = Table(
    "gold",
    "loan_book_risk",
    schema(
        "as_of_date date",
        "loan_id string",
        "application_id string",
        "customer_key string",
        "channel string",
        "province string",
        "disbursed_date date",
        "principal double",
        "ead double",
        "dpd int",
        "dpd_bucket string",
        "pd double",
        "score int",
        "lgd double",
        "expected_loss double",
        "risk_band string",
        "impact double",
        "quadrant string",
        "strategy string",
        "model_name string",
        "model_version string",
        "scored_at timestamp",
        # IFRS 9 stage (1 performing, 2 from 30 DPD, 3 from 90) and the months the PD
        # covers (12 at most in stage 1, the life left in stage 2; empty without history)
        "stage int",
        "pd_horizon_months int",
    ),
    keys=("as_of_date", "loan_id"),
    description="every active loan, daily: PD, exposure at default, expected loss, DPD, "
    "severity quadrant and its strategy",
)
GOLD_CUTOFF_POLICY = Table(
    "gold",
    "cutoff_policy",
    schema(
        "policy_version int",
        "cutoff_pd double",
        "approve_below_pd double",
        "applications long",
        "approved long",
        "reviewed long",
        "rejected long",
        "approval_rate double",
        "bad_rate double",
        "control_effect double",
        "control_cost double",
        "net_benefit double",
        "marginal_effect double",
        "marginal_cost double",
        "residual_risk double",
        "risk_tolerance double",
        "area int",
        "area_name string",
        "optimal boolean",
        "chosen boolean",
        "status string",
        "model_name string",
        "model_version string",
        "population string",
        "created_at timestamp",
    ),
    keys=("policy_version", "cutoff_pd"),
    description="risk-cost sweep of the approval cut-off per policy version; the chosen row "
    "of the 'active' version is the cut-off scoring uses",
)
GOLD_POLICY_BACKTESTS = Table(
    "gold",
    "policy_backtests",
    schema(
        "backtest_id string",
        "created_at timestamp",
        "window string",
        "active_version string",
        "active_policy string",
        "proposed_version string",
        "proposed_policy string",
        "section string",
        "method string",
        "subject string",
        "segment_type string",
        "segment string",
        "metric string",
        "value double",
        "low double",
        "high double",
        "note string",
    ),
    keys=("backtest_id", "section", "method", "subject", "segment_type", "segment", "metric"),
    description="policy backtests (`riskctl policy backtest`): per backtest, both policies, "
    "and each figure per policy, segment, swap set, swap-matrix cell and reject-inference "
    "method, with the guard flags; appended, one backtest_id per run, no application named",
)
GOLD_WARNING_INDICATORS = Table(
    "gold",
    "warning_indicators",
    schema(
        "as_of_date date",
        "indicator string",
        "segment_type string",
        "segment string",
        "value double",
        "numerator double",
        "denominator double",
        "warning_threshold double",
        "critical_threshold double",
        "status string",
        "exposure double",
        "run_id string",
        "computed_at timestamp",
        # Where the two thresholds come from (default and its evidence, a file, a
        # calibration); last, as ``lakehouse.add_missing_columns`` adds it to an old table.
        "threshold_source string",
    ),
    keys=("as_of_date", "indicator", "segment_type", "segment"),
    description="early-warning indicators per day and segment against warning and critical "
    "thresholds, with where each threshold comes from",
)
GOLD_ALERTS = Table(
    "gold",
    "alerts",
    schema(
        "alert_id string",
        "indicator string",
        "segment_type string",
        "segment string",
        "severity string",
        "first_breach_date date",
        "last_breach_date date",
        "value double",
        "threshold double",
        "exposure double",
        "quadrant string",
        "playbook array<string>",
        "stage string",
        "history array<struct<stage:string,at:timestamp,by:string,note:string>>",
        "opened_at timestamp",
        "updated_at timestamp",
    ),
    keys=("alert_id",),
    description="alerts opened by indicator breaches, moving identify -> assess -> decide -> "
    "dispose -> feedback with the playbook of their quadrant",
)

# --- gold: the feature store's tables (keyed by customer and event time) -------------
_CREATED = "created_timestamp timestamp"

FS_APPLICATION = Table(
    "gold",
    "fs_application",
    schema(
        "application_id string",
        "customer_id string",
        "event_timestamp timestamp",
        "requested_amount double",
        "term_months int",
        "monthly_income double",
        "age int",
        "amount_to_income double",
        "channel string",
        "purpose string",
        "province string",
        "employment_type string",
        "education string",
        _CREATED,
    ),
    keys=("application_id",),
    description="feature store: one row per application, as known at applied_at",
)
FS_REPAYMENT = Table(
    "gold",
    "fs_repayment",
    schema(
        "customer_id string",
        "event_timestamp timestamp",
        "prior_loans int",
        "prior_open_loans int",
        "prior_installments_due int",
        "prior_late_installments int",
        "prior_max_dpd int",
        "prior_current_dpd int",
        "prior_late_3m int",
        "prior_late_6m int",
        "prior_late_12m int",
        "prior_open_principal double",
        "prior_utilization double",
        "prior_snapshot_ts timestamp",
        _CREATED,
    ),
    keys=("customer_id", "event_timestamp"),
    description="feature store: the customer's repayment record with us, per change day",
)
FS_BUREAU = Table(
    "gold",
    "fs_bureau",
    schema(
        "report_id string",
        "application_id string",
        "customer_id string",
        "event_timestamp timestamp",
        "bureau_score int",
        "inquiries_6m int",
        "open_loans int",
        "total_credit_limit double",
        "total_balance double",
        "utilization double",
        "overdue_accounts int",
        "max_dpd_24m int",
        "credit_history_months int",
        "consumer_finance_loans int",
        "n_accounts int",
        "n_alerts int",
        _CREATED,
    ),
    keys=("report_id", "customer_id"),
    description="feature store: bureau reports, as known at report_time",
)
FS_EVENTS = Table(
    "gold",
    "fs_events",
    schema(
        "customer_id string",
        "event_timestamp timestamp",
        "ev_count_7d int",
        "ev_count_30d int",
        "ev_night_share_30d double",
        "ev_loan_calc_30d int",
        "ev_apply_click_30d int",
        _CREATED,
    ),
    keys=("customer_id", "event_timestamp"),
    description="feature store: app-event counts over the 7 and 30 days before each day",
)
FS_TEXT = Table(
    "gold",
    "fs_text",
    schema(
        "customer_id string",
        "event_timestamp timestamp",
        "notes_count_90d int",
        "notes_negative_90d int",
        "notes_negativity_90d double",
        _CREATED,
    ),
    keys=("customer_id", "event_timestamp"),
    description="feature store: service-note signals over the 90 days before each day",
)
FS_PUBLIC_RECORDS = Table(
    "gold",
    "fs_public_records",
    schema(
        "customer_id string",
        "event_timestamp timestamp",
        "pr_court_hits int",
        "pr_penalty_hits int",
        "pr_employer_hits int",
        "pr_news_hits int",
        "pr_last_record_ts timestamp",
        _CREATED,
    ),
    keys=("customer_id", "event_timestamp"),
    description="feature store: court/penalty/news records linked to the customer, cumulative",
)
OPS_FEATURE_STATS = Table(
    "ops",
    "feature_stats",
    schema(
        "run_id string",
        "feature_view string",
        "feature string",
        "rows long",
        "nulls long",
        "mean double",
        "stddev double",
        "min double",
        "p50 double",
        "max double",
        "computed_at timestamp",
    ),
    keys=("run_id", "feature_view", "feature"),
    description="per run and feature: rows, nulls and distribution (drift monitoring)",
)


FEATURE_TABLES: tuple[Table, ...] = (
    FS_APPLICATION,
    FS_REPAYMENT,
    FS_BUREAU,
    FS_EVENTS,
    FS_TEXT,
    FS_PUBLIC_RECORDS,
)

# --- ops: manifest and quarantine ---------------------------------------------------
OPS_MANIFEST = Table(
    "ops",
    "manifest",
    schema(
        "run_id string",
        "stage string",
        "source string",
        "target string",
        "window_start string",
        "window_end string",
        "rows_in long",
        "rows_out long",
        "rows_unchanged long",
        "rows_quarantined long",
        "started_at timestamp",
        "finished_at timestamp",
        "attempt_id string",
        "rows_duplicate long",
        "rows_rescued long",
    ),
    keys=("attempt_id",),
    description="one row per attempt of a step (append-only: a retry adds a row): rows_in = "
    "rows_out + rows_unchanged + rows_duplicate + rows_quarantined; rows_rescued: of the rows "
    "not quarantined, those with a value that did not parse kept raw in _rescued_data",
)
OPS_QUARANTINE = Table(
    "ops",
    "quarantine",
    schema(
        "run_id string",
        "stage string",
        "target string",
        "rule string",
        "reason string",
        "record string",
        "record_hash string",
        "source_uri string",
        "quarantined_at timestamp",
        "attempt_id string",
        "occurrence int",
    ),
    # one row per rejected record of an attempt: identical records are the 1st, 2nd...
    # occurrence, so the rows of an attempt equal its manifest's rows_quarantined
    keys=("attempt_id", "rule", "record_hash", "occurrence"),
    description="every rejected row, with the rule it broke and why (record and reason "
    "encrypted at rest: they may quote any value of the row)",
    sensitive=("record", "reason"),
)

OPS_WATERMARKS = Table(
    "ops",
    "watermarks",
    schema(
        "source string",
        "column string",
        "high_water string",
        "run_id string",
        "updated_at timestamp",
    ),
    keys=("source",),
    description="per incremental source, the highest watermark value extracted so far",
)

OPS_ERASURES = Table(
    "ops",
    "erasures",
    schema(
        "erasure_id string",
        "subject_ref string",
        "requested_by string",
        "reason string",
        "tables string",
        "rows_deleted long",
        "vacuumed string",
        "erased_at timestamp",
        "status string",
    ),
    keys=("erasure_id",),
    description="audit of data-subject erasures (subject named by a keyed pseudonym only); "
    "written 'pending' before the first deletion, updated as each table is done, 'done' "
    "at the end",
)

OPS_DQ_RESULTS = Table(
    "ops",
    "dq_results",
    schema(
        "run_id string",
        "table string",
        "expectation string",
        "kind string",
        "column string",
        "severity string",
        "passed boolean",
        "failing_rows long",
        "total_rows long",
        "observed string",
        "threshold string",
        "checked_at timestamp",
    ),
    keys=("run_id", "table", "expectation"),
    description="one row per run, table and data-quality expectation: observed vs threshold",
)

OPS_ALERT_NOTIFICATIONS = Table(
    "ops",
    "alert_notifications",
    schema(
        "alert_id string",
        "notifier string",
        "severity string",
        "quadrant string",
        "state string",
        "attempts int",
        "last_error string",
        "last_attempt_at timestamp",
        "notified_at timestamp",
    ),
    keys=("alert_id", "notifier"),
    description="delivery of each alert to each notifier: 'pending' until a send succeeds "
    "('sent', notified_at), retried by every early-warning run; severity and quadrant are "
    "the alert's as last announced (an escalation is announced again); last_error redacted",
)

GOLD_DECISION_LOG = Table(
    "gold",
    "decision_log",
    schema(
        "decision_seq long",
        "application_key string",
        "customer_key string",
        "request_fingerprint string",
        "product string",
        "application_date date",
        "decided_at timestamp",
        "decision string",
        "pd double",
        "score int",
        "risk_band string",
        "quadrant string",
        "arm string",
        "shadow boolean",
        "rules_action string",
        "rules_fired array<string>",
        "rules_undecided array<string>",
        "reason_codes array<string>",
        "champion_model string",
        "champion_pd double",
        "champion_decision string",
        "challenger_model string",
        "challenger_pd double",
        "challenger_decision string",
        "rules_version string",
        "rules_digest string",
        "policy_version string",
        "has_history boolean",
        "features_json string",
        "rule_inputs_json string",
        "latency_ms double",
        "caller string",
        "landed_at timestamp",
    ),
    keys=("decision_seq",),
    description="every decision of the real-time service (riskctl serve), landed from its "
    "journal by `riskctl decisions land`: pseudonymized keys, the features and rules used, "
    "champion and challenger PDs, the model, policy and rule versions, latency and caller",
    partition_by=(),
)
GOLD_DECISION_REVIEWS = Table(
    "gold",
    "decision_reviews",
    schema(
        "review_seq long",
        "application_key string",
        "customer_key string",
        "decision_seq long",
        "original_decision string",
        "decision string",
        "reviewer string",
        "reviewed_at timestamp",
        "landed_at timestamp",
    ),
    keys=("review_seq",),
    description="people's final decisions on the service's 'review' decisions (the "
    "workbench), landed from the journal with the decisions; the original decision row in "
    "gold.decision_log stays as it was. The reviewer's free-text reason stays in the "
    "journal (erasable with it) and is not landed",
    partition_by=(),
)

ALL_TABLES: tuple[Table, ...] = (
    BRONZE_CUSTOMERS,
    BRONZE_APPLICATIONS,
    BRONZE_LOANS,
    BRONZE_REPAYMENTS,
    BRONZE_BUREAU,
    BRONZE_EVENTS,
    BRONZE_NOTES,
    BRONZE_SETTLEMENTS,
    BRONZE_CRAWL_PAGES,
    BRONZE_COURT_RECORDS,
    BRONZE_PENALTIES,
    BRONZE_NEWS,
    SILVER_CUSTOMERS,
    SILVER_APPLICATIONS,
    SILVER_LOANS,
    SILVER_REPAYMENTS,
    SILVER_SETTLEMENTS,
    SILVER_BUREAU,
    SILVER_EVENTS,
    SILVER_NOTES,
    SILVER_COURT_RECORDS,
    SILVER_PENALTIES,
    SILVER_NEWS,
    SILVER_ENTITY_LINKS,
    GOLD_APPLICATION_FEATURES,
    GOLD_SCORED_APPLICATIONS,
    GOLD_LOAN_BOOK_RISK,
    GOLD_CUTOFF_POLICY,
    GOLD_POLICY_BACKTESTS,
    GOLD_WARNING_INDICATORS,
    GOLD_ALERTS,
    GOLD_DECISION_LOG,
    GOLD_DECISION_REVIEWS,
    *FEATURE_TABLES,
    OPS_MANIFEST,
    OPS_QUARANTINE,
    OPS_WATERMARKS,
    OPS_ERASURES,
    OPS_DQ_RESULTS,
    OPS_FEATURE_STATS,
    OPS_ALERT_NOTIFICATIONS,
)
TABLES = {t.full_name: t for t in ALL_TABLES}


def table(full_name: str) -> Table:
    """Look a table up by ``layer.name``; the error lists the known ones."""
    try:
        return TABLES[full_name]
    except KeyError:
        raise KeyError(f"unknown table {full_name!r}; known: {', '.join(TABLES)}") from None


# Delta table property naming the column that identifies the data subject in a table a user
# landed (`riskctl ingest-file --subject-column`); `riskctl erase` finds such tables by it.
SUBJECT_PROPERTY = "riskcontrol.subject_column"
