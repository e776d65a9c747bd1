"""Scan every file under a folder for strings: Parquet decoded, JSON unescaped, rest raw."""

from __future__ import annotations

import json
from pathlib import Path

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
        rows = pq.read_table(path).to_pylist()
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


def scan(root: Path, needles: set[str]) -> dict[str, list[str]]:
    """needle -> files (relative to ``root``) that contain it in clear text."""
    found: dict[str, list[str]] = {}
    files = [p for p in sorted(Path(root).rglob("*")) if p.is_file()]
    for path in files:
        text = file_text(path)
        for needle in needles:
            if needle in text:
                found.setdefault(needle, []).append(str(path.relative_to(root)))
    return found


def files_scanned(root: Path) -> int:
    return sum(1 for p in Path(root).rglob("*") if p.is_file())
