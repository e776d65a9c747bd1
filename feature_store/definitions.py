"""Feast definitions of the riskcontrol feature store: declarations only, no logic.

One entity (the customer), one Spark source per gold ``fs_*`` Delta table (built by
``riskcontrol.analyze.feature_store.build_feature_tables``; every row holds values as known at its
``event_timestamp``), one feature view per source, and the feature services a model and
single-application scoring read. Field tag ``missing: zero`` marks counts for which "no
row" means zero (no history), which ``riskcontrol.analyze.feature_store`` fills in on retrieval.

The sources point at the tables under ``RISK_LAKEHOUSE_ROOT`` (the pipeline's settings);
``riskcontrol.analyze.feature_store.feature_store(settings)`` points them at the tables of the
settings it is given.
"""

from feast import Entity, FeatureService, FeatureView, Field, ValueType
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from feast.table_format import DeltaFormat
from feast.types import Float64, Int32, String, UnixTimestamp

from riskcontrol.analyze import feature_store as fs
from riskcontrol.core.catalog import Table
from riskcontrol.core.config import get_settings

ZERO = {"missing": "zero"}

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="a borrower of the lender (silver.customers.customer_id)",
)


def _source(table: Table) -> SparkSource:
    return SparkSource(
        name=table.name,
        path=table.path(get_settings()),
        table_format=DeltaFormat(),
        timestamp_field="event_timestamp",
        # Not declared: created_timestamp is the build time, the same on every row of a
        # build, so as Feast's tie-breaker it would decide nothing and cost every
        # point-in-time query a GROUP BY and a join per view.
        description=table.description,
    )


application_source = _source(fs.FS_APPLICATION)
repayment_source = _source(fs.FS_REPAYMENT)
bureau_source = _source(fs.FS_BUREAU)
events_source = _source(fs.FS_EVENTS)
text_source = _source(fs.FS_TEXT)
public_records_source = _source(fs.FS_PUBLIC_RECORDS)

application = FeatureView(
    name="fs_application",
    description="the application's own fields and the applicant's attributes at applied_at",
    entities=[customer],
    # The row of the application itself (event time applied_at), never an older one.
    ttl=fs.VIEW_TTL["fs_application"],
    online=False,  # at scoring time these come with the request
    source=application_source,
    schema=[
        Field(name="requested_amount", dtype=Float64),
        Field(name="term_months", dtype=Int32),
        Field(name="monthly_income", dtype=Float64),
        Field(name="age", dtype=Int32),
        Field(name="amount_to_income", dtype=Float64),
        Field(name="channel", dtype=String),
        Field(name="purpose", dtype=String),
        Field(name="province", dtype=String),
        Field(name="employment_type", dtype=String),
        Field(name="education", dtype=String),
    ],
)

repayment = FeatureView(
    name="fs_repayment",
    description="repayment behaviour with the lender: DPD, late installments, open principal",
    entities=[customer],
    ttl=fs.VIEW_TTL["fs_repayment"],
    online=True,
    source=repayment_source,
    schema=[
        Field(name="prior_loans", dtype=Int32, tags=ZERO),
        Field(name="prior_open_loans", dtype=Int32, tags=ZERO),
        Field(name="prior_installments_due", dtype=Int32, tags=ZERO),
        Field(name="prior_late_installments", dtype=Int32, tags=ZERO),
        Field(name="prior_max_dpd", dtype=Int32, tags=ZERO),
        Field(name="prior_current_dpd", dtype=Int32, tags=ZERO),
        Field(name="prior_late_3m", dtype=Int32, tags=ZERO),
        Field(name="prior_late_6m", dtype=Int32, tags=ZERO),
        Field(name="prior_late_12m", dtype=Int32, tags=ZERO),
        Field(name="prior_open_principal", dtype=Float64, tags=ZERO),
        Field(name="prior_utilization", dtype=Float64),
        Field(name="prior_snapshot_ts", dtype=UnixTimestamp),
    ],
)

bureau = FeatureView(
    name="fs_bureau",
    description="the latest credit bureau report on the customer",
    entities=[customer],
    ttl=fs.VIEW_TTL["fs_bureau"],
    online=True,
    source=bureau_source,
    schema=[
        Field(name="bureau_score", dtype=Int32),
        Field(name="inquiries_6m", dtype=Int32),
        Field(name="open_loans", dtype=Int32),
        Field(name="total_credit_limit", dtype=Float64),
        Field(name="total_balance", dtype=Float64),
        Field(name="utilization", dtype=Float64),
        Field(name="overdue_accounts", dtype=Int32),
        Field(name="max_dpd_24m", dtype=Int32),
        Field(name="credit_history_months", dtype=Int32),
        Field(name="consumer_finance_loans", dtype=Int32),
        Field(name="n_accounts", dtype=Int32),
        Field(name="n_alerts", dtype=Int32),
    ],
)

events = FeatureView(
    name="fs_events",
    description="app/device events over the 7 and 30 days before",
    entities=[customer],
    ttl=fs.VIEW_TTL["fs_events"],
    online=True,
    source=events_source,
    schema=[
        Field(name="ev_count_7d", dtype=Int32, tags=ZERO),
        Field(name="ev_count_30d", dtype=Int32, tags=ZERO),
        Field(name="ev_night_share_30d", dtype=Float64),
        Field(name="ev_loan_calc_30d", dtype=Int32, tags=ZERO),
        Field(name="ev_apply_click_30d", dtype=Int32, tags=ZERO),
    ],
)

text = FeatureView(
    name="fs_text",
    description="customer-service notes over the 90 days before: count, negative, negativity",
    entities=[customer],
    ttl=fs.VIEW_TTL["fs_text"],
    online=True,
    source=text_source,
    schema=[
        Field(name="notes_count_90d", dtype=Int32, tags=ZERO),
        Field(name="notes_negative_90d", dtype=Int32, tags=ZERO),
        Field(name="notes_negativity_90d", dtype=Float64),
    ],
)

public_records = FeatureView(
    name="fs_public_records",
    description="court, penalty and news records linked to the customer or employer",
    entities=[customer],
    ttl=fs.VIEW_TTL["fs_public_records"],
    online=True,
    source=public_records_source,
    schema=[
        Field(name="pr_court_hits", dtype=Int32, tags=ZERO),
        Field(name="pr_penalty_hits", dtype=Int32, tags=ZERO),
        Field(name="pr_employer_hits", dtype=Int32, tags=ZERO),
        Field(name="pr_news_hits", dtype=Int32, tags=ZERO),
        Field(name="pr_last_record_ts", dtype=UnixTimestamp),
    ],
)

application_pd = FeatureService(
    name="application_pd",
    description="every feature the application PD models train on (point-in-time join)",
    features=[application, repayment, bureau, events, text, public_records],
)

application_pd_online = FeatureService(
    name="application_pd_online",
    description="what single-application scoring reads online (the rest is the request)",
    features=[repayment, bureau, events, text, public_records],
)

SOURCES = [
    application_source,
    repayment_source,
    bureau_source,
    events_source,
    text_source,
    public_records_source,
]
OBJECTS = [
    customer,
    *SOURCES,
    application,
    repayment,
    bureau,
    events,
    text,
    public_records,
    application_pd,
    application_pd_online,
]
