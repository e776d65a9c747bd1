"""How the workbench's journal-backed pages scale with the decision journal's size.

Fills a throw-away journal with N decisions spread over the last 29 days (PDs from a
beta distribution: approve below 0.08, reject from 0.20, review between), then times
what the dashboard and the review queue do per request: read the 30 days' decisions and
compute the figures, and list the applications waiting for review. Prints seconds (best
of --repeat) and the peak memory (RSS) of the process.

    python infra/bench_workbench.py --decisions 100000,1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

from riskcontrol.serve.journal import SCHEMA, DecisionJournal
from riskcontrol.workbench import data


def fill(path: Path, n: int, seed: int = 7) -> None:
    """n decisions written straight into a new journal file (the service writes one per
    request; this writes them in bulk so a million take seconds)."""
    DecisionJournal(path).count()  # creates the file with its schema
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    rows = []
    for i in range(n):
        pd_ = rng.betavariate(2, 20)
        decision = "approve" if pd_ < 0.08 else "reject" if pd_ >= 0.2 else "review"
        record = {
            "customer_key": hashlib.sha256(f"c{rng.randint(1, n // 3 + 1)}".encode()).hexdigest(),
            "decision": decision,
            "arm": "challenger" if rng.random() < 0.1 else "champion",
            "pd": pd_,
            "champion": {"pd": pd_},
            "challenger": None,
            "features": {"requested_amount": rng.choice((3000, 8000, 15000, 30000))},
            "rules_action": "pass",
            "rules_fired": ["RF_X"] if rng.random() < 0.05 else [],
            "latency_ms": rng.uniform(2, 20),
        }
        at = now - dt.timedelta(seconds=(n - i) * 29 * 86400 / n)
        key = hashlib.sha256(f"a{i}".encode()).hexdigest()
        rows.append(
            (key, record["customer_key"], at.isoformat(timespec="microseconds"), json.dumps(record))
        )
        if len(rows) == 50_000:
            db.executemany(
                "INSERT INTO decisions (key, subject, created_at, record) VALUES (?, ?, ?, ?)",
                rows,
            )
            rows = []
    if rows:
        db.executemany(
            "INSERT INTO decisions (key, subject, created_at, record) VALUES (?, ?, ?, ?)", rows
        )
    db.commit()
    db.close()


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--decisions", default="100000,1000000", help="journal sizes, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'decisions':>10} {'fill s':>8} {'dashboard s':>12} {'queue s':>8} {'queue':>7}")
    for n in (int(x) for x in args.decisions.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "decisions.db"
            t0 = time.perf_counter()
            fill(path, n)
            filled = time.perf_counter() - t0
            journal = DecisionJournal(path)
            now = dt.datetime.now(dt.UTC)

            def dashboard(journal=journal, now=now):
                since = now - dt.timedelta(days=data.DAYS + 1)
                return data.decision_figures(journal.decided_since(since), [], now)

            board_s, figures = best(dashboard, args.repeat)
            queue_s, queue = best(journal.awaiting_review, args.repeat)
            assert figures["month"]["n"] == n
            print(f"{n:>10,} {filled:>8.1f} {board_s:>12.2f} {queue_s:>8.3f} {len(queue):>7}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
