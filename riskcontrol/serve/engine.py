"""One decision: validate -> features -> policy rules -> PD -> cut-off -> decision, journaled.

Everything a decision reads that can change while the service runs (the rules file, the
lists, the champion and challenger models, the cut-off policy) lives in one immutable
:class:`Bundle`. A request takes the current bundle once, at its start, and uses only it;
a reload builds a whole new bundle off the request path and swaps the reference. So an
in-flight request never sees half of a new policy, and a reload never pauses requests.

The journal (``serve.journal``) holds each decision before it is answered, keyed by a
keyed pseudonym of the application id: the same application id gets the stored answer
back, and is never decided twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from riskcontrol.apply.localscore import classify_row
from riskcontrol.apply.online import RequestError, feature_row
from riskcontrol.apply.scoring import CutoffPolicy
from riskcontrol.core.catalog import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from riskcontrol.core.pii import hmac_hex
from riskcontrol.core.reasons import reason_texts
from riskcontrol.serve import lists, split
from riskcontrol.serve.journal import DecisionJournal
from riskcontrol.serve.lists import Lists
from riskcontrol.serve.models import DecisionRequest
from riskcontrol.serve.rules import RuleSet, default_rules, load_rules, rules_path

log = logging.getLogger("riskcontrol.serve")

# Fields the policy rules may name, beside the model's features: public-record hits from
# the feature store, and what the service itself computes per request.
RULE_FIELDS = frozenset(
    {
        *NUMERIC_FEATURES,
        *CATEGORICAL_FEATURES,
        "product",
        "pr_court_hits",
        "pr_penalty_hits",
        "pr_employer_hits",
        "pr_news_hits",
        "pr_days_since_last",
        "prior_current_dpd",
        "prior_open_principal",
        "apps_24h",
        "blocklisted",
        "shared_with_fraud",
        "has_history",
    }
)

ACTION_RANK = {"pass": 0, "approve": 0, "review": 1, "reject": 2}


class DecisionError(ValueError):
    """A request the service refuses with a 4xx: ``status`` and a message saying why."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field


class Scorer(Protocol):
    def predict(self, row: dict[str, Any]) -> tuple[float, list[str]]: ...


@dataclass(frozen=True)
class Model:
    """A registered model version ready to score one row in plain Python."""

    name: str
    version: str
    kind: str
    scorer: Scorer


@dataclass(frozen=True)
class Bundle:
    """Everything a decision reads that a reload may change, swapped as one."""

    rules: RuleSet
    lists: Lists
    champion: Model
    challenger: Model | None
    policy: CutoffPolicy
    signature: tuple
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def versions(self) -> dict[str, Any]:
        return {
            "rules": self.rules.version,
            "rules_digest": self.rules.digest[:12],
            "model": f"{self.champion.name}/{self.champion.version}",
            "challenger": (
                f"{self.challenger.name}/{self.challenger.version}" if self.challenger else None
            ),
            "policy": self.policy.version,
        }


@dataclass(frozen=True)
class Routing:
    """How traffic reaches the challenger: a share of applications acted on by it
    (by a salted hash of the application id), or ``shadow``: scored on every request,
    logged, never acted on."""

    challenger_share: float = 0.0
    shadow: bool = False
    salt: str = "riskcontrol-split-v1"

    def __post_init__(self):
        if not 0.0 <= self.challenger_share <= 1.0:
            raise ValueError(f"challenger share must be in [0, 1], got {self.challenger_share}")
        if self.shadow and self.challenger_share:
            raise ValueError("shadow mode acts on no challenger decision: give no share with it")


Features = Callable[[str, dt.date], dict[str, Any]]


class Engine:
    """Decides applications against the current bundle and journals each decision."""

    def __init__(
        self,
        pii_key: bytes,
        journal: DecisionJournal,
        loader: Callable[[], Bundle],
        features: Features,
        settings,
        routing: Routing | None = None,
        signature: Callable[[], tuple] | None = None,
    ):
        self._pii_key = pii_key
        self.journal = journal
        self._loader = loader
        self._features = features
        self._signature = signature
        self.settings = settings
        self.routing = routing or Routing()
        self._bundle: Bundle | None = None
        self._reload_lock = threading.Lock()
        self.reloads = 0
        self.last_reload_error: str | None = None

    # --- bundle -----------------------------------------------------------------------
    @property
    def bundle(self) -> Bundle:
        if self._bundle is None:
            raise RuntimeError("the service is not ready: no model, policy and rules loaded")
        return self._bundle

    @property
    def ready(self) -> bool:
        return self._bundle is not None

    def load(self) -> Bundle:
        """Load a fresh bundle and make it current (the old one serves until then)."""
        with self._reload_lock:
            bundle = self._loader()
            self._bundle = bundle
            self.reloads += 1
            self.last_reload_error = None
        log.info("bundle loaded", extra={"event": "reload", "versions": bundle.versions()})
        return bundle

    def reload_if_changed(self, force: bool = False) -> bool:
        """Reload when the signature (rules, lists, aliases, policy) moved, or always
        with ``force``; a failed reload keeps the current bundle and says why."""
        try:
            current = self._signature() if self._signature else None
            if not force and self._bundle is not None and current == self._bundle.signature:
                return False
            self.load()
            return True
        except Exception as exc:  # the current bundle keeps serving
            self.last_reload_error = f"{type(exc).__name__}: {exc}"
            log.error(
                "reload failed; the current bundle keeps serving",
                extra={"event": "reload_failed", "error": self.last_reload_error},
            )
            return False

    # --- pseudonyms -------------------------------------------------------------------
    def pseudonym(self, value: str) -> str:
        """Keyed HMAC of an identifier, as silver pseudonymizes it."""
        return hmac_hex(value.encode("utf-8"), self._pii_key)

    def fingerprint(self, req: DecisionRequest) -> str:
        """A keyed hash of the whole request: tells a repeat from a different request
        under the same application id, and reveals nothing of it."""
        text = json.dumps(req.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hmac_hex(b"request\0" + text.encode("utf-8"), self._pii_key)

    # --- deciding ---------------------------------------------------------------------
    def decide(self, req: DecisionRequest, caller: str) -> tuple[dict[str, Any], bool]:
        """(response body, replayed): the stored answer when this application id was
        decided before, else a new decision made durable before it is returned."""
        t0 = time.perf_counter()
        key = self.pseudonym(req.application_id)
        fingerprint = self.fingerprint(req)
        stored = self.journal.get(key)
        if stored is not None:
            return self._replay(stored.record, stored.seq, fingerprint, req), True

        bundle = self._bundle  # one read: the whole decision uses this bundle
        if bundle is None:
            raise DecisionError(503, "the service is not ready: no model, policy and rules yet")
        product = bundle.rules.products.get(req.product)
        if product is None:
            known = ", ".join(sorted(bundle.rules.products)) or "none"
            raise DecisionError(
                422, f"unknown product {req.product!r}; known products: {known}", "product"
            )
        for problem, name in product.problems(req.requested_amount, req.term_months):
            raise DecisionError(422, problem, name)

        on = req.application_date or dt.datetime.now(dt.UTC).date()
        subject = self.pseudonym(req.customer_id)
        online = self._features(req.customer_id, on)
        has_history = bool(online.pop("_has_history", True))
        request = {**req.to_request(), "customer_key": None}
        try:
            row = feature_row({**request, **req.overrides()}, online, on)
        except RequestError as exc:
            raise DecisionError(422, str(exc)) from None

        values = self._rule_values(req, row, online, bundle, subject, has_history)
        outcome = bundle.rules.evaluate(values)

        champion = self._score(bundle.champion, row, bundle.policy)
        challenger = (
            self._score(bundle.challenger, row, bundle.policy) if bundle.challenger else None
        )
        arm = "champion"
        if bundle.challenger is not None and not self.routing.shadow:
            arm = split.arm(req.application_id, self.routing.challenger_share, self.routing.salt)
        acting = challenger if arm == "challenger" else champion
        decision = _combine(outcome.action, acting["decision"])

        reasons = [
            {"code": f.code, "source": "rule", "en": f.reason_en, "zh": f.reason_zh}
            for f in outcome.fired
        ]
        if acting["decision"] != "approve":
            for code in acting["reason_codes"]:
                en, zh = reason_texts(code)
                reasons.append({"code": code, "source": "model", "en": en, "zh": zh})
        latency_ms = round((time.perf_counter() - t0) * 1000, 2)
        now = dt.datetime.now(dt.UTC)
        record = {
            "application_key": key,
            "customer_key": subject,
            "request_fingerprint": fingerprint,
            "product": req.product,
            "application_date": on.isoformat(),
            "has_history": has_history,
            "features": {c: row.get(c) for c in (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)},
            "rule_inputs": {k: values.get(k) for k in _RULE_EXTRAS},
            "rules_action": outcome.action,
            "rules_fired": [f.code for f in outcome.fired],
            "rules_undecided": list(outcome.undecided),
            "arm": arm,
            "shadow": self.routing.shadow,
            "champion": champion,
            "challenger": challenger,
            "decision": decision,
            "pd": acting["pd"],
            "score": acting["score"],
            "risk_band": acting["risk_band"],
            "quadrant": acting["quadrant"],
            "reason_codes": [r["code"] for r in reasons],
            "reasons": reasons,
            "versions": bundle.versions(),
            "latency_ms": latency_ms,
            "caller": caller,
            "decided_at": now.isoformat(),
        }
        entry, created = self.journal.record(key, record)
        if not created:  # a concurrent request for the same id won: answer as it did
            return self._replay(entry.record, entry.seq, fingerprint, req), True
        return self._response(record, entry.seq, req, replayed=False), False

    def _score(self, model: Model, row: dict[str, Any], policy: CutoffPolicy) -> dict[str, Any]:
        pd, codes = model.scorer.predict(row)
        out = classify_row(pd, row["requested_amount"], self.settings, policy)
        return {
            "model": f"{model.name}/{model.version}",
            "pd": pd,
            "score": out["score"],
            "risk_band": out["risk_band"],
            "quadrant": out["quadrant"],
            "decision": out["decision"],
            "reason_codes": list(codes),
        }

    def _rule_values(self, req, row, online, bundle, subject, has_history) -> dict[str, Any]:
        values = {c: row.get(c) for c in (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)}
        for c in RULE_FIELDS:
            if c not in values and c in online:
                values[c] = online[c]
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)
        values.update(
            product=req.product,
            has_history=has_history,
            apps_24h=self.journal.count_subject(subject, since),
            blocklisted=bundle.lists.contains("blocklist", subject),
            shared_with_fraud=any(
                bundle.lists.contains(name, lists.pseudonym(name, value, self._pii_key))
                for name, value in (("fraud_devices", req.device_id), ("fraud_phones", req.phone))
                if value
            ),
        )
        return values

    def _replay(self, record, seq, fingerprint, req) -> dict[str, Any]:
        if record["request_fingerprint"] != fingerprint:
            raise DecisionError(
                409,
                "this application id was already decided with a different request; "
                "send a new application id for a new application",
                "application_id",
            )
        return self._response(record, seq, req, replayed=True)

    def _response(self, record, seq, req, replayed) -> dict[str, Any]:
        """The answer to ``req`` from its journal record (new or stored alike)."""
        return {
            "application_id": req.application_id,
            "decision_id": seq,
            "decision": record["decision"],
            "pd": record["pd"],
            "score": record["score"],
            "risk_band": record["risk_band"],
            "quadrant": record["quadrant"],
            "reason_codes": record["reason_codes"],
            "decline_reasons": [] if record["decision"] == "approve" else record["reasons"],
            "rules_fired": record["rules_fired"],
            "arm": record["arm"],
            "versions": record["versions"],
            "has_history": record["has_history"],
            "notices": [] if record["has_history"] else [_NO_HISTORY],
            "replayed": replayed,
            "decided_at": record["decided_at"],
        }


_NO_HISTORY = "no history for this customer in the feature store: scored on the request alone"
_RULE_EXTRAS = (
    "pr_court_hits",
    "pr_penalty_hits",
    "pr_days_since_last",
    "apps_24h",
    "blocklisted",
    "shared_with_fraud",
)


def _combine(rules_action: str, model_decision: str) -> str:
    """The most severe of the rules' action and the model's decision."""
    rules = "approve" if rules_action == "pass" else rules_action
    return max(rules, model_decision, key=ACTION_RANK.__getitem__)


def service_rules(settings, path=None) -> RuleSet:
    """The decision service's rule set: its rules file (``path``, default the configured
    one), else the example rules it starts with."""
    path = path or rules_path(settings)
    return load_rules(path, RULE_FIELDS) if path.exists() else default_rules(RULE_FIELDS)
