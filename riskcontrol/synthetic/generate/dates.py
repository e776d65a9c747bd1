"""Vectorized calendar helpers on integer days and seconds since 1970-01-01.

Dates are int64 day numbers and timestamps int64 second numbers (China local wall-clock
time, no zone), so whole chunks are shifted, compared and formatted without Python loops.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

DAY = 86_400


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01 of a date."""
    return (d - dt.date(1970, 1, 1)).days


def month_index(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each day number (the YYYYMM bucket of a monthly file)."""
    return (
        np.asarray(days, dtype=np.int64)
        .astype("datetime64[D]")
        .astype("datetime64[M]")
        .astype(np.int64)
    )


def add_months(days: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """Day numbers shifted by whole months, clipping the day to the target month's end.

    Same rule as Spark's ``add_months`` (2024-01-31 + 1 month = 2024-02-29), so the
    pipeline's label window matches the one used here.
    """
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    first = d.astype("datetime64[M]")
    dom = (d - first.astype("datetime64[D]")).astype(np.int64)
    target = first + np.asarray(months, dtype=np.int64)
    month_len = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(
        np.int64
    )
    out = target.astype("datetime64[D]") + np.minimum(dom, month_len - 1)
    return out.astype(np.int64)


def yyyymm(month_idx: int) -> str:
    """'YYYYMM' of a month index (months since 1970-01)."""
    return f"{1970 + month_idx // 12:04d}{month_idx % 12 + 1:02d}"


def format_dates(days: np.ndarray) -> list[str]:
    """'YYYY-MM-DD' strings."""
    return np.datetime_as_string(np.asarray(days, dtype=np.int64).astype("datetime64[D]")).tolist()


def format_timestamps(seconds: np.ndarray, sep: str = " ") -> list[str]:
    """'YYYY-MM-DD HH:MM:SS' strings (``sep`` replaces the ISO 'T')."""
    iso = np.datetime_as_string(np.asarray(seconds, dtype=np.int64).astype("datetime64[s]"))
    if len(iso):
        iso.view(np.uint32).reshape(len(iso), -1)[:, 10] = ord(sep)  # in place, no Python loop
    return iso.tolist()


@dataclass(frozen=True)
class Calendar:
    """The book's time frame: applications in [start, as_of), schema drift from month 13."""

    start_day: int
    first_month: int  # month index of ``start``
    last_month: int  # month index of the last application month (all pending)
    as_of_day: int  # first day after the last application month

    @classmethod
    def of(cls, start: dt.date, months: int) -> Calendar:
        """The calendar of ``months`` application months beginning at ``start``."""
        if months < 2:
            raise ValueError("need at least 2 months: one decided, one pending")
        first = (start.year - 1970) * 12 + start.month - 1
        last = first + months - 1
        as_of = dt.date(1970 + (last + 1) // 12, (last + 1) % 12 + 1, 1)
        return cls(day_number(start), first, last, day_number(as_of))

    @property
    def as_of(self) -> dt.date:
        """The snapshot date: everything strictly before it is recorded."""
        return dt.date(1970, 1, 1) + dt.timedelta(days=self.as_of_day)

    @property
    def drift_month(self) -> int:
        """First month index of the second landing-file schema (the book's 13th month)."""
        return self.first_month + 12
