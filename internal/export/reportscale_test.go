package export

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// scaleEstate is n projects in 5,000 groups (200 top-level groups of 25), with owners
// from a pool of 3,000 users: 1 to 3 each (a lead per group, the others scattered
// over the estate, which makes the most (group, owner) pairs to count), 3% none, 5%
// unknown (the members step failed for 2 in 5 of those).
func scaleEstate(n int) ([]inventory.Group, []inventory.Project) {
	const tops, perTop = 200, 25
	var groups []inventory.Group
	for t := range tops {
		root := int64(t*perTop + 1)
		groups = append(groups, inventory.Group{ID: root, FullPath: fmt.Sprintf("org-%03d", t), ScanStatus: inventory.StatusComplete})
		for s := 1; s < perTop; s++ {
			groups = append(groups, inventory.Group{ID: root + int64(s), ParentID: root,
				FullPath: fmt.Sprintf("org-%03d/team-%02d", t, s), ScanStatus: inventory.StatusComplete})
		}
	}
	projects := make([]inventory.Project, 0, n)
	for i := range n {
		g := groups[i%len(groups)]
		p := project(int64(i+1), fmt.Sprintf("%s/service-%06d", g.FullPath, i), int64(i%5000)<<20)
		p.GroupID, p.GroupFullPath, p.NamespaceKind = g.ID, g.FullPath, "group"
		p.Features.HasCI = new(i%2 == 0)
		if i%2 == 0 {
			p.Features.CI = &inventory.CI{Jobs: i % 30, Stages: 3, Constructs: []string{"needs", "rules"}, Complexity: i % 100}
		}
		if i%500 == 0 {
			p.Statistics.RepositorySize = 41 << 30
		}
		switch {
		case i%100 < 3:
			p.Owners = []string{}
		case i%100 < 8:
			p.Owners = nil
			if i%100 < 5 {
				p.Errors = []inventory.ScanError{{Step: "members", Status: 403, Message: "403 Forbidden"}}
				p.ScanStatus = inventory.StatusPartial
			}
		default:
			p.Owners = []string{fmt.Sprintf("lead-%03d", g.ID%(tops*3))} // a group lead
			for k := range i % 3 {
				p.Owners = append(p.Owners, "user-"+strconv.Itoa(int(uint32(i*2654435761+k*40503)%3000))) // scattered: few share a group
			}
		}
		r := readiness.Assess(p, gei)
		p.Readiness = &r
		projects = append(projects, p)
	}
	return groups, projects
}

// heapPeak samples the live heap until stopped and returns its peak over base.
func heapPeak() (stop func() (peak uint64)) {
	runtime.GC()
	runtime.GC() // the first runs finalizers that free more
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapAlloc
	done := make(chan struct{})
	var wg sync.WaitGroup
	var peak uint64
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var s runtime.MemStats
			runtime.ReadMemStats(&s)
			peak = max(peak, s.HeapAlloc)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak - min(peak, base)
	}
}

// TestReportScale measures the report at a size set by REPORT_SCALE_PROJECTS (e.g.
// 100000), once, and logs the figures docs/BENCHMARKS.md records: the whole export
// (Write, whose report is one of its files; REPORT_SCALE_OUT names a file to copy its
// report to), then the report alone (aggregating and rendering). It asserts only what does not depend on the machine: the report stays
// bounded, whatever the estate.
func TestReportScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("REPORT_SCALE_PROJECTS"))
	if n <= 0 {
		t.Skip("REPORT_SCALE_PROJECTS not set (e.g. 100000)")
	}
	groups, projects := scaleEstate(n)
	src := &memSource{groups: map[string][]inventory.Group{"big": groups},
		projects: map[string][]inventory.Project{"big": projects}, calls: map[string]int64{"big": int64(n) * 6}}
	dir := t.TempDir()

	var before, after runtime.MemStats
	stop := heapPeak()
	runtime.ReadMemStats(&before)
	start := time.Now()
	if _, err := Write(t.Context(), src, DirSink{Dir: dir}, testRun("big"), nil); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	runtime.ReadMemStats(&after)
	peak := stop()
	report, err := os.Stat(filepath.Join(dir, "runs/big", ReportHTML))
	if err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("REPORT_SCALE_OUT"); out != "" { // to open in a browser
		page, err := os.ReadFile(filepath.Join(dir, "runs/big", ReportHTML))
		if err == nil {
			err = os.WriteFile(out, page, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var files int64
	entries, _ := os.ReadDir(filepath.Join(dir, "runs/big"))
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			files += info.Size()
		}
	}
	t.Logf("Write, %d projects, %d groups: %v; peak heap over the source %.1f MiB; allocated %.0f MiB in %d allocations; files %.1f MB; report.html %d bytes",
		n, len(groups), wall.Round(time.Millisecond), mebibytes(peak), mebibytes(after.TotalAlloc-before.TotalAlloc), after.Mallocs-before.Mallocs,
		float64(files)/1e6, report.Size())

	// The report alone: the aggregate the export keeps, then the page; with the
	// owners, then without (INCLUDE_MEMBERS off), for what owners cost.
	for _, owners := range []bool{true, false} {
		if !owners {
			for i := range projects {
				projects[i].Owners = nil
			}
		}
		w, page := measureReport(t, n, groups, projects, "owners "+strconv.FormatBool(owners))
		// Bounded: the rows are the report's caps, not the estate's size.
		rows := strings.Count(page, "<tr>")
		if limit := maxFlagged + maxLargest + maxGroups + 2*maxTopGroups + maxDependents + len(w.agg.findings) + 10; rows > limit {
			t.Errorf("the report has %d table rows for %d projects, more than its caps allow (%d)", rows, n, limit)
		}
	}
}

// measureReport aggregates projects as the export does and renders the report,
// logging its time, heap and size.
func measureReport(t *testing.T, n int, groups []inventory.Group, projects []inventory.Project, label string) (*writer, string) {
	t.Helper()
	var before, after runtime.MemStats
	stop := heapPeak()
	runtime.ReadMemStats(&before)
	start := time.Now()
	w := &writer{run: testRun("big"), agg: newAggregate()}
	w.agg.asOf = t0
	for _, g := range groups {
		w.agg.addGroup(g)
	}
	for i := range projects {
		p := projects[i]
		normalize(&p)
		w.agg.addProject(&p)
	}
	w.summary = w.agg.summary(w.run, int64(n)*6, t1)
	var page strings.Builder
	if err := writeReport(&page, w.report(t1)); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	runtime.ReadMemStats(&after)
	peak := stop()
	runtime.GC() // what the aggregate holds once the page is rendered
	runtime.GC()
	var held runtime.MemStats
	runtime.ReadMemStats(&held)
	runtime.KeepAlive(w)
	t.Logf("report alone (aggregate + render), %s: %v; peak heap %.1f MiB, aggregate %.1f MiB; allocated %.0f MiB in %d allocations; %d bytes",
		label, wall.Round(time.Millisecond), mebibytes(peak), mebibytes(held.HeapAlloc-min(held.HeapAlloc, before.HeapAlloc)),
		mebibytes(after.TotalAlloc-before.TotalAlloc), after.Mallocs-before.Mallocs, page.Len())
	return w, page.String()
}

func mebibytes(b uint64) float64 { return float64(b) / (1 << 20) }
