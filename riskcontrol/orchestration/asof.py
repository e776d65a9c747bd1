"""The day an Airflow run runs as of, from its context, and how it travels to the runs
its asset events trigger. Standard library only: DAG files and the spark-submit operator
import it while Airflow parses them."""

from __future__ import annotations

import datetime as dt
from typing import Any

# The tier whose DAG runs on a calendar (@daily); the others run on its Assets.
DATED_TIER = "collect"
AS_OF_EXTRA = "as_of"  # the asset events' extra naming the day their run ran as of


def run_as_of(tier: str, context: dict[str, Any]) -> str | None:
    """The day (ISO) the tasks of a ``risk_<tier>`` run run as of, from its Airflow context.

    The collect DAG's run with a logical date (scheduled, backfilled, or triggered for a
    date): the end of its data interval. Airflow 3's ``@daily`` run of 2026-04-01 fires
    at that midnight with an empty interval there, so it runs as of 2026-04-01 (what was
    written before it); a data-interval timetable's run over 2026-03-31 ends there too.
    An asset-triggered run: the latest ``as_of`` among the asset events that started it
    (the upstream run put it there). Otherwise None: the day after the latest application.
    """
    if tier == DATED_TIER:
        end = context.get("data_interval_end")
        if context.get("logical_date") is None or end is None:
            return None
        return end.astimezone(dt.UTC).date().isoformat()
    days = [
        (event.extra or {}).get(AS_OF_EXTRA)
        for events in (context.get("triggering_asset_events") or {}).values()
        for event in events
    ]
    days = [d for d in days if d]
    return max(days) if days else None


def announce_as_of(outlet_events: Any, outlets: list[Any], as_of: str | None) -> None:
    """Put ``as_of`` on the asset events this task emits, for the runs they trigger."""
    if as_of and outlet_events is not None:
        for asset in outlets:
            outlet_events[asset].extra = {AS_OF_EXTRA: as_of}
