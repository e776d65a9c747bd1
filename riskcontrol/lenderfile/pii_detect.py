"""Which columns of a file the user brings hold personal data, by name and by value shape.

``riskctl ingest-file`` and ``riskctl evaluate-dataset`` read files nobody described to
us. Before anything lands, ``detect`` looks at each column's name (in English, pinyin-free
Chinese and common abbreviations) and at the shape of its values on a sample, and says
which columns identify a person and why. Detected columns are encrypted in bronze and are
never model features unless the user opts in per column.

Kinds: ``national_id`` (an 18-character ID with a valid check character, an SSN, a
passport or tax number), ``phone``, ``email``, ``card`` (bank card or account number),
``name`` (a person's name), ``address``, ``ip``. A name alone is enough for the kinds
whose names are unambiguous (``ssn``, ``email``, ``first_name``...); values alone are
enough when at least ``SHAPE_SHARE`` of the sampled non-missing values have the shape
(an ID with a valid check character, an e-mail, a mainland mobile, an SSN written
``123-45-6789``, a 16-19 digit card number). ``product_name`` or ``addr_state`` are not
personal: names are matched as whole words, with those exceptions spelled out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from riskcontrol.core import pii

# A column is personal by its values when at least this share of its sampled non-missing
# values has one shape: high enough that a free-text column mentioning a phone now and
# then, or a code column with a few ID-like values, is not flagged.
SHAPE_SHARE = 0.8
SAMPLE_ROWS = 5_000  # rows sampled for the value shapes (the first ones read)

# Column names, matched on the snake_case name (and on the raw name for Chinese ones).
_W = r"(?:^|_)"
_E = r"(?:$|_)"
NAME_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "national_id",
        re.compile(
            rf"{_W}(ssn|sin|social_security(_no|_number)?|national_id|nid|id_?card|id_?no|"
            rf"id_?number|identity(_no|_number|_card)?|citizen_id|tax_id|tin|passport(_no|"
            rf"_number)?|driver_?licen[cs]e(_no|_number)?){_E}|身份证|证件号|护照"
        ),
    ),
    (
        "phone",
        re.compile(
            rf"{_W}(phone|mobile|tel|telephone|cell|cellphone|msisdn|contact_no){_E}|手机|电话"
        ),
    ),
    ("email", re.compile(rf"{_W}(e_?mail|email_address|mail_address){_E}|邮箱|电子邮件")),
    (
        "card",
        re.compile(
            rf"{_W}(card_?no|card_?num(ber)?|pan|iban|bank_account|bank_card|account_?no|"
            rf"account_?num(ber)?|acct_?no|acct_?num){_E}|银行卡|卡号|账号"
        ),
    ),
    (
        "name",
        re.compile(
            r"^((first|last|full|given|family|middle|sur|maiden|nick|legal)_?name|name|"
            r"(customer|applicant|borrower|client|contact|person|holder|account_holder|member|"
            r"user|spouse|guarantor|emp|employee|beneficiary|payer|payee)_(full_)?name|"
            r"(first|last)_?nm)$|姓名|名字|联系人"
        ),
    ),
    ("ip", re.compile(rf"{_W}ip(_address|_addr)?{_E}")),
    (
        "address",
        re.compile(
            rf"{_W}(address|addr|street|home_address|residence|address_line_?\d?)"
            rf"(?!_(state|country|province|city|region|zip)){_E}|地址|住址"
        ),
    ),
)

# Names that say "a person" without saying "name" (``borrower``, 客户): such a column is a
# person's name when its values are Chinese names (2-4 Han characters). ``product_name``
# or ``loan_name`` do not match here nor above, whatever their values.
PERSON_HINT = re.compile(
    r"^(borrower|applicant|customer|client|guarantor|spouse|cardholder|payee|payer)$|"
    r"^(客户|借款人|申请人|担保人|配偶|持卡人|收款人|付款人|户名|开户名)(名称)?$"
)

# Value shapes, as Spark expressions on the trimmed text of a value.
_SHAPES: dict[str, str] = {
    "email": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
    "phone": r"^(\+?86[- ]?)?1[3-9]\d{9}$",
    "ssn": r"^\d{3}-\d{2}-\d{4}$",
    "card": r"^\d{4}([ -]?\d{4}){3}([ -]?\d{1,3})?$",  # and a valid Luhn check digit
    "cjk_name": r"^[\x{4e00}-\x{9fff}]{2,4}$",  # counted only where the name hints a person
}
SHAPE_KIND = {
    "national_id": "national_id",
    "ssn": "national_id",
    **{k: k for k in ("email", "phone", "card")},
    "cjk_name": "name",
}
_SHAPE_TEXT = {
    "national_id": "national IDs with a valid check character",
    "ssn": "SSNs (123-45-6789)",
    "email": "e-mail addresses",
    "phone": "mobile numbers",
    "card": "16-19 digit card numbers with a valid Luhn check digit",
    "cjk_name": "Chinese names",
}


@dataclass(frozen=True)
class Detection:
    column: str
    kind: str
    reason: str


def kind_by_name(name: str) -> str | None:
    """The personal kind a column's name announces, if any."""
    low = name.strip().lower()
    for kind, pattern in NAME_PATTERNS:
        if pattern.search(low):
            return kind
    return None


def luhn_valid(digits: Column) -> Column:
    """True when a string of digits passes the Luhn check (card numbers): from the right,
    every second digit doubled (minus 9 above 9), the sum a multiple of 10; False for
    anything else, null included."""
    rev = F.reverse(digits)

    def add(total: Column, i: Column) -> Column:
        d = rev.substr(i + 1, F.lit(1)).cast("int")
        return total + F.when(i % 2 == 1, F.when(d > 4, d * 2 - 9).otherwise(d * 2)).otherwise(d)

    total = F.aggregate(F.sequence(F.lit(0), F.length(digits) - 1), F.lit(0), add)
    return F.when(digits.rlike(r"^\d+$"), total % 10 == 0).otherwise(F.lit(False))


def _shape_counts(df: DataFrame, columns: Sequence[str], sample_rows: int) -> dict[str, dict]:
    """Per column: non-missing sampled values and how many have each shape."""
    sample = df.select(
        *[F.col(f"`{c}`").cast("string").alias(f"c{i}") for i, c in enumerate(columns)]
    )
    sample = sample.limit(sample_rows)
    aggs: list[Column] = []
    for i in range(len(columns)):
        v = F.trim(F.col(f"c{i}"))
        filled = v.isNotNull() & (v != "")
        aggs.append(F.sum(filled.cast("int")).alias(f"c{i}_n"))
        ok_id = filled & pii.valid_national_id(F.upper(v))
        aggs.append(F.sum(F.coalesce(ok_id, F.lit(False)).cast("int")).alias(f"c{i}_national_id"))
        for shape, rx in _SHAPES.items():
            ok = filled & v.rlike(rx)
            if shape == "card":
                ok = ok & luhn_valid(F.regexp_replace(v, "[ -]", ""))
            aggs.append(F.sum(F.coalesce(ok, F.lit(False)).cast("int")).alias(f"c{i}_{shape}"))
    row = sample.agg(*aggs).first()
    shapes = ("national_id", *_SHAPES)
    return {
        c: {"n": row[f"c{i}_n"] or 0, **{s: row[f"c{i}_{s}"] or 0 for s in shapes}}
        for i, c in enumerate(columns)
    }


def detect(
    df: DataFrame,
    columns: Sequence[str] | None = None,
    force: Iterable[str] = (),
    exempt: Iterable[str] = (),
    sample_rows: int = SAMPLE_ROWS,
) -> list[Detection]:
    """Personal columns of ``df`` (in column order), with the reason for each.

    ``force`` names columns to treat as personal whatever they look like (``--pii``),
    ``exempt`` columns that are not, whatever they look like (``--not-pii``).
    """
    columns = list(columns if columns is not None else df.columns)
    unknown = [c for c in [*force, *exempt] if c not in columns]
    if unknown:
        raise ValueError(
            f"--pii/--not-pii name columns the file does not have: {', '.join(unknown)}; "
            f"its columns are: {', '.join(columns)}"
        )
    force, exempt = set(force), set(exempt)
    counts = _shape_counts(df, [c for c in columns if c not in force | exempt], sample_rows)
    out = []
    for c in columns:
        if c in exempt:
            continue
        if c in force:
            out.append(Detection(c, kind_by_name(c) or "personal", "named by --pii"))
            continue
        by_name = kind_by_name(c)
        n = counts[c]["n"]
        # Two to four Han characters are a name only where the column's name says so
        # (a city or a product can look the same).
        hinted = by_name == "name" or PERSON_HINT.search(c.strip().lower()) is not None
        shapes = [s for s in ("national_id", *_SHAPES) if s != "cjk_name" or hinted]
        shape, hits = max(((s, counts[c][s]) for s in shapes), key=lambda x: x[1])
        by_value = n > 0 and hits >= SHAPE_SHARE * n
        if by_name and by_value:
            reason = f"{by_name} by its name and its values ({hits / n:.0%} {_SHAPE_TEXT[shape]})"
            out.append(Detection(c, by_name, reason))
        elif by_name:
            out.append(Detection(c, by_name, f"{by_name} by its name"))
        elif by_value:
            kind = SHAPE_KIND[shape]
            reason = (
                f"{kind} by its values ({hits / n:.0%} of {n:,} sampled are {_SHAPE_TEXT[shape]})"
            )
            out.append(Detection(c, kind, reason))
    return out


def describe(found: Sequence[Detection]) -> str:
    """One line for the user: what was found and what happens to it."""
    if not found:
        return "personal columns: none found (force one with --pii COLUMN)"
    listed = "; ".join(f"{d.column} ({d.reason})" for d in found)
    return f"personal columns: {listed}"
