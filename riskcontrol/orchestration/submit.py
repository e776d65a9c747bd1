"""spark-submit of the pipeline's jobs (``jobs/<tier>.py``): the one place that says how.

``riskctl submit`` runs the command line it makes; in spark-submit mode the Airflow DAGs
hand the same settings to the Apache Spark provider's ``SparkSubmitOperator``
(:mod:`riskcontrol.orchestration.airflow_submit`).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from riskcontrol.core.config import PROJECT_ROOT, Settings


@dataclass(frozen=True)
class SubmitSpec:
    """Everything spark-submit is given to run one tier's job."""

    spark_home: str
    master: str
    name: str
    jars: tuple[str, ...]
    driver_memory: str
    conf: dict[str, str]
    application: str
    args: tuple[str, ...]
    env: dict[str, str]

    def argv(self) -> list[str]:
        return [
            os.path.join(self.spark_home, "bin", "spark-submit"),
            *("--master", self.master, "--name", self.name),
            *("--jars", ",".join(self.jars)),
            *("--driver-memory", self.driver_memory),
            *(a for k, v in self.conf.items() for a in ("--conf", f"{k}={v}")),
            self.application,
            *self.args,
        ]


def submit_spec(
    settings: Settings, tier: str, run_id: str | None, tasks: Sequence[str] = ()
) -> SubmitSpec:
    """How to spark-submit ``jobs/<tier>.py`` (only ``tasks`` of it, when given) to
    RISK_SPARK_MASTER.

    The job's session ships the library and the crawlers to the executors as one zip
    (``core.spark.python_package``): a worker node needs the dependencies of
    constraints.txt, not this project. The driver runs this interpreter and its
    installed library; the executors run ``spark.pyspark.python`` when RISK_SPARK_CONF
    names one (the worker nodes' Python), else the same path. RISK_SPARK_CONF's other
    settings go on the command line, except credentials: the job sets those on its
    running session (``ps`` shows a command line to every user)."""
    import pyspark

    from riskcontrol.core.redact import is_secret_conf
    from riskcontrol.core.spark import local_jars

    spark_home = os.path.dirname(pyspark.__file__)
    conf = {"spark.pyspark.driver.python": sys.executable}
    conf.update((k, v) for k, v in settings.spark_conf.items() if not is_secret_conf(k))
    args: list[str] = []
    if run_id or tasks:
        args.append(run_id or f"submit-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}")
    args.extend(tasks)
    return SubmitSpec(
        spark_home=spark_home,
        master=settings.spark_master,
        name=f"riskcontrol-{tier}",
        jars=tuple(str(j) for j in local_jars(settings.jars_dir)),
        driver_memory=settings.spark_driver_memory,
        conf=conf,
        application=str(PROJECT_ROOT / "jobs" / f"{tier}.py"),
        args=tuple(args),
        env={
            "SPARK_HOME": spark_home,
            "PYSPARK_PYTHON": sys.executable,
            # spark-submit found on the PATH (the provider runs it by name)
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
        },
    )
