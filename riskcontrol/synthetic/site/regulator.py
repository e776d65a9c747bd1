"""Administrative penalties of the banking regulator on lenders, people and companies.

Most are fictitious lenders and bank branches; some name a responsible individual
(sometimes a customer), and some fine an employer for lending without a licence.
"""

from __future__ import annotations

import datetime as dt
import random

from riskcontrol.synthetic.generate import reference as ref
from riskcontrol.synthetic.site import vocab
from riskcontrol.synthetic.site.book import (
    Customer,
    city_of,
    content_faults,
    day_between,
    hex_id,
    random_name,
    rng_for,
    wan,
    window,
)
from riskcontrol.synthetic.site.records import Penalty


def _lender_name(rng: random.Random) -> tuple[str, int]:
    """A fictitious lender or bank branch and the index of its city."""
    city = rng.choices(range(len(ref.CITIES)), weights=ref.CITY_WEIGHTS.tolist())[0]
    brand = rng.choice(vocab.LENDER_BRANDS)
    short = ref.CITY_NAME[city].removesuffix("市")
    if rng.random() < 0.25:
        template = rng.choice(vocab.BANK_BRANCH_TYPES)
        district = vocab.DISTRICTS[rng.choice(ref.CITY_CODES[city])]
        return brand + template.format(city=short, district=district), city
    return short + brand + rng.choice(vocab.LENDER_TYPES), city


def _money_penalty(
    rng: random.Random, subject_type: str
) -> tuple[tuple[str, ...], float | None, str, str]:
    """(types, total money in yuan, Chinese decision, English decision)."""
    if subject_type == "person":
        kind = rng.choice(("warning", "warning_fine", "ban"))
        if kind == "warning":
            return ("warning",), None, "警告", "was given a warning"
        if kind == "warning_fine":
            fine = rng.choice((5, 8, 10, 20)) * 10_000.0
            return (
                ("warning", "fine"),
                fine,
                f"警告并罚款人民币{wan(fine)}万元",
                f"was given a warning and fined RMB {int(fine):,}",
            )
        years = rng.choice((3, 5, 10, 0))
        if years == 0:
            return ("ban",), None, "禁止从事银行业工作终身", "was banned from banking for life"
        return (
            ("ban",),
            None,
            f"禁止从事银行业工作{years}年",
            f"was banned from banking for {years} years",
        )
    kinds = ("fine", "warning_fine", "confiscation", "revoked")
    kind = rng.choices(kinds, (0.5, 0.25, 0.2, 0.05))[0]
    fine = rng.choice((20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200)) * 10_000.0
    if kind == "fine":
        return ("fine",), fine, f"罚款{wan(fine)}万元", f"has been fined RMB {int(fine):,}"
    if kind == "warning_fine":
        return (
            ("warning", "fine"),
            fine,
            f"警告并罚款人民币{wan(fine)}万元",
            f"was given a warning and has been fined RMB {int(fine):,}",
        )
    if kind == "confiscation":
        gains = rng.randint(5, 500) * 1_000.0
        return (
            ("confiscation", "fine"),
            gains + fine,
            f"没收违法所得{wan(gains)}万元，并处罚款{wan(fine)}万元",
            f"had illegal gains of RMB {int(gains):,} confiscated and has been fined "
            f"RMB {int(fine):,}",
        )
    return (
        ("fine", "license_revoked"),
        fine,
        f"罚款{wan(fine)}万元，并吊销金融许可证",
        f"has been fined RMB {int(fine):,} and had its financial license revoked",
    )


class PenaltyBuilder:
    def __init__(self, seed: int, book: list[Customer], start: dt.date, as_of: dt.date):
        self.seed, self.start, self.as_of, self.book = seed, start, as_of, book
        self.employers = sorted({c.employer for c in book if c.employer.endswith("有限公司")})
        self.numbers: set[str] = set()
        self.penalties: list[Penalty] = []

    def add_epoch(self, epoch: int, count: int) -> None:
        rng = rng_for(self.seed, "penalty", epoch)
        lo, hi = window(self.start, self.as_of, epoch)
        for _ in range(count):
            self._one(rng, epoch, day_between(rng, lo, hi))

    def _one(self, rng: random.Random, epoch: int, day: dt.date) -> None:
        roll = rng.random()
        customer_id = company = None
        if roll < 0.15 and self.book:  # a responsible individual of a lender
            lender, city = _lender_name(rng)
            if rng.random() < 0.5:
                person = rng.choice(self.book)
                name, customer_id = person.name, person.customer_id
            else:
                name = random_name(rng, rng.choice("MF"))
            subject_type, subject = "person", name
            institution = f"{name}（时任{lender}{rng.choice(vocab.PERSON_POSITIONS)}）"
            violation = rng.choice(vocab.VIOLATIONS)
            violation = (
                f"对{lender}{violation[0]}负有直接责任",
                f"was held directly responsible after {lender} {violation[1]}",
            )
        elif roll < 0.30 and self.employers:  # an employer lending without a licence
            company = rng.choice(self.employers)
            subject_type, subject, institution = "company", company, company
            city = city_of(company)
            violation = ("未经批准擅自从事放贷业务", "engaged in lending without a licence")
        else:
            subject_type = "institution"
            subject, city = _lender_name(rng)
            institution = subject
            violation = rng.choice(vocab.VIOLATIONS)
        types, amount, decision, decision_en = _money_penalty(rng, subject_type)
        province = ref.CITY_PROVINCE[city]
        abbr, pinyin = vocab.PROVINCES[province]
        short = province.removesuffix("省").removesuffix("市")
        if rng.random() < 0.7:
            authority = f"国家金融监督管理总局{short}监管局"
            authority_en = f"{pinyin} Office of the National Financial Regulatory Administration"
            prefix = f"{abbr}金罚决字"
        else:
            authority = f"中国银保监会{short}监管局"
            authority_en = (
                f"{pinyin} Office of the China Banking and Insurance Regulatory Commission"
            )
            prefix = f"{abbr}银保监罚决字"
        decision_no = self._number(rng, prefix, day.year)
        form = rng.choices(("table", "text", "attachment"), (0.5, 0.35, 0.15))[0]
        language = "en" if form == "text" and rng.random() < 0.4 else "zh"
        penalty_id = hex_id(self.seed, "penalty", decision_no)
        self.penalties.append(
            Penalty(
                penalty_id=penalty_id,
                epoch_added=epoch,
                subject_type=subject_type,
                institution=institution,
                subject_name=subject,
                customer_id=customer_id,
                company=company,
                decision_no=decision_no,
                shows_decision_no=language == "zh" and (form != "text" or rng.random() < 0.8),
                authority=authority,
                authority_en=authority_en,
                violation=violation[0],
                violation_en=violation[1],
                legal_basis=rng.choice(vocab.LEGAL_BASES),
                penalty_types=types,
                amount=amount,
                decision_text=decision,
                decision_en=decision_en,
                decision_date=day,
                form=form,
                language=language,
                faults=content_faults(
                    self.seed, f"/regulator/penalty/{penalty_id}.html", "no_decision_text"
                ),
            )
        )

    def _number(self, rng: random.Random, prefix: str, year: int) -> str:
        while True:
            no = f"{prefix}〔{year}〕{rng.randint(1, 120)}号"
            if no not in self.numbers:
                self.numbers.add(no)
                return no
