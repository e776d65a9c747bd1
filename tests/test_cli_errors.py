"""Errors reach the user as one line that says what to do, with no secret in it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from py4j.protocol import Py4JError
from pyspark.errors import AnalysisException

from riskcontrol.cli import errors
from riskcontrol.cli.main import _fail
from riskcontrol.core.config import Settings


def test_a_spark_analysis_error_is_one_line_with_its_condition(spark):
    with pytest.raises(AnalysisException) as caught:
        spark.range(1).select("nope")
    line = errors.explain(caught.value)
    assert "\n" not in line
    assert line.startswith("Spark: A column, variable, or function parameter with name `nope`")
    assert line.endswith("[UNRESOLVED_COLUMN.WITH_SUGGESTION]")


def test_a_value_spark_quotes_in_an_error_is_masked(spark):
    """ANSI casts fail naming the value; a value can be an ID number or a name."""
    with pytest.raises(Exception) as caught:
        spark.sql("SELECT CAST('32050619881009447X' AS INT) AS v").collect()
    line = errors.explain(caught.value)
    assert "32050619881009447" not in line
    assert line.startswith("Spark: The value '<value>' of the type \"STRING\" cannot be cast")
    assert line.endswith("[CAST_INVALID_INPUT]")
    java = Py4JError('java.lang.NumberFormatException: For input string: "张三 13812345678"')
    assert errors.explain(java) == (
        'Spark: java.lang.NumberFormatException: For input string: "<value>"'
    )
    assert errors.mask_values('id 13812345678 in "DECIMAL(10,2)", "spark.sql.x"') == (
        'id <value> in "DECIMAL(10,2)", "spark.sql.x"'
    )


def test_jvm_failures_say_what_to_do():
    settings = Settings(home="/data/risk", spark_driver_memory="3g")
    oom = Py4JError(
        "An error occurred while calling o12.save: java.lang.OutOfMemoryError: Java heap space"
    )
    assert errors.explain(oom, settings) == (
        "Spark ran out of memory: raise RISK_SPARK_DRIVER_MEMORY (now 3g), or split the input "
        "into smaller files"
    )
    gone = Py4JError("Answer from Java side is empty")
    assert errors.explain(gone, settings).startswith(
        "the Spark JVM stopped (killed, or out of memory)"
    )
    full = OSError(28, "No space left on device")
    assert errors.explain(full, settings) == (
        "the disk is full: free space under RISK_HOME (/data/risk) or point RISK_HOME elsewhere"
    )
    assert errors.explain(KeyError("k")) is None


def test_fail_prints_one_redacted_line_and_keeps_the_traceback_of_a_bug(capsys):
    error = RuntimeError("cannot reach jdbc:postgresql://risk:s3cret@db:5432/lending")
    assert _fail("collect", error) == 2
    assert capsys.readouterr().err == (
        "riskctl collect: error: cannot reach jdbc:postgresql://***@db:5432/lending\n"
    )
    with pytest.raises(KeyError):  # a bug: its traceback is what a report needs
        _fail("collect", KeyError("k"))


def test_the_cli_refuses_a_damaged_parquet_file_in_one_line(tmp_path):
    bad = tmp_path / "loans.parquet"
    bad.write_bytes(b"PAR1" + b"garbage" * 3 + b"PAR1")
    env = dict(os.environ, RISK_HOME=str(tmp_path / "home"), RISK_ENV="test")
    env.pop("RISK_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-m", "riskcontrol.cli.main", "ingest-file", str(bad), "--table", "t"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"riskctl ingest-file: error: {bad} is not a readable Parquet file")
    assert "Traceback" not in done.stderr


def test_evaluate_dataset_refuses_a_maturity_window_without_a_date_before_any_work(tmp_path):
    env = dict(os.environ, RISK_HOME=str(tmp_path / "home"), RISK_ENV="test")
    env.pop("RISK_DEBUG", None)
    argv = ["evaluate-dataset", "loans.csv", "--target", "loan_status", "--bad", "Charged Off"]
    done = subprocess.run(
        [sys.executable, "-m", "riskcontrol.cli.main", *argv, "--outcome-months", "6"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "riskctl evaluate-dataset: error: --outcome-months needs --time-col: the date the "
        "outcome runs from"
    )
    assert not (tmp_path / "home" / "lakehouse").exists()  # refused before landing anything
