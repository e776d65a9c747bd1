"""Append-only writers: the SQLite lending database and the monthly landing files.

Both stay open for the whole run and receive one chunk at a time, so memory is bounded
by the chunk size. SQLite runs without journal and fsync (the file is rebuilt from
scratch on every run, durability buys nothing) and takes each chunk in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

import numpy as np

from riskcontrol.synthetic.generate.dates import yyyymm

TABLES: dict[str, str] = {
    "customers": (
        "customer_id TEXT PRIMARY KEY, national_id TEXT, name TEXT, mobile TEXT, gender TEXT,"
        " birth_date TEXT, province TEXT, city TEXT, education TEXT, employment_type TEXT,"
        " employer_name TEXT, monthly_income REAL, registered_at TEXT, updated_at TEXT"
    ),
    "applications": (
        "application_id TEXT PRIMARY KEY, customer_id TEXT, applied_at TEXT,"
        " requested_amount REAL, term_months INTEGER, purpose TEXT, channel TEXT, province TEXT,"
        " status TEXT, decided_at TEXT, updated_at TEXT, monthly_income REAL,"
        " employment_type TEXT, education TEXT"
    ),
    "loans": (
        "loan_id TEXT PRIMARY KEY, application_id TEXT, customer_id TEXT, disbursed_at TEXT,"
        " principal REAL, term_months INTEGER, annual_rate REAL, status TEXT, updated_at TEXT"
    ),
    "repayments": (
        "repayment_id TEXT PRIMARY KEY, loan_id TEXT, installment_no INTEGER, due_date TEXT,"
        " amount_due REAL, paid_date TEXT, amount_paid REAL, dpd INTEGER, updated_at TEXT"
    ),
}


class LendingDb:
    """The ``lending.db`` SQLite file, created empty and filled chunk by chunk."""

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=OFF")
        self._conn.execute("PRAGMA synchronous=OFF")
        for name, columns in TABLES.items():
            self._conn.execute(f"CREATE TABLE {name} ({columns})")
        self._inserts = {
            name: f"INSERT INTO {name} VALUES ({', '.join('?' * (cols.count(',') + 1))})"
            for name, cols in TABLES.items()
        }

    def append(self, rows: dict[str, Iterable[tuple]]) -> None:
        """Insert one chunk's rows of every table in a single transaction (rows may be lazy)."""
        self._conn.execute("BEGIN")
        for name, table_rows in rows.items():
            self._conn.executemany(self._inserts[name], table_rows)
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class MonthlyFiles:
    """``<folder>/<prefix>_YYYYMM.<ext>`` files, opened on first use and kept open.

    ``separator`` is written between two records of the same file (a blank line for the
    notes), never before the first or after the last. ``encoding`` and ``header`` (a
    first line, not counted as a record) may vary by month index.
    """

    def __init__(
        self,
        folder: Path,
        prefix: str,
        ext: str,
        separator: str = "",
        encoding: Callable[[int], str] | None = None,
        header: Callable[[int], str] | None = None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{prefix}_*.{ext}"):
            old.unlink()
        self._folder, self._prefix, self._ext, self._sep = folder, prefix, ext, separator
        self._encoding, self._header = encoding, header
        self._files: dict[int, IO[str]] = {}
        self.records: dict[str, int] = {}

    def name(self, month: int) -> str:
        """File name of a month index."""
        return f"{self._prefix}_{yyyymm(month)}.{self._ext}"

    def write(self, month: np.ndarray, records: list[str]) -> None:
        """Append records (each ending in a newline) to the file of their month, in order."""
        order = np.argsort(month, kind="stable")
        sorted_month = month[order]
        bounds = np.flatnonzero(np.diff(sorted_month)) + 1
        for part in np.split(order, bounds):
            if len(part) == 0:
                continue
            m = int(month[part[0]])
            name = self.name(m)
            fh = self._files.get(m)
            if fh is None:
                enc = self._encoding(m) if self._encoding else "utf-8"
                fh = open(self._folder / name, "w", encoding=enc, newline="\n")  # noqa: SIM115
                if self._header:
                    fh.write(self._header(m))
                self._files[m] = fh
                self.records[name] = 0
            elif self._sep:
                fh.write(self._sep)
            fh.write(self._sep.join(records[i] for i in part.tolist()))
            self.records[name] += len(part)

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
