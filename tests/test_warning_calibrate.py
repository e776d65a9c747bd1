"""`riskctl warn --calibrate`: thresholds from gold.warning_indicators history, written as
a thresholds YAML whose every entry says where it came from; and an old
gold.warning_indicators (before threshold_source) takes the new rows."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from riskcontrol.apply import warning
from riskcontrol.cli.main import main
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import GOLD_WARNING_INDICATORS
from riskcontrol.core.config import get_settings

FIRST = dt.date(2025, 1, 1)
STAMP = dt.datetime(2025, 5, 1, 12)


def _row(day, indicator, value, source=None):
    return {
        "as_of_date": day,
        "indicator": indicator,
        "segment_type": "overall",
        "segment": "all",
        "value": value,
        "numerator": 1.0,
        "denominator": 10.0,
        "warning_threshold": 0.25,
        "critical_threshold": 0.35,
        "status": "ok",
        "exposure": 1000.0,
        "run_id": "run-1",
        "computed_at": STAMP,
        "threshold_source": source,
    }


def test_warn_calibrate_writes_thresholds_with_their_source(spark, cli_home, capsys) -> None:
    settings = get_settings()
    days = [FIRST + dt.timedelta(days=i) for i in range(100)]
    rows = [_row(d, "dpd30_rate", 0.1 if i % 2 else 0.3) for i, d in enumerate(days)]
    rows += [_row(d, "score_psi", 0.05) for d in days[:10]]  # 10 days: refused
    df = spark.createDataFrame(rows, GOLD_WARNING_INDICATORS.schema)
    lakehouse.merge(df, GOLD_WARNING_INDICATORS, settings)
    out = cli_home / "calibrated.yaml"
    code = main(
        [
            "warn",
            "--calibrate",
            str(out),
            "--calibrate-from",
            "2025-01-01",
            "--as-of",
            "2025-03-31",  # the first 90 days: 45 at 0.3, 45 at 0.1
            "--indicators",
            "dpd30_rate,score_psi",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "not calibrated: score_psi: 10 day(s) with a value" in printed
    loaded = warning.load_thresholds(out)
    sd = 0.1 * math.sqrt(90 / 89)
    assert loaded["dpd30_rate"]["warning"] == pytest.approx(0.2 + 3 * sd)
    assert loaded["dpd30_rate"]["critical"] == pytest.approx(0.2 + 4 * sd)
    assert loaded["dpd30_rate"]["source"] == (
        f"file {out}: calibrated: control limit mean+3sd (critical mean+4sd) over 90 days "
        "2025-01-01..2025-03-31: mean 0.2, sd 0.10056"
    )
    assert loaded["score_psi"] == warning.default_thresholds()["score_psi"]  # untouched

    # nothing calibrates: an error, no file
    other = cli_home / "none.yaml"
    code = main(["warn", "--calibrate", str(other), "--indicators", "score_psi"])
    assert code != 0
    assert not other.exists()


def test_an_old_indicators_table_gets_threshold_source(spark, settings) -> None:
    old_columns = [c for c in GOLD_WARNING_INDICATORS.columns if c != "threshold_source"]
    old = spark.createDataFrame(
        [tuple(_row(FIRST, "dpd30_rate", 0.1)[c] for c in old_columns)],
        ", ".join(
            f"{f.name} {f.dataType.simpleString()}"
            for f in GOLD_WARNING_INDICATORS.schema.fields
            if f.name in old_columns
        ),
    )
    old.write.format("delta").save(GOLD_WARNING_INDICATORS.path(settings))
    lakehouse.add_missing_columns(spark, GOLD_WARNING_INDICATORS, settings)
    new = spark.createDataFrame(
        [_row(FIRST + dt.timedelta(days=1), "dpd30_rate", 0.2, "default: x")],
        GOLD_WARNING_INDICATORS.schema,
    )
    lakehouse.merge(new, GOLD_WARNING_INDICATORS, settings)
    got = {
        r.as_of_date: r.threshold_source
        for r in lakehouse.read(spark, GOLD_WARNING_INDICATORS, settings).collect()
    }
    assert got == {FIRST: None, FIRST + dt.timedelta(days=1): "default: x"}


def test_the_stability_inputs_are_the_recent_and_the_through_the_door_applications(
    spark, monkeypatch
) -> None:
    """What `riskctl warn` hands the score PSI and the CSI: the applications from 30 days
    before the first day on (the PSI's), from 180 days before those (the CSI's, its
    reference), and every application of the training months, with the champion's
    features (a stub model: pd = x / 10)."""
    from types import SimpleNamespace

    from pyspark.sql import functions as F

    from riskcontrol.apply import pipeline
    from riskcontrol.modeling.models import FeatureSpec

    features = spark.createDataFrame(
        [
            ("A0", dt.date(2024, 11, 2), "2024-11", 9, "y", "ignored"),  # before the reference
            ("A1", dt.date(2025, 1, 5), "2025-01", 1, "a", "ignored"),
            ("A2", dt.date(2025, 2, 5), "2025-02", 2, None, "ignored"),
            ("A3", dt.date(2025, 3, 5), "2025-03", 3, "b", "ignored"),  # not a training month
            ("A4", dt.date(2025, 5, 2), "2025-05", None, "z", "ignored"),  # recent
        ],
        "application_id string, application_date date, application_month string, x int, "
        "c string, other string",
    )
    monkeypatch.setattr(pipeline, "_read", lambda run, table: features)
    monkeypatch.setattr(
        pipeline,
        "training_split",
        lambda spark, settings: SimpleNamespace(windows={"train": "2025-01..2025-02"}),
    )
    model = SimpleNamespace(transform=lambda df: df.withColumn("pd", F.col("x") / 10))
    champion = SimpleNamespace(model=model, spec=FeatureSpec(("x",), ("c",)))
    run = SimpleNamespace(spark=spark, settings=None)
    got = pipeline._stability_inputs(run, champion, dt.date(2025, 6, 1))
    assert got.baseline_pd == [0.1, 0.2]  # A1, A2: the training months, whatever their fate
    assert [tuple(r) for r in got.score_frame.collect()] == [(dt.date(2025, 5, 2), None)]
    # from 2024-11-03: 2025-06-01 less 30 and 180 days
    assert sorted(tuple(r) for r in got.feature_frame.collect()) == [
        (dt.date(2025, 1, 5), 1, "a"),
        (dt.date(2025, 2, 5), 2, None),
        (dt.date(2025, 3, 5), 3, "b"),
        (dt.date(2025, 5, 2), None, "z"),
    ]
    x, c = got.feature_bins
    assert (x.feature, x.rows, c.feature, c.levels) == ("x", 2, "c", ("a",))
    assert c.shares == {0: 0.5, 1: 0.0, -1: 0.5}
