"""The decision service's HTTP API (ASGI, FastAPI): decisions, health, metrics.

Routes:

* ``POST /v1/decisions``: decide one application (scope ``decide``). 200 with the
  decision; the same application id again returns the stored decision (``replayed``).
* ``GET /v1/decisions/{application_id}``: the stored decision (scope ``read``).
* ``GET /healthz``: the process answers. ``GET /readyz``: a model, policy and rules are
  loaded and the journal is writable (503 otherwise).
* ``GET /metrics``: Prometheus text: requests, latency, decisions by outcome and arm,
  rule hits, refusals. It carries no personal data.
* ``GET /docs``, ``/openapi.json``: the API's schema.

Callers authenticate with an API key (``Authorization: Bearer rk_...`` or ``X-API-Key``)
from ``riskctl keys``; over TLS, optionally with client certificates (mutual TLS). Every
refusal is logged with its reason and never with the key.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import ValidationError

from riskcontrol.serve.engine import DecisionError, Engine
from riskcontrol.serve.keys import KeyStore, Refused
from riskcontrol.serve.models import MAX_BODY_BYTES, DecisionRequest, is_json_error, problems

log = logging.getLogger("riskcontrol.serve")
access = logging.getLogger("riskcontrol.serve.access")

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The service's Prometheus metrics, in a registry of its own."""

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "riskcontrol_http_requests", "HTTP requests", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "riskcontrol_http_request_seconds",
            "request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "riskcontrol_decisions", "decisions made", ["decision", "arm"], registry=r
        )
        self.replays = Counter("riskcontrol_decision_replays", "idempotent replays", registry=r)
        self.rule_hits = Counter(
            "riskcontrol_rule_hits", "policy rules fired", ["code"], registry=r
        )
        self.refusals = Counter(
            "riskcontrol_auth_refusals", "refused callers", ["status"], registry=r
        )
        self.reloads = Counter("riskcontrol_reloads", "bundle reloads", registry=r)


def _error(status: int, message: str, **extra) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="riskcontrol"'} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else auth
    return request.headers.get("x-api-key")


def create_app(engine: Engine, keys: KeyStore, metrics: Metrics | None = None) -> FastAPI:
    """The ASGI app over ``engine`` (decisions) and ``keys`` (callers)."""
    metrics = metrics or Metrics()
    app = FastAPI(
        title="riskcontrol decision service",
        version="1",
        description=__doc__,
    )
    app.state.engine, app.state.keys, app.state.metrics = engine, keys, metrics

    def authorize(request: Request, scope: str):
        try:
            return keys.check(_token(request), scope)
        except Refused as exc:
            metrics.refusals.labels(str(exc.status)).inc()
            log.warning(
                "refused",
                extra={
                    "event": "refused",
                    "status": exc.status,
                    "reason": exc.reason,
                    "path": route_of(request.url.path),
                    "client": request.client.host if request.client else None,
                },
            )
            raise

    app.add_middleware(Guard, metrics=metrics)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused):
        return _error(exc.status, exc.reason)

    @app.post(
        "/v1/decisions",
        summary="Decide one credit application",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": DecisionRequest.model_json_schema()}},
            }
        },
        responses={
            400: {"description": "the body is not JSON"},
            401: {"description": "no valid API key"},
            403: {"description": "the key lacks the 'decide' scope"},
            409: {"description": "the application id was decided with another request"},
            413: {"description": "the body is too large"},
            422: {"description": "a field is wrong; the answer names it"},
        },
    )
    async def decide(request: Request):
        key = authorize(request, "decide")
        body = await _body(request)
        if isinstance(body, Response):
            return body
        try:
            req = DecisionRequest.model_validate_json(body)
        except ValidationError as exc:
            if is_json_error(exc):
                return _error(400, "the body is not valid JSON: send one application object")
            return _error(422, "invalid request", problems=problems(exc))
        return await _run_decision(req, key.key_id)

    async def _run_decision(req: DecisionRequest, caller: str):
        import anyio

        try:
            body, replayed = await anyio.to_thread.run_sync(engine.decide, req, caller)
        except DecisionError as exc:
            extra = {"field": exc.field} if exc.field else {}
            return _error(exc.status, str(exc), **extra)
        if replayed:
            metrics.replays.inc()
        else:
            metrics.decisions.labels(body["decision"], body["arm"]).inc()
            for code in body["rules_fired"]:
                metrics.rule_hits.labels(code).inc()
        return JSONResponse(body)

    @app.get("/v1/decisions/{application_id}", summary="A stored decision")
    async def stored(application_id: str, request: Request):
        authorize(request, "read")
        entry = engine.journal.get(engine.pseudonym(application_id))
        if entry is None:
            return _error(404, "no decision for this application id")
        record = {k: v for k, v in entry.record.items() if k != "request_fingerprint"}
        return JSONResponse({"decision_id": entry.seq, **record})

    @app.get("/healthz", summary="The process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="Model, policy, rules and journal ready")
    async def readyz():
        if not engine.ready:
            return _error(503, "not ready: no model, policy and rules loaded yet")
        try:
            engine.journal.last_seq()
        except Exception as exc:
            return _error(503, f"not ready: the decision journal fails ({type(exc).__name__})")
        bundle = engine.bundle
        return {
            "status": "ready",
            "versions": bundle.versions(),
            "loaded_at": bundle.loaded_at.isoformat(),
            "reloads": engine.reloads,
            "last_reload_error": engine.last_reload_error,
            "lists": bundle.lists.sizes(),
        }

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


_ROUTES = {"/v1/decisions", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"}


def route_of(path: str) -> str:
    """The route of a path, for labels and logs: a stored decision's id stays out."""
    if path.startswith("/v1/decisions/"):
        return "/v1/decisions/{id}"
    return path if path in _ROUTES else "other"


class Guard:
    """Plain ASGI middleware around every request: refuses a declared body over the
    limit, turns a bug into a JSON 500 (its detail goes to the log only), and records
    the request's metrics and access-log line (route, status, milliseconds)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        route = route_of(scope["path"])
        status = 500
        started = False

        async def sending(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")(
                scope, receive, sending
            )
        else:
            try:
                await self.app(scope, receive, sending)
            except Exception:  # a bug: logged with its type, answered without details
                log.exception("unhandled error", extra={"event": "error", "path": route})
                if not started:
                    await _error(500, "internal error; the service log has the details")(
                        scope, receive, sending
                    )
                status = 500
        seconds = time.perf_counter() - t0
        self.metrics.requests.labels(route, str(status)).inc()
        self.metrics.latency.labels(route).observe(seconds)
        access.info(
            "request",
            extra={
                "event": "request",
                "method": scope["method"],
                "path": route,
                "status": status,
                "ms": round(seconds * 1000, 2),
            },
        )


async def _body(request: Request) -> bytes | Response:
    """The body, read up to the limit (a chunked body has no Content-Length to check)."""
    if request.headers.get("content-type", "application/json").split(";")[0].strip() not in (
        "application/json",
        "",
    ):
        return _error(415, "send the application as application/json")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and the record's extras."""

    _STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in self._STANDARD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            # The exception's type and where it was raised, not its message: a message
            # may quote a value from the request.
            etype = record.exc_info[0].__name__ if record.exc_info[0] else "?"
            tb = record.exc_info[2]
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
            out["exception"] = {"type": etype, "at": where}
        return json.dumps(out, default=str, ensure_ascii=False)


def json_logging(level: int = logging.INFO) -> None:
    """Send the service's and uvicorn's logs to stderr as JSON lines."""
    import sys
    import time as _time

    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter()
    formatter.converter = _time.gmtime
    handler.setFormatter(formatter)
    for name in ("riskcontrol.serve", "uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(level)
        lg.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # our access log replaces it
