"""Peers in the benchmark: ``ingest-file`` next to plain PySpark, DuckDB, Polars and pandas.

    python infra/benchmark.py --peers 1000000 [--home DIR] [--seed S]

One representative file, the generated messy loan CSV (``write_loan_file``, seed fixed),
is written once; then each engine runs in a process of its own, one after the other, and
is timed from its start to its exit (interpreter, imports and Spark start included):

* ``project``: ``riskctl ingest-file CSV --table peers_loans`` on a fresh ``RISK_HOME``,
  as a user runs it (inference, PII detection, count verification, quarantine, Delta
  MERGE, manifest);
* ``pyspark``: plain PySpark with the project's session settings (``get_spark``), no
  Delta: the CSV read as the project reads it (RFC 4180, ``multiLine``, spread over the
  cores when large), every column typed by ``riskcontrol.core.values.typed_value`` as
  ``ingest-file`` types this file (``TYPES``), the row's ``content_hash``, plain Parquet;
* ``duckdb``, ``polars``, ``pandas``: the same parsing written in each engine's own way
  (SQL; expressions; ``.str`` methods), the same row hash (SHA-256 of the raw row as
  Spark's ``to_json`` renders it), Parquet (snappy, as Spark writes it).

Records that do not split into the header's fields (planted ``malformed_row``) are
quarantined by the project and dropped by PySpark (``_corrupt_record``) and DuckDB
(``ignore_errors``); Polars and pandas pad them with nulls and keep them. The
correctness lines read every engine's output back with pyarrow (the project's from its
Delta log) and compare, without those records, the rows, each column's non-null count
and exact sum, and a checksum of the row hashes with plain PySpark's: a peer that does
different work makes its ratio meaningless.
Peak RSS is the sum of each process's peak (VmHWM) over the engine's process tree (the
Spark JVM included), read every 0.2 s, or the peer's own peak at its exit if larger.

DuckDB and Polars are benchmark extras (``pip install -e '.[bench]'``, ``make bench``),
not runtime dependencies.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

SEED = 7
TABLE = "peers_loans"
HASH = "_content_hash"
ENGINES = ("project", "pyspark", "duckdb", "polars", "pandas")
SHORT_RECORDS = {
    "project": "quarantined",
    "pyspark": "dropped",
    "duckdb": "dropped",
    "polars": "kept, padded with nulls",
    "pandas": "kept, padded with nulls",
}

# The types `riskctl ingest-file` infers for the generated loan file (checked against the
# project's bronze schema after each run): (type, date format).
TYPES: dict[str, tuple[str, str | None]] = {
    "id": ("integer", None),
    "member_id": ("integer", None),
    "loan_amnt": ("money", None),
    "term": ("string", None),
    "int_rate": ("percent", None),
    "installment": ("double", None),
    "grade": ("string", None),
    "sub_grade": ("string", None),
    "emp_title": ("string", None),
    "emp_length": ("string", None),
    "home_ownership": ("string", None),
    "annual_inc": ("double", None),
    "verification_status": ("string", None),
    "issue_d": ("date", "d-MMM-yy"),
    "loan_status": ("string", None),
    "purpose": ("string", None),
    "zip_code": ("string", None),
    "addr_state": ("string", None),
    "dti": ("double", None),
    "delinq_2yrs": ("integer", None),
    "earliest_cr_line": ("date", "MMM-yyyy"),
    "inq_last_6mths": ("integer", None),
    "open_acc": ("integer", None),
    "revol_bal": ("integer", None),
    "revol_util": ("percent", None),
    "total_acc": ("integer", None),
    "policy_code": ("integer", None),
    "desc": ("string", None),
}
COLUMNS = tuple(TYPES)  # the generator's (loanfile.COLUMNS), checked by run_peers
_SPARK_TYPES = {"integer": "long", "double": "double", "money": "double", "percent": "double"}
_SPARK_TYPES |= {"date": "date", "string": "string"}

# The project's parsers (riskcontrol.core.values) as portable regular expressions: [0-9]
# for Java's ASCII \d, Java's \s spelled out (Python's and Rust's \s are Unicode). The
# children import nothing of the project (it would load PySpark into the non-Spark peers):
# the null tokens are values.DEFAULT_NULL_TOKENS trimmed and lowercased (tests check it).
TOKENS = ("", "#n/a", "n/a", "na", "nan", "none", "null")
JAVA_SPACE = " \t\n\x0b\f\r"
INTEGER = r"[+-]?[0-9]{1,18}"
DOUBLE = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
MONEY_BLANKS = f"[{JAVA_SPACE}\u00a0\u3000]"
CURRENCY = r"(?i)(US\$|RMB|CNY|USD|EUR|GBP|HKD|JPY|人民币|元|[¥￥$€£])"
MONEY = r"[+-]?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?|[+-]?\.[0-9]+"
PERCENT = rf"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))[{JAVA_SPACE}]*%$"
DAY_MON_YY = r"^([0-9]{1,2})-([A-Za-z]{3})-([0-9]{2})$"
MON_YYYY = r"^([A-Za-z]{3})-([0-9]{4})$"
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES)}
# Spark's to_json escapes these in a string (Jackson); no other character of this file needs it.
JSON_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
JSON_ESCAPES |= {"\b": "\\b", "\f": "\\f"}


def pivot_limit(today: dt.date | None = None) -> dt.date:
    """``add_months(current_date, 12)``: a two-digit year's date after it is a century
    earlier (``riskcontrol.core.values.pivot_century``)."""
    today = today or dt.datetime.now(dt.UTC).date()
    try:
        return today.replace(year=today.year + 1)
    except ValueError:  # 29 February
        return today.replace(year=today.year + 1, day=28)


def _columns_of(kind: str) -> list[str]:
    return [c for c, (t, _) in TYPES.items() if t == kind]


# --- the peers -------------------------------------------------------------------------


def plain_spark(spark, csv: Path, out: Path) -> None:
    """Plain PySpark: read as ``ingest-file`` reads the file, type every column with the
    project's parsers, hash each row, write plain Parquet (no Delta, no inference, no
    quarantine, no manifest). Short records (``_corrupt_record``) are dropped."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from riskcontrol.core.landing import content_hash
    from riskcontrol.core.values import ColumnType, typed_value
    from riskcontrol.lenderfile.land import SPREAD_BYTES

    schema = T.StructType(
        [T.StructField(c, T.StringType()) for c in COLUMNS]
        + [T.StructField("_corrupt_record", T.StringType())]
    )
    df = (
        spark.read.format("csv")
        .schema(schema)
        .option("header", True)
        .option("enforceSchema", True)
        .option("multiLine", True)
        .option("quote", '"')
        .option("escape", '"')
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .load(str(csv))
    )
    cores = spark.sparkContext.defaultParallelism
    if csv.stat().st_size > SPREAD_BYTES and cores > 1:  # the project's rule (read_source)
        df = df.repartition(cores)
    typed = [
        typed_value(F.col(f"`{c}`"), ColumnType(t, (f,) if f else ())).alias(c)
        for c, (t, f) in TYPES.items()
    ]
    (
        df.where(F.col("_corrupt_record").isNull())
        .select(*typed, content_hash(list(COLUMNS)).alias(HASH))
        .write.mode("overwrite")
        .parquet(str(out))
    )


def _sql_text(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def duckdb_peer(csv: Path, out: Path) -> None:
    """DuckDB: one ``COPY (SELECT ...) TO`` over ``read_csv``; short records skipped."""
    import duckdb

    tokens = ", ".join(_sql_text(t) for t in TOKENS)

    def v(c: str) -> str:
        return f'"v_{c}"'

    cleaned = []
    for c, (t, _) in TYPES.items():
        if t != "string":
            cleaned.append(
                f'CASE WHEN lower(trim("{c}")) NOT IN ({tokens}) THEN trim("{c}") END AS {v(c)}'
            )
    money = []
    parens, unwrap = _sql_text(r"\(.*\)"), _sql_text(r"^\((.*)\)$")
    for c in _columns_of("money"):
        s = f"regexp_replace({v(c)}, {_sql_text(MONEY_BLANKS)}, '', 'g')"
        unwrapped = f"regexp_replace({s}, {unwrap}, '\\1')"
        money += [
            f'regexp_full_match({s}, {parens}) AS "neg_{c}"',
            f"regexp_replace({unwrapped}, {_sql_text(CURRENCY)}, '', 'g') AS \"m_{c}\"",
        ]
    limit = pivot_limit().isoformat()
    typed = []
    for c, (t, f) in TYPES.items():
        x = v(c)
        if t == "string":
            expr = f'CASE WHEN lower(trim("{c}")) NOT IN ({tokens}) THEN "{c}" END'
        elif t == "integer":
            expr = f"CASE WHEN regexp_full_match({x}, '{INTEGER}') THEN TRY_CAST({x} AS BIGINT) END"
        elif t == "double":
            expr = f"CASE WHEN regexp_full_match({x}, '{DOUBLE}') THEN TRY_CAST({x} AS DOUBLE) END"
        elif t == "money":
            m = f'"m_{c}"'
            num = f"TRY_CAST(replace({m}, ',', '') AS DOUBLE)"
            expr = (
                f"CASE WHEN regexp_full_match({m}, {_sql_text(MONEY)}) THEN "
                f'CASE WHEN "neg_{c}" THEN -{num} ELSE {num} END END'
            )
        elif t == "percent":
            digits = f"regexp_extract({x}, {_sql_text(PERCENT)}, 1)"
            expr = f"CASE WHEN {digits} <> '' THEN TRY_CAST({digits} || 'e-2' AS DOUBLE) END"
        elif f == "d-MMM-yy":
            iso = f"regexp_replace({x}, '{DAY_MON_YY}', '\\1-\\2-20\\3')"
            d = f"CAST(try_strptime({iso}, '%d-%b-%Y') AS DATE)"
            expr = (
                f"CASE WHEN regexp_matches({x}, '{DAY_MON_YY}') THEN CASE WHEN {d} > "
                f"DATE '{limit}' THEN CAST({d} - INTERVAL 100 YEAR AS DATE) ELSE {d} END END"
            )
        elif f == "MMM-yyyy":
            expr = (
                f"CASE WHEN regexp_matches({x}, '{MON_YYYY}') THEN "
                f"CAST(try_strptime({x}, '%b-%Y') AS DATE) END"
            )
        else:
            raise ValueError(f"{c}: no DuckDB parser for {t} {f}")
        typed.append(f'{expr} AS "{c}"')
    escaped = {}
    for c in COLUMNS:
        e = f'"{c}"'
        for ch, rep in JSON_ESCAPES.items():
            e = f"replace({e}, chr({ord(ch)}), {_sql_text(rep)})"
        escaped[c] = e
    members = ", ".join(
        f'CASE WHEN "{c}" IS NOT NULL THEN \'"{c}":"\' || {escaped[c]} || \'"\' END'
        for c in COLUMNS
    )
    row_hash = f"sha256('{{' || concat_ws(',', {members}) || '}}') AS \"{HASH}\""
    reader = (
        f"read_csv({_sql_text(str(csv))}, header = true, delim = ',', quote = '\"', "
        "escape = '\"', all_varchar = true, ignore_errors = true)"
    )
    sql = (
        f"COPY (WITH raw AS (SELECT * FROM {reader}), "
        f"cleaned AS (SELECT *, {', '.join(cleaned)} FROM raw), "
        f"staged AS (SELECT *, {', '.join(money)} FROM cleaned) "
        f"SELECT {', '.join(typed)}, {row_hash} FROM staged) "
        f"TO {_sql_text(str(out))} (FORMAT parquet, COMPRESSION snappy)"
    )
    with duckdb.connect() as con:
        con.execute(sql)


def polars_peer(csv: Path, out: Path) -> None:
    """Polars: a lazy scan, one ``select`` of expressions, row hashes by ``hashlib`` (Polars
    has no SHA-256 expression); a short record is kept, padded with nulls."""
    import polars as pl

    limit = pivot_limit()
    months = {k: f"{n:02d}" for k, n in MONTHS.items()}

    def raw(c: str) -> pl.Expr:
        return pl.col(c)

    def token(c: str) -> pl.Expr:
        return raw(c).str.strip_chars(" ").str.to_lowercase().is_in(TOKENS)

    def v(c: str) -> pl.Expr:
        return pl.when(~token(c)).then(raw(c).str.strip_chars(" "))

    def typed(c: str, t: str, f: str | None) -> pl.Expr:
        x = v(c)
        if t == "string":
            return pl.when(~token(c)).then(raw(c))
        if t == "integer":
            return pl.when(x.str.contains(f"^{INTEGER}$")).then(x.cast(pl.Int64, strict=False))
        if t == "double":
            return pl.when(x.str.contains(f"^{DOUBLE}$")).then(x.cast(pl.Float64, strict=False))
        if t == "money":
            s = x.str.replace_all(MONEY_BLANKS, "")
            negative = s.str.contains(r"^\(.*\)$")
            s = s.str.replace(r"^\((.*)\)$", "$1").str.replace_all(CURRENCY, "")
            number = s.str.replace_all(",", "", literal=True).cast(pl.Float64, strict=False)
            signed = pl.when(negative).then(-number).otherwise(number)
            return pl.when(s.str.contains(f"^(?:{MONEY})$")).then(signed)
        if t == "percent":
            digits = x.str.extract(PERCENT, 1)
            return (digits + "e-2").cast(pl.Float64, strict=False)
        if f == "d-MMM-yy":
            parts = x.str.extract_groups(DAY_MON_YY)
            month = parts.struct[1].str.to_lowercase().replace_strict(months, default=None)
            iso = pl.concat_str(
                [pl.lit("20"), parts.struct[2], pl.lit("-"), month, pl.lit("-"), parts.struct[0]]
            )
            d = iso.str.to_date("%Y-%m-%d", strict=False)
            return pl.when(d > limit).then(d.dt.offset_by("-100y")).otherwise(d)
        if f == "MMM-yyyy":
            parts = x.str.extract_groups(MON_YYYY)
            month = parts.struct[0].str.to_lowercase().replace_strict(months, default=None)
            iso = pl.concat_str([parts.struct[1], pl.lit("-"), month, pl.lit("-01")])
            return iso.str.to_date("%Y-%m-%d", strict=False)
        raise ValueError(f"{c}: no Polars parser for {t} {f}")

    patterns, replacements = list(JSON_ESCAPES), list(JSON_ESCAPES.values())
    members = [
        pl.when(raw(c).is_not_null()).then(
            pl.lit(f'"{c}":"') + raw(c).str.replace_many(patterns, replacements) + pl.lit('"')
        )
        for c in COLUMNS
    ]
    as_json = pl.lit("{") + pl.concat_str(members, separator=",", ignore_nulls=True) + pl.lit("}")
    frame = (
        pl.scan_csv(csv, infer_schema=False, quote_char='"')
        .select(*[typed(c, t, f).alias(c) for c, (t, f) in TYPES.items()], as_json.alias(HASH))
        .collect()
    )
    hashes = [hashlib.sha256(j.encode()).hexdigest() for j in frame[HASH].to_list()]
    frame.with_columns(pl.Series(HASH, hashes, dtype=pl.String)).write_parquet(
        out, compression="snappy"
    )


def pandas_peer(csv: Path, out: Path) -> None:
    """pandas: ``read_csv`` (every field as text; a short record padded with nulls, kept),
    ``.str`` methods per column, ``hashlib`` per row, ``to_parquet``."""
    import pandas as pd

    # The C engine: the pyarrow engine infers types first and casts back to text after
    # ("24.60" becomes "24.6", a null "None"), so it does not read the file as received.
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""])
    limit = pd.Timestamp(pivot_limit())
    table = str.maketrans(JSON_ESCAPES)
    typed = {}
    for c, (t, f) in TYPES.items():
        raw = frame[c]
        stripped = raw.str.strip(" ")
        token = stripped.str.lower().isin(TOKENS) | raw.isna()
        x = stripped.where(~token)
        if t == "string":
            typed[c] = raw.where(~token)
        elif t == "integer":
            typed[c] = x.where(x.str.fullmatch(INTEGER, na=False)).astype("Int64")
        elif t == "double":
            typed[c] = x.where(x.str.fullmatch(DOUBLE, na=False)).astype("float64")
        elif t == "money":
            s = x.str.replace(MONEY_BLANKS, "", regex=True)
            negative = s.str.fullmatch(r"\(.*\)", na=False)
            s = s.str.replace(r"^\((.*)\)$", r"\1", regex=True)
            s = s.str.replace(CURRENCY, "", regex=True)
            ok = s.str.fullmatch(MONEY, na=False)
            number = s.where(ok).str.replace(",", "", regex=False).astype("float64")
            typed[c] = number.where(~negative, -number)
        elif t == "percent":
            digits = x.str.extract(PERCENT, expand=False)
            typed[c] = (digits + "e-2").astype("float64")
        elif f == "d-MMM-yy":
            iso = x.where(x.str.match(DAY_MON_YY, na=False)).str.replace(
                DAY_MON_YY, r"\1-\2-20\3", regex=True
            )
            d = pd.to_datetime(iso, format="%d-%b-%Y", errors="coerce")
            d = d.where(~(d > limit), d - pd.DateOffset(years=100))
            typed[c] = d.astype("date32[pyarrow]")
        elif f == "MMM-yyyy":
            month = x.where(x.str.match(MON_YYYY, na=False))
            d = pd.to_datetime(month, format="%b-%Y", errors="coerce")
            typed[c] = d.astype("date32[pyarrow]")
        else:
            raise ValueError(f"{c}: no pandas parser for {t} {f}")
    members = None
    for c in COLUMNS:
        raw = frame[c]
        part = (f'"{c}":"' + raw.str.translate(table) + '",').fillna("")
        members = part if members is None else members + part
    as_json = "{" + members.str[:-1] + "}"
    typed[HASH] = [hashlib.sha256(j.encode()).hexdigest() for j in as_json]
    pd.DataFrame(typed).to_parquet(out, engine="pyarrow", compression="snappy", index=False)


NON_SPARK_PEERS: dict[str, Callable[[Path, Path], None]] = {
    "duckdb": duckdb_peer,
    "polars": polars_peer,
    "pandas": pandas_peer,
}


# --- what each engine wrote ------------------------------------------------------------


def delta_files(table_dir: Path) -> list[Path]:
    """The data files of a Delta table's current version (its JSON log replayed)."""
    live: dict[str, None] = {}
    for log in sorted((table_dir / "_delta_log").glob("*.json")):
        for line in log.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                if action["add"].get("deletionVector"):
                    raise ValueError(f"{table_dir}: deletion vectors are not read here")
                live[unquote(action["add"]["path"])] = None
            elif "remove" in action:
                live.pop(unquote(action["remove"]["path"]), None)
    return [table_dir / p for p in live]


def delta_schema(table_dir: Path) -> dict[str, str]:
    """Column -> Spark type name, from the table's latest metadata in its log."""
    schema = None
    for log in sorted((table_dir / "_delta_log").glob("*.json")):
        for line in log.read_text().splitlines():
            action = json.loads(line)
            if "metaData" in action:
                schema = json.loads(action["metaData"]["schemaString"])
    fields = schema["fields"] if schema else []
    return {f["name"]: f["type"] if isinstance(f["type"], str) else "complex" for f in fields}


def manifest_row(lakehouse: Path, target: str) -> dict:
    """The (last) ``ops.manifest`` row written for ``target``, read without Spark."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = delta_files(lakehouse / "ops" / "manifest")
    rows = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    mine = [r for r in rows.to_pylist() if r["target"] == target]
    if not mine:
        raise ValueError(f"no manifest row for {target} in {lakehouse}")
    return max(mine, key=lambda r: r["finished_at"])


def parquet_files(out: Path) -> list[Path]:
    return sorted(out.rglob("*.parquet")) if out.is_dir() else [out]


def fingerprint(files: list[Path], skip_ids: frozenset[int] = frozenset()) -> dict[str, int]:
    """Exact, order-independent checks of what was written: rows, and per typed column
    its non-null values and their sum (doubles in millionths, dates in days), per text
    column its non-null values, and the sum of the row hashes' first 60 bits. Rows whose
    id is in ``skip_ids`` (records the engines treat differently) are left out."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pa.concat_tables(
        [pq.read_table(f, columns=[*COLUMNS, HASH]) for f in files], promote_options="permissive"
    )
    if skip_ids:
        keep = pc.invert(pc.is_in(table["id"], pa.array(sorted(skip_ids), pa.int64())))
        table = table.filter(pc.fill_null(keep, True))
    out = {"rows": table.num_rows}
    for c, (t, _) in TYPES.items():
        col = table[c]
        out[f"{c} non-null"] = len(col) - col.null_count
        if t == "integer":
            values = col.cast(pa.int64())
        elif t == "date":
            values = col.cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
        elif t != "string":
            values = pc.round(pc.multiply(col.cast(pa.float64()), 1e6)).cast(pa.int64())
        else:
            continue
        out[f"{c} sum"] = pc.sum(values).as_py() or 0
    out["row hash checksum"] = sum(int(h[:15], 16) for h in table[HASH].to_pylist() if h)
    return out


# --- timing one engine in a process of its own -----------------------------------------


@dataclass
class Timing:
    engine: str
    seconds: float
    peak_rss_mb: float
    exit_code: int
    log: Path
    started: float = 0.0  # wall clock (time.time())
    checks: dict[str, int] = field(default_factory=dict)
    rows_written: int = 0
    note: str = ""


def _process_tree() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    return children


def _tree_peak_kb(root: int, seen: set[int]) -> int:
    """The sum of each process's peak RSS (VmHWM, kB) over ``root`` and its descendants
    (the Spark JVM included); adds their pids to ``seen``. Not ``wait4``'s ``ru_maxrss``:
    a child's starts at its parent's RSS (Linux keeps the pre-exec peak)."""
    children = _process_tree()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        seen.add(pid)
        todo += children.get(pid, [])
        with contextlib.suppress(OSError):  # gone meanwhile
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total


def run_timed(engine: str, cmd: list[str], env: dict[str, str], log: Path) -> Timing:
    """Run ``cmd`` to its end; wall seconds and the peak RSS of its process tree."""
    peak = [0]
    seen: set[int] = set()
    stop = threading.Event()
    with open(log, "wb") as out:
        started, t0 = time.time(), time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)

        def sample() -> None:
            while not stop.wait(0.2):
                peak[0] = max(peak[0], _tree_peak_kb(proc.pid, seen))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, _ = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        stop.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    # A Spark JVM outlives its Python parent by a moment: let it go before the next engine.
    deadline = time.time() + 60
    for pid in seen - {proc.pid}:
        while Path(f"/proc/{pid}").exists() and time.time() < deadline:
            time.sleep(0.1)
    # A peer reports its own peak as it exits (after the last sample).
    reported = re.findall(r"^peak RSS kB: (\d+)$", log.read_text(errors="replace"), re.M)
    rss_mb = max([peak[0], *map(int, reported)]) / 1024
    return Timing(engine, seconds, rss_mb, proc.returncode, log, started)


def phases(timing: Timing) -> list[tuple[str, float]]:
    """``ingest-file``'s progress lines (``[HH:MM:SS] message``) as (message, seconds to
    the next one or to the exit); the first is the interpreter's start and imports."""
    marks = [("python start, imports", timing.started)]
    day = dt.datetime.fromtimestamp(timing.started).date()
    for line in timing.log.read_text(errors="replace").splitlines():
        m = re.match(r"^\[(\d\d):(\d\d):(\d\d)\] (\S.*)", line)
        if m:
            h, mi, sec = (int(x) for x in m.groups()[:3])
            at = dt.datetime.combine(day, dt.time(h, mi, sec)).timestamp()
            marks.append((m.group(4)[:70], max(at, marks[-1][1])))
    end = timing.started + timing.seconds
    return [
        (name, (marks[i + 1][1] if i + 1 < len(marks) else end) - at)
        for i, (name, at) in enumerate(marks)
    ]


def _child_cmd(engine: str, csv: Path, out: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", engine, str(csv), str(out)]


def _riskctl() -> list[str]:
    found = Path(sys.executable).with_name("riskctl")
    if found.exists():
        return [str(found)]
    return [shutil.which("riskctl") or "riskctl"]


# --- the run ---------------------------------------------------------------------------


def write_file(home: Path, rows: int, seed: int, say: Callable[[str], None]) -> tuple[Path, dict]:
    """The messy loan CSV of ``rows`` rows (written once per home, rows and seed)."""
    csv = home / f"loans_{rows}_{seed}.csv"
    truth_file = csv.with_suffix(".truth.json")
    if csv.exists() and truth_file.exists():
        say(f"file: {csv} (already written)")
        return csv, json.loads(truth_file.read_text())
    from riskcontrol.synthetic.generate import loanfile

    truth = loanfile.write_loan_file(csv, rows=rows, seed=seed)
    truth_file.write_text(json.dumps(truth, indent=2))
    say(
        f"file: {csv}, {rows:,} rows, {csv.stat().st_size / 2**20:,.0f} MB, written in "
        f"{truth['seconds']:.1f}s; planted {truth['quarantined_by_rule']}"
    )
    return csv, truth


def short_record_ids(rows: int) -> frozenset[int]:
    """The ids of the records the generator writes short (``malformed_row``)."""
    import numpy as np

    from riskcontrol.synthetic.generate import loanfile

    keys = np.arange(rows, dtype=np.int64)
    return frozenset((1_000_000 + keys[loanfile.malformed(keys)]).tolist())


def run_peers(
    home: Path,
    rows: int = 1_000_000,
    seed: int = SEED,
    engines: tuple[str, ...] = ENGINES,
    say: Callable[[str], None] = lambda m: print(m, flush=True),
) -> int:
    """Write the file once, time each engine on it, print the table and the checks.
    Returns 1 when an engine failed or disagrees with plain PySpark, else 0."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    csv, truth = write_file(home, rows, seed, say)
    from riskcontrol.synthetic.generate import loanfile

    if COLUMNS != loanfile.COLUMNS:
        raise ValueError("the generator's columns changed: update infra/peers.py's TYPES")
    short = short_record_ids(rows)
    env = {
        **os.environ,
        "RISK_PII_KEY": os.environ.get("RISK_PII_KEY", "benchmark-only-key"),
        "RISK_BRONZE_KEY": os.environ.get("RISK_BRONZE_KEY", "42" * 32),
    }
    timings: dict[str, Timing] = {}
    for engine in engines:
        work = home / f"peers-{engine}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        log = home / f"peers-{engine}.log"
        out = work / ("lakehouse" if engine == "project" else "out.parquet")
        if engine == "project":
            cmd = [*_riskctl(), "ingest-file", str(csv), "--table", TABLE]
        else:
            cmd = _child_cmd(engine, csv, out)
        say(f"{engine}: running ({log})")
        timing = run_timed(engine, cmd, {**env, "RISK_HOME": str(work)}, log)
        timings[engine] = timing
        if timing.exit_code:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            say(f"{engine}: FAILED (exit {timing.exit_code}); the end of {log}:\n{tail}")
            continue
        if engine == "project":
            bronze = out / "bronze" / TABLE
            files = delta_files(bronze)
            manifest = manifest_row(out, f"bronze.{TABLE}")
            timing.rows_written = manifest["rows_out"]
            timing.note = (
                f"manifest: read {manifest['rows_in']:,} = landed {manifest['rows_out']:,} + "
                f"quarantined {manifest['rows_quarantined']:,}"
            )
            stored = delta_schema(bronze)
            wrong = {
                c: stored.get(c) for c, (t, _) in TYPES.items() if stored.get(c) != _SPARK_TYPES[t]
            }
            if wrong:
                timing.note += f"; TYPES DIFFER from the peers' {wrong}"
        else:
            files = parquet_files(out)
        timing.checks = fingerprint(files, short)
        if engine != "project":
            import pyarrow.parquet as pq

            timing.rows_written = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        say(f"{engine}: {timing.seconds:.1f}s, peak RSS {timing.peak_rss_mb:,.0f} MB")
    return report(timings, rows, truth, say)


def report(timings: dict[str, Timing], rows: int, truth: dict, say: Callable[[str], None]) -> int:
    """The table of seconds and ratios, then one correctness line per engine."""
    project = timings.get("project")
    base = timings.get("pyspark")

    def ok(t: Timing | None) -> bool:
        return t is not None and t.exit_code == 0

    say(f"\npeers on the messy loan file: {rows:,} rows, {truth['quarantined']:,} planted bad")
    say(
        f"{'engine':10} {'seconds':>9} {'project/this':>13} {'peak RSS MB':>12} "
        f"{'rows written':>13}"
    )
    for t in timings.values():
        ratio = f"{project.seconds / t.seconds:.2f}x" if ok(project) and ok(t) else "-"
        written = f"{t.rows_written:,}" if ok(t) else "failed"
        say(f"{t.engine:10} {t.seconds:9.1f} {ratio:>13} {t.peak_rss_mb:12,.0f} {written:>13}")
    if ok(project) and ok(base):
        ratio = project.seconds / base.seconds
        verdict = "within" if ratio <= 1.3 else "NOT within"
        say(
            f"ingest-file / plain PySpark: {ratio:.2f}x ({verdict} the 1.3x target; "
            f"{project.seconds:.1f}s vs {base.seconds:.1f}s, Spark start included in both)"
        )
    if ok(project):
        say(
            "\nwhere ingest-file's time goes: its progress lines, each with the seconds to the next"
        )
        for name, secs in phases(project):
            say(f"  {secs:7.0f}s  {name}")
    say(
        "\ncorrectness (output read back with pyarrow; records written short by the "
        "generator left out, see 'short records'):"
    )
    failed = any(not ok(t) for t in timings.values())
    for t in timings.values():
        if not ok(t):
            say(f"  {t.engine:10} failed: see {t.log}")
            continue
        c = t.checks
        line = (
            f"  {t.engine:10} rows checked {c['rows']:,}, "
            f"loan_amnt sum {c['loan_amnt sum'] / 1e6:,.2f}, "
            f"issue_d non-null {c['issue_d non-null']:,}, "
            f"row hash checksum {c['row hash checksum']:x}; "
            f"short records {SHORT_RECORDS[t.engine]}"
        )
        if ok(base) and t is not base:
            differ = [k for k in c if c[k] != base.checks.get(k)]
            if differ:
                failed = True
                line += f"\n  {'':10} DISAGREES with plain PySpark on: {', '.join(differ)}"
            else:
                line += "; agrees with plain PySpark"
        if t.note:
            line += f"\n  {'':10} {t.note}"
        say(line)
    return 1 if failed else 0


def child(engine: str, csv: Path, out: Path) -> int:
    """One engine's work, in the process ``run_peers`` times."""
    if engine == "pyspark":
        from riskcontrol.core.config import get_settings
        from riskcontrol.core.spark import get_spark

        spark = get_spark(get_settings())
        plain_spark(spark, csv, out)
        spark.stop()
    else:
        NON_SPARK_PEERS[engine](csv, out)
    status = Path("/proc/self/status").read_text().splitlines()
    print(f"peak RSS kB: {next(int(x.split()[1]) for x in status if x.startswith('VmHWM:'))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "CSV", "OUT"), required=True)
    args = parser.parse_args(argv)
    engine, csv, out = args.child
    return child(engine, Path(csv), Path(out))


if __name__ == "__main__":
    sys.exit(main())
