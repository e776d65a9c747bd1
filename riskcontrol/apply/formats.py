"""How the apply tier writes numbers for people: the report, alert texts and the CLI.

One place, so the report and an alert message never show the same value two ways.
A missing value (None, NaN, NaT) is always ``MISSING``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MISSING = "n/a"


def absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT


def money(value: Any) -> str:
    """Whole currency units with thousands separators: 1234567.8 -> '1,234,568'."""
    return MISSING if absent(value) else f"{float(value):,.0f}"


def count(value: Any) -> str:
    return MISSING if absent(value) else f"{int(value):,}"


def pct(value: Any, digits: int = 2) -> str:
    return MISSING if absent(value) else f"{float(value):.{digits}%}"


def num(value: Any, digits: int = 4) -> str:
    """A metric or indicator value: thousands separators from 1,000, else ``digits``."""
    if absent(value):
        return MISSING
    value = float(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"


def sig(value: Any, digits: int = 4) -> str:
    """An indicator value or threshold in ``digits`` significant digits: 0.12, 0.1, 1.5e+04."""
    return MISSING if absent(value) else f"{float(value):.{digits}g}"
