"""Hostile files for `riskctl ingest-file`: each lands, rescues, quarantines with a reason,
or is refused with a clear error; never a traceback, a silent loss or a changed value."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import OPS_MANIFEST, OPS_QUARANTINE
from riskcontrol.core.readers import UnreadableFile
from riskcontrol.core.runs import Run
from riskcontrol.lenderfile import land

ROWS = ["id,name,amount"] + [f"{i},n{i},{i * 10}" for i in range(1, 50)]


def _ingest(spark, settings, path, run_id="h1", **kw):
    return land.ingest_file(Run(spark, settings, run_id=run_id), path, "hostile", **kw)


def _counts(result):
    c = result.counts
    return (c.rows_in, c.rows_out, c.rows_unchanged, c.rows_duplicate, c.rows_quarantined)


def test_an_unclosed_quote_is_refused_naming_its_line(spark, settings, tmp_path):
    rows = list(ROWS)
    rows[3] = '3,"n3,30'  # line 4 of the file: the quote never closes
    path = tmp_path / "unclosed.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(UnreadableFile, match=r"unclosed.csv line 4: a quoted field opens"):
        _ingest(spark, settings, path)
    assert not lakehouse.exists(spark, OPS_MANIFEST, settings)  # nothing landed or counted


def test_one_latin1_byte_quarantines_its_line_and_keeps_the_file_utf8(spark, settings, tmp_path):
    path = tmp_path / "mixed.csv"
    body = "id,name\n1,José\n2,Zoë\n".encode() + "3,Ren\xe9e\n".encode("latin-1") + b"4,Ulf\n"
    path.write_bytes(body)
    result = _ingest(spark, settings, path)
    assert _counts(result) == (4, 3, 0, 0, 1)
    assert result.quarantined_by_rule == {"undecodable": 1}
    names = sorted(r.name for r in lakehouse.read_clear(spark, result.table, settings).collect())
    assert names == ["José", "Ulf", "Zoë"]  # not mojibake
    (q,) = lakehouse.read_clear(spark, OPS_QUARANTINE, settings).collect()
    assert "mixed.csv: 1 line(s) not valid utf-8: line 4 (byte 28)" in q.reason


def test_utf16_is_refused_with_the_command_that_converts_it(spark, settings, tmp_path):
    path = tmp_path / "wide.csv"
    path.write_bytes("id,name\n1,a\n".encode("utf-16"))
    with pytest.raises(UnreadableFile, match=r"is UTF-16 \(byte-order mark\).*iconv -f UTF-16"):
        _ingest(spark, settings, path)
    path.write_bytes(b"id,name\n1,a\n")
    with pytest.raises(UnreadableFile, match="utf-16 cannot be read as it is"):
        _ingest(spark, settings, path, encoding="utf-16")


def test_a_huge_field_in_a_small_gzip_is_refused_before_spark_reads_it(spark, settings, tmp_path):
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("a,b\n1," + "x" * 3_000_000 + "\n")
    assert path.stat().st_size < 10_000
    with pytest.raises(
        UnreadableFile, match=r"bomb.csv.gz line 2: a field is longer than 1,048,576"
    ):
        _ingest(spark, settings, path)
    with pytest.raises(UnreadableFile, match="more than 1,000 bytes once decompressed"):
        _ingest(
            spark, settings, path, limits=land.Limits(max_field_chars=10_000_000, max_bytes=1000)
        )


def test_a_duplicate_row_is_counted_as_duplicate_and_ragged_rows_keep_their_text(
    spark, settings, tmp_path
):
    path = tmp_path / "dupes.csv"
    path.write_text("a,b\n1,x\n1,x\n2,y\n3,z,extra\n4\n")
    result = _ingest(spark, settings, path)
    assert _counts(result) == (5, 2, 0, 1, 2)
    records = sorted(
        json.loads(q.record)["__corrupt"]
        for q in lakehouse.read_clear(spark, OPS_QUARANTINE, settings).collect()
    )
    assert records == ["3,z,extra", "4"]
    assert any("2 record(s) with another number of fields" in d for d in result.details)


def test_a_json_line_that_is_an_array_fails_the_count_instead_of_inventing_rows(
    spark, settings, tmp_path
):
    path = tmp_path / "events.jsonl"
    path.write_text('{"id": 1}\n[{"id": 2}, {"id": 3}]\n\n{"id": 4}\n')
    with pytest.raises(land.RecordCountError, match=r"events.jsonl: 3 record\(s\) in the file"):
        _ingest(spark, settings, path)


# --- the corpus: one hostile file per case, each with its exact outcome ----------------------
#
# Landed(counts, values): (read, landed, unchanged, duplicate, quarantined) and the landed
# values of one column, in id order. Refused(pattern): a clear error, before anything lands.


@dataclasses.dataclass(frozen=True)
class Landed:
    counts: tuple[int, int, int, int, int]
    column: str
    values: tuple
    rules: tuple = ()  # (rule, count) quarantined
    rescued: tuple = ()  # (column, count) rescued


@dataclasses.dataclass(frozen=True)
class Refused:
    pattern: str
    error: type = UnreadableFile


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


def _mixed_parquet(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"id": [1, 2], "v": ["a", "b"]}), folder / "p1.parquet")
    pq.write_table(pa.table({"id": [3], "v": [1.5]}), folder / "p2.parquet")
    return folder


def _nested_parquet(tmp_path):
    path = tmp_path / "nested.parquet"
    rows = {"id": [1, 2], "s": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], "l": [[1, 2], [3]]}
    pq.write_table(pa.table(rows), path)
    return path


def _truncated_gzip(tmp_path):
    data = gzip.compress(("id,n\n" + "".join(f"{i},x{i}\n" for i in range(5000))).encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


YEARS = "id,year\n" + "".join(f"{i},{1970 + i % 30}\n" for i in range(1, 200)) + "200,1976A\n"

CORPUS = {
    "a damaged Parquet file": (
        "bad.parquet",
        b"PAR1" + b"garbage" * 3 + b"PAR1",
        Refused(r"bad.parquet is not a readable Parquet file"),
    ),
    # encodings
    "utf8 with a byte-order mark": (
        "bom.csv",
        b"\xef\xbb\xbfid,name\n1,a\n",
        Landed((1, 1, 0, 0, 0), "name", ("a",)),
    ),
    "gb18030 throughout": (
        "gb.csv",
        "编号,备注\n1,张三\n2,李四\n".encode("gb18030"),
        Landed((2, 2, 0, 0, 0), "备注", ("张三", "李四")),
    ),
    "utf-32 with a byte-order mark": (
        "u32.csv",
        "id\n1\n".encode("utf-32"),
        Refused(r"is UTF-32 \(byte-order mark\).*iconv -f UTF-32"),
    ),
    "binary bytes throughout": (
        "garbage.csv",
        bytes(range(256)) * 10,
        Refused(r"is neither UTF-8 nor GBK/GB18030.*pass --encoding"),
    ),
    "a NUL byte inside a value": (
        "nul.csv",
        b"id,name\n1,a\x00b\n2,c\n",
        Landed((2, 2, 0, 0, 0), "name", ("a\x00b", "c")),
    ),
    # quoting and line structure
    "a line break inside quotes": (
        "nl.csv",
        'id,memo\n1,"two\nlines"\n2,x\n',
        Landed((2, 2, 0, 0, 0), "memo", ("two\nlines", "x")),
    ),
    "backslashes and doubled quotes (RFC 4180)": (
        "bs.csv",
        'id,path\n1,"C:\\dir\\"\n2,"say ""hi"""\n',
        Landed((2, 2, 0, 0, 0), "path", ("C:\\dir\\", 'say "hi"')),
    ),
    "CRLF line ends": (
        "crlf.csv",
        "id,name\r\n1,a\r\n2,b\r\n",
        Landed((2, 2, 0, 0, 0), "name", ("a", "b")),
    ),
    "CR-only line ends": (
        "cr.csv",
        "id,name\r1,a\r2,b\r",
        Refused(r"carriage return alone.*tr '\\r' '\\n'"),
    ),
    "blank lines between records": (
        "blank.csv",
        "id,name\n1,a\n\n2,b\n\n",
        Landed((2, 2, 0, 0, 0), "name", ("a", "b")),
    ),
    "a trailing delimiter on every line": (
        "trail.csv",
        "id,name,\n1,a,\n2,b,\n",
        Landed((2, 2, 0, 0, 0), "column_3", (None, None)),
    ),
    "semicolons and decimal commas": (
        "semi.csv",
        "id;amount\n1;1,5\n2;2,5\n",
        Landed((2, 2, 0, 0, 0), "amount", ("1,5", "2,5")),
    ),
    # headers
    "duplicate headers": (
        "duph.csv",
        "id,ID,name,name\n1,2,a,b\n",
        Landed((1, 1, 0, 0, 0), "id_2", (2,)),
    ),
    "SQL in a header": (
        "sqlh.csv",
        'id,"name); DROP TABLE x;--",select\n1,a,b\n',
        Landed((1, 1, 0, 0, 0), "name_drop_table_x", ("a",)),
    ),
    "a header and no records": ("header.csv", "id,name\n", Landed((0, 0, 0, 0, 0), "name", ())),
    "an empty file": (
        "empty.csv",
        b"",
        Refused(r"is empty: a CSV file needs a header line", ValueError),
    ),
    "a byte-order mark and nothing else": (
        "onlybom.csv",
        b"\xef\xbb\xbf",
        Refused(r"is empty", ValueError),
    ),
    # values
    "null tokens": (
        "nulls.csv",
        "id,amount\n1,NULL\n2,N/A\n3,10\n4,\n",
        Landed((4, 4, 0, 0, 0), "amount", (None, None, 10, None)),
    ),
    "spreadsheet formulas kept as text": (
        "formula.csv",
        "id,name\n1,=cmd|' /C calc'!A0\n2,+1+1\n",
        Landed((2, 2, 0, 0, 0), "name", ("=cmd|' /C calc'!A0", "+1+1")),
    ),
    "a year column with one 1976A, far down": (
        "years.csv",
        YEARS,
        Landed((200, 200, 0, 0, 0), "year", None, rescued=(("year", 1),)),
    ),
    # not text, or not whole
    "an Excel workbook named .csv": (
        "book.csv",
        _zip_bytes,
        Refused(r"is not a text file: it is a ZIP archive \(an Excel .xlsx"),
    ),
    "gzip named .csv": (
        "packed.csv",
        gzip.compress(b"id\n1\n"),
        Refused(r"gzip-compressed but its name does not end in .gz"),
    ),
    "a truncated gzip": (
        None,
        _truncated_gzip,
        Refused(r"is not a complete gzip file.*copy it again"),
    ),
    # JSON
    "JSON lines that are not objects": (
        "scal.jsonl",
        '{"id": 1}\n42\n"x"\n{"id": 2}\n',
        Landed((4, 2, 0, 0, 2), "id", (1, 2), rules=(("malformed_row", 2),)),
    ),
    "a JSON line cut short": (
        "cut.jsonl",
        '{"id": 1}\n{"id": 2\n{"id": 3}\n',
        Landed((3, 2, 0, 0, 1), "id", (1, 3), rules=(("malformed_row", 1),)),
    ),
    "one JSON key twice in an object": (
        "dupk.jsonl",
        '{"id": 1, "ID": 2, "name": "a"}\n',
        Refused(r"the key 'id' occurs twice in one object, or with another upper/lower case"),
    ),
    "an empty JSON-lines file": (
        "none.jsonl",
        b"",
        Refused(r"holds no JSON records: nothing to land"),
    ),
    "nested JSON objects and arrays": (
        "nest.jsonl",
        '{"id": 1, "tags": ["a", "b"]}\n{"id": 2, "tags": []}\n',
        Landed((2, 2, 0, 0, 0), "tags", (["a", "b"], [])),
    ),
    # Parquet
    "nested Parquet": (None, _nested_parquet, Landed((2, 2, 0, 0, 0), "l", ([1, 2], [3]))),
    "Parquet files that disagree on a type": (
        None,
        _mixed_parquet,
        Refused(r"p2.parquet has column v as double but p1.parquet has it as string"),
    ),
}


@pytest.mark.parametrize("case", list(CORPUS))
def test_hostile_corpus(case, spark, settings, tmp_path):
    name, content, expected = CORPUS[case]
    if name is None:
        path = content(tmp_path)
    else:
        path = tmp_path / name
        data = content() if callable(content) else content
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    if isinstance(expected, Refused):
        with pytest.raises(expected.error, match=expected.pattern):
            _ingest(spark, settings, path)
        assert not lakehouse.exists(spark, OPS_MANIFEST, settings)
        return
    result = _ingest(spark, settings, path)
    assert _counts(result) == expected.counts
    assert tuple(result.quarantined_by_rule.items()) == expected.rules
    assert tuple(result.rescued_by_column.items()) == expected.rescued
    landed = lakehouse.read_clear(spark, result.table, settings)
    rows = landed.orderBy(landed.columns[0]).collect()
    if expected.values is not None:
        assert tuple(r[expected.column] for r in rows) == expected.values
    quarantined = (
        lakehouse.read_clear(spark, OPS_QUARANTINE, settings).count() if expected.rules else 0
    )
    assert quarantined == expected.counts[4]  # one quarantine row per quarantined record


def test_rescued_values_keep_their_text_and_a_second_file_lands_in_the_same_table(
    spark, settings, tmp_path
):
    first = tmp_path / "years.csv"
    first.write_text(YEARS)
    _ingest(spark, settings, first)
    second = tmp_path / "more" / "years.csv"
    second.parent.mkdir()
    second.write_text("id,year\n201,1999\n202,19x9\n")
    result = _ingest(spark, settings, second, run_id="h2")
    assert _counts(result) == (2, 2, 0, 0, 0)
    rows = lakehouse.read_clear(spark, result.table, settings).where("year IS NULL").orderBy("id")
    assert [(r.id, r._rescued_data) for r in rows.collect()] == [
        (200, {"year": "1976A"}),
        (202, {"year": "19x9"}),
    ]


def test_a_file_with_a_new_column_is_refused_naming_it(spark, settings, tmp_path):
    first = tmp_path / "a.csv"
    first.write_text("id,amount\n1,10\n")
    _ingest(spark, settings, first)
    second = tmp_path / "b" / "a.csv"
    second.parent.mkdir()
    second.write_text("id,amount,extra\n2,20,x\n")
    with pytest.raises(
        ValueError, match=r"bronze.hostile exists with another schema \(new column extra\)"
    ):
        _ingest(spark, settings, second, run_id="h2")
