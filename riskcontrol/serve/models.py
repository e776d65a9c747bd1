"""The decision service's request and its 4xx answers.

A request is parsed strictly from its JSON text: no unknown field, no string where a
number belongs, no ``true`` for a count. A refusal names each bad field and what is wrong
with it, and never repeats the submitted value (it may be personal data).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from riskcontrol.apply.online import ONLINE_FEATURES

# An id a channel system sends: letters, digits and a few separators (never free text).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
# The largest request body the service reads; a larger one is refused with 413.
MAX_BODY_BYTES = 16 * 1024

Id = Annotated[str, Field(pattern=ID_PATTERN)]
Label = Annotated[str, Field(min_length=1, max_length=64)]
Count = Annotated[float, Field(ge=0, le=1e6)]


class DecisionRequest(BaseModel):
    """One credit application as a channel system submits it."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    application_id: Id = Field(description="the channel's id of this application (idempotency key)")
    customer_id: Id = Field(description="the lender's customer id")
    product: Label = Field("consumer_loan", description="a product named in the rules file")
    requested_amount: Annotated[float, Field(gt=0, le=1e9)]
    term_months: Annotated[int, Field(ge=1, le=360)]
    purpose: Label
    channel: Label
    province: Label
    monthly_income: Annotated[float, Field(ge=0, le=1e9)]
    employment_type: Label
    education: Label
    age: Annotated[int, Field(ge=0, le=130)] | None = None
    birth_date: dt.date | None = Field(None, description="instead of age (YYYY-MM-DD)")
    application_date: dt.date | None = Field(None, description="default: today (UTC)")
    device_id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="checked against the fraud-device list (pseudonymized, not stored)"
    )
    phone: Annotated[str, Field(min_length=5, max_length=20, pattern=r"^\+?[0-9 -]+$")] | None = (
        Field(None, description="checked against the fraud-phone list (pseudonymized)")
    )
    # A fresh bureau pull (or any history feature) overrides the online store's value.
    bureau_score: Count | None = None
    inquiries_6m: Count | None = None
    open_loans: Count | None = None
    utilization: Annotated[float, Field(ge=0, le=100)] | None = None
    overdue_accounts: Count | None = None
    max_dpd_24m: Count | None = None
    credit_history_months: Count | None = None

    @model_validator(mode="after")
    def _age_or_birth_date(self) -> DecisionRequest:
        if (self.age is None) == (self.birth_date is None):
            raise ValueError("give exactly one of 'age' and 'birth_date'")
        return self

    def to_request(self) -> dict[str, Any]:
        """The dict ``apply.online.feature_row`` takes (dates as ISO strings)."""
        out = self.model_dump(exclude_none=True, exclude={"device_id", "phone", "product"})
        for k in ("birth_date", "application_date"):
            if k in out:
                out[k] = out[k].isoformat()
        return out

    def overrides(self) -> dict[str, float]:
        """History features the request itself carries."""
        return {c: getattr(self, c) for c in ONLINE_FEATURES if getattr(self, c, None) is not None}


def problems(exc: ValidationError) -> list[dict[str, str]]:
    """Each bad field and what is wrong with it, without the submitted value."""
    out = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        field = ".".join(str(p) for p in err["loc"]) or "(body)"
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = "unknown field: remove it (see the OpenAPI schema at /openapi.json)"
        elif kind == "missing":
            msg = "required field is missing"
        else:
            msg = err["msg"]
        out.append({"field": field, "problem": msg, "type": kind})
    return out


def is_json_error(exc: ValidationError) -> bool:
    """Is the body not JSON at all (rather than JSON with bad fields)?"""
    return any(e["type"] == "json_invalid" for e in exc.errors())
