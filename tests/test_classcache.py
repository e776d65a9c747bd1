"""The class archive the drivers start from (`make setup` writes it): used, and harmless."""

from __future__ import annotations

from pathlib import Path

from conftest import make_settings

from riskcontrol.core import spark as sparkmod

ARCHIVE = Path(__file__).resolve().parents[1] / "jars" / sparkmod.CLASS_ARCHIVE


def test_the_test_sessions_jvm_maps_the_archive_make_setup_wrote(spark):
    assert ARCHIVE.is_file(), f"no {ARCHIVE}: `make setup` writes it"
    jvm = spark._jvm
    pid = jvm.java.lang.ProcessHandle.current().pid()
    arguments = list(
        jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()
    )
    assert f"-XX:SharedArchiveFile={ARCHIVE}" in arguments
    # Mapped, not only named: a JVM that could not use it (another JDK, another class
    # path) would have gone on without it, silently.
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert str(ARCHIVE) in maps


def test_the_archive_holds_classes_not_the_rows_it_was_made_on():
    data = ARCHIVE.read_bytes()
    assert b"java/lang/Object" in data  # what an archive of classes holds
    # the build's workload wrote rows "row-0" .. "row-199" to a Delta table and read them
    assert b"row-17" not in data and b"row-199" not in data


def test_options_name_the_archive_only_when_there_is_one_and_none_is_named(tmp_path):
    here = make_settings(tmp_path, jars_dir=ARCHIVE.parent)
    options = sparkmod.spark_conf(here)["spark.driver.extraJavaOptions"]
    assert options.endswith(f"-XX:SharedArchiveFile={ARCHIVE} -Xlog:cds=off,cds+dynamic=off")
    assert options.startswith("-XX:TieredStopAtLevel=1")  # the settings' own options stay
    empty = tmp_path / "jars"
    empty.mkdir()
    (empty / "delta-spark_2.13-0.jar").write_bytes(b"")
    (empty / "riskcontrol-udf.jar").write_bytes(b"")
    none = make_settings(tmp_path, jars_dir=empty)
    assert "SharedArchiveFile" not in sparkmod.spark_conf(none)["spark.driver.extraJavaOptions"]
    off = make_settings(tmp_path, jars_dir=ARCHIVE.parent, spark_class_archive=False)
    assert "SharedArchiveFile" not in sparkmod.spark_conf(off)["spark.driver.extraJavaOptions"]
    own = make_settings(
        tmp_path,
        jars_dir=ARCHIVE.parent,
        spark_conf={"spark.driver.extraJavaOptions": "-XX:ArchiveClassesAtExit=/tmp/x.jsa"},
    )
    assert sparkmod.spark_conf(own)["spark.driver.extraJavaOptions"] == (
        "-XX:ArchiveClassesAtExit=/tmp/x.jsa"
    )


def test_a_clusters_executors_are_given_the_archive_too(tmp_path):
    """A worker launches executors with the driver's JDK and class path (the fault
    module's cluster run finds them mapping it); local mode has no executor JVM."""
    cluster = make_settings(tmp_path, jars_dir=ARCHIVE.parent, spark_master="spark://127.0.0.1:1")
    conf = sparkmod.spark_conf(cluster)
    assert conf["spark.executor.extraJavaOptions"] == (
        f"-XX:SharedArchiveFile={ARCHIVE} -Xlog:cds=off,cds+dynamic=off"
    )
    local = sparkmod.spark_conf(make_settings(tmp_path, jars_dir=ARCHIVE.parent))
    assert "spark.executor.extraJavaOptions" not in local
