"""Credentials out of anything printed, logged or recorded: URIs, JDBC URLs, command lines.

``redact(text)`` replaces the password of a URI (``//user:pw@`` -> ``//***@``),
``password=``-style parameters and, given the settings, every encoding of the pipeline's
keys (``pii.key_material``) and the lending database password with ``***``.
``is_secret_conf(key)`` tells which Spark/Hadoop settings hold a credential, so they stay
out of command lines and written configuration.
"""

from __future__ import annotations

import re
from typing import Any

from riskcontrol.core import pii

MASK = "***"
_PARAM = re.compile(r"\b(password|passwd|pwd|user|token|secret)=[^&;\s]*", re.IGNORECASE)
_USERINFO = re.compile(r"//[^/@\s]+@")
_PASSWORD_IN_URI = re.compile(
    r"//[^/@\s:]*:[^/@\s]+@|\b(password|passwd|pwd)=[^&;\s]+", re.IGNORECASE
)
# Spark/Hadoop settings whose value is a credential (S3/Azure/GCS keys, JDBC passwords).
SECRET_CONF = re.compile(
    r"secret|password|passwd|token|credential|access\.key|account\.key|sas|\.key$",
    re.IGNORECASE,
)


def secret_values(settings: Any) -> list[str]:
    """The text forms of every secret ``settings`` holds, longest first: each key's hex
    (both cases), base64, HMAC pads and derived keys, and the lending DB password."""

    try:
        material = pii.key_material(settings)
    except RuntimeError:  # a key is not configured: nothing of it to find
        material = []
    values = set()
    for _label, needle in material:
        try:
            text = needle.decode("utf-8")
        except UnicodeDecodeError:
            continue  # raw key bytes that are no text cannot be in a str
        if len(text) >= 8:
            values.add(text)
    password = getattr(settings, "lending_jdbc_password", None)
    if password is not None and password.get_secret_value():
        values.add(password.get_secret_value())
    return sorted(values, key=len, reverse=True)


def redact(text: str, settings: Any = None) -> str:
    """``text`` with URI credentials (``//user:pw@``) and ``password=``-style parameters
    replaced by ``***`` and, when ``settings`` are given, every encoding of their keys and
    the lending DB password too: safe for provenance columns, logs and printed lines."""
    if settings is not None:
        for value in secret_values(settings):
            text = text.replace(value, MASK)
    return _USERINFO.sub(f"//{MASK}@", _PARAM.sub(rf"\1={MASK}", text))


def has_password(uri: str) -> bool:
    """True when ``uri`` carries a password (``//user:pw@`` or ``password=``)."""
    return bool(_PASSWORD_IN_URI.search(uri))


def is_secret_conf(key: str) -> bool:
    """True for a Spark/Hadoop setting whose value is a credential."""
    return bool(SECRET_CONF.search(key))
