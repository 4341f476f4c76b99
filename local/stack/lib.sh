# shellcheck shell=bash
# Shared by up.sh and down.sh: where the local stack lives and how to tell whether one of
# its processes is running. Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1

# Relative paths are relative to the repository root, as in the Makefile.
STATE=${LOCAL_DIR:-.local}
BIN=${BIN:-bin}

SIM_PORT=${LOCAL_SIM_PORT:-8929}
HEALTH_PORT=${LOCAL_HEALTH_PORT:-8080}
METRICS_PORT=${LOCAL_METRICS_PORT:-9090}
PROMETHEUS_PORT=${LOCAL_PROMETHEUS_PORT:-9091}
ALERTMANAGER_PORT=${LOCAL_ALERTMANAGER_PORT:-9093}
WEBHOOK_PORT=${LOCAL_WEBHOOK_PORT:-5001}

# The components in start order; down.sh stops them in reverse.
COMPONENTS=(alert-webhook alertmanager gitlab-sim discovery-agent prometheus)

die() {
  echo "local stack: $*" >&2
  exit 1
}

# pid NAME prints the pid recorded for a component, if any.
pid() {
  local f="$STATE/$1.pid"
  [[ -f $f ]] && tr -dc '0-9' <"$f"
}

# alive PID succeeds while the process exists and has not exited (a zombie has).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# running NAME succeeds when the component's recorded process is alive and is still the
# program that was started: a recycled pid or a zombie does not count.
running() {
  local p
  p=$(pid "$1") || return 1
  [[ -n $p ]] && alive "$p" || return 1
  local argv0
  argv0=$(tr '\0' '\n' <"/proc/$p/cmdline" | head -n1)
  [[ $(basename -- "$argv0") == "$(cat "$STATE/$1.prog" 2>/dev/null)" ]]
}

# listening PORT succeeds when something accepts connections on 127.0.0.1:PORT.
listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# lock serialises up.sh and down.sh. The lock's descriptor must not reach the started
# processes (start closes it), or they would hold it for their lifetime.
lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/stack.lock"
  if command -v flock >/dev/null && ! flock -w 60 9; then
    die "another local-up or local-down is running ($STATE/stack.lock)"
  fi
}
