"""The lending book as the site sees it, and the drawing helpers every section shares.

Everything random is drawn from ``rng_for(seed, purpose...)``: one independent stream per
purpose, so adding an epoch or a section never shifts another one's draws.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from riskcontrol.synthetic.generate import id_check_digit
from riskcontrol.synthetic.generate import reference as ref
from riskcontrol.synthetic.site import faults, vocab
from riskcontrol.synthetic.site.records import EPOCH_DAYS


@dataclass(frozen=True)
class Customer:
    customer_id: str
    national_id: str
    name: str
    gender: str
    birth_date: dt.date
    province: str
    city: str
    employer: str
    max_dpd: int
    first_default_due: dt.date | None
    principal: float


def load_book(data_dir: Path) -> tuple[list[Customer], dt.date, dt.date]:
    """Customers with their worst delinquency, and the book's start and as_of dates."""
    db_path, gen_path = data_dir / "lending.db", data_dir / "generation.json"
    if not db_path.exists() or not gen_path.exists():
        raise FileNotFoundError(
            f"no generated lending book in {data_dir} (need lending.db and generation.json); "
            "run `riskctl generate` first"
        )
    meta = json.loads(gen_path.read_text(encoding="utf-8"))
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        dpd = {
            cid: (worst, first_bad)
            for cid, worst, first_bad in conn.execute(
                "SELECT l.customer_id, MAX(r.dpd), MIN(CASE WHEN r.dpd >= 90 THEN r.due_date END)"
                " FROM loans l JOIN repayments r ON r.loan_id = l.loan_id GROUP BY l.customer_id"
            )
        }
        principal = dict(
            conn.execute("SELECT customer_id, SUM(principal) FROM loans GROUP BY customer_id")
        )
        rows = conn.execute(
            "SELECT customer_id, national_id, name, gender, birth_date, province, city,"
            " employer_name FROM customers ORDER BY customer_id"
        ).fetchall()
    customers = []
    for cid, nid, name, gender, birth, province, city, employer in rows:
        worst, first_bad = dpd.get(cid, (0, None))
        customers.append(
            Customer(
                cid,
                nid,
                name,
                gender,
                dt.date.fromisoformat(birth),
                province,
                city,
                employer or "",
                int(worst or 0),
                dt.date.fromisoformat(first_bad) if first_bad else None,
                float(principal.get(cid) or 0.0),
            )
        )
    start = dt.date.fromisoformat(meta["start"])
    as_of = dt.date.fromisoformat(meta["as_of"])
    return customers, start, as_of


# --- small formatting helpers ------------------------------------------------------------------
def rng_for(seed: int, *labels: object) -> random.Random:
    """An independent random stream per (seed, purpose): str seeds hash with SHA-512."""
    return random.Random("riskcontrol-site/" + "/".join(str(x) for x in (seed, *labels)))


def hex_id(*parts: object) -> str:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()[:16]


def mask_id(number: str) -> str:
    """The court portal's masking: first four and last four characters kept."""
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def format_amount(amount: float, style: int) -> tuple[float, str]:
    """(amount as the text states it, text) in one of the portal's four styles."""
    if style == 0:
        amount = round(amount, 2)
        return amount, f"¥{amount:,.2f}"
    if style == 1:
        amount = float(round(amount))
        return amount, f"{int(amount)}元"
    if style == 2:
        amount = float(max(100, round(amount, -2)))
        wan = f"{amount / 10_000:.2f}".rstrip("0").rstrip(".")
        return amount, f"{wan}万元"
    amount = float(round(amount))
    return amount, f"RMB {int(amount):,}"


def format_cn_date(day: dt.date, style: int) -> str:
    """One of the portal's three unambiguous date styles."""
    if style == 0:
        return f"{day.year}年{day.month:02d}月{day.day:02d}日"
    if style == 1:
        return day.isoformat()
    return f"{day.year}/{day.month}/{day.day}"


def wan(amount: float) -> str:
    """12.5 for 125,000 yuan: penalty decisions state money in 万元."""
    return f"{amount / 10_000:.2f}".rstrip("0").rstrip(".")


def age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def city_of(name: str) -> int:
    """Index into reference.CITIES of a company named after its city (``北京市...``)."""
    for i, city in enumerate(ref.CITY_NAME):
        if name.startswith(city):
            return i
    return 0


def district_court(city_index: int, rng: random.Random) -> tuple[str, str]:
    """(court name, 4-digit court code for the case number) in a city."""
    code = rng.choice(ref.CITY_CODES[city_index])
    city = ref.CITY_NAME[city_index]
    return f"{city}{vocab.DISTRICTS[code]}人民法院", code[2:]


def province_abbr(city_index: int) -> str:
    return vocab.PROVINCES[ref.CITY_PROVINCE[city_index]][0]


def random_name(rng: random.Random, gender: str) -> str:
    surname = rng.choices(ref.SURNAMES, weights=ref.SURNAME_WEIGHTS.tolist())[0]
    pool = ref.GIVEN_MALE if gender == "M" else ref.GIVEN_FEMALE
    given = rng.choice(pool) + (rng.choice(pool + ref.GIVEN_NEUTRAL) if rng.random() < 0.7 else "")
    return surname + given


def national_id(rng: random.Random, region: str, birth: dt.date, gender: str) -> str:
    """A well-formed ID number: region, birth date, sequence (odd for men), check digit."""
    seq = rng.randrange(0, 50) * 2 + (1 if gender == "M" else 0)
    first17 = f"{region}{birth:%Y%m%d}{rng.randrange(10, 99):02d}{seq % 10}"
    return first17 + id_check_digit(first17)


_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code(seed: int, company: str, individual: bool) -> str:
    """An 18-character unified social credit code (GB 32100 check character) per company."""
    rng = rng_for(seed, "uscc", company)
    city = city_of(company)
    body = ("92" if individual else "91") + ref.CITY_CODES[city][0]
    body += "".join(rng.choice(_USCC_CHARS[:10] + "MA") for _ in range(9))
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return body + _USCC_CHARS[(31 - total % 31) % 31]


def window(content_start: dt.date, as_of: dt.date, epoch: int) -> tuple[dt.date, dt.date]:
    """[first, last] day records of ``epoch`` are dated in."""
    if epoch == 1:
        return content_start, as_of - dt.timedelta(days=1)
    lo = as_of + dt.timedelta(days=EPOCH_DAYS * (epoch - 2))
    return lo, lo + dt.timedelta(days=EPOCH_DAYS - 1)


def day_between(rng: random.Random, lo: dt.date, hi: dt.date) -> dt.date:
    return lo + dt.timedelta(days=rng.randint(0, max(0, (hi - lo).days)))


def content_faults(seed: int, path: str, unparseable_name: str | None) -> tuple[str, ...]:
    """Every fault a detail page carries (HTTP ones included), for the ground truth."""
    found = []
    first = faults.first_request_fault(seed, path)
    if first is not None:
        found.append(f"first_{first}")
    if faults.is_slow(seed, path):
        found.append("slow")
    if faults.has_broken_markup(seed, path):
        found.append("broken_markup")
    if unparseable_name and faults.is_unparseable(seed, path):
        found.append(unparseable_name)
    return tuple(found)
