#!/usr/bin/env bash
# make stop: end every process a make target started (PID files under $CHURNGUARD_HOME/run).
set -u
run="${CHURNGUARD_HOME:-$(dirname "$0")/../.churnguard}/run"
[ -d "$run" ] || exit 0
pids=()
for pidfile in "$run"/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  # Each service was started in its own process group: end the whole group, children included.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  pids+=("$pid")
  rm -f "$pidfile"
  echo "stopped $(basename "$pidfile" .pid) ($pid)"
done
# All were told at once, so a stack of many services stops in one grace period, not one each.
for _ in $(seq 50); do
  alive=0
  # a group counts while it has a live member: exited children of a still-running parent (a test) are zombies
  for pid in "${pids[@]}"; do
    ps -e -o pgid=,stat= | awk -v g="$pid" '$1 == g && $2 !~ /^Z/ {f = 1} END {exit !f}' && alive=1
  done
  [ "$alive" = 0 ] && break
  sleep 0.2
done
for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null; done
exit 0
