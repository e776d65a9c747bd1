"""Single-application scoring: the request's own fields plus the customer's history from
the feature store's online store, scored by the champion with the active cut-off policy.

It returns the fields of a ``gold.scored_applications`` row, computed by the same code as
the batch (``scoring.score_applications``): the same model, reason codes, score, band,
quadrant, strategy and decision. The first call loads the champion, the feature store and
the policy (seconds) and reads the fitted model into plain Python
(``riskcontrol.apply.localscore``: the same numbers as Spark, checked row by row in its tests);
later calls take milliseconds, most of it the online-store lookup. A model it cannot
evaluate exactly is scored with Spark on a one-row session instead (about a second).

The request (JSON) carries what the applicant submits::

    {"application_id": "A-1", "customer_id": "C000123", "requested_amount": 20000,
     "term_months": 12, "purpose": "consumer", "channel": "app", "province": "Zhejiang",
     "monthly_income": 9000, "age": 35, "employment_type": "salaried",
     "education": "bachelor"}

``age`` may be given as ``birth_date`` (ISO date) instead; ``application_date`` defaults
to today (UTC). Bureau fields (``bureau_score`` ...) in the request override the
online store's latest report, e.g. when a fresh report was pulled for this application.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

from riskcontrol.analyze import feature_store
from riskcontrol.apply import scoring
from riskcontrol.apply.localscore import LocalScorer, NotSupported, classify_row
from riskcontrol.core.catalog import (
    CATEGORICAL_FEATURES,
    GOLD_APPLICATION_FEATURES,
    GOLD_SCORED_APPLICATIONS,
    NUMERIC_FEATURES,
)
from riskcontrol.core.config import Settings, get_settings
from riskcontrol.core.spark import get_spark
from riskcontrol.modeling import tracking

REQUIRED = (
    "application_id",
    "customer_id",
    "requested_amount",
    "term_months",
    "purpose",
    "channel",
    "province",
    "monthly_income",
    "employment_type",
    "education",
)
# Model features whose value comes from the feature store when the request lacks them.
ONLINE_FEATURES = tuple(
    c
    for c in NUMERIC_FEATURES
    if c not in ("requested_amount", "term_months", "age", "monthly_income", "amount_to_income")
)


ONE_ROW_CONF = {
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.shuffle.partitions": "1",
}


log = logging.getLogger(__name__)


class RequestError(ValueError):
    """The application request is missing a field or has a wrong value."""


def _age(request: dict[str, Any], on: dt.date) -> float:
    if request.get("age") is not None:
        return float(request["age"])
    if request.get("birth_date"):
        born = dt.date.fromisoformat(str(request["birth_date"]))
        return float(on.year - born.year - ((on.month, on.day) < (born.month, born.day)))
    raise RequestError("the request needs 'age' (years) or 'birth_date' (YYYY-MM-DD)")


def feature_row(
    request: dict[str, Any], online: dict[str, Any], on: dt.date | None = None
) -> dict[str, Any]:
    """One ``gold.application_features``-shaped row: the request plus online features."""
    missing = [k for k in REQUIRED if request.get(k) in (None, "")]
    if missing:
        raise RequestError(f"the request lacks {missing}; required: {', '.join(REQUIRED)}")
    on = on or dt.date.fromisoformat(
        str(request.get("application_date") or dt.datetime.now(dt.UTC).date())
    )
    try:
        amount = float(request["requested_amount"])
        income = float(request["monthly_income"])
        term = float(request["term_months"])
    except (TypeError, ValueError) as exc:
        raise RequestError(f"requested_amount, monthly_income and term_months: {exc}") from None
    if amount <= 0 or term <= 0:
        raise RequestError("requested_amount and term_months must be positive")
    row: dict[str, Any] = {
        "application_id": str(request["application_id"]),
        "customer_id": str(request["customer_id"]),
        "customer_key": request.get("customer_key"),
        "application_date": on,
        "application_month": on.strftime("%Y-%m"),
        "status": "pending",
        "requested_amount": amount,
        "term_months": term,
        "age": _age(request, on),
        "monthly_income": income,
        "amount_to_income": amount / income if income else None,
    }
    for c in ONLINE_FEATURES:
        value = request.get(c, online.get(c))
        row[c] = float(value) if value is not None else None
    for c in CATEGORICAL_FEATURES:
        row[c] = str(request[c]) if request.get(c) is not None else None
    row["label"] = None
    row["label_status"] = "no_loan"
    row["label_matured"] = False
    row["feature_time"] = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return row


class ApplicationScorer:
    """Scores one application at a time; holds the champion, feature store and policy."""

    def __init__(self, settings: Settings, spark=None):

        self.settings = settings
        # A session of its own (same SparkContext) tuned for one-row queries: planning,
        # not computing, is the cost there, and adaptive execution and code generation
        # add to the planning without anything to gain on a single row.
        self.spark = (spark or get_spark(settings)).newSession()
        for key, value in ONE_ROW_CONF.items():
            self.spark.conf.set(key, value)
        self.champion = tracking.load_champion(settings)
        self.store = feature_store.feature_store(settings)
        self.policy = scoring.active_policy(self.spark, settings)

        self._schema = GOLD_APPLICATION_FEATURES.schema
        # The fitted pipeline read once into plain Python: a request then costs no Spark
        # job. Kinds or stages it cannot evaluate exactly fall back to Spark.
        try:
            self.local: LocalScorer | None = LocalScorer.from_champion(self.champion)
            self.mode = "local"
        except NotSupported as exc:
            log.warning("single-application scoring uses Spark: %s", exc)
            self.local, self.mode = None, "spark"

    def score(self, request: dict[str, Any]) -> dict[str, Any]:
        """The scored_applications fields of ``request`` (plus ``latency_ms``)."""

        t0 = time.perf_counter()
        online = feature_store.online_features(self.store, str(request.get("customer_id", "")))
        row = feature_row(request, online)
        if self.local is not None:
            result = self._score_locally(row)
        else:
            df = self.spark.createDataFrame([row], self._schema)
            out = scoring.score_applications(df, self.champion, self.settings, self.policy)
            (scored,) = out.collect()
            result = scored.asDict()
        result["latency_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return result

    def _score_locally(self, row: dict[str, Any]) -> dict[str, Any]:
        """The scored_applications fields without Spark (``localscore``, same numbers)."""

        pd, codes = self.local.predict(row)
        return {
            "application_id": row["application_id"],
            "customer_key": row["customer_key"],
            "application_date": row["application_date"],
            "requested_amount": row["requested_amount"],
            "pd": pd,
            **classify_row(pd, row["requested_amount"], self.settings, self.policy),
            "reason_codes": codes,
            "model_name": self.champion.name,
            "model_version": self.champion.version,
            "feature_time": row["feature_time"],
            "scored_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        }


_SCORERS: dict[tuple[str, str], ApplicationScorer] = {}


def score_application(request: dict[str, Any], settings: Settings | None = None) -> dict:
    """Score one application (a dict like the module docstring's); the scorer is cached
    per lakehouse and tracking store, so only the first call pays the loading."""

    settings = settings or get_settings()
    key = (str(settings.lakehouse_root), str(settings.mlflow_tracking_uri))
    if key not in _SCORERS:
        _SCORERS[key] = ApplicationScorer(settings)
    return _SCORERS[key].score(request)


def load_requests(path: Path) -> list[dict[str, Any]]:
    """A JSON file holding one application object, or a list of them."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RequestError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise RequestError(f"{path}: not valid JSON ({exc})") from None
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(x, dict) for x in items):
        raise RequestError(f"{path}: expected an application object or a list of them")
    return items


def jsonable(result: dict[str, Any]) -> dict[str, Any]:
    """The result with dates and timestamps as ISO strings, in the table's column order."""
    order = [*GOLD_SCORED_APPLICATIONS.columns, "latency_ms"]
    return {
        k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v)
        for k, v in sorted(result.items(), key=lambda kv: order.index(kv[0]))
    }
