#!/usr/bin/env bash
# Compile the project's own JVM functions (infra/jvm/src: the bronze cipher and the keyed
# pseudonym as Spark UDFs) into $2/riskcontrol-udf.jar, against the Spark API jar that
# PySpark ships: no download, no build tool beyond the JDK's javac and jar.
# Usage: infra/jvm/build.sh PYTHON JARS_DIR   (`make jars` runs it)
set -euo pipefail
python=${1:?usage: build.sh PYTHON JARS_DIR}
out=${2:?usage: build.sh PYTHON JARS_DIR}
here=$(cd "$(dirname "$0")" && pwd)
spark_jars=$("$python" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')
if ! ls "$spark_jars"/spark-sql-api_*.jar > /dev/null 2>&1; then
  echo "build.sh: no spark-sql-api jar under $spark_jars: install the venv first (make venv)" >&2
  exit 1
fi
classes=$(mktemp -d)
trap 'rm -rf "$classes"' EXIT
javac --release 17 -Xlint:all,-classfile,-path -Werror -cp "$spark_jars/*" -d "$classes" $(find "$here/src" -name '*.java' | sort)
mkdir -p "$out"
jar --create --file "$out/riskcontrol-udf.jar" -C "$classes" .
echo "built $out/riskcontrol-udf.jar"
