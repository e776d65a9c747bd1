"""The service wired to the project: the champion and challenger from MLflow, the active
cut-off policy from the lakehouse, customer history from the feature store's online
store, the rules file and lists from the service folder; and ``uvicorn`` serving it.

A watcher thread checks every ``reload_every`` seconds whether the rules, the lists,
the model aliases or the active policy changed, and reloads the bundle when they did
(so does ``SIGHUP``).
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import ipaddress
import logging
import signal
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riskcontrol.core.config import Settings
from riskcontrol.serve import lists as lists_mod
from riskcontrol.serve.engine import RULE_FIELDS, Bundle, Engine, Model, Routing
from riskcontrol.serve.journal import DecisionJournal
from riskcontrol.serve.journal import default_path as journal_path
from riskcontrol.serve.keys import KeyStore
from riskcontrol.serve.keys import default_path as keys_path
from riskcontrol.serve.rules import ensure_rules, load_rules

log = logging.getLogger("riskcontrol.serve")


class SparkScorer:
    """A model with no exact plain-Python form, scored on a one-row Spark frame."""

    def __init__(self, champion, spark, settings):
        self.champion, self.spark, self.settings = champion, spark, settings
        self._lock = threading.Lock()

    def predict(self, row: dict[str, Any]) -> tuple[float, list[str]]:
        from riskcontrol.apply import scoring
        from riskcontrol.core.catalog import GOLD_APPLICATION_FEATURES

        with self._lock:
            df = self.spark.createDataFrame([row], GOLD_APPLICATION_FEATURES.schema)
            (out,) = scoring.score_applications(df, self.champion, self.settings).collect()
        return out["pd"], list(out["reason_codes"] or [])


def _model(settings: Settings, spark, alias: str) -> Model:
    from riskcontrol.apply.localscore import LocalScorer, NotSupported
    from riskcontrol.modeling import tracking

    loaded = tracking.load_alias(settings, alias)
    try:
        scorer = LocalScorer.from_champion(loaded)
    except NotSupported as exc:
        log.warning("%s is scored with Spark: %s", alias, exc)
        scorer = SparkScorer(loaded, spark, settings)
    return Model(loaded.name, loaded.version, loaded.kind, scorer)


@dataclass
class Sources:
    """Where the bundle comes from, and what tells that it changed."""

    settings: Settings
    spark: Any
    rules: Path
    lists: Path

    def _state(self) -> tuple[Any, tuple]:
        """(the active policy, the signature): what the sources hold now."""
        from riskcontrol.apply import scoring
        from riskcontrol.modeling import tracking

        policy = scoring.active_policy(self.spark, self.settings)
        return policy, (
            hashlib.sha256(self.rules.read_bytes()).hexdigest() if self.rules.exists() else None,
            lists_mod.signature(self.lists),
            tracking.alias_version(self.settings, "champion"),
            tracking.alias_version(self.settings, "challenger"),
            (policy.version, policy.approve_below_pd, policy.reject_from_pd),
        )

    def signature(self) -> tuple:
        return self._state()[1]

    def load(self) -> Bundle:
        policy, signature = self._state()
        has_challenger = signature[3] is not None
        return Bundle(
            rules=load_rules(self.rules, RULE_FIELDS),
            lists=lists_mod.Lists.load(self.lists),
            champion=_model(self.settings, self.spark, "champion"),
            challenger=_model(self.settings, self.spark, "challenger") if has_challenger else None,
            policy=policy,
            signature=signature,
        )


def online_features(settings: Settings):
    """A lookup of a customer's history in the online store (one at a time: the store's
    SQLite connection is not shared across threads)."""
    from riskcontrol.analyze import feature_store

    reader = feature_store.OnlineReader(feature_store.feature_store(settings))
    lock = threading.Lock()

    def lookup(customer_id: str, on: dt.date) -> dict[str, Any]:
        with lock:
            out = reader(customer_id, as_of=on)
        out.pop("customer_id", None)
        # A customer the store does not know has every feature missing or zero.
        out["_has_history"] = any(v not in (None, 0, 0.0) for v in out.values())
        return out

    return lookup


def build_engine(settings: Settings, spark, rules: Path, routing: Routing) -> Engine:
    sources = Sources(settings, spark, rules, lists_mod.folder(settings.home))
    engine = Engine(
        pii_key=settings.pii_secret(),
        journal=DecisionJournal(journal_path(settings.home)),
        loader=sources.load,
        features=online_features(settings),
        settings=settings,
        routing=routing,
        signature=sources.signature,
    )
    engine.load()
    return engine


def watch(engine: Engine, every: float, stop: threading.Event) -> threading.Thread:
    """Reload the engine's bundle when its sources change, every ``every`` seconds."""

    def loop():
        while not stop.wait(every):
            engine.reload_if_changed()

    thread = threading.Thread(target=loop, name="riskcontrol-reload", daemon=True)
    thread.start()
    return thread


def tls_options(cert: Path | None, key: Path | None, client_ca: Path | None) -> dict:
    """uvicorn's TLS settings; with ``client_ca``, a client certificate signed by that CA
    is required (mutual TLS)."""
    if (cert is None) != (key is None):
        raise ValueError("give both --tls-cert and --tls-key, or neither")
    if client_ca is not None and cert is None:
        raise ValueError("--client-ca (mutual TLS) needs TLS: give --tls-cert and --tls-key")
    if cert is None:
        return {}
    for flag, path in (("--tls-cert", cert), ("--tls-key", key), ("--client-ca", client_ca)):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{flag} {path}: no such file")
    out = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    if client_ca is not None:
        out.update(ssl_ca_certs=str(client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return out


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def wait_ready(url: str, proc, seconds: float = 300) -> None:
    """Wait until the service started as ``proc`` answers ``/readyz`` with 200."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"riskctl serve exited with status {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"riskctl serve did not become ready in {seconds:.0f} s")


def serve(
    settings: Settings,
    host: str,
    port: int,
    rules: Path,
    routing: Routing,
    tls: dict,
    reload_every: float,
    say=print,
) -> None:
    """Start the service and serve until interrupted."""
    import uvicorn

    from riskcontrol.core.spark import get_spark
    from riskcontrol.serve.app import create_app, json_logging

    if not tls and not is_loopback(host):
        raise ValueError(
            f"plain HTTP is served on loopback only; to listen on {host}, serve TLS with "
            "--tls-cert and --tls-key (and --client-ca for mutual TLS)"
        )
    if ensure_rules(rules):
        say(f"no rules file yet: wrote the example rules to {rules}; edit it to your policy")
    load_rules(rules, RULE_FIELDS)  # a bad rules file stops the start, with every error
    json_logging()
    say("starting Spark, loading the champion, the policy and the feature store")
    spark = get_spark(settings)
    engine = build_engine(settings, spark, rules, routing)
    keys = KeyStore(keys_path(settings.home))
    if not keys.list():
        say("no API keys yet: create one with `riskctl keys add --name CHANNEL --scope decide`")
    app = create_app(engine, keys)
    from riskcontrol.workbench.app import build as build_workbench

    app.mount("/ui", build_workbench(settings, spark, rules))
    # Spark, MLflow and Feast leave millions of long-lived objects: frozen, the collector
    # no longer walks them in a full collection (a pause of a large share of a second,
    # felt by whichever request triggers it).
    gc.collect()
    gc.freeze()
    stop = threading.Event()
    watch(engine, reload_every, stop)
    signal.signal(
        signal.SIGHUP,
        lambda *_: threading.Thread(target=engine.reload_if_changed, args=(True,)).start(),
    )
    scheme = "https" if tls else "http"
    say(
        f"serving on {scheme}://{host}:{port}  (docs: {scheme}://{host}:{port}/docs, "
        f"workbench: {scheme}://{host}:{port}/ui/login)"
    )
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, **tls)
    try:
        uvicorn.Server(config).run()
    finally:
        stop.set()
