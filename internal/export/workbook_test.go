package export

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// workbookSource is a run whose text cells look like formulas and whose project has
// findings, unknown counts and unknown statistics.
func workbookSource() *memSource {
	evil := project(2, "acme/=1+1", 1<<30)
	evil.Name = "=HYPERLINK(\"http://x\",\"y\")"
	evil.Readiness.Findings = []inventory.Finding{
		{Code: "too_big", Severity: "blocker", Message: "+cmd|' /C calc'!A0", Remediation: "@SUM(1)"},
		{Code: "webhooks", Severity: "warning", Message: "-2+3", Remediation: "recreate"},
	}
	unknown := project(3, "acme/unknown", 1)
	unknown.Statistics = nil
	unknown.Counts.Webhooks = nil
	return newSource("r1", project(1, "acme/a", 10), evil, unknown)
}

func TestWorkbook(t *testing.T) {
	dir, _ := writeDir(t, workbookSource(), testRun("r1"), nil)
	path := filepath.Join(dir, "latest", InventoryXLSX)
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	if got, want := f.GetSheetList(), []string{sheetSummary, sheetProjects, sheetGroups, sheetFindings, sheetDeps}; !slices.Equal(got, want) {
		t.Fatalf("sheets %v, want %v", got, want)
	}
	for _, s := range []struct {
		name   string
		header []string
		rows   int // data rows
	}{
		{sheetProjects, projectsHeader, 3},
		{sheetGroups, groupsHeader, 1},
		{sheetFindings, header(findingColumns), 2},
		{sheetSummary, []string{"field", "value"}, -1},
	} {
		rows, err := f.GetRows(s.name)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 || !slices.Equal(rows[0], s.header) {
			t.Errorf("%s header %v, want %v", s.name, rows[0], s.header)
		}
		if s.rows >= 0 && len(rows)-1 != s.rows {
			t.Errorf("%s has %d data rows, want %d", s.name, len(rows)-1, s.rows)
		}
		panes, err := f.GetPanes(s.name)
		if err != nil || !panes.Freeze || panes.YSplit != 1 || panes.TopLeftCell != "A2" {
			t.Errorf("%s panes %+v (%v), want the header row frozen", s.name, panes, err)
		}
		tables, err := f.GetTables(s.name)
		last, _ := excelize.CoordinatesToCellName(len(s.header), max(len(rows), 2))
		if err != nil || len(tables) != 1 || tables[0].Range != "A1:"+last {
			t.Errorf("%s tables %+v (%v), want one over A1:%s (its header filters)", s.name, tables, err, last)
		}
		noFormulas(t, f, s.name, rows)
	}

	// Typed cells: B is path_with_namespace, A project_id; find the others by name.
	col := func(name string) string {
		i := slices.Index(projectsHeader, name)
		if i < 0 {
			t.Fatalf("no column %s", name)
		}
		c, _ := excelize.ColumnNumberToName(i + 1)
		return c
	}
	for _, c := range []struct {
		cell     string
		typ      excelize.CellType
		raw      string // the stored value
		formated string // as a reader shows it; "" when the same as raw
	}{
		{"A3", excelize.CellTypeUnset, "2", ""}, // a number: no type attribute
		{col("path_with_namespace") + "3", excelize.CellTypeInlineString, "acme/=1+1", ""},
		{col("name") + "3", excelize.CellTypeInlineString, `=HYPERLINK("http://x","y")`, ""},
		{col("archived") + "3", excelize.CellTypeBool, "0", "FALSE"},
		{col("repository_size_bytes") + "3", excelize.CellTypeUnset, strconv.Itoa(1 << 30), ""},
		{col("created_at") + "3", excelize.CellTypeUnset, "", "2023-05-02 12:00:00"},
		{col("repository_size_bytes") + "4", excelize.CellTypeUnset, "", ""}, // unknown: blank
		{col("webhooks") + "4", excelize.CellTypeUnset, "", ""},
	} {
		typ, err := f.GetCellType(sheetProjects, c.cell)
		if err != nil || typ != c.typ {
			t.Errorf("%s type %v (%v), want %v", c.cell, typ, err, c.typ)
		}
		raw, _ := f.GetCellValue(sheetProjects, c.cell, excelize.Options{RawCellValue: true})
		shown, _ := f.GetCellValue(sheetProjects, c.cell)
		if c.raw != "" && raw != c.raw {
			t.Errorf("%s raw %q, want %q", c.cell, raw, c.raw)
		}
		if want := cmpOr(c.formated, c.raw); shown != want {
			t.Errorf("%s shows %q, want %q", c.cell, shown, want)
		}
		if c.formated != "" && c.typ == excelize.CellTypeUnset {
			if _, err := strconv.ParseFloat(raw, 64); err != nil {
				t.Errorf("%s stores %q, want a date serial number", c.cell, raw)
			}
		}
	}
	msg, _ := f.GetCellValue(sheetFindings, "G2")
	if msg != "+cmd|' /C calc'!A0" {
		t.Errorf("findings message %q, want the text as is", msg)
	}
	summary, _ := f.GetRows(sheetSummary)
	if !slices.ContainsFunc(summary, func(r []string) bool { return len(r) == 2 && r[0] == "projects" && r[1] == "3" }) ||
		!slices.ContainsFunc(summary, func(r []string) bool { return len(r) == 2 && r[0] == "by_readiness.ready" }) {
		t.Errorf("summary sheet %v lacks projects = 3 or by_readiness.ready", summary)
	}
	readWithOpenpyxl(t, path)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// noFormulas fails on any cell of the sheet that carries a formula.
func noFormulas(t *testing.T, f *excelize.File, sheet string, rows [][]string) {
	t.Helper()
	width := 0
	for _, r := range rows {
		width = max(width, len(r))
	}
	for y := range rows {
		for x := range width {
			cell, _ := excelize.CoordinatesToCellName(x+1, y+1)
			if fm, err := f.GetCellFormula(sheet, cell); err != nil || fm != "" {
				t.Errorf("%s!%s has formula %q (%v)", sheet, cell, fm, err)
			}
		}
	}
}

// openpyxlCheck reads the workbook as a spreadsheet program would and prints what a
// failure is; it exits 1 on one.
const openpyxlCheck = `
import datetime, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
bad = []
if wb.sheetnames != ["summary", "projects", "groups", "findings", "dependencies"]:
    bad.append("sheets %r" % wb.sheetnames)
for ws in wb.worksheets:
    if ws.freeze_panes != "A2":
        bad.append("%s: freeze_panes %r" % (ws.title, ws.freeze_panes))
    if len(ws.tables) != 1:
        bad.append("%s: %d tables" % (ws.title, len(ws.tables)))
    for row in ws.iter_rows():
        for c in row:
            if c.data_type == "f":
                bad.append("%s!%s is a formula: %r" % (ws.title, c.coordinate, c.value))
ro = openpyxl.load_workbook(sys.argv[1], read_only=True)
for name, want in [("projects", 4), ("groups", 2), ("findings", 3), ("dependencies", 1)]:
    n = sum(1 for _ in ro[name].iter_rows(values_only=True))
    if n != want:
        bad.append("read-only %s: %d rows, want %d" % (name, n, want))
p = wb["projects"]
head = [c.value for c in p[1]]
r = {h: p.cell(row=3, column=i + 1).value for i, h in enumerate(head)}
for name, typ in [("project_id", int), ("name", str), ("archived", bool),
                  ("repository_size_bytes", int), ("created_at", datetime.datetime)]:
    if type(r[name]) is not typ:
        bad.append("projects %s = %r, want %s" % (name, r[name], typ.__name__))
if r["name"] != '=HYPERLINK("http://x","y")':
    bad.append("name %r" % r["name"])
print("\n".join(bad))
sys.exit(1 if bad else 0)
`

// readWithOpenpyxl checks the workbook with Python's openpyxl, a reader that shares
// no code with excelize. Without it the check is skipped, unless
// REQUIRE_INTEGRATION=1 (CI installs Debian's python3-openpyxl).
func readWithOpenpyxl(t *testing.T, path string) {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import openpyxl").Run(); err != nil {
		msg := fmt.Sprintf("openpyxl not importable by %s (Debian package python3-openpyxl): %v", python, err)
		if os.Getenv("REQUIRE_INTEGRATION") == "1" {
			t.Fatal(msg)
		}
		t.Log(msg + "; skipping the openpyxl check")
		return
	}
	out, err := exec.CommandContext(t.Context(), python, "-c", openpyxlCheck, path).CombinedOutput()
	if err != nil {
		t.Errorf("openpyxl: %v\n%s", err, strings.TrimSpace(string(out)))
	}
}

// BenchmarkWorkbook measures the workbook for a few thousand projects: its size per
// project, and the allocations of the whole Write (every export) per project.
func BenchmarkWorkbook(b *testing.B) {
	const n = 3000
	projects := make([]inventory.Project, n)
	for i := range projects {
		projects[i] = project(int64(i+1), fmt.Sprintf("acme/g%d/p%d", i%40, i), int64(i)<<20)
		projects[i].Readiness.Findings = []inventory.Finding{{Code: "webhooks", Severity: "warning", Message: "2 webhooks", Remediation: "recreate"}}
	}
	src := newSource("r1", projects...)
	dir := b.TempDir()
	var size int64
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Write(b.Context(), src, DirSink{Dir: dir}, testRun("r1"), nil); err != nil {
			b.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, "latest", InventoryXLSX))
		if err != nil {
			b.Fatal(err)
		}
		size = st.Size()
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(size)/n, "xlsx-bytes/project")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/n, "alloc-bytes/project")
}

// FuzzWorkbookText: whatever GitLab names a project, the workbook stores the name as
// a text cell that reads back as the CSV's text before its formula prefix, and never
// as a formula.
func FuzzWorkbookText(f *testing.F) {
	for _, s := range []string{"=1+1", "+cmd|' /C calc'!A0", "-5", "@SUM(A1)", "\tx", " lead", "trail\r\n",
		"a\u202eb", "\x00\x1b", "\xff\xfe", "<b>&amp;</b>", "]]>", "\uffff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		b, err := newWorkbook()
		if err != nil {
			t.Fatal(err)
		}
		defer b.close()
		p := project(1, "acme/a", 1)
		p.Name = name
		normalize(&p)
		if err := b.addProject(&p); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := b.finish(inventory.Summary{RunID: "r1"}, &buf); err != nil {
			t.Fatal(err)
		}
		r, err := excelize.OpenReader(&buf)
		if err != nil {
			t.Fatalf("reading the workbook back: %v", err)
		}
		defer r.Close()
		cell, _ := excelize.CoordinatesToCellName(slices.Index(projectsHeader, "name")+1, 2)
		got, err := r.GetCellValue(sheetProjects, cell)
		if want := stripUnsafe(name); err != nil || got != want {
			t.Errorf("name %q reads back as %q (%v), want %q", name, got, err, want)
		}
		if fm, err := r.GetCellFormula(sheetProjects, cell); err != nil || fm != "" {
			t.Errorf("name %q is stored with formula %q (%v)", name, fm, err)
		}
	})
}
