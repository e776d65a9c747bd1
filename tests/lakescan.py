"""Scan every file under a folder for strings: Parquet decoded, JSON unescaped, rest raw."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def _unnest(value):
    """JSON values with JSON-in-strings (Delta's ``stats``) decoded, as one text."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _unnest(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _unnest(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unnest(v) for v in value]
    return value


def file_text(path: Path) -> str:
    """Everything a file holds, as searchable text (Parquet: every cell of every row)."""
    if path.suffix == ".parquet":
        try:
            rows = pq.read_table(path).to_pylist()
        except (pa.ArrowInvalid, OSError):
            pass  # a data file a killed write left unfinished (no footer): its raw bytes
        else:
            return json.dumps(rows, ensure_ascii=False, default=str)
    raw = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix in (".json", ".crc"):
        parts = [raw]
        for line in raw.splitlines():
            try:
                parts.append(json.dumps(_unnest(json.loads(line)), ensure_ascii=False))
            except ValueError:
                continue
        return "\n".join(parts)
    return raw


_NUMBERS = re.compile(r"(?=(\d{17}[\dXx]|1[3-9]\d{9}))")
_NUMBER = re.compile(r"\d{17}[\dXx]|1[3-9]\d{9}")
_HAN = re.compile(r"[\u4e00-\u9fff]{2,}")


def _candidates(text: str) -> set[str]:
    """Substrings that could be an ID, a mobile number or a 2-4 character Chinese name."""
    out = set(_NUMBERS.findall(text))
    for run in _HAN.findall(text):
        for n in (2, 3, 4):
            out.update(run[i : i + n] for i in range(len(run) - n + 1))
    return out


def scan(root: Path, needles: set[str]) -> dict[str, list[str]]:
    """needle -> files (relative to ``root``) that contain it in clear text.

    IDs, phone numbers and Chinese names are found by set lookups of candidate
    substrings (fast for thousands of needles); any other needle by plain search.
    """
    found: dict[str, list[str]] = {}
    plain = {n for n in needles if not (_NUMBER.fullmatch(n) or _HAN.fullmatch(n))}
    plain |= {n for n in needles if _HAN.fullmatch(n) and len(n) > 4}
    files = [p for p in sorted(Path(root).rglob("*")) if p.is_file()]
    for path in files:
        text = file_text(path)
        hits = (_candidates(text) & needles) | {n for n in plain if n in text}
        for needle in sorted(hits):
            found.setdefault(needle, []).append(str(path.relative_to(root)))
    return found


def files_scanned(root: Path) -> int:
    return sum(1 for p in Path(root).rglob("*") if p.is_file())
