"""Customers: the latent risk driver, demographics and PRC identity numbers.

Every customer gets a latent risk ``z ~ N(0, 1)`` that nothing downstream can see
directly; age, education, employment and income are noisy functions of it, so they
reveal risk only partly. A customer whose record was edited after registration (30%) has
a new income there (``current_income``); what an application declared is the income of
its day, the earlier one for applications before the edit.

Identity numbers follow GB 11643-1999 (region code, birth date, sequence whose last
digit encodes gender, ISO 7064 MOD 11-2 check digit), which is why the check-digit
helpers live here and are reused by the pipeline's validation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from riskcontrol.synthetic.generate import reference as ref
from riskcontrol.synthetic.generate.dates import DAY, format_dates, format_timestamps
from riskcontrol.synthetic.generate.rng import KeyedRandom, sigmoid

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_ID_CHECK = "10X98765432"

INVALID_ID_RATE = 0.002
MALFORMED_MOBILE_RATE = 0.001


def id_check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits of a PRC ID number."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"need 17 digits, got {first17!r}")
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS.tolist(), strict=True))
    return _ID_CHECK[total % 11]


def is_valid_national_id(s: object) -> bool:
    """True for an 18-character PRC resident ID with a correct check character.

    Only structure and checksum are checked (plus a plausible birth month/day), not
    whether the region code exists.
    """
    if not isinstance(s, str) or len(s) != 18 or not s[:17].isdigit():
        return False
    month, day = int(s[10:12]), int(s[12:14])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return False
    return s[17].upper() == id_check_digit(s[:17])


def _check_digits(first17: list[str]) -> np.ndarray:
    """Vectorized check-digit index (0..10 into ``_ID_CHECK``) for many 17-digit strings."""
    digits = np.frombuffer("".join(first17).encode("ascii"), dtype=np.uint8).reshape(-1, 17)
    return ((digits.astype(np.int64) - 48) @ _ID_WEIGHTS) % 11


def draw_clock(rng: KeyedRandom, keys: np.ndarray, night_p: np.ndarray, label: str) -> np.ndarray:
    """Seconds after midnight: 00:00-05:59 with probability ``night_p``, else 07:00-23:59."""
    night = rng.bernoulli(keys, night_p, label + ":night")
    u = rng.uniform(keys, label + ":clock")
    return np.where(night, u * 6 * 3600, 7 * 3600 + u * 17 * 3600).astype(np.int64)


@dataclass
class Population:
    """One chunk of customers, as arrays aligned on the chunk's customer order."""

    index: np.ndarray  # global 0-based customer index (the key of every random draw)
    z: np.ndarray  # latent risk, higher = riskier; never written anywhere
    male: np.ndarray
    birth_day: np.ndarray
    city: np.ndarray  # index into reference.CITIES
    education: np.ndarray  # index into reference.EDUCATION
    employment: np.ndarray  # index into reference.EMPLOYMENT
    income: np.ndarray  # at registration: what drives risk, declared until an edit
    current_income: np.ndarray  # the customer record's income now (after its edit, if any)
    company: np.ndarray  # index into reference.COMPANIES, -1 if none
    first_app_ts: np.ndarray
    registered_ts: np.ndarray
    updated_ts: np.ndarray
    customer_id: list[str]
    name: list[str]
    national_id: list[str]  # always valid; faults are applied when rows are written
    mobile: list[str]
    employer_name: list[str]


# Application volume by calendar month (January first): fewer around the Spring Festival,
# more before the Double 11 and year-end shopping.
SEASON_APPLICATIONS = np.array([0.85, 0.7, 1.0, 1.0, 1.0, 1.05, 0.95, 0.95, 1.0, 0.95, 1.2, 1.25])
BOOK_GROWTH = 1.0  # the application rate grows by this much (x100%) over the book


def application_day_cdf(start_day: int, as_of_day: int) -> np.ndarray:
    """CDF over the days ``[start_day, as_of_day)`` of an application's day: a rate that
    grows linearly over the book times the month's ``SEASON_APPLICATIONS``."""
    days = np.arange(start_day, as_of_day, dtype=np.int64)
    x = (days - start_day + 0.5) / len(days)
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    weight = (1.0 + BOOK_GROWTH * x) * SEASON_APPLICATIONS[months]
    cdf = np.cumsum(weight)
    return cdf / cdf[-1]


def application_days(
    u: np.ndarray, cdf: np.ndarray, start_day: int, after: np.ndarray | None = None
) -> np.ndarray:
    """Days drawn from ``cdf`` by inverse transform of ``u``; with ``after`` (day numbers),
    each conditioned on falling after its ``after`` day (which must not be the last)."""
    below = np.zeros(len(u), dtype=np.int64) if after is None else after - start_day + 1
    lo = np.concatenate([[0.0], cdf])[np.clip(below, 0, len(cdf))]  # mass of days <= after
    pos = np.searchsorted(cdf, lo + u * (1.0 - lo), side="right")
    day = start_day + np.minimum(pos, len(cdf) - 1)
    return day if after is None else np.maximum(day, after + 1)


def draw_population(seed: int, index: np.ndarray, start_day: int, as_of_day: int) -> Population:
    """Customers with global indices ``index``; first applications fall in [start, as_of)."""
    rng = KeyedRandom(seed, "customer")
    n = len(index)
    z = rng.normal(index, "z")
    male = rng.bernoulli(index, 0.53, "male")

    # first application: day follows a growing, seasonal book (``application_day_cdf``),
    # clock time shifts to night for risky
    app_day = application_days(
        rng.uniform(index, "first_day"), application_day_cdf(start_day, as_of_day), start_day
    )
    first_app_ts = app_day * DAY + draw_clock(rng, index, sigmoid(-2.4 + 0.6 * z), "first_app")
    same_session = rng.bernoulli(index, 0.35, "same_session")
    lag = np.where(
        same_session,
        60 + rng.uniform(index, "lag_min") * 3000,
        -np.log(rng.uniform(index, "lag_days")) * 120 * DAY,
    ).astype(np.int64)
    registered_ts = first_app_ts - lag
    as_of_ts = as_of_day * DAY
    edited = rng.bernoulli(index, 0.3, "edited")
    updated_ts = np.where(
        edited,
        registered_ts
        + (rng.uniform(index, "edit_at") * (as_of_ts - 1 - registered_ts)).astype(np.int64),
        registered_ts,
    )

    age = np.clip(np.round(33 - 3.5 * z + 8 * rng.normal(index, "age")), 18, 64).astype(np.int64)
    reg_day = registered_ts // DAY
    birth_day = reg_day - (age * 365.2425 + 2 + rng.uniform(index, "birth") * 360).astype(np.int64)

    city = rng.choice(index, ref.CITY_WEIGHTS, "city")
    n_codes = np.array([len(c) for c in ref.CITY_CODES])[city]
    code_pick = rng.integers(index, 0, n_codes, "district")
    district = [
        ref.CITY_CODES[c][k] for c, k in zip(city.tolist(), code_pick.tolist(), strict=True)
    ]

    edu_score = -0.45 * z + 0.015 * (age - 30) + rng.normal(index, "education")
    education = np.searchsorted(np.array([-0.65, 0.3, 1.4]), edu_score)

    young = age < 25
    emp_logits = np.stack(
        [
            np.full(n, 1.7),
            0.3 + 0.02 * (age - 30),
            -0.1 + 0.45 * z,
            np.where(young, 0.3, -6.0) - 0.2 * z,
            -2.2 + 0.7 * z,
        ],
        axis=1,
    )
    emp_p = np.exp(emp_logits)
    employment = rng.choice(index, emp_p / emp_p.sum(axis=1, keepdims=True), "employment")

    edu_eff = np.array([-0.25, 0.0, 0.2, 0.45])[education]
    emp_eff = np.array([0.0, 0.15, -0.15, -1.5, -1.3])[employment]
    tier1 = np.isin(city, ref.TIER1_CITIES)
    log_income = (
        np.log(6500) + edu_eff + emp_eff + 0.2 * tier1 - 0.2 * z + 0.4 * rng.normal(index, "income")
    )
    income = np.maximum(np.round(np.exp(log_income), -2), 500.0)
    # The edit revised the income (a pay rise, a new job): the record shows the new one.
    revision = np.exp(0.3 * rng.normal(index, "income_edit"))
    revised = np.maximum(np.round(income * revision, -2), 500.0)
    current_income = np.where(edited, revised, income)

    salaried = employment == 0
    own_city = rng.bernoulli(index, 0.85, "own_city_employer")
    company_city = np.where(own_city, city, rng.choice(index, ref.CITY_WEIGHTS, "employer_city"))
    company = np.where(
        salaried,
        company_city * ref.COMPANIES_PER_CITY
        + rng.choice(index, 1.0 / np.arange(1, ref.COMPANIES_PER_CITY + 1), "employer"),
        -1,
    )

    surname = rng.choice(index, ref.SURNAME_WEIGHTS, "surname")
    male_pool = ref.GIVEN_MALE + ref.GIVEN_NEUTRAL
    female_pool = ref.GIVEN_FEMALE + ref.GIVEN_NEUTRAL
    g1 = rng.uniform(index, "given1")
    g2 = rng.uniform(index, "given2")
    two = rng.bernoulli(index, 0.6, "two_given")
    names = []
    for s, m, a, b, t in zip(
        surname.tolist(), male.tolist(), g1.tolist(), g2.tolist(), two.tolist(), strict=True
    ):
        pool = male_pool if m else female_pool
        given = pool[int(a * len(pool))] + (pool[int(b * len(pool))] if t else "")
        names.append(ref.SURNAMES[s] + given)

    shop = rng.integers(index, 0, len(ref.SHOP_TYPES), "shop")
    employer_name = []
    for e, c, ct, s, sh in zip(
        employment.tolist(),
        company.tolist(),
        city.tolist(),
        surname.tolist(),
        shop.tolist(),
        strict=True,
    ):
        if e == 0:
            employer_name.append(ref.COMPANIES[c])
        elif e == 1:
            employer_name.append(ref.CITY_NAME[ct] + ref.SURNAMES[s] + "氏" + ref.SHOP_TYPES[sh])
        else:
            employer_name.append("")

    births = np.datetime_as_string(birth_day.astype("datetime64[D]")).tolist()
    seq2 = rng.integers(index, 0, 100, "id_seq")
    gender_digit = 2 * rng.integers(index, 0, 5, "id_gender") + male.astype(np.int64)
    first17 = [
        f"{d}{b[:4]}{b[5:7]}{b[8:10]}{s:02d}{g}"
        for d, b, s, g in zip(district, births, seq2.tolist(), gender_digit.tolist(), strict=True)
    ]
    checks = _check_digits(first17)
    national_id = [f + _ID_CHECK[c] for f, c in zip(first17, checks.tolist(), strict=True)]

    prefix = rng.integers(index, 0, len(ref.MOBILE_PREFIXES), "mobile_prefix")
    body = rng.integers(index, 0, 100_000_000, "mobile_body")
    mobile = [
        f"{ref.MOBILE_PREFIXES[p]}{b:08d}"
        for p, b in zip(prefix.tolist(), body.tolist(), strict=True)
    ]

    return Population(
        index=index,
        z=z,
        male=male,
        birth_day=birth_day,
        city=city,
        education=education,
        employment=employment,
        income=income,
        current_income=current_income,
        company=company,
        first_app_ts=first_app_ts,
        registered_ts=registered_ts,
        updated_ts=updated_ts,
        customer_id=[f"C{i + 1:08d}" for i in index.tolist()],
        name=names,
        national_id=national_id,
        mobile=mobile,
        employer_name=employer_name,
    )


def customer_rows(
    seed: int, pop: Population, protected: np.ndarray
) -> tuple[Iterator[tuple], int, int]:
    """Rows of the ``customers`` table with faults injected, and the two fault counts.

    About 0.2% get a wrong ID check digit and 0.1% a 10-digit mobile. ``protected``
    customers (those with an application still to be scored) are exempt, so every
    pending application belongs to a customer with clean identity fields.
    """
    rng = KeyedRandom(seed, "customer_fault")
    bad_id = rng.bernoulli(pop.index, INVALID_ID_RATE, "bad_id") & ~protected
    bad_mobile = rng.bernoulli(pop.index, MALFORMED_MOBILE_RATE, "bad_mobile") & ~protected
    shift = rng.integers(pop.index, 1, 11, "bad_id_shift")
    national_id = list(pop.national_id)
    for i in np.flatnonzero(bad_id).tolist():
        right = _ID_CHECK.index(national_id[i][17])
        national_id[i] = national_id[i][:17] + _ID_CHECK[(right + int(shift[i])) % 11]
    mobile = list(pop.mobile)
    for i in np.flatnonzero(bad_mobile).tolist():
        mobile[i] = mobile[i][:10]
    rows = zip(
        pop.customer_id,
        national_id,
        pop.name,
        mobile,
        np.where(pop.male, "M", "F").tolist(),
        format_dates(pop.birth_day),
        [ref.CITY_PROVINCE[c] for c in pop.city.tolist()],
        [ref.CITY_NAME[c] for c in pop.city.tolist()],
        [ref.EDUCATION[e] for e in pop.education.tolist()],
        [ref.EMPLOYMENT[e] for e in pop.employment.tolist()],
        pop.employer_name,
        pop.current_income.tolist(),
        format_timestamps(pop.registered_ts),
        format_timestamps(pop.updated_ts),
        strict=True,
    )
    return rows, int(bad_id.sum()), int(bad_mobile.sum())
