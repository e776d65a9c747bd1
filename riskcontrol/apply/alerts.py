"""Alerts: an early-warning breach opens an alert that a risk team works to closure.

A breach (an indicator of ``gold.warning_indicators`` at status warning or critical) opens
one alert per (indicator, segment type, segment) in ``gold.alerts``. The alert moves through
the design's five stages, one at a time and never backwards:

    identify -> assess -> decide -> dispose -> feedback (closed)

It carries the playbook of its severity quadrant: probability is high for a critical
breach, impact is high when the affected exposure x LGD reaches the configured threshold
(A neither, B impact only, C probability only, D both, as ``scoring.quadrant``). Every step
is appended to the alert's ``history`` (stage, at, by, note); nothing in it is rewritten,
and every write is guarded so that a concurrent change is refused rather than overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from riskcontrol.apply.formats import money, sig
from riskcontrol.apply.scoring import QUADRANT_STRATEGY, quadrant_of
from riskcontrol.apply.warning import INDICATOR_COLUMNS
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import GOLD_ALERTS
from riskcontrol.core.config import Settings

STAGES = ("identify", "assess", "decide", "dispose", "feedback")
CLOSED = STAGES[-1]
# Stages whose step records a decision or an action: a note saying which is required.
NOTE_REQUIRED = ("decide", "dispose", "feedback")
SEVERITIES = ("warning", "critical")  # breach statuses, in escalating order
QUADRANT_PRIORITY = "DCBA"  # list order after severity: highest priority first
ID_HINT = "`riskctl alerts list` shows the alert ids"

PLAYBOOKS: dict[str, list[str]] = {
    "A": [
        "Add the segment to the weekly risk review and track the indicator against its thresholds",
        "Check the data behind the breach (late repayment files, segment mapping) before "
        "acting on it",
        "Close at the monthly review if the indicator stayed under its warning threshold "
        "for two weeks; otherwise reassess its quadrant",
    ],
    "B": [
        "Activate the emergency plan: name an owner and brief the chief risk officer within "
        "24 hours",
        "Cut the loss given default on new loans of the segment: lower credit limits, "
        "require a guarantor or collateral above the median amount",
        "Raise provisions for the segment's exposure to its stressed expected loss",
        "Prepare a transfer of the exposure (credit insurance, guarantee partner) should "
        "the breach turn critical",
    ],
    "C": [
        "Tighten the approval cut-off for the segment by one step (`riskctl cutoff`) and "
        "send its borderline applications to manual review",
        "Add verification for the segment: income and employer checks, device and contact "
        "cross-checks",
        "Shorten terms and cap first-loan amounts for new customers of the segment",
        "Start early collections outreach on the segment's current loans: SMS and call "
        "reminders from three days before the due date",
    ],
    "D": [
        "Escalate now: the chief risk officer owns the alert, reviewed daily until closed",
        "Stop new exposure: pause approvals in the channel or region, or raise its cut-off to "
        "reject the riskiest bands",
        "Run intensive collections on the segment's delinquent loans: calls, restructuring "
        "offers, an outside agency past 60 days past due",
        "Provision the segment's expected loss in full and report it to finance",
        "Remove or transfer what risk remains: sell or insure the impaired loans, suspend the "
        "partner contract if the channel is the source",
    ],
}

BREACH_COLUMNS = (*INDICATOR_COLUMNS, "exposure")
SOURCE = "threshold_source"  # where the breached threshold comes from, when the rows say
KEY = ("indicator", "segment_type", "segment")


class InvalidTransition(ValueError):
    """A workflow step that the stage order does not allow."""


class AlertNotFound(KeyError):
    """No alert (or more than one) matches the id given."""

    def __str__(self) -> str:  # KeyError's own str() quotes the message
        return str(self.args[0])


class ConcurrentChange(RuntimeError):
    """The stored alert changed between reading it and writing the step."""


def alert_quadrant(severity: str, exposure: float, lgd: float, impact_threshold: float) -> str:
    """A/B/C/D: probability high for a critical breach, impact high when exposure x LGD
    reaches ``impact_threshold`` (same quadrants as ``scoring.quadrant``)."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    return quadrant_of(severity == "critical", exposure * lgd >= impact_threshold)


def alert_id(indicator: str, segment_type: str, segment: str, first_breach: dt.date) -> str:
    """Stable id of the alert a key's breach run opens: 16 hex chars of a SHA-256."""
    text = f"{indicator}|{segment_type}|{segment}|{first_breach.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def headline(alert: dict) -> str:
    """One line naming the alert, e.g. ``CRITICAL dpd30_rate channel=partner_a (quadrant D)``."""
    return (
        f"{alert['severity'].upper()} {alert['indicator']} "
        f"{alert['segment_type']}={alert['segment']} (quadrant {alert['quadrant']})"
    )


# --- opening alerts from breaches -----------------------------------------------------


def open_alerts(
    spark: SparkSession,
    settings: Settings,
    indicators: DataFrame,
    now: dt.datetime | None = None,
    by: str = "system",
) -> list[dict]:
    """Open or escalate alerts for the breaches in ``indicators`` (gold.warning_indicators
    rows); returns the alerts opened or escalated. Notifying goes by the stored alerts,
    not by this list (``notify.deliver``), so an alert committed here whose send fails
    is sent by the next run.

    Idempotent: the same indicators again change nothing and commit nothing.
    """
    now = _utc_naive(now)
    breaches = [
        r.asDict()
        for r in indicators.where(F.col("status").isin(*SEVERITIES))
        .select(*BREACH_COLUMNS, *[c for c in (SOURCE,) if c in indicators.columns])
        .collect()
    ]
    if not breaches:
        return []
    table = _read(spark, settings)
    names = sorted({b["indicator"] for b in breaches})
    stored = [] if table is None else _collect(table.where(F.col("indicator").isin(*names)))
    write, announce = reconcile(
        breaches,
        stored,
        now=now,
        by=by,
        lgd=settings.lgd,
        impact_threshold=settings.alert_impact_threshold,
    )
    if write:
        # A stored alert is only updated if no workflow step landed since it was read.
        result = lakehouse.merge(
            _frame(spark, write),
            GOLD_ALERTS,
            settings,
            update_when="t.stage <=> s.stage AND size(t.history) <= size(s.history)",
        )
        if result.inserted + result.updated != len(write):
            raise ConcurrentChange(
                f"{len(write) - result.inserted - result.updated} alert(s) were advanced while "
                "the breaches were being recorded; run the early warning again (it is "
                "idempotent) to record them on the alerts' current stage"
            )
    return announce


def reconcile(
    breaches: Iterable[dict],
    stored: Iterable[dict],
    *,
    now: dt.datetime,
    by: str,
    lgd: float,
    impact_threshold: float,
) -> tuple[list[dict], list[dict]]:
    """The alerts to write and those to announce, from breach rows and the stored alerts.

    Per key: an open alert takes the breaches since its first breach (later last breach,
    that day's value, threshold and exposure; severity and quadrant only ever escalate,
    each escalation appended to its history as an ``identify`` step). Without an open
    alert, breaches after the key's last closed alert open a new one. Unchanged alerts
    are not returned, so writing nothing is the idempotent re-run.
    """
    rows_by_key: dict[tuple, list[dict]] = defaultdict(list)
    for b in breaches:
        rows_by_key[_key(b)].append(b)
    alerts_by_key: dict[tuple, list[dict]] = defaultdict(list)
    for a in stored:
        alerts_by_key[_key(a)].append(a)
    write: list[dict] = []
    announce: list[dict] = []
    for key in sorted(rows_by_key, key=lambda k: tuple(str(x) for x in k)):
        rows = sorted(rows_by_key[key], key=lambda r: r["as_of_date"])
        previous = alerts_by_key.get(key, [])
        current = next((a for a in previous if a["stage"] != CLOSED), None)
        if current is not None:
            since = [r for r in rows if r["as_of_date"] >= current["first_breach_date"]]
            if not since:
                continue
            updated, escalated = _update(current, since, now, by, lgd, impact_threshold)
            if updated != current:
                write.append(updated)
                if escalated:
                    announce.append(updated)
            continue
        closed_until = max((a["last_breach_date"] for a in previous), default=None)
        fresh = [r for r in rows if closed_until is None or r["as_of_date"] > closed_until]
        if fresh:
            alert = _new_alert(fresh, now, by, lgd, impact_threshold)
            write.append(alert)
            announce.append(alert)
    return write, announce


def _new_alert(
    rows: list[dict], now: dt.datetime, by: str, lgd: float, impact_threshold: float
) -> dict:
    first, last = rows[0], rows[-1]
    severity = _severity(r["status"] for r in rows)
    quadrant = alert_quadrant(severity, last["exposure"] or 0.0, lgd, impact_threshold)
    note = f"{severity.upper()} breach: {_describe(last)}"
    if len(rows) > 1:
        note += f"; breaching since {first['as_of_date']} ({len(rows)} breach days)"
    if severity != last["status"]:
        critical_days = [str(r["as_of_date"]) for r in rows if r["status"] == "critical"]
        note += f"; critical on {', '.join(critical_days)}"
    return {
        "alert_id": alert_id(*_key(first), first["as_of_date"]),
        "indicator": first["indicator"],
        "segment_type": first["segment_type"],
        "segment": first["segment"],
        "severity": severity,
        "first_breach_date": first["as_of_date"],
        "last_breach_date": last["as_of_date"],
        "value": last["value"],
        "threshold": _threshold(last),
        "exposure": last["exposure"],
        "quadrant": quadrant,
        "playbook": list(PLAYBOOKS[quadrant]),
        "stage": STAGES[0],
        "history": [_entry(STAGES[0], now, by, note)],
        "opened_at": now,
        "updated_at": now,
    }


def _update(
    alert: dict, rows: list[dict], now: dt.datetime, by: str, lgd: float, impact_threshold: float
) -> tuple[dict, bool]:
    """``alert`` with the breach ``rows`` of its run applied, and whether it escalated."""
    out = dict(alert)
    latest = rows[-1]
    if latest["as_of_date"] >= alert["last_breach_date"]:
        out["last_breach_date"] = latest["as_of_date"]
        out["value"] = latest["value"]
        out["threshold"] = _threshold(latest)
        out["exposure"] = latest["exposure"]
    out["severity"] = _severity([alert["severity"], *(r["status"] for r in rows)])
    now_quadrant = alert_quadrant(out["severity"], out["exposure"] or 0.0, lgd, impact_threshold)
    out["quadrant"] = _worse_quadrant(alert["quadrant"], now_quadrant)
    notes = []
    if out["severity"] != alert["severity"]:
        critical = [r for r in rows if r["status"] == "critical"][-1]
        notes.append(f"escalated {alert['severity']} -> {out['severity']}: {_describe(critical)}")
    if out["quadrant"] != alert["quadrant"]:
        out["playbook"] = list(PLAYBOOKS[out["quadrant"]])
        notes.append(
            f"quadrant {alert['quadrant']} -> {out['quadrant']} (exposure "
            f"{money(out['exposure'])}): playbook replaced"
        )
    if notes:
        out["history"] = [*alert["history"], _entry("identify", now, by, "; ".join(notes))]
    if out != alert:
        out["updated_at"] = now
    return out, bool(notes)


def _severity(statuses: Iterable[str]) -> str:
    return "critical" if "critical" in statuses else "warning"


def _worse_quadrant(a: str, b: str) -> str:
    """The quadrant high in probability if either is, and in impact if either is."""
    return quadrant_of(a in "CD" or b in "CD", a in "BD" or b in "BD")


def _threshold(row: dict) -> float | None:
    return row["critical_threshold"] if row["status"] == "critical" else row["warning_threshold"]


def _describe(row: dict) -> str:
    source = f" (thresholds: {row[SOURCE]})" if row.get(SOURCE) else ""
    return (
        f"{row['indicator']} {row['segment_type']}={row['segment']} = {sig(row['value'])} "
        f"breaches its {row['status']} threshold {sig(_threshold(row))}{source} on "
        f"{row['as_of_date']}"
    )


# --- the workflow ---------------------------------------------------------------------


def transition(
    alert: dict,
    by: str,
    note: str,
    to_stage: str | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """``alert`` moved to its next stage with the step appended to its history (pure).

    Refuses (InvalidTransition) anything but the next stage, any step of a closed alert,
    and an empty note where the step records a decision or an action.
    """
    current = alert["stage"]
    name = alert["alert_id"]
    if current == CLOSED:
        raise InvalidTransition(
            f"alert {name} is closed (stage '{CLOSED}'): no step follows; a new breach "
            "opens a new alert"
        )
    following = STAGES[STAGES.index(current) + 1]
    if to_stage is not None and to_stage != following:
        raise InvalidTransition(
            f"alert {name} is at stage '{current}': the only allowed next stage is "
            f"'{following}', not '{to_stage}' (stages: {' -> '.join(STAGES)})"
        )
    if not by or not by.strip():
        raise ValueError("say who takes the step (by): the history records it")
    note = (note or "").strip()
    if following in NOTE_REQUIRED and not note:
        raise InvalidTransition(
            f"alert {name}: moving from '{current}' to '{following}' needs a note saying "
            "what was decided or done"
        )
    now = _utc_naive(now)
    return {
        **alert,
        "stage": following,
        "history": [*alert["history"], _entry(following, now, by.strip(), note)],
        "updated_at": now,
    }


def advance(
    spark: SparkSession,
    settings: Settings,
    alert_id: str,
    by: str,
    note: str,
    to_stage: str | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Move the alert (id or unique id prefix) to its next stage; returns it as stored."""
    alert = get_alert(spark, settings, alert_id)
    moved = transition(alert, by, note, to_stage, now)
    guard = f"t.stage = '{alert['stage']}' AND size(t.history) = {len(alert['history'])}"
    result = lakehouse.merge(_frame(spark, [moved]), GOLD_ALERTS, settings, update_when=guard)
    if result.updated != 1:
        raise ConcurrentChange(
            f"alert {alert['alert_id']} changed while it was being advanced: show it again "
            f"(`riskctl alerts show {alert['alert_id']}`) and retry"
        )
    return moved


# --- reading --------------------------------------------------------------------------


def list_alerts(spark: SparkSession, settings: Settings, open_only: bool = True) -> list[dict]:
    """Alerts, critical first, then by quadrant D, C, B, A, then by first breach."""
    df = _read(spark, settings)
    if df is None:
        return []
    if open_only:
        df = df.where(F.col("stage") != CLOSED)
    return sorted(
        _collect(df),
        key=lambda a: (
            a["severity"] != "critical",
            QUADRANT_PRIORITY.index(a["quadrant"]),
            a["first_breach_date"],
            a["alert_id"],
        ),
    )


def get_alert(spark: SparkSession, settings: Settings, alert_id: str) -> dict:
    """The alert with this id, or the one alert whose id starts with it."""
    wanted = (alert_id or "").strip().lower()
    if not wanted:
        raise AlertNotFound(f"give an alert id: {ID_HINT}")
    table = _read(spark, settings)
    if table is None:
        raise AlertNotFound(f"no alert {wanted!r}: no alert was ever opened ({ID_HINT})")
    found = _collect(table.where(F.col("alert_id").startswith(wanted)))
    exact = [a for a in found if a["alert_id"] == wanted]
    if exact or len(found) == 1:
        return (exact or found)[0]
    if not found:
        raise AlertNotFound(f"no alert with id {wanted!r}: {ID_HINT}")
    ids = ", ".join(sorted(a["alert_id"] for a in found))
    raise AlertNotFound(f"{wanted!r} starts {len(found)} alert ids ({ids}): give more of it")


# --- formatting for the command line --------------------------------------------------


def format_table(alerts: list[dict]) -> str:
    """Alerts as an aligned text table, one line each."""
    if not alerts:
        return "no alerts"
    header = (
        "ID",
        "SEVERITY",
        "Q",
        "STAGE",
        "INDICATOR",
        "SEGMENT",
        "FIRST",
        "LAST",
        "VALUE",
        "THRESHOLD",
        "EXPOSURE",
    )
    lines = [header] + [
        (
            a["alert_id"],
            a["severity"],
            a["quadrant"],
            a["stage"],
            a["indicator"],
            f"{a['segment_type']}={a['segment']}",
            str(a["first_breach_date"]),
            str(a["last_breach_date"]),
            sig(a["value"]),
            sig(a["threshold"]),
            money(a["exposure"]),
        )
        for a in alerts
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = {8, 9, 10}
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


def format_alert(alert: dict) -> str:
    """One alert in full: facts, its quadrant's playbook and its whole history."""
    stage = alert["stage"]
    following = "closed" if stage == CLOSED else f"next: {STAGES[STAGES.index(stage) + 1]}"
    lines = [
        f"Alert {alert['alert_id']}: {headline(alert)}",
        f"  stage      {stage} ({following})",
        f"  breach     {alert['first_breach_date']} .. {alert['last_breach_date']}: value "
        f"{sig(alert['value'])} against threshold {sig(alert['threshold'])}",
        f"  exposure   {money(alert['exposure'])}",
        f"  opened     {_time(alert['opened_at'])}, updated {_time(alert['updated_at'])}",
        "",
        f"Playbook, quadrant {alert['quadrant']} ({QUADRANT_STRATEGY[alert['quadrant']]}):",
        *[f"  {i}. {step}" for i, step in enumerate(alert["playbook"], 1)],
        "",
        "History:",
        *[
            f"  {_time(h['at'])}  {h['stage']:<8}  {h['by']}: {h['note'] or '-'}"
            for h in alert["history"]
        ],
    ]
    return "\n".join(lines)


# --- helpers --------------------------------------------------------------------------


def _key(row: dict) -> tuple:
    return tuple(row[k] for k in KEY)


def _entry(stage: str, at: dt.datetime, by: str, note: str) -> dict:
    return {"stage": stage, "at": at, "by": by, "note": note}


def _utc_naive(ts: dt.datetime | None) -> dt.datetime:
    """Timestamps are stored as naive UTC (the session time zone is UTC)."""
    ts = ts or dt.datetime.now(dt.UTC)
    return ts.astimezone(dt.UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _read(spark: SparkSession, settings: Settings) -> DataFrame | None:
    """gold.alerts, or None before the first alert was opened."""
    try:
        return lakehouse.read(spark, GOLD_ALERTS, settings)
    except FileNotFoundError:
        return None


def _collect(df: DataFrame) -> list[dict]:
    return [r.asDict(recursive=True) for r in df.collect()]


def _frame(spark: SparkSession, alerts: list[dict]) -> DataFrame:
    """Alert dicts as a DataFrame of the gold.alerts contract."""
    history = [h.name for h in GOLD_ALERTS.schema["history"].dataType.elementType.fields]
    rows = [
        tuple(
            [tuple(h[f] for f in history) for h in a["history"]] if c == "history" else a[c]
            for c in GOLD_ALERTS.columns
        )
        for a in alerts
    ]
    return spark.createDataFrame(rows, schema=GOLD_ALERTS.schema)


def _time(ts: dt.datetime) -> str:
    return f"{ts:%Y-%m-%d %H:%M:%S} UTC"
