"""The synthetic lending book: exact facts about every output, determinism, chunking.

The checks re-derive everything from the written files (SQLite rows, JSON lines, note
records) with code independent of the generator, so a bug in the generator cannot hide
behind its own bookkeeping in ``generation.json``.
"""

from __future__ import annotations

import calendar
import codecs
import csv
import datetime as dt
import hashlib
import io
import json
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from riskcontrol.core.catalog import NOTE_PATTERN
from riskcontrol.synthetic.generate import (
    generate,
    id_check_digit,
    is_valid_national_id,
    settlements,
)
from riskcontrol.synthetic.generate import reference as ref
from riskcontrol.synthetic.generate.population import application_day_cdf

SEED = 3  # at this small size, a seed for which every fault kind occurs at least once
CUSTOMERS = 2000
AS_OF = dt.date(2026, 4, 1)
NOTE_HEADER = re.compile(
    r"^#NOTE id=N\d{8} customer=C\d{8} time=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    r"agent=A\d{3} channel=(phone|chat|email|app)$"
)


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """2,000 customers in chunks of 700 (three chunks, the last one partial)."""
    out = tmp_path_factory.mktemp("book")
    messages: list[str] = []
    generate(out, customers=CUSTOMERS, seed=SEED, chunk_size=700, progress=messages.append)
    assert messages == [
        "customers 700/2000",
        "customers 1400/2000",
        "customers 2000/2000",
    ]
    return out


@pytest.fixture(scope="module")
def db(book: Path):
    con = sqlite3.connect(book / "lending.db")
    con.row_factory = sqlite3.Row
    yield con
    con.close()


@pytest.fixture(scope="module")
def meta(book: Path) -> dict:
    return json.loads((book / "generation.json").read_text(encoding="utf-8"))


def file_hashes(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def json_lines(out: Path, kind: str) -> list[tuple[str, str]]:
    """(file name, raw line) of every line of a JSON-lines landing folder, in file order."""
    return [
        (p.name, line)
        for p in sorted((out / "landing" / kind).glob("*.jsonl"))
        for line in p.read_text(encoding="utf-8").splitlines()
    ]


def parse(line: str) -> dict | None:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def note_records(out: Path) -> list[tuple[str, str]]:
    return [
        (p.name, record)
        for p in sorted((out / "landing" / "notes").glob("*.txt"))
        for record in p.read_text(encoding="utf-8").split("\n\n")
    ]


def add_months(d: dt.date, n: int) -> dt.date:
    """Calendar months later, the day clipped to the month's end (Spark's add_months)."""
    m = d.month - 1 + n
    year, month = d.year + m // 12, m % 12 + 1
    return dt.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def day(s: str) -> dt.date:
    return dt.date.fromisoformat(s[:10])


# --- identity numbers ------------------------------------------------------------------


def test_check_digit_matches_the_standard_examples() -> None:
    assert id_check_digit("11010519491231002") == "X"
    assert id_check_digit("44052418800101001") == "4"
    assert is_valid_national_id("11010519491231002X")
    assert is_valid_national_id("11010519491231002x")
    assert not is_valid_national_id("110105194912310021")
    assert not is_valid_national_id("11010519491231002")
    assert not is_valid_national_id(None)
    with pytest.raises(ValueError):
        id_check_digit("1101051949123100")


def test_national_ids_are_valid_except_the_injected_ones(db, meta) -> None:
    codes = {c[1]: set(c[3]) for c in ref.CITIES}
    invalid = 0
    for row in db.execute("SELECT * FROM customers"):
        nid = row["national_id"]
        assert len(nid) == 18 and nid[:17].isdigit()
        if not is_valid_national_id(nid):
            invalid += 1
            assert nid[17] != id_check_digit(nid[:17])
        assert nid[:6] in codes[row["city"]]
        assert nid[6:14] == row["birth_date"].replace("-", "")
        assert int(nid[16]) % 2 == (1 if row["gender"] == "M" else 0)
        registered = day(row["registered_at"])
        born = day(row["birth_date"])
        age = (
            registered.year
            - born.year
            - ((registered.month, registered.day) < (born.month, born.day))
        )
        assert 18 <= age <= 65
    assert invalid == meta["faults"]["customers_invalid_national_id"] > 0


def test_mobiles_and_categories(db, meta) -> None:
    short = 0
    for row in db.execute("SELECT * FROM customers"):
        mobile = row["mobile"]
        assert mobile.isdigit() and mobile[:3] in ref.MOBILE_PREFIXES
        if len(mobile) == 10:
            short += 1
        else:
            assert len(mobile) == 11
        assert row["education"] in ref.EDUCATION
        assert row["employment_type"] in ref.EMPLOYMENT
        employer = row["employer_name"]
        if row["employment_type"] == "salaried":
            assert employer in ref.COMPANIES
        elif row["employment_type"] == "self_employed":
            assert employer.startswith(row["city"]) and employer not in ref.COMPANIES
        else:
            assert employer == ""
        assert row["updated_at"] >= row["registered_at"]
    assert short == meta["faults"]["customers_malformed_mobile"] > 0


# --- counts and faults -----------------------------------------------------------------


def test_row_counts_match_generation_json(db, meta) -> None:
    for table, expected in meta["row_counts"].items():
        assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == expected
    assert meta["row_counts"]["customers"] == CUSTOMERS
    statuses = dict(db.execute("SELECT status, COUNT(*) FROM applications GROUP BY status"))
    assert statuses == {k: v for k, v in meta["applications_by_status"].items() if v}
    statuses = dict(db.execute("SELECT status, COUNT(*) FROM loans GROUP BY status"))
    assert statuses == {k: v for k, v in meta["loans_by_status"].items() if v}
    n_apps = meta["row_counts"]["applications"]
    assert 1.2 < n_apps / CUSTOMERS < 1.4
    decided = n_apps - meta["applications_by_status"]["pending"]
    assert 0.70 < meta["applications_by_status"]["approved"] / decided < 0.80
    per_customer = Counter(r[0] for r in db.execute("SELECT customer_id FROM applications"))
    assert set(per_customer.values()) == {1, 2, 3}
    assert len(per_customer) == CUSTOMERS


def test_file_line_counts_match_generation_json(book, meta) -> None:
    for kind in ("bureau", "events"):
        per_file = Counter(name for name, _ in json_lines(book, kind))
        assert dict(per_file) == meta["files"][kind]["per_file"]
        assert sum(per_file.values()) == meta["files"][kind]["total"]
    per_file = Counter(name for name, _ in note_records(book))
    assert dict(per_file) == meta["files"]["notes"]["per_file"]


def test_bureau_faults_are_exactly_as_counted(book, db, meta) -> None:
    lines = json_lines(book, "bureau")
    parsed = [parse(line) for _, line in lines]
    malformed = [line for (_, line), p in zip(lines, parsed, strict=True) if p is None]
    assert len(malformed) == meta["faults"]["bureau_malformed_lines"] > 0
    assert all(line.startswith('{"report_id":"R') for line in malformed)
    first: dict[str, tuple[str, str]] = {}
    duplicates = 0
    for (name, line), p in zip(lines, parsed, strict=True):
        if p is None:
            continue
        if p["report_id"] in first:
            duplicates += 1
            first_name, first_line = first[p["report_id"]]
            assert line == first_line  # re-sent byte for byte
            assert int(name[7:13]) - int(first_name[7:13]) in (0, 1, 89)  # same/next month
        else:
            first[p["report_id"]] = (name, line)
    assert duplicates == meta["faults"]["bureau_duplicate_lines"] > 0
    n_apps = meta["row_counts"]["applications"]
    assert len(first) == n_apps - len(malformed)
    apps = {r["application_id"]: r for r in db.execute("SELECT * FROM applications")}
    ids = dict(db.execute("SELECT customer_id, national_id FROM customers"))
    for name, line in first.values():
        p = json.loads(line)
        app = apps[p["query_ref"]]
        assert name == f"bureau_{app['applied_at'][:4]}{app['applied_at'][5:7]}.jsonl"
        assert p["report_time"][:10] == app["applied_at"][:10]
        assert p["report_time"].endswith("+08:00")
        expected_id = ids[app["customer_id"]]
        if is_valid_national_id(expected_id):
            assert p["id_number"] == expected_id
        else:  # the bureau holds the correct number; the lending system a typo
            assert p["id_number"][:17] == expected_id[:17]


def test_bureau_summary_agrees_with_accounts(book) -> None:
    for _, line in json_lines(book, "bureau"):
        p = parse(line)
        if p is None:
            continue
        open_accounts = [a for a in p["accounts"] if a["status"] != "closed"]
        s = p["summary"]
        assert s["open_loans"] == sum(a["type"] != "credit_card" for a in open_accounts)
        assert s["overdue_accounts"] == sum(a["status"] == "overdue" for a in open_accounts)
        assert s["total_credit_limit"] == pytest.approx(sum(a["limit"] for a in open_accounts))
        assert s["total_balance"] == pytest.approx(sum(a["balance"] for a in open_accounts))
        assert 350 <= p["score"]["value"] <= 950
        if s["overdue_accounts"]:
            assert s["max_dpd_24m"] >= 30


def test_schema_drift_from_the_13th_month(book, meta) -> None:
    assert meta["schema_drift_from"] == "2025-01"
    versions = Counter()
    for _, line in json_lines(book, "bureau"):
        p = parse(line)
        if p is None:
            continue
        v2 = p["report_time"] >= "2025-01"  # a re-sent copy keeps its original version
        versions[p["schema_version"]] += 1
        assert p["schema_version"] == (2 if v2 else 1)
        assert ("model" in p["score"]) is not v2
        assert ("alerts" in p) is v2
        assert ("consumer_finance_loans" in p["summary"]) is v2
    assert versions[1] > 0 and versions[2] > 0
    for name, line in json_lines(book, "events"):
        p = parse(line)
        if p is not None:
            assert ("geo" in p) is (name >= "events_202501.jsonl")


def test_nonpositive_amounts_and_event_faults(book, db, meta) -> None:
    bad = db.execute("SELECT COUNT(*) FROM applications WHERE requested_amount <= 0").fetchone()
    assert bad[0] == meta["faults"]["applications_nonpositive_amount"] > 0
    rejected = db.execute(
        "SELECT COUNT(*) FROM applications WHERE requested_amount <= 0 AND status != 'rejected'"
    ).fetchone()
    assert rejected[0] == 0
    malformed = sum(parse(line) is None for _, line in json_lines(book, "events"))
    assert malformed == meta["faults"]["events_malformed_lines"] > 0


def test_events_fall_in_the_30_days_before_an_application(book, db, meta) -> None:
    applied: dict[str, list[dt.datetime]] = {}
    for cid, ts in db.execute("SELECT customer_id, applied_at FROM applications"):
        applied.setdefault(cid, []).append(dt.datetime.fromisoformat(ts))
    events = [p for _, line in json_lines(book, "events") if (p := parse(line)) is not None]
    assert len({e["event_id"] for e in events}) == len(events)
    for e in events:
        ts = dt.datetime.fromisoformat(e["ts"])
        assert any(a - dt.timedelta(days=30) <= ts < a for a in applied[e["customer_id"]])
        assert e["props"]["night"] is (ts.hour < 6)
        assert e["event_type"] in ref.EVENT_TYPES and e["os"] in ("android", "ios")
    n_apps = meta["row_counts"]["applications"]
    total = meta["files"]["events"]["total"]
    assert 3 * n_apps <= total <= 8 * n_apps


def test_notes_are_blank_line_separated_records(book, db, meta) -> None:
    customers = {r[0] for r in db.execute("SELECT customer_id FROM customers")}
    headerless = 0
    for path in sorted((book / "landing" / "notes").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n") and not text.endswith("\n\n") and "\n\n\n" not in text
    for name, record in note_records(book):
        lines = record.strip("\n").split("\n")
        assert all(line.strip() for line in lines)
        # the grammar collect and silver read agrees with the generator's own header
        assert bool(re.match(NOTE_PATTERN, record)) == bool(NOTE_HEADER.match(lines[0]))
        if NOTE_HEADER.match(lines[0]):
            body = lines[1:]
            header = dict(kv.split("=", 1) for kv in lines[0].split(" ")[1:] if "=" in kv)
            assert header["customer"] in customers
            assert name == f"notes_{header['time'][:4]}{header['time'][5:7]}.txt"
        else:
            headerless += 1
            body = lines
        assert 1 <= len(body) <= 3 and not any(line.startswith("#") for line in body)
    assert headerless == meta["faults"]["notes_missing_header"] > 0


# --- applications, loans, repayments ---------------------------------------------------


def test_pending_applications_are_exactly_the_last_month(book, db, meta) -> None:
    rows = db.execute("SELECT * FROM applications").fetchall()
    for r in rows:
        last_month = r["applied_at"] >= "2026-03-01"
        assert r["applied_at"] < "2026-04-01"
        assert (r["status"] == "pending") is last_month
        assert (r["decided_at"] is None) is last_month
        if last_month:
            assert r["requested_amount"] > 0 and r["updated_at"] == r["applied_at"]
        else:
            assert r["applied_at"] <= r["decided_at"] == r["updated_at"]
    pending = {r["application_id"] for r in rows if r["status"] == "pending"}
    assert len(pending) == meta["applications_by_status"]["pending"] > 0
    with_loans = {r[0] for r in db.execute("SELECT application_id FROM loans")}
    assert not pending & with_loans
    clean = {
        p["query_ref"] for _, line in json_lines(book, "bureau") if (p := parse(line)) is not None
    }
    assert pending <= clean  # no pending application lost its bureau report
    bad_customers = db.execute(
        "SELECT COUNT(*) FROM applications a JOIN customers c USING (customer_id)"
        " WHERE a.status = 'pending' AND (length(c.mobile) != 11)"
    ).fetchone()[0]
    assert bad_customers == 0
    for (nid,) in db.execute(
        "SELECT c.national_id FROM applications a JOIN customers c USING (customer_id)"
        " WHERE a.status = 'pending'"
    ):
        assert is_valid_national_id(nid)


def test_one_loan_per_approved_application(db) -> None:
    rows = db.execute(
        "SELECT l.*, a.applied_at, a.status AS app_status, a.term_months AS app_term,"
        " a.customer_id AS app_customer FROM loans l JOIN applications a USING (application_id)"
    ).fetchall()
    approved = db.execute("SELECT COUNT(*) FROM applications WHERE status='approved'").fetchone()
    assert len(rows) == approved[0] == len({r["application_id"] for r in rows})
    for r in rows:
        assert r["app_status"] == "approved" and r["customer_id"] == r["app_customer"]
        assert 0 <= (day(r["disbursed_at"]) - day(r["applied_at"])).days <= 3
        assert r["term_months"] == r["app_term"] and r["term_months"] in (3, 6, 12, 24)
        assert r["principal"] >= 1000 and 0.072 <= r["annual_rate"] <= 0.24


def test_applications_declare_the_attributes_of_their_day(db) -> None:
    rows = db.execute(
        "SELECT a.applied_at, a.monthly_income AS declared, a.employment_type AS app_job,"
        " a.education AS app_edu, c.* FROM applications a JOIN customers c USING (customer_id)"
    ).fetchall()
    before_edit = [r for r in rows if r["applied_at"] < r["updated_at"]]
    for r in rows:
        assert (r["app_job"], r["app_edu"]) == (r["employment_type"], r["education"])
        if r["applied_at"] >= r["updated_at"] or r["updated_at"] == r["registered_at"]:
            # the record's current income is the one of the application's day
            assert r["declared"] == r["monthly_income"]
    # applications made before the customer's record was edited declared the old income
    changed = [r for r in before_edit if r["declared"] != r["monthly_income"]]
    assert len(changed) > 0.5 * len(before_edit) > 50
    assert all(r["declared"] >= 500 and r["declared"] % 100 == 0 for r in rows)


def test_repayment_schedule_and_dpd_are_consistent(db) -> None:
    """An installment has a paid date once settled in full (``amount_paid`` its amount, or
    its principal part when a prepayment settled it, then the loan is ``prepaid``); an
    unsettled one has none and at most a first part paid."""
    loans = {r["loan_id"]: r for r in db.execute("SELECT * FROM loans")}
    installments: dict[str, list[sqlite3.Row]] = {}
    for r in db.execute("SELECT * FROM repayments ORDER BY loan_id, installment_no"):
        installments.setdefault(r["loan_id"], []).append(r)
        due = day(r["due_date"])
        if r["paid_date"] is None:
            assert 0 <= r["amount_paid"] < r["amount_due"]
            assert r["dpd"] == max((AS_OF - due).days, 0)
            if r["amount_paid"] > 0:
                assert due < AS_OF
        else:
            paid = day(r["paid_date"])
            assert paid < AS_OF
            assert 0 < r["amount_paid"] <= r["amount_due"]
            if r["amount_paid"] == r["amount_due"]:
                assert due < AS_OF
            assert r["dpd"] == max((paid - due).days, 0)
        assert r["repayment_id"] == f"{r['loan_id']}-{r['installment_no']:02d}"
    assert installments.keys() == loans.keys()
    for loan_id, rows in installments.items():
        loan = loans[loan_id]
        disbursed = day(loan["disbursed_at"])
        assert [r["installment_no"] for r in rows] == list(range(1, loan["term_months"] + 1))
        assert [day(r["due_date"]) for r in rows] == [
            add_months(disbursed, k) for k in range(1, loan["term_months"] + 1)
        ]
        assert len({r["amount_due"] for r in rows}) == 1
        prepaid = [r for r in rows if r["paid_date"] and r["amount_paid"] < r["amount_due"]]
        unpaid_dpd = max((r["dpd"] for r in rows if r["paid_date"] is None), default=0)
        if prepaid:
            assert loan["status"] == "prepaid"
        elif unpaid_dpd >= 90:
            assert loan["status"] == "defaulted"
        elif all(r["paid_date"] is not None for r in rows):
            assert loan["status"] == "closed"
        else:
            assert loan["status"] == "active"


def test_label_bad_rate_is_realistic(db, meta) -> None:
    """The default definition, recomputed from repayments, matches and is 5-10% bad: 90+
    days past due within the first 6 installments (all of a shorter loan's), judged 90
    days after the last of them falls due; a worst delay of 30-89 days is indeterminate."""
    installments: dict[str, list[tuple[dt.date, dt.date | None]]] = {}
    for loan_id, due_date, paid_date in db.execute(
        "SELECT loan_id, due_date, paid_date FROM repayments ORDER BY loan_id, installment_no"
    ):
        installments.setdefault(loan_id, []).append(
            (day(due_date), day(paid_date) if paid_date else None)
        )
    worst: dict[str, int] = {}
    judged: dict[str, dt.date] = {}
    for loan_id, rows in installments.items():
        window = rows[:6]
        judged[loan_id] = window[-1][0] + dt.timedelta(days=90)
        worst[loan_id] = max(
            max((min(paid or judged[loan_id], judged[loan_id]) - due).days, 0)
            for due, paid in window
        )
    matured = [k for k, on in judged.items() if on <= AS_OF]
    bad = sum(worst[k] >= 90 for k in matured)
    indeterminate = sum(30 <= worst[k] < 90 for k in matured)
    assert len(matured) == meta["label"]["matured_loans"]
    assert bad == meta["label"]["bad_loans"]
    assert indeterminate == meta["label"]["indeterminate_loans"]
    assert 0.05 <= bad / len(matured) <= 0.10
    assert meta["label"]["bad_rate"] == pytest.approx(bad / len(matured), abs=1e-6)


# --- payment behaviour: cures, partial payments, prepayment, write-off and recoveries ----


def settlement_rows(out: Path) -> list[dict]:
    """Every settlement row as canonical fields, read with Python's csv module, plus
    ``cents`` and ``day`` (None where the injected faults make them unreadable)."""
    rows = []
    for path in sorted((out / "landing" / "settlements").glob("*.csv")):
        raw = path.read_bytes()
        if raw.startswith(codecs.BOM_UTF8):
            text = raw[3:].decode("utf-8")
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("gbk")
        header, *body = list(csv.reader(io.StringIO(text, newline="")))
        # dialects with the same header put the columns in the same order
        order = next(d.order for d in settlements.DIALECTS if list(d.header) == header)
        for fields in body:
            row = {settlements.CANONICAL[j]: v for j, v in zip(order, fields, strict=False)}
            if len(fields) < len(header):  # a row cut short keeps its loan id
                rows.append(row | {"fault": True, "memo": ""})
                continue
            amount, paid_at = row["amount"], row["paid_at"]
            row["cents"] = (
                None
                if amount in settlements.BAD_AMOUNTS
                else round(float(re.sub(r"[^0-9.]", "", amount)) * 100)
            )
            row["day"] = None if paid_at in settlements.BAD_DATES else settlement_day(paid_at)
            row["fault"] = row["cents"] is None or row["day"] is None or row["loan_id"] == ""
            rows.append(row)
    return rows


def settlement_day(s: str) -> dt.date:
    """The date of any of the processors' date formats."""
    if m := re.fullmatch(r"(\d{4})\D(\d{1,2})\D(\d{1,2})\D?( .*)?", s):
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    if re.fullmatch(r"\d{8}", s):
        return dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
    return dt.datetime.strptime(s, "%d-%b-%Y").date()


def memo_kind(row: dict) -> str:
    memo = row.get("memo", "")
    if memo.startswith(settlements.PREPAYMENT_MEMO):
        return "prepayment"
    if memo.startswith(settlements.RECOVERY_MEMO):
        return "recovery"
    return "installment"


def outstanding_cents(principal: float, annual_rate: float, term: int, paid: int) -> int:
    """The annuity schedule's principal outstanding after ``paid`` installments, in cents,
    computed here independently of the generator."""
    if paid >= term:
        return 0
    r = annual_rate / 12
    annuity = principal * r / (1 - (1 + r) ** -term)
    balance = principal * (1 + r) ** paid - annuity * ((1 + r) ** paid - 1) / r
    return round(balance * 100)


def loan_dpd(installments: list[tuple[dt.date, dt.date | None]], on: dt.date) -> int:
    """Days past due of a loan on a day: that of its oldest installment due and unpaid."""
    late = [
        (on - due).days for due, paid in installments if due < on and (paid is None or paid >= on)
    ]
    return max(late, default=0)


@pytest.fixture(scope="module")
def book_rows(book, db) -> dict:
    loans = {r["loan_id"]: r for r in db.execute("SELECT * FROM loans")}
    reps: dict[str, list[sqlite3.Row]] = {}
    for r in db.execute("SELECT * FROM repayments ORDER BY loan_id, installment_no"):
        reps.setdefault(r["loan_id"], []).append(r)
    return {"loans": loans, "repayments": reps, "settlements": settlement_rows(book)}


def test_roll_rates_are_below_one_and_some_defaulted_loans_cure(book_rows, meta) -> None:
    """Of the loans 1-29 (30-59) DPD on a day, the share 30+ (60+) DPD 30 days later
    (warning.py's roll rates), pooled over the book's last year; cures counted exactly."""
    paths = {
        loan_id: [
            (day(r["due_date"]), day(r["paid_date"]) if r["paid_date"] else None) for r in rows
        ]
        for loan_id, rows in book_rows["repayments"].items()
    }
    rolls = Counter()
    for back in range(60, 400, 10):
        on = AS_OF - dt.timedelta(days=back)
        later = on + dt.timedelta(days=30)
        for inst in paths.values():
            before, after = loan_dpd(inst, on), loan_dpd(inst, later)
            if 1 <= before <= 29:
                rolls["from_1"] += 1
                rolls["to_30"] += after >= 30
            elif 30 <= before <= 59:
                rolls["from_30"] += 1
                rolls["to_60"] += after >= 60
    roll_1_30 = rolls["to_30"] / rolls["from_1"]
    roll_30_60 = rolls["to_60"] / rolls["from_30"]
    assert 0.2 < roll_1_30 < 0.75 and rolls["from_1"] > 200
    assert 0.2 < roll_30_60 < 0.9 and rolls["from_30"] > 100
    # A cure pays every arrear on one day; nothing else pays an installment 26+ days late.
    worst_paid_together: dict[tuple[str, dt.date], int] = {}
    for loan_id, inst in paths.items():
        for due, paid in inst:
            if paid is not None:
                late = (paid - due).days
                key = (loan_id, paid)
                worst_paid_together[key] = max(worst_paid_together.get(key, 0), late)
    late_groups = Counter(v for v in worst_paid_together.values() if v > 25)
    perf = meta["performance"]
    assert sum(n for v, n in late_groups.items() if v >= 30) == perf["cures_from_30_dpd"]
    assert sum(n for v, n in late_groups.items() if v >= 90) == perf["cures_from_90_dpd"] > 0
    assert perf["cures"] >= perf["cures_from_30_dpd"] > perf["cures_from_90_dpd"]
    assert perf["cured_loans"] <= perf["cures"] and 0 < perf["redefaults"] < perf["cures"]
    # a loan once 90+ DPD that cured is back at 0 DPD the day after its cure
    back = [
        (loan_id, paid)
        for (loan_id, paid), v in worst_paid_together.items()
        if v >= 90 and paid + dt.timedelta(days=1) < AS_OF
    ]
    assert back and all(
        loan_dpd(paths[loan_id], paid + dt.timedelta(days=1)) < 30 for loan_id, paid in back
    )


def test_partial_payments_add_up_to_the_installments(book_rows, meta) -> None:
    """Per loan, the processor's installment rows add up to the repayments' amount_paid
    (prepayments aside); rows beyond one per fully paid installment are first parts."""
    perf = meta["performance"]
    loans, reps, rows = book_rows["loans"], book_rows["repayments"], book_rows["settlements"]
    installment_rows = [r for r in rows if memo_kind(r) == "installment"]
    full = sum(
        r["paid_date"] is not None and r["amount_paid"] == r["amount_due"]
        for rs in reps.values()
        for r in rs
    )
    assert len(installment_rows) == full + perf["partial_payments"]
    assert perf["partial_payments"] == (
        perf["partial_installments_settled"] + perf["partial_installments_open"]
    )
    part_paid_open = [
        r for rs in reps.values() for r in rs if r["paid_date"] is None and r["amount_paid"] > 0
    ]
    assert len(part_paid_open) == perf["partial_installments_open"] > 0
    assert 0.005 < perf["partial_payments"] / meta["row_counts"]["repayments"] < 0.06
    cents: Counter[str] = Counter()
    faulty = set()
    for r in installment_rows:
        if r["fault"]:
            faulty.add(r["loan_id"])
        else:
            cents[r["loan_id"]] += r["cents"]
    expected = {
        loan_id: sum(
            round(r["amount_paid"] * 100)
            for r in rs
            if not (r["paid_date"] and r["amount_paid"] < r["amount_due"])
        )
        for loan_id, rs in reps.items()
    }
    expected = {k: v for k, v in expected.items() if v}
    wrong = {k for k in expected.keys() | cents.keys() if expected.get(k) != cents.get(k)}
    missing_ids = meta["faults"]["settlements_missing_loan_id"]
    # a loan is off only where a row of it is unreadable or has lost its loan id
    assert len(wrong - faulty) <= missing_ids and len(wrong) <= len(faulty) + missing_ids
    assert len(expected) > 1000 and set(cents) <= set(loans)


def test_prepaid_loans_settle_their_outstanding_principal(book_rows, meta) -> None:
    perf = meta["performance"]
    loans, reps, rows = book_rows["loans"], book_rows["repayments"], book_rows["settlements"]
    prepayments = {r["loan_id"]: r for r in rows if memo_kind(r) == "prepayment"}
    prepaid = {k for k, v in loans.items() if v["status"] == "prepaid"}
    assert prepaid == set(prepayments) and len(prepaid) == perf["prepaid_loans"] > 10
    assert 0.02 < len(prepaid) / len(loans) < 0.15
    settled = 0
    for loan_id in prepaid:
        loan, rs = loans[loan_id], reps[loan_id]
        first = min(
            i for i, r in enumerate(rs) if r["paid_date"] and r["amount_paid"] < r["amount_due"]
        )
        assert first >= 1  # never before the first installment is paid
        assert all(r["amount_paid"] == r["amount_due"] for r in rs[:first])
        tail = rs[first:]
        on = {r["paid_date"] for r in tail}
        assert len(on) == 1 and all(r["dpd"] == 0 for r in tail)
        on_day = day(on.pop())
        assert day(rs[first - 1]["paid_date"]) <= on_day < day(tail[0]["due_date"])
        owed = outstanding_cents(loan["principal"], loan["annual_rate"], loan["term_months"], first)
        paid = sum(round(r["amount_paid"] * 100) for r in tail)
        assert paid == prepayments[loan_id]["cents"] and abs(paid - owed) <= 1
        assert prepayments[loan_id]["day"] == on_day
        settled += paid
    assert settled == round(perf["prepaid_principal"] * 100)
    assert (
        sum(
            len(reps[k])
            - min(
                i
                for i, r in enumerate(reps[k])
                if r["paid_date"] and r["amount_paid"] < r["amount_due"]
            )
            for k in prepaid
        )
        == perf["prepaid_installments"]
    )


def test_recoveries_follow_write_offs_and_stay_below_the_principal(book_rows, meta) -> None:
    perf = meta["performance"]
    loans, reps, rows = book_rows["loans"], book_rows["repayments"], book_rows["settlements"]
    defaulted = {k for k, v in loans.items() if v["status"] == "defaulted"}
    assert len(defaulted) == perf["written_off_loans"] > 20
    unpaid_principal = {}
    for loan_id in defaulted:
        loan, rs = loans[loan_id], reps[loan_id]
        settled = sum(r["paid_date"] is not None for r in rs)
        assert all(r["paid_date"] is not None for r in rs[:settled])  # unpaid from one on
        unpaid_principal[loan_id] = outstanding_cents(
            loan["principal"], loan["annual_rate"], loan["term_months"], settled
        )
        # written off the night its oldest unpaid installment reached 90 DPD
        written_off = day(rs[settled]["due_date"]) + dt.timedelta(days=90)
        assert loan["updated_at"] == f"{min(written_off, AS_OF - dt.timedelta(days=1))} 02:00:00"
    assert abs(sum(unpaid_principal.values()) - round(perf["written_off_principal"] * 100)) <= len(
        defaulted
    )
    recovered: Counter[str] = Counter()
    recoveries = [r for r in rows if memo_kind(r) == "recovery"]
    for r in recoveries:
        assert r["loan_id"] in defaulted
        assert day(loans[r["loan_id"]]["updated_at"]) < r["day"] < AS_OF
        recovered[r["loan_id"]] += r["cents"]
    assert (
        len(recoveries) == perf["recovery_payments"] and len(recovered) == perf["recovered_loans"]
    )
    assert sum(recovered.values()) == round(perf["recovered"] * 100)
    assert all(0 < c < unpaid_principal[k] for k, c in recovered.items())
    share = sum(recovered.values()) / sum(unpaid_principal[k] for k in recovered)
    assert 0.15 < share < 0.6
    assert 0.2 < len(recovered) / len(defaulted) < 0.8


def test_applications_and_late_payments_are_seasonal(book, db) -> None:
    cdf = application_day_cdf(0, 366)  # 1970-01-01 to 1971-01-01: per day, one month's weight

    def mass(first: int, last: int) -> float:
        return (cdf[last - 1] - (cdf[first - 1] if first else 0.0)) / (last - first)

    jan, feb, mar, nov = mass(0, 31), mass(31, 59), mass(59, 90), mass(304, 334)
    assert feb / mar == pytest.approx(0.7 * (1 + 45 / 365) / (1 + 74 / 365), rel=0.01)
    assert jan > feb and nov / mar > 1.1
    months = Counter(r[0][5:7] for r in db.execute("SELECT applied_at FROM applications"))
    assert months["02"] < months["01"] and months["02"] < months["03"]
    assert months["11"] > months["10"] and months["12"] > months["10"]
    late: dict[bool, list[int]] = {True: [0, 0], False: [0, 0]}
    for due, paid in db.execute(
        "SELECT due_date, paid_date FROM repayments WHERE paid_date IS NOT NULL"
    ):
        festival = due[5:7] in ("01", "02")
        late[festival][0] += 1
        late[festival][1] += 0 < (day(paid) - day(due)).days <= 25
    assert late[True][1] / late[True][0] > 1.15 * late[False][1] / late[False][0]


# --- determinism -----------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(book, tmp_path) -> None:
    again = tmp_path / "again"
    generate(again, customers=CUSTOMERS, seed=SEED, chunk_size=700)
    assert file_hashes(again) == file_hashes(book)
    other = tmp_path / "other"
    generate(other, customers=CUSTOMERS, seed=SEED + 1, chunk_size=700)
    theirs, ours = file_hashes(other), file_hashes(book)
    assert ours["lending.db"] != theirs["lending.db"]
    shared = (set(ours) & set(theirs)) - {"lending.db", "generation.json"}
    assert shared and all(ours[f] != theirs[f] for f in shared)


def test_chunk_size_does_not_change_the_data(tmp_path) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    generate(small, customers=600, seed=7, chunk_size=100)
    generate(large, customers=600, seed=7, chunk_size=1000)
    a, b = file_hashes(small), file_hashes(large)
    assert a.keys() == b.keys()
    # SQLite's header counts transactions, so the database is compared by content
    assert {k: v for k, v in a.items() if k != "lending.db"} == {
        k: v for k, v in b.items() if k != "lending.db"
    }
    dumps = []
    for out in (small, large):
        con = sqlite3.connect(out / "lending.db")
        dumps.append(list(con.iterdump()))
        con.close()
    assert dumps[0] == dumps[1] and len(dumps[0]) > 600


def test_one_customer_chunks_do_not_change_the_data(tmp_path) -> None:
    """Chunks so small that some hold no bureau account, no loan or no payment at all (an
    empty chunk once wrote a bureau total as 0 instead of 0.0)."""
    one, all_ = tmp_path / "one", tmp_path / "all"
    generate(one, customers=200, seed=2, chunk_size=1)
    generate(all_, customers=200, seed=2, chunk_size=1000)
    a, b = file_hashes(one), file_hashes(all_)
    assert {k: v for k, v in a.items() if k != "lending.db"} == {
        k: v for k, v in b.items() if k != "lending.db"
    }
    dumps = []
    for out in (one, all_):
        con = sqlite3.connect(out / "lending.db")
        dumps.append(list(con.iterdump()))
        con.close()
    assert dumps[0] == dumps[1]


def test_rerun_replaces_previous_outputs(tmp_path) -> None:
    generate(tmp_path, customers=300, seed=1, months=27)
    summary = generate(tmp_path, customers=200, seed=1, months=14)
    assert summary.as_of == dt.date(2025, 3, 1)
    bureau = sorted(p.name for p in (tmp_path / "landing" / "bureau").iterdir())
    assert bureau[0] == "bureau_202401.jsonl" and bureau[-1] == "bureau_202502.jsonl"
    con = sqlite3.connect(tmp_path / "lending.db")
    assert con.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 200
    assert con.execute("SELECT MAX(applied_at) FROM applications").fetchone()[0] < "2025-03-01"
    con.close()
    meta = json.loads((tmp_path / "generation.json").read_text(encoding="utf-8"))
    assert meta["as_of"] == "2025-03-01" and meta["customers"] == 200
    assert str(summary).startswith("200 customers, ")
