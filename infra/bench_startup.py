"""Time a Spark driver's start and first jobs with and without the class archive.

Each run is its own process, as every `riskctl` command, Airflow task and notebook kernel
is: a session started with the pipeline's settings, then a first Delta table written,
merged into and read, and a join aggregated, on generated rows in a temporary folder.
The runs alternate (with the archive, then without) so that a busy machine weighs on
both alike. Printed per mode: the wall seconds to the session, to the end of the jobs,
and the machine's busy CPU seconds over the run (``/proc/stat``: the JVM's threads, the
JIT's and the garbage collector's included), as min / median / max.

Usage: ``python infra/bench_startup.py [--runs 5]`` (``make bench-startup``), after
``make setup`` (which writes ``jars/spark-classes.jsa``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from pyspark.sql import functions as F
from delta.tables import DeltaTable
from riskcontrol.core.config import get_settings
from riskcontrol.core.spark import get_spark
spark = get_spark(get_settings())
t1 = time.perf_counter()
path = sys.argv[1] + "/t"
df = spark.range(5000).select(
    "id", (F.col("id") % 13).alias("g"), F.sha2(F.col("id").cast("string"), 256).alias("h")
)
df.write.format("delta").save(path)
changed = df.where("id % 10 = 0").withColumn("g", F.col("g") + 100)
(DeltaTable.forPath(spark, path).alias("t").merge(changed.alias("s"), "t.id = s.id")
 .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute().first())
t = spark.read.format("delta").load(path)
t.join(t.groupBy("g").count(), "g").agg(F.sum("count")).collect()
t2 = time.perf_counter()
archive = [a for a in spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
           .getInputArguments() if "SharedArchiveFile" in a]
print(json.dumps({"session": t1 - t0, "total": t2 - t0, "archive": bool(archive)}))
"""


def busy_ticks() -> int:
    """The machine's busy time in clock ticks (user, nice, system, irq, softirq)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return user + nice + system + irq + softirq


def one(archive: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="riskbench-startup-") as home:
        env = {
            **os.environ,
            "RISK_HOME": home,
            "RISK_SPARK_CLASS_ARCHIVE": "true" if archive else "false",
            "RISK_PII_KEY": "benchmark-only-key",
            "RISK_BRONZE_KEY": "42" * 32,
        }
        ticks, started = busy_ticks(), time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, home], env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - started
        cpu = (busy_ticks() - ticks) / os.sysconf("SC_CLK_TCK")
    if done.returncode != 0:
        raise SystemExit(f"the driver failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures.pop("archive") != archive:
        raise SystemExit(
            "the archive was not used as asked: is jars/spark-classes.jsa there (make setup)?"
        )
    return {**figures, "process": wall, "cpu": cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per mode (default 5)")
    args = parser.parse_args()
    from riskcontrol.core.config import Settings
    from riskcontrol.core.spark import class_archive

    if class_archive(Settings(spark_class_archive=True)) is None:
        print("no jars/spark-classes.jsa: run `make setup` first", file=sys.stderr)
        return 2
    results: dict[str, list[dict[str, float]]] = {"with archive": [], "without": []}
    for i in range(args.runs):
        for mode, archive in (("with archive", True), ("without", False)):
            results[mode].append(one(archive))
            print(
                f"  run {i + 1}/{args.runs} {mode}: {results[mode][-1]['process']:.1f}s", flush=True
            )
    print(f"\n{'mode':<14}{'session s':>22}{'whole process s':>22}{'machine CPU s':>22}")
    for mode, runs in results.items():
        cells = []
        for key in ("session", "process", "cpu"):
            v = sorted(r[key] for r in runs)
            cells.append(f"{v[0]:.1f} / {statistics.median(v):.1f} / {v[-1]:.1f}")
        print(f"{mode:<14}" + "".join(f"{c:>22}" for c in cells))
    print("(min / median / max of", args.runs, "runs each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
