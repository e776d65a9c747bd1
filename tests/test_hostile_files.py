"""Hostile files for `riskctl ingest-file`: each lands, rescues, quarantines with a reason,
or is refused with a clear error; never a traceback, a silent loss or a changed value."""

from __future__ import annotations

import gzip
import json

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
