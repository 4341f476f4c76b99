#!/usr/bin/env bash
# make local-up: the docker-compose stack without Docker. Starts the GitLab simulator, the
# agent (`discovery-agent serve`), Debian's Prometheus and Alertmanager, and the
# alert-webhook that logs what Alertmanager sends, all on 127.0.0.1 on the runbook's
# ports, with pid files, logs and data under ./.local/. Idempotent: what already runs
# is left alone. Grafana is not packaged in Debian: use docker-compose for it.
#
# Environment (defaults in brackets):
#   BIN [bin]  LOCAL_DIR [.local]  LOCAL_WAIT_SECONDS [30]
#   LOCAL_SIM_PORT [8929]  LOCAL_HEALTH_PORT [8080]  LOCAL_METRICS_PORT [9090]
#   LOCAL_PROMETHEUS_PORT [9091]  LOCAL_ALERTMANAGER_PORT [9093]  LOCAL_WEBHOOK_PORT [5001]
#   LOCAL_SIM_GROUPS [20]  LOCAL_SIM_PROJECTS [500]  LOCAL_SIM_RATE_LIMIT_RPM [6000]
#   LOCAL_FIRST_RUN [1]: start a run as soon as a newly started agent is ready
#   the agent's own RATE_LIMIT_RPM [3000], CONCURRENT_REQUESTS, MAX_API_CALLS,
#   MAX_PER_PROJECT_CALLS, REQUEST_TIMEOUT, FULL_SCAN_EVERY, READINESS_THRESHOLDS,
#   SCAN_SCHEDULE [1h], LOG_LEVEL, GOMEMLIMIT are passed on when set.
set -euo pipefail
# shellcheck source=local/stack/lib.sh
source "$(dirname "$0")/lib.sh"

WAIT=${LOCAL_WAIT_SECONDS:-30}
SIM_TOKEN=sim-token # the simulator's fixed token, not a secret

# Programs ------------------------------------------------------------------------------

need() { command -v "$1" >/dev/null || die "$1 not found: $2"; }
first() { # first NAME... prints the first program found
  local n
  for n in "$@"; do
    if command -v "$n" >/dev/null; then
      command -v "$n"
      return 0
    fi
  done
  return 1
}
need curl "apt-get install curl"
PROMETHEUS=$(first prometheus) || die "prometheus not found: apt-get install prometheus"
PROMTOOL=$(first promtool) || die "promtool not found: apt-get install prometheus"
ALERTMANAGER=$(first prometheus-alertmanager alertmanager) || die "alertmanager not found: apt-get install prometheus-alertmanager"
AMTOOL=$(first amtool) || die "amtool not found: apt-get install prometheus-alertmanager"
for b in discovery-agent gitlab-sim alert-webhook; do
  [[ -x $BIN/$b ]] || die "$BIN/$b not found: run make build and go build -o $BIN/ ./local/alert-webhook"
done

lock
mkdir -p "$STATE/data" "$STATE/exports" "$STATE/prometheus" "$STATE/alertmanager"

# Ports ---------------------------------------------------------------------------------

declare -A PORTS=(
  [alert-webhook]="$WEBHOOK_PORT:LOCAL_WEBHOOK_PORT"
  [alertmanager]="$ALERTMANAGER_PORT:LOCAL_ALERTMANAGER_PORT"
  [gitlab-sim]="$SIM_PORT:LOCAL_SIM_PORT"
  [discovery-agent]="$HEALTH_PORT:LOCAL_HEALTH_PORT $METRICS_PORT:LOCAL_METRICS_PORT"
  [prometheus]="$PROMETHEUS_PORT:LOCAL_PROMETHEUS_PORT"
)

# holder PORT names the process listening on a port, when ss may say.
holder() {
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*))' | head -n1 || true
}

# Debian's prometheus package starts a system service on :9090, the agent's metrics port.
# It is stopped, not killed: `systemctl disable prometheus` keeps it off for good.
free_debian_prometheus() {
  local port=$1
  command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null || return 0
  echo "port $port is taken by Debian's prometheus service: systemctl stop prometheus"
  systemctl stop prometheus || die "could not stop the prometheus service (run: sudo systemctl stop prometheus)"
  for _ in $(seq 1 50); do
    listening "$port" || return 0
    sleep 0.1
  done
}

# Check every port before starting anything, so that a taken port leaves nothing
# half-started.
for c in "${COMPONENTS[@]}"; do
  running "$c" && continue
  for pv in ${PORTS[$c]}; do
    port=${pv%%:*} var=${pv#*:}
    if listening "$port" && [[ $port == "$METRICS_PORT" ]]; then
      free_debian_prometheus "$port"
    fi
    if listening "$port"; then
      h=$(holder "$port")
      die "port $port ($c) is already in use${h:+ by $h}: stop that process or choose another port with $var=..."
    fi
  done
done

# Configuration -------------------------------------------------------------------------

# Prometheus and Alertmanager run the monitoring/ files with this stack's ports, and the
# rule file by absolute path (it is relative to the configuration file).
render() { # render SRC DST SED-ARGS...; the greps after it check the substitutions took
  local src=$1 dst=$2
  shift 2
  sed "$@" "$src" >"$dst.tmp"
  mv "$dst.tmp" "$dst"
}
render monitoring/prometheus.local.yml "$STATE/prometheus.yml" \
  -e 's/"127\.0\.0\.1:9090"/"127.0.0.1:@METRICS@"/' \
  -e 's/"127\.0\.0\.1:9091"/"127.0.0.1:@PROMETHEUS@"/' \
  -e 's/"127\.0\.0\.1:9093"/"127.0.0.1:@ALERTMANAGER@"/' \
  -e "s|^  - alerts\.yml\$|  - $ROOT/monitoring/alerts.yml|"
sed -i -e "s/@METRICS@/$METRICS_PORT/" -e "s/@PROMETHEUS@/$PROMETHEUS_PORT/" \
  -e "s/@ALERTMANAGER@/$ALERTMANAGER_PORT/" "$STATE/prometheus.yml"
for want in "127.0.0.1:$METRICS_PORT" "127.0.0.1:$PROMETHEUS_PORT" "127.0.0.1:$ALERTMANAGER_PORT" "$ROOT/monitoring/alerts.yml"; do
  grep -qF "$want" "$STATE/prometheus.yml" ||
    die "monitoring/prometheus.local.yml no longer has the expected targets (missing $want): update local/stack/up.sh"
done
render monitoring/alertmanager.yml "$STATE/alertmanager.yml" \
  -e "s|http://127\.0\.0\.1:5001/|http://127.0.0.1:$WEBHOOK_PORT/|"
grep -qF "http://127.0.0.1:$WEBHOOK_PORT/alerts" "$STATE/alertmanager.yml" ||
  die "monitoring/alertmanager.yml no longer sends to http://127.0.0.1:5001/alerts: update local/stack/up.sh"

"$PROMTOOL" check config "$STATE/prometheus.yml" >"$STATE/promtool.log" 2>&1 ||
  die "promtool rejects $STATE/prometheus.yml: $(cat "$STATE/promtool.log")"
"$AMTOOL" check-config "$STATE/alertmanager.yml" >"$STATE/amtool.log" 2>&1 ||
  die "amtool rejects $STATE/alertmanager.yml: $(cat "$STATE/amtool.log")"

# Processes -----------------------------------------------------------------------------

STARTED=()

# program COMMAND... prints the name the started process will run under: env execs the
# command after its assignments.
program() {
  if [[ $(basename -- "$1") == env ]]; then
    shift
    while [[ $1 == -* || $1 == *=* ]]; do shift; done
  fi
  basename -- "$1"
}

# start NAME READY-URL [CURL-ARGS...] -- COMMAND...: starts COMMAND in the background with
# its pid file and log, then waits until READY-URL answers 2xx.
start() {
  local name=$1 url=$2
  shift 2
  local curl_args=()
  while [[ $1 != -- ]]; do
    curl_args+=("$1")
    shift
  done
  shift
  if running "$name"; then
    echo "$name: already running (pid $(pid "$name"))"
    return 0
  fi
  local log="$STATE/$name.log"
  echo "--- $(date -u +%Y-%m-%dT%H:%M:%SZ) local-up starts $name" >>"$log"
  program "$@" >"$STATE/$name.prog"
  nohup "$@" >>"$log" 2>&1 </dev/null 9>&- &
  local p=$!
  echo "$p" >"$STATE/$name.pid"
  local deadline=$((SECONDS + WAIT))
  until curl -fsS -o /dev/null --max-time 2 "${curl_args[@]}" "$url" 2>/dev/null; do
    if ! alive "$p"; then
      rm -f "$STATE/$name.pid"
      die "$name exited while starting; last lines of $log:
$(tail -n 15 "$log")"
    fi
    if ((SECONDS >= deadline)); then
      die "$name not ready at $url after ${WAIT}s (pid $p still running; stop with make local-down); last lines of $log:
$(tail -n 15 "$log")"
    fi
    sleep 0.2
  done
  STARTED+=("$name")
  echo "$name: started (pid $p, log $log)"
}

start alert-webhook "http://127.0.0.1:$WEBHOOK_PORT/health" -- \
  "$BIN/alert-webhook" --addr "127.0.0.1:$WEBHOOK_PORT"

start alertmanager "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" -- \
  "$ALERTMANAGER" --config.file="$STATE/alertmanager.yml" --storage.path="$STATE/alertmanager" \
  --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" --cluster.listen-address=

start gitlab-sim "http://127.0.0.1:$SIM_PORT/api/v4/version" -H "PRIVATE-TOKEN: $SIM_TOKEN" -- \
  "$BIN/gitlab-sim" --addr "127.0.0.1:$SIM_PORT" --seed 1 --groups "${LOCAL_SIM_GROUPS:-20}" \
  --projects "${LOCAL_SIM_PROJECTS:-500}" --rate-limit-rpm "${LOCAL_SIM_RATE_LIMIT_RPM:-6000}" --now today

# The agent gets a clean environment: a GITLAB_TOKEN or ROOT_GROUPS of the caller's shell
# must not leak into a stack that scans the simulator.
agent_env=(
  PATH="$PATH" HOME="${HOME:-/}"
  GITLAB_URL="http://127.0.0.1:$SIM_PORT" GITLAB_TOKEN="$SIM_TOKEN"
  DATA_DIR="$STATE/data" EXPORT_DIR="$STATE/exports"
  HEALTH_ADDR="127.0.0.1:$HEALTH_PORT" METRICS_ADDR="127.0.0.1:$METRICS_PORT"
  SCAN_SCHEDULE="${SCAN_SCHEDULE:-1h}" RATE_LIMIT_RPM="${RATE_LIMIT_RPM:-3000}"
)
for v in CONCURRENT_REQUESTS MAX_API_CALLS MAX_PER_PROJECT_CALLS REQUEST_TIMEOUT FULL_SCAN_EVERY \
  READINESS_THRESHOLDS LOG_LEVEL GOMEMLIMIT; do
  if [[ -n ${!v:-} ]]; then agent_env+=("$v=${!v}"); fi
done
start discovery-agent "http://127.0.0.1:$HEALTH_PORT/health" -- \
  env -i "${agent_env[@]}" "$BIN/discovery-agent" serve

start prometheus "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" -- \
  "$PROMETHEUS" --config.file="$STATE/prometheus.yml" --storage.tsdb.path="$STATE/prometheus" \
  --storage.tsdb.retention.time=7d --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"

if [[ " ${STARTED[*]} " == *" discovery-agent "* && ${LOCAL_FIRST_RUN:-1} != 0 ]]; then
  # 202 starts a run, 409 means the store already has one active (resumed).
  answer=$(curl -sS -X POST "http://127.0.0.1:$HEALTH_PORT/runs") || die "POST /runs failed"
  echo "first run: $answer"
fi

cat <<EOF

local stack up (pid files, logs and data in $STATE/):
  health        http://127.0.0.1:$HEALTH_PORT/health  (/health/ready, /health/live, POST /runs)
  metrics       http://127.0.0.1:$METRICS_PORT/metrics
  prometheus    http://127.0.0.1:$PROMETHEUS_PORT
  alertmanager  http://127.0.0.1:$ALERTMANAGER_PORT  (notifications logged in $STATE/alert-webhook.log)
  gitlab-sim    http://127.0.0.1:$SIM_PORT/api/v4  (token $SIM_TOKEN)
  grafana       not packaged in Debian: docker-compose up -d (docker-compose.yml) has it on :3000
exports: $STATE/exports/latest; stop with make local-down
EOF
