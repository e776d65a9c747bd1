#!/usr/bin/env bash
# spark-env.sh for a standalone WORKER: install as $SPARK_CONF_DIR/spark-env.sh on every
# worker host. Size SPARK_WORKER_CORES / SPARK_WORKER_MEMORY to the host, leaving room
# for the OS and the Python workers (each executor's Python processes live outside the
# JVM heap: spark.executor.memoryOverhead in spark-defaults.conf).

export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
export SPARK_CONF_DIR=/etc/riskcontrol/spark
export SPARK_WORKER_CORES=8
export SPARK_WORKER_MEMORY=28g
export SPARK_WORKER_PORT=7078
export SPARK_WORKER_WEBUI_PORT=8081
export SPARK_WORKER_DIR=/var/lib/spark/work
export SPARK_LOCAL_DIRS=/var/lib/spark/local
export SPARK_DAEMON_MEMORY=1g
export SPARK_LOG_DIR=/var/log/spark
# Delete finished applications' folders (they hold the shipped zip and jars) after a day.
export SPARK_WORKER_OPTS="-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=86400"
export PYSPARK_PYTHON=/opt/riskcontrol/.venv/bin/python
