"""Alert notifications through pluggable notifiers: the log, a webhook, e-mail.

``RISK_NOTIFIERS`` lists the kinds to use (``log,webhook,email``); each kind is one entry
of ``NOTIFIER_KINDS`` that builds it from the settings, so a new channel (a chat tool, a
pager) is one class and one entry. A notifier that fails never stops the others.

Alerts are sent until delivered: ``deliver`` keeps one row per alert and notifier in
``ops.alert_notifications`` and, on every run, sends each open alert of ``gold.alerts``
to each configured notifier that has not got it yet (no row, a row still ``pending``, or
a row ``sent`` for a lower severity or quadrant: an escalation is announced again). A
success records ``sent`` and ``notified_at``; a failure leaves the row ``pending`` with its
attempt count and the error (redacted: no URL path, credential, key or e-mail address),
for the next run (an Airflow retry, ``riskctl warn`` again) to send. So a webhook down
while the alert was committed loses nothing, a notifier added later gets the open alerts
once, and a run repeated after success sends nothing. Delivery is at least once: a run
killed between a send and its record sends that alert again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import smtplib
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from riskcontrol.apply.alerts import _utc_naive, format_alert, headline, list_alerts
from riskcontrol.core import lakehouse, locks, redact
from riskcontrol.core.catalog import OPS_ALERT_NOTIFICATIONS
from riskcontrol.core.config import Settings

log = logging.getLogger(__name__)


class Notifier(ABC):
    """Sends one alert somewhere; raises when it could not.

    ``name`` keys the notifier's delivery state (``ops.alert_notifications``): keep it
    stable, since a new name is a new notifier and gets every open alert once."""

    name: str

    @abstractmethod
    def send(self, alert: dict) -> None: ...

    def redact(self, text: str) -> str:
        """``text`` (an error of ``send``) without what this notifier must not show."""
        return text


def alert_json(alert: dict) -> str:
    """The alert as JSON, dates and timestamps in ISO 8601."""

    def iso(value: object) -> str:
        if isinstance(value, dt.date | dt.datetime):
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return json.dumps(alert, default=iso, sort_keys=True)


class LogNotifier(Notifier):
    """Writes the alert's headline to the log (critical at ERROR, warning at WARNING)."""

    name = "log"

    def send(self, alert: dict) -> None:
        level = logging.ERROR if alert["severity"] == "critical" else logging.WARNING
        log.log(level, "alert %s: %s, stage %s", alert["alert_id"], headline(alert), alert["stage"])


class WebhookNotifier(Notifier):
    """POSTs the alert as JSON to ``url``; a non-2xx answer is a failure."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = 10):
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"webhook URL must be http(s)://..., not {url!r} (RISK_WEBHOOK_URL)")
        self.url = url
        self.timeout = timeout

    def redact(self, text: str) -> str:
        """The URL's path and query may be its token (chat webhooks): shown as ``***``."""
        parts = urllib.parse.urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        text = text.replace(self.url, f"{parts.scheme}://{parts.hostname}{port}/{redact.MASK}")
        secret = parts.path + (f"?{parts.query}" if parts.query else "")
        return text.replace(secret, f"/{redact.MASK}") if secret.strip("/") else text

    def send(self, alert: dict) -> None:
        request = urllib.request.Request(
            self.url,
            data=alert_json(alert).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "riskcontrol-alerts"},
            method="POST",
        )
        # urlopen raises HTTPError on 4xx/5xx and URLError when nothing answers.
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()


class EmailNotifier(Notifier):
    """Mails the alert in plain text through an SMTP relay."""

    name = "email"

    def __init__(
        self, host: str, port: int, sender: str, recipients: list[str], timeout: float = 10
    ):
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = recipients
        self.timeout = timeout

    def message(self, alert: dict) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[riskcontrol] {headline(alert)}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg.set_content(format_alert(alert))
        return msg

    def send(self, alert: dict) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(self.message(alert))


def _webhook(settings: Settings) -> Notifier:
    if not settings.webhook_url:
        raise ValueError("the webhook notifier needs a URL: set RISK_WEBHOOK_URL")
    return WebhookNotifier(settings.webhook_url)


def _email(settings: Settings) -> Notifier:
    if not settings.smtp_host:
        raise ValueError("the email notifier needs an SMTP relay: set RISK_SMTP_HOST")
    recipients = [r.strip() for r in (settings.alert_email_to or "").split(",") if r.strip()]
    if not recipients:
        raise ValueError("the email notifier needs recipients: set RISK_ALERT_EMAIL_TO")
    return EmailNotifier(
        settings.smtp_host, settings.smtp_port, settings.alert_email_from, recipients
    )


NOTIFIER_KINDS: dict[str, Callable[[Settings], Notifier]] = {
    "log": lambda settings: LogNotifier(),
    "webhook": _webhook,
    "email": _email,
}


def notifiers_from_settings(settings: Settings) -> list[Notifier]:
    """The notifiers ``RISK_NOTIFIERS`` names, each configured from the settings."""
    names = [n.strip().lower() for n in settings.notifiers.split(",") if n.strip()]
    unknown = [n for n in names if n not in NOTIFIER_KINDS]
    if unknown:
        raise ValueError(
            f"unknown notifier(s) {', '.join(unknown)} in RISK_NOTIFIERS: "
            f"choose from {', '.join(sorted(NOTIFIER_KINDS))}"
        )
    return [NOTIFIER_KINDS[n](settings) for n in dict.fromkeys(names)]


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
ERROR_CHARS = 500  # of a stored or logged error


def error_text(error: BaseException, notifier: Notifier, settings: Settings | None = None) -> str:
    """A send's error on one line, fit to log and store: the notifier's secrets (a
    webhook's path), URI credentials, the settings' keys and e-mail addresses masked."""
    text = notifier.redact(f"{type(error).__name__}: {error}")
    text = _EMAIL.sub(redact.MASK, redact.redact(text, settings))
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 3] + "..."


def _send(notifier: Notifier, alert: dict, settings: Settings | None = None) -> str | None:
    """Send; None when it went out, else the error (logged). A failure raises nothing."""
    try:
        notifier.send(alert)
    except Exception as exc:  # noqa: BLE001 - any failure is reported, none stops the rest
        error = error_text(exc, notifier, settings)
        log.error("notifier %s failed for alert %s: %s", notifier.name, alert["alert_id"], error)
        return error
    return None


def notify(alerts: Iterable[dict], notifiers: list[Notifier]) -> list[tuple[str, str, str]]:
    """Send every alert through every notifier, once, recording nothing; returns the
    failures as (notifier, alert_id, error), each also logged. A failure stops nothing.
    The pipeline uses ``deliver``, which sends again what failed."""
    failures = []
    for alert in alerts:
        for notifier in notifiers:
            error = _send(notifier, alert)
            if error is not None:
                failures.append((notifier.name, alert["alert_id"], error))
    return failures


# --- delivery until sent ------------------------------------------------------------------

PENDING, SENT = "pending", "sent"
# Held while reading the delivery state, sending and recording it, so that two runs at
# once do not both send an alert (a local lakehouse; an object store has no locks).
SEND_LOCK = f"{OPS_ALERT_NOTIFICATIONS.full_name}.send"


@dataclass
class Delivery:
    """What one ``deliver`` did: the sends that succeeded, (notifier, alert_id), and those
    that failed, (notifier, alert_id, error), which stay pending for the next run."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def undelivered(self) -> int:
        """Alert notifications still pending: every pending one was tried, so the failures."""
        return len(self.failures)

    def summary(self) -> str:
        text = f"{len(self.sent)} notification(s) sent"
        if self.failures:
            text += (
                f"; {self.undelivered} UNDELIVERED, pending in "
                f"{OPS_ALERT_NOTIFICATIONS.full_name} (the next run sends them again): "
                + "; ".join(f"{n} {a}: {e}" for n, a, e in self.failures[:3])
                + ("; ..." if len(self.failures) > 3 else "")
            )
        return text


def due(state: dict | None, alert: dict) -> bool:
    """Whether ``alert`` is to be sent to the notifier whose delivery row is ``state``."""
    return (
        state is None
        or state["state"] != SENT
        or (state["severity"], state["quadrant"]) != (alert["severity"], alert["quadrant"])
    )


def delivery_state(
    spark: SparkSession, settings: Settings, alert_ids: Iterable[str] | None = None
) -> list[dict]:
    """Rows of ``ops.alert_notifications`` (of ``alert_ids`` when given), by alert and
    notifier."""
    if not lakehouse.exists(spark, OPS_ALERT_NOTIFICATIONS, settings):
        return []
    df = lakehouse.read(spark, OPS_ALERT_NOTIFICATIONS, settings)
    if alert_ids is not None:
        df = df.where(F.col("alert_id").isin(list(alert_ids)))
    rows = [r.asDict() for r in df.collect()]
    return sorted(rows, key=lambda r: (r["alert_id"], r["notifier"]))


def deliver(
    spark: SparkSession,
    settings: Settings,
    notifiers: list[Notifier],
    now: dt.datetime | None = None,
) -> Delivery:
    """Send every open alert to every notifier in ``notifiers`` that has not got it (see
    the module's doc), record each attempt in ``ops.alert_notifications`` (one commit, none
    when nothing was due) and log what stays undelivered. Never raises for a failed send."""
    out = Delivery()
    if not notifiers:
        return out
    now = _utc_naive(now)
    with locks.table_lock(settings, SEND_LOCK):
        alerts = list_alerts(spark, settings)  # open ones, highest priority first
        if not alerts:
            return out
        names = {n.name for n in notifiers}
        state = {
            (r["alert_id"], r["notifier"]): r
            for r in delivery_state(spark, settings, [a["alert_id"] for a in alerts])
            if r["notifier"] in names
        }
        rows = []
        for alert in alerts:
            for notifier in notifiers:
                before = state.get((alert["alert_id"], notifier.name))
                if not due(before, alert):
                    continue
                error = _send(notifier, alert, settings)
                # A pending row counts on; a new announcement (first, escalation) from 1.
                tried = before["attempts"] if before and before["state"] == PENDING else 0
                rows.append(
                    {
                        "alert_id": alert["alert_id"],
                        "notifier": notifier.name,
                        "severity": alert["severity"],
                        "quadrant": alert["quadrant"],
                        "state": SENT if error is None else PENDING,
                        "attempts": (tried or 0) + 1,
                        "last_error": error,
                        "last_attempt_at": now,
                        "notified_at": now if error is None else None,
                    }
                )
                if error is None:
                    out.sent.append((notifier.name, alert["alert_id"]))
                else:
                    out.failures.append((notifier.name, alert["alert_id"], error))
        if rows:
            columns = OPS_ALERT_NOTIFICATIONS.columns
            frame = spark.createDataFrame(
                [tuple(r[c] for c in columns) for r in rows], schema=OPS_ALERT_NOTIFICATIONS.schema
            )
            lakehouse.merge(frame, OPS_ALERT_NOTIFICATIONS, settings)
    if out.failures:
        log.warning("alert notifications: %s", out.summary())
    elif out.sent:
        log.info("alert notifications: %s", out.summary())
    return out
