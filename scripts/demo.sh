#!/usr/bin/env bash
# make demo: the whole story on embedded defaults (SQLite, LocalExecutor, file:// data root, MLflow on SQLite).
# Bootstrap the champion and train the failure model (airflow dags test), land 60 simulated days with a
# drift episode, start Airflow (api-server, scheduler, dag-processor, triggerer) and an MLflow server, run
# churn_daily_monitoring over the 60 days as a real backfill through the scheduler, print the timeline, and
# leave the UI up. `make stop` ends every process it started.
# STACK=1 (make demo STACK=1): the same story on the native deployment topology (scripts/stack.py: PostgreSQL,
# Redis, SeaweedFS as S3, an MLflow server on both, Airflow on Celery with two workers); `make stack-down` ends it.
# SIGTERM or SIGINT (timeout, kill, Ctrl-C) before the demo has finished stops everything it started, the running
# step included, as `make stop` (and `make stack-down`) would.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
STACK=${STACK:-}

stop_demo() {
  trap '' TERM INT  # once: timeout signals the demo, then its whole process group
  bash scripts/stop.sh --below $$ >/dev/null
  if [ -f "$CHURNGUARD_HOME/run/stack.json" ]; then
    $BIN/python scripts/stack.py down >/dev/null || true
  fi
}
trap 'stop_demo; exit 143' TERM
trap 'stop_demo; exit 130' INT

step() {  # a step run in the background and waited for: bash runs a trap at once in `wait`, not after a command
  "$@" &
  wait $!
}

DEMO_START=${DEMO_START:-2026-09-01}
DEMO_DAYS=${DEMO_DAYS:-60}
# The story (issue #12): from day 21 monthly charges and tenure drift up, 3 reference stds over 28 days
# (gradual, intensity 3: a covariate shift with no change in who churns). The failure risk rises from the
# drift within days; the labels, 7 days late, confirm the champion's failure weeks later (the timeline's
# "early warning" line), and retraining on the labelled days after the change heals. DEMO_SEED: the simulator's.
DEMO_SCENARIO=${DEMO_SCENARIO:-gradual}
DEMO_ONSET=${DEMO_ONSET:-$(date -d "$DEMO_START + 20 days" +%F)}
DEMO_INTENSITY=${DEMO_INTENSITY:-3}
DEMO_SEED=${DEMO_SEED:-0}
DEMO_TRAJECTORIES=${DEMO_TRAJECTORIES:-90}
DEMO_END=$(date -d "$DEMO_START + $((DEMO_DAYS - 1)) days" +%F)
marker="$CHURNGUARD_HOME/.demo-home"

if [ -f "$CHURNGUARD_HOME/run/stack.json" ]; then
  $BIN/python scripts/stack.py down >/dev/null  # an earlier stack demo: its services, databases and Redis db
fi
bash scripts/stop.sh  # services an earlier demo left up
# Each demo tells the story from the start: an earlier demo's state goes (the trajectory cache stays).
# Only a home the demo made itself is cleared.
if [ -f "$marker" ]; then
  rm -rf "$CHURNGUARD_HOME"/{data,airflow,mlartifacts,run,logs,configs,benchmarks} "$CHURNGUARD_HOME"/*.db*
elif [ -e "$CHURNGUARD_HOME/monitoring.db" ]; then
  echo "CHURNGUARD_HOME=$CHURNGUARD_HOME holds state make demo did not make: point it at an empty folder" >&2
  exit 2
fi
mkdir -p "$AIRFLOW_HOME"
touch "$marker"
log="$CHURNGUARD_HOME/demo.log"
: > "$log"
# The DAG's schedule spans the demo's days: the package's configs with its start and end dates.
CHURNGUARD_CONFIG_DIR=$($BIN/python scripts/airflow_stack.py configs "$DEMO_START" "$DEMO_END")
export CHURNGUARD_CONFIG_DIR

dag_test() {  # airflow dags test logs a failing task instead of failing: read the run's final state
  local from pid
  from=$(($(wc -l <"$log") + 1))
  $BIN/airflow dags test "$@" >>"$log" 2>&1 &
  pid=$!
  # the run's log goes to the file; its progress lines and the failure pipeline's steps go on screen too
  tail -n "+$from" -F --pid="$pid" "$log" 2>/dev/null |
    sed -un 's/^.*\[info *\] \(.*[^ ]\) *\[churnguard\.\(progress\|failure_training\)\].*$/    \1/p' &
  wait $!
  wait "$pid" || true
  if ! grep "DagRun Finished: dag_id=$1," "$log" | tail -1 | grep -q "state=success"; then
    echo "$1 did not succeed: see $log" >&2
    exit 1
  fi
}

if [ -n "$STACK" ]; then
  echo "==> the native stack: PostgreSQL, Redis, SeaweedFS (S3), MLflow server, Airflow on Celery (2 workers)"
  step $BIN/python scripts/stack.py up churn_daily_monitoring "$DEMO_START" "$DEMO_END" >>"$log"
  eval "$($BIN/python scripts/stack.py env)"  # every command below is a client of the stack
else
  echo "==> Airflow metadata DB in $AIRFLOW_HOME"
  step $BIN/airflow db migrate >>"$log" 2>&1
fi
echo "==> churn_bootstrap (airflow dags test): reference data -> XGBoost -> MLflow -> champion"
dag_test churn_bootstrap
$BIN/churnguard status --require-champion | grep "@champion"
echo "==> churn_failure_model_training (airflow dags test): $DEMO_TRAJECTORIES simulated trajectories -> failure-model"
dag_test churn_failure_model_training -c "{\"n_trajectories\": $DEMO_TRAJECTORIES}"
echo "==> simulating $DEMO_DAYS daily batches from $DEMO_START ($DEMO_SCENARIO from $DEMO_ONSET, intensity $DEMO_INTENSITY)"
step $BIN/churnguard simulate --start "$DEMO_START" --days "$DEMO_DAYS" --scenario "$DEMO_SCENARIO" \
  --onset "$DEMO_ONSET" --intensity "$DEMO_INTENSITY" --seed "$DEMO_SEED" >>"$log" 2>&1
if [ -z "$STACK" ]; then
  echo "==> starting Airflow (api-server, scheduler, dag-processor, triggerer) and MLflow; backfill queued"
  step $BIN/python scripts/airflow_stack.py start churn_daily_monitoring "$DEMO_START" "$DEMO_END" >>"$log"
fi
# The UI is worth opening while the backfill runs: its URL and login as soon as the api-server answers.
echo "==> the Airflow UI (the backfill below runs for minutes: watch it there; the timeline follows it)"
step $BIN/python scripts/airflow_stack.py urls
echo "==> churn_daily_monitoring: backfill $DEMO_START .. $DEMO_END through the scheduler"
step $BIN/python scripts/airflow_stack.py follow churn_daily_monitoring
echo
$BIN/churnguard timeline
echo
echo "Full log: $log"
$BIN/python scripts/airflow_stack.py urls --final
