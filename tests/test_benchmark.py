"""The benchmark (infra/benchmark.py): its scaling table (--scaling), each stage's seconds per
book size and how time grows, k in time ~ customers^k; its JVM memory sampler; its order."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _load_benchmark():
    path = Path(__file__).resolve().parents[1] / "infra" / "benchmark.py"
    spec = importlib.util.spec_from_file_location("benchmark", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmark"] = module
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()


def _run(customers, stages, jvm=2048.0, python=300.0):
    return {
        "customers": customers,
        "stages": [
            {"stage": n, "seconds": s, "rows": r, "unit": "", "jvm_peak_mb": jvm}
            for n, s, r in stages
        ],
        "python_peak_mb": python,
        "jvm_peak_mb": jvm,
    }


def test_growth_exponent_is_one_for_linear_two_for_quadratic():
    assert bench.growth_exponent(100_000, 10.0, 1_000_000, 100.0) == pytest.approx(1.0)
    assert bench.growth_exponent(100_000, 10.0, 1_000_000, 1000.0) == pytest.approx(2.0)
    assert bench.growth_exponent(100_000, 10.0, 1_000_000, 10.0) == pytest.approx(0.0)
    # too short to say anything, or one size only
    assert bench.growth_exponent(100_000, 0.2, 1_000_000, 100.0) is None
    assert bench.growth_exponent(100_000, 10.0, 100_000, 12.0) is None


def test_scaling_table_orders_sizes_and_flags_a_stage_growing_faster_than_linear():
    small = _run(100_000, [("silver", 50.0, 1_300_000), ("train", 20.0, 0)], 1500.0, 250.0)
    large = _run(
        1_000_000,
        [("silver", 500.0, 13_000_000), ("train", 2000.0, 0), ("report", 3.0, 0)],
        6000.0,
        900.0,
    )
    table = bench.scaling_table([large, small]).splitlines()  # any order in
    assert table[0].split() == ["stage", "100,000", "1,000,000", "k", "rows/s", "note"]
    assert table[2].split() == ["silver", "50.0", "500.0", "1.00", "26,000"]
    assert table[3].split() == ["train", "20.0", "2000.0", "2.00", "-", "faster", "than", "linear"]
    # a stage the smaller run did not have: no exponent
    assert table[4].split() == ["report", "-", "3.0", "-", "-"]
    assert table[5].split() == ["peak", "MB", "1,500/250", "6,000/900", "(JVM/Python)"]


def test_with_three_sizes_the_table_also_gives_k_between_the_two_largest():
    runs = [
        _run(10_000, [("silver", 100.0, 1)]),  # fixed costs at first: k 0.5 overall
        _run(40_000, [("silver", 100.0, 4)]),
        _run(160_000, [("silver", 400.0, 16)]),  # then linear
    ]
    table = bench.scaling_table(runs).splitlines()
    assert table[0].split()[-5:] == ["k", "k", "end", "rows/s", "note"]
    assert table[2].split() == ["silver", "100.0", "100.0", "400.0", "0.50", "1.00", "0"]
    quadratic_end = [*runs[:2], _run(160_000, [("silver", 1600.0, 16)])]
    row = bench.scaling_table(quadratic_end).splitlines()[2].split()
    assert row[4:] == ["1.00", "2.00", "0", "faster", "than", "linear"]


def test_stages_record_each_stages_jvm_peak_and_write_json():
    class FakeRss:  # the sampler's interface; the real one samples in a thread
        def __init__(self):
            self.peaks = iter([(700.0, 90.0), (1200.0, 400.0)])

        def take(self):
            return next(self.peaks)

    rows = bench.Stages(FakeRss())
    rows.append(("generate", 2.0, 100, "rows"))
    rows.append(("silver", 4.0, 80, "rows in"))
    rows.append(("analyze", 6.0, 0, "all of the above"), False)  # a sum: no window, no peak
    figures = rows.to_json(1000, 321.0, 1200.0)
    assert figures["customers"] == 1000
    assert [(s["stage"], s["jvm_peak_mb"], s["python_peak_mb"]) for s in figures["stages"]] == [
        ("generate", 700.0, 90.0),
        ("silver", 1200.0, 400.0),
        ("analyze", None, None),
    ]
    assert [w[0] for w in rows.windows] == ["generate", "silver"]


def test_the_sampler_sees_a_child_process_and_this_one_apart():
    """The JVM is a child process; the Python peak is this process's own (at 1M customers
    the run's Python peak was 9.7 GB, and no stage said where)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; b = bytearray(64 * 2**20); time.sleep(3)"]
    )
    try:
        sampler = bench.RssPeaks(interval=0.1)
        deadline = time.monotonic() + 2.5
        while sampler.overall < 64 and time.monotonic() < deadline:
            time.sleep(0.1)
        jvm, before = sampler.take()
        assert jvm >= 64  # MB: the child's 64 MB buffer is resident
        own = bytearray(96 * 2**20)  # resident: bytearray() writes its zeros
        time.sleep(0.3)
        del own
        _, during = sampler.take()
        assert during - before >= 90  # seen though freed before the take
        sampler.stop()
    finally:
        child.kill()
        child.wait()


def test_the_benchmark_runs_the_analyze_tier_in_the_pipelines_order():
    """The benchmark times each analyze step by calling it itself; its order must be the
    pipeline's (it once ran gold before the feature store gold reads, and failed)."""
    from riskcontrol.orchestration import TIERS

    calls = {
        "build_silver": "run_silver(",
        "resolve_entities": "run_resolve(",
        "build_feature_store": "build_feature_tables(",
        "build_gold": "run_gold(",
        "check_quality": "run_quality(",
    }
    source = (Path(__file__).resolve().parents[1] / "infra" / "benchmark.py").read_text()
    body = source[source.index("def main(") :]
    at = {task: body.index(call) for task, call in calls.items()}
    assert sorted(at, key=at.get) == [t for t in TIERS["analyze"] if t != "train_models"]


def test_scaling_sizes_are_checked_with_a_clear_error():
    import argparse

    assert bench.book_sizes("100000,20000, 1_000_000") == [20_000, 100_000, 1_000_000]
    for bad, says in [
        ("20000,lots", "whole numbers"),
        ("20000", "two or more different"),
        ("20000,20000", "two or more different"),
        ("0,100", "above zero"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=says):
            bench.book_sizes(bad)


def test_the_collect_reconciliation_shows_duplicates_and_checks_each_sum():
    """A re-sent bureau report is a duplicate: without its column the printed line did not
    add up (1M book: 1,264,307 in, 1,248,207 out, 3,518 quarantined)."""
    from riskcontrol.core.runs import StepCounts

    lines = bench.reconciliation(
        [
            StepCounts(
                "collect",
                "files:bureau",
                "bronze.bureau_reports",
                rows_in=1_264_307,
                rows_out=1_248_207,
                rows_duplicate=12_582,
                rows_quarantined=3_518,
            ),
            StepCounts("collect", "jdbc:loans", "bronze.loans", 10, 4, rows_unchanged=5),
        ]
    )
    assert len(lines) == 4 and "duplicates" in lines[0]
    assert lines[2].split() == [
        "files:bureau",
        "bronze.bureau_reports",
        "1,264,307",
        "1,248,207",
        "0",
        "12,582",
        "3,518",
        "yes",
    ]
    assert lines[3].split()[-1] == "NO"  # 4 + 5 is not 10
