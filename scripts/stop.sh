#!/usr/bin/env bash
# make stop: end every process a make target started (PID files under $CHURNGUARD_HOME/run).
set -u
run="${CHURNGUARD_HOME:-$(dirname "$0")/../.churnguard}/run"
[ -d "$run" ] || exit 0
for pidfile in "$run"/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  # Each service was started in its own process group: end the whole group, children included.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL -- "-$pid" 2>/dev/null
  rm -f "$pidfile"
  echo "stopped $(basename "$pidfile" .pid) ($pid)"
done
