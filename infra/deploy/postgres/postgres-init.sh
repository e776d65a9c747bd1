#!/usr/bin/env bash
# Creates the Airflow and MLflow databases, each owned by its own login role, on the
# first start of the postgres container (mounted into /docker-entrypoint-initdb.d/).
# On a managed PostgreSQL run the same as its administrator:
#   PGHOST=db.example.internal POSTGRES_USER=admin PG_AIRFLOW_PASSWORD=... PG_MLFLOW_PASSWORD=... bash postgres-init.sh
# The passwords come from the environment (platform.env), never from this file.
set -euo pipefail
: "${PG_AIRFLOW_PASSWORD:?set PG_AIRFLOW_PASSWORD}"
: "${PG_MLFLOW_PASSWORD:?set PG_MLFLOW_PASSWORD}"

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v airflow_password="${PG_AIRFLOW_PASSWORD}" -v mlflow_password="${PG_MLFLOW_PASSWORD}" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow ENCODING 'UTF8';
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow ENCODING 'UTF8';
SQL
