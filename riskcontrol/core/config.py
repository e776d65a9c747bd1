"""One settings object for the whole pipeline.

Every value comes from an environment variable with the ``RISK_`` prefix (or a
git-ignored ``.env`` file in the project folder), with embedded defaults that keep
everything inside the project folder: Spark in local mode, Delta tables under
``./lakehouse``, MLflow and Airflow on SQLite.

``RISK_ENV`` picks the environment (``local``, ``test``, ``cluster``); it only changes
defaults that differ between environments, never code paths.

Secrets (the pseudonymization key, database passwords) are only read from the
environment or ``.env``; in the ``local`` and ``test`` environments a random key is
generated into ``.env`` on first use so that ``make run`` works on a fresh machine.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "RISK_"


MODEL_KINDS = ("decision_tree", "gbt", "neural_network", "scorecard", "logistic")
TUNE_SAMPLERS = ("tpe", "nsga2", "random")


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names, blanks dropped, each once."""
    return tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))


class Settings(BaseSettings):
    """Pipeline configuration; see README "Configuration" for every variable."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=str(PROJECT_ROOT / ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    env: str = Field("local", description="local | test | cluster")
    home: Path = Field(PROJECT_ROOT, description="folder every default path lives under")

    # --- storage -----------------------------------------------------------------
    lakehouse_root: str | None = Field(
        None, description="Delta lakehouse root (path or URI, e.g. s3a://bucket/lake)"
    )
    data_dir: Path | None = Field(None, description="generated data and file drops")

    # --- Spark -------------------------------------------------------------------
    spark_master: str = "local[*]"
    spark_app_name: str = "riskcontrol"
    spark_shuffle_partitions: int = 4
    spark_driver_memory: str = "4g"
    jars_dir: Path | None = Field(None, description="Delta and JDBC jars fetched by Maven")
    spark_class_archive: bool = Field(
        True, description="start Spark's JVMs from jars/spark-classes.jsa when make setup wrote it"
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict, description='extra Spark conf as JSON, e.g. {"spark.x": "y"}'
    )

    # --- lending system database (read over JDBC) ----------------------------------
    lending_jdbc_url: str | None = Field(None, description="jdbc:sqlite:... or jdbc:postgresql:...")
    lending_jdbc_user: str | None = None
    lending_jdbc_password: SecretStr | None = None
    lending_jdbc_fetchsize: int = 10_000
    lending_watermark_lookback_minutes: int = Field(
        0,
        description="re-read this many minutes before the last watermark (late commits); "
        "rows already landed are recognised by their content hash",
    )

    # --- public web (crawlers) ---------------------------------------------------------
    site_host: str = Field("127.0.0.1", description="host the generated public-web site binds to")
    site_port: int = Field(8765, description="port of the generated public-web site")
    crawl_sources: Path | None = Field(
        None, description="YAML of crawl sources (start URLs, allowed domains, rate limits)"
    )
    crawl_state_dir: Path | None = Field(
        None, description="HTTP cache and seen-page hashes kept between crawls"
    )

    # --- MLflow ------------------------------------------------------------------
    mlflow_tracking_uri: str | None = None
    mlflow_artifact_root: str | None = None
    mlflow_experiment: str = "credit-risk"
    registered_model: str = "application_pd"

    # --- models ------------------------------------------------------------------
    model_kinds: str = Field(
        "decision_tree,gbt,neural_network,scorecard,logistic",
        description="model kinds `riskctl train` fits (comma-separated)",
    )
    valid_months: int = Field(
        2, description="months before the out-of-time window held out for validation"
    )
    class_weight: str = Field(
        "balanced",
        description="imbalance: 'balanced' weighs bads by goods/bads (PDs prior-corrected "
        "back to the true bad rate), 'none' fits unweighted",
    )
    tune_trials: int = Field(
        0, description="Optuna trials per model kind (0: the default hyperparameters)"
    )
    tune_sampler: str = Field("tpe", description="Optuna sampler: tpe, nsga2 or random")
    tune_seconds: float = Field(
        0.0,
        description="search budget per model kind in seconds (0: none); with no trial count "
        "the search runs until the budget is spent",
    )
    cv_max_rows: int = Field(
        20000,
        description="evaluate-dataset cross-validates files with fewer usable rows than this",
    )
    cv_folds: int = Field(5, description="folds of evaluate-dataset's cross-validation")
    cv_repeats: int = Field(2, description="repeats of evaluate-dataset's cross-validation")
    promotion_margin: float = Field(
        0.005,
        description="out-of-time AUC a challenger must beat the champion by to be promoted",
    )
    promotion_alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="a challenger's AUC gain must be significant at this level (DeLong, "
        "one-sided) to be promoted",
    )
    reason_excluded: str = Field(
        "age,province,channel",
        description="features never given as a reason code (comma-separated): a lender may "
        "not cite them in a decline notice; they may still be features",
    )
    feature_excluded: str = Field(
        "",
        description="application features no model may read (comma-separated), e.g. age",
    )
    calibration_alpha: float = Field(
        0.01,
        ge=0,
        lt=1,
        description="a challenger whose PDs fail the Hosmer-Lemeshow test at this level on "
        "the out-of-time rows is not promoted (0: never blocks)",
    )

    # --- Airflow -----------------------------------------------------------------
    airflow_home: Path | None = None
    airflow_task_mode: Literal["in_process", "spark_submit"] = Field(
        "in_process",
        description="how a DAG task runs its work: in_process (a Spark driver in the "
        "Airflow worker) or spark_submit (a job submitted to RISK_SPARK_MASTER)",
    )
    airflow_start_date: dt.date = Field(
        dt.date(2026, 1, 1),
        description="the first day risk_collect is scheduled for (and the earliest a "
        "backfill can reach)",
    )
    airflow_end_date: dt.date | None = Field(
        None, description="the last day risk_collect is scheduled for (empty: none)"
    )
    airflow_catchup: bool = Field(
        False,
        description="when unpaused, run every missed day since RISK_AIRFLOW_START_DATE "
        "(false: only the latest)",
    )

    # --- the run's date ----------------------------------------------------------
    as_of: dt.date | None = Field(
        None,
        description="the day the pipeline runs as of (an Airflow run's data interval "
        "end): the lending database is extracted up to its start, and features, labels, "
        "the book and the indicators are computed as of it; empty: the day after the "
        "latest application",
    )

    # --- personal-information protection ----------------------------------------
    pii_key: SecretStr | None = Field(None, description="HMAC key for pseudonyms (secret)")
    bronze_key: SecretStr | None = Field(
        None, description="AES-256 key (64 hex characters) encrypting personal data in bronze"
    )
    bronze_retired_keys: SecretStr | None = Field(
        None,
        description="earlier bronze keys (comma-separated hex) still needed to read values "
        "not yet re-encrypted by `riskctl rotate-keys`",
    )

    # --- risk policy -------------------------------------------------------------
    bad_dpd: int = Field(
        90, description="the default definition: days past due that make a loan bad"
    )
    performance_cycles: int = Field(
        6, description="installments a loan's label is judged on (the performance window)"
    )
    indeterminate_dpd: int = Field(
        30,
        description="worst delay from this many days up to RISK_BAD_DPD is indeterminate: "
        "not fitted, still scored and counted",
    )
    oot_months: int = Field(3, description="matured months held out as the out-of-time test")
    lgd: float = Field(0.45, description="loss given default for impact = EAD x LGD")
    quadrant_pd_threshold: float = Field(0.10, description="PD at or above = high probability")
    quadrant_impact_threshold: float = Field(
        9_000.0, description="EAD x LGD at or above = high impact (currency units)"
    )
    approve_below_pd: float = Field(0.08, description="PD below this: approve")
    reject_from_pd: float = Field(0.20, description="PD at or above this: reject; between: review")
    review_band_pd: float = Field(
        0.02, description="PD band just below the cut-off whose applications go to review"
    )
    review_cost: float = Field(30.0, description="cost of one manual review (currency units)")
    review_catch: float = Field(
        0.5,
        ge=0,
        le=1,
        description="share of the bads in the review band a manual review declines (its "
        "effect); measure it from your reviews' outcomes",
    )
    good_margin: float = Field(
        0.10, description="profit on a good loan as a share of its amount (lost when rejected)"
    )
    risk_tolerance: float = Field(
        0.03,
        description="highest acceptable residual risk: expected loss / exposure of approvals",
    )
    cutoff_step: float = Field(0.005, description="PD step of the candidate cut-offs swept")
    policy_approval: bool = Field(
        False,
        description="maker-checker for cut-offs: `riskctl cutoff` and the pipeline write a new "
        "policy as a draft, active only once an approver approves it in the workbench",
    )
    policy_max_approval_shift: float = Field(
        0.05,
        ge=0,
        le=1,
        description="policy backtest guard: flag a proposal that moves the approval rate by "
        "more than this",
    )
    policy_max_bad_rate_shift: float = Field(
        0.01,
        ge=0,
        le=1,
        description="policy backtest guard: flag a proposal that moves the bad rate of "
        "approvals (with reject inference) by more than this",
    )
    delinquent_pd: dict[str, float] = Field(
        default_factory=lambda: {"1-29": 0.35, "30-59": 0.60, "60-89": 0.85, "90+": 1.0},
        description="loan-book PD floor per DPD bucket (JSON), used when the book's history is "
        "too thin for its own transition matrix; current loans use the model PD",
    )
    charge_off_dpd: int = Field(
        180,
        description="charge-off rule: a loan this many days past due is written off and leaves "
        "the loan book (its loss is recognised; what is recovered later lowers the LGD)",
    )
    warning_thresholds: Path | None = Field(
        None, description="YAML overriding early-warning thresholds (see riskctl warn --help)"
    )
    warning_lookback_days: int = Field(
        120, description="days of early-warning indicators computed back from the as-of date"
    )
    min_segment_loans: int = Field(
        30, description="segments with fewer loans get status 'too_few', never an alert"
    )
    alert_impact_threshold: float = Field(
        100_000.0,
        description="affected exposure x LGD at or above which an alert is high impact",
    )
    notifiers: str = Field("log", description="alert notifiers: log, webhook, email (comma list)")
    webhook_url: str | None = Field(None, description="URL alerts are POSTed to as JSON")
    smtp_host: str | None = None
    smtp_port: int = 25
    alert_email_from: str = "riskcontrol@localhost"
    alert_email_to: str | None = Field(None, description="comma-separated alert recipients")
    score_base: int = Field(600, description="score at base odds")
    score_base_odds: float = Field(19.0, description="good:bad odds that score_base stands for")
    score_pdo: float = Field(50.0, description="points to double the odds")
    score_min: int = Field(300, description="lowest score; scores are clipped to it")
    score_max: int = Field(900, description="highest score; scores are clipped to it")

    @model_validator(mode="after")
    def _fill_paths(self) -> Settings:
        home = Path(self.home).resolve()
        self.home = home
        if self.lakehouse_root is None:
            self.lakehouse_root = str(home / "lakehouse")
        if self.data_dir is None:
            self.data_dir = home / "data"
        if self.jars_dir is None:  # the install's jars, not the data's
            self.jars_dir = PROJECT_ROOT / "jars"
        if self.lending_jdbc_url is None:
            self.lending_jdbc_url = f"jdbc:sqlite:{self.data_dir / 'lending.db'}"
        if self.crawl_sources is None:
            self.crawl_sources = PROJECT_ROOT / "crawlers" / "sources.yaml"
        if self.crawl_state_dir is None:
            self.crawl_state_dir = Path(self.data_dir) / "crawl_state"
        if self.mlflow_tracking_uri is None:
            self.mlflow_tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
        if self.mlflow_artifact_root is None:
            self.mlflow_artifact_root = (home / "mlartifacts").as_uri()
        if self.airflow_home is None:
            self.airflow_home = home / ".airflow"
        if not 0 < self.approve_below_pd <= self.reject_from_pd < 1:
            raise ValueError(
                "need 0 < RISK_APPROVE_BELOW_PD <= RISK_REJECT_FROM_PD < 1, got "
                f"{self.approve_below_pd} and {self.reject_from_pd}"
            )
        if not 0 < self.indeterminate_dpd <= self.bad_dpd or self.performance_cycles < 1:
            raise ValueError(
                "need 0 < RISK_INDETERMINATE_DPD <= RISK_BAD_DPD and RISK_PERFORMANCE_CYCLES "
                f">= 1, got {self.indeterminate_dpd}, {self.bad_dpd} and "
                f"{self.performance_cycles}"
            )
        if self.charge_off_dpd < self.bad_dpd:
            raise ValueError(
                f"RISK_CHARGE_OFF_DPD ({self.charge_off_dpd}) is below RISK_BAD_DPD "
                f"({self.bad_dpd}): a loan is written off after it has defaulted, not before"
            )
        if self.oot_months < 1 or self.valid_months < 1:
            raise ValueError(
                f"RISK_OOT_MONTHS ({self.oot_months}) and RISK_VALID_MONTHS "
                f"({self.valid_months}) must be at least 1"
            )
        unknown = set(self.kinds) - set(MODEL_KINDS)
        if unknown or not self.kinds:
            raise ValueError(
                f"RISK_MODEL_KINDS={self.model_kinds!r}: choose from {', '.join(MODEL_KINDS)}"
            )
        if self.class_weight not in ("balanced", "none"):
            raise ValueError(f"RISK_CLASS_WEIGHT={self.class_weight!r}: use balanced or none")
        if self.cv_folds < 3 or self.cv_repeats < 1:
            raise ValueError(
                f"RISK_CV_FOLDS={self.cv_folds}, RISK_CV_REPEATS={self.cv_repeats}: "
                "cross-validation needs at least 3 folds (test, validation, train) and 1 repeat"
            )
        if self.tune_trials < 0 or self.tune_seconds < 0:
            raise ValueError(
                f"RISK_TUNE_TRIALS={self.tune_trials}, RISK_TUNE_SECONDS={self.tune_seconds}: "
                "a search budget is 0 (none) or positive"
            )
        if self.tune_sampler not in TUNE_SAMPLERS:
            raise ValueError(
                f"RISK_TUNE_SAMPLER={self.tune_sampler!r}: use one of {', '.join(TUNE_SAMPLERS)}"
            )
        if not (self.score_base_odds > 0 and self.score_pdo > 0):
            raise ValueError(
                f"RISK_SCORE_BASE_ODDS ({self.score_base_odds}) and RISK_SCORE_PDO "
                f"({self.score_pdo}) must be > 0"
            )
        if not self.score_min < self.score_max:
            raise ValueError(
                f"RISK_SCORE_MIN ({self.score_min}) must be below RISK_SCORE_MAX ({self.score_max})"
            )
        return self

    @property
    def kinds(self) -> tuple[str, ...]:
        """The model kinds to train, in the configured order."""
        return tuple(k.strip() for k in self.model_kinds.split(",") if k.strip())

    @property
    def not_reasons(self) -> tuple[str, ...]:
        """Features never given as a reason code, in the configured order."""
        return _names(self.reason_excluded)

    @property
    def not_features(self) -> tuple[str, ...]:
        """Application features no model reads."""
        return _names(self.feature_excluded)

    # --- derived locations -------------------------------------------------------
    @property
    def landing_dir(self) -> Path:
        """Where file drops (bureau JSON, events, notes) arrive."""
        return Path(self.data_dir) / "landing"

    @property
    def site_url(self) -> str:
        """Base URL of the generated public-web site on loopback."""
        return f"http://{self.site_host}:{self.site_port}"

    @property
    def site_dir(self) -> Path:
        """Where the generated site's content and ground truth are written."""
        return Path(self.data_dir) / "site"

    @property
    def crawl_landing_dir(self) -> Path:
        """Where crawls write pages, records and rejects as JSON lines."""
        return self.landing_dir / "crawl"

    @property
    def lending_db_path(self) -> Path | None:
        """The SQLite file behind the default JDBC URL, if that is what is configured."""
        url = self.lending_jdbc_url or ""
        return Path(url.removeprefix("jdbc:sqlite:")) if url.startswith("jdbc:sqlite:") else None

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    def pii_secret(self) -> bytes:
        """The HMAC key; fails with instructions when it is missing."""
        if self.pii_key is None or not self.pii_key.get_secret_value():
            raise RuntimeError(
                "RISK_PII_KEY is not set. Export it (any long random string, e.g. "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`) or put it in "
                f"{PROJECT_ROOT / '.env'}. Run `riskctl init` to create a local one."
            )
        return self.pii_key.get_secret_value().encode("utf-8")

    def bronze_secret(self) -> bytes:
        """The 32-byte key that encrypts sensitive bronze fields; fails with instructions."""
        value = self.bronze_key.get_secret_value() if self.bronze_key else ""
        try:
            key = bytes.fromhex(value)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise RuntimeError(
                "RISK_BRONZE_KEY must be set to 64 hex characters (a 256-bit AES key), e.g. "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`, in the "
                f"environment or {PROJECT_ROOT / '.env'}. Run `riskctl init` to create a "
                "local one. Keep it: bronze written with a key can only be read with it."
            )
        return key

    def retired_secrets(self) -> tuple[bytes, ...]:
        """Retired bronze keys, still accepted for decryption (key rotation)."""
        text = self.bronze_retired_keys.get_secret_value() if self.bronze_retired_keys else ""
        keys = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            try:
                key = bytes.fromhex(part)
            except ValueError:
                key = b""
            if len(key) != 32:
                raise RuntimeError(
                    "RISK_BRONZE_RETIRED_KEYS must be a comma-separated list of 64-hex-character "
                    "keys (the earlier values of RISK_BRONZE_KEY)"
                )
            keys.append(key)
        return tuple(keys)


LOCAL_SECRETS = ("PII_KEY", "BRONZE_KEY")  # generated for local use when missing


def ensure_local_secrets(env_file: Path = PROJECT_ROOT / ".env") -> bool:
    """Create a git-ignored ``.env`` with random local keys (pseudonyms, bronze encryption).

    Only for keys not configured otherwise, and never when the environment is
    ``cluster``: production keys come from the deployment's secret store. Returns True
    when a key was written. The file is readable by its owner only from its first byte
    (a private temporary file renamed over ``.env`` in one step: never 0644, never half
    written), and two processes starting at once agree on one set of keys (the folder is
    locked while ``.env`` is read and written).
    """
    import fcntl
    import tempfile

    if os.environ.get(f"{ENV_PREFIX}ENV") == "cluster":
        return False
    env_file.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(env_file.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        existing = env_file.read_text(encoding="utf-8") if env_file.exists() else ""
        missing = [
            name
            for name in LOCAL_SECRETS
            if not os.environ.get(f"{ENV_PREFIX}{name}") and f"{ENV_PREFIX}{name}=" not in existing
        ]
        if not missing:
            return False
        text = existing + ("\n" if existing and not existing.endswith("\n") else "")
        text += "# generated by riskctl for local use; never commit this file\n"
        text += "".join(f"{ENV_PREFIX}{name}={secrets.token_hex(32)}\n" for name in missing)
        fd, tmp = tempfile.mkstemp(prefix=".env.", suffix=".tmp", dir=env_file.parent)  # 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, env_file)
        finally:
            Path(tmp).unlink(missing_ok=True)
    finally:
        os.close(folder)  # releases the lock
    get_settings.cache_clear()
    return True


class SettingsError(ValueError):
    """Settings that do not validate; the message names each setting and what is wrong."""


def load_settings(**overrides) -> Settings:
    """Settings from the environment and ``.env``, with ``overrides`` (field names) on top.

    A validation error is re-raised as ``SettingsError`` listing only the messages:
    pydantic's own text quotes every input value, the keys among them.
    """
    try:
        return Settings(**overrides)
    except ValidationError as e:
        lines = [
            f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}"
            for err in e.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (call ``get_settings.cache_clear()`` after changing env)."""
    return load_settings()
