"""``generate``: build the whole synthetic lending book, one chunk of customers at a time.

Every random value is keyed by global entity indices (see ``rng``), so the output is a
pure function of (seed, customers, start, months): the chunk size only changes memory
use and SQLite transaction boundaries, never a row or a line. Ids are running counters
in customer order, carried from chunk to chunk.

``truth/rejected_outcomes.csv`` is the ground truth of reject inference: for every
historically rejected application with a decision on a positive amount, the loan it
would have been (the requested amount, its term, the rate of its bureau score) and its
outcome under the default definition (``lending.draw_rejected_outcomes``). It is for
tests and evaluation only: no source the pipeline collects lies under ``truth/``, and
nothing else the generator writes depends on it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riskcontrol.synthetic.generate import bureau as bureau_mod
from riskcontrol.synthetic.generate import reference as ref
from riskcontrol.synthetic.generate import settlements as settlements_mod
from riskcontrol.synthetic.generate.activity import Lines, event_lines, note_records, truncate
from riskcontrol.synthetic.generate.dates import Calendar, format_dates, format_timestamps, yyyymm
from riskcontrol.synthetic.generate.lending import (
    BAD_DPD,
    DETERIORATION_CHANNEL,
    DETERIORATION_SHARE,
    INDETERMINATE_DPD,
    NEVER,
    PERFORMANCE_CYCLES,
    Applications,
    Loans,
    declared_income,
    deterioration_start,
    draw_applications,
    draw_loans,
    draw_rejected_outcomes,
)
from riskcontrol.synthetic.generate.population import Population, customer_rows, draw_population
from riskcontrol.synthetic.generate.rng import KeyedRandom
from riskcontrol.synthetic.generate.writers import LendingDb, MonthlyFiles

_APP_STATUS = ("pending", "approved", "rejected")
# The hidden outcomes of the historically rejected (never read by the pipeline): one row
# per rejected application with a decision on a positive amount, in application order.
# ``principal``, ``annual_rate``, ``term_months`` and ``disbursed_at``: the loan assumed;
# ``would_default``: 1 if it would ever fall into arrears; ``label_status``: good, bad,
# indeterminate or immature by the default definition (riskcontrol.analyze.labels) as of
# as_of; ``bad``: the label, 1 bad, 0 good, empty when indeterminate or immature.
TRUTH_DIR = "truth"
REJECTED_OUTCOMES = "rejected_outcomes.csv"
REJECTED_OUTCOME_COLUMNS = (
    "application_id",
    "principal",
    "annual_rate",
    "term_months",
    "disbursed_at",
    "would_default",
    "label_status",
    "bad",
)
_LOAN_STATUS = ("active", "closed", "defaulted", "prepaid")
FAULT_KINDS = (
    "customers_invalid_national_id",
    "customers_malformed_mobile",
    "applications_nonpositive_amount",
    "bureau_malformed_lines",
    "bureau_duplicate_lines",
    "events_malformed_lines",
    "notes_missing_header",
    *settlements_mod.FAULT_KINDS,
)


# generation.json's ``performance`` keys (``*_cents`` are written in yuan, without it):
PERFORMANCE_COUNTS = (
    "cures",  # payments that cleared every arrear of a loan at once, before as_of
    "cures_from_30_dpd",  # of them, those whose oldest arrear was 30+ days late
    "cures_from_90_dpd",  # ... 90+ days late (the loan had reached the default definition)
    "cured_loans",
    "redefaults",  # a cured loan missing an installment again (due before as_of)
    "partial_payments",  # first parts in the settlement files
    "partial_installments_settled",  # ... whose installment is fully paid
    "partial_installments_open",  # ... whose installment is not (amount_paid < amount_due)
    "prepaid_loans",
    "prepaid_installments",
    "prepaid_principal_cents",
    "written_off_loans",  # = loans 'defaulted'
    "written_off_principal_cents",
    "recovered_loans",
    "recovery_payments",
    "recovered_cents",
)


@dataclass(frozen=True)
class GenerationSummary:
    """What ``generate`` wrote: sizes, label statistics, exact injected-fault counts and the
    planted deterioration (which segment, from which day, what share of its loans)."""

    out_dir: Path
    seed: int
    customers: int
    start: dt.date
    months: int
    as_of: dt.date
    row_counts: dict[str, int]
    file_lines: dict[str, dict[str, int]]  # kind -> file name -> lines (notes: records)
    applications_by_status: dict[str, int]
    loans_by_status: dict[str, int]
    matured_loans: int
    bad_loans: int
    indeterminate_loans: int
    schema_drift_from: str  # 'YYYY-MM': first month of the version-2 landing schemas
    faults: dict[str, int]
    deterioration: dict[str, str | float]  # the planted deterioration (ground truth)
    performance: dict[str, int | float]  # cures, partial payments, prepayments, recoveries

    @property
    def bad_rate(self) -> float:
        """Share of matured loans that are bad by the default definition."""
        return self.bad_loans / self.matured_loans if self.matured_loans else 0.0

    def __str__(self) -> str:
        rows = ", ".join(f"{n:,} {table}" for table, n in self.row_counts.items())
        p = self.performance
        return (
            f"{rows}; bad rate {self.bad_rate:.2%} of {self.matured_loans:,} matured loans; "
            f"{p['cures']:,} cures, {p['prepaid_loans']:,} prepaid and {p['written_off_loans']:,} "
            f"written-off loans; as of {self.as_of}; {sum(self.faults.values()):,} injected faults"
        )

    def to_dict(self) -> dict:
        """The content of ``generation.json`` (no paths, so it is reproducible anywhere)."""
        return {
            "seed": self.seed,
            "customers": self.customers,
            "start": self.start.isoformat(),
            "months": self.months,
            "as_of": self.as_of.isoformat(),
            "row_counts": self.row_counts,
            "files": {
                kind: {
                    "files": len(per_file),
                    "total": sum(per_file.values()),
                    "per_file": per_file,
                }
                for kind, per_file in self.file_lines.items()
            },
            "applications_by_status": self.applications_by_status,
            "loans_by_status": self.loans_by_status,
            "label": {
                "performance_cycles": PERFORMANCE_CYCLES,
                "bad_dpd": BAD_DPD,
                "indeterminate_dpd": INDETERMINATE_DPD,
                "matured_loans": self.matured_loans,
                "bad_loans": self.bad_loans,
                "indeterminate_loans": self.indeterminate_loans,
                "bad_rate": round(self.bad_rate, 6),
            },
            "schema_drift_from": self.schema_drift_from,
            "faults": self.faults,
            "deterioration": self.deterioration,
            "performance": self.performance,
        }


class _Run:
    """Mutable state of one ``generate`` call: writers, id counters and tallies."""

    def __init__(
        self, out_dir: Path, seed: int, customers: int, cal: Calendar, deterioration: float
    ) -> None:
        self.seed, self.customers, self.cal = seed, customers, cal
        self.deterioration = deterioration
        landing = out_dir / "landing"
        self.db = LendingDb(out_dir / "lending.db")
        self.files = {
            "bureau": MonthlyFiles(landing / "bureau", "bureau", "jsonl"),
            "events": MonthlyFiles(landing / "events", "events", "jsonl"),
            "notes": MonthlyFiles(landing / "notes", "notes", "txt", separator="\n"),
            "settlements": MonthlyFiles(
                landing / "settlements",
                "settlement",
                "csv",
                encoding=lambda m: settlements_mod.encoding(seed, m),
                header=lambda m: settlements_mod.header_line(seed, m),
            ),
        }
        truth = out_dir / TRUTH_DIR
        truth.mkdir(exist_ok=True)
        self.truth = open(truth / REJECTED_OUTCOMES, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self.truth_csv = csv.writer(self.truth, lineterminator="\n")
        self.truth_csv.writerow(REJECTED_OUTCOME_COLUMNS)
        self.next_app = self.next_loan = self.next_event = self.next_note = 0
        self.next_settlement = 0
        self.rows: Counter[str] = Counter()
        self.app_status: Counter[str] = Counter()
        self.loan_status: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.matured = self.bad = self.indeterminate = 0
        self.perf: Counter[str] = Counter()

    def chunk(self, index: np.ndarray) -> None:
        """Generate and write the customers with global indices ``index``."""
        seed, cal = self.seed, self.cal
        pop = draw_population(seed, index, cal.start_day, cal.as_of_day)
        apps = draw_applications(seed, pop, cal)
        loans = draw_loans(seed, pop, apps, cal, self.deterioration)
        app_ids = [f"A{self.next_app + i + 1:010d}" for i in range(len(apps.key))]
        loan_ids = [f"L{self.next_loan + i + 1:010d}" for i in range(len(loans.app))]

        protected = np.zeros(len(index), dtype=bool)
        protected[apps.customer[apps.pending]] = True
        customers, bad_id, bad_mobile = customer_rows(seed, pop, protected)
        self.faults["customers_invalid_national_id"] += bad_id
        self.faults["customers_malformed_mobile"] += bad_mobile
        self.faults["applications_nonpositive_amount"] += int(apps.amount_fault.sum())
        self.db.append(
            {
                "customers": customers,
                "applications": self._application_rows(pop, apps, app_ids),
                "loans": self._loan_rows(pop, apps, loans, app_ids, loan_ids),
                "repayments": self._repayment_rows(loans, loan_ids),
            }
        )
        self.rows.update(
            customers=len(index),
            applications=len(app_ids),
            loans=len(loan_ids),
            repayments=len(loans.inst_no),
        )
        self.matured += int(loans.matured.sum())
        self.bad += int(loans.bad.sum())
        self.indeterminate += int(loans.indeterminate.sum())
        self._performance(loans)
        self._rejected_outcomes(pop, apps, app_ids)

        self._bureau(pop, apps, app_ids)
        events = event_lines(seed, pop, apps, cal, self.next_event, self.customers)
        self._write("events", events, "events_malformed_lines")
        notes = note_records(seed, pop, apps, loans, cal, self.next_note)
        self._write("notes", notes, "notes_missing_header")
        paid, paid_faults = settlements_mod.settlement_lines(
            seed, pop, apps, loans, loan_ids, self.next_settlement
        )
        self.files["settlements"].write(paid.month, paid.text)
        self.faults.update(paid_faults)
        self.next_settlement += len(paid.text)
        self.next_app += len(app_ids)
        self.next_loan += len(loan_ids)
        self.next_event += len(events.text)
        self.next_note += len(notes.text)

    def _performance(self, loans: Loans) -> None:
        """Tally the ground truth of payment behaviour (money in cents, exact)."""
        cents = lambda a: int(np.round(np.asarray(a) * 100).astype(np.int64).sum())  # noqa: E731
        part = loans.part_ts >= 0
        self.perf.update(
            cures=loans.cures,
            cures_from_30_dpd=loans.cures_from_30_dpd,
            cures_from_90_dpd=loans.cures_from_90_dpd,
            cured_loans=loans.cured_loans,
            redefaults=loans.redefaults,
            partial_payments=int(part.sum()),
            partial_installments_settled=int((part & (loans.settled_by >= 0)).sum()),
            partial_installments_open=int((part & (loans.settled_by < 0)).sum()),
            prepaid_loans=int((loans.prepay_ts >= 0).sum()),
            prepaid_installments=int((loans.settled_by == 2).sum()),
            prepaid_principal_cents=cents(loans.prepay_amount),
            written_off_loans=int((loans.written_off_ts >= 0).sum()),
            written_off_principal_cents=cents(loans.written_off_principal),
            recovered_loans=len(np.unique(loans.recovery_loan)),
            recovery_payments=len(loans.recovery_loan),
            recovered_cents=cents(loans.recovery_amount),
        )

    def _rejected_outcomes(self, pop: Population, apps: Applications, app_ids: list[str]) -> None:
        """The ground truth of reject inference (``REJECTED_OUTCOME_COLUMNS``)."""
        rej = draw_rejected_outcomes(self.seed, pop, apps, self.cal, self.deterioration)
        status = np.where(
            ~rej.matured,
            "immature",
            np.where(rej.bad, "bad", np.where(rej.indeterminate, "indeterminate", "good")),
        )
        label = np.where(status == "bad", "1", np.where(status == "good", "0", ""))
        self.truth_csv.writerows(
            zip(
                [app_ids[a] for a in rej.app.tolist()],
                rej.principal.tolist(),
                rej.rate.tolist(),
                rej.term.tolist(),
                format_dates(rej.disbursed_day),
                rej.defaults.astype(np.int64).tolist(),
                status.tolist(),
                label.tolist(),
                strict=True,
            )
        )

    def _write(self, kind: str, lines: Lines, fault: str) -> None:
        self.files[kind].write(lines.month, lines.text)
        self.faults[fault] += lines.faults

    def _application_rows(
        self, pop: Population, apps: Applications, app_ids: list[str]
    ) -> Iterator[tuple]:
        status_idx = np.where(apps.pending, 0, np.where(apps.approved, 1, 2))
        self.app_status.update(_APP_STATUS[s] for s in status_idx.tolist())
        applied = format_timestamps(apps.applied_ts)
        decided = format_timestamps(np.maximum(apps.decided_ts, 0))
        return zip(
            app_ids,
            [pop.customer_id[c] for c in apps.customer.tolist()],
            applied,
            apps.amount.tolist(),
            apps.term.tolist(),
            [ref.PURPOSES[p] for p in apps.purpose.tolist()],
            [ref.CHANNELS[c] for c in apps.channel.tolist()],
            [ref.CITY_PROVINCE[c] for c in pop.city[apps.customer].tolist()],
            [_APP_STATUS[s] for s in status_idx.tolist()],
            [None if p else d for p, d in zip(apps.pending.tolist(), decided, strict=True)],
            [
                a if p else d
                for p, a, d in zip(apps.pending.tolist(), applied, decided, strict=True)
            ],
            declared_income(pop, apps).tolist(),
            [ref.EMPLOYMENT[e] for e in pop.employment[apps.customer].tolist()],
            [ref.EDUCATION[e] for e in pop.education[apps.customer].tolist()],
            strict=True,
        )

    def _loan_rows(
        self,
        pop: Population,
        apps: Applications,
        loans: Loans,
        app_ids: list[str],
        loan_ids: list[str],
    ) -> Iterator[tuple]:
        self.loan_status.update(_LOAN_STATUS[s] for s in loans.status.tolist())
        return zip(
            loan_ids,
            [app_ids[a] for a in loans.app.tolist()],
            [pop.customer_id[c] for c in apps.customer[loans.app].tolist()],
            format_dates(loans.disbursed_day),
            loans.principal.tolist(),
            loans.term.tolist(),
            loans.rate.tolist(),
            [_LOAN_STATUS[s] for s in loans.status.tolist()],
            format_timestamps(loans.updated_ts),
            strict=True,
        )

    def _repayment_rows(self, loans: Loans, loan_ids: list[str]) -> Iterator[tuple]:
        paid = loans.paid_day != NEVER
        paid_dates = format_dates(np.where(paid, loans.paid_day, 0))
        inst_loan_ids = [loan_ids[i] for i in loans.inst_loan.tolist()]
        return zip(
            [
                f"{lid}-{k:02d}"
                for lid, k in zip(inst_loan_ids, loans.inst_no.tolist(), strict=True)
            ],
            inst_loan_ids,
            loans.inst_no.tolist(),
            format_dates(loans.due_day),
            loans.amount_due.tolist(),
            [d if p else None for p, d in zip(paid.tolist(), paid_dates, strict=True)],
            loans.amount_paid.tolist(),
            loans.dpd.tolist(),
            format_timestamps(loans.inst_updated_ts),
            strict=True,
        )

    def _bureau(self, pop: Population, apps: Applications, app_ids: list[str]) -> None:
        """Bureau lines: malformed ones cut short, ~1% re-sent in the same or next month."""
        rng = KeyedRandom(self.seed, "bureau_fault")
        lines = bureau_mod.bureau_lines(
            apps.bureau,
            [f"R{self.next_app + i + 1:010d}" for i in range(len(app_ids))],
            app_ids,
            [pop.national_id[c] for c in apps.customer.tolist()],
            [pop.name[c] for c in apps.customer.tolist()],
        )
        malformed = rng.bernoulli(apps.key, bureau_mod.MALFORMED_RATE, "malformed") & ~apps.pending
        bad = np.flatnonzero(malformed)
        for i, cut in zip(
            bad.tolist(), truncate(rng, apps.key[bad], [lines[i] for i in bad]), strict=True
        ):
            lines[i] = cut
        dup = np.flatnonzero(~malformed & rng.bernoulli(apps.key, bureau_mod.DUPLICATE_RATE, "dup"))
        later = rng.bernoulli(apps.key[dup], 0.5, "dup_next_month")
        dup_month = np.minimum(apps.month[dup] + later, self.cal.last_month)
        # originals at even positions, each re-sent copy right behind its original
        position = np.concatenate([2 * np.arange(len(lines)), 2 * dup + 1])
        month = np.concatenate([apps.month, dup_month])
        text = lines + [lines[i] for i in dup.tolist()]
        order = np.argsort(position, kind="stable")
        self.files["bureau"].write(month[order], [text[i] for i in order.tolist()])
        self.faults["bureau_malformed_lines"] += len(bad)
        self.faults["bureau_duplicate_lines"] += len(dup)

    def close(self) -> None:
        self.db.close()
        self.truth.close()
        for files in self.files.values():
            files.close()


def _performance_truth(tally: Counter[str]) -> dict[str, int | float]:
    """``generation.json``'s ``performance``: counts as of ``as_of`` (cures and re-defaults
    are events; money in yuan, rounded to the cent from exact cent sums)."""
    out: dict[str, int | float] = {}
    for name in PERFORMANCE_COUNTS:
        if name.endswith("_cents"):
            out[name[: -len("_cents")]] = round(tally[name] / 100, 2)
        else:
            out[name] = tally[name]
    return out


def generate(
    out_dir: Path,
    customers: int = 20_000,
    seed: int = 42,
    start: dt.date = dt.date(2024, 1, 1),
    months: int = 27,
    chunk_size: int = 50_000,
    progress: Callable[[str], None] | None = None,
    deterioration_share: float = DETERIORATION_SHARE,
) -> GenerationSummary:
    """Write ``lending.db``, the monthly landing files, ``generation.json`` and the hidden
    ``truth/rejected_outcomes.csv`` to ``out_dir``.

    Previous outputs are replaced. ``as_of`` is the first day after the last application
    month; applications of that last month are all ``pending``. Same arguments (chunk
    size aside) give byte-identical files.
    """
    if customers < 1 or chunk_size < 1:
        raise ValueError("customers and chunk_size must be positive")
    if not 0.0 <= deterioration_share <= 1.0:
        raise ValueError(
            f"deterioration_share is a share of loans, 0 to 1 (0 plants none); "
            f"got {deterioration_share}"
        )
    if customers > 99_999_999:
        raise ValueError("customer ids have 8 digits: at most 99,999,999 customers")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "generation.json").unlink(missing_ok=True)
    cal = Calendar.of(start, months)
    run = _Run(out_dir, seed, customers, cal, deterioration_share)
    try:
        for lo in range(0, customers, chunk_size):
            hi = min(lo + chunk_size, customers)
            run.chunk(np.arange(lo, hi, dtype=np.int64))
            if progress is not None:
                progress(f"customers {hi}/{customers}")
    finally:
        run.close()
    summary = GenerationSummary(
        out_dir=out_dir,
        seed=seed,
        customers=customers,
        start=start,
        months=months,
        as_of=cal.as_of,
        row_counts={k: run.rows[k] for k in ("customers", "applications", "loans", "repayments")},
        file_lines={kind: dict(sorted(f.records.items())) for kind, f in run.files.items()},
        applications_by_status={s: run.app_status[s] for s in _APP_STATUS},
        loans_by_status={s: run.loan_status[s] for s in _LOAN_STATUS},
        matured_loans=run.matured,
        bad_loans=run.bad,
        indeterminate_loans=run.indeterminate,
        schema_drift_from=f"{yyyymm(cal.drift_month)[:4]}-{yyyymm(cal.drift_month)[4:]}",
        faults={k: run.faults[k] for k in FAULT_KINDS},
        deterioration={
            "segment_type": "channel",
            "segment": DETERIORATION_CHANNEL,
            "start_date": (
                dt.date(1970, 1, 1) + dt.timedelta(days=deterioration_start(cal))
            ).isoformat(),
            "share": deterioration_share,
        },
        performance=_performance_truth(run.perf),
    )
    (out_dir / "generation.json").write_text(
        json.dumps(summary.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return summary
