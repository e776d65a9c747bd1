"""The champion/challenger traffic split: deterministic, by a salted hash of the id.

The same application id always falls in the same arm (a retry is decided by the same
model), and the salt lets a new experiment draw a fresh sample.
"""

from __future__ import annotations

import hashlib


def bucket(application_id: str, salt: str) -> float:
    """A number in [0, 1) fixed by the id and the salt."""
    digest = hashlib.sha256(f"{salt}\0{application_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arm(application_id: str, share: float, salt: str) -> str:
    """``challenger`` for a ``share`` of ids, else ``champion``."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the challenger share must be in [0, 1], got {share}")
    return "challenger" if bucket(application_id, salt) < share else "champion"
