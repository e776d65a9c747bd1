"""Secrets stay out of printed lines, process arguments, written configuration and
world-readable files."""

from __future__ import annotations

import os
import stat

import yaml
from conftest import make_settings

from riskcontrol import cli, features
from riskcontrol.config import ensure_local_secrets
from riskcontrol.redact import redact


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


def test_redact_removes_credentials_from_uris_and_parameters():
    assert (
        redact("jdbc:postgresql://bob:s3cret@db:5432/lend") == "jdbc:postgresql://***@db:5432/lend"
    )
    assert redact("jdbc:postgresql://db/lend?user=bob&password=s3cret&ssl=true") == (
        "jdbc:postgresql://db/lend?user=***&password=***&ssl=true"
    )
    assert (
        redact("postgresql+psycopg2://u:p@h/mlflow --x") == "postgresql+psycopg2://***@h/mlflow --x"
    )
    assert redact("sqlite:////home/me/mlflow.db") == "sqlite:////home/me/mlflow.db"


def test_servers_get_secrets_through_the_environment_and_listen_on_loopback(tmp_path):
    uri = "postgresql://mlflow:pa55word@db.internal/mlflow"
    settings = make_settings(tmp_path, mlflow_tracking_uri=uri)
    argv, env = cli.mlflow_ui_command(settings, "127.0.0.1", 5000)
    assert not any("pa55word" in a for a in argv)
    assert argv[1:] == ["ui", "--host", "127.0.0.1", "--port", "5000"]
    assert env["MLFLOW_BACKEND_STORE_URI"] == uri
    parser = cli.build_parser()
    assert parser.parse_args(["mlflow-ui"]).host == "127.0.0.1"
    assert cli.airflow_env(settings)["AIRFLOW__API__HOST"] == "127.0.0.1"


def test_feature_store_yaml_holds_no_object_store_secret_and_is_private(tmp_path):
    settings = make_settings(
        tmp_path,
        spark_conf={
            "spark.hadoop.fs.s3a.access.key": "AKIAEXAMPLE",
            "spark.hadoop.fs.s3a.secret.key": "s3cr3t-key",
            "spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net": "azkey",
            "spark.executor.memory": "2g",
        },
    )
    conf = features.render_config(settings)["offline_store"]["spark_conf"]
    text = yaml.safe_dump(conf)
    assert "AKIAEXAMPLE" not in text and "s3cr3t-key" not in text and "azkey" not in text
    assert conf["spark.executor.memory"] == "2g"
    assert conf["spark.io.encryption.enabled"] == "true"  # spill files of decrypted rows


def test_riskctl_makes_what_it_writes_private(tmp_path, monkeypatch):
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    old = os.umask(0o022)
    try:
        assert cli.main(["privacy-scan"]) == 0
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(old)
        from riskcontrol.config import get_settings

        get_settings.cache_clear()
