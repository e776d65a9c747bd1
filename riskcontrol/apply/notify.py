"""Alert notifications through pluggable notifiers: the log, a webhook, e-mail.

``RISK_NOTIFIERS`` lists the kinds to use (``log,webhook,email``); each kind is one entry
of ``NOTIFIER_KINDS`` that builds it from the settings, so a new channel (a chat tool, a
pager) is one class and one entry. A notifier that fails never stops the others nor loses
the alert: the alert is already stored in ``gold.alerts``, and ``notify`` returns (and
logs) each failure so the caller can report it or send again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from email.message import EmailMessage

from riskcontrol.apply.alerts import format_alert, headline
from riskcontrol.core.config import Settings

log = logging.getLogger(__name__)


class Notifier(ABC):
    """Sends one alert somewhere; raises when it could not."""

    name: str

    @abstractmethod
    def send(self, alert: dict) -> None: ...


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


def notify(alerts: Iterable[dict], notifiers: list[Notifier]) -> list[tuple[str, str, str]]:
    """Send every alert through every notifier; returns the failures as
    (notifier, alert_id, error), each also logged. A failure stops nothing."""
    failures = []
    for alert in alerts:
        for notifier in notifiers:
            try:
                notifier.send(alert)
            except Exception as exc:  # noqa: BLE001 - any failure is reported, none stops the rest
                error = f"{type(exc).__name__}: {exc}"
                log.error(
                    "notifier %s failed for alert %s: %s", notifier.name, alert["alert_id"], error
                )
                failures.append((notifier.name, alert["alert_id"], error))
    return failures
