"""The hidden outcomes of historically rejected applications (reject inference's truth).

``truth/rejected_outcomes.csv`` says what each rejected application would have done had
it been lent. The checks count the rejected applications from ``lending.db`` itself,
re-derive the approved book's label from its repayments, and prove that writing the
truth file changed nothing else the generator writes.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import hashlib
import sqlite3
from pathlib import Path

import pytest
from conftest import make_settings

from riskcontrol.collect import extracts, settlements
from riskcontrol.synthetic.generate import generate
from riskcontrol.synthetic.generate import generator as generator_mod

SEED = 5
CUSTOMERS = 1000
AS_OF = dt.date(2026, 4, 1)
TRUTH = Path("truth") / "rejected_outcomes.csv"
COLUMNS = [
    "application_id",
    "principal",
    "annual_rate",
    "term_months",
    "disbursed_at",
    "would_default",
    "label_status",
    "bad",
]


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    generate(out, customers=CUSTOMERS, seed=SEED)
    return out


@pytest.fixture(scope="module")
def truth(book: Path) -> list[dict[str, str]]:
    with open(book / TRUTH, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == COLUMNS
        return list(reader)


@pytest.fixture(scope="module")
def db(book: Path):
    con = sqlite3.connect(book / "lending.db")
    yield con
    con.close()


def table_rows(out: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(out / "lending.db")
    try:
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()  # noqa: S608
            for t in ("customers", "applications", "loans", "repayments")
        }
    finally:
        con.close()


def other_files(out: Path) -> dict[str, str]:
    """sha256 of every file but the database and the truth folder."""
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "lending.db" and p.relative_to(out).parts[0] != "truth"
    }


def add_months(d: dt.date, n: int) -> dt.date:
    """Calendar months later, the day clipped to the month's end (Spark's add_months)."""
    m = d.month - 1 + n
    year, month = d.year + m // 12, m % 12 + 1
    return dt.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def test_one_row_per_rejected_decided_application(truth, db) -> None:
    """Exactly the rejected applications with a positive amount, in application order,
    none of them a loan; the non-positive amounts (data faults) and pending ones are out."""
    rejected = [
        r[0]
        for r in db.execute(
            "SELECT application_id FROM applications WHERE status = 'rejected'"
            " AND requested_amount > 0 AND decided_at IS NOT NULL ORDER BY application_id"
        )
    ]
    ids = [r["application_id"] for r in truth]
    assert ids == rejected and len(ids) == 308
    statuses = dict(db.execute("SELECT application_id, status FROM applications").fetchall())
    assert {statuses[i] for i in ids} == {"rejected"}
    lent = {r[0] for r in db.execute("SELECT application_id FROM loans")}
    assert lent.isdisjoint(ids)


def test_the_loan_assumed_is_the_request_on_the_books_terms(truth, db) -> None:
    """The requested amount (never cut), its term, a rate in the book's range, disbursed
    0-3 days after the decision; immature exactly when the label's judgement day (90
    days after the last of the first 6 installments falls due) is after as-of."""
    apps = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT application_id, requested_amount, term_months, decided_at FROM applications"
        )
    }
    for row in truth:
        amount, term, decided = apps[row["application_id"]]
        assert float(row["principal"]) == amount and int(row["term_months"]) == term
        assert 0.072 <= float(row["annual_rate"]) <= 0.24
        disbursed = dt.date.fromisoformat(row["disbursed_at"])
        assert 0 <= (disbursed - dt.date.fromisoformat(decided[:10])).days <= 3
        judged = add_months(disbursed, min(term, 6)) + dt.timedelta(days=90)
        assert (row["label_status"] == "immature") == (judged > AS_OF)
        assert row["bad"] == {"bad": "1", "good": "0"}.get(row["label_status"], "")
        assert row["would_default"] in {"0", "1"}
        if row["label_status"] in {"bad", "indeterminate"}:
            assert row["would_default"] == "1"  # arrears only come from the default draw


def approved_label(db) -> tuple[int, int]:
    """(bad, bad + good) of the matured approved loans, recomputed from repayments: 90+
    days past due within the first 6 installments, judged 90 days after the last of them
    falls due; a worst delay of 30-89 days is indeterminate (no label)."""
    loans: dict[str, list[tuple[dt.date, dt.date | None]]] = {}
    for loan_id, due, paid in db.execute(
        "SELECT loan_id, due_date, paid_date FROM repayments ORDER BY loan_id, installment_no"
    ):
        loans.setdefault(loan_id, []).append(
            (dt.date.fromisoformat(due), dt.date.fromisoformat(paid[:10]) if paid else None)
        )
    bad = good = 0
    for rows in loans.values():
        window = rows[:6]
        judged = window[-1][0] + dt.timedelta(days=90)
        if judged > AS_OF:
            continue
        worst = max(max((min(paid or judged, judged) - due).days, 0) for due, paid in window)
        bad += worst >= 90
        good += worst < 30
    return bad, bad + good


def test_rejected_would_have_been_worse_than_approved(truth, db) -> None:
    """The hidden label of the rejected is 27% bad against 8% of the approved book (both
    bad / (bad + good) of the matured): the lender's rule selects, not perfectly."""
    statuses = ("bad", "good", "indeterminate", "immature")
    counts = {s: sum(r["label_status"] == s for r in truth) for s in statuses}
    assert counts == {"bad": 48, "good": 127, "indeterminate": 23, "immature": 110}
    assert sum(r["would_default"] == "1" for r in truth) == 149
    rejected_rate = counts["bad"] / (counts["bad"] + counts["good"])
    approved_bad, approved_labelled = approved_label(db)
    assert (approved_bad, approved_labelled) == (41, 531)
    approved_rate = approved_bad / approved_labelled
    assert rejected_rate == pytest.approx(0.2743, abs=1e-4)
    assert approved_rate == pytest.approx(0.0772, abs=1e-4)
    assert 2.0 <= rejected_rate / approved_rate <= 5.0


def test_writing_the_truth_changes_no_other_output(book, tmp_path, monkeypatch) -> None:
    """The same book with the truth rows not written: every table row and every other
    file is the same."""
    monkeypatch.setattr(generator_mod._Run, "_rejected_outcomes", lambda *_: None)
    bare = tmp_path / "bare"
    generate(bare, customers=CUSTOMERS, seed=SEED)
    assert (bare / TRUTH).read_text(encoding="utf-8") == ",".join(COLUMNS) + "\n"
    assert table_rows(bare) == table_rows(book)
    assert other_files(bare) == other_files(book)


def test_no_collected_source_lies_under_truth(book, tmp_path) -> None:
    """Collect reads the lending database's four tables and the file drops and crawls
    under ``landing/``; the truth folder is outside it and the database has no new table."""
    settings = make_settings(tmp_path)
    generate(settings.data_dir, customers=50, seed=SEED)
    truth = (Path(settings.data_dir) / TRUTH).resolve()
    assert truth.is_file()
    landing = settings.landing_dir.resolve()
    read = [landing / s.folder for s in extracts.FILE_SOURCES.values()]
    read += [landing / settlements.FOLDER, settings.crawl_landing_dir.resolve()]
    assert all(p.is_relative_to(landing) for p in read)
    assert not truth.is_relative_to(landing)
    con = sqlite3.connect(settings.data_dir / "lending.db")
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    assert tables == set(extracts.JDBC_SOURCES)
