"""Credentials out of anything printed, logged or recorded: URIs, JDBC URLs, command lines."""

from __future__ import annotations

import re

_PARAM = re.compile(r"\b(password|passwd|pwd|user|token|secret)=[^&;\s]*", re.IGNORECASE)
_USERINFO = re.compile(r"//[^/@\s]+@")


def redact(text: str) -> str:
    """``text`` with URI credentials (``//user:pw@``) and ``password=``-style parameters
    replaced by ``***``: safe for provenance columns, logs and printed lines."""
    return _USERINFO.sub("//***@", _PARAM.sub(r"\1=***", text))
