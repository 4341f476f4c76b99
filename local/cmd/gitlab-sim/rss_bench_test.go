package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkBinary100k builds gitlab-sim, serves a 100,000-project instance and sweeps
// it the way a scan would (keyset listing of every project, 10,000 project details
// with statistics, counting requests, the whole truth), without faults and with a 1%
// error rate (the fault replay table in use, 5xx retried). It reports the process's resident memory from
// /proc/<pid>/status and the client-side latency of a project detail.
func BenchmarkBinary100k(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc to read the resident set size")
	}
	bin := filepath.Join(b.TempDir(), "gitlab-sim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"faults=off", nil},
		{"faults=on", []string{"--error-rate", "0.01"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				sweep(b, bin, tc.flags...)
			}
		})
	}
}

func sweep(b *testing.B, bin string, flags ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{"--addr", "127.0.0.1:0", "--seed", "1", "--groups", "2000", "--projects", "100000"}, flags...)
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait() // killed by cancel: the exit error is expected
	}()
	sc := bufio.NewScanner(stderr)
	if !sc.Scan() {
		b.Fatalf("no start line: %v", sc.Err())
	}
	var start struct {
		Addr    string `json:"addr"`
		BuildMS int64  `json:"build_ms"`
	}
	if err := json.Unmarshal(sc.Bytes(), &start); err != nil {
		b.Fatalf("start line %q: %v", sc.Text(), err)
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	base := "http://" + start.Addr
	pid := cmd.Process.Pid
	rssStart := procStatus(b, pid, "VmRSS")

	client := &http.Client{Timeout: 10 * time.Second}
	requests := 0
	get := func(path string) (*http.Response, []byte) {
		for {
			req, _ := http.NewRequest(http.MethodGet, base+path, nil)
			req.Header.Set("PRIVATE-TOKEN", "sim-token")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
			requests++
			if resp.StatusCode < 500 { // retry the injected 5xx
				return resp, body
			}
		}
	}

	// Every project through keyset pagination.
	var ids []int64
	next := "/api/v4/projects?pagination=keyset&order_by=id&sort=asc&per_page=100"
	for next != "" {
		resp, body := get(next)
		var page []struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			b.Fatalf("page: %v", err)
		}
		for _, p := range page {
			ids = append(ids, p.ID)
		}
		next = ""
		if link := resp.Header.Get("Link"); strings.Contains(link, `rel="next"`) {
			u := link[strings.Index(link, "<")+1 : strings.Index(link, ">")]
			next = u[strings.Index(u, "/api/v4"):]
		}
	}
	if len(ids) != 100_000 {
		b.Fatalf("listed %d projects", len(ids))
	}
	// Project details and a few counting requests per project.
	lat := make([]time.Duration, 0, 10_000)
	for k := 0; k < len(ids); k += 10 {
		t0 := time.Now()
		get(fmt.Sprintf("/api/v4/projects/%d?statistics=true", ids[k]))
		lat = append(lat, time.Since(t0))
		get(fmt.Sprintf("/api/v4/projects/%d/repository/branches?per_page=1", ids[k]))
		get(fmt.Sprintf("/api/v4/projects/%d/repository/tree", ids[k]))
	}
	rssSweep := procStatus(b, pid, "VmRSS")
	get("/-/sim/truth")
	rssEnd := procStatus(b, pid, "VmRSS")
	peak := procStatus(b, pid, "VmHWM")

	slices.Sort(lat)
	b.ReportMetric(float64(start.BuildMS), "build-ms")
	b.ReportMetric(rssStart, "rss-start-MiB")
	b.ReportMetric(rssSweep, "rss-after-sweep-MiB")
	b.ReportMetric(rssEnd, "rss-after-truth-MiB")
	b.ReportMetric(peak, "rss-peak-MiB")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "detail-p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "detail-p99-µs")
	b.ReportMetric(float64(requests), "requests")
}

// procStatus reads a kB field of /proc/<pid>/status, in MiB.
func procStatus(b *testing.B, pid int, field string) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				b.Fatalf("%s: %v", line, err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
