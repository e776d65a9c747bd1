"""Write the class archive the pipeline's Spark drivers start from (``make setup``).

A Spark driver loads and verifies thousands of classes before its first job, and more
during its first Delta commit, SQL plan and model fit (an erasure's driver: about 21,700,
generated ones aside). A dynamic class-data-sharing
archive (JDK 12+, ``-XX:ArchiveClassesAtExit``) keeps them as the JVM holds them once
loaded; a later JVM with the same JDK and class path maps the file instead
(``riskcontrol.core.spark.archive_options``).

The archive is written by a driver that runs a short workload on generated rows in a
temporary folder (a Delta table created, merged into and read, CSV and JSON read, a SQL
join and window, an Arrow UDF, a decision tree fitted): class metadata only, and never
from a run over real data. It is tied to the jars folder it sits in (``make jars``
recreates that folder, and this archive with it) and to the JDK: another JDK ignores it.

Usage: ``python -m riskcontrol.core.classcache [JARS_DIR]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from riskcontrol.core.config import Settings


def _workload(spark, folder: Path) -> None:
    from delta.tables import DeltaTable
    from pyspark.ml.classification import DecisionTreeClassifier
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    rows = spark.range(200).select(
        F.col("id"),
        (F.col("id") % 7).alias("k"),
        (F.col("id") * 1.5).alias("x"),
        (F.col("id") % 2).cast("double").alias("label"),
        F.concat(F.lit("row-"), F.col("id").cast("string")).alias("s"),
    )
    path = str(folder / "table")
    rows.write.format("delta").save(path)
    update = rows.where("id < 50").withColumn("x", F.col("x") + 1)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(update.alias("s"), "t.id <=> s.id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
        .first()
    )
    table = spark.read.format("delta").load(path)
    by_k = Window.partitionBy("k").orderBy("id")
    table.join(table.groupBy("k").agg(F.sum("x").alias("sx")), "k").withColumn(
        "n", F.row_number().over(by_k)
    ).collect()

    table.select("x").mapInPandas(lambda frames: (f * 2 for f in frames), "x double").collect()
    (folder / "rows.csv").write_text("a,b\n1,x\n2,y\n", encoding="utf-8")
    (folder / "rows.json").write_text('{"a": 1}\n{"a": 2}\n', encoding="utf-8")
    spark.read.option("header", True).option("escape", '"').csv(str(folder / "rows.csv")).collect()
    spark.read.json(str(folder / "rows.json")).collect()
    features = VectorAssembler(inputCols=["x", "k"], outputCol="features").transform(table)
    DecisionTreeClassifier(maxDepth=2).fit(features).transform(features).count()
    DeltaTable.forPath(spark, path).history(1).collect()


def build(jars_dir: Path) -> Path:
    """Write ``jars_dir``'s class archive (replacing an older one); its path."""
    from riskcontrol.core import spark as sparkmod

    target = Path(jars_dir).resolve() / sparkmod.CLASS_ARCHIVE
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="riskcontrol-classcache-") as tmp:
        options = f"-XX:ArchiveClassesAtExit={partial} {sparkmod.QUIET_CDS}"
        settings = Settings(
            home=Path(tmp),
            jars_dir=Path(jars_dir).resolve(),
            spark_master="local[2]",  # here, whatever RISK_SPARK_MASTER says
            pii_key=None,  # no key of the environment's comes near this driver
            bronze_key=None,
            spark_conf={"spark.driver.extraJavaOptions": options},
        )
        session = sparkmod.get_spark(settings)
        jvm = session.sparkContext._gateway.proc  # the driver's JVM (PySpark started it)
        try:
            _workload(session, Path(tmp))
        except BaseException:
            jvm.kill()  # no archive of a workload cut short
            jvm.wait(timeout=60)
            partial.unlink(missing_ok=True)
            raise
        session.stop()
        # The archive is written as the JVM exits: PySpark's JVM exits when its standard
        # input closes.
        jvm.stdin.close()
        jvm.wait(timeout=600)
    if not partial.is_file():
        raise RuntimeError(f"the JVM wrote no class archive at {partial}")
    os.replace(partial, target)
    return target


def jvm_maps_archive(pid: int | None = None) -> bool:
    """Whether the JVM ``pid`` maps the class archive (Linux's ``/proc``). Without
    ``pid``: the JVM this process runs under (a Python worker of an executor, whose
    parent chain leads to the executor's JVM)."""
    from riskcontrol.core import spark as sparkmod

    proc = Path("/proc")
    if pid is None:
        pid = os.getpid()
        while (proc / str(pid) / "comm").read_text().strip() != "java":
            stat = (proc / str(pid) / "stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid
            if pid <= 1:
                return False
    return sparkmod.CLASS_ARCHIVE in (proc / str(pid) / "maps").read_text()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    jars_dir = Path(args[0]) if args else Path("jars")
    started = time.perf_counter()
    try:
        target = build(jars_dir)
    except Exception as exc:  # noqa: BLE001 - an optimisation: the pipeline runs without
        print(f"classcache: no class archive written ({exc}); Spark starts without one")
        return 0
    size = target.stat().st_size / 2**20
    print(f"classcache: {target} ({size:.0f} MB) in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
