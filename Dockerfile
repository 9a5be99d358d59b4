# The churnguard image: Airflow 3.3.2 with churnguard's pinned dependencies baked in (docker-compose.yaml runs
# every Airflow component, the MLflow server and the bucket init from it).
#   docker compose build          # or: docker build -t churnguard-airflow:3.3.2 .
FROM apache/airflow:3.3.2-python3.11

# The official image's way to extend it: pip as the airflow user, with apache-airflow pinned to the image's
# version so a dependency can never up- or downgrade Airflow, and our constraints so the image resolves to
# the same versions as `make venv`. Run-time dependencies only: the test and lint tools of requirements-dev.txt
# stay out of the image.
USER airflow
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/churnguard/
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        -r /opt/churnguard/requirements.txt -c /opt/churnguard/constraints.txt

# The library last: a code change rebuilds these layers only, not the dependency layer above.
COPY --chown=airflow:0 pyproject.toml README.md /opt/churnguard/
COPY --chown=airflow:0 include/ /opt/churnguard/include/
RUN pip install --no-cache-dir --no-deps -e /opt/churnguard

# Baked in so the image runs on its own (Kubernetes, a remote worker); docker-compose.yaml mounts the
# working copies over them so edits show without a rebuild.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
