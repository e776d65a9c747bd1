"""The benchmark's peers (infra/peers.py) do the project's parsing, exactly.

Plain PySpark (in-process, on the session fixture), DuckDB, Polars and pandas each type a
small generated messy loan file, plus one record of edge cases and one short record, and
must write the values the generator drew (money, percentages, two-digit-year dates,
integers), null tokens as nulls, and the row hash Spark's ``to_json`` gives the raw row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from riskcontrol.core.values import DEFAULT_NULL_TOKENS
from riskcontrol.synthetic.generate import loanfile


def _load_peers():
    path = Path(__file__).resolve().parents[1] / "infra" / "peers.py"
    spec = importlib.util.spec_from_file_location("peers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["peers"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


peers = _load_peers()

ROWS, SEED = 300, 7
SHORT_ID = 2_000_001
SHORT = f'"{SHORT_ID}","5999998","$5.00"\n'  # 3 fields of 28: a malformed record
EDGE = {
    "id": "2000002",
    "member_id": "5999999",
    "loan_amnt": "(1,234.50)",  # accounting negative
    "term": "  36 months ",  # text is kept as received
    "int_rate": " 7.5 %",
    "installment": "1e3",
    "grade": "A",
    "sub_grade": "A1",
    "emp_title": "n/a",  # a null token
    "emp_length": "< 1 year",
    "home_ownership": "RENT",
    "annual_inc": " NA ",  # a null token, with spaces
    "verification_status": "Verified",
    "issue_d": "29-FEB-96",  # upper case; 2096 is more than a year ahead: 1996
    "loan_status": "Fully Paid",
    "purpose": "car",
    "zip_code": "010xx",
    "addr_state": "CA",
    "dti": ".",  # not a number
    "delinq_2yrs": "+3",
    "earliest_cr_line": "jan-1999",
    "inq_last_6mths": "007",
    "open_acc": "1,000",  # not an integer
    "revol_bal": "-42",
    "revol_util": "100%",
    "total_acc": None,
    "policy_code": "1",
    "desc": 'Said "hi" \\ back\tslash,\nnext line',
}


def _csv_field(value: str | None) -> str:
    return "" if value is None else '"' + value.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def loan_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("peers") / "loans.csv"
    loanfile.write_loan_file(path, rows=ROWS, seed=SEED)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(SHORT)
        fh.write(",".join(_csv_field(EDGE[c]) for c in loanfile.COLUMNS) + "\n")
    return path


def _row_hash(row: dict) -> int:
    """Spark's sha2(to_json(struct(raw columns))): nulls left out, compact separators."""
    text = json.dumps(
        {c: v for c, v in row.items() if v is not None}, ensure_ascii=False, separators=(",", ":")
    )
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


def expected() -> dict[str, int]:
    """From the generator's draws (not from any CSV reader) plus the edge record by hand."""
    d = loanfile.draw(SEED, np.arange(ROWS, dtype=np.int64))
    raw = loanfile.render(d, SEED)
    rows = [{c: raw[c][i] for c in loanfile.COLUMNS} for i in range(ROWS)]
    epoch = dt.date(1970, 1, 1)
    good_time, has_amount = ~d["bad_time"], ~d["amount_in_words"]
    return {
        "rows": ROWS + 1,
        "loan_amnt non-null": int(has_amount.sum()) + 1,
        "loan_amnt sum": int(d["amount"][has_amount].sum()) * 10**6 - 1_234_500_000,
        "int_rate sum": int(np.round(d["rate"] * 10**4).sum()) + 75_000,
        "annual_inc non-null": ROWS - int(d["no_income"].sum()),
        "issue_d non-null": int(good_time.sum()) + 1,
        "issue_d sum": int(d["day"][good_time].sum()) + (dt.date(1996, 2, 29) - epoch).days,
        "earliest_cr_line non-null": ROWS + 1,
        "revol_bal sum": int(d["revol_bal"].sum()) - 42,
        "open_acc non-null": ROWS,
        "emp_title non-null": ROWS - int(d["no_title"].sum()),
        "row hash checksum": sum(_row_hash(r) for r in [*rows, EDGE]),
    }


def _checks(out: Path) -> dict[str, int]:
    return peers.fingerprint(peers.parquet_files(out), frozenset({SHORT_ID}))


@pytest.fixture(scope="module")
def non_spark(loan_csv, tmp_path_factory) -> dict[str, tuple[int, dict[str, int]]]:
    """Rows written and checks of each non-Spark peer."""
    import pyarrow.parquet as pq

    out = {}
    for name, peer in peers.NON_SPARK_PEERS.items():
        target = tmp_path_factory.mktemp(name) / "out.parquet"
        peer(loan_csv, target)
        out[name] = (pq.ParquetFile(target).metadata.num_rows, _checks(target))
    return out


def test_peers_parse_as_the_project_declares():
    assert peers.COLUMNS == loanfile.COLUMNS
    assert tuple(sorted({t.strip().lower() for t in DEFAULT_NULL_TOKENS})) == peers.TOKENS
    assert peers.pivot_limit(dt.date(2024, 2, 29)) == dt.date(2025, 2, 28)


@pytest.fixture(scope="module")
def spark_out(spark, loan_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pyspark") / "out.parquet"
    peers.plain_spark(spark, loan_csv, out)
    return out


def test_plain_pyspark_writes_the_generated_values(spark, spark_out):
    out = spark_out
    checks = _checks(out)
    want = expected()
    assert {k: checks[k] for k in want} == want
    edge = spark.read.parquet(str(out)).where("id = 2000002").first().asDict()
    assert edge == {
        **{c: None for c in ("emp_title", "annual_inc", "dti", "open_acc", "total_acc")},
        "id": 2000002,
        "member_id": 5999999,
        "loan_amnt": -1234.5,
        "term": "  36 months ",
        "int_rate": 0.075,
        "installment": 1000.0,
        "grade": "A",
        "sub_grade": "A1",
        "emp_length": "< 1 year",
        "home_ownership": "RENT",
        "verification_status": "Verified",
        "issue_d": dt.date(1996, 2, 29),
        "loan_status": "Fully Paid",
        "purpose": "car",
        "zip_code": "010xx",
        "addr_state": "CA",
        "delinq_2yrs": 3,
        "earliest_cr_line": dt.date(1999, 1, 1),
        "inq_last_6mths": 7,
        "revol_bal": -42,
        "revol_util": 1.0,
        "policy_code": 1,
        "desc": EDGE["desc"],
        peers.HASH: edge[peers.HASH],
    }
    assert spark.read.parquet(str(out)).count() == ROWS + 1  # the short record dropped


@pytest.mark.parametrize("engine", sorted(peers.NON_SPARK_PEERS))
def test_non_spark_peer_writes_the_generated_values(engine, non_spark):
    written, checks = non_spark[engine]
    want = expected()
    assert {k: checks[k] for k in want} == want
    kept = peers.SHORT_RECORDS[engine].startswith("kept")
    assert written == ROWS + 1 + kept


def test_every_check_agrees_with_plain_pyspark(spark_out, non_spark):
    base = _checks(spark_out)
    assert len(base) == 2 + 2 * 16 + 12  # rows, hash; count and sum of typed; text counts
    for engine, (_, checks) in non_spark.items():
        assert checks == base, engine
