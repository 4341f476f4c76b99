#!/usr/bin/env bash
# make demo: a full local discovery against the simulator, exports left in ./exports.
# The data is kept between runs: a second `make demo` first deletes DEMO_DELETE of the
# projects in the simulator, then changes DEMO_CHANGE of them (new commits, pipelines,
# merge requests) and renames DEMO_RENAME of them, one day of work per earlier run, so
# its diff.json and report show what changed, what moved and what was removed since
# the last.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
ADDR=${SIM_ADDR:-127.0.0.1:8929}
NGROUPS=${DEMO_GROUPS:-40}
PROJECTS=${DEMO_PROJECTS:-3000}
CHANGE=${DEMO_CHANGE:-0.05}
RENAME=${DEMO_RENAME:-0.005}
DELETE=${DEMO_DELETE:-0.005}
STATE=.local/demo
mkdir -p "$STATE"
# Earlier demo runs over this data; each replays one simulator change (the simulator
# starts afresh every time).
runs=$(cat "$STATE/runs" 2>/dev/null || echo 0)
if [ ! -d "$STATE/data" ]; then runs=0; fi

"$BIN/gitlab-sim" --addr "$ADDR" --seed 1 --groups "$NGROUPS" --projects "$PROJECTS" \
  --rate-limit-rpm 120000 --now today >"$STATE/gitlab-sim.log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null || true; wait $sim 2>/dev/null || true' EXIT

ready=
for _ in $(seq 1 100); do
  if curl -fsS -H 'PRIVATE-TOKEN: sim-token' "http://$ADDR/api/v4/version" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 $sim 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "gitlab-sim did not start:" >&2; cat "$STATE/gitlab-sim.log" >&2; exit 1
fi
echo "simulator: http://$ADDR ($NGROUPS groups, $PROJECTS projects; log $STATE/gitlab-sim.log)"
for seed in $(seq 1 "$runs"); do
  curl -fsS -X POST -d "{\"share\":$CHANGE,\"seed\":$seed,\"rename\":$RENAME,\"delete\":$DELETE}" "http://$ADDR/-/sim/change" -o "$STATE/sim-change.json"
done
if [ "$runs" -gt 0 ]; then
  echo "run $((runs + 1)) over $STATE/data: deleted $DELETE, changed $CHANGE and renamed $RENAME of the projects in the simulator ($runs day(s) of work; $STATE/sim-change.json)"
fi

export GITLAB_URL="http://$ADDR" GITLAB_TOKEN=sim-token DATA_DIR="$STATE/data" EXPORT_DIR=./exports
export RATE_LIMIT_RPM=${RATE_LIMIT_RPM:-100000} CONCURRENT_REQUESTS=${CONCURRENT_REQUESTS:-16}
# The scan's progress shows live: on a terminal its progress bar (and any warning), else
# its log lines, which scan.log keeps too. Its summary follows on stdout.
if [ -t 2 ]; then
  log="the terminal"
  "$BIN/discovery-agent" scan || { echo "scan failed (exit $?)" >&2; exit 1; }
else
  log=$STATE/scan.log
  status=0
  "$BIN/discovery-agent" scan 2> >(tee "$log" >&2) || status=$?
  if [ "$status" -ne 0 ]; then echo "scan failed (exit $status); log: $log" >&2; exit 1; fi
fi
echo $((runs + 1)) >"$STATE/runs"

echo
curl -fsS "http://$ADDR/-/sim/stats" -o "$STATE/sim-stats.json" && echo "simulator stats: $STATE/sim-stats.json"
echo "scan log: $log; summary: exports/latest/summary.json; report: exports/latest/report.html; workbook: exports/latest/inventory.xlsx"
run_id=$(sed -n 's/^ *"run_id": "\(.*\)",$/\1/p' exports/latest/summary.json)
if [ -f "exports/runs/$run_id/diff.json" ]; then
  echo "since the last run (exports/latest/diff.json):"
  sed -n '/"counts"/{s/.*"counts":\({[^}]*}\).*/  \1/p;q}' exports/latest/diff.json
else
  echo "first run over $STATE/data: run make demo again to see what changes (rm -rf $STATE/data starts over)"
fi
