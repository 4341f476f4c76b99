#!/usr/bin/env bash
# make bench: run the benchmarks, measure the simulator's memory at 100k projects, and
# write every figure into docs/BENCHMARKS.md (generated section).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
out=.local/bench
mkdir -p "$out"
raw="$out/go-bench.txt"
: >"$raw"

bench() { # package, benchtime, [pattern]
  go test -run '^$' -bench "${3:-.}" -benchmem -benchtime "$2" "$1" | tee -a "$raw"
}
bench ./local/runner/ 3x BenchmarkScan
bench ./internal/gitlabsim/ 1s
bench ./internal/gitlab/ 1s
bench ./internal/filestore/ 2000x
bench ./internal/budget/ 1s
bench ./internal/export/ 3x
bench ./internal/ciconfig/ 1s
bench ./internal/metrics/ 1s

# The simulator binary's resident memory serving a 100k-project instance.
addr=127.0.0.1:${BENCH_SIM_PORT:-18929}
"$BIN/gitlab-sim" --addr "$addr" --seed 1 --groups 2000 --projects 100000 >"$out/sim-100k.log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -fsS -H 'PRIVATE-TOKEN: sim-token' "http://$addr/api/v4/version" >/dev/null 2>&1 && break
  sleep 0.1
done
# Touch the API so the figure is of a serving process, not an idle one.
for p in 1 500 50000 99999; do
  curl -fsS -H 'PRIVATE-TOKEN: sim-token' "http://$addr/api/v4/projects/$p?statistics=true" >/dev/null
done
curl -fsS -H 'PRIVATE-TOKEN: sim-token' "http://$addr/api/v4/groups/1/projects?per_page=100" >/dev/null
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$sim/status")
{
  echo "pkg: local/cmd/gitlab-sim (binary, measured by local/bench.sh)"
  echo "BenchmarkGitLabSimRSS/projects=100000 1 $((rss_kb / 1024)) RSS-MiB"
} | tee -a "$raw"

go run ./local/cmd/benchdoc -in "$raw" -doc docs/BENCHMARKS.md
