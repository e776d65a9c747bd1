"""A Lending-Club-like loan-level file with known ground truth, for ``evaluate-dataset``.

``riskctl evaluate-dataset`` takes any lender's loan file as it comes: money strings
(``"$12,000.00 "``), percentages (``"13.56%"``), terms (``" 36 months"``), two-digit-year
dates (``"28-Feb-97"``), free text with commas, doubled quotes and line breaks, ids,
thousands of employer titles, missing values spelled four ways. This module writes such
a file, fast (vectorized numpy, pyarrow's CSV and Parquet writers, a chunk at a time), so
the cleaning can be tested on it and timed at a million rows.

Defaults follow a logistic model of a hidden creditworthiness and of what the file shows
(grade, interest rate, debt-to-income, income, term, home ownership, revolving
utilization, delinquencies, inquiries, purpose), so a model trained on the file reaches
a test AUC of about 0.70. A few rows are planted bad (missing target, unparseable issue
date, truncated CSV records, an amount in words) and ``write_loan_file`` returns their
exact counts, each under the quarantine rule ``riskcontrol.lenderfile.prepare.clean`` should apply.

Every draw is a pure function of (seed, row number) (``KeyedRandom``), so the rows do not
depend on the chunk size.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from riskcontrol.synthetic.generate.rng import KeyedRandom, sigmoid

FORMATS = ("csv", "parquet")
TARGET = "loan_status"
TIME_COL = "issue_d"
BAD_VALUES = ("Charged Off", "Default")
COLUMNS = (
    "id",
    "member_id",
    "loan_amnt",
    "term",
    "int_rate",
    "installment",
    "grade",
    "sub_grade",
    "emp_title",
    "emp_length",
    "home_ownership",
    "annual_inc",
    "verification_status",
    "issue_d",
    "loan_status",
    "purpose",
    "zip_code",
    "addr_state",
    "dti",
    "delinq_2yrs",
    "earliest_cr_line",
    "inq_last_6mths",
    "open_acc",
    "revol_bal",
    "revol_util",
    "total_acc",
    "policy_code",
    "desc",
)

GRADES = np.array(list("ABCDEFG"))
GRADE_SHARES = (0.17, 0.29, 0.26, 0.15, 0.08, 0.04, 0.01)
# A grade is a band of the credit score: cut points of a standard normal at the shares.
_GRADE_CUTS = np.array(
    [statistics.NormalDist().inv_cdf(q) for q in np.cumsum(GRADE_SHARES)[:-1]], dtype=float
)
EMP_LENGTHS = np.array(
    ["< 1 year", "1 year", *[f"{i} years" for i in range(2, 10)], "10+ years", "n/a"]
)
EMP_LENGTH_P = (0.08, 0.07, 0.09, 0.08, 0.06, 0.06, 0.05, 0.05, 0.05, 0.04, 0.33, 0.04)
HOME = np.array(["MORTGAGE", "RENT", "OWN", "OTHER"])
HOME_P = (0.48, 0.40, 0.11, 0.01)
VERIFICATION = np.array(["Verified", "Source Verified", "Not Verified"])
PURPOSES = np.array(
    [
        "debt_consolidation",
        "credit_card",
        "home_improvement",
        "other",
        "major_purchase",
        "small_business",
        "car",
        "medical",
        "moving",
        "vacation",
        "house",
        "wedding",
        "renewable_energy",
        "educational",
    ]
)
PURPOSE_P = (0.55, 0.2, 0.06, 0.05, 0.03, 0.025, 0.02, 0.015, 0.01, 0.01, 0.01, 0.008, 0.002, 0.01)
# Two-letter codes, the most frequent first (weights fall along the list).
_STATE_CODES = (
    "CA NY TX FL IL NJ PA OH GA VA NC MI MA MD AZ WA CO MN MO CT IN TN NV WI AL OR LA SC KY "
    "OK KS UT AR NM HI WV NH RI MS MT DE DC AK WY SD VT NE ME ID ND"
)
STATES = np.array(_STATE_CODES.split())
MONTHS = np.array(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
)
FIRST_ISSUE, LAST_ISSUE = dt.date(1995, 1, 1), dt.date(2015, 12, 31)
_EPOCH = dt.date(1970, 1, 1)
AMOUNT_IN_WORDS_EVERY = 1_009  # one loan amount in ~1,000 written in words (unparseable)

_JOBS = (
    "Teacher",
    "Manager",
    "Registered Nurse",
    "Owner",
    "Supervisor",
    "Sales",
    "Driver",
    "Project Manager",
    "Office Manager",
    "General Manager",
    "Director",
    "Engineer",
    "Software Engineer",
    "Accountant",
    "Mechanic",
    "Operations Manager",
    "Police Officer",
    "Truck Driver",
    "Analyst",
    "Administrative Assistant",
    "Technician",
    "Account Manager",
    "Electrician",
    "Attorney",
    "Nurse",
    "Pharmacist",
    "Store Manager",
    "Consultant",
    "Vice President",
    "Cashier",
)
_EMPLOYERS = (
    "Walmart",
    "US Army",
    "Bank of America",
    "AT&T",
    "Kaiser Permanente",
    "IBM",
    "UPS",
    "Target",
    "Wells Fargo",
    "USPS",
    "Home Depot",
    "Lowe's",
    "Verizon",
    "JP Morgan Chase",
    "Comcast",
    "State of California",
    "Smith, Barney & Co",
    'The "Best" Diner',
    "Johnson, Johnson, and Sons",
    'Joe\'s "Famous" Pizza, Inc.',
)


def emp_titles(n: int = 6000) -> np.ndarray:
    """A fixed vocabulary of ``n`` employer titles, the most frequent first.

    Plain job names lead; then "<job> at <employer>" and "<job>, <city office> #k", some
    holding commas and double quotes (which a CSV writer must double, RFC 4180).
    """
    titles = list(_JOBS) + [f"{e}" for e in _EMPLOYERS]
    titles += [f"{j} at {e}" for e in _EMPLOYERS for j in _JOBS]
    k = 0
    while len(titles) < n:
        titles.append(f"{_JOBS[k % len(_JOBS)]}, office #{k // len(_JOBS) + 1}")
        k += 1
    return np.array(titles[:n], dtype=object)


_TITLES = emp_titles()
# Zipf-like title frequencies: a few thousand levels, the top 30 covering about a third.
_TITLE_P = 1.0 / (np.arange(len(_TITLES)) + 8.0) ** 1.05

_DESC_OPENERS = (
    "I need this loan to pay off my credit cards",
    'Consolidating my "high" interest debt, thanks',
    "Paying for a new roof before the winter",
    "My car broke down and I need a reliable one for work",
    "Medical bills from last year, want one monthly payment",
    "Starting a small bakery with my sister, we have customers lined up",
)
_DESC_MIDDLES = (
    "I have never missed a payment in {years} years.",
    "My job is stable, I have worked there for a long time,\nand my income covers this easily.",
    'The bank said "no" because my history is short, but I always pay on time.',
    "Monthly budget: rent, car, utilities; about ${spare:,} left over each month.",
    "Please consider my application.",
)


def describe(keys: np.ndarray, rng: KeyedRandom, amount: np.ndarray, day: np.ndarray) -> list:
    """Long free-text descriptions for a quarter of the rows (None for the rest): the
    amount, a date and two sentences, some with line breaks and quoted words."""
    has = rng.bernoulli(keys, 0.25, "desc")
    opener = rng.integers(keys, 0, len(_DESC_OPENERS), "desc_opener")
    middle = rng.integers(keys, 0, len(_DESC_MIDDLES), "desc_middle")
    years = rng.integers(keys, 2, 25, "desc_years")
    spare = rng.integers(keys, 2, 40, "desc_spare") * 50
    dates = (np.asarray(day, dtype=np.int64) - 20).astype("datetime64[D]").astype(dt.date)
    out: list = [None] * len(keys)
    for i in np.flatnonzero(has):
        d = dates[i]
        text = _DESC_MIDDLES[middle[i]].format(years=years[i], spare=spare[i])
        out[i] = (
            f"  Borrower added on {d.month:02d}/{d.day:02d}/{d.year % 100:02d} > "
            f"{_DESC_OPENERS[opener[i]]} (${amount[i]:,.0f}). {text}<br>"
        )
    return out


def draw(seed: int, keys: np.ndarray) -> dict[str, np.ndarray]:
    """The numbers behind rows ``keys``: features, the default flag and the plants."""
    rng = KeyedRandom(seed, "loanfile")
    n = len(keys)
    z = rng.normal(keys, "creditworthiness")  # hidden: what no column states outright
    score = 0.8 * z + 0.6 * rng.normal(keys, "grade_noise")
    grade = np.searchsorted(_GRADE_CUTS, -score)
    sub = rng.integers(keys, 0, 5, "sub_grade")
    rate = 5.5 + 3.6 * grade + 0.75 * sub + 0.6 * rng.normal(keys, "rate_noise")
    rate = np.clip(rate, 5.31, 30.99).round(2)
    first, last = (FIRST_ISSUE - _EPOCH).days, (LAST_ISSUE - _EPOCH).days
    # More loans in later years, as a growing lender's book has.
    day = first + np.floor((last - first + 1) * np.sqrt(rng.uniform(keys, "issue_d"))).astype(int)
    income = np.exp(10.95 + 0.12 * z + 0.5 * rng.normal(keys, "income"))
    income = np.where(rng.bernoulli(keys, 0.5, "round_income"), np.round(income, -3), income)
    income = np.maximum(income, 4000.0).round(2)
    amount = np.exp(9.2 + 0.35 * np.log(income / 57000) + 0.55 * rng.normal(keys, "amount"))
    amount = (np.clip(amount, 1000, 40000) / 25).round() * 25
    term60 = rng.bernoulli(keys, 0.12 + 0.06 * np.minimum(grade, 4) + 0.1 * (amount > 20000), "t")
    dti = np.clip(17 - 2.5 * z + 7.5 * rng.normal(keys, "dti"), 0, 45).round(2)
    util = np.clip(52 - 12 * z + 20 * rng.normal(keys, "revol_util"), 0, 130).round(1)
    delinq = rng.poisson(keys, 0.15 * np.exp(-0.4 * z), "delinq_2yrs", cap=20)
    inq = rng.poisson(keys, 0.7 * np.exp(-0.3 * z), "inq_last_6mths", cap=30)
    home = rng.choice(keys, np.array(HOME_P), "home_ownership")
    purpose = rng.choice(keys, np.array(PURPOSE_P), "purpose")
    logit = (
        -2.3
        + 0.14 * grade
        + 0.04 * (rate - 13)
        + 0.014 * (dti - 17)
        - 0.4 * np.log(income / 57000)
        + 0.3 * term60
        + 0.15 * (home == 1)
        + 0.004 * (util - 52)
        + 0.1 * np.minimum(delinq, 5)
        + 0.07 * np.minimum(inq, 6)
        + 0.35 * (purpose == 5)  # small_business
        - 0.22 * z
    )
    bad = rng.bernoulli(keys, sigmoid(logit), "default")
    history_years = np.clip(15 + 2 * z + 7 * rng.normal(keys, "history"), 3, 45)
    return {
        "keys": keys,
        "grade": grade,
        "sub": sub,
        "rate": rate,
        "day": day,
        "income": income,
        "amount": amount,
        "term60": term60,
        "dti": dti,
        "util": util,
        "delinq": delinq,
        "inq": inq,
        "home": home,
        "purpose": purpose,
        "bad": bad,
        "default_kind": rng.bernoulli(keys, 0.08, "default_kind"),
        "earliest": day - (history_years * 365.25).astype(int),
        "emp_length": rng.choice(keys, np.array(EMP_LENGTH_P), "emp_length"),
        "verification": rng.choice(keys, np.array([0.32, 0.33, 0.35]), "verification"),
        "state": rng.choice(keys, 1.0 / (np.arange(len(STATES)) + 3.0), "addr_state"),
        "zip": 10 + rng.choice(keys, 1.0 / (np.arange(990) + 20.0), "zip_code"),
        "title": rng.choice(keys, _TITLE_P, "emp_title"),
        "no_title": rng.bernoulli(keys, 0.06, "no_emp_title"),
        "open_acc": 2 + rng.poisson(keys, np.full(n, 9.0), "open_acc"),
        "more_acc": rng.poisson(keys, np.full(n, 12.0), "total_acc"),
        "revol_bal": np.exp(9.2 + 0.9 * rng.normal(keys, "revol_bal")).round(),
        # Planted faults, rare, counted exactly by ``ground_truth``.
        "missing_target": rng.bernoulli(keys, 0.004, "plant_target"),
        "bad_time": rng.bernoulli(keys, 0.002, "plant_time"),
        "amount_in_words": keys % AMOUNT_IN_WORDS_EVERY == 17,
        "no_income": rng.bernoulli(keys, 0.003, "plant_income"),
        "no_util": rng.bernoulli(keys, 0.001, "no_revol_util"),
    }


MALFORMED_EVERY, MALFORMED_AT = 20_011, 1_000  # CSV rows truncated to their first 3 fields
_MISSING_TARGET = (None, "n/a", "NA", "null")
_BAD_TIME = ("31-Feb-11", "not a date", None, "2011-13-45")


def malformed(keys: np.ndarray) -> np.ndarray:
    """Rows written as a truncated CSV record (a short row: ``malformed_row``)."""
    return keys % MALFORMED_EVERY == MALFORMED_AT


def _fmt(template: str, values: np.ndarray) -> list[str]:
    return [template.format(v) for v in values.tolist()]


def _dates(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]")


def render(d: dict[str, np.ndarray], seed: int) -> dict[str, list]:
    """The rows as the file shows them: strings, or None for an empty field."""
    keys = d["keys"]
    n = len(keys)

    def blank(values: list, where: np.ndarray, tokens: Sequence[str | None]) -> list:
        for i in np.flatnonzero(where):
            values[i] = tokens[int(keys[i]) % len(tokens)]
        return values

    amount = _fmt("${:,.2f} ", d["amount"])
    amount = blank(amount, d["amount_in_words"], ("ten thousand", "12,5OO.00"))
    months = np.where(d["term60"], 60, 36)
    monthly = d["rate"] / 1200
    installment = d["amount"] * monthly / (1 - (1 + monthly) ** -months)
    income = _fmt("{:.2f}", d["income"])
    income = blank(income, d["no_income"], (None, "n/a", "NA"))
    issue = _dates(d["day"]).astype(dt.date)
    issue_d = [f"{x.day:02d}-{MONTHS[x.month - 1]}-{x.year % 100:02d}" for x in issue]
    issue_d = blank(issue_d, d["bad_time"], _BAD_TIME)
    status = np.where(
        d["bad"], np.where(d["default_kind"], "Default", "Charged Off"), "Fully Paid"
    ).tolist()
    status = blank(status, d["missing_target"], _MISSING_TARGET)
    earliest = _dates(d["earliest"]).astype(dt.date)
    title = _TITLES[d["title"]].tolist()
    title = blank(title, d["no_title"], (None,))
    util = _fmt("{:.1f}%", d["util"])
    util = blank(util, d["no_util"], (None,))
    return {
        "id": _fmt("{}", 1_000_000 + keys),
        "member_id": _fmt("{}", 5_000_000 + (keys * 7919) % 10_000_019),
        "loan_amnt": amount,
        "term": [f" {m} months" for m in months.tolist()],
        "int_rate": _fmt("{:.2f}%", d["rate"]),
        "installment": _fmt("{:.2f}", installment),
        "grade": GRADES[d["grade"]].tolist(),
        "sub_grade": [f"{g}{s + 1}" for g, s in zip(GRADES[d["grade"]], d["sub"], strict=True)],
        "emp_title": title,
        "emp_length": EMP_LENGTHS[d["emp_length"]].tolist(),
        "home_ownership": HOME[d["home"]].tolist(),
        "annual_inc": income,
        "verification_status": VERIFICATION[d["verification"]].tolist(),
        "issue_d": issue_d,
        "loan_status": status,
        "purpose": PURPOSES[d["purpose"]].tolist(),
        "zip_code": _fmt("{:03d}xx", d["zip"]),
        "addr_state": STATES[d["state"]].tolist(),
        "dti": _fmt("{:.2f}", d["dti"]),
        "delinq_2yrs": _fmt("{}", d["delinq"]),
        "earliest_cr_line": [f"{MONTHS[x.month - 1]}-{x.year}" for x in earliest],
        "inq_last_6mths": _fmt("{}", d["inq"]),
        "open_acc": _fmt("{}", d["open_acc"]),
        "revol_bal": _fmt("{:.0f}", d["revol_bal"]),
        "revol_util": util,
        "total_acc": _fmt("{}", d["open_acc"] + d["more_acc"]),
        "policy_code": ["1"] * n,
        "desc": describe(keys, KeyedRandom(seed, "loanfile"), d["amount"], d["day"]),
    }


def ground_truth(d: dict[str, np.ndarray], fmt: str) -> dict[str, int]:
    """Counts of what ``clean`` should find in these rows, each row under the first rule
    it breaks (malformed_row, missing_target, invalid_time) as ``clean`` applies them."""
    broken = malformed(d["keys"]) if fmt == "csv" else np.zeros(len(d["keys"]), dtype=bool)
    no_target = ~broken & d["missing_target"]
    bad_time = ~broken & ~no_target & d["bad_time"]
    usable = ~(broken | no_target | bad_time)
    return {
        "malformed_row": int(broken.sum()),
        "missing_target": int(no_target.sum()),
        "invalid_time": int(bad_time.sum()),
        "usable": int(usable.sum()),
        "bads": int((usable & d["bad"]).sum()),
        "unparseable_loan_amnt": int((usable & d["amount_in_words"]).sum()),
        "missing_annual_inc": int((usable & d["no_income"]).sum()),
    }


_SCHEMA = pa.schema([(c, pa.string()) for c in COLUMNS])


def _table(cols: dict[str, list], rows: slice) -> pa.Table:
    return pa.table({c: pa.array(cols[c][rows], pa.string()) for c in COLUMNS}, _SCHEMA)


def _csv_chunk(cols: dict[str, list], broken: np.ndarray) -> bytes:
    """One chunk as RFC 4180 CSV (pyarrow quotes text and doubles inner quotes); a broken
    row becomes a record of its first three fields only."""
    buf = io.BytesIO()
    options = pa_csv.WriteOptions(include_header=False)
    start = 0
    for i in [*np.flatnonzero(broken).tolist(), len(broken)]:
        if i > start:
            pa_csv.write_csv(_table(cols, slice(start, i)), buf, options)
        if i < len(broken):
            short = ",".join('"' + cols[c][i].replace('"', '""') + '"' for c in COLUMNS[:3])
            buf.write(short.encode() + b"\n")
        start = i + 1
    return buf.getvalue()


def write_loan_file(
    path: Path | str, rows: int, seed: int = 7, fmt: str = "csv", chunk: int = 200_000
) -> dict:
    """Write ``rows`` loans to ``path`` as CSV or Parquet (every column a string, as in
    the CSV) and return the ground truth: rows, usable rows, bads among them, and the
    rows each quarantine rule must catch (``quarantined_by_rule``; zeros left out).
    """
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    if rows < 1 or chunk < 1:
        raise ValueError(f"rows ({rows}) and chunk ({chunk}) must be positive")
    t0 = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    totals: dict[str, int] = {}
    writer = pq.ParquetWriter(path, _SCHEMA) if fmt == "parquet" else None
    with open(path, "wb") if fmt == "csv" else contextlib.nullcontext() as fh:
        if fh is not None:
            header = ",".join(f'"{c}"' for c in COLUMNS) + "\n"
            fh.write(header.encode())
        for lo in range(0, rows, chunk):
            d = draw(seed, np.arange(lo, min(lo + chunk, rows), dtype=np.int64))
            cols = render(d, seed)
            if fh is not None:
                fh.write(_csv_chunk(cols, malformed(d["keys"])))
            else:
                writer.write_table(_table(cols, slice(None)))
            for k, v in ground_truth(d, fmt).items():
                totals[k] = totals.get(k, 0) + v
    if writer is not None:
        writer.close()
    rules = ("malformed_row", "missing_target", "invalid_time")
    return {
        "path": str(path),
        "format": fmt,
        "rows": rows,
        "seed": seed,
        "target": TARGET,
        "bad_values": list(BAD_VALUES),
        "time_col": TIME_COL,
        "quarantined_by_rule": {r: totals[r] for r in rules if totals[r]},
        "quarantined": sum(totals[r] for r in rules),
        "usable": totals["usable"],
        "bads": totals["bads"],
        "bad_rate": round(totals["bads"] / totals["usable"], 4) if totals["usable"] else 0.0,
        "unparseable_loan_amnt": totals["unparseable_loan_amnt"],
        "missing_annual_inc": totals["missing_annual_inc"],
        "seconds": round(time.perf_counter() - t0, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m riskcontrol.synthetic.generate.loanfile OUT --rows N [--seed S]``."""
    parser = argparse.ArgumentParser(
        prog="python -m riskcontrol.synthetic.generate.loanfile",
        description="Write a Lending-Club-like loan file (messy strings, planted bad rows) "
        "and print its ground truth as JSON.",
        epilog="example: python -m riskcontrol.synthetic.generate.loanfile /tmp/loans.csv "
        "--rows 1000000",
    )
    parser.add_argument("out", metavar="OUT", help="file to write (.csv or .parquet)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows to write (100,000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (7)")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="csv or parquet (default: from OUT's extension, else csv)",
    )
    args = parser.parse_args(argv)
    fmt = args.format or ("parquet" if Path(args.out).suffix.lower() == ".parquet" else "csv")
    truth = write_loan_file(args.out, args.rows, seed=args.seed, fmt=fmt)
    print(json.dumps(truth, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
