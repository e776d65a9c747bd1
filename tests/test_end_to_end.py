"""The whole pipeline on a small generated book with `riskctl run`: collect, analyze,
train, and the apply tier (cut-off policy, scoring, loan book, early warning and alerts,
the report); then, over the same lakehouse, a `spark-submit` re-scoring, single-application
scoring, the alerts workflow, Airflow running the apply DAG again (idempotent), the
privacy scan, and an erasure (last: it changes the lakehouse).

These are the slowest tests (marked ``slow``); ``make test`` runs them, first, on one
pytest worker while the other runs the rest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import BOOK_SPARK_CONF, TEST_BRONZE_KEY, TEST_PII_KEY, free_port, generated_code
from pyspark.sql import functions as F

from riskcontrol.cli import main
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    BRONZE_BUREAU,
    BRONZE_COURT_RECORDS,
    BRONZE_CUSTOMERS,
    BRONZE_NEWS,
    BRONZE_PENALTIES,
    CATEGORICAL_FEATURES,
    GOLD_ALERTS,
    GOLD_APPLICATION_FEATURES,
    GOLD_CUTOFF_POLICY,
    GOLD_LOAN_BOOK_RISK,
    GOLD_SCORED_APPLICATIONS,
    GOLD_WARNING_INDICATORS,
    NUMERIC_FEATURES,
    OPS_MANIFEST,
    OPS_QUARANTINE,
    SILVER_APPLICATIONS,
    SILVER_BUREAU,
    SILVER_CUSTOMERS,
    SILVER_LOANS,
    SILVER_REPAYMENTS,
)
from riskcontrol.core.config import PROJECT_ROOT, get_settings

pytestmark = pytest.mark.slow

CUSTOMERS = 1500
SEED = 3
DAG_IDS = ("risk_collect", "risk_analyze", "risk_apply")


@pytest.fixture(scope="module", autouse=True)
def _generated_code(spark):
    """This module runs a whole book in the session: with Spark's code generation."""
    with generated_code(spark):
        yield


@pytest.fixture(scope="module")
def book(tmp_path_factory, spark):
    """A generated book run through `riskctl run` in-process (the session's Spark)."""
    home = tmp_path_factory.mktemp("book")
    env = {
        "RISK_HOME": str(home),
        "RISK_SITE_PORT": str(free_port()),
        "RISK_PII_KEY": TEST_PII_KEY,
        "RISK_BRONZE_KEY": TEST_BRONZE_KEY,
        "RISK_SPARK_SHUFFLE_PARTITIONS": "2",
        # code generation on (the module's session has it): a driver started for the
        # session's settings must not turn it off again
        "RISK_SPARK_CONF": BOOK_SPARK_CONF,
        # One kind per training here (the tree now, the scorecard in the Airflow run):
        # test_models and test_evaluate fit and log every kind on smaller books.
        "RISK_MODEL_KINDS": "decision_tree",
        # From 15 days before the planted deterioration starts (75 days before as-of).
        "RISK_WARNING_LOOKBACK_DAYS": "90",
        # The tree fitted on this small book ranks out of time at AUC 0.59 (149 judged
        # approved applications, 4.0% bad; at the last change approving everyone left a
        # residual risk of 1.6%, the chosen cut-off PD 0.21). The residual risk moves with
        # every change to the generator (it was 4.3% on an earlier book, over the default
        # 3% at every cut-off with an effect above its cost), so the tolerance is 5% and
        # the policy path (area 3, activation, scoring by it) runs whatever the draw. The
        # infeasible path is tested in test_riskcost.
        "RISK_RISK_TOLERANCE": "0.05",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        get_settings.cache_clear()
        assert main.main(["run", "--customers", str(CUSTOMERS), "--seed", str(SEED)]) == 0
        assert spark.conf.get("spark.sql.codegen.wholeStage") == "true"  # as production
        settings = get_settings()
        generation = json.loads((settings.data_dir / "generation.json").read_text())
        yield settings, generation
    get_settings.cache_clear()


def _site_truth(settings) -> list[dict]:
    """The generated site's records of epoch 1 (the one `riskctl run` crawls)."""
    lines = (settings.site_dir / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["epoch_added"] == 1]


def _read(spark, table, settings):
    return lakehouse.read(spark, table, settings)


def test_every_pending_application_is_scored_once_and_consistently(spark, book):
    settings, generation = book
    scored = _read(spark, GOLD_SCORED_APPLICATIONS, settings).cache()
    pending = generation["applications_by_status"]["pending"]
    assert scored.count() == pending
    assert scored.select("application_id").distinct().count() == pending
    con = sqlite3.connect(settings.lending_db_path)
    want_ids = {
        r[0] for r in con.execute("SELECT application_id FROM applications WHERE status='pending'")
    }
    assert {r[0] for r in scored.select("application_id").collect()} == want_ids
    bad = scored.where(
        (F.col("pd") < 0)
        | (F.col("pd") > 1)
        | (F.col("score") < 300)
        | (F.col("score") > 900)
        | (F.col("impact") != F.col("requested_amount") * settings.lgd)
    )
    assert bad.count() == 0
    high_p = F.col("pd") >= settings.quadrant_pd_threshold
    high_i = F.col("impact") >= settings.quadrant_impact_threshold
    expected = F.when(high_p & high_i, "D").when(high_p, "C").when(high_i, "B").otherwise("A")
    assert scored.where(F.col("quadrant") != expected).count() == 0
    assert {r[0] for r in scored.select("model_name").distinct().collect()} == {"application_pd"}
    assert scored.where(F.col("model_version").isNull()).count() == 0


def test_quarantine_holds_exactly_the_injected_faults(spark, book):
    settings, generation = book
    faults = generation["faults"]
    got = {
        (r.target, r.rule): r.n
        for r in _read(spark, OPS_QUARANTINE, settings)
        .groupBy("target", "rule")
        .agg(F.count("*").alias("n"))
        .collect()
    }
    want = {
        ("silver.customers", "invalid_national_id"): faults["customers_invalid_national_id"],
        ("silver.customers", "invalid_mobile"): faults["customers_malformed_mobile"],
        ("silver.applications", "non_positive_amount"): faults["applications_nonpositive_amount"],
        ("bronze.bureau_reports", "malformed_json"): faults["bureau_malformed_lines"],
        ("bronze.app_events", "malformed_json"): faults["events_malformed_lines"],
        ("bronze.service_notes", "missing_note_header"): faults["notes_missing_header"],
        ("bronze.settlements", "malformed_row"): faults["settlements_short_rows"],
        ("bronze.settlements", "unparseable_amount"): faults["settlements_unparseable_amount"],
        ("bronze.settlements", "unparseable_date"): faults["settlements_unparseable_date"],
        ("bronze.settlements", "missing_loan_id"): faults["settlements_missing_loan_id"],
        ("bronze.court_records", "missing_case_no"): sum(
            "missing_case_no" in r["faults"] for r in _site_truth(settings)
        ),
        ("bronze.penalties", "missing_penalty_decision"): sum(
            "no_decision_text" in r["faults"] for r in _site_truth(settings)
        ),
    }
    assert got == {k: v for k, v in want.items() if v}
    # A re-sent bureau report lands once: bronze = lines - malformed - duplicates.
    bureau_lines = generation["files"]["bureau"]["total"]
    assert _read(spark, BRONZE_BUREAU, settings).count() == (
        bureau_lines - faults["bureau_malformed_lines"] - faults["bureau_duplicate_lines"]
    )


def test_the_crawl_landed_every_parseable_public_record_once(spark, book):
    settings, _ = book
    truth = _site_truth(settings)
    for kind, table in (
        ("court", BRONZE_COURT_RECORDS),
        ("penalty", BRONZE_PENALTIES),
        ("news", BRONZE_NEWS),
    ):
        want = sorted(r["record_id"] for r in truth if r["kind"] == kind and r["expect_record"])
        got = sorted(r.record_id for r in _read(spark, table, settings).collect())
        assert got == want, kind


def test_manifest_reconciles_every_step(spark, book):
    settings, generation = book
    rows = _read(spark, OPS_MANIFEST, settings).collect()
    # 8 collect + 4 crawl + 11 silver (7 internal, settlements, 3 public records) + entity
    # links + gold + apply (scoring, loan book, warning indicators)
    assert len(rows) == 28
    for r in rows:
        assert r.rows_in == (
            r.rows_out + r.rows_unchanged + r.rows_duplicate + r.rows_quarantined
        ), r
    # A re-sent bureau line is counted as a duplicate by the landing, not as "unchanged".
    (bureau,) = [r for r in rows if r.target == "bronze.bureau_reports"]
    assert (bureau.rows_duplicate, bureau.rows_unchanged) == (
        generation["faults"]["bureau_duplicate_lines"],
        0,
    )


def test_labels_match_the_generators_ground_truth(spark, book):
    settings, generation = book
    feats = _read(spark, GOLD_APPLICATION_FEATURES, settings)
    matured = feats.where("label_matured")
    assert matured.count() == generation["label"]["matured_loans"]
    assert matured.where("label = 1").count() == generation["label"]["bad_loans"]


def test_silver_holds_pseudonyms_not_identifiers(spark, book):
    settings, _ = book
    bronze = lakehouse.read_clear(spark, BRONZE_CUSTOMERS, settings).select(
        "customer_id", "national_id"
    )
    silver = _read(spark, SILVER_CUSTOMERS, settings)
    assert not {"national_id", "mobile", "name"} & set(silver.columns)
    row = silver.join(bronze, "customer_id").orderBy("customer_id").first()
    assert (
        row.customer_key
        == hmac.new(TEST_PII_KEY.encode(), row.national_id.encode(), hashlib.sha256).hexdigest()
    )
    assert row.national_id_masked == "*" * 14 + row.national_id[-4:]


def test_no_silver_column_rebuilds_a_national_id(spark, book):
    """The attack of issue 13: silver's region code (the ID's first 6 digits), birth date
    (the next 8) and masked ID (the last 4) gave back every ID, without any key."""
    settings, _ = book
    clear = lakehouse.read_clear(spark, BRONZE_CUSTOMERS, settings).select(
        "customer_id", "national_id"
    )
    silver = _read(spark, SILVER_CUSTOMERS, settings)
    rows = [
        r.asDict()
        for r in silver.join(clear.dropDuplicates(["customer_id"]), "customer_id").collect()
    ]
    assert len(rows) > 0.9 * CUSTOMERS

    def forms(v) -> set[str]:
        if v is None:
            return set()
        if isinstance(v, dt.date):
            return {v.strftime("%Y%m%d"), v.isoformat()}
        return {str(v), str(v).replace("-", "")}

    def gives(column: str, part: slice) -> int:
        return sum(r["national_id"][part] in forms(r[column]) for r in rows)

    columns = [c for c in silver.columns if c != "customer_id"]
    region = {c: gives(c, slice(0, 6)) for c in columns}
    born = {c: gives(c, slice(6, 14)) for c in columns}
    assert {c: n for c, n in region.items() if n} == {}
    assert {c: n for c, n in born.items() if n} == {}
    # What is left shows 4 of 18 characters: the other 14 are hidden.
    assert all(r["national_id_masked"].count("*") == 14 for r in rows)


def test_models_are_registered_with_a_champion(spark, book, capsys):
    settings, _ = book
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    versions = client.search_model_versions(f"name='{settings.registered_model}'")
    assert [v.tags["model_kind"] for v in versions] == ["decision_tree"]
    champion = client.get_model_version_by_alias(settings.registered_model, "champion")
    decision = json.loads(champion.tags["promotion"])
    # The first version is promoted whatever its calibration: something must score, and the
    # reason carries a failed calibration test if there is one.
    assert decision["promote"] is True and decision["reason"].startswith("no champion yet")
    assert 0.0 <= decision["calibration_p"] <= 1.0 and decision["p_value"] is None
    run = client.get_run(champion.run_id)
    assert champion.version == versions[0].version
    assert 0.5 < run.data.metrics["oot_auc"] <= 1.0
    assert run.data.params["lineage.gold.application_features"] == "0"
    # Scored applications carry up to three reason codes naming model features: the
    # features on the tree path that raised the risk (none for the safest leaves; this
    # small book's tree rarely splits twice on the way up).
    scored = _read(spark, GOLD_SCORED_APPLICATIONS, settings)
    sizes = {r[0] for r in scored.select(F.size("reason_codes")).distinct().collect()}
    assert sizes <= {0, 1, 2, 3} and max(sizes) >= 1
    named = {c for r in scored.select("reason_codes").collect() for c in r[0]}
    assert named <= set(NUMERIC_FEATURES) | set(CATEGORICAL_FEATURES)
    assert main.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "champion" in out and "decision_tree" in out


def test_tables_command_lists_every_table(book, capsys):
    assert main.main(["tables"]) == 0
    out = capsys.readouterr().out
    assert "gold.scored_applications" in out and "ops.quarantine" in out
    # Every table exists after a run but the real-time decision log and its reviews (landed
    # by `riskctl decisions land`) and the erasure audit (written by `riskctl erase`).
    missing = [line.split()[0] for line in out.split("lakehouse:")[0].splitlines() if " - " in line]
    # And the policy backtests, written by `riskctl policy backtest` (a test below).
    assert missing == [
        "gold.policy_backtests",
        "gold.decision_log",
        "gold.decision_reviews",
        "ops.erasures",
    ]


def test_spark_submit_job_rescores_in_its_own_driver(spark, book):
    """`riskctl submit apply` runs jobs/apply.py through spark-submit: a separate driver."""
    settings, generation = book
    env = {
        **os.environ,
        "RISK_HOME": str(settings.home),
        "RISK_PII_KEY": TEST_PII_KEY,
        "RISK_BRONZE_KEY": TEST_BRONZE_KEY,
        "RISK_SPARK_CONF": BOOK_SPARK_CONF,
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "riskctl"), "submit", "apply", "--run-id", "submit-1"]
        + ["--tasks", "score_applications"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith('{"task"')]
    (step,) = json.loads(line)["steps"]
    pending = generation["applications_by_status"]["pending"]
    assert (step["rows_in"], step["rows_out"]) == (pending, pending)
    scored = _read(spark, GOLD_SCORED_APPLICATIONS, settings)
    assert scored.count() == pending  # replaced, not appended


# --- the apply tier ---------------------------------------------------------------------


def test_the_active_cutoff_policy_decides_every_score(spark, book):
    settings, _ = book
    policy = _read(spark, GOLD_CUTOFF_POLICY, settings)
    assert {r[0] for r in policy.select("policy_version").distinct().collect()} == {1}
    (chosen,) = policy.where("chosen").collect()
    (optimal,) = policy.where("optimal").collect()
    assert chosen.cutoff_pd == optimal.cutoff_pd
    assert (chosen.status, chosen.area, chosen.area_name) == ("active", 3, "reasonable")
    assert chosen.residual_risk <= settings.risk_tolerance
    assert chosen.control_effect >= chosen.control_cost
    assert (settings.reports_dir / "cutoff_policy_v1.png").stat().st_size > 10_000
    scored = _read(spark, GOLD_SCORED_APPLICATIONS, settings)
    expected = (
        F.when(F.col("pd") >= chosen.cutoff_pd, "reject")
        .when(F.col("pd") >= chosen.approve_below_pd, "review")
        .otherwise("approve")
    )
    assert scored.where(F.col("decision") != expected).count() == 0
    assert {r[0] for r in scored.select("policy_version").distinct().collect()} == {"1"}


def test_without_a_reasonable_cutoff_the_policy_in_force_stays(spark, book, capsys, monkeypatch):
    """At a 1% tolerance no cut-off of this book is in area 3: `riskctl cutoff` refuses and
    says what to do; a scheduled run keeps the active policy and writes nothing."""
    from riskcontrol.apply.pipeline import run_cutoff
    from riskcontrol.core.runs import Run

    settings, _ = book

    def policy() -> pd.DataFrame:
        frame = _read(spark, GOLD_CUTOFF_POLICY, settings).toPandas()
        return frame.sort_values(["policy_version", "cutoff_pd"]).reset_index(drop=True)

    before = policy()
    monkeypatch.setenv("RISK_RISK_TOLERANCE", "0.01")
    get_settings.cache_clear()
    try:
        assert main.main(["cutoff"]) == 2
        err = capsys.readouterr().err
        assert "no candidate cut-off is in area 3" in err
        assert "RISK_RISK_TOLERANCE=0.01" in err and "riskctl cutoff --cutoff PD" in err
        result = run_cutoff(Run(spark, get_settings()), keep_when_infeasible=True)
    finally:
        get_settings.cache_clear()
    assert (result.version, result.chosen, result.created, result.plot) == (None, None, False, None)
    assert result.note.endswith("the policy in force stays")
    assert "The lowest residual risk of the sweep is" in result.note
    assert len(result.frame) > 1 and not (result.frame["area"] == 3).any()
    pd.testing.assert_frame_equal(policy(), before)


def test_loan_book_holds_every_active_loan_with_its_risk(spark, book):
    from riskcontrol.apply import provision

    settings, _ = book
    rows = _read(spark, GOLD_LOAN_BOOK_RISK, settings).cache()
    (as_of,) = [r[0] for r in rows.select("as_of_date").distinct().collect()]
    # Active on the as-of day: disbursed before it with an installment not paid by then
    # (a payment counts from the day after it was made) and not yet charged off,
    # recounted here in pandas; the EAD from each loan's own schedule: principal unpaid,
    # interest billed or accrued.
    loans = (
        _read(spark, SILVER_LOANS, settings)
        .select("loan_id", "disbursed_date", "principal", "annual_rate", "term_months")
        .toPandas()
        .set_index("loan_id")
    )
    lines = (
        _read(spark, SILVER_REPAYMENTS, settings)
        .select("loan_id", "installment_no", "due_date", "paid_date")
        .toPandas()
        .sort_values(["loan_id", "installment_no"])
    )
    day = pd.Timestamp(as_of)
    lines["unpaid"] = lines.paid_date.isna() | (pd.to_datetime(lines.paid_date) >= day)
    lines["due"] = pd.to_datetime(lines.due_date) < day
    want = {}
    for loan_id, own in lines.groupby("loan_id"):
        loan = loans.loc[loan_id]
        if not (pd.Timestamp(loan.disbursed_date) < day and own.unpaid.any()):
            continue
        overdue = own.due_date[own.due & own.unpaid]
        if len(overdue) and (day - pd.Timestamp(overdue.min())).days >= settings.charge_off_dpd:
            continue  # charged off: off the book
        last_due = own.due_date[own.due].max() if own.due.any() else loan.disbursed_date
        want[loan_id] = provision.exposure(
            provision.amortization(loan.principal, loan.annual_rate, int(loan.term_months)),
            ~own.unpaid.to_numpy(),
            own.due.to_numpy(),
            loan.annual_rate,
            (day - pd.Timestamp(last_due)).days,
        )["ead"]
    got = {r.loan_id: r.ead for r in rows.select("loan_id", "ead").collect()}
    assert got.keys() == want.keys()
    assert all(abs(got[k] - want[k]) < 0.01 for k in want)
    wrong = rows.where(
        (F.abs(F.col("expected_loss") - F.col("pd") * F.col("lgd") * F.col("ead")) > 1e-6)
        | ((F.col("dpd") >= 90) & ((F.col("pd") != 1.0) | (F.col("stage") != 3)))
        | ((F.col("dpd") >= 30) & (F.col("dpd") < 90) & (F.col("stage") != 2))
        | ((F.col("dpd") < 30) & ((F.col("stage") != 1) | (F.col("pd_horizon_months") > 12)))
        | (F.col("quadrant").isNull())
    )
    assert wrong.count() == 0


def test_the_planted_deterioration_is_caught_after_it_starts(spark, book):
    settings, generation = book
    planted = generation["deterioration"]
    start = dt.date.fromisoformat(planted["start_date"])
    indicators = _read(spark, GOLD_WARNING_INDICATORS, settings)
    channel_dpd = indicators.where(
        (F.col("segment_type") == "channel") & F.col("indicator").startswith("dpd")
    )
    breached = {
        (r.indicator, r.segment): r.first
        for r in channel_dpd.where(F.col("status").isin("warning", "critical"))
        .groupBy("indicator", "segment")
        .agg(F.min("as_of_date").alias("first"))
        .collect()
    }
    assert {seg for _, seg in breached} == {planted["segment"]}  # no other channel
    assert all(first > start for first in breached.values())
    alerts = {
        (r.indicator, r.segment): r.first_breach_date
        for r in _read(spark, GOLD_ALERTS, settings)
        .where((F.col("segment_type") == "channel") & F.col("indicator").startswith("dpd"))
        .collect()
    }
    assert alerts == breached  # each breach opened one alert, dated its first day


def _json_output(text: str):
    """The JSON document a command printed after its progress lines."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("[", "{", "[]"))
    return json.loads("\n".join(lines[start:]))


def test_alerts_cli_lists_and_advances_an_alert(book, capsys):
    assert main.main(["alerts", "list", "--json"]) == 0
    listed = _json_output(capsys.readouterr().out)
    assert listed and all(a["stage"] == "identify" for a in listed)
    alert_id = listed[0]["alert_id"]
    assert main.main(["alerts", "advance", alert_id, "--to", "decide", "--note", "x"]) == 2
    assert "assess" in capsys.readouterr().err  # the only stage it may move to
    assert main.main(["alerts", "advance", alert_id[:10], "--note", "checked the segment"]) == 0
    capsys.readouterr()
    assert main.main(["alerts", "show", alert_id, "--json"]) == 0
    shown = _json_output(capsys.readouterr().out)
    assert shown["stage"] == "assess"
    assert [h["stage"] for h in shown["history"]] == ["identify", "assess"]
    assert main.main(["alerts", "show", "ffffffffffff"]) == 2


def test_the_report_is_written_with_its_pdf(book):
    settings, _ = book
    (html,) = settings.reports_dir.glob("risk_report_*.html")
    text = html.read_text(encoding="utf-8")
    assert "Cut-off policy: v1" in text and "application_pd v1" in text
    assert "http://" not in text and "https://" not in text
    (pdf,) = settings.reports_dir.glob("risk_report_*.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_reject_inference_moves_the_swap_in_bad_rate_towards_the_hidden_truth(
    spark, book, capsys, monkeypatch
):
    """`riskctl policy backtest` of the champion's cut-off without the service's reject
    rules (`rules: []`), over every month with matured outcomes: the swap-ins are the
    applications the rules reject today (the age and income limits, replayed on history;
    this small book's tree has six leaves, none above the cut-off's review band, so no
    cut-off alone would swap anyone in), most of them rejected in the past too, whose
    outcome the pipeline never saw. The generator knows it
    (truth/rejected_outcomes.csv, read by no pipeline step). Known outcomes alone judge the
    swap-ins by the few the lender once approved; each reject inference method must land
    nearer the swap-ins' true bad rate. The backtest lands in gold.policy_backtests and
    the report's reader finds it."""
    from riskcontrol.apply import policylab, report
    from riskcontrol.modeling.training import training_split

    settings, _ = book
    windows = training_split(spark, settings).windows
    window = f"{windows['train'].split('..')[0]}..{windows['oot'].split('..')[1]}"
    active = policylab.active_policy(spark, settings)
    proposal = settings.home / "no-rules.yaml"
    proposal.write_text(
        f"version: no-rules\nmodel: champion\napprove_below_pd: {active.approve_below_pd}\n"
        f"reject_from_pd: {active.reject_from_pd}\nrules: []\n",
        encoding="utf-8",
    )
    kept = {}

    def keep(*args, **kwargs):
        kept["done"] = run_backtest(*args, **kwargs)
        return kept["done"]

    run_backtest = policylab.run_backtest
    monkeypatch.setattr(policylab, "run_backtest", keep)
    assert main.main(["policy", "backtest", "--proposed", str(proposal), "--window", window]) == 0
    out = capsys.readouterr().out
    done = kept["done"]
    result = done.result
    truth = pd.read_csv(settings.data_dir / "truth" / "rejected_outcomes.csv")
    truth = truth.set_index("application_id")["bad"]  # empty where immature
    swap_in = result.rows[result.rows["swap"] == "swap_in"]
    assert len(swap_in) == result.swap("swap_in", "applications") > 0
    # every swap-in is put down to a replayed rule of the service
    rules = result.swap_rules
    assert rules["applications"].sum() == len(swap_in)
    assert set(rules["rule"]) <= {"KO_AGE_BELOW_MIN", "KO_AGE_ABOVE_MAX", "KO_INCOME_BELOW_MIN"}
    known_ids = swap_in.loc[swap_in["outcome"] == "known", "application_id"]
    inferred_ids = swap_in.loc[swap_in["outcome"] == "inferred", "application_id"]
    # the true outcome of every swap-in whose outcome exists: the lender's label where it
    # knows one (the replay's known bad count), the generator's hidden one where it infers
    hidden = truth.reindex(inferred_ids).dropna()
    assert len(hidden) >= 20, "too few swap-ins with a hidden outcome to judge inference"
    known_bads = result.swap("swap_in", "known_bads")
    true_rate = (known_bads + hidden.sum()) / (len(known_ids) + len(hidden))
    known_only = result.swap("swap_in", "bad_rate", "none")
    for method in ("parcelling", "fuzzy"):
        inferred = result.swap("swap_in", "bad_rate", method)
        assert abs(inferred - true_rate) < abs(known_only - true_rate), (
            method,
            inferred,
            known_only,
            true_rate,
        )
    print(
        f"swap-in {len(swap_in)}: known only {known_only:.3f}, parcelling "
        f"{result.swap('swap_in', 'bad_rate', 'parcelling'):.3f}, fuzzy "
        f"{result.swap('swap_in', 'bad_rate', 'fuzzy'):.3f}, true {true_rate:.3f} "
        f"({len(known_ids)} known + {len(hidden)} hidden outcomes)",
        file=sys.stderr,
    )
    assert f"backtest {done.backtest_id}: " in out
    assert report.latest_backtest(spark, settings)["backtest_id"] == done.backtest_id
    assert done.page.exists()


def test_score_application_equals_the_batch_row(spark, book, tmp_path, capsys):
    settings, _ = book
    from riskcontrol.apply import online

    feats = _read(spark, GOLD_APPLICATION_FEATURES, settings)
    row = feats.where("status = 'pending'").orderBy("application_id").first().asDict()
    batch = (
        _read(spark, GOLD_SCORED_APPLICATIONS, settings)
        .where(F.col("application_id") == row["application_id"])
        .first()
    )
    # Every model feature as the batch saw it: the same model and code give the same row.
    request = {c: row[c] for c in (*online.REQUIRED, *online.ONLINE_FEATURES, "age")}
    request["application_date"] = row["application_date"].isoformat()
    # Only the application's own fields: the customer's history comes from the online store.
    bare = {c: row[c] for c in (*online.REQUIRED, "age")}
    path = tmp_path / "apps.json"
    path.write_text(json.dumps([request, {**bare, "application_id": "X-1"}]))
    assert main.main(["score-application", "--json", str(path)]) == 0
    same, fresh = _json_output(capsys.readouterr().out)
    for c in ("pd", "score", "risk_band", "quadrant", "strategy", "decision", "reason_codes"):
        assert same[c] == batch[c], c
    assert (same["model_version"], same["policy_version"]) == ("1", "1")
    assert fresh["application_id"] == "X-1" and 0 < fresh["pd"] < 1
    assert fresh["latency_ms"] > 0
    path.write_text(json.dumps({k: v for k, v in bare.items() if k != "channel"}))
    assert main.main(["score-application", "--json", str(path)]) == 2
    assert "channel" in capsys.readouterr().err


# Applications whose history touches every view: a late prior loan, service notes, app
# events, no bureau report; pending (scored by the batch) and decided (trained on).
PARITY_CASES = (
    "status = 'pending' AND prior_max_dpd > 0",
    "status = 'pending' AND notes_count_90d > 0 AND prior_loans > 0",
    "status = 'pending' AND ev_count_30d > 0 AND bureau_score IS NOT NULL",
    "bureau_score IS NULL",
    "label_matured AND prior_late_installments > 0 AND ev_count_30d > 0",
)


def test_features_read_online_as_of_each_decision_equal_the_training_rows(spark, book, tmp_path):
    """One feature definition. For applications of the book, the customer's history read
    the online way as of the decision (an online store materialized up to that moment,
    read by the service's reader) plus the request's own fields is the gold row the model
    was trained or scored on, and the service's local scorer gives the batch's PD."""
    settings, _ = book
    from riskcontrol.analyze import feature_store as fs
    from riskcontrol.apply import online, scoring
    from riskcontrol.apply.localscore import LocalScorer
    from riskcontrol.modeling import tracking

    feats = _read(spark, GOLD_APPLICATION_FEATURES, settings)
    decided = fs.application_entities(
        _read(spark, SILVER_APPLICATIONS, settings), _read(spark, SILVER_BUREAU, settings)
    )
    rows = feats.join(decided, ["application_id", "customer_id"])
    picked = []
    for case in PARITY_CASES:
        row = rows.where(case).orderBy("application_id").first()
        assert row is not None, f"the book has no application with {case}"
        picked.append(row)
    picked.sort(key=lambda r: r.event_timestamp)  # materialized in time order

    # an online store of its own, over the book's feature tables
    private = settings.model_copy(update={"data_dir": tmp_path / "data"})
    store = fs.feature_store(private)
    reader = fs.OnlineReader(store)
    served = {}
    for row in picked:
        fs.materialize(store, end=row.event_timestamp)
        history = reader(row.customer_id, as_of=row.application_date, at=row.event_timestamp)
        request = {c: row[c] for c in (*online.REQUIRED, "age")}
        served[row.application_id] = online.feature_row(request, history, on=row.application_date)
    model_features = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)
    for row in picked:
        got = {c: served[row.application_id][c] for c in model_features}
        assert got == {c: row[c] for c in model_features}, row.application_id
    assert {r.prior_max_dpd > 0 for r in picked} == {True, False}

    champion = tracking.load_champion(settings)
    ids = [r.application_id for r in picked]
    # the batch's scoring of these rows (it scores pending ones: the decided ones as if)
    batch = scoring.score_applications(
        feats.where(F.col("application_id").isin(ids)).withColumn("status", F.lit("pending")),
        champion,
        settings,
        scoring.active_policy(spark, settings),
    )
    batch_pd = {r.application_id: r.pd for r in batch.collect()}
    local = LocalScorer.from_champion(champion)
    assert {a: local.predict(served[a])[0] for a in ids} == batch_pd


# --- the decision service -------------------------------------------------------------


DESK_PASSWORD = "a long desk password"


def test_the_service_decides_journals_survives_kill_9_and_lands(spark, book, tmp_path, capsys):
    """`riskctl serve` on the book: it scores as `riskctl score-application` does, each
    answered decision is in the journal after a kill -9, and `riskctl decisions land`
    copies every one into gold.decision_log, with no identifier and no key in the table."""
    import signal

    import httpx

    from riskcontrol.core.catalog import GOLD_DECISION_LOG
    from riskcontrol.serve.journal import DecisionJournal
    from riskcontrol.serve.runtime import wait_ready

    settings, _ = book
    key_file = tmp_path / "channel.key"
    assert (
        main.main(
            ["keys", "add", "--name", "e2e", "--scope", "decide,read", "--out", str(key_file)]
        )
        == 0
    )
    token = key_file.read_text().strip()
    feats = _read(spark, GOLD_APPLICATION_FEATURES, settings)
    row = feats.where("status = 'pending'").orderBy("application_id").first().asDict()
    from riskcontrol.apply import online

    bare = {c: row[c] for c in online.REQUIRED if c != "application_id"}
    bare.update(
        term_months=int(row["term_months"]),
        age=int(row["age"]),
        application_date=row["application_date"].isoformat(),
    )
    path = tmp_path / "app.json"
    path.write_text(json.dumps({**bare, "application_id": "SVC-0"}))
    assert main.main(["score-application", "--json", str(path)]) == 0
    cli = _json_output(capsys.readouterr().out)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    from riskcontrol.workbench.store import WorkbenchStore
    from riskcontrol.workbench.store import default_path as workbench_path

    WorkbenchStore(workbench_path(settings.home)).add_user("desk", "viewer", DESK_PASSWORD, "e2e")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "riskcontrol.cli.main", "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(url, proc)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            first = c.post("/v1/decisions", json={**bare, "application_id": "SVC-0"}).json()
            ids = [first["decision_id"]]
            for i in range(1, 25):
                r = c.post("/v1/decisions", json={**bare, "application_id": f"SVC-{i}"})
                assert r.status_code == 200, r.text
                ids.append(r.json()["decision_id"])
            stored = c.get("/v1/decisions/SVC-0").json()
            # the workbench is served beside the API, under /ui, over the same journal
            page = c.get("/ui/login")
            assert page.status_code == 200 and 'action="/ui/login"' in page.text
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
            login = c.post(
                "/ui/login",
                data={"username": "desk", "password": DESK_PASSWORD, "csrf": csrf},
                cookies={"rk_login": page.cookies["rk_login"]},
            )
            assert (login.status_code, login.headers["location"]) == (303, "/ui/")
            board = c.get("/ui/", cookies={"rk_session": login.cookies["rk_session"]})
            assert board.status_code == 200
            today = re.search(r'id="kpi-today".*?class="volume">(\d+)<', board.text, re.S)
            assert today.group(1) == "25"
        os.kill(proc.pid, signal.SIGKILL)  # right after the last answer
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the service's direct online-store reader gives what Feast's lookup gives
    from riskcontrol.analyze import feature_store as fs

    store = fs.feature_store(settings)
    reader = fs.OnlineReader(store)
    customers = [r.customer_id for r in feats.select("customer_id").distinct().limit(30).collect()]
    on = dt.date(2026, 1, 15)
    for customer in [*customers, "NO-SUCH-CUSTOMER"]:
        assert reader(customer, as_of=on) == fs.online_features(store, customer, as_of=on)
    # the same champion, policy and online features as the CLI's single-application path
    champion = stored["champion"]
    assert (champion["pd"], champion["score"], champion["risk_band"], champion["quadrant"]) == (
        cli["pd"],
        cli["score"],
        cli["risk_band"],
        cli["quadrant"],
    )
    assert champion["decision"] == cli["decision"]
    assert first["versions"]["model"] == f"{cli['model_name']}/{cli['model_version']}"
    assert first["versions"]["policy"] == cli["policy_version"] == "1"
    assert first["decision"] in ("approve", "review", "reject")
    assert stored["caller"] and stored["latency_ms"] > 0

    journal = DecisionJournal(settings.home / "service" / "decisions.db")
    assert sorted(e.seq for e in journal.since(0)) == sorted(ids)

    assert main.main(["decisions", "land"]) == 0
    assert main.main(["decisions", "land"]) == 0  # nothing new: nothing twice
    log_df = _read(spark, GOLD_DECISION_LOG, settings)
    assert sorted(r.decision_seq for r in log_df.select("decision_seq").collect()) == sorted(ids)
    landed = log_df.where(F.col("decision_seq") == first["decision_id"]).first()
    assert (landed.decision, landed.pd, landed.policy_version) == (
        first["decision"],
        first["pd"],
        "1",
    )
    assert landed.champion_model == first["versions"]["model"]
    assert json.loads(landed.features_json)["requested_amount"] == bare["requested_amount"]
    assert landed.rules_version == first["versions"]["rules"]
    assert (
        landed.application_key
        == hmac.new(TEST_PII_KEY.encode(), b"SVC-0", hashlib.sha256).hexdigest()
    )
    # no clear id, customer id or API key in the table's files or log
    table_dir = Path(GOLD_DECISION_LOG.path(settings))
    data = b"".join(p.read_bytes() for p in table_dir.rglob("*") if p.is_file())
    for clear in (b"SVC-0", bare["customer_id"].encode(), token.encode(), token[:20].encode()):
        assert clear not in data, clear
    served = log_path.read_text(encoding="utf-8", errors="replace")
    assert token not in served and bare["customer_id"] not in served
    # the report reads the landed log: every decision, and the rules that fired
    assert main.main(["report"]) == 0
    (page,) = settings.reports_dir.glob("risk_report_*.html")
    section = page.read_text(encoding="utf-8").split('<section id="realtime">')[1]
    assert f"<td>Decisions</td><td>{len(ids)}</td>" in section.split("</section>")[0]


# --- Airflow -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """An Airflow home with a migrated SQLite metadata DB (env set before airflow loads)."""
    home = tmp_path_factory.mktemp("airflow")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    if "airflow" in sys.modules:
        pytest.fail("airflow was imported before its test environment was set")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
            check=True,
            capture_output=True,
            env={**os.environ, **env},
        )
        yield home


@pytest.fixture(scope="module")
def dagbag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(PROJECT_ROOT / "dags"))


def test_dagbag_imports_three_linked_dags(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == set(DAG_IDS)
    for dag in dagbag.dags.values():
        assert "riskcontrol" in dag.tags
        assert all(t.retries >= 1 for t in dag.tasks), dag.dag_id
    produced = {o.uri for t in dagbag.dags["risk_collect"].tasks for o in t.outlets}
    assert produced == {"riskcontrol://lakehouse/bronze"}
    analyze_outlets = {o.uri for t in dagbag.dags["risk_analyze"].tasks for o in t.outlets}
    assert "riskcontrol://lakehouse/gold/application_features" in analyze_outlets
    analyze = [t.task_id for t in dagbag.dags["risk_analyze"].topological_sort()]
    # gold reads the customer's history from the feature store
    assert analyze.index("build_feature_store") < analyze.index("build_gold")
    apply_dag = dagbag.dags["risk_apply"]
    order = [t.task_id for t in apply_dag.topological_sort()]
    assert order == [
        "choose_cutoff",
        "score_applications",
        "loan_book_risk",
        "early_warning",
        "risk_report",
    ]


def test_the_apply_dag_runs_and_changes_nothing_on_a_rerun(spark, book, dagbag):
    """Airflow runs the apply DAG's five tasks over the book `riskctl run` built: the policy
    is unchanged (no new version), scoring and the loan book replace, no alert repeats."""
    from airflow.utils.state import DagRunState

    settings, generation = book
    book_before = _read(spark, GOLD_LOAN_BOOK_RISK, settings).count()
    alerts_before = sorted(r.alert_id for r in _read(spark, GOLD_ALERTS, settings).collect())
    assert dagbag.dags["risk_apply"].test().state == DagRunState.SUCCESS
    versions = {
        r[0] for r in _read(spark, GOLD_CUTOFF_POLICY, settings).select("policy_version").collect()
    }
    assert versions == {1}
    scored = _read(spark, GOLD_SCORED_APPLICATIONS, settings)
    assert scored.count() == generation["applications_by_status"]["pending"]
    assert _read(spark, GOLD_LOAN_BOOK_RISK, settings).count() == book_before
    assert sorted(r.alert_id for r in _read(spark, GOLD_ALERTS, settings).collect()) == (
        alerts_before
    )
    runs = (
        _read(spark, OPS_MANIFEST, settings)
        .where(F.col("run_id").startswith("airflow-apply-"))
        .select("target")
        .collect()
    )
    assert sorted(r.target for r in runs) == [
        "gold.loan_book_risk",
        "gold.scored_applications",
        "gold.warning_indicators",
    ]


def test_the_collect_dag_runs_as_of_its_day_and_dates_its_bronze_event(spark, book, dagbag):
    """A risk_collect run for a date (as the scheduler or a backfill makes them: the
    test of the scheduler runs one) extracts the lending database up to that midnight,
    and its bronze asset event carries the day, which the analyze and apply runs it
    triggers run as of. Run as of the book's end, it finds nothing new."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    from riskcontrol.orchestration import ASSET_URIS, run_as_of

    settings, generation = book
    as_of = generation["as_of"]
    day = dt.datetime.fromisoformat(as_of).replace(tzinfo=dt.UTC)
    run = dagbag.dags["risk_collect"].test(
        logical_date=day, mark_success_pattern="collect_(file_drops|public_web)"
    )
    assert run.state == DagRunState.SUCCESS
    steps = (
        _read(spark, OPS_MANIFEST, settings)
        .where(F.col("run_id") == f"airflow-collect-{run.run_id}")
        .select("target", "window_end", "rows_in", "rows_out")
        .collect()
    )
    assert sorted(steps) == [
        (f"bronze.{t}", as_of, 0, 0) for t in ("applications", "customers", "loans", "repayments")
    ]
    with create_session() as session:
        event = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == ASSET_URIS["bronze"])
            .order_by(AssetEvent.id.desc())
            .first()
        )
        assert event.extra == {"as_of": as_of}
        assert run_as_of("analyze", {"triggering_asset_events": {"bronze": [event]}}) == as_of
    # A run without a logical date (the UI's plain trigger) runs on the data's own date.
    assert run_as_of("collect", {"logical_date": None, "data_interval_end": day}) is None


# --- the data scientists' notebooks, on this book -------------------------------------
def test_every_notebook_runs_top_to_bottom_on_the_book_and_shows_no_identifier(book, tmp_path):
    """Each notebook in a fresh kernel of this environment, reading the book through the
    environment (RISK_HOME) as `make notebook` does. Nothing a cell printed, displayed or
    raised may hold a clear ID, phone or name of the book."""
    from notebookkit import EXPECTED, NOTEBOOKS, execute, shown

    from riskcontrol.modeling import tracking
    from riskcontrol.synthetic.generate import loanfile

    settings, _ = book
    needles = _identifiers(settings)
    versions_before = {v["version"] for v in tracking.list_versions(settings)}
    loans = tmp_path / "loans.csv"
    truth = loanfile.write_loan_file(loans, rows=1500, seed=4)
    parameters = {
        "04_evaluate_your_loan_file.ipynb": {
            "LOAN_FILE": str(loans),
            "TARGET": truth["target"],
            "BAD_VALUES": list(truth["bad_values"]),
            "TIME_COL": truth["time_col"],
            "DROP": ["member_id"],
            "KINDS": "logistic,decision_tree",  # the fast kinds: test_evaluate fits the rest
        }
    }
    seconds = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RISK_CV_FOLDS", "3")  # the kernels inherit the environment
        # their Spark drivers compile as the tests' do (C1 only): less CPU on 2 cores
        mp.setenv("RISK_SPARK_CONF", BOOK_SPARK_CONF)
        mp.setenv("RISK_CV_REPEATS", "1")
        executed = {
            name: execute(NOTEBOOKS / name, parameters=parameters.get(name)) for name in EXPECTED
        }
    # What each notebook must have found on this book (it ran, and said something true).
    says = {
        "01_explore_the_lakehouse.ipynb": [" steps, 0 that do not reconcile", " not passed"],
        "02_train_a_challenger.ipynb": [
            "champion rule: out-of-time AUC",
            "riskctl promote --version",
        ],
        "03_investigate_an_alert.ipynb": ["Playbook, quadrant", "riskctl alerts advance"],
        "04_evaluate_your_loan_file.ipynb": [
            f"{truth['rows']:,} read = {truth['usable']:,} used + {truth['quarantined']:,} "
            "quarantined; reconciles: True",
            "best by cross-validation: ",
        ],
    }
    for name, (nb, seconds[name]) in executed.items():
        text = shown(nb)
        missing = [phrase for phrase in says[name] if phrase not in text]
        assert missing == [], (name, missing, text[-3000:])
        leaked = sorted(n for n in needles if n in text)
        assert leaked == [], (name, leaked[:5])
    print("notebook seconds:", {k: round(v) for k, v in seconds.items()})
    # The challenger notebook registered a version under the challenger alias, and left
    # the champion where it was.
    after = tracking.list_versions(settings)
    new = [v for v in after if v["version"] not in versions_before]
    assert len(new) == 1 and "challenger" in new[0]["aliases"], new
    assert not any("champion" in v["aliases"] for v in new)


# --- privacy: nothing in clear, and erasure (last: it changes the lakehouse) ----------
def _identifiers(settings) -> set[str]:
    """Every clear identifier of the run: customers' IDs, phones, names; court subjects'."""
    with sqlite3.connect(settings.data_dir / "lending.db") as db:
        rows = db.execute("SELECT national_id, mobile, name FROM customers").fetchall()
    needles = {v for row in rows for v in row if v and len(v) >= 2}
    for r in _site_truth(settings):
        if r["kind"] == "court" and r["subject_type"] == "person":
            needles |= {r["subject_name"], r["id_number"]}
    return needles


def test_scanner_finds_planted_identifiers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from lakescan import scan

    pq.write_table(pa.table({"n": ["x张三丰y"]}), tmp_path / "part-0.snappy.parquet")
    (tmp_path / "_delta_log").mkdir()
    stats = json.dumps({"minValues": {"id": "11010519491231002X"}})
    (tmp_path / "_delta_log" / "0.json").write_text(
        json.dumps({"add": {"stats": stats, "name": "\u674e\u56db"}}) + "\n"
    )
    found = scan(tmp_path, {"张三丰", "11010519491231002X", "李四", "王五"})
    assert found == {
        "张三丰": ["part-0.snappy.parquet"],
        "11010519491231002X": ["_delta_log/0.json"],
        "李四": ["_delta_log/0.json"],
    }


def test_no_clear_identifier_survives_anywhere_under_the_lakehouse(book):
    from lakescan import files_scanned, scan

    settings, _ = book
    needles = _identifiers(settings)
    assert len(needles) > 2.5 * CUSTOMERS  # IDs, phones and names (some names are shared)
    root = Path(settings.lakehouse_root)
    assert files_scanned(root) > 500
    assert scan(root, needles) == {}


def test_privacy_scan_finds_nothing_anywhere_after_a_full_run(book, capsys):
    """The attacker's view of the whole home (lakehouse, MLflow, online store, crawl
    files and cache, reports, Airflow): no key, no known person's ID, phone or name."""
    assert main.main(["privacy-scan"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert out.rstrip().endswith("0 finding(s)")
    scanned = int(out.rsplit("privacy-scan: ", 1)[1].split(" file(s)")[0].replace(",", ""))
    assert scanned > 1000


def test_erase_removes_a_customer_everywhere_history_included(spark, book):
    """Runs last in this module: it changes the lakehouse the other tests read."""

    from riskcontrol.core.catalog import (
        BRONZE_REPAYMENTS,
        OPS_ERASURES,
        SILVER_ENTITY_LINKS,
        SILVER_REPAYMENTS,
    )

    settings, _ = book
    linked = (
        _read(spark, SILVER_ENTITY_LINKS, settings)
        .where("entity_type = 'customer'")
        .select("customer_id")
        .distinct()
        .orderBy("customer_id")
        .first()
    )
    assert linked is not None, "the generated site names customers: ER must link some"
    cid = linked.customer_id
    # The decision service decided for this customer too: its journal and its landed log
    # name the customer by the pseudonym of the id, not silver's.
    from riskcontrol.core.catalog import GOLD_DECISION_LOG
    from riskcontrol.serve.journal import DecisionJournal, default_path

    journal = DecisionJournal(default_path(settings.home))
    ref = hmac.new(TEST_PII_KEY.encode(), cid.encode(), "sha256").hexdigest()
    marker = "fe" * 32  # a value only these decisions hold
    template = next(iter(journal.since(0, limit=1)), None)
    record = {**(template.record if template else {}), "customer_key": ref}
    for i in range(2):
        app_key = hashlib.sha256(f"erase-{i}".encode()).hexdigest()
        journal.record(app_key, {**record, "request_fingerprint": marker})
    others = journal.count() - 2
    assert main.main(["decisions", "land"]) == 0
    with sqlite3.connect(settings.data_dir / "lending.db") as db:
        n_apps, n_loans, n_lines = db.execute(
            "SELECT (SELECT count(*) FROM applications WHERE customer_id = ?),"
            " (SELECT count(*) FROM loans WHERE customer_id = ?),"
            " (SELECT count(*) FROM repayments r JOIN loans l USING (loan_id)"
            "  WHERE l.customer_id = ?)",
            (cid, cid, cid),
        ).fetchone()
    assert main.main(["erase", "--customer", cid, "--requested-by", "dpo", "--reason", "t"]) == 0
    (audit,) = _read(spark, OPS_ERASURES, settings).collect()
    deleted = json.loads(audit.tables)
    assert deleted["bronze.customers"] == 1 and deleted["silver.customers"] == 1
    assert deleted["bronze.applications"] == n_apps and deleted["bronze.loans"] == n_loans
    assert deleted[BRONZE_REPAYMENTS.full_name] == n_lines
    assert deleted[SILVER_REPAYMENTS.full_name] == n_lines
    assert deleted["silver.entity_links"] >= 1
    assert deleted["service.decision_journal"] == deleted["gold.decision_log"] == 2
    assert journal.count() == others and not journal.holds(ref) and journal.erased(ref)
    log = _read(spark, GOLD_DECISION_LOG, settings)
    assert log.where(F.col("request_fingerprint") == marker).count() == 0
    assert main.main(["decisions", "land"]) == 0  # nothing of them comes back
    assert _read(spark, GOLD_DECISION_LOG, settings).count() == log.count()
    service = default_path(settings.home).parent
    kept = [p.name for p in service.iterdir() if p.is_file() and marker.encode() in p.read_bytes()]
    assert kept == []
    assert audit.rows_deleted == sum(deleted.values())
    assert audit.subject_ref == hmac.new(TEST_PII_KEY.encode(), cid.encode(), "sha256").hexdigest()
    assert cid not in (audit.tables + audit.reason + audit.requested_by)
    # Nothing left in any data file of any table, old versions included (vacuumed), nor in
    # any Delta log entry (predicates, column statistics) or checkpoint.
    from lakescan import file_text

    root = Path(settings.lakehouse_root)
    holding = [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and (cid in (text := file_text(p)) or marker in text)
    ]
    assert holding == []
    with pytest.raises(
        Exception, match="(?i)not found|does not exist|FileNotFound|vacuum|time travel"
    ):
        # (collect, not count: Delta answers a count from the log without reading files)
        spark.read.format("delta").option("versionAsOf", 0).load(
            BRONZE_CUSTOMERS.path(settings)
        ).select("customer_id").collect()
    assert main.main(["erase", "--customer", cid]) == 2  # gone: a clear error, no second audit
    assert main.main(["privacy-scan"]) == 0  # and still nothing anywhere after the erasure
