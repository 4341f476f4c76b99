#!/usr/bin/env bash
# make bench: run the benchmarks and write every figure into docs/BENCHMARKS.md. The
# simulator's section (server time, RSS of the binary at 100k projects) comes from its
# own script; the rest from benchdoc's generated section.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.local/bench
mkdir -p "$out"
raw="$out/go-bench.txt"
: >"$raw"

bench() { # package, benchtime, [pattern]
  go test -run '^$' -bench "${3:-.}" -benchmem -benchtime "$2" "$1" | tee -a "$raw"
}
bench ./local/runner/ 3x 'BenchmarkScan|BenchmarkIncremental'
bench ./local/runner/ 1x BenchmarkPace # ~5 min: estates sized for 30-50 s a case
bench ./internal/dynamostore/ 3x
bench ./internal/filestore/ 2000x
bench ./internal/budget/ 1s
bench ./internal/export/ 3x
bench ./internal/ciconfig/ 1s
bench ./internal/metrics/ 1s

go run ./local/cmd/benchdoc -in "$raw" -doc docs/BENCHMARKS.md
local/cmd/gitlab-sim/benchmarks.sh
