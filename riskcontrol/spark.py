"""The Spark session factory: Delta enabled from the project-local jars, sane local settings.

The jars (Delta and the JDBC drivers) are fetched by Maven during set-up (`make jars`)
into ``RISK_JARS_DIR`` (default ``./jars``); Spark loads them from there with
``spark.jars``, so nothing is downloaded at run time. On a cluster the same jars are
shipped to executors by ``spark.jars`` as well, or given to spark-submit with ``--jars``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from riskcontrol.config import Settings, get_settings

DELTA_JAR_PREFIX = "delta-spark_"


def local_jars(jars_dir: Path) -> list[Path]:
    """The jars Spark must load; fails with instructions when Delta's jar is missing."""
    jars = sorted(Path(jars_dir).glob("*.jar"))
    if not any(j.name.startswith(DELTA_JAR_PREFIX) for j in jars):
        raise RuntimeError(
            f"Delta Lake's jar is not in {jars_dir}. Run `make jars` (Maven copies it from "
            "Maven Central) or set RISK_JARS_DIR to the folder that holds it."
        )
    return jars


def spark_conf(settings: Settings) -> dict[str, str]:
    """Every Spark setting the pipeline needs, so spark-submit and the factory agree."""
    conf = {
        "spark.jars": ",".join(str(j) for j in local_jars(settings.jars_dir)),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(settings.home / "spark-warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={settings.home / '.derby'}",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.adaptive.enabled": "true",
        # JDBC sources report TEXT as VARCHAR(n); treat char/varchar as string everywhere.
        "spark.sql.legacy.charVarcharAsString": "true",
        # Delta housekeeping that is wasteful on small local tables.
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.databricks.delta.stalenessLimit": "0",
    }
    if settings.spark_master.startswith("local"):
        # Local mode talks to itself only: bind to loopback, never to a public interface.
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        conf["spark.driver.host"] = "127.0.0.1"
        # Shuffle and spill files hold decrypted rows (silver steps decrypt bronze in
        # memory): encrypted on local disk too.
        conf["spark.io.encryption.enabled"] = "true"
    conf.update(settings.spark_conf)
    return conf


def get_spark(settings: Settings | None = None) -> SparkSession:
    """The active session if there is one (tests, spark-submit), else a new one."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    settings = settings or get_settings()
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Launched by spark-submit: its --master, --jars and --conf already configure the
        # session; only the pipeline's SQL settings are added, the master is left alone.
        builder = SparkSession.builder.appName(settings.spark_app_name)
        for key, value in spark_conf(settings).items():
            if not key.startswith(("spark.driver.", "spark.jars")):
                builder = builder.config(key, value)
        return builder.getOrCreate()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(settings.spark_master).appName(settings.spark_app_name)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
