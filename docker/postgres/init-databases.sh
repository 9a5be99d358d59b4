#!/bin/bash
# Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d): one database per
# system, each owned by its own role, so MLflow and churnguard can never touch Airflow's metadata.
set -euo pipefail

create_database() {  # name password: role and database share the name
  # psql variables quote the values, so a password is never spliced into SQL text
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres --set=name="$1" --set=password="$2" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
SQL
}

create_database airflow "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD in .env}"
create_database mlflow "${MLFLOW_DB_PASSWORD:?set MLFLOW_DB_PASSWORD in .env}"
create_database churnguard "${STORE_DB_PASSWORD:?set STORE_DB_PASSWORD in .env}"
