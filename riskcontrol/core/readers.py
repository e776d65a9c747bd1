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


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115


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


def detect_encoding(path: Path, block: int = 8 << 20) -> str:
    """``utf-8-sig`` if the file starts with a UTF-8 byte-order mark, else ``utf-8`` if the
    whole file decodes as UTF-8, else ``gb18030`` (the superset of GBK) if it decodes as
    that; an error otherwise (pass the encoding explicitly)."""
    with _open_bytes(path) as fh:
        if fh.read(3) == codecs.BOM_UTF8:
            return "utf-8-sig"
    for enc in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(enc)()
        try:
            with _open_bytes(path) as fh:
                while chunk := fh.read(block):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return enc
        except UnicodeDecodeError:
            continue
    raise ValueError(f"{path} is neither UTF-8 nor GBK/GB18030: pass --encoding")


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


def sniff_csv(path: Path, encoding: str | None = None, delimiter: str | None = None) -> CsvFile:
    """Encoding (unless given), delimiter (unless given: the most frequent of , ; tab | in
    the header line), the header titles and whether records span lines."""
    path = Path(path)
    encoding = encoding or detect_encoding(path)
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
    header = next(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"'))
    return CsvFile(
        path=path,
        encoding=encoding,
        delimiter=delimiter,
        header=tuple(header),
        multiline=has_multiline_records(path),
        size=path.stat().st_size,
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
    keep their text in ``__corrupt``."""
    df = (
        spark.read.format("json")
        .option("multiLine", multiline)
        .option("encoding", _spark_charset(spark, encoding))
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", _SPARK_CORRUPT)
        .load([str(p) for p in paths])
    )
    return _with_corrupt(df.withColumn("_source_uri", F.col("_metadata.file_path")))
