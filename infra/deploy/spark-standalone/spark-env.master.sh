#!/usr/bin/env bash
# spark-env.sh for the standalone MASTER: install as $SPARK_CONF_DIR/spark-env.sh on the
# master host (bin/spark-class sources it before starting the Master).
# SPARK_HOME is the venv's PySpark (the pip wheel has no sbin/start-master.sh; the
# systemd unit spark-master.service starts the Master class with bin/spark-class).

export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
export SPARK_CONF_DIR=/etc/riskcontrol/spark
export SPARK_MASTER_HOST=spark-master.example.internal
export SPARK_MASTER_PORT=7077
export SPARK_MASTER_WEBUI_PORT=8080
export SPARK_DAEMON_MEMORY=1g
export SPARK_LOG_DIR=/var/log/spark
# Cores an application gets when it sets no spark.cores.max.
export SPARK_MASTER_OPTS="-Dspark.deploy.defaultCores=8"
export PYSPARK_PYTHON=/opt/riskcontrol/.venv/bin/python
