"""``riskctl privacy-scan``: look for personal data and keys where they do not belong.

What an attacker with read access to the project's home would do, done first: every
file under the home (the lakehouse, the MLflow store and artifacts, the online feature
store, crawl files and the crawler's cache, reports, Airflow's logs and database, any
log), and the lakehouse, data, crawl state, MLflow artifacts and Airflow home when they
are local folders outside it, is read the way a person would read it -- Parquet decoded
cell by cell (a raw byte search misses snappy-compressed pages), SQLite databases row by
row, gzip and zip archives unpacked, JSON unescaped (``\\u5f20`` is 张) -- and searched for:

* key material: every encoding of the pseudonym and bronze keys (``pii.key_material``)
  and the lending database's password;
* the identifiers of every known person: national IDs, mobile numbers, e-mails and
  names of the lending database's customers (the source system, read only);
* national IDs rebuildable from a table's columns: a column holding the IDs' region
  codes next to one holding their birth dates.

Not scanned, because they are supposed to hold what is searched for: ``.env`` (where
local keys live), the source systems the pipeline reads (the lending database, the file
drops, the generated public-web site), the installation (``.venv``, ``jars``,
``.git``) and source code (``*.py``, also as copied into MLflow artifacts).
Findings name the file, the kind of store, what was found and a masked sample; the
value itself is never printed.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import sqlite3
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from riskcontrol.core import pii
from riskcontrol.core.config import Settings

SKIP_DIRS = {".venv", "venv", "jars", ".git", "node_modules", "__pycache__", ".stamps"}
SKIP_FILES = {".env"}
# Source code (the project's own, which MLflow copies next to every model) is not data:
# its examples and words such as 许可 would read as names.
SKIP_SUFFIXES = {".py", ".pyc"}
MAX_BYTES = 2 << 30  # files above this are reported as skipped, not read
MIN_LATIN_NAME = 6  # shorter latin names ("Li Na") are too common to be evidence
REBUILD_SHARE = 0.5  # share of a column's values that must be ID pieces to count

_ID = re.compile(r"(?=(\d{17}[\dXx]))")
_PHONE = re.compile(r"(?=(1[3-9]\d{9}))")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_HAN = re.compile(r"[\u4e00-\u9fff]{2,}")


@dataclass
class Known:
    """What identifies the known people, as sets looked up by candidate substrings."""

    ids: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    han_names: set[str] = field(default_factory=set)
    latin_names: set[str] = field(default_factory=set)
    keys: list[tuple[str, bytes]] = field(default_factory=list)

    def add_person(
        self, national_id=None, phone=None, name=None, email=None
    ) -> None:  # values as the source holds them
        if national_id and len(str(national_id).strip()) == 18:
            self.ids.add(str(national_id).strip().upper())
        if phone and re.fullmatch(r"1[3-9]\d{9}", str(phone).strip()):
            self.phones.add(str(phone).strip())
        if email and "@" in str(email):
            self.emails.add(str(email).strip().lower())
        if name:
            n = str(name).strip()
            if _HAN.fullmatch(n) and 2 <= len(n) <= 4:
                self.han_names.add(n)
            elif len(n) >= MIN_LATIN_NAME:
                self.latin_names.add(n)

    @classmethod
    def from_values(cls, values: Iterable[str], keys=()) -> Known:
        """Bring-your-own identifiers, each sorted by its shape (ID, mobile, e-mail, name)."""
        known = cls(keys=list(keys))
        for v in values:
            v = str(v).strip()
            if re.fullmatch(r"\d{17}[\dXx]", v):
                known.add_person(national_id=v)
            elif re.fullmatch(r"1[3-9]\d{9}", v):
                known.add_person(phone=v)
            elif "@" in v:
                known.add_person(email=v)
            else:
                known.add_person(name=v)
        return known

    @property
    def people(self) -> int:
        return len(self.ids | self.phones)

    @cached_property
    def latin_pattern(self) -> re.Pattern | None:
        """One alternation of every latin name, longest first, whole words only."""
        if not self.latin_names:
            return None
        names = sorted(self.latin_names, key=len, reverse=True)
        return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, names)) + r")(?!\w)")


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the scanned root
    store: str  # parquet, sqlite, gzip, zip, json, text
    kind: str  # key:<label>, national_id, phone, email, name, rebuildable_id
    sample: str  # masked: never the value itself


@dataclass
class ScanResult:
    files_scanned: int = 0
    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def mask(value: str) -> str:
    """A sample fit to print: enough to recognise the kind, not the person.

    IDs and mobiles keep their first three characters and last one (110**************X),
    e-mails their first letter and domain, names their first and last character.
    """
    if "@" in value:
        return value[:1] + "***@" + value.split("@", 1)[1]
    if value.isdigit() or re.fullmatch(r"\d{17}[Xx]", value):
        return value[:3] + "*" * (len(value) - 4) + value[-1:]
    if len(value) <= 2:
        return value[:1] + "*"
    return value[:1] + "*" * (len(value) - 2) + value[-1:]


# --- what is known -------------------------------------------------------------------


def known_people(settings: Settings, people: bool = True) -> Known:
    """The customers of the lending database (read only) and the configured keys."""

    known = Known(keys=list(pii.key_material(settings)))
    if settings.lending_jdbc_password is not None:
        secret = settings.lending_jdbc_password.get_secret_value()
        if secret:
            known.keys.append(("lending_jdbc_password", secret.encode()))
    path = settings.lending_db_path
    if not people or path is None or not path.exists():
        return known
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            cols = {r[1] for r in db.execute("PRAGMA table_info(customers)")}
            phone = "mobile" if "mobile" in cols else "phone"
            wanted = [c for c in ("national_id", phone, "name", "email") if c in cols]
            if not wanted:
                return known
            for row in db.execute(f"SELECT {', '.join(wanted)} FROM customers"):
                values = dict(zip(wanted, row, strict=True))
                known.add_person(
                    values.get("national_id"),
                    values.get(phone),
                    values.get("name"),
                    values.get("email"),
                )
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise RuntimeError(
            f"cannot read the customers of the lending database {path}: {exc}; "
            "check RISK_LENDING_JDBC_URL"
        ) from exc
    return known


def source_paths(settings: Settings) -> list[Path]:
    """The source systems under the home: they hold personal data by design."""
    out = [settings.site_dir]
    if settings.lending_db_path is not None:
        out.append(settings.lending_db_path)
    landing = settings.landing_dir
    if landing.exists():
        out += [p for p in landing.iterdir() if p != settings.crawl_landing_dir]
    data = Path(settings.data_dir)
    out += [data / "generation.json", data / "drops", data / "extracts"]
    return [p.resolve() for p in out]


# --- reading files like an attacker ------------------------------------------------------


def _store(head: bytes, path: Path) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"SQLite format 3\x00"):
        return "sqlite"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if path.suffix in (".json", ".jsonl") or head.lstrip()[:1] in (b"{", b"["):
        return "json"  # also Delta's _delta_log/*.crc (table state with file statistics)
    return "text"


def _unescape_json(text: str) -> str:
    """JSON lines with ``\\uXXXX`` escapes (and JSON inside strings) made readable."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s[0] not in "[{":
            continue
        try:
            out.append(json.dumps(json.loads(s), ensure_ascii=False))
        except ValueError:
            continue
    return "\n".join(out)


Columns = dict[str, list[str]]


def _parquet_text(data: bytes) -> tuple[str, Columns]:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    columns = {
        name: [("" if v is None else str(v)) for v in col.to_pylist()]
        for name, col in zip(table.column_names, table.columns, strict=True)
    }
    rows = json.dumps(table.to_pylist(), ensure_ascii=False, default=str)
    return rows, columns


def _sqlite_text(data: bytes) -> str:
    """Every cell of every table, from the file's bytes (also a database inside an archive)."""
    parts = []
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(data)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            quoted = '"' + t.replace('"', '""') + '"'
            for row in db.execute(f"SELECT * FROM {quoted}"):  # noqa: S608 - names from the file
                parts.append(
                    "\t".join(
                        v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                        for v in row
                    )
                )
    finally:
        db.close()
    return "\n".join(parts)


def _views(data: bytes, path: Path) -> Iterator[tuple[str, bytes, str, Columns]]:
    """(store, raw bytes, readable text, columns) of a file and of what it contains."""
    store = _store(data[:16], path)
    columns: Columns = {}
    if store == "parquet":
        try:
            text, columns = _parquet_text(data)
        except Exception:  # noqa: BLE001 - a damaged file is still searched raw
            text = data.decode("utf-8", "replace")
        yield store, data, text, columns
    elif store == "sqlite":
        try:
            text = _sqlite_text(data)
        except sqlite3.Error:
            text = ""
        yield store, data, text + "\n" + data.decode("utf-8", "replace"), columns
    elif store == "gzip":
        try:
            inner = gzip.decompress(data)
        except (OSError, EOFError):
            inner = b""
        yield store, data, "", {}
        for _, raw, text, cols in _views(inner, path.with_suffix("")):
            yield "gzip", raw, text, cols
    elif store == "zip":
        yield store, data, "", {}
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for name in z.namelist():
                    for _, raw, text, cols in _views(z.read(name), Path(name)):
                        yield "zip", raw, text, cols
        except zipfile.BadZipFile:
            pass
    else:
        text = data.decode("utf-8", "replace")
        if store == "json" or text.lstrip()[:1] in "[{":
            text = text + "\n" + _unescape_json(text)
        yield store, data, text, columns


# --- matching ----------------------------------------------------------------------------


def _identifiers(text: str, known: Known) -> Iterator[tuple[str, str]]:
    for m in _ID.findall(text):
        if m.upper() in known.ids:
            yield "national_id", m
    for m in _PHONE.findall(text):
        if m in known.phones:
            yield "phone", m
    if known.emails:
        for m in _EMAIL.findall(text):
            if m.lower() in known.emails:
                yield "email", m
    if known.han_names:
        for run in _HAN.findall(text):
            for n in (2, 3, 4):
                for i in range(len(run) - n + 1):
                    if run[i : i + n] in known.han_names:
                        yield "name", run[i : i + n]
    if known.latin_pattern is not None:
        for m in known.latin_pattern.findall(text):
            yield "name", m


def _rebuildable(columns: Columns, known: Known) -> str | None:
    """Columns whose values are the known IDs' region codes and birth dates.

    With the last four characters (which masks keep) and the region-and-birth pair, an
    ID is back: a table must not keep both columns.
    """
    if not columns or not known.ids:
        return None
    regions = {i[:6] for i in known.ids}
    births = {i[6:14] for i in known.ids} | {f"{i[6:10]}-{i[10:12]}-{i[12:14]}" for i in known.ids}

    def share(values: list[str], wanted: set[str]) -> float:
        filled = [v for v in values if v]
        # a timestamp column keeps the birth date as its first ten characters
        return sum(v in wanted or v[:10] in wanted for v in filled) / len(filled) if filled else 0

    region_cols = [c for c, v in columns.items() if share(v, regions) > REBUILD_SHARE]
    birth_cols = [c for c, v in columns.items() if share(v, births) > REBUILD_SHARE]
    if region_cols and birth_cols:
        return f"national ID rebuildable from {region_cols[0]} (region) + {birth_cols[0]} (birth)"
    return None


def scan_file(path: Path, root: Path, known: Known) -> list[Finding]:
    """Every finding in one file (deduplicated by kind and value); the path is shown
    relative to ``root`` (the home) when under it."""
    data = path.read_bytes()
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    seen: dict[tuple[str, str], Finding] = {}
    for store, raw, text, columns in _views(data, path):
        encoded = text.encode("utf-8", "replace")
        for label, needle in known.keys:
            if needle and (needle in raw or needle in encoded):
                seen.setdefault(("key", label), Finding(rel, store, f"key:{label}", label))
        for kind, value in _identifiers(text, known):
            seen.setdefault((kind, value), Finding(rel, store, kind, mask(value)))
        where = _rebuildable(columns, known)
        if where:
            seen.setdefault(("rebuild", where), Finding(rel, store, "rebuildable_id", where))
    return list(seen.values())


def _files(root: Path, exclude: Iterable[Path]) -> list[Path]:
    excluded = {p.resolve() for p in exclude}
    out = []
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            entries = sorted(d.iterdir())
        except (PermissionError, FileNotFoundError):
            continue
        for p in entries:
            if p.resolve() in excluded:
                continue
            if p.is_dir() and not p.is_symlink():
                if p.name not in SKIP_DIRS:
                    stack.append(p)
            elif p.is_file() and p.name not in SKIP_FILES and p.suffix not in SKIP_SUFFIXES:
                out.append(p)
    return sorted(out)


def _local(location) -> Path | None:
    """A local folder from a path or a ``file:`` URI; None for remote stores."""
    if location is None:
        return None
    text = str(location)
    if text.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(text).path))
    return None if "://" in text else Path(text)


def scan_roots(settings: Settings) -> list[Path]:
    """The home, then every local store configured outside it (lakehouse, data, crawl
    state, MLflow artifacts, Airflow home), each once."""
    home = Path(settings.home).resolve()
    roots = [home]
    for where in (
        settings.lakehouse_root,
        settings.data_dir,
        settings.crawl_state_dir,
        settings.mlflow_artifact_root,
        settings.airflow_home,
    ):
        path = _local(where)
        if path is None or not path.exists():
            continue
        path = path.resolve()
        if any(path.is_relative_to(r) for r in roots):
            continue
        roots = [r for r in roots if not r.is_relative_to(path)] + [path]
    return roots


def scan(
    settings: Settings,
    known: Known | Iterable[str] | None = None,
    exclude: Iterable[Path] = (),
    progress: Callable[[str], None] = lambda _: None,
) -> ScanResult:
    """Scan the home and the local stores outside it.

    ``known`` defaults to the lending database's customers; a list of strings (IDs,
    mobiles, e-mails, names) replaces them, the keys are searched for either way.
    """
    if known is None:
        known = known_people(settings)
    elif not isinstance(known, Known):
        known = Known.from_values(known, known_people(settings, people=False).keys)
    exclude = [Path(p) for p in exclude]
    missing = [str(p) for p in exclude if not p.exists()]
    if missing:
        raise ValueError(f"--exclude {', '.join(missing)}: no such file or folder")
    excluded = [*source_paths(settings), *exclude]
    home = Path(settings.home).resolve()
    result = ScanResult()
    files = [p for root in scan_roots(settings) for p in _files(root, excluded)]
    last = time.monotonic()
    for n, path in enumerate(files, 1):
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # removed while we scan
            continue
        if size > MAX_BYTES:
            result.skipped.append(f"{path} (larger than {MAX_BYTES >> 30} GiB)")
            continue
        try:
            result.findings += scan_file(path, home, known)
        except PermissionError:
            result.skipped.append(f"{path} (not readable)")
            continue
        result.files_scanned += 1
        if time.monotonic() - last > 5:
            last = time.monotonic()
            progress(f"privacy-scan: {n:,}/{len(files):,} files, {len(result.findings)} finding(s)")
    return result


def report(result: ScanResult) -> str:
    """Findings grouped by file, then a summary line."""
    lines = []
    by_file: dict[str, list[Finding]] = {}
    for f in result.findings:
        by_file.setdefault(f.path, []).append(f)
    for path in sorted(by_file):
        found = by_file[path]
        lines.append(f"{path}  [{found[0].store}]  {len(found)} finding(s)")
        kinds: dict[str, list[str]] = {}
        for f in found:
            kinds.setdefault(f.kind, []).append(f.sample)
        for kind, samples in sorted(kinds.items()):
            shown = ", ".join(samples[:3]) + (
                f" and {len(samples) - 3} more" if len(samples) > 3 else ""
            )
            lines.append(f"    {kind}: {shown}")
    for path in result.skipped:
        lines.append(f"skipped: {path}")
    lines.append(
        f"privacy-scan: {result.files_scanned:,} file(s) scanned, {len(result.findings)} finding(s)"
    )
    return "\n".join(lines)
