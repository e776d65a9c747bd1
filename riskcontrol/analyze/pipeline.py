"""The analyze tier as functions: bronze -> silver -> gold, entity resolution, the feature
store and data quality.

The CLI (`riskctl analyze`, `riskctl run`), the spark-submit jobs in ``jobs/`` and the
Airflow DAGs in ``dags/`` all call these, so every way of running the pipeline runs the same
code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from riskcontrol.analyze import application_features, feature_store, quality, resolve, silver
from riskcontrol.analyze.labels import LabelDefinition
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    BRONZE_APPLICATIONS,
    BRONZE_BUREAU,
    BRONZE_COURT_RECORDS,
    BRONZE_CUSTOMERS,
    BRONZE_EVENTS,
    BRONZE_LOANS,
    BRONZE_NEWS,
    BRONZE_NOTES,
    BRONZE_PENALTIES,
    BRONZE_REPAYMENTS,
    BRONZE_SETTLEMENTS,
    GOLD_APPLICATION_FEATURES,
    NOTE_PATTERN,
    SILVER_APPLICATIONS,
    SILVER_BUREAU,
    SILVER_COURT_RECORDS,
    SILVER_CUSTOMERS,
    SILVER_ENTITY_LINKS,
    SILVER_EVENTS,
    SILVER_LOANS,
    SILVER_NEWS,
    SILVER_NOTES,
    SILVER_PENALTIES,
    SILVER_REPAYMENTS,
    SILVER_SETTLEMENTS,
    Table,
    table,
)
from riskcontrol.core.config import Settings
from riskcontrol.core.dates import as_of_date, observation_time
from riskcontrol.core.runs import Run, StepCounts

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class SilverStep:
    """How one bronze table becomes one silver table."""

    bronze: Table
    silver: Table
    clean: Callable[..., tuple[DataFrame, DataFrame]]  # (bronze, settings, *refs) -> (ok, rejected)
    key: Callable[[], Column]  # the business key, read from bronze independently of ``clean``
    refs: tuple[Table, ...] = ()  # silver tables ``clean`` checks references against


def _json_key(field: str) -> Callable[[], Column]:
    return lambda: F.get_json_object("payload", f"$.{field}")


def _column(name: str) -> Callable[[], Column]:
    return lambda: F.col(name)


SILVER_STEPS = (
    SilverStep(BRONZE_CUSTOMERS, SILVER_CUSTOMERS, silver.clean_customers, _column("customer_id")),
    SilverStep(
        BRONZE_APPLICATIONS,
        SILVER_APPLICATIONS,
        lambda df, _key: silver.clean_applications(df),
        _column("application_id"),
    ),
    SilverStep(
        BRONZE_LOANS, SILVER_LOANS, lambda df, _k: silver.clean_loans(df), _column("loan_id")
    ),
    SilverStep(
        BRONZE_REPAYMENTS,
        SILVER_REPAYMENTS,
        lambda df, _k, loans: silver.clean_repayments(df, loans),
        _column("repayment_id"),
        refs=(SILVER_LOANS,),
    ),
    SilverStep(BRONZE_BUREAU, SILVER_BUREAU, silver.clean_bureau, _json_key("report_id")),
    SilverStep(
        BRONZE_EVENTS, SILVER_EVENTS, lambda df, _k: silver.clean_events(df), _json_key("event_id")
    ),
)

# Settlement files are a drop of their own: no files landed yet, no step.
SETTLEMENT_STEP = SilverStep(
    BRONZE_SETTLEMENTS,
    SILVER_SETTLEMENTS,
    lambda df, _k, loans: silver.clean_settlements(df, loans),
    _column("settlement_id"),
    refs=(SILVER_LOANS,),
)


def build_silver(run: Run, step: SilverStep) -> StepCounts:
    """Clean one bronze table into silver; superseded versions count as unchanged."""
    settings = run.settings
    counts = StepCounts("analyze", step.bronze.full_name, step.silver.full_name, 0, 0)
    bronze = lakehouse.read_clear(run.spark, step.bronze, settings).cache()
    counts.rows_in = bronze.count()
    latest_versions = bronze.select(step.key()).distinct().count()
    refs = [lakehouse.read(run.spark, t, settings) for t in step.refs]
    valid, rejected = step.clean(bronze, settings, *refs)
    valid = valid.cache()
    n_valid = valid.count()
    counts.rows_quarantined = run.quarantine(
        rejected, "analyze", step.silver.full_name, attempt_id=counts.attempt_id
    )
    result = lakehouse.merge(
        valid, step.silver, settings, update_when=lakehouse.changed(step.silver)
    )
    counts.rows_out = result.inserted + result.updated
    superseded = counts.rows_in - latest_versions
    counts.rows_unchanged = superseded + (n_valid - counts.rows_out)
    valid.unpersist()
    bronze.unpersist()
    return run.record(counts)


def build_gold(run: Run, progress: Progress = _quiet) -> StepCounts:
    spark, settings = run.spark, run.settings

    def read(t: Table) -> DataFrame:
        return lakehouse.read(spark, t, settings)

    apps = read(SILVER_APPLICATIONS)
    counts = StepCounts(
        "analyze", SILVER_APPLICATIONS.full_name, GOLD_APPLICATION_FEATURES.full_name, 0, 0
    )
    missing = F.lit(False)
    for c in silver.DECLARED:
        missing = missing | F.col(c).isNull()
    counts.rows_in, n_undeclared = apps.agg(F.count(F.lit(1)), F.count_if(missing)).first()
    if n_undeclared:
        progress(
            f"analyze: {n_undeclared:,} application(s) lack a declared "
            f"{' / '.join(silver.DECLARED)}: the customer record's latest value stands in, "
            f"and they may postdate the application (add them to the applications extract)"
        )
    as_of = as_of_date(spark, settings)
    history = feature_store.history_at_applications(
        apps, read(SILVER_BUREAU), {t: read(t) for t in feature_store.HISTORY_TABLES}
    )
    features = application_features.application_features(
        apps,
        read(SILVER_CUSTOMERS),
        history,
        read(SILVER_LOANS),
        read(SILVER_REPAYMENTS),
        as_of=as_of,
        definition=LabelDefinition.from_settings(settings),
    )
    lakehouse.overwrite(features, GOLD_APPLICATION_FEATURES, settings)
    counts.rows_out = read(GOLD_APPLICATION_FEATURES).count()
    counts.window_end = as_of.isoformat()
    return run.record(counts)


def known_person_names(spark: SparkSession, settings: Settings) -> DataFrame:
    """Every person name the lakehouse knows (customers, court subjects), in memory only.

    What silver masks in free text: names of the book's customers and of people on the
    court lists (the namesakes among them included).
    """
    customers = lakehouse.read_clear(spark, BRONZE_CUSTOMERS, settings).select("name")
    if not lakehouse.exists(spark, BRONZE_COURT_RECORDS, settings):
        return customers
    court = (
        lakehouse.read_clear(spark, BRONZE_COURT_RECORDS, settings)
        .where(F.col("subject_type") == "person")
        .select(F.col("subject_name").alias("name"))
    )
    return customers.unionByName(court).distinct()


def public_record_steps(spark: SparkSession, settings: Settings) -> tuple[SilverStep, ...]:
    """Silver steps of the free-text tables present in bronze (service notes, and the
    crawled ones after a first crawl): known person names are masked in their texts."""
    names = known_person_names(spark, settings).cache()
    steps = (
        SilverStep(
            BRONZE_NOTES,
            SILVER_NOTES,
            lambda df, _k: silver.clean_notes(df, names),
            lambda: F.regexp_extract("payload", NOTE_PATTERN, 1),
        ),
        SilverStep(
            BRONZE_COURT_RECORDS,
            SILVER_COURT_RECORDS,
            silver.clean_court_records,
            _column("record_id"),
        ),
        SilverStep(
            BRONZE_PENALTIES,
            SILVER_PENALTIES,
            lambda df, settings: silver.clean_penalties(df, settings, names),
            _column("record_id"),
        ),
        SilverStep(
            BRONZE_NEWS,
            SILVER_NEWS,
            lambda df, _k: silver.clean_news(df, names),
            _column("record_id"),
        ),
    )
    return tuple(s for s in steps if lakehouse.exists(spark, s.bronze, settings))


def run_silver(run: Run, progress: Progress = _quiet) -> list[StepCounts]:
    steps = []
    drops = tuple(
        s for s in (SETTLEMENT_STEP,) if lakehouse.exists(run.spark, s.bronze, run.settings)
    )
    for step in SILVER_STEPS + drops + public_record_steps(run.spark, run.settings):
        progress(f"analyze: {step.bronze.full_name} -> {step.silver.full_name}")
        steps.append(build_silver(run, step))
    return steps


PUBLIC_RECORD_SOURCES = (
    (BRONZE_COURT_RECORDS, resolve.court_records),
    (BRONZE_PENALTIES, resolve.penalty_records),
    (BRONZE_NEWS, resolve.news_records),
)


def book_customers(spark: SparkSession, settings: Settings) -> DataFrame:
    """The valid customers (in silver) with their clear identifiers, in memory only."""
    latest = silver.latest_by_key(["customer_id"], ["updated_at", "_ingested_at"])
    clear = lakehouse.read_clear(spark, BRONZE_CUSTOMERS, settings).transform(latest)
    valid = lakehouse.read(spark, SILVER_CUSTOMERS, settings).select("customer_id")
    return clear.join(valid, "customer_id").select(
        "customer_id",
        "name",
        "national_id",
        "province",
        "city",
        silver.parse_date("birth_date").alias("birth_date"),
        "employer_name",
    )


def run_resolve(run: Run, progress: Progress = _quiet) -> list[StepCounts]:
    """Entity resolution: link crawled public records to customers and their employers.

    Rebuilds ``silver.entity_links`` from the latest version of every record: customer
    links, company links, and each company link expanded to the customers employed there
    (``entity_type`` employer). The manifest counts records: linked (out) or not (unchanged).
    When the generated site's ground truth is at hand, precision and recall are printed
    and written to ``reports/entity_resolution.json``.
    """
    spark, settings = run.spark, run.settings
    present = [(t, f) for t, f in PUBLIC_RECORD_SOURCES if lakehouse.exists(spark, t, settings)]
    if not present:
        progress("analyze: entity resolution: no crawled records yet, nothing to link")
        return []
    progress("analyze: entity resolution: public records -> customers and employers")
    latest = silver.latest_by_key(["record_id"], ["fetched_at", "_ingested_at"])
    records = None
    for t, to_records in present:
        part = to_records(lakehouse.read_clear(spark, t, settings).transform(latest))
        records = part if records is None else records.unionByName(part)
    records = records.cache()
    customers = book_customers(spark, settings).cache()
    links = resolve.link_records(records, customers, settings).cache()
    staff = resolve.employer_links(links, customers, settings).select(
        "record_kind",
        "record_id",
        F.lit("employer").alias("entity_type"),
        "customer_id",
        "company_key",
        "match_method",
        "confidence",
        F.lit("employer_of=company_key").alias("evidence"),
        "record_date",
    )
    lakehouse.overwrite(links.unionByName(staff), SILVER_ENTITY_LINKS, settings)
    counts = StepCounts("analyze", "bronze.public_records", SILVER_ENTITY_LINKS.full_name, 0, 0)
    counts.rows_in = records.select("record_kind", "record_id").distinct().count()
    counts.rows_out = links.select("record_kind", "record_id").distinct().count()
    counts.rows_unchanged = counts.rows_in - counts.rows_out
    truth_path = settings.site_dir / "ground_truth.jsonl"
    if truth_path.exists():
        # Judge the linking of the records at hand: records of later site updates that
        # this crawl never saw are the crawl's coverage, not misses of the resolution.
        crawled = {
            (r.record_kind, r.record_id)
            for r in records.select("record_kind", "record_id").distinct().collect()
        }
        truth = [
            t
            for t in resolve.load_ground_truth(truth_path)
            if (t["kind"], t["record_id"]) in crawled
        ]
        report = resolve.evaluate(links, truth, settings)
        settings.reports_dir.mkdir(parents=True, exist_ok=True)
        (settings.reports_dir / "entity_resolution.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8"
        )
        for kind in ("court", "penalty", "news"):
            if kind in report:
                person = report[kind]["person"]
                progress(
                    f"analyze: entity resolution {kind}: person precision "
                    f"{person['precision']}, recall {person['recall']} (vs ground truth)"
                )
    for df in (links, customers, records):
        df.unpersist()
    return [run.record(counts)]


def run_gold(run: Run, progress: Progress = _quiet) -> list[StepCounts]:
    progress("analyze: silver + feature store -> gold.application_features")
    return [build_gold(run, progress)]


def run_quality(run: Run, progress: Progress = _quiet) -> list[quality.DQResult]:
    """Check every declared expectation on the silver and gold tables that exist.

    Results go to ``ops.dq_results``; a breached critical expectation raises
    ``quality.DataQualityError`` (after the results are written).
    """
    spark, settings = run.spark, run.settings
    tables = {
        name: lakehouse.read(spark, table(name), settings)
        for name in quality.EXPECTATIONS
        if lakehouse.exists(spark, table(name), settings)
    }
    progress(
        f"analyze: data quality: {len(tables)} tables, "
        f"{sum(len(quality.EXPECTATIONS[n]) for n in tables)} expectations"
    )
    as_of = as_of_date(spark, settings)
    try:
        results = quality.run_checks(run, tables, as_of)
    except quality.DataQualityError as exc:
        progress(quality.format_results(exc.results))
        raise
    failed = [r for r in results if not r.passed]
    progress(
        f"analyze: data quality: {len(results) - len(failed)} passed, "
        f"{len(failed)} warning(s) (ops.dq_results)"
    )
    return results


def run_features(run: Run, progress: Progress = _quiet) -> dict[str, int]:
    """Build the feature store's gold tables, record their statistics, materialize online.

    Snapshots stop at the data's observation time (not the wall clock), and the online
    store (SQLite by default) then holds each customer's latest values as of that time.
    """

    end = observation_time(run.spark, run.settings)
    progress(f"analyze: feature store: gold.fs_* tables as of {end:%Y-%m-%d}")
    rows = feature_store.build_feature_tables(run, until=end)
    for name, n in rows.items():
        progress(f"  {name:28} {n:>10,} rows")
    progress("analyze: feature store: apply definitions, materialize to the online store")
    feature_store.materialize(feature_store.feature_store(run.settings), end)
    return rows


def run_analyze(run: Run, progress: Progress = _quiet) -> list[StepCounts]:
    steps = run_silver(run, progress) + run_resolve(run, progress)
    run_features(run, progress)  # gold reads the customer's history from the feature store
    steps += run_gold(run, progress)
    run_quality(run, progress)
    return steps
