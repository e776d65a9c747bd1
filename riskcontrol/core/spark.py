"""The Spark session factory: Delta enabled from the project-local jars, sane local settings.

The jars (Delta and the JDBC drivers) are fetched by Maven during set-up (`make jars`)
into ``RISK_JARS_DIR`` (default ``./jars``); Spark loads them from there with
``spark.jars``, so nothing is downloaded at run time. On a cluster the same jars are
shipped to executors by ``spark.jars`` as well, or given to spark-submit with ``--jars``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from riskcontrol.core.config import Settings, get_settings
from riskcontrol.core.redact import is_secret_conf

DELTA_JAR_PREFIX = "delta-spark_"
UDF_JAR = "riskcontrol-udf.jar"


def local_jars(jars_dir: Path) -> list[Path]:
    """The jars Spark must load; fails with instructions when Delta's jar or the
    project's UDF jar (the bronze cipher, built from infra/jvm) is missing."""
    jars = sorted(Path(jars_dir).glob("*.jar"))
    if not any(j.name.startswith(DELTA_JAR_PREFIX) for j in jars):
        raise RuntimeError(
            f"Delta Lake's jar is not in {jars_dir}. Run `make jars` (Maven copies it from "
            "Maven Central) or set RISK_JARS_DIR to the folder that holds it."
        )
    if not any(j.name == UDF_JAR for j in jars):
        raise RuntimeError(
            f"{UDF_JAR} is not in {jars_dir}. Run `make jars` (it compiles infra/jvm with the "
            "JDK's javac) or set RISK_JARS_DIR to the folder that holds it."
        )
    return jars


# The packages a cluster's executors import: the library and the Scrapy project (see
# setup.py). They go to the executors in one zip (``--py-files``), so a worker node needs
# the third-party dependencies (constraints.txt) but never this project installed.
PACKAGES = ("riskcontrol", "riskcrawl")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _package_files() -> list[tuple[str, Path]]:
    """(name in the zip, file) for every file of :data:`PACKAGES`, caches left out."""
    import importlib.util

    files = []
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"package {name} is not importable here: run `make setup`")
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
                files.append((f"{name}/{rel.as_posix()}", path))
    return files


def python_package(settings: Settings) -> Path:
    """The zip of the library and the crawlers that a cluster's executors import
    (``--py-files``, ``spark.submit.pyFiles``), under ``<home>/dist``.

    Named by a hash of its content: built once per version of the code, never rewritten
    while a job reads it; equal sources make a byte-equal zip (fixed timestamps)."""
    files = _package_files()
    digest = hashlib.sha256()
    for arcname, path in files:
        digest.update(arcname.encode() + b"\0" + path.read_bytes() + b"\0")
    folder = settings.home / "dist"
    target = folder / f"riskcontrol-{digest.hexdigest()[:16]}.zip"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{target.name}.{os.getpid()}.partial"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, path in files:
            info = zipfile.ZipInfo(arcname, _ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    os.replace(partial, target)
    return target


def is_local(master: str) -> bool:
    """Whether ``master`` runs the executors inside the driver's JVM (``local[...]``)."""
    return master.startswith("local")


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
        # A spark-submitted driver logs at INFO (one started from Python at WARN), and at
        # INFO Delta prints each snapshot with its files' statistics, the min and max of
        # every column, customer ids among them, into the job's (Airflow's task) log.
        "spark.log.level": "WARN",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.adaptive.enabled": "true",
        # JDBC sources report TEXT as VARCHAR(n); treat char/varchar as string everywhere.
        "spark.sql.legacy.charVarcharAsString": "true",
        # Delta housekeeping that is wasteful on small local tables.
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.databricks.delta.stalenessLimit": "0",
    }
    if is_local(settings.spark_master):
        # Local mode talks to itself only: bind to loopback, never to a public interface.
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        conf["spark.driver.host"] = "127.0.0.1"
        # Shuffle and spill files hold decrypted rows (silver steps decrypt bronze in
        # memory): encrypted on local disk too.
        conf["spark.io.encryption.enabled"] = "true"
    conf.update(settings.spark_conf)
    # The class archive for the driver, and for a cluster's executors (the same JDK and
    # PySpark install: a worker launches them with the driver's class path; on another
    # machine, where the file is missing or made for other jars, they run without it).
    archive = archive_options(settings)
    roles = ["driver"] if is_local(settings.spark_master) else ["driver", "executor"]
    for role in roles if archive else []:
        options = conf.get(f"spark.{role}.extraJavaOptions", "")
        if not any(f in options for f in ("SharedArchive", "ArchiveClasses")):
            conf[f"spark.{role}.extraJavaOptions"] = f"{options} {archive}".strip()
    return conf


# Spark's classes as the JVM keeps them once loaded (a dynamic class-data-sharing archive,
# JDK 12+), written by `make setup` (``riskcontrol.core.classcache``) beside the jars it
# was made for: a driver maps it instead of loading and verifying the classes again (an
# erasure's driver took 17,925 classes from it and 3,787 from jars: Delta's, which Spark
# loads through a class loader of its own, and classes the workload did not touch; the
# classes generated while it runs, Spark's compiled queries among them, cannot be).
# `make bench-startup` times a driver's start and first Delta jobs with and without it.
# A JVM that cannot use it (another JDK, another class path) runs without it, silently.
CLASS_ARCHIVE = "spark-classes.jsa"
QUIET_CDS = "-Xlog:cds=off,cds+dynamic=off"


def class_archive(settings: Settings) -> Path | None:
    """The class archive for this JDK and these jars, if `make setup` wrote one."""
    archive = Path(settings.jars_dir) / CLASS_ARCHIVE
    usable = archive.is_file() and not any(c.isspace() for c in str(archive))
    return archive if settings.spark_class_archive and usable else None


def archive_options(settings: Settings) -> str:
    """The JVM options (a driver's, a cluster's executors') that map the class archive
    (none without one)."""
    archive = class_archive(settings)
    return f"-XX:SharedArchiveFile={archive} {QUIET_CDS}" if archive else ""


PRIVATE_UMASK = 0o077


def private_data(settings: Settings | None = None) -> None:
    """Make what this process writes private to its user: umask 077 (files 0600, folders
    0700, and the same for the processes it starts: Spark, the crawler, MLflow, Airflow),
    and, given settings, the home's data folders that already exist set to 0700 and the
    MLflow SQLite store to 0600 (an earlier version left them 0755/0644; what is inside
    the folders is then out of other users' reach too)."""
    os.umask(PRIVATE_UMASK)
    if settings is None:
        return
    tracking = settings.mlflow_tracking_uri or ""
    store = [Path(tracking.removeprefix("sqlite:///"))] if tracking.startswith("sqlite:///") else []
    for path, mode in [*((f, 0o700) for f in data_folders(settings)), *((f, 0o600) for f in store)]:
        try:
            if path.exists() and path.stat().st_uid == os.getuid():
                path.chmod(mode)
        except OSError:
            pass  # not ours to change (a shared mount): left as it is


def data_folders(settings: Settings) -> list[Path]:
    """The local folders the pipeline writes personal data, models and keys-derived
    state into (object-store URIs are not folders here)."""
    folders = [
        Path(settings.data_dir),
        Path(settings.crawl_state_dir),
        settings.reports_dir,
        Path(settings.airflow_home),
        settings.home / "spark-warehouse",
        settings.home / ".derby",
    ]
    for uri in (str(settings.lakehouse_root), settings.mlflow_artifact_root):
        if uri.startswith("file:"):
            folders.append(Path(uri.removeprefix("file:").removeprefix("//")))
        elif "://" not in uri:
            folders.append(Path(uri))
    return folders


def split_secrets(conf: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``conf`` as (settings for the session builder, credentials set once it runs).

    PySpark hands every builder setting to ``spark-submit`` as ``--conf key=value``, where
    ``ps`` shows it to every user of the machine. Credentials of Hadoop file systems
    (``spark.hadoop.*``: S3, Azure, GCS keys) and of SQL catalogs (``spark.sql.*``) can be
    set on the running session instead; a secret Spark core setting (``spark.ssl.*``,
    ``spark.authenticate.secret``) must be there at launch and stays in the builder.
    """
    late = {
        k: v
        for k, v in conf.items()
        if is_secret_conf(k) and k.startswith(("spark.hadoop.", "spark.sql."))
    }
    return {k: v for k, v in conf.items() if k not in late}, late


def set_secrets(spark: SparkSession, secrets: dict[str, str]) -> None:
    """Credentials from :func:`split_secrets` onto the running session, over Py4J."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in secrets.items():
        if key.startswith("spark.hadoop."):
            hadoop.set(key.removeprefix("spark.hadoop."), value)
        else:
            spark.conf.set(key, value)


def ship_package(spark: SparkSession, settings: Settings) -> None:
    """On a cluster, send the executors the zip of the library and the crawlers
    (:func:`python_package`). Not with ``--py-files``: spark-submit puts those first on
    the driver's path too, and the driver runs the installed library, whose folder holds
    the jobs, the DAGs and the feature repository."""
    if not is_local(spark.sparkContext.master):
        spark.sparkContext.addPyFile(str(python_package(settings)))


def get_spark(settings: Settings | None = None) -> SparkSession:
    """The active session if there is one (tests, spark-submit), else a new one."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    settings = settings or get_settings()
    private_data(settings)
    conf, secrets = split_secrets(spark_conf(settings))
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Launched by spark-submit: its --master, --name, --jars and --conf already
        # configure the session (a cluster's UI lists each job by the name it was given);
        # only the pipeline's SQL settings are added.
        builder = SparkSession.builder
        for key, value in conf.items():
            if not key.startswith(("spark.driver.", "spark.jars")):
                builder = builder.config(key, value)
        spark = builder.getOrCreate()
        set_secrets(spark, secrets)
        ship_package(spark, settings)
        return spark
    # The executors' interpreter: spark.pyspark.python when set (a cluster's worker
    # nodes), which PySpark reads from the environment when no spark-submit launched it.
    if conf.get("spark.pyspark.python"):
        os.environ["PYSPARK_PYTHON"] = conf["spark.pyspark.python"]
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if is_local(settings.spark_master):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(settings.spark_master).appName(settings.spark_app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    set_secrets(spark, secrets)
    ship_package(spark, settings)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextmanager
def spark_progress(
    spark: SparkSession, say: Callable[[str], None] | None, every: float = 10.0
) -> Iterator[None]:
    """Report the running Spark stages every ``every`` seconds while the block runs."""
    if say is None:
        yield
        return
    stop = threading.Event()
    t0 = time.perf_counter()

    def watch() -> None:
        try:
            tracker = spark.sparkContext.statusTracker()
        except Exception:  # e.g. Spark Connect: no status tracker, no progress lines
            return
        while not stop.wait(every):
            parts = []
            for sid in tracker.getActiveStageIds():
                info = tracker.getStageInfo(sid)
                if info is not None:
                    parts.append(f"stage {sid}: {info.numCompletedTasks}/{info.numTasks} tasks")
            if parts:
                say(f"  ... {time.perf_counter() - t0:.0f}s, " + "; ".join(parts))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def sql_conf(spark: SparkSession, conf: dict[str, str]) -> Iterator[None]:
    """Set Spark SQL settings for the block, then restore them."""
    before = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


# Typing and checking dozens of columns in one projection makes whole-stage code too big
# for the JVM (a method over 64 KB fails to compile; over 8 KB is never JIT-compiled),
# so the wide per-row steps run with Spark's per-expression generated code instead; and
# the optimizer's constraint propagation, which grows combinatorially with such
# projections under a join (the MERGE), is skipped.
WIDE_ROWS_CONF = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.constraintPropagation.enabled": "false",
}
