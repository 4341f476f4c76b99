package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/gl2gh/discovery-agent/local/runner
cpu: AMD EPYC
BenchmarkScan/clean-2         	       1	7667278839 ns/op	        11.64 calls/project	      2621 export-B/project
some log line from a benchmark
PASS
pkg: github.com/gl2gh/discovery-agent/internal/budget
BenchmarkWait-2   	18000000	        63.1 ns/op	       0 B/op	       0 allocs/op
`

func TestParseAndUpdate(t *testing.T) {
	pkgs, cpu, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 || cpu != "AMD EPYC" {
		t.Fatalf("parsed %d packages, cpu %q", len(pkgs), cpu)
	}
	if r := pkgs[0].results[0]; r.name != "BenchmarkScan/clean" || r.metrics["calls/project"] != "11.64" {
		t.Fatalf("first result %+v", r)
	}
	doc := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(doc, []byte("# Benchmarks\n\nHand-written notes stay.\n"), 0o644)
	for range 2 { // the second update replaces the section instead of adding one
		if err := update(doc, render(pkgs, cpu)); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(doc)
	s := string(b)
	if strings.Count(s, begin) != 1 || !strings.Contains(s, "Hand-written notes stay.") {
		t.Fatalf("document:\n%s", s)
	}
	if !strings.Contains(s, "| BenchmarkScan/clean | 1 | 7667278839 | 11.64 | 2621 |") {
		t.Errorf("table row missing:\n%s", s)
	}
}
