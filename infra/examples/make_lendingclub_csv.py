"""Write a LendingClub-style loan CSV to try `riskctl ingest-file` at scale.

    .venv/bin/python infra/examples/make_lendingclub_csv.py 1000000 /tmp/lc1m.csv
    riskctl ingest-file /tmp/lc1m.csv --table lc_loans

40 columns as in LendingClub's LoanStats files: money strings ("$37,800.00 "), percent
strings ("14.50%"), months as "Apr-2016" and, every other row, "Apr-66", free text with
quotes, commas and line breaks, empty and "NA" values, thousands of employer titles, and
one unparseable amount every 100,003 rows (quarantined under type_loan_amnt).
"""

from __future__ import annotations

import csv
import sys

import numpy as np

MONTHS = np.array(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
)
GRADES = np.array(list("ABCDEFG"))
TITLES = np.array([f"Employer {i}" for i in range(5000)] + ["n/a", ""])
STATES = np.array(["CA", "NY", "TX", "FL", "IL", "NJ", "PA", "OH", "GA", "VA"])
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
    ]
)
HEADER = [
    "id",
    "member_id",
    "loan_amnt",
    "funded_amnt",
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
    "title",
    "zip_code",
    "addr_state",
    "dti",
    "delinq_2yrs",
    "earliest_cr_line",
    "inq_last_6mths",
    "open_acc",
    "pub_rec",
    "revol_bal",
    "revol_util",
    "total_acc",
    "initial_list_status",
    "out_prncp",
    "total_pymnt",
    "last_pymnt_d",
    "last_pymnt_amnt",
    "last_credit_pull_d",
    "policy_code",
    "application_type",
    "desc",
    "hardship_flag",
    "last_update",
]
DESCRIPTIONS = (
    'Borrower added on 12/1/11 > I need to pay off my "high" interest cards, thanks',
    "Line one\nline two, with comma",
    "NA",
)


def rows(rng: np.random.Generator, lo: int, n: int):
    amt = (rng.integers(10, 400, n) * 100).astype(float)
    rate = rng.uniform(5, 30, n).round(2)
    inc = rng.lognormal(11, 0.5, n).round(2)
    year, month = rng.integers(2007, 2019, n), rng.integers(0, 12, n)
    opened = rng.integers(1960, 2012, n)
    dti, util = rng.uniform(0, 40, n).round(2), rng.uniform(0, 120, n).round(1)
    kind, title = rng.integers(0, 10, n), rng.integers(0, len(TITLES), n)
    for i in range(n):
        k, a, m, y = lo + i, amt[i], month[i], year[i]
        desc = "" if kind[i] < 6 else DESCRIPTIONS[0 if kind[i] < 8 else kind[i] - 7]
        cr = f"{MONTHS[m]}-{opened[i] % 100:02d}" if k % 2 else f"{MONTHS[m]}-{opened[i]}"
        yield [
            1_000_000 + k,
            "",
            "ten thousand" if k % 100_003 == 5 else f"${a:,.2f} ",
            f"{a:.0f}",
            " 36 months" if k % 3 else " 60 months",
            f"{rate[i]:.2f}%",
            f"{a * rate[i] / 1200 + a / 36:.2f}",
            GRADES[k % 7],
            f"{GRADES[k % 7]}{k % 5 + 1}",
            TITLES[title[i]],
            f"{k % 11} years" if k % 11 < 10 else "10+ years",
            "RENT" if k % 2 else "MORTGAGE",
            f"{inc[i]:.2f}",
            "Verified" if k % 3 else "Not Verified",
            f"{MONTHS[m]}-{y}",
            "Fully Paid" if k % 6 else "Charged Off",
            PURPOSES[k % 8],
            f"Loan {PURPOSES[k % 8]}",
            f"{k % 1000:03d}xx",
            STATES[k % 10],
            f"{dti[i]:.2f}",
            k % 3,
            cr,
            k % 4,
            5 + k % 20,
            k % 2,
            (k * 37) % 50_000,
            f"{util[i]:.1f}%" if k % 50 else "",
            10 + k % 30,
            "w" if k % 2 else "f",
            f"{a * 0.3:.2f}",
            f"{a * 1.1:.2f}",
            f"{MONTHS[(m + 3) % 12]}-{min(y + 3, 2019)}",
            f"{a / 36:.2f}",
            f"{MONTHS[(m + 5) % 12]}-2019",
            1,
            "Individual",
            desc,
            "N",
            f"2019-{m + 1:02d}-{1 + k % 28:02d} {k % 24:02d}:{k % 60:02d}:{(k * 7) % 60:02d}",
        ]


def main(n: int, out: str) -> None:
    rng = np.random.default_rng(7)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")  # RFC 4180 quoting, doubled quotes
        writer.writerow(HEADER)
        for lo in range(0, n, 100_000):
            writer.writerows(rows(rng, lo, min(100_000, n - lo)))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
