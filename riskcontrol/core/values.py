"""Text values as typed Spark columns: the one set of parsers every tier uses.

Null tokens (``""``, ``NA``, ``n/a``, ``null`` ...), integers, doubles, money
(``"$60,000.00 "``, ``¥1,234.50``, ``RMB 1234.5``, ``1234.50元``, ``(12.00)``),
percentages (``"13.56%"`` -> 0.1356), booleans (``Y``/``no``/``是``), dates and timestamps
in any of ``DATE_FORMATS`` / ``TIMESTAMP_FORMATS`` (the first format that parses the
whole value; a two-digit year never lands more than a year in the future, see
``pivot_century``), and ``ColumnType`` / ``typed_value`` to apply one of ``TYPES``.
A value that does not parse is null; callers that must not lose it keep the raw text
(a quarantine reason, a ``_raw`` column). Everything is a Spark SQL expression: no UDF.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

DEFAULT_NULL_TOKENS = ("", "NA", "N/A", "n/a", "null", "NULL", "None", "NaN", "nan", "#N/A")


TYPES = ("string", "integer", "double", "money", "percent", "date", "timestamp", "boolean")


SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "integer": T.LongType(),
    "double": T.DoubleType(),
    "money": T.DoubleType(),
    "percent": T.DoubleType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
    "boolean": T.BooleanType(),
}


# Candidate formats for inference, in order of preference on a tie (Spark datetime patterns).
DATE_FORMATS = (
    "yyyy-MM-dd",
    "yyyy/M/d",
    "yyyy.M.d",
    "yyyyMMdd",
    "d-MMM-yyyy",
    "d-MMM-yy",
    "MMM-yyyy",
    "MMM-yy",
    "d MMM yyyy",
    "MMM d, yyyy",
    "M/d/yyyy",
    "d/M/yyyy",
    "d.M.yyyy",
    "yyyy'年'M'月'd'日'",
)


TIMESTAMP_FORMATS = (
    "yyyy-MM-dd HH:mm:ss[.SSSSSS]",
    "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS][XXX]",
    "yyyy-MM-dd HH:mm",
    "yyyy/M/d H:mm:ss",
    "yyyy/M/d H:mm",
    "M/d/yyyy H:mm:ss",
    "M/d/yyyy H:mm",
    "d-MMM-yyyy HH:mm:ss",
    "yyyyMMddHHmmss",
    "yyyy'年'M'月'd'日' H:mm:ss",
    "yyyy'年'M'月'd'日' H:mm",
)


TRUE_TOKENS = ("true", "t", "yes", "y", "是")


FALSE_TOKENS = ("false", "f", "no", "n", "否")


_CURRENCY = r"(?i)(US\$|RMB|CNY|USD|EUR|GBP|HKD|JPY|人民币|元|[¥￥$€£])"


def is_null_token(c: Column, null_tokens: Sequence[str] = DEFAULT_NULL_TOKENS) -> Column:
    """True for null and for values that are one of ``null_tokens`` once trimmed of
    spaces (case-insensitive)."""
    tokens = sorted({t.strip().lower() for t in null_tokens})
    if not tokens:
        return c.isNull()
    v = F.trim(c)
    # lower() only the short values: the test runs on every value of every column
    return c.isNull() | ((F.length(v) <= max(map(len, tokens))) & F.lower(v).isin(tokens))


def clean(c: Column, null_tokens: Sequence[str] = DEFAULT_NULL_TOKENS) -> Column:
    """The value trimmed of spaces, or null when it is one of ``null_tokens``."""
    return F.when(~is_null_token(c, null_tokens), F.trim(c))


def parse_integer(v: Column) -> Column:
    return F.when(v.rlike(r"^[+-]?\d{1,18}$"), v.try_cast("long"))


def parse_double(v: Column) -> Column:
    return F.when(v.rlike(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"), v.try_cast("double"))


def parse_money(v: Column) -> Column:
    """Currency symbols and codes, thousands separators, blanks and accounting
    parentheses removed: ``"$60,000.00 "`` -> 60000.0, ``(12.50)`` -> -12.5. Thousands
    groups must have three digits, so ``1.234,50`` (a decimal comma) does not parse."""
    s = F.regexp_replace(v, r"[\s\u00a0\u3000]", "")
    negative = s.rlike(r"^\(.*\)$")
    s = F.regexp_replace(F.regexp_replace(s, r"^\((.*)\)$", "$1"), _CURRENCY, "")
    ok = s.rlike(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$|^[+-]?\.\d+$")
    number = F.regexp_replace(s, ",", "").try_cast("double")
    return F.when(ok, F.when(negative, -number).otherwise(number))


def parse_percent(v: Column) -> Column:
    """``"13.56%"`` -> 0.1356 (a fraction; decimal arithmetic, so no binary noise)."""
    digits = F.regexp_extract(v, r"^([+-]?(?:\d+\.?\d*|\.\d+))\s*%$", 1)
    fraction = F.try_divide(digits.try_cast("decimal(30,10)"), F.lit(100))
    return F.when(digits != "", fraction.cast("double"))


def parse_boolean(v: Column) -> Column:
    low = F.lower(v)
    return F.when(low.isin(list(TRUE_TOKENS)), F.lit(True)).when(
        low.isin(list(FALSE_TOKENS)), F.lit(False)
    )


def _two_digit_year(fmt: str) -> bool:
    return re.search(r"(?<!y)yy(?!y)", fmt) is not None


def _digits_only(fmt: str) -> bool:
    return re.fullmatch(r"[yMdHms]+", fmt) is not None


def format_regex(fmt: str) -> str:
    """A regular expression for the shape of a Spark datetime pattern's values.

    Parsing a value that does not fit a pattern costs Spark an exception; a regex test
    first keeps inference over many formats fast. The parser still validates (Feb 30).
    """
    out, i = [], 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "'":
            end = fmt.find("'", i + 1)
            end = len(fmt) if end < 0 else end
            literal = fmt[i + 1 : end]
            out.append(_escape(literal) if literal else "'")
            i = end + 1
            continue
        if ch == "[":
            out.append("(?:")
        elif ch == "]":
            out.append(")?")
        elif ch.isascii() and ch.isalpha():
            n = 1
            while i + n < len(fmt) and fmt[i + n] == ch:
                n += 1
            if ch == "M" and n >= 3:
                out.append("[A-Za-z]{3}" if n == 3 else "[A-Za-z]+")
            elif ch == "X":
                out.append(r"(?:Z|[+-]\d{2}(?::?\d{2})?)")
            elif ch == "S":
                out.append(rf"\d{{1,{n}}}")
            elif ch == "y" and n not in (2, 4):
                out.append(r"\d{1,4}")
            else:
                out.append(rf"\d{{{n}}}" if n > 1 else r"\d{1,2}")
            i += n
            continue
        else:
            out.append(_escape(ch))
        i += 1
    return "^" + "".join(out) + "$"


def _escape(text: str) -> str:
    return "".join("\\" + c if c in r"\^$.|?*+()[]{}" else c for c in text)


def pivot_century(d: Column) -> Column:
    """A two-digit year's date more than 12 months after today moved back 100 years.

    Credit files are about the past: ``Feb-68`` (an earliest credit line) is 1968, not
    2068 as Python's ``%y`` pivot would have it, while ``Mar-27`` stays 2027.
    """
    return F.when(d > F.add_months(F.current_date(), 12), F.add_months(d, -1200)).otherwise(d)


def _parse_date_one(v: Column, fmt: str) -> Column:
    d = F.when(v.rlike(format_regex(fmt)), F.try_to_date(v, fmt))
    if _two_digit_year(fmt):  # Spark reads yy as 20yy: see ``pivot_century``
        d = pivot_century(d)
    if _digits_only(fmt):  # 20240305 is a date, 62220305 an account number
        d = F.when(F.year(d).between(1900, 2099), d)
    return d


def _parse_timestamp_one(v: Column, fmt: str) -> Column:
    ts = F.when(v.rlike(format_regex(fmt)), F.try_to_timestamp(v, F.lit(fmt)))
    if _digits_only(fmt):
        ts = F.when(F.year(ts).between(1900, 2099), ts)
    return ts


def parse_date(v: Column, formats: Sequence[str] = DATE_FORMATS) -> Column:
    """The first format of ``formats`` that parses the whole value, as a date."""
    return F.coalesce(*[_parse_date_one(v, f) for f in formats])


def parse_timestamp(v: Column, formats: Sequence[str] = TIMESTAMP_FORMATS) -> Column:
    """The first format of ``formats`` that parses the whole value, as a timestamp
    (wall-clock time in the session time zone unless the value carries an offset)."""
    return F.coalesce(*[_parse_timestamp_one(v, f) for f in formats])


@dataclass(frozen=True)
class ColumnType:
    """A column's type, with the date/timestamp formats to try in order."""

    type: str
    formats: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"unknown type {self.type!r}; types are {', '.join(TYPES)}")

    @property
    def spark_type(self) -> T.DataType:
        return SPARK_TYPES[self.type]

    def describe(self) -> str:
        return f"{self.type} ({' | '.join(self.formats)})" if self.formats else self.type


def typed_value(raw: Column, ctype: ColumnType, null_tokens=DEFAULT_NULL_TOKENS) -> Column:
    """``raw`` (a string column) as ``ctype``: null for null tokens and for values that do
    not parse (``type_checks`` tells those two apart)."""
    if ctype.type == "string":
        return F.when(~is_null_token(raw, null_tokens), raw)
    v = clean(raw, null_tokens)
    parsed = {
        "integer": parse_integer,
        "double": parse_double,
        "money": parse_money,
        "percent": parse_percent,
        "boolean": parse_boolean,
        "date": lambda x: parse_date(x, ctype.formats or DATE_FORMATS),
        "timestamp": lambda x: parse_timestamp(x, ctype.formats or TIMESTAMP_FORMATS),
    }[ctype.type](v)
    return parsed.cast(ctype.spark_type)


def apply_types(
    df: DataFrame, types: dict[str, ColumnType], null_tokens: Sequence[str] = DEFAULT_NULL_TOKENS
) -> DataFrame:
    """Replace each column of ``types`` by its typed value (failures become null: pair with
    ``type_checks`` to quarantine them instead)."""
    return df.withColumns(
        {c: typed_value(F.col(f"`{c}`").cast("string"), t, null_tokens) for c, t in types.items()}
    )
