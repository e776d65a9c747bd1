"""Erasure on a small lakehouse: exact rows, nothing left in any file or log, re-runnable."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from lakescan import file_text
from pyspark.sql import functions as F

from riskcontrol.collect import extracts
from riskcontrol.core import lakehouse, landing
from riskcontrol.core.catalog import (
    BRONZE_APPLICATIONS,
    BRONZE_CUSTOMERS,
    BRONZE_LOANS,
    OPS_QUARANTINE,
    SILVER_CUSTOMERS,
    SUBJECT_PROPERTY,
)
from riskcontrol.core.landing import Rule
from riskcontrol.core.runs import Run
from riskcontrol.privacy import erase

GONE = "CUST-ERASE-0001"  # ids no base64 ciphertext can contain by chance
KEPT = "CUST-KEEP-0002"
GONE_ID = "11010519491231002X"


def _land_raw(run, df, table, rules, keys) -> None:
    """Land ``df`` in the raw ``table`` as the collect step does (provenance, encryption)."""
    source = F.lit(f"mem://{table.name}")
    extracts.land(
        run, landing.with_provenance(df, run.run_id, "test", source), table, "test", rules, keys
    )


def _land(spark, settings, run_id: str) -> None:
    run = Run(spark, settings, run_id)
    customers = spark.createDataFrame(
        [
            (GONE, GONE_ID, "张三", "13812345678", "2024-01-01 00:00:00"),
            (KEPT, "110105194912310021", "李四", "13912345678", "2024-01-01 00:00:00"),
        ],
        "customer_id string, national_id string, name string, mobile string, updated_at string",
    )
    _land_raw(run, customers, BRONZE_CUSTOMERS, [], ("customer_id",))
    apps = spark.createDataFrame(
        [
            ("APP-GONE-1", GONE, "5000", "2024-01-02 00:00:00"),
            ("APP-GONE-2", GONE, "-1", "2024-01-03 00:00:00"),  # quarantined
            ("APP-KEEP-1", KEPT, "7000", "2024-01-02 00:00:00"),
            ("APP-KEEP-2", KEPT, "-2", "2024-01-03 00:00:00"),  # quarantined
        ],
        "application_id string, customer_id string, requested_amount string, updated_at string",
    )
    positive = Rule("invalid_amount", F.col("requested_amount").cast("double") > 0, "amount <= 0")
    _land_raw(run, apps, BRONZE_APPLICATIONS, [positive], ("application_id",))
    loans = spark.createDataFrame(
        [("LOAN-GONE-1", "APP-GONE-1", GONE, "2024-01-05 00:00:00")],
        "loan_id string, application_id string, customer_id string, updated_at string",
    )
    # bronze.loans keeps customer_id encrypted: the subject is found after decryption
    _land_raw(run, loans, BRONZE_LOANS, [], ("loan_id",))
    silver = spark.createDataFrame(
        [(GONE, "k-gone", "**************002X"), (KEPT, "k-keep", "**************0021")],
        "customer_id string, customer_key string, national_id_masked string",
    )
    for f in SILVER_CUSTOMERS.schema.fields:
        if f.name not in silver.columns:
            silver = silver.withColumn(f.name, F.lit(None).cast(f.dataType))
    lakehouse.merge(silver.select(*SILVER_CUSTOMERS.columns), SILVER_CUSTOMERS, settings)


def _ids(spark, settings, table, col):
    return sorted(r[0] for r in lakehouse.read_clear(spark, table, settings).select(col).collect())


def _files_naming(root: Path, needles: tuple[str, ...]) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and any(n in file_text(p) for n in needles)
    )


def test_erase_deletes_exactly_the_subject_and_leaves_no_trace_in_data_or_log(spark, settings):
    _land(spark, settings, "r1")
    root = Path(settings.lakehouse_root)
    assert _files_naming(root, (GONE,))  # before: the id is in data files and log stats

    result = erase.erase_customer(spark, settings, GONE, "dpo", "test")

    assert result.rows_deleted == {
        "bronze.applications": 1,
        "bronze.customers": 1,
        "bronze.loans": 1,
        "ops.quarantine": 1,
        "silver.customers": 1,
    }
    assert lakehouse.read(spark, BRONZE_LOANS, settings).count() == 0
    assert _ids(spark, settings, BRONZE_CUSTOMERS, "customer_id") == [KEPT]
    assert _ids(spark, settings, BRONZE_APPLICATIONS, "application_id") == ["APP-KEEP-1"]
    assert _ids(spark, settings, SILVER_CUSTOMERS, "customer_id") == [KEPT]
    (q,) = lakehouse.read_clear(spark, OPS_QUARANTINE, settings).collect()
    assert "APP-KEEP-2" in q.record and q.reason == "amount <= 0"
    # No data file, no log entry, no checkpoint names the subject any more; the MERGE
    # that deleted the rows logged column names only, and history before it is gone.
    assert (
        _files_naming(root, (GONE, "APP-GONE-1", "APP-GONE-2", "LOAN-GONE-1", GONE_ID, "张三"))
        == []
    )
    with pytest.raises(Exception, match="(?i)not found|does not exist|FileNotFound|vacuum|version"):
        spark.read.format("delta").option("versionAsOf", 0).load(
            BRONZE_CUSTOMERS.path(settings)
        ).select("customer_id").collect()
    # The kept customer's table still reads, history from the checkpoint on.
    assert lakehouse.read(spark, BRONZE_CUSTOMERS, settings).count() == 1
    with pytest.raises(LookupError, match="no customer"):
        erase.erase_customer(spark, settings, GONE, "dpo", "again")


def test_tables_landed_with_a_subject_column_are_erased_too(spark, settings):
    """A user's file landed with --subject-column: bronze holds the id encrypted, silver
    its pseudonym; both tables carry the column's name as a Delta property."""
    from riskcontrol.core import pii

    root = Path(settings.lakehouse_root)
    rows = spark.createDataFrame(
        [(GONE, 1.0), (GONE, 2.0), (KEPT, 3.0)], "member string, amount double"
    )
    bronze = pii.encrypt_columns(rows, ["member"], "bronze.dataset_t", settings)
    silver = rows.withColumn("member", pii.pseudonym("member", settings))
    for layer, df in (("bronze", bronze), ("silver", silver)):
        path = str(root / layer / "dataset_t")
        df.write.format("delta").save(path)
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('{SUBJECT_PROPERTY}' = 'member')")
    assert [t.full_name for t in erase.user_tables(spark, settings)] == [
        "bronze.dataset_t",
        "silver.dataset_t",
    ]

    result = erase.erase_customer(spark, settings, GONE, "dpo", "byo")

    assert result.rows_deleted == {"bronze.dataset_t": 2, "silver.dataset_t": 2}
    for layer in ("bronze", "silver"):
        left = spark.read.format("delta").load(str(root / layer / "dataset_t"))
        assert [r.amount for r in left.collect()] == [3.0]
    assert _files_naming(root, (GONE,)) == []


def test_an_erasure_cut_short_is_finished_by_running_it_again(spark, settings, monkeypatch):
    from riskcontrol.core.catalog import OPS_ERASURES

    _land(spark, settings, "r1")
    real_delete = erase.delete_rows

    def dies_on_applications(spark_, settings_, table, rows):
        if table.full_name == "bronze.applications":
            raise RuntimeError("killed")  # as if the process died here
        return real_delete(spark_, settings_, table, rows)

    monkeypatch.setattr(erase, "delete_rows", dies_on_applications)
    with pytest.raises(RuntimeError, match="killed"):
        erase.erase_customer(spark, settings, GONE, "dpo", "first try")
    (pending,) = lakehouse.read(spark, OPS_ERASURES, settings).collect()
    assert pending.status == "pending"
    assert json.loads(pending.tables) == {"bronze.customers": 1, "ops.quarantine": 1}
    assert erase.find_subject(spark, settings, GONE).loan_ids == ["LOAN-GONE-1"]
    # The tables naming the subject's ids were left for last: the ids are still found.
    assert erase.find_subject(spark, settings, GONE).application_ids == ["APP-GONE-1"]

    monkeypatch.setattr(erase, "delete_rows", real_delete)
    result = erase.erase_customer(spark, settings, GONE, "dpo", "resume")

    assert result.erasure_id == pending.erasure_id
    assert result.rows_deleted == {
        "bronze.applications": 1,
        "bronze.customers": 1,
        "bronze.loans": 1,
        "ops.quarantine": 1,
        "silver.customers": 1,
    }
    (done,) = lakehouse.read(spark, OPS_ERASURES, settings).collect()
    assert (done.status, done.rows_deleted) == ("done", 5)
    assert _ids(spark, settings, BRONZE_APPLICATIONS, "application_id") == ["APP-KEEP-1"]
    assert _ids(spark, settings, BRONZE_CUSTOMERS, "customer_id") == [KEPT]


def test_pipeline_writes_wait_while_an_erasure_holds_the_lakehouse(spark, settings):
    """Another process holds the lock exclusively (as `riskctl erase` does): a write waits."""
    from riskcontrol.core import locks
    from riskcontrol.core.catalog import OPS_WATERMARKS

    path = locks.lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.readline()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    row = spark.createDataFrame(
        [("s", "c", "1", "r", None)],
        "source string, column string, high_water string, run_id string, updated_at timestamp",
    )
    writer = threading.Thread(target=lakehouse.merge, args=(row, OPS_WATERMARKS, settings))
    writer.start()
    writer.join(timeout=3)
    assert writer.is_alive()  # blocked on the lock, nothing written
    assert not lakehouse.exists(spark, OPS_WATERMARKS, settings)
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(timeout=10)
    writer.join(timeout=120)
    assert not writer.is_alive()
    assert lakehouse.read(spark, OPS_WATERMARKS, settings).count() == 1
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_customer_only_the_decision_service_knows_is_erased_from_its_journal_and_log(
    spark, settings, tmp_path
):
    """The service names a customer by the pseudonym of the id it was sent (not silver's
    customer_key): the erasure finds them by that, in the journal first, then the log."""
    from riskcontrol.core import pii
    from riskcontrol.core.catalog import GOLD_DECISION_LOG
    from riskcontrol.serve.journal import DecisionJournal

    walk_in, kept = "CUST-WALKIN-0003", KEPT

    def ref(customer_id: str) -> str:
        return pii.hmac_hex(customer_id.encode(), settings.pii_secret())

    journal = DecisionJournal(tmp_path / "service" / "decisions.db")
    owners = [walk_in, kept, walk_in]
    for seq, owner in enumerate(owners, start=1):
        journal.record(ref(f"APP-{seq}"), {"customer_key": ref(owner), "decision": "review"})
    rows = [(seq, ref(f"APP-{seq}"), ref(owner)) for seq, owner in enumerate(owners, start=1)]
    log = spark.createDataFrame(
        rows, "decision_seq long, application_key string, customer_key string"
    )
    for f in GOLD_DECISION_LOG.schema.fields:
        if f.name not in log.columns:
            log = log.withColumn(f.name, F.lit(None).cast(f.dataType))
    lakehouse.merge(log.select(*GOLD_DECISION_LOG.columns), GOLD_DECISION_LOG, settings)
    stores = {"service.decision_journal": journal}

    result = erase.erase_customer(spark, settings, walk_in, "dpo", "test", stores=stores)

    assert result.rows_deleted == {"gold.decision_log": 2, "service.decision_journal": 2}
    assert [e.seq for e in journal.since(0)] == [2]
    left = lakehouse.read(spark, GOLD_DECISION_LOG, settings).select("decision_seq").collect()
    assert [r.decision_seq for r in left] == [2]
    assert _files_naming(Path(settings.lakehouse_root), (ref("APP-1"), ref("APP-3"))) == []
    with pytest.raises(LookupError, match="no customer"):
        erase.erase_customer(spark, settings, walk_in, "dpo", "again", stores=stores)
