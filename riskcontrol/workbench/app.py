"""The risk team's workbench: server-rendered pages behind login and roles.

Pages (the least role that may open them):

* ``/login``, ``/logout``: anyone; a session cookie (Secure, HttpOnly, SameSite=Strict).
* ``/``: the dashboard (viewer): the service's decisions today and over 30 days, open
  alerts by severity and quadrant, the early-warning indicators, the book's expected loss.
* ``/reviews``, ``/reviews/{key}``: the review queue (analyst reads; reviewer assigns and
  decides). A decision is a new event in the decision journal; the original stays.
* ``/alerts``, ``/alerts/{id}``: alerts (viewer reads; analyst advances a stage), through
  the same functions as ``riskctl alerts``.
* ``/policies``, ``/policies/{id}``: maker-checker (risk manager proposes a cut-off or a
  rule set; an approver who is not the proposer approves or rejects; only then is it
  active for the decision service).
* ``/audit``: the audit log (risk manager). ``/users``: users (admin).

Every POST carries the session's CSRF token and is refused without it; every page checks
the role on the server. No script runs in a page (Content-Security-Policy
``script-src 'none'``), and every value is escaped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from riskcontrol.core.config import Settings
from riskcontrol.serve.journal import DecisionJournal
from riskcontrol.workbench import charts, data, i18n
from riskcontrol.workbench.store import (
    LoginFailed,
    Session,
    User,
    WorkbenchStore,
    same,
)
from riskcontrol.workbench.templates import CSS, environment

log = logging.getLogger("riskcontrol.workbench")

SESSION_COOKIE = "rk_session"
LOGIN_COOKIE = "rk_login"
LANG_COOKIE = "rk_lang"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_TEXT = 2000


class NeedLogin(Exception):
    pass


class Refusal(Exception):
    """A request the page refuses: its status and a message that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Context:
    request: Request
    lang: str
    me: User | None
    session: Session | None
    token: str | None

    def client(self) -> str | None:
        return self.request.client.host if self.request.client else None


def create_workbench(
    settings: Settings,
    journal: DecisionJournal,
    store: WorkbenchStore,
    lake: data.Lake,
    rules_path: Path,
) -> FastAPI:
    app = FastAPI(title="riskcontrol workbench", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.lake, app.state.store, app.state.journal = lake, store, journal
    env = environment()
    lgd = float(settings.lgd)

    def url(request: Request, path: str) -> str:
        return request.scope.get("root_path", "") + path

    def context(request: Request) -> Context:
        lang = i18n.pick(
            request.query_params.get("lang"),
            request.cookies.get(LANG_COOKIE),
            request.headers.get("accept-language"),
        )
        token = request.cookies.get(SESSION_COOKIE)
        session = store.session(token)
        me = store.user(session.username) if session else None
        return Context(request, lang, me, session, token)

    def render(ctx: Context, page: str, status: int = 200, **values) -> HTMLResponse:
        t = i18n.translator(ctx.lang)
        csrf = values.pop("csrf", "")
        html = env.get_template(page).render(
            t=t,
            lang=ctx.lang,
            me=ctx.me,
            csrf=ctx.session.csrf if ctx.session else csrf,
            css=CSS,
            url=lambda p: url(ctx.request, p),
            pct=lambda v: "-" if v is None else f"{v:.1%}",
            num=lambda v, d=1: "-" if v is None else f"{v:,.{d}f}",
            money=lambda v: "-" if v is None else f"{v:,.2f}",
            describe=describe,
            title=values.pop("title", t(page.split(".")[0])),
            **values,
        )
        response = HTMLResponse(html, status_code=status)
        if ctx.request.query_params.get("lang") in i18n.LANGS:
            response.set_cookie(
                LANG_COOKIE, ctx.lang, max_age=365 * 86400, secure=True, samesite="lax"
            )
        return response

    def need(request: Request, role: str) -> Context:
        ctx = context(request)
        if ctx.me is None:
            raise NeedLogin
        if not ctx.me.has(role):
            raise Refusal(403, f"this needs the role '{role}' or higher; yours is '{ctx.me.role}'")
        return ctx

    def post(request: Request, role: str, csrf: str) -> Context:
        """A state-changing request: same origin, a live session, its CSRF token, the role."""
        check_origin(request)
        ctx = context(request)
        if ctx.me is None:
            raise Refusal(401, "log in first: the session is missing or has expired")
        if not same(csrf, ctx.session.csrf):
            store.audit(ctx.me.username, "csrf.refused", request.url.path, None, ctx.client())
            raise Refusal(403, "the form's CSRF token is missing or wrong: reload the page")
        if not ctx.me.has(role):
            store.audit(ctx.me.username, "forbidden", request.url.path, role, ctx.client())
            raise Refusal(403, f"this needs the role '{role}' or higher; yours is '{ctx.me.role}'")
        return ctx

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, exc: NeedLogin):
        return RedirectResponse(url(request, "/login"), status_code=303)

    @app.exception_handler(Refusal)
    async def refused(request: Request, exc: Refusal):
        ctx = context(request)
        t = i18n.translator(ctx.lang)
        title = t("forbidden") if exc.status == 403 else t("error")
        return render(ctx, "error.html", exc.status, title=title, message=exc.message)

    # --- login ------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request):
        ctx = context(request)
        if ctx.me is not None:
            return RedirectResponse(url(request, "/"), status_code=303)
        token = os.urandom(24).hex()
        response = render(ctx, "login.html", csrf=token, title=i18n.translator(ctx.lang)("login"))
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, secure=True, samesite="strict", max_age=3600
        )
        return response

    @app.post("/login")
    def login(
        request: Request,
        username: str = Form(""),
        password: str = Form(""),
        csrf: str = Form(""),
    ):
        check_origin(request)
        ctx = context(request)
        if not same(csrf, request.cookies.get(LOGIN_COOKIE)):
            raise Refusal(403, "the login form's CSRF token is missing or wrong: reload the page")
        try:
            token = store.login(username, password, ctx.client())
        except LoginFailed:
            fresh = os.urandom(24).hex()
            t = i18n.translator(ctx.lang)
            response = render(
                ctx, "login.html", 401, csrf=fresh, title=t("login"), error=t("login_failed")
            )
            response.set_cookie(
                LOGIN_COOKIE, fresh, httponly=True, secure=True, samesite="strict", max_age=3600
            )
            return response
        response = RedirectResponse(url(request, "/"), status_code=303)
        response.set_cookie(
            SESSION_COOKIE, token, httponly=True, secure=True, samesite="strict", path="/"
        )
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form("")):
        ctx = post(request, "viewer", csrf)
        store.logout(ctx.token)
        store.audit(ctx.me.username, "logout", ctx.me.username, None, ctx.client())
        response = RedirectResponse(url(request, "/login"), status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # --- dashboard --------------------------------------------------------------------
    cache: dict[str, tuple[float, dict]] = {}
    cache_lock = threading.Lock()

    def figures() -> dict:
        """The journal's figures, computed at most once in ``data.CACHE_SECONDS`` (a
        million decisions take seconds: infra/bench_workbench.py); a review clears it."""
        with cache_lock:
            hit = cache.get("figures")
            if hit is not None and time.monotonic() - hit[0] < data.CACHE_SECONDS:
                return hit[1]
            now = dt.datetime.now(dt.UTC)
            since = now - dt.timedelta(days=data.DAYS + 1)
            reviews = [e.record for e in journal.reviews_since(since)]
            value = data.decision_figures(journal.decided_since(since), reviews, now)
            value["as_of"] = now.strftime("%Y-%m-%d %H:%M:%S UTC")
            cache["figures"] = (time.monotonic(), value)
            return value

    @app.get("/", response_class=HTMLResponse)
    def dashboard(request: Request):
        ctx = need(request, "viewer")
        f = figures()
        t = i18n.translator(ctx.lang)
        legend = {k: t(k) for k in ("approve", "review", "reject")}
        matrix: dict[tuple[str, str], int] = {}
        indicators, el, lake_error = [], None, False
        try:
            for a in lake.alerts(open_only=True):
                matrix[(a["severity"], a["quadrant"])] = (
                    matrix.get((a["severity"], a["quadrant"]), 0) + 1
                )
            indicators, el = lake.indicators(), lake.expected_loss()
            policy = lake.active_policy()
            marks = {"review": policy.approve_below_pd, "reject": policy.reject_from_pd}
        except Exception:
            log.exception("the dashboard could not read the lakehouse")
            lake_error, marks = True, {}
        drawn = {
            "per_day": charts.stacked_bars(t("per_day"), f["days"], f["per_day"], legend),
            "pd": charts.histogram(t("pd_distribution"), f["pds"], marks=marks),
        }
        return render(
            ctx,
            "dashboard.html",
            f=f,
            charts=drawn,
            matrix=matrix,
            indicators=indicators,
            el=el,
            lake_error=lake_error,
            title=t("dashboard"),
        )

    # --- reviews ----------------------------------------------------------------------
    def entry(key: str):
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise Refusal(404, "no such application in the decision journal")
        found = journal.get(key)
        if found is None:
            raise Refusal(404, "no such application in the decision journal")
        return found

    @app.get("/reviews", response_class=HTMLResponse)
    def reviews(request: Request):
        ctx = need(request, "analyst")
        return render(
            ctx, "reviews.html", queue=journal.awaiting_review(), assigned=store.assignments()
        )

    @app.get("/reviews/{key}", response_class=HTMLResponse)
    def review_page(request: Request, key: str):
        ctx = need(request, "analyst")
        e = entry(key)
        records, records_error = [], False
        try:
            records = lake.linked_records(e.record.get("customer_key") or "")
        except Exception:
            log.exception("linked public records could not be read")
            records_error = True
        return render(
            ctx,
            "review.html",
            e=e,
            r=e.record,
            records=records,
            records_error=records_error,
            assignee=store.assignments().get(key),
            reviewers=[u.username for u in store.users() if u.has("reviewer") and not u.disabled],
            done=journal.review_of(key),
            title=f"#{e.seq}",
        )

    @app.post("/reviews/{key}/assign")
    def assign(request: Request, key: str, csrf: str = Form(""), assignee: str = Form("")):
        ctx = post(request, "reviewer", csrf)
        e = entry(key)
        to = assignee.strip() or ctx.me.username
        if to != ctx.me.username:
            if not ctx.me.has("risk_manager"):
                raise Refusal(403, "a reviewer assigns to themself; a risk manager assigns others")
            target = store.user(to)
            if target is None or target.disabled or not target.has("reviewer"):
                raise Refusal(422, f"{to!r} is not an active user with the reviewer role")
        store.assign(key, e.record.get("customer_key"), to, ctx.me.username)
        store.audit(ctx.me.username, "review.assign", f"decision #{e.seq}", to, ctx.client())
        return RedirectResponse(url(request, f"/reviews/{key}"), status_code=303)

    @app.post("/reviews/{key}/decide")
    def decide(
        request: Request,
        key: str,
        csrf: str = Form(""),
        decision: str = Form(""),
        reason: str = Form(""),
    ):
        ctx = post(request, "reviewer", csrf)
        e = entry(key)
        reason = reason.strip()
        if decision not in ("approve", "reject"):
            raise Refusal(422, "choose approve or reject")
        if not reason or len(reason) > MAX_TEXT:
            raise Refusal(422, f"give the reason for the decision (1 to {MAX_TEXT} characters)")
        record = {
            "kind": "review",
            "application_key": key,
            "customer_key": e.record.get("customer_key"),
            "original_seq": e.seq,
            "original_decision": e.record.get("decision"),
            "decision": decision,
            "reason": reason,
            "reviewer": ctx.me.username,
            "reviewed_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        try:
            journal.review(key, record)
        except ValueError as exc:
            raise Refusal(409, str(exc)) from None
        cache.clear()
        store.audit(
            ctx.me.username,
            "review.decide",
            f"decision #{e.seq}",
            {"decision": decision},
            ctx.client(),
        )
        return RedirectResponse(url(request, f"/reviews/{key}"), status_code=303)

    # --- alerts -------------------------------------------------------------------------
    @app.get("/alerts", response_class=HTMLResponse)
    def alerts_page(request: Request, all: str | None = None):
        ctx = need(request, "viewer")
        try:
            found, lake_error = lake.alerts(open_only=not all), False
        except Exception:
            log.exception("alerts could not be read")
            found, lake_error = [], True
        return render(ctx, "alerts.html", alerts=found, lake_error=lake_error)

    def alert_or_404(alert_id: str) -> dict:
        from riskcontrol.apply.alerts import AlertNotFound

        try:
            return lake.alert(alert_id)
        except AlertNotFound as exc:
            raise Refusal(404, str(exc)) from None

    @app.get("/alerts/{alert_id}", response_class=HTMLResponse)
    def alert_page(request: Request, alert_id: str):
        from riskcontrol.apply.alerts import CLOSED, STAGES, headline

        ctx = need(request, "viewer")
        a = alert_or_404(alert_id)
        rows = lake.trend(a["indicator"], a["segment_type"], a["segment"])
        last = rows[-1] if rows else {}
        chart = charts.trend(
            a["indicator"],
            [(r["as_of_date"].isoformat(), r["value"]) for r in rows if r["value"] is not None],
            {"warning": last.get("warning_threshold"), "critical": last.get("critical_threshold")},
        )
        breaches = [r for r in rows if r["status"] in ("warning", "critical")]
        nxt = None if a["stage"] == CLOSED else STAGES[STAGES.index(a["stage"]) + 1]
        return render(
            ctx,
            "alert.html",
            a=a,
            headline=headline(a),
            chart=chart,
            breaches=breaches,
            next_stage=nxt,
            title=a["alert_id"],
        )

    @app.post("/alerts/{alert_id}/advance")
    def advance(
        request: Request,
        alert_id: str,
        csrf: str = Form(""),
        note: str = Form(""),
        to_stage: str = Form(""),
    ):
        from riskcontrol.apply.alerts import ConcurrentChange, InvalidTransition

        ctx = post(request, "analyst", csrf)
        a = alert_or_404(alert_id)
        if len(note) > MAX_TEXT:
            raise Refusal(422, f"a note has at most {MAX_TEXT} characters")
        try:
            moved = lake.advance(a["alert_id"], ctx.me.username, note, to_stage or None)
        except (InvalidTransition, ConcurrentChange, ValueError) as exc:
            store.audit(
                ctx.me.username,
                "alert.refused",
                a["alert_id"],
                {"from": a["stage"], "to": to_stage},
                ctx.client(),
            )
            raise Refusal(409, str(exc)) from None
        store.audit(
            ctx.me.username,
            "alert.advance",
            a["alert_id"],
            {"from": a["stage"], "to": moved["stage"]},
            ctx.client(),
        )
        return RedirectResponse(url(request, f"/alerts/{a['alert_id']}"), status_code=303)

    # --- policy approvals (maker-checker) ------------------------------------------------
    def describe(p: dict) -> str:
        if p["kind"] == "cutoff":
            q = p["payload"]
            draft = f"draft v{q['draft_version']}" if "draft_version" in q else "cut-off"
            return (
                f"{draft}: approve below PD {q['approve_below_pd']:.3f}, reject from "
                f"{q['reject_from_pd']:.3f}"
            )
        if p["kind"] == "backtest":
            q = p["payload"]["policy"]
            return (
                f"policy {q['version']} (model {q['model']}): approve below PD "
                f"{q['approve_below_pd']:.3f}, reject from {q['reject_from_pd']:.3f}; "
                f"backtest {p['payload']['backtest_id']}"
            )
        return f"rule set {p['payload'].get('version', '')}"

    def current_rules() -> str:
        try:
            return rules_path.read_text(encoding="utf-8")
        except OSError:
            return ""

    @app.get("/policies", response_class=HTMLResponse)
    def policies(request: Request):
        ctx = need(request, "risk_manager")
        try:
            p = lake.active_policy()
            label = "configured defaults" if p.version == "config" else f"v{p.version}"
            active = (
                f"{label}: approve below PD {p.approve_below_pd:.3f}, reject from "
                f"{p.reject_from_pd:.3f}"
            )
        except Exception:
            log.exception("the active policy could not be read")
            active = i18n.translator(ctx.lang)("lake_unavailable")
        try:
            drafts = lake.drafts()
        except Exception:
            log.exception("the draft policies could not be read")
            drafts = []
        try:
            backtests = lake.backtests()
        except Exception:
            log.exception("the policy backtests could not be read")
            backtests = []
        return render(
            ctx,
            "policies.html",
            proposals=store.proposals(),
            active=active,
            drafts=drafts,
            backtests=backtests,
            rules_text=current_rules(),
        )

    @app.post("/policies")
    def propose(
        request: Request,
        csrf: str = Form(""),
        kind: str = Form(""),
        approve_below_pd: str = Form(""),
        reject_from_pd: str = Form(""),
        rules: str = Form(""),
        rationale: str = Form(""),
        draft_version: str = Form(""),
        backtest_id: str = Form(""),
    ):
        ctx = post(request, "risk_manager", csrf)
        rationale = rationale.strip()
        if not rationale or len(rationale) > MAX_TEXT:
            raise Refusal(422, f"say why (a rationale of 1 to {MAX_TEXT} characters)")
        if kind == "cutoff":
            try:
                low, high = float(approve_below_pd), float(reject_from_pd)
            except ValueError:
                raise Refusal(422, "the cut-offs are PDs such as 0.05 and 0.15") from None
            payload = {"approve_below_pd": low, "reject_from_pd": high}
            preview = cutoff_preview(low, high)
        elif kind == "draft":
            found = [d for d in lake.drafts() if str(d["policy_version"]) == draft_version]
            if not found:
                raise Refusal(422, f"no draft cut-off policy v{draft_version}: see the list")
            (d,) = found
            kind = "cutoff"
            payload = {
                "draft_version": int(d["policy_version"]),
                "approve_below_pd": float(d["approve_below_pd"]),
                "reject_from_pd": float(d["cutoff_pd"]),
            }
            preview = cutoff_preview(payload["approve_below_pd"], payload["reject_from_pd"])
            preview["sweep"] = {
                k: d[k] for k in ("approval_rate", "bad_rate", "residual_risk", "population")
            }
        elif kind == "backtest":
            payload, preview = backtested(backtest_id)
        elif kind == "rules":
            from riskcontrol.serve.engine import RULE_FIELDS
            from riskcontrol.serve.rules import RulesError, _parse

            rules = rules.replace("\r\n", "\n")  # a form's textarea sends CRLF
            digest = hashlib.sha256(rules.encode()).hexdigest()
            try:
                parsed = _parse(rules, "the proposed rules", RULE_FIELDS, digest)
            except RulesError as exc:
                raise Refusal(422, str(exc)) from None
            payload = {"rules": rules, "version": parsed.version, "digest": digest}
            preview = {
                "summary": f"{len(parsed.rules)} rules, version {parsed.version}, products "
                f"{', '.join(sorted(parsed.products))}: valid"
            }
        else:
            raise Refusal(422, "propose a cut-off or a rule set")
        pid = store.propose(kind, payload, preview, rationale, ctx.me.username)
        store.audit(
            ctx.me.username,
            "policy.propose",
            f"#{pid}",
            {"version": payload["version"]} if kind == "rules" else payload,
            ctx.client(),
        )
        return RedirectResponse(url(request, f"/policies/{pid}"), status_code=303)

    def service_reject_rules() -> tuple[str, ...]:
        """The codes of the decision service's reject rules (its rules file)."""
        from riskcontrol.apply.policylab import reject_codes
        from riskcontrol.serve.engine import service_rules

        return reject_codes(service_rules(lake.settings, rules_path))

    def backtested(backtest_id: str) -> tuple[dict, dict]:
        """A backtest's proposal: its policy and window, and its figures and guard flags
        for the approver."""
        from riskcontrol.apply import policylab

        found = [b for b in lake.backtests() if b["backtest_id"] == backtest_id]
        if not found:
            raise Refusal(422, f"no backtest {backtest_id!r}: choose one from the list")
        (b,) = found
        try:
            policy = policylab.Policy.from_dict(b["proposed"])
            policylab.activatable(policy, service_reject_rules())
        except ValueError as exc:
            raise Refusal(422, str(exc)) from None
        payload = {"backtest_id": backtest_id, "policy": b["proposed"], "window": b["window"]}
        headline = b["policies"].get("fuzzy", b["policies"]["none"])["proposed"]
        preview = {
            **{k: b[k] for k in ("active", "window", "policies", "swaps", "flags", "notes")},
            "created_at": str(b["created_at"])[:19],
            "figures": {
                "applications": headline["applications"]["value"],
                "approval_rate": headline["approval_rate"]["value"],
                "bad_rate": headline["bad_rate"]["value"],
            },
        }
        return payload, preview

    def cutoff_preview(low: float, high: float) -> dict:
        """The current and the proposed cut-off on the service's last 30 days."""
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=data.DAYS)
        decided = journal.decided_since(since)
        try:
            proposed = data.preview_cutoff(decided, low, high, lgd)
        except ValueError as exc:
            raise Refusal(422, str(exc)) from None
        policy = lake.active_policy()
        current = data.preview_cutoff(decided, policy.approve_below_pd, policy.reject_from_pd, lgd)
        return {
            "current": current,
            "proposed": proposed,
            "current_policy": f"v{policy.version} ({policy.approve_below_pd:.3f} / "
            f"{policy.reject_from_pd:.3f})",
        }

    def proposal(pid: int) -> dict:
        found = store.proposals(pid)
        if not found:
            raise Refusal(404, f"no proposal #{pid}")
        return found[0]

    @app.get("/policies/{pid}", response_class=HTMLResponse)
    def policy_page(request: Request, pid: int):
        ctx = need(request, "risk_manager")
        p = proposal(pid)
        from riskcontrol.apply.backtest import METHODS

        return render(ctx, "policy.html", p=p, title=f"#{pid}", methods=METHODS)

    @app.post("/policies/{pid}/decide")
    def decide_policy(
        request: Request,
        pid: int,
        csrf: str = Form(""),
        decision: str = Form(""),
        note: str = Form(""),
    ):
        ctx = post(request, "approver", csrf)
        p = proposal(pid)
        if p["proposer"] == ctx.me.username:
            store.audit(ctx.me.username, "policy.refused", f"#{pid}", "own proposal", ctx.client())
            raise Refusal(
                403,
                "maker-checker: the proposer may not approve or reject their own "
                "proposal; another approver decides",
            )
        if decision not in ("approve", "reject"):
            raise Refusal(422, "approve or reject")
        status = "approved" if decision == "approve" else "rejected"
        if not store.decide_proposal(pid, status, ctx.me.username, note.strip()[:MAX_TEXT]):
            raise Refusal(409, f"proposal #{pid} was decided already")
        store.audit(ctx.me.username, f"policy.{status}", f"#{pid}", None, ctx.client())
        if status == "approved":
            p = proposal(pid)
            try:
                if p["kind"] == "cutoff" and "draft_version" in p["payload"]:
                    version = lake.activate_draft(p["payload"]["draft_version"])
                    what = f"active as gold.cutoff_policy v{version}"
                elif p["kind"] == "cutoff":
                    what = f"active as gold.cutoff_policy v{lake.activate_cutoff(p)}"
                elif p["kind"] == "backtest":
                    what = lake.activate_backtested(p, service_reject_rules())
                else:
                    write_rules(rules_path, p["payload"]["rules"])
                    what = f"active as {rules_path.name} {p['payload']['version']}"
            except Exception as exc:
                log.exception("an approved proposal could not be activated")
                what = f"activation failed ({type(exc).__name__}): approve a new proposal"
            store.mark_activated(pid, what)
            store.audit(ctx.me.username, "policy.activate", f"#{pid}", what, ctx.client())
        return RedirectResponse(url(request, f"/policies/{pid}"), status_code=303)

    # --- audit and users ----------------------------------------------------------------
    @app.get("/audit", response_class=HTMLResponse)
    def audit(request: Request, actor: str = "", action: str = ""):
        ctx = need(request, "risk_manager")
        rows = store.audit_rows(actor.strip() or None, action.strip() or None)
        return render(ctx, "audit.html", rows=rows, actor=actor, action=action)

    @app.get("/users", response_class=HTMLResponse)
    def users(request: Request):
        ctx = need(request, "admin")
        return render(ctx, "users.html", users=store.users())

    @app.post("/users/{username}/disable")
    def disable(request: Request, username: str, csrf: str = Form("")):
        from riskcontrol.workbench.store import UserError

        ctx = post(request, "admin", csrf)
        if username == ctx.me.username:
            raise Refusal(409, "an admin does not disable themself")
        try:
            store.disable(username, ctx.me.username)
        except UserError as exc:
            raise Refusal(404, str(exc)) from None
        return RedirectResponse(url(request, "/users"), status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return {"status": "ok"}

    return app


def check_origin(request: Request) -> None:
    """A browser's cross-site POST names another origin: refused (SameSite=Strict already
    keeps the session cookie off it; this covers a missing token check too)."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise Refusal(403, "a form of another site may not post here")


def write_rules(path: Path, text: str) -> None:
    """Replace the rules file atomically (the service reloads it when it changes)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rules-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build(settings: Settings, spark=None, rules: Path | None = None) -> FastAPI:
    """The workbench over the project's journal, store, lakehouse and rules file."""
    from riskcontrol.serve.journal import default_path as journal_path
    from riskcontrol.serve.rules import rules_path
    from riskcontrol.workbench.store import default_path

    return create_workbench(
        settings,
        DecisionJournal(journal_path(settings.home)),
        WorkbenchStore(default_path(settings.home)),
        data.Lake(settings, spark),
        rules or rules_path(settings),
    )
