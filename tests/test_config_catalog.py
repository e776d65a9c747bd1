"""Settings defaults and validation, local secrets, and table contracts."""

from __future__ import annotations

import os

import pytest

from riskcontrol.core.catalog import SILVER_LOANS, TABLES, SchemaError, table, validate
from riskcontrol.core.config import Settings, SettingsError, ensure_local_secrets, load_settings


def test_defaults_keep_everything_under_home(tmp_path):
    s = Settings(home=tmp_path, pii_key="k")
    assert s.lakehouse_root == str(tmp_path / "lakehouse")
    assert s.lending_jdbc_url == f"jdbc:sqlite:{tmp_path / 'data' / 'lending.db'}"
    assert s.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert s.airflow_home == tmp_path / ".airflow"
    assert SILVER_LOANS.path(s) == f"{tmp_path}/lakehouse/silver/loans"


def test_environment_variables_override_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("RISK_LAKEHOUSE_ROOT", "s3a://bucket/lake")
    monkeypatch.setenv("RISK_SPARK_CONF", '{"spark.executor.memory": "8g"}')
    s = Settings(home=tmp_path)
    assert SILVER_LOANS.path(s) == "s3a://bucket/lake/silver/loans"
    assert s.spark_conf == {"spark.executor.memory": "8g"}


def test_inconsistent_cutoffs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="RISK_APPROVE_BELOW_PD"):
        Settings(home=tmp_path, approve_below_pd=0.3, reject_from_pd=0.2)


def test_a_bad_setting_is_named_without_echoing_any_other_value(tmp_path, monkeypatch):
    """pydantic's message quotes the whole input, keys included; ours names the setting."""
    key = "c0ffee" * 8
    monkeypatch.setenv("RISK_PII_KEY", key)
    monkeypatch.setenv("RISK_TUNE_SAMPLER", "bogus")
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message == (
        "invalid settings:\n  settings: Value error, RISK_TUNE_SAMPLER='bogus': "
        "use one of tpe, nsga2, random"
    )
    assert "c0ffee" not in message and caught.value.__cause__ is None
    # flags are passed as values and validated the same way, never put in the environment
    assert load_settings(tune_sampler="random", tune_trials=3).tune_trials == 3
    with pytest.raises(SettingsError, match="tune_trials: Input should be a valid integer"):
        load_settings(tune_sampler="random", tune_trials="many")
    assert os.environ["RISK_TUNE_SAMPLER"] == "bogus"


def test_a_score_scale_that_cannot_score_is_refused_on_load(tmp_path):
    with pytest.raises(SettingsError, match=r"RISK_SCORE_MIN \(900\) must be below"):
        load_settings(home=tmp_path, score_min=900, score_max=300)
    with pytest.raises(SettingsError, match=r"RISK_SCORE_PDO \(0.0\) must be > 0"):
        load_settings(home=tmp_path, score_pdo=0)


def test_missing_key_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("RISK_PII_KEY", raising=False)
    s = Settings(home=tmp_path, _env_file=None)
    with pytest.raises(RuntimeError, match="riskctl init"):
        s.pii_secret()


def test_missing_or_short_bronze_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("RISK_BRONZE_KEY", raising=False)
    with pytest.raises(RuntimeError, match="64 hex characters"):
        Settings(home=tmp_path, _env_file=None).bronze_secret()
    with pytest.raises(RuntimeError, match="64 hex characters"):
        Settings(home=tmp_path, _env_file=None, bronze_key="ab" * 16).bronze_secret()
    assert Settings(home=tmp_path, bronze_key="ab" * 32).bronze_secret() == b"\xab" * 32


def test_local_secret_is_written_once_and_never_in_cluster_env(tmp_path, monkeypatch):
    monkeypatch.delenv("RISK_PII_KEY", raising=False)
    monkeypatch.delenv("RISK_BRONZE_KEY", raising=False)
    monkeypatch.delenv("RISK_ENV", raising=False)
    env_file = tmp_path / ".env"
    assert ensure_local_secrets(env_file) is True
    first = env_file.read_text()
    keys = dict(line.split("=", 1) for line in first.splitlines() if "=" in line)
    assert sorted(keys) == ["RISK_BRONZE_KEY", "RISK_PII_KEY"]
    assert len(bytes.fromhex(keys["RISK_BRONZE_KEY"])) == 32
    assert ensure_local_secrets(env_file) is False
    assert env_file.read_text() == first
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("RISK_ENV", "cluster")
    assert ensure_local_secrets(tmp_path / "other.env") is False
    assert not (tmp_path / "other.env").exists()


def test_validate_names_every_contract_breach(spark):
    df = spark.createDataFrame([("L1", "x")], "loan_id string, principal string")
    with pytest.raises(SchemaError) as err:
        validate(df, SILVER_LOANS)
    msg = str(err.value)
    assert msg.startswith("silver.loans: missing columns ['application_id'")
    assert "principal: string (want double)" in msg


def test_table_lookup_lists_known_names():
    assert table("gold.scored_applications") is TABLES["gold.scored_applications"]
    with pytest.raises(KeyError, match="known: bronze.customers"):
        table("gold.nope")


def test_features_excluded_as_reasons_or_altogether_shape_the_application_spec(tmp_path):
    from riskcontrol.core.catalog import CATEGORICAL_FEATURES, NUMERIC_FEATURES
    from riskcontrol.modeling.models import APPLICATION_SPEC, application_spec

    spec = application_spec(Settings(home=tmp_path))
    assert spec.columns == APPLICATION_SPEC.columns
    assert spec.not_reasons == ("age", "province", "channel")
    assert "age" not in spec.reason_features and len(spec.reason_features) == 23
    # age is no feature at all: not read, not logged, not a reason; province stays a
    # feature but never a reason; a repeated or blank name counts once
    settings = Settings(
        home=tmp_path, feature_excluded="age, ,age", reason_excluded="province,province"
    )
    spec = application_spec(settings)
    assert "age" not in spec.columns and len(spec.columns) == 25
    assert spec.not_reasons == ("province",) and spec.log == APPLICATION_SPEC.log
    assert "province" in spec.categorical
    assert application_spec(Settings(home=tmp_path, reason_excluded="")).not_reasons == ()
    with pytest.raises(ValueError, match=r"RISK_REASON_EXCLUDED names agee, not an"):
        application_spec(Settings(home=tmp_path, reason_excluded="agee"))
    everything = ",".join((*NUMERIC_FEATURES, *CATEGORICAL_FEATURES))
    with pytest.raises(ValueError, match="RISK_FEATURE_EXCLUDED leaves no feature"):
        application_spec(Settings(home=tmp_path, feature_excluded=everything))


def test_every_feature_that_may_be_a_reason_reads_in_english_and_chinese():
    from riskcontrol.core.catalog import CATEGORICAL_FEATURES, NUMERIC_FEATURES
    from riskcontrol.core.reasons import GENERIC_REASON, REASON_TEXTS, reason_texts

    assert set(REASON_TEXTS) == {*NUMERIC_FEATURES, *CATEGORICAL_FEATURES}
    for code, (en, zh) in REASON_TEXTS.items():
        assert en.endswith(".") and zh.endswith("。"), code
        assert "_" not in en  # plain words, never a column name
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), code
    assert reason_texts("inquiries_6m") == (
        "Many recent credit inquiries.",
        "近期征信查询次数较多。",
    )
    assert reason_texts("a_users_own_column") == GENERIC_REASON


def test_charge_off_comes_after_default(tmp_path):
    from conftest import make_settings

    with pytest.raises(ValueError, match=r"RISK_CHARGE_OFF_DPD \(60\) is below RISK_BAD_DPD"):
        make_settings(tmp_path, charge_off_dpd=60)
    assert make_settings(tmp_path).charge_off_dpd == 180
