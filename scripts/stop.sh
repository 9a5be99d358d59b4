#!/usr/bin/env bash
# make stop: end every process a make target started (PID files under $CHURNGUARD_HOME/run), each with every
# process below it, whatever its process group (scripts/clean_stop.py). Extra arguments: `--below PID` also ends
# every process below PID (demo.sh's trap: the step that was running).
set -u
here=$(dirname "$0")
python=$here/../.venv/bin/python
[ -x "$python" ] || python=python3  # the standard library is enough
exec "$python" "$here/clean_stop.py" stop "${CHURNGUARD_HOME:-$here/../.churnguard}/run" "$@"
