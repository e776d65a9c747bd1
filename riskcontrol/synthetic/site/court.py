"""Court cases: who is listed, by which court, for how much, and when cases close.

Most subjects are customers who went 90+ days past due (filed a few months after the
first such instalment), some are good customers, some are outside the book, and some
share a customer's name but not the ID, city or birth year: the hard cases for entity
resolution. Companies are the customers' employers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from riskcontrol.synthetic.generate import reference as ref
from riskcontrol.synthetic.site import vocab
from riskcontrol.synthetic.site.book import (
    Customer,
    age,
    city_of,
    content_faults,
    credit_code,
    day_between,
    district_court,
    format_amount,
    format_cn_date,
    hex_id,
    mask_id,
    national_id,
    province_abbr,
    random_name,
    rng_for,
    window,
)
from riskcontrol.synthetic.site.records import ACTIVE, CourtCase


class CourtBuilder:
    """Draws court cases epoch by epoch; remembers who was already used and case numbers."""

    def __init__(self, seed: int, book: list[Customer], start: dt.date, as_of: dt.date):
        self.seed, self.start, self.as_of = seed, start, as_of
        self.delinquent = [c for c in book if c.max_dpd >= 90]
        self.good = [c for c in book if c.max_dpd < 30]
        self.book = book
        self.book_names = {c.name for c in book}
        self.employers = sorted({c.employer for c in book if c.employer})
        self.used: set[str] = set()
        self.case_nos: set[str] = set()
        self.cases: list[CourtCase] = []

    def add_epoch(self, epoch: int, persons: int, companies: int) -> None:
        rng = rng_for(self.seed, "court", epoch)
        n_delinquent = round(persons * 0.55)
        n_good = round(persons * 0.10)
        n_namesake = round(persons * 0.15)
        n_fictitious = persons - n_delinquent - n_good - n_namesake
        fresh = [c for c in self.delinquent if c.customer_id not in self.used]
        picked = rng.sample(fresh, min(n_delinquent, len(fresh)))
        n_good += n_delinquent - len(picked)
        good = [c for c in self.good if c.customer_id not in self.used]
        goods = rng.sample(good, min(n_good, len(good)))
        n_fictitious += n_good - len(goods)
        for c in picked:
            self._customer_case(rng, epoch, c, "delinquent_customer")
            if rng.random() < 0.12:  # repeat debtors: a second case, often the dishonest list
                self._customer_case(rng, epoch, c, "delinquent_customer")
        for c in goods:
            self._customer_case(rng, epoch, c, "good_customer")
        for _ in range(n_namesake):
            self._namesake_case(rng, epoch, rng.choice(self.book))
        for _ in range(n_fictitious):
            self._fictitious_case(rng, epoch)
        for _ in range(companies):
            if self.employers:
                self._company_case(rng, epoch, rng.choice(self.employers))
        self._close_some(rng, epoch)

    def _case_no(self, rng: random.Random, city: int, code: str, year: int) -> str:
        while True:
            no = f"（{year}）{province_abbr(city)}{code}执{rng.randint(1, 19999)}号"
            if no not in self.case_nos:
                self.case_nos.add(no)
                return no

    def _filing_date(self, rng: random.Random, epoch: int, after: dt.date | None) -> dt.date:
        lo, hi = window(self.start, self.as_of, epoch)
        if epoch == 1 and after is not None:
            lo = min(hi, after + dt.timedelta(days=30))
            return day_between(rng, lo, min(hi, lo + dt.timedelta(days=240)))
        return day_between(rng, lo, hi)

    def _add(
        self,
        rng: random.Random,
        epoch: int,
        *,
        origin: str,
        name: str,
        number: str,
        city: int,
        customer_id: str | None = None,
        company: str | None = None,
        gender: str | None = None,
        birth: dt.date | None = None,
        amount: float,
        after: dt.date | None = None,
    ) -> None:
        person = company is None
        filed = self._filing_date(rng, epoch, after)
        court, code = district_court(city, rng)
        case_no = self._case_no(rng, city, code, filed.year)
        case_id = hex_id(self.seed, "court", case_no)
        shown_amount, amount_text = format_amount(amount, rng.randrange(4))
        dishonest = rng.random() < (0.4 if origin == "delinquent_customer" else 0.2)
        if epoch == 1:
            status = rng.choices(vocab.COURT_STATUSES, weights=(0.6, 0.15, 0.25))[0]
        else:
            status = ACTIVE
        show_extra = person and rng.random() < 0.7
        self.cases.append(
            CourtCase(
                case_id=case_id,
                epoch_added=epoch,
                subject_type="person" if person else "company",
                subject_origin=origin,
                subject_name=name,
                customer_id=customer_id,
                company=company,
                id_number=number,
                id_shown=mask_id(number) if person and rng.random() < 0.5 else number,
                court=court,
                case_no=case_no,
                cause=rng.choice(vocab.CASE_CAUSES if person else vocab.COMPANY_CAUSES),
                amount=shown_amount,
                amount_text=amount_text,
                filing_date=filed,
                filing_text=format_cn_date(filed, rng.randrange(3)),
                status=status,
                closed_epoch=None,
                list_type=vocab.LIST_TYPES[int(dishonest)],
                conduct=rng.choice(vocab.DISHONEST_CONDUCT) if dishonest else None,
                gender=({"M": "男", "F": "女"}[gender] if show_extra and gender else None),
                age=age(birth, filed) if show_extra and birth else None,
                province=ref.CITY_PROVINCE[city] if show_extra else None,
                faults=content_faults(self.seed, f"/court/case/{case_id}.html", "missing_case_no"),
            )
        )

    def _customer_case(self, rng: random.Random, epoch: int, c: Customer, origin: str) -> None:
        self.used.add(c.customer_id)
        city = ref.CITY_NAME.index(c.city) if c.city in ref.CITY_NAME else 0
        base = c.principal if origin == "delinquent_customer" and c.principal else 30_000.0
        self._add(
            rng,
            epoch,
            origin=origin,
            name=c.name,
            number=c.national_id,
            city=city,
            customer_id=c.customer_id,
            gender=c.gender,
            birth=c.birth_date,
            amount=base * rng.uniform(0.6, 1.4),
            after=c.first_default_due,
        )

    def _namesake_case(self, rng: random.Random, epoch: int, c: Customer) -> None:
        """Same name as a customer; another city, birth year and ID number."""
        own = ref.CITY_NAME.index(c.city) if c.city in ref.CITY_NAME else 0
        city = rng.choice([i for i in range(len(ref.CITIES)) if i != own])
        shift = rng.choice([-1, 1]) * rng.randint(3, 15)
        year = min(2004, max(1955, c.birth_date.year + shift))
        birth = dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
        number = national_id(rng, rng.choice(ref.CITY_CODES[city]), birth, c.gender)
        self._add(
            rng,
            epoch,
            origin="namesake",
            name=c.name,
            number=number,
            city=city,
            gender=c.gender,
            birth=birth,
            amount=rng.lognormvariate(10.3, 0.9),
        )

    def _fictitious_case(self, rng: random.Random, epoch: int) -> None:
        """Someone outside the book (never a customer's name, so ground truth is crisp)."""
        gender = rng.choice("MF")
        name = random_name(rng, gender)
        while name in self.book_names:
            name = random_name(rng, gender)
        city = rng.randrange(len(ref.CITIES))
        birth = dt.date(rng.randint(1960, 2003), rng.randint(1, 12), rng.randint(1, 28))
        self._add(
            rng,
            epoch,
            origin="fictitious",
            name=name,
            number=national_id(rng, rng.choice(ref.CITY_CODES[city]), birth, gender),
            city=city,
            gender=gender,
            birth=birth,
            amount=rng.lognormvariate(10.3, 0.9),
        )

    def _company_case(self, rng: random.Random, epoch: int, company: str) -> None:
        individual = not company.endswith("有限公司")
        self._add(
            rng,
            epoch,
            origin="company",
            name=company,
            number=credit_code(self.seed, company, individual),
            city=city_of(company),
            company=company,
            amount=rng.lognormvariate(12.5 if not individual else 11.0, 1.0),
        )

    def _close_some(self, rng: random.Random, epoch: int) -> None:
        """From epoch 2 on, ~8% of the open cases are closed (their detail page changes)."""
        if epoch == 1:
            return
        open_cases = [
            i
            for i, c in enumerate(self.cases)
            if c.epoch_added < epoch and c.status_at(epoch - 1) == ACTIVE
        ]
        for i in rng.sample(
            open_cases, min(len(open_cases), max(1, round(0.08 * len(open_cases))))
        ):
            self.cases[i] = dataclasses.replace(self.cases[i], closed_epoch=epoch)
