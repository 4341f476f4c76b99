#!/usr/bin/env bash
# make local-down: stops what make local-up started, in reverse order, and removes their
# pid files. Logs and data stay in ./.local/ (make clean removes them). Only processes
# recorded in pid files are stopped, never others by name.
#
# Environment: LOCAL_DIR [.local], as for up.sh.
set -euo pipefail
# shellcheck source=local/stack/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -d $STATE ]] || {
  echo "local stack: nothing to stop ($STATE does not exist)"
  exit 0
}
lock

# How long each may take after SIGTERM before it is killed: the agent stops its run at
# the next checkpoint within 25 s.
grace() {
  case $1 in
  discovery-agent) echo 35 ;;
  prometheus) echo 20 ;;
  *) echo 10 ;;
  esac
}

failed=0
for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
  c=${COMPONENTS[i]}
  if ! running "$c"; then
    [[ -f $STATE/$c.pid ]] && echo "$c: not running (stale pid file removed)"
    rm -f "$STATE/$c.pid" "$STATE/$c.prog"
    continue
  fi
  p=$(pid "$c")
  kill -TERM "$p" 2>/dev/null || true
  deadline=$((SECONDS + $(grace "$c")))
  while running "$c" && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if running "$c"; then
    echo "$c: still running $(grace "$c")s after SIGTERM: killing pid $p" >&2
    kill -KILL "$p" 2>/dev/null || true
    sleep 0.5
  fi
  if running "$c"; then
    echo "$c: pid $p would not stop" >&2
    failed=1
    continue
  fi
  rm -f "$STATE/$c.pid" "$STATE/$c.prog"
  echo "$c: stopped"
done
exit $failed
