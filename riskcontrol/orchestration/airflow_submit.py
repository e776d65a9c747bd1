"""An Airflow task that runs one pipeline task as a spark-submit job: the Apache Spark
provider's ``SparkSubmitOperator`` given what ``riskctl submit`` would run.

Imported by the DAG files only in spark-submit mode (RISK_AIRFLOW_TASK_MODE), where the
provider is there to import.
"""

from __future__ import annotations

import json
import os
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from riskcontrol.core.config import get_settings
from riskcontrol.orchestration.asof import announce_as_of, run_as_of
from riskcontrol.orchestration.submit import submit_spec

# The Airflow connection the operator submits through: its master is RISK_SPARK_MASTER,
# set in the task's environment when the task runs (one place says where Spark is).
CONN_ID = "riskcontrol_spark"


def connection_env(master: str) -> dict[str, str]:
    """The environment variable that defines :data:`CONN_ID` as ``master``."""
    return {f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps({"conn_type": "spark", "host": master})}


class PipelineSubmitOperator(SparkSubmitOperator):
    """Pipeline task ``task_name`` of ``tier`` as ``spark-submit jobs/<tier>.py RUN TASK``.

    The run id recorded in ``ops.manifest`` is ``airflow-<tier>-<Airflow run id>``, as in
    the in-process tasks, and so is the day it runs as of (``RISK_AS_OF`` in the job's
    environment). The operator itself returns nothing: the job's counts are in the task
    log (one JSON line per task)."""

    def __init__(self, *, tier: str, task_name: str, **kwargs: Any):
        spec = submit_spec(get_settings(), tier, None)
        super().__init__(
            application=spec.application,
            application_args=[f"airflow-{tier}-{{{{ run_id }}}}", task_name],
            conf=spec.conf,
            jars=",".join(spec.jars),
            driver_memory=spec.driver_memory,
            name=f"riskcontrol-{task_name}",
            env_vars=spec.env,
            conn_id=CONN_ID,
            **kwargs,
        )
        self.master = spec.master
        self.tier = tier

    def execute(self, context: Any) -> None:
        os.environ.update(connection_env(self.master))
        as_of = run_as_of(self.tier, context)
        if as_of:
            self.env_vars = {**(self.env_vars or {}), "RISK_AS_OF": as_of}
        super().execute(context)
        announce_as_of(context.get("outlet_events"), list(self.outlets), as_of)
