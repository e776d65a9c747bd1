"""Reading files as received: format and encoding detection, RFC 4180 CSV, JSON.

``discover`` finds the data files of a path, ``detect_encoding`` (BOM, then UTF-8, else
GB18030) and ``sniff_csv`` (header, delimiter, multi-line records) look at the bytes,
``read_csv`` reads every field as text with quotes doubled inside quoted fields and keeps
a record that does not split into the header's fields in ``CORRUPT``; ``read_json``
reads JSON lines or documents the same way. ``normalize_headers`` names columns in
unique snake_case. Used by every landing step that reads files (settlements, a lender's
own extract, a dataset for evaluation).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

CORRUPT = "__corrupt"  # the raw text of a CSV/JSON record Spark could not split into fields


_SPARK_CORRUPT = "_corrupt_record"


# Python codec names -> Java charset names. Spark 4 reads only the Unicode charsets and
# ISO-8859-1/US-ASCII unless spark.sql.legacy.javaCharsets is on (set when needed).
_SPARK_CHARSETS = {
    "utf-8": "UTF-8",
    "utf8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "gb18030": "GB18030",
    "gbk": "GBK",
    "gb2312": "GBK",
    "big5": "Big5",
    "latin-1": "ISO-8859-1",
    "latin1": "ISO-8859-1",
    "iso-8859-1": "ISO-8859-1",
    "ascii": "US-ASCII",
    "cp1252": "windows-1252",
}


FORMATS = ("csv", "parquet", "json", "jsonl")


_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def snake_case(name: str) -> str:
    """``"Loan Amount"``, ``"loanAmnt"``, ``"Loan-Amount (USD)"`` -> ``loan_amount``...

    Letters of any script are kept (``"借据号"`` stays), everything else becomes ``_``;
    a leading digit gets a ``c_`` prefix so the result is a valid identifier.
    """
    s = name.replace("\ufeff", "").strip()
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"\W+", "_", s.lower())
    s = re.sub(r"_+", "_", s).strip("_")
    if s[:1].isdigit():
        s = "c_" + s
    return s


def normalize_headers(names: Sequence[str]) -> list[str]:
    """snake_case every name; empty ones become ``column_<n>``; collisions get ``_2``, ``_3``."""
    out: list[str] = []
    taken: set[str] = set()
    for i, name in enumerate(names, start=1):
        base = snake_case(name) or f"column_{i}"
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        out.append(candidate)
    return out


class _Gunzip(io.RawIOBase):
    """A gzip file's decompressed bytes; a truncated or corrupt stream is an
    ``UnreadableFile`` naming how far it got, not an ``EOFError`` from deep inside."""

    def __init__(self, path: Path):
        self.path = path
        self.inner = gzip.open(path, "rb")  # noqa: SIM115

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.inner.close()
        super().close()

    def readinto(self, buffer) -> int:
        try:
            n = self.inner.readinto(buffer)
        except (EOFError, OSError, zlib.error) as exc:
            raise UnreadableFile(
                f"{self.path} is not a complete gzip file ({exc}): it was cut short or "
                "damaged; copy it again"
            ) from None
        return n


def _open_bytes(path: Path):
    if path.suffix == ".gz":
        return io.BufferedReader(_Gunzip(path), 1 << 20)
    return open(path, "rb")  # noqa: SIM115


def open_text(path: Path, encoding: str):
    """``path`` (``.gz`` or not) as text; undecodable bytes become U+FFFD."""
    return io.TextIOWrapper(_open_bytes(path), encoding=encoding, errors="replace", newline="")


def _data_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def detect_format(path: Path) -> str:
    """``csv``, ``parquet``, ``json`` or ``jsonl`` from the file name (``.gz`` ignored)."""
    fmt = _EXTENSIONS.get(_data_suffix(path))
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {path} from its extension; pass --format "
            f"({', '.join(FORMATS)})"
        )
    return fmt


def discover(path: Path, fmt: str | None = None) -> tuple[list[Path], str]:
    """The data files at ``path`` (a file, or a folder searched recursively) and their format."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_file():
        return [path], fmt or detect_format(path)
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        and (fmt is not None or _data_suffix(p) in _EXTENSIONS)
    )
    if not files:
        raise FileNotFoundError(f"no data files under {path} (looked for {', '.join(_EXTENSIONS)})")
    if fmt is None:
        kinds = {detect_format(p) for p in files}
        if len(kinds) > 1:
            raise ValueError(f"{path} mixes formats {sorted(kinds)}: pass --format")
        fmt = kinds.pop()
    return files, fmt


class UnreadableFile(ValueError):
    """A file that cannot be read as what it claims to be. The message names the file,
    the line where it can, and what to do."""


# Limits a file must respect (riskctl ingest-file --max-field-chars / --max-bytes): one
# huge field or a compression bomb gets this error, not a Java OutOfMemoryError.
MAX_FIELD_CHARS = 1 << 20  # characters in one CSV field
MAX_RECORD_BYTES = 16 << 20  # bytes in one JSON line
MAX_BYTES = 8 << 30  # bytes of one file once decompressed

_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


# Binary formats a text file is most often confused with, by their first bytes.
_NOT_TEXT = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one): export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls): export the sheet as CSV"),
    (b"\x1f\x8b", "gzip-compressed but its name does not end in .gz: rename it to end in .gz"),
    (b"PAR1", "a Parquet file: name it .parquet or pass --format parquet"),
    (b"%PDF", "a PDF document"),
)


def describe_files(files: Sequence[Path]) -> str:
    """One file's path, or the folder and the number of files, for a message."""
    return str(files[0]) if len(files) == 1 else f"{files[0].parent} ({len(files)} files)"


def _convert_hint(path: Path, encoding: str) -> str:
    target = path.with_name(f"{path.stem}.utf8{path.suffix}")
    return f"convert it to UTF-8 first, e.g. `iconv -f {encoding} -t UTF-8 {path} > {target}`"


def refuse_wide_encoding(path: Path, encoding: str | None) -> None:
    """UTF-16 and UTF-32 files are refused with what to do: Spark splits records on the
    byte 0x0A, which also occurs inside their characters, so a record would be cut apart.
    Told by a byte-order mark, by the encoding asked for, or by NUL bytes every other byte."""
    if encoding and re.sub(r"[-_]", "", encoding.lower()).startswith(("utf16", "utf32")):
        raise UnreadableFile(
            f"{path}: {encoding} cannot be read as it is; {_convert_hint(path, encoding.upper())}"
        )
    with _open_bytes(path) as fh:
        head = fh.read(4096)
    for magic, what in _NOT_TEXT:
        if head.startswith(magic):
            raise UnreadableFile(f"{path} is not a text file: it is {what}")
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            raise UnreadableFile(f"{path} is {name} (byte-order mark); {_convert_hint(path, name)}")
    if len(head) >= 16 and head.count(0) * 4 >= len(head):
        raise UnreadableFile(
            f"{path}: a quarter or more of its bytes are NUL, as in UTF-16 or UTF-32 text; "
            f"if it is, {_convert_hint(path, 'UTF-16')}; otherwise it is not a text file"
        )


@dataclass(frozen=True)
class Encoding:
    """The encoding a file is read with, and its lines that do not decode in it."""

    name: str  # Python codec name
    bad: int = 0  # lines with bytes that do not decode
    bad_lines: tuple[tuple[int, int], ...] = ()  # (line, byte offset), the first 20

    def describe_bad(self) -> str:
        where = ", ".join(f"line {n} (byte {o:,})" for n, o in self.bad_lines)
        more = (
            f" and {self.bad - len(self.bad_lines)} more" if self.bad > len(self.bad_lines) else ""
        )
        return f"{self.bad} line(s) not valid {self.name}: {where}{more}"


def _decodes(path: Path, encoding: str, block: int) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with _open_bytes(path) as fh:
            while chunk := fh.read(block):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return True
    except UnicodeDecodeError:
        return False


def _utf8_lines(path: Path) -> tuple[int, int, list[tuple[int, int]]]:
    """(lines with valid non-ASCII UTF-8, lines that are not UTF-8, (line, offset) of those)."""
    good, bad, where, offset = 0, 0, [], 0
    with _open_bytes(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.isascii():
                try:
                    line.decode("utf-8")
                    good += 1
                except UnicodeDecodeError as exc:
                    bad += 1
                    if len(where) < 20:
                        where.append((number, offset + exc.start))
            offset += len(line)
    return good, bad, where


def detect_file_encoding(path: Path, block: int = 8 << 20) -> Encoding:
    """How to decode ``path``, per line rather than per file.

    A UTF-8 byte-order mark: UTF-8. A file that decodes as UTF-8 throughout: UTF-8. A file
    that is mostly UTF-8 (at least as many non-ASCII lines decode as fail) stays UTF-8,
    and its undecodable lines are reported (``bad_lines``) for the quarantine: one stray
    Latin-1 byte does not turn every other value into mojibake. Otherwise GB18030 (the
    superset of GBK) if the whole file decodes as that; else an error saying what to pass.
    UTF-16 and UTF-32 are refused (``refuse_wide_encoding``).
    """
    refuse_wide_encoding(path, None)
    with _open_bytes(path) as fh:
        if fh.read(3) == codecs.BOM_UTF8:
            return Encoding("utf-8-sig")
    if _decodes(path, "utf-8", block):
        return Encoding("utf-8")
    good, bad, where = _utf8_lines(path)
    if good >= bad:
        return Encoding("utf-8", bad, tuple(where))
    if _decodes(path, "gb18030", block):
        return Encoding("gb18030")
    raise UnreadableFile(
        f"{path} is neither UTF-8 nor GBK/GB18030 ({bad} line(s) are not UTF-8, the first "
        f"at line {where[0][0]}): pass --encoding (e.g. latin-1, cp1252, big5)"
    )


def detect_encoding(path: Path, block: int = 8 << 20) -> str:
    """The Python codec name ``detect_file_encoding`` chooses for ``path``."""
    return detect_file_encoding(path, block).name


def has_multiline_records(path: Path, quote: bytes = b'"', block: int = 8 << 20) -> bool:
    """True when a line break falls inside a quoted field somewhere in the file.

    In RFC 4180 a quote inside a quoted field is doubled, so a line break is inside a
    field exactly when an odd number of quotes precede it. Files without such records can
    be split across tasks by Spark; the others must be read whole (``multiLine``).
    (Valid for UTF-8 and GBK, whose multi-byte sequences never contain ``"`` or ``\\n``.)
    """
    q, nl = quote[0], ord("\n")
    parity = 0
    with _open_bytes(path) as fh:
        while chunk := fh.read(block):
            arr = np.frombuffer(chunk, dtype=np.uint8)
            odd = (np.cumsum(arr == q) + parity) & 1
            if odd[arr == nl].any():
                return True
            parity = int(odd[-1])
    return False


@dataclass(frozen=True)
class CsvFile:
    """What ``sniff_csv`` learned about one CSV file."""

    path: Path
    encoding: str  # Python codec name
    delimiter: str
    header: tuple[str, ...]  # column titles as in the file
    multiline: bool  # a quoted field holds a line break somewhere
    size: int
    undecodable: Encoding | None = None  # lines that do not decode, when the encoding was detected


def sniff_csv(path: Path, encoding: str | None = None, delimiter: str | None = None) -> CsvFile:
    """Encoding (unless given), delimiter (unless given: the most frequent of , ; tab | in
    the header line), the header titles and whether records span lines."""
    path = Path(path)
    refuse_wide_encoding(path, encoding)
    detected = None if encoding else detect_file_encoding(path)
    encoding = encoding or detected.name
    with _open_bytes(path) as fh:
        head = fh.read(256 << 10)
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    if not text.strip():
        raise ValueError(f"{path} is empty: a CSV file needs a header line")
    if delimiter is None:
        if _data_suffix(path) == ".tsv":
            delimiter = "\t"
        else:
            first = text.splitlines()[0]
            delimiter = max(",;\t|", key=lambda d: (first.count(d), d == ","))
    if "\r" in text and "\n" not in text:
        raise UnreadableFile(
            f"{path} ends its lines with a carriage return alone (classic Mac OS); convert "
            f"them first, e.g. `tr '\\r' '\\n' < {path} > {path.with_suffix('.lf.csv')}`"
        )
    header = next(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"'))
    return CsvFile(
        path=path,
        encoding=encoding,
        delimiter=delimiter,
        header=tuple(header),
        multiline=has_multiline_records(path),
        size=path.stat().st_size,
        undecodable=detected if detected and detected.bad else None,
    )


def _spark_charset(spark: SparkSession, encoding: str) -> str:
    charset = _SPARK_CHARSETS.get(encoding.lower(), encoding)
    if charset not in ("UTF-8", "US-ASCII", "ISO-8859-1"):
        spark.conf.set("spark.sql.legacy.javaCharsets", "true")
    return charset


def _with_corrupt(df: DataFrame) -> DataFrame:
    if _SPARK_CORRUPT in df.columns:
        return df.withColumnRenamed(_SPARK_CORRUPT, CORRUPT)
    return df.withColumn(CORRUPT, F.lit(None).cast("string"))


def read_csv(
    spark: SparkSession,
    files: Sequence[CsvFile],
    names: Callable[[Sequence[str]], list[str]] = normalize_headers,
    max_field_chars: int = MAX_FIELD_CHARS,
) -> DataFrame:
    """Read sniffed CSV files as string columns named ``names(header)``, plus
    ``__corrupt`` (the raw record when its field count differs from the header's) and
    ``_source_uri``.

    RFC 4180: ``"`` quotes, ``""`` inside a quoted field is one quote (Spark's default
    escape is a backslash, which mangles such fields), line breaks inside quoted fields
    when the file has them. Files are read in groups of the same encoding and header, so
    every file keeps its own column names; groups are unioned by name.
    """
    groups: dict[tuple, list[CsvFile]] = {}
    for f in files:
        groups.setdefault((f.encoding, f.delimiter, f.header, f.multiline), []).append(f)
    frames = []
    for (encoding, delimiter, header, multiline), group in groups.items():
        cols = names(header)
        schema = T.StructType(
            [T.StructField(c, T.StringType()) for c in cols]
            + [T.StructField(_SPARK_CORRUPT, T.StringType())]
        )
        df = (
            spark.read.format("csv")
            .schema(schema)
            .option("header", True)
            .option("enforceSchema", True)  # our names, not Spark's reading of the header
            .option("multiLine", multiline)
            .option("quote", '"')
            .option("escape", '"')
            .option("sep", delimiter)
            .option("encoding", _spark_charset(spark, encoding))
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", _SPARK_CORRUPT)
            .option("maxCharsPerColumn", max_field_chars)
            .load([str(f.path) for f in group])
        )
        frames.append(_with_corrupt(df.withColumn("_source_uri", F.col("_metadata.file_path"))))
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df, allowMissingColumns=True)
    return out


def _json_multiline(path: Path, encoding: str) -> bool:
    """A ``.json`` file holds one document (array or pretty-printed object) or JSON lines."""
    with _open_bytes(path) as fh:
        head = fh.read(1 << 20).decode(encoding, errors="replace").lstrip("\ufeff \t\r\n")
    if head.startswith("["):
        return True
    first = head.split("\n", 1)[0]
    try:
        json.loads(first)
        return False
    except ValueError:
        return True


def read_json(
    spark: SparkSession, paths: Sequence[Path], multiline: bool, encoding: str
) -> DataFrame:
    """JSON (lines, or whole documents) with Spark's schema inference; broken records
    keep their text in ``__corrupt``. Keys that are one column twice (the same key twice
    in an object, or keys that differ only in case) are an ``UnreadableFile``."""
    from pyspark.errors import AnalysisException

    try:
        df = (
            spark.read.format("json")
            .option("multiLine", multiline)
            .option("encoding", _spark_charset(spark, encoding))
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", _SPARK_CORRUPT)
            .load([str(p) for p in paths])
        )
        return _with_corrupt(df.withColumn("_source_uri", F.col("_metadata.file_path")))
    except AnalysisException as exc:
        found = re.search(r"COLUMN_ALREADY_EXISTS\].*?`([^`]+)`", str(exc))
        if not found:
            raise
        raise UnreadableFile(
            f"{describe_files(paths)}: the key {found.group(1)!r} occurs twice in one object, "
            "or with another upper/lower case, so it cannot be one column; fix the producer, "
            "or rename one of them before landing"
        ) from None


# --- counting records independently of Spark ---------------------------------------------


class _Limited(io.RawIOBase):
    """A binary stream that refuses to yield more than ``limit`` bytes (a compression bomb
    or a file larger than allowed)."""

    def __init__(self, raw, path: Path, limit: int):
        self.raw, self.path, self.limit, self.read_so_far = raw, path, limit, 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()
        super().close()

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.read_so_far += len(data)
        if self.read_so_far > self.limit:
            raise UnreadableFile(
                f"{self.path} holds more than {self.limit:,} bytes once decompressed (the limit, "
                "--max-bytes): split it, or raise the limit if the file is what you expect"
            )
        buffer[: len(data)] = data
        return len(data)


def _text(path: Path, encoding: str, max_bytes: int) -> io.TextIOWrapper:
    raw = _Limited(_open_bytes(path), path, max_bytes)
    return io.TextIOWrapper(
        io.BufferedReader(raw, 1 << 20), encoding=encoding, errors="replace", newline=""
    )


@dataclass(frozen=True)
class RecordScan:
    """What an independent pass over a file found: the number of records (what Spark must
    read, no more, no fewer) and the records that do not fit, by physical line."""

    path: Path
    records: int
    ragged: int = 0  # records whose field count differs from the header's
    ragged_lines: tuple[int, ...] = ()  # their first lines, the first 20


def scan_csv(
    f: CsvFile, max_field_chars: int = MAX_FIELD_CHARS, max_bytes: int = MAX_BYTES
) -> RecordScan:
    """Count the data records of a sniffed CSV file by reading it with Python's csv module
    (RFC 4180 quoting, as Spark is configured here); blank lines are not records.

    Raises ``UnreadableFile`` naming the line for a quoted field that never closes (it would
    swallow the rest of the file into one value), a field longer than ``max_field_chars``
    and a file larger than ``max_bytes`` once decompressed.
    """
    previous = csv.field_size_limit(max_field_chars)
    records, ragged, ragged_lines = 0, 0, []
    width = len(f.header)
    start, last_start, last_multiline = 0, 0, False
    try:
        with _text(f.path, f.encoding, max_bytes) as fh:
            reader = csv.reader(fh, delimiter=f.delimiter, quotechar='"', doublequote=True)
            next(reader, None)  # the header
            for row in _rows(reader, f.path, max_field_chars):
                start, row = row
                if not row:
                    continue
                records += 1
                last_start, last_multiline = start, reader.line_num > start
                if len(row) != width:
                    ragged += 1
                    if len(ragged_lines) < 20:
                        ragged_lines.append(start)
    finally:
        csv.field_size_limit(previous)
    if last_multiline and _ends_inside_quotes(f, last_start, max_bytes):
        raise UnreadableFile(
            f"{f.path} line {last_start}: a quoted field opens and never closes, so every "
            "line after it would be read as one value. Close the quote (inside a quoted "
            'field a quote is written twice: "")'
        )
    return RecordScan(f.path, records, ragged, tuple(ragged_lines))


def _rows(reader, path: Path, max_field_chars: int):
    """(first line, fields) of each record; a too-long field is a clear error."""
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise UnreadableFile(
                    f"{path} line {start}: a field is longer than {max_field_chars:,} characters "
                    "(the limit, --max-field-chars); is a quote missing? Raise the limit if "
                    "the value is meant to be that long"
                ) from None
            raise UnreadableFile(f"{path} line {start}: {exc}") from None
        yield start, row


def _ends_inside_quotes(f: CsvFile, first_line: int, max_bytes: int) -> bool:
    """True when the text from ``first_line`` to the end is a record whose quote never
    closes (Python's csv in strict mode says "unexpected end of data")."""
    with _text(f.path, f.encoding, max_bytes) as fh:
        for _ in range(first_line - 1):
            fh.readline()
        try:
            for _ in csv.reader(fh, delimiter=f.delimiter, quotechar='"', strict=True):
                pass
        except csv.Error as exc:
            return "unexpected end of data" in str(exc)
    return False


def scan_json_lines(
    path: Path, max_record_bytes: int = MAX_RECORD_BYTES, max_bytes: int = MAX_BYTES
) -> RecordScan:
    """Count the records of a JSON-lines file: its non-blank lines. A line longer than
    ``max_record_bytes`` or a file larger than ``max_bytes`` is an ``UnreadableFile``."""
    records = 0
    with _open_bytes(path) as fh:
        raw = _Limited(fh, path, max_bytes)
        for number, line in enumerate(io.BufferedReader(raw, 1 << 20), start=1):
            if len(line) > max_record_bytes:
                raise UnreadableFile(
                    f"{path} line {number}: a record of {len(line):,} bytes is longer than "
                    f"{max_record_bytes:,} (the limit, --max-record-bytes); split it or raise "
                    "the limit"
                )
            if line.strip():
                records += 1
    return RecordScan(path, records)
