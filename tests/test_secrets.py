"""Secrets stay out of printed lines, process arguments, written configuration and
world-readable files."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import yaml
from conftest import TEST_BRONZE_KEY, TEST_PII_KEY, make_settings

from riskcontrol.analyze import feature_store
from riskcontrol.cli import main
from riskcontrol.core.config import ensure_local_secrets
from riskcontrol.core.redact import has_password, redact
from riskcontrol.core.spark import private_data, set_secrets, split_secrets

RISKCTL = str(Path(sys.executable).with_name("riskctl"))


def test_env_file_is_created_private_and_atomically_keeping_what_was_there(tmp_path, monkeypatch):
    for name in ("RISK_PII_KEY", "RISK_BRONZE_KEY", "RISK_ENV"):
        monkeypatch.delenv(name, raising=False)
    env = tmp_path / ".env"
    env.write_text("RISK_SITE_PORT=9000", encoding="utf-8")
    env.chmod(0o644)  # as a user may have left it
    assert ensure_local_secrets(env) is True
    lines = env.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "RISK_SITE_PORT=9000"
    assert [ln.split("=")[0] for ln in lines[2:]] == ["RISK_PII_KEY", "RISK_BRONZE_KEY"]
    assert all(len(ln.split("=")[1]) == 64 for ln in lines[2:])
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]  # no temporary left
    assert ensure_local_secrets(env) is False  # keys there: untouched
    # A fresh one is never world-readable, whatever the umask.
    old = os.umask(0o000)
    try:
        fresh = tmp_path / "fresh" / ".env"
        fresh.parent.mkdir()
        ensure_local_secrets(fresh)
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    # A temporary left by a process that died does not block the next one.
    (fresh.parent / f".env.{os.getpid()}.tmp").write_text("partial", encoding="utf-8")
    fresh.unlink()
    assert ensure_local_secrets(fresh) is True


def test_processes_creating_env_at_once_agree_on_one_set_of_keys(tmp_path, monkeypatch):
    for name in ("RISK_PII_KEY", "RISK_BRONZE_KEY", "RISK_ENV"):
        monkeypatch.delenv(name, raising=False)
    env = tmp_path / ".env"
    start, wrote = threading.Barrier(8), []

    def create() -> None:
        start.wait()
        wrote.append(ensure_local_secrets(env))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wrote) == [False] * 7 + [True]  # one wrote, the others read its keys
    keys = [ln for ln in env.read_text(encoding="utf-8").splitlines() if "=" in ln]
    assert [k.split("=")[0] for k in keys] == ["RISK_PII_KEY", "RISK_BRONZE_KEY"]


def test_redact_removes_credentials_from_uris_and_parameters():
    assert (
        redact("jdbc:postgresql://bob:s3cret@db:5432/lend") == "jdbc:postgresql://***@db:5432/lend"
    )
    assert redact("jdbc:postgresql://db/lend?user=bob&password=s3cret&ssl=true") == (
        "jdbc:postgresql://db/lend?user=***&password=***&ssl=true"
    )
    assert redact("jdbc:sqlserver://h;user=bob;password=s3cret") == (
        "jdbc:sqlserver://h;user=***;password=***"
    )
    assert (
        redact("postgresql+psycopg2://u:p@h/mlflow --x") == "postgresql+psycopg2://***@h/mlflow --x"
    )
    assert redact("sqlite:////home/me/mlflow.db") == "sqlite:////home/me/mlflow.db"
    assert has_password("jdbc:postgresql://bob:s3cret@db/lend")
    assert has_password("jdbc:postgresql://db/lend?user=bob&password=s3cret")
    assert not has_password("jdbc:postgresql://bob@db/lend?user=bob&ssl=true")
    assert not has_password("jdbc:sqlite:/home/me/lending.db")


def test_redact_removes_every_encoding_of_the_keys_and_the_db_password(tmp_path):
    settings = make_settings(tmp_path, lending_jdbc_password="db-pa55word")
    key = bytes.fromhex(TEST_BRONZE_KEY)
    line = (
        f"bronze {TEST_BRONZE_KEY} upper {TEST_BRONZE_KEY.upper()} "
        f"b64 {base64.b64encode(key).decode()} pii {TEST_PII_KEY.encode().hex()} "
        "jdbc:postgresql://db/lend?password=db-pa55word and again db-pa55word."
    )
    assert redact(line, settings) == (
        "bronze *** upper *** b64 *** pii *** jdbc:postgresql://db/lend?password=*** and again ***."
    )
    assert redact(line) != redact(line, settings)  # without settings the keys stay
    # Settings without keys: only the URI rules apply, no error.
    bare = make_settings(tmp_path, pii_key=None, bronze_key=None)
    assert redact("x //u:p@h y", bare) == "x //***@h y"


def test_servers_get_secrets_through_the_environment_and_listen_on_loopback(tmp_path):
    uri = "postgresql://mlflow:pa55word@db.internal/mlflow"
    settings = make_settings(tmp_path, mlflow_tracking_uri=uri)
    argv, env = main.mlflow_ui_command(settings, "127.0.0.1", 5000)
    assert not any("pa55word" in a for a in argv)
    assert argv[1:] == ["ui", "--host", "127.0.0.1", "--port", "5000"]
    assert env["MLFLOW_BACKEND_STORE_URI"] == uri
    parser = main.build_parser()
    assert parser.parse_args(["mlflow-ui"]).host == "127.0.0.1"
    assert main.airflow_env(settings)["AIRFLOW__API__HOST"] == "127.0.0.1"
    argv, env = main.submit_command(settings, "collect", "r1", ("collect_public_web",))
    assert not any("pa55word" in a or TEST_BRONZE_KEY in a for a in argv)
    assert argv[-2:] == ["r1", "collect_public_web"]


def test_load_db_refuses_a_url_with_a_password_and_never_prints_it(capsys):
    url = "jdbc:postgresql://bob:pa55word@db/lend"
    assert main.main(["load-db", "--jdbc-url", url]) == 2
    err = capsys.readouterr().err
    assert "pa55word" not in err
    assert err.startswith(
        "riskctl load-db: error: --jdbc-url jdbc:postgresql://***@db/lend holds a password"
    )
    assert "RISK_LOAD_DB_PASSWORD=... riskctl load-db" in err


def test_spark_credentials_stay_off_the_jvm_command_line(spark):
    conf = {
        "spark.hadoop.fs.s3a.secret.key": "s3cr3t-key",
        "spark.hadoop.fs.s3a.endpoint": "http://minio:9000",
        "spark.sql.catalog.pg.password": "pg-pw",
        "spark.authenticate.secret": "core",
    }
    builder, late = split_secrets(conf)
    assert builder == {
        "spark.hadoop.fs.s3a.endpoint": "http://minio:9000",
        "spark.authenticate.secret": "core",  # a core setting: Spark needs it at launch
    }
    assert late == {
        "spark.hadoop.fs.s3a.secret.key": "s3cr3t-key",
        "spark.sql.catalog.pg.password": "pg-pw",
    }
    set_secrets(spark, {"spark.hadoop.fs.riskctl-test.secret.key": "s3cr3t-key"})
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    try:
        assert hadoop.get("fs.riskctl-test.secret.key") == "s3cr3t-key"
    finally:
        hadoop.unset("fs.riskctl-test.secret.key")
    # The local session encrypts its shuffle and spill files (decrypted rows).
    assert spark.sparkContext.getConf().get("spark.io.encryption.enabled") == "true"


def test_feature_store_yaml_names_env_vars_for_secrets_and_is_private(tmp_path):
    settings = make_settings(
        tmp_path,
        spark_conf={
            "spark.hadoop.fs.s3a.access.key": "AKIAEXAMPLE",
            "spark.hadoop.fs.s3a.secret.key": "s3cr3t-key",
            "spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net": "azkey",
            "spark.executor.memory": "2g",
        },
    )
    runtime = feature_store.runtime_dir(settings)
    runtime.mkdir(parents=True)
    (runtime / "feature_store.yaml").write_text("old", encoding="utf-8")
    (runtime / "feature_store.yaml").chmod(0o644)  # as an earlier version left it
    old = os.umask(0o000)
    try:
        path = feature_store.write_config(settings)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in runtime.iterdir()) == ["feature_store.yaml"]
    text = path.read_text(encoding="utf-8")
    assert not [s for s in ("AKIAEXAMPLE", "s3cr3t-key", "azkey") if s in text]
    conf = yaml.safe_load(text)["offline_store"]["spark_conf"]
    assert conf["spark.hadoop.fs.s3a.secret.key"] == "${RISK_SPARK_HADOOP_FS_S3A_SECRET_KEY}"
    assert conf["spark.hadoop.fs.s3a.access.key"] == "${RISK_SPARK_HADOOP_FS_S3A_ACCESS_KEY}"
    assert conf["spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net"] == (
        "${RISK_SPARK_HADOOP_FS_AZURE_ACCOUNT_KEY_ACCT_DFS_CORE_WINDOWS_NET}"
    )
    assert conf["spark.executor.memory"] == "2g"
    assert conf["spark.io.encryption.enabled"] == "true"  # spill files of decrypted rows


def test_riskctl_writes_files_0600_in_folders_0700_whatever_the_umask(tmp_path):
    home = tmp_path / "home"
    env = {
        **os.environ,
        "RISK_HOME": str(home),
        "RISK_PII_KEY": TEST_PII_KEY,
        "RISK_BRONZE_KEY": TEST_BRONZE_KEY,
    }
    cmd = f"umask 022; exec {RISKCTL} generate --customers 20 --months 2"
    proc = subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    made = list(home.rglob("*"))
    files = [p for p in made if p.is_file()]
    assert "lending.db" in {p.name for p in files} and len(files) >= 10
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {"0o600"}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in made if p.is_dir()} == {"0o700"}


def test_private_data_closes_what_an_earlier_version_left_open(tmp_path):
    settings = make_settings(tmp_path)
    data = Path(settings.data_dir)
    (data / "landing").mkdir(parents=True)
    lake = Path(settings.lakehouse_root)
    lake.mkdir()
    mlflow_db = tmp_path / "mlflow.db"
    mlflow_db.write_bytes(b"")
    for path, mode in ((data, 0o755), (data / "landing", 0o755), (lake, 0o755), (mlflow_db, 0o644)):
        path.chmod(mode)
    old = os.umask(0o022)
    try:
        private_data(settings)
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(old)
    modes = {
        p.name: oct(stat.S_IMODE(p.stat().st_mode))
        for p in (data, data / "landing", lake, mlflow_db)
    }
    # The top folders are closed (what is under them is out of reach); inside, untouched.
    assert modes == {
        "data": "0o700",
        "landing": "0o755",
        "lakehouse": "0o700",
        "mlflow.db": "0o600",
    }
