#!/usr/bin/env bash
# make demo: bootstrap the champion through Airflow, then land 60 simulated days with a drift episode.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DEMO_START=${DEMO_START:-2026-09-01}
DEMO_DAYS=${DEMO_DAYS:-60}
DEMO_SCENARIO=${DEMO_SCENARIO:-gradual+concept}
DEMO_ONSET=${DEMO_ONSET:-$(date -d "$DEMO_START + 25 days" +%F)}
mkdir -p "$AIRFLOW_HOME"
log="$CHURNGUARD_HOME/demo.log"
: > "$log"

echo "==> Airflow metadata DB in $AIRFLOW_HOME"
$BIN/airflow db migrate >>"$log" 2>&1
echo "==> churn_bootstrap (airflow dags test): reference data -> XGBoost -> MLflow -> champion"
$BIN/airflow dags test churn_bootstrap >>"$log" 2>&1 || true
$BIN/churnguard status --require-champion
echo "==> simulating $DEMO_DAYS daily batches from $DEMO_START ($DEMO_SCENARIO from $DEMO_ONSET)"
$BIN/churnguard simulate --start "$DEMO_START" --days "$DEMO_DAYS" --scenario "$DEMO_SCENARIO" \
  --onset "$DEMO_ONSET" >>"$log" 2>&1
$BIN/churnguard status
echo "Full log: $log"
