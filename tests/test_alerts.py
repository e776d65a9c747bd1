"""Alerts: quadrants, opening from breaches, the five-stage workflow, the notifiers and
their delivery until sent (ops.alert_notifications)."""

from __future__ import annotations

import asyncore
import contextlib
import datetime as dt
import email
import hashlib
import json
import logging
import smtpd
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import TEST_PII_KEY, make_settings

from riskcontrol.apply.alerts import (
    PLAYBOOKS,
    STAGES,
    AlertNotFound,
    InvalidTransition,
    advance,
    alert_quadrant,
    format_alert,
    format_table,
    get_alert,
    list_alerts,
    open_alerts,
    reconcile,
    transition,
)
from riskcontrol.apply.alerts import _frame as alert_frame
from riskcontrol.apply.notify import (
    EmailNotifier,
    LogNotifier,
    WebhookNotifier,
    alert_json,
    deliver,
    delivery_state,
    error_text,
    notifiers_from_settings,
    notify,
)
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import GOLD_ALERTS, GOLD_WARNING_INDICATORS, OPS_ALERT_NOTIFICATIONS

D1, D2, D3, D4, D5 = (dt.date(2026, 3, d) for d in range(1, 6))
NOW = dt.datetime(2026, 3, 4, 8, 0)  # naive: UTC


def _id(indicator: str, segment_type: str, segment: str, first: dt.date) -> str:
    """The documented alert id: SHA-256 of the key and first breach day, 16 hex chars."""
    return hashlib.sha256(f"{indicator}|{segment_type}|{segment}|{first}".encode()).hexdigest()[:16]


def _row(day, indicator, segment_type, segment, value, status, exposure, warn=0.05, crit=0.10):
    return (
        day,
        indicator,
        segment_type,
        segment,
        value,
        None,
        None,
        warn,
        crit,
        status,
        exposure,
        "run-1",
        NOW,
        None,  # threshold_source
    )


PARTNER_A = [  # ok, then warning, then critical; 250000 x LGD 0.45 = 112500: high impact
    _row(D1, "dpd30_rate", "channel", "partner_a", 0.04, "ok", 230_000.0),
    _row(D2, "dpd30_rate", "channel", "partner_a", 0.06, "warning", 240_000.0),
    _row(D3, "dpd30_rate", "channel", "partner_a", 0.12, "critical", 250_000.0),
]
OTHERS = [
    *[_row(d, "dpd30_rate", "channel", "app", 0.02, "ok", 900_000.0) for d in (D1, D2, D3)],
    _row(D3, "dpd30_rate", "province", "Hainan", 0.50, "too_few", 4_000.0),
    _row(D2, "approval_rate_shift", "overall", "all", 0.08, "warning", None, 0.05, 0.15),
    _row(D3, "approval_rate_shift", "overall", "all", 0.01, "ok", None, 0.05, 0.15),
]


def _indicators(spark, rows):
    return spark.createDataFrame(rows, schema=GOLD_WARNING_INDICATORS.schema)


def _identify(note: str, at: dt.datetime = NOW, by: str = "system") -> dict:
    return {"stage": "identify", "at": at, "by": by, "note": note}


PARTNER_A_ALERT = {
    "alert_id": _id("dpd30_rate", "channel", "partner_a", D2),
    "indicator": "dpd30_rate",
    "segment_type": "channel",
    "segment": "partner_a",
    "severity": "critical",
    "first_breach_date": D2,
    "last_breach_date": D3,
    "value": 0.12,
    "threshold": 0.10,
    "exposure": 250_000.0,
    "quadrant": "D",
    "playbook": PLAYBOOKS["D"],
    "stage": "identify",
    "history": [
        _identify(
            "CRITICAL breach: dpd30_rate channel=partner_a = 0.12 breaches its critical "
            "threshold 0.1 on 2026-03-03; breaching since 2026-03-02 (2 breach days)"
        )
    ],
    "opened_at": NOW,
    "updated_at": NOW,
}


# --- quadrants and playbooks ----------------------------------------------------------


def test_alert_quadrant_on_the_exact_boundaries():
    # 200000 x 0.5 = 100000 exactly: at the threshold is high impact.
    assert alert_quadrant("warning", 200_000.0, 0.5, 100_000.0) == "B"
    assert alert_quadrant("critical", 200_000.0, 0.5, 100_000.0) == "D"
    assert alert_quadrant("warning", 199_999.98, 0.5, 100_000.0) == "A"
    assert alert_quadrant("critical", 199_999.98, 0.5, 100_000.0) == "C"
    assert alert_quadrant("warning", 0.0, 0.5, 0.0) == "B"  # a zero threshold: all high impact
    with pytest.raises(ValueError, match="severity must be one of"):
        alert_quadrant("ok", 1.0, 0.5, 1.0)


def test_every_quadrant_has_a_playbook_of_three_to_five_steps():
    assert sorted(PLAYBOOKS) == ["A", "B", "C", "D"]
    assert [len(PLAYBOOKS[q]) for q in "ABCD"] == [3, 4, 4, 5]


# --- opening alerts -------------------------------------------------------------------


def test_open_alerts_opens_one_per_breaching_key_and_a_rerun_changes_nothing(spark, settings):
    indicators = _indicators(spark, PARTNER_A + OTHERS)
    opened = open_alerts(spark, settings, indicators, now=NOW)
    shift = {
        "alert_id": _id("approval_rate_shift", "overall", "all", D2),
        "indicator": "approval_rate_shift",
        "segment_type": "overall",
        "segment": "all",
        "severity": "warning",
        "first_breach_date": D2,
        "last_breach_date": D2,
        "value": 0.08,
        "threshold": 0.05,
        "exposure": None,
        "quadrant": "A",
        "playbook": PLAYBOOKS["A"],
        "stage": "identify",
        "history": [
            _identify(
                "WARNING breach: approval_rate_shift overall=all = 0.08 breaches its warning "
                "threshold 0.05 on 2026-03-02"
            )
        ],
        "opened_at": NOW,
        "updated_at": NOW,
    }
    assert opened == [shift, PARTNER_A_ALERT]
    # As stored: critical first, then by quadrant.
    assert list_alerts(spark, settings) == [PARTNER_A_ALERT, shift]

    version = lakehouse.version(spark, GOLD_ALERTS, settings)
    later = NOW + dt.timedelta(hours=1)
    assert open_alerts(spark, settings, indicators, now=later) == []
    assert lakehouse.version(spark, GOLD_ALERTS, settings) == version


def test_reconcile_escalates_an_open_alert_without_touching_its_workflow():
    at_warning = {
        **PARTNER_A_ALERT,
        "severity": "warning",
        "last_breach_date": D2,
        "value": 0.06,
        "threshold": 0.05,
        "exposure": 40_000.0,
        "quadrant": "A",
        "playbook": PLAYBOOKS["A"],
        "stage": "assess",
        "history": [
            _identify("WARNING breach"),
            {"stage": "assess", "at": NOW, "by": "ana", "note": ""},
        ],
    }
    later = NOW + dt.timedelta(days=1)
    breaches = [  # same exposure as the alert: only the probability rises, A -> C
        dict(zip(("as_of_date", "value", "status", "exposure"), r, strict=True))
        | {
            "indicator": "dpd30_rate",
            "segment_type": "channel",
            "segment": "partner_a",
            "warning_threshold": 0.05,
            "critical_threshold": 0.10,
        }
        for r in [(D2, 0.06, "warning", 40_000.0), (D3, 0.12, "critical", 40_000.0)]
    ]
    kwargs = {"now": later, "by": "system", "lgd": 0.45, "impact_threshold": 100_000.0}
    write, announce = reconcile(breaches, [at_warning], **kwargs)
    escalated = {
        **at_warning,
        "severity": "critical",
        "last_breach_date": D3,
        "value": 0.12,
        "threshold": 0.10,
        "quadrant": "C",
        "playbook": PLAYBOOKS["C"],
        "history": [
            *at_warning["history"],
            _identify(
                "escalated warning -> critical: dpd30_rate channel=partner_a = 0.12 breaches "
                "its critical threshold 0.1 on 2026-03-03; quadrant A -> C (exposure 40,000): "
                "playbook replaced",
                at=later,
            ),
        ],
        "updated_at": later,
    }
    assert write == [escalated] and announce == [escalated]
    # A later warning day extends the critical alert: written, never de-escalated, not
    # announced; the same breaches again change nothing.
    d4 = {**breaches[0], "as_of_date": D4, "value": 0.07, "exposure": 41_000.0}
    write, announce = reconcile([*breaches, d4], [escalated], **kwargs)
    extended = {
        **escalated,
        "last_breach_date": D4,
        "value": 0.07,
        "threshold": 0.05,
        "exposure": 41_000.0,
    }
    assert (write, announce) == ([extended], [])
    assert reconcile([*breaches, d4], [extended], **kwargs) == ([], [])


# --- the workflow ---------------------------------------------------------------------


def test_transition_refuses_everything_but_the_next_stage():
    alert = {**PARTNER_A_ALERT, "stage": "assess"}
    with pytest.raises(InvalidTransition, match="at stage 'assess'.*next stage is 'decide', not"):
        transition(alert, "ana", "x", to_stage="dispose")  # skip
    with pytest.raises(InvalidTransition, match="next stage is 'decide', not 'identify'"):
        transition(alert, "ana", "x", to_stage="identify")  # back
    with pytest.raises(InvalidTransition, match="next stage is 'decide', not 'assess'"):
        transition(alert, "ana", "x", to_stage="assess")  # repeat
    with pytest.raises(InvalidTransition, match="'assess' to 'decide' needs a note"):
        transition(alert, "ana", "  ")
    with pytest.raises(InvalidTransition, match="is closed"):
        transition({**alert, "stage": "feedback"}, "ana", "x")
    with pytest.raises(ValueError, match="who takes the step"):
        transition(alert, "", "x")
    # assess needs no note
    moved = transition(PARTNER_A_ALERT, "ana", "", now=NOW)
    assert (moved["stage"], moved["history"][-1]) == (
        "assess",
        {"stage": "assess", "at": NOW, "by": "ana", "note": ""},
    )


def test_the_full_workflow_refusals_and_a_new_breach_after_closing(spark, settings):
    open_alerts(spark, settings, _indicators(spark, PARTNER_A), now=NOW)
    alert_id = PARTNER_A_ALERT["alert_id"]
    steps = [
        ("assess", "ana", "24 new partner_a loans 30+ DPD this week, all one sub-agent"),
        ("decide", "ben", "pause partner_a's sub-agent 17; collections outreach"),
        ("dispose", "ana", "sub-agent paused 2026-03-05; 18 of 24 loans contacted"),
        ("feedback", "cro", "DPD30 back to 0.05 on 2026-03-20; agent contract ended"),
    ]
    times = [NOW + dt.timedelta(hours=h) for h in (1, 2, 2, 5)]  # equal times allowed

    # Refused steps leave the stored alert and the table untouched.
    version = lakehouse.version(spark, GOLD_ALERTS, settings)
    with pytest.raises(InvalidTransition, match="only allowed next stage is 'assess'"):
        advance(spark, settings, alert_id, "ana", "skip", to_stage="decide")
    with pytest.raises(AlertNotFound, match="riskctl alerts list"):
        advance(spark, settings, "ffffffffffffffff", "ana", "x")
    assert get_alert(spark, settings, alert_id) == PARTNER_A_ALERT
    assert lakehouse.version(spark, GOLD_ALERTS, settings) == version

    for (stage, by, note), at in zip(steps, times, strict=True):
        # An id prefix is enough when it is unique.
        moved = advance(spark, settings, alert_id[:6], by, note, to_stage=stage, now=at)
        assert moved["stage"] == stage
    stored = get_alert(spark, settings, alert_id)
    assert stored == {
        **PARTNER_A_ALERT,
        "stage": "feedback",
        "history": PARTNER_A_ALERT["history"]
        + [
            {"stage": s, "at": at, "by": by, "note": note}
            for (s, by, note), at in zip(steps, times, strict=True)
        ],
        "updated_at": times[-1],
    }
    assert [h["stage"] for h in stored["history"]] == list(STAGES)
    stamps = [h["at"] for h in stored["history"]]
    assert stamps == sorted(stamps)

    version = lakehouse.version(spark, GOLD_ALERTS, settings)
    with pytest.raises(InvalidTransition, match="is closed"):
        advance(spark, settings, alert_id, "ana", "reopen")
    assert lakehouse.version(spark, GOLD_ALERTS, settings) == version  # nothing written

    # The old breaches do not reopen it; a breach after it opens a new alert.
    again = _row(D5, "dpd30_rate", "channel", "partner_a", 0.11, "critical", 260_000.0)
    later = NOW + dt.timedelta(days=2)
    opened = open_alerts(spark, settings, _indicators(spark, [*PARTNER_A, again]), now=later)
    assert [(a["alert_id"], a["first_breach_date"], a["stage"]) for a in opened] == [
        (_id("dpd30_rate", "channel", "partner_a", D5), D5, "identify")
    ]
    assert list_alerts(spark, settings) == opened  # the closed one is not listed as open
    everything = list_alerts(spark, settings, open_only=False)
    assert [(a["alert_id"], a["stage"]) for a in everything] == [
        (alert_id, "feedback"),
        (opened[0]["alert_id"], "identify"),
    ]


def test_format_table_and_format_alert_show_the_facts_playbook_and_history():
    closed = transition(
        {**PARTNER_A_ALERT, "stage": "dispose"}, "cro", "back under threshold", now=NOW
    )
    assert format_table([PARTNER_A_ALERT]).splitlines() == [
        "ID                SEVERITY  Q  STAGE     INDICATOR   SEGMENT            FIRST       "
        "LAST        VALUE  THRESHOLD  EXPOSURE",
        f"{PARTNER_A_ALERT['alert_id']}  critical  D  identify  dpd30_rate  channel=partner_a  "
        "2026-03-02  2026-03-03   0.12        0.1   250,000",
    ]
    assert format_table([]) == "no alerts"
    text = format_alert(closed)
    assert text.splitlines()[:3] == [
        f"Alert {PARTNER_A_ALERT['alert_id']}: CRITICAL dpd30_rate channel=partner_a (quadrant D)",
        "  stage      feedback (closed)",
        "  breach     2026-03-02 .. 2026-03-03: value 0.12 against threshold 0.1",
    ]
    assert f"  5. {PLAYBOOKS['D'][4]}" in text
    assert text.splitlines()[-1] == (
        "  2026-03-04 08:00:00 UTC  feedback  cro: back under threshold"
    )


# --- notifiers ------------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self):  # http.server calls it by this name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(500 if self.path == "/fail" else 204)
        self.end_headers()

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def webhook_server():
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Hook.received
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_posts_the_alert_as_json_and_failures_stop_nothing(webhook_server, caplog):
    url, received = webhook_server
    caplog.set_level(logging.WARNING, logger="riskcontrol.apply.notify")
    assert notify([PARTNER_A_ALERT], [WebhookNotifier(url + "/hook"), LogNotifier()]) == []
    [(path, content_type, body)] = received
    assert (path, content_type) == ("/hook", "application/json")
    assert json.loads(body) == {
        "alert_id": PARTNER_A_ALERT["alert_id"],
        "indicator": "dpd30_rate",
        "segment_type": "channel",
        "segment": "partner_a",
        "severity": "critical",
        "first_breach_date": "2026-03-02",
        "last_breach_date": "2026-03-03",
        "value": 0.12,
        "threshold": 0.10,
        "exposure": 250000.0,
        "quadrant": "D",
        "playbook": PLAYBOOKS["D"],
        "stage": "identify",
        "history": [
            {
                "stage": "identify",
                "at": "2026-03-04T08:00:00",
                "by": "system",
                "note": PARTNER_A_ALERT["history"][0]["note"],
            }
        ],
        "opened_at": "2026-03-04T08:00:00",
        "updated_at": "2026-03-04T08:00:00",
    }

    caplog.clear()
    closed = WebhookNotifier(f"http://127.0.0.1:{_closed_port()}/hook", timeout=2)
    failing = WebhookNotifier(url + "/fail")
    failures = notify([PARTNER_A_ALERT], [closed, failing, LogNotifier()])
    assert [(n, a) for n, a, _ in failures] == [("webhook", PARTNER_A_ALERT["alert_id"])] * 2
    assert failures[0][2].startswith("URLError: ") and "refused" in failures[0][2]
    assert failures[1][2] == "HTTPError: HTTP Error 500: Internal Server Error"
    # The log notifier still ran after both failures.
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR][-1] == (
        f"alert {PARTNER_A_ALERT['alert_id']}: CRITICAL dpd30_rate channel=partner_a "
        "(quadrant D), stage identify"
    )


class _SmtpSink(smtpd.SMTPServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, list[str], bytes]] = []

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        self.received.append((mailfrom, rcpttos, data))


def test_email_reaches_a_real_smtp_server_on_loopback():
    channels: dict = {}
    server = _SmtpSink(("127.0.0.1", 0), None, map=channels, decode_data=False)
    thread = threading.Thread(
        target=asyncore.loop, kwargs={"timeout": 0.05, "map": channels}, daemon=True
    )
    thread.start()
    try:
        port = server.socket.getsockname()[1]
        notifier = EmailNotifier("127.0.0.1", port, "risk@lender.test", ["a@x.test", "b@x.test"])
        assert notify([PARTNER_A_ALERT], [notifier]) == []
    finally:
        server.close()
        thread.join(5)
    [(mailfrom, rcpttos, data)] = server.received
    message = email.message_from_bytes(data)
    assert (mailfrom, rcpttos) == ("risk@lender.test", ["a@x.test", "b@x.test"])
    assert message["Subject"] == "[riskcontrol] CRITICAL dpd30_rate channel=partner_a (quadrant D)"
    assert message["To"] == "a@x.test, b@x.test"
    assert message.get_payload(decode=True).decode().rstrip("\n") == format_alert(PARTNER_A_ALERT)


def test_notifiers_from_settings_builds_the_named_kinds_or_says_what_to_set(tmp_path):
    none = {"webhook_url": None, "smtp_host": None, "alert_email_to": None}
    with pytest.raises(ValueError, match="unknown notifier.*pager.*RISK_NOTIFIERS"):
        notifiers_from_settings(make_settings(tmp_path, notifiers="log,pager", **none))
    with pytest.raises(ValueError, match="RISK_WEBHOOK_URL"):
        notifiers_from_settings(make_settings(tmp_path, notifiers="webhook", **none))
    with pytest.raises(ValueError, match="RISK_SMTP_HOST"):
        notifiers_from_settings(make_settings(tmp_path, notifiers="email", **none))
    with pytest.raises(ValueError, match="RISK_ALERT_EMAIL_TO"):
        notifiers_from_settings(
            make_settings(tmp_path, notifiers="email", **{**none, "smtp_host": "mail"})
        )
    with pytest.raises(ValueError, match="must be http"):
        notifiers_from_settings(
            make_settings(tmp_path, notifiers="webhook", **{**none, "webhook_url": "file:///x"})
        )
    built = notifiers_from_settings(
        make_settings(
            tmp_path,
            notifiers=" log, webhook ,email",
            webhook_url="http://127.0.0.1:9/hook",
            smtp_host="mail",
            smtp_port=2525,
            alert_email_to="a@x.test, b@x.test",
        )
    )
    assert [type(n) for n in built] == [LogNotifier, WebhookNotifier, EmailNotifier]
    assert built[1].url == "http://127.0.0.1:9/hook"
    assert (built[2].host, built[2].port, built[2].recipients) == (
        "mail",
        2525,
        ["a@x.test", "b@x.test"],
    )


# --- delivery until sent: ops.alert_notifications ---------------------------------------

PARTNER = PARTNER_A_ALERT["alert_id"]  # critical, quadrant D
SHIFT = _id("approval_rate_shift", "overall", "all", D2)  # warning, quadrant A
REFUSED = "URLError: <urlopen error [Errno 111] Connection refused>"
LATER = NOW + dt.timedelta(hours=1)


@contextlib.contextmanager
def _receiver(port: int):
    """A real webhook receiver on ``port`` (loopback); yields the JSON bodies POSTed."""
    posts: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # http.server calls it by this name
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield posts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _delivery(alert_id, notifier, state, attempts, error, at, notified, level=None):
    severity, quadrant = level or (("critical", "D") if alert_id == PARTNER else ("warning", "A"))
    return {
        "alert_id": alert_id,
        "notifier": notifier,
        "severity": severity,
        "quadrant": quadrant,
        "state": state,
        "attempts": attempts,
        "last_error": error,
        "last_attempt_at": at,
        "notified_at": notified,
    }


def test_a_failed_send_stays_pending_and_the_retry_delivers_it_once(spark, settings):
    port = _closed_port()  # the webhook is down: nothing listens there yet
    webhook = [WebhookNotifier(f"http://127.0.0.1:{port}/hook", timeout=2)]
    indicators = _indicators(spark, PARTNER_A + OTHERS)

    # First run: both alerts are committed to gold.alerts, then every send fails.
    assert len(open_alerts(spark, settings, indicators, now=NOW)) == 2
    first = deliver(spark, settings, webhook, now=NOW)
    assert first.sent == []
    assert first.failures == [("webhook", PARTNER, REFUSED), ("webhook", SHIFT, REFUSED)]
    assert first.undelivered == 2
    assert first.summary() == (
        "0 notification(s) sent; 2 UNDELIVERED, pending in ops.alert_notifications (the next "
        f"run sends them again): webhook {PARTNER}: {REFUSED}; webhook {SHIFT}: {REFUSED}"
    )
    assert delivery_state(spark, settings) == [  # by alert id
        _delivery(PARTNER, "webhook", "pending", 1, REFUSED, NOW, None),
        _delivery(SHIFT, "webhook", "pending", 1, REFUSED, NOW, None),
    ]

    with _receiver(port) as posts:
        # The retry (Airflow task retry, `riskctl warn` again): no alert is new, yet
        # exactly the two pending ones go out, once each, and are recorded sent.
        assert open_alerts(spark, settings, indicators, now=LATER) == []
        retry = deliver(spark, settings, webhook, now=LATER)
        assert (retry.sent, retry.failures) == ([("webhook", PARTNER), ("webhook", SHIFT)], [])
        assert retry.summary() == "2 notification(s) sent"
        assert posts == [json.loads(alert_json(a)) for a in list_alerts(spark, settings)]
        assert [p["alert_id"] for p in posts] == [PARTNER, SHIFT]
        assert delivery_state(spark, settings) == [
            _delivery(PARTNER, "webhook", "sent", 2, None, LATER, LATER),
            _delivery(SHIFT, "webhook", "sent", 2, None, LATER, LATER),
        ]

        # A third run sends nothing and commits nothing: the receiver got 2 posts in all.
        version = lakehouse.version(spark, OPS_ALERT_NOTIFICATIONS, settings)
        third = deliver(spark, settings, webhook, now=LATER + dt.timedelta(hours=1))
        assert (third.sent, third.failures, third.summary()) == ([], [], "0 notification(s) sent")
        assert len(posts) == 2
    assert lakehouse.version(spark, OPS_ALERT_NOTIFICATIONS, settings) == version


def test_a_notifier_added_later_gets_the_open_alerts_once(spark, settings, caplog):
    caplog.set_level(logging.WARNING, logger="riskcontrol.apply.notify")

    def logged() -> list[str]:  # alert ids the log notifier wrote
        return [
            r.getMessage().split(":")[0].removeprefix("alert ")
            for r in caplog.records
            if r.getMessage().startswith("alert ") and r.funcName == "send"
        ]

    open_alerts(spark, settings, _indicators(spark, PARTNER_A + OTHERS), now=NOW)
    assert deliver(spark, settings, [LogNotifier()], now=NOW).sent == [
        ("log", PARTNER),
        ("log", SHIFT),
    ]
    assert logged() == [PARTNER, SHIFT]
    # The shift alert is worked to closure: a closed alert is not sent to a new notifier.
    closed = {**get_alert(spark, settings, SHIFT), "stage": "feedback"}
    lakehouse.merge(alert_frame(spark, [closed]), GOLD_ALERTS, settings)

    port = _closed_port()
    with _receiver(port) as posts:
        both = [LogNotifier(), WebhookNotifier(f"http://127.0.0.1:{port}/hook", timeout=2)]
        added = deliver(spark, settings, both, now=LATER)
        assert (added.sent, added.failures) == ([("webhook", PARTNER)], [])
        again = deliver(spark, settings, both, now=LATER + dt.timedelta(hours=1))
        assert (again.sent, again.failures) == ([], [])
    assert [p["alert_id"] for p in posts] == [PARTNER]  # once
    assert logged() == [PARTNER, SHIFT]  # the log notifier got nothing twice
    assert delivery_state(spark, settings) == [
        _delivery(PARTNER, "log", "sent", 1, None, NOW, NOW),
        _delivery(PARTNER, "webhook", "sent", 1, None, LATER, LATER),
        _delivery(SHIFT, "log", "sent", 1, None, NOW, NOW),
    ]


def test_an_escalation_is_announced_again_once(spark, settings):
    port = _closed_port()
    webhook = [WebhookNotifier(f"http://127.0.0.1:{port}/hook", timeout=2)]
    with _receiver(port) as posts:
        # D2 warning (240,000 x 0.45 = 108,000: high impact, B), then D3 critical (D).
        open_alerts(spark, settings, _indicators(spark, PARTNER_A[:2]), now=NOW)
        assert deliver(spark, settings, webhook, now=NOW).sent == [("webhook", PARTNER)]
        [escalated] = open_alerts(spark, settings, _indicators(spark, PARTNER_A), now=LATER)
        assert (escalated["severity"], escalated["quadrant"]) == ("critical", "D")
        assert deliver(spark, settings, webhook, now=LATER).sent == [("webhook", PARTNER)]
        assert deliver(spark, settings, webhook, now=LATER).sent == []
    assert [(p["alert_id"], p["severity"], p["quadrant"]) for p in posts] == [
        (PARTNER, "warning", "B"),
        (PARTNER, "critical", "D"),
    ]
    assert delivery_state(spark, settings) == [
        _delivery(PARTNER, "webhook", "sent", 1, None, LATER, LATER),
    ]


def test_the_recorded_error_has_no_webhook_token_credential_key_or_email(tmp_path):
    url = "https://bot:pw@hooks.chat.test:8443/services/T01/B02/s3cr3tT0ken?sig=abc"
    hook = WebhookNotifier(url)
    error = ValueError(
        f"cannot post to {url}\n(path /services/T01/B02/s3cr3tT0ken?sig=abc) for "
        f"risk.team@lender.test with key {TEST_PII_KEY}"
    )
    assert error_text(error, hook, make_settings(tmp_path)) == (
        "ValueError: cannot post to https://hooks.chat.test:8443/*** (path /***) for *** "
        "with key ***"
    )
    assert error_text(OSError("x" * 600), LogNotifier()) == "OSError: " + "x" * 488 + "..."
