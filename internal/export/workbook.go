package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// The workbook's sheets, in their order in inventory.xlsx.
const (
	sheetSummary  = "summary"
	sheetProjects = "projects"
	sheetGroups   = "groups"
	sheetFindings = "findings"
	sheetDeps     = "dependencies"
)

// maxSheetRows is a worksheet's row limit (header included); rows past it are
// counted in the summary sheet, not written.
const maxSheetRows = 1 << 20

// finding is one row of the findings sheet: a project and one of its findings.
type finding struct {
	p *inventory.Project
	f *inventory.Finding
}

// findingColumns is the findings sheet: one row per project and finding.
var findingColumns = []column[finding]{
	value("project_id", func(r *finding) string { return strconv.FormatInt(r.p.ID, 10) }),
	text("path_with_namespace", func(r *finding) string { return r.p.PathWithNamespace }),
	text("readiness", func(r *finding) string { return r.p.Readiness.Category }),
	text("code", func(r *finding) string { return r.f.Code }),
	text("severity", func(r *finding) string { return r.f.Severity }),
	text("tier", func(r *finding) string { return r.f.Tier }),
	text("message", func(r *finding) string { return r.f.Message }),
	text("remediation", func(r *finding) string { return r.f.Remediation }),
}

// workbook writes inventory.xlsx as the records stream past: each sheet has its own
// excelize StreamWriter, which spills rows to a temporary file past a few MiB. Cells
// are typed from their columns: a text column's cells are strings (a string cell is
// never read as a formula, so they are not prefixed as in CSV); a value column's
// cells are numbers, booleans or dates (UTC); an empty cell is left blank. No cell
// carries a formula.
type workbook struct {
	f                       *excelize.File
	dateStyle               int
	projects, groups, finds *sheet
	deps                    *sheet
}

// sheet is one streamed worksheet.
type sheet struct {
	name    string
	sw      *excelize.StreamWriter
	rows    int // written, header included
	omitted int // past maxSheetRows
	cols    int
	vals    []any
}

func newWorkbook() (*workbook, error) {
	f := excelize.NewFile()
	b := &workbook{f: f}
	err := func() error {
		if err := f.SetSheetName("Sheet1", sheetSummary); err != nil {
			return err
		}
		var err error
		if b.dateStyle, err = f.NewStyle(&excelize.Style{CustomNumFmt: ptrTo("yyyy-mm-dd hh:mm:ss")}); err != nil {
			return err
		}
		if b.projects, err = b.newSheet(sheetProjects, projectsHeader); err != nil {
			return err
		}
		if b.groups, err = b.newSheet(sheetGroups, groupsHeader); err != nil {
			return err
		}
		if b.finds, err = b.newSheet(sheetFindings, header(findingColumns)); err != nil {
			return err
		}
		b.deps, err = b.newSheet(sheetDeps, dependenciesHeader)
		return err
	}()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("workbook: %w", err), f.Close())
	}
	return b, nil
}

func ptrTo[T any](v T) *T { return &v }

// newSheet adds a sheet with a frozen header row.
func (b *workbook) newSheet(name string, head []string) (*sheet, error) {
	if _, err := b.f.NewSheet(name); err != nil {
		return nil, err
	}
	return b.stream(name, head)
}

// stream opens name's StreamWriter and writes its frozen, bold header row.
func (b *workbook) stream(name string, head []string) (*sheet, error) {
	// A stream's dimension would be written before its rows, as "A1": readers that
	// trust it (openpyxl's read-only mode) would see one cell. Without one, they read
	// the rows.
	if err := b.f.SetSheetDimension(name, ""); err != nil {
		return nil, err
	}
	sw, err := b.f.NewStreamWriter(name)
	if err != nil {
		return nil, err
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return nil, err
	}
	bold, err := b.f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return nil, err
	}
	s := &sheet{name: name, sw: sw, cols: len(head), vals: make([]any, len(head))}
	for i, h := range head {
		s.vals[i] = excelize.Cell{StyleID: bold, Value: h}
		// Wide enough for the header and its filter button; text wraps no further.
		if err := sw.SetColWidth(i+1, i+1, float64(min(max(len(h)+4, 10), 40))); err != nil {
			return nil, err
		}
	}
	return s, s.write()
}

// write writes s.vals as the next row.
func (s *sheet) write() error {
	if s.rows >= maxSheetRows {
		s.omitted++
		return nil
	}
	s.rows++
	cell, err := excelize.CoordinatesToCellName(1, s.rows)
	if err != nil {
		return err
	}
	if err := s.sw.SetRow(cell, s.vals); err != nil {
		return fmt.Errorf("sheet %s row %d: %w", s.name, s.rows, err)
	}
	return nil
}

// typedRow fills s.vals with v's cells.
func typedRow[T any](b *workbook, s *sheet, cols []column[T], v *T) error {
	for i, c := range cols {
		s.vals[i] = b.typed(c.cell(v), c.text)
	}
	return s.write()
}

// typed is a cell's value: text as a string, a value column's cell as the number,
// boolean or date it formats; nil (blank) when empty.
func (b *workbook) typed(s string, text bool) any {
	switch {
	case s == "":
		return nil
	case text:
		return stripUnsafe(s)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if s == "true" || s == "false" {
		return s == "true"
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return excelize.Cell{StyleID: b.dateStyle, Value: t.UTC()}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return stripUnsafe(s)
}

func (b *workbook) addGroup(r *groupRow) error {
	return typedRow(b, b.groups, groupColumns, r)
}

// addProject writes a normalized project's row and a findings row per finding.
func (b *workbook) addProject(p *inventory.Project) error {
	if err := typedRow(b, b.projects, projectColumns, p); err != nil {
		return err
	}
	for i := range p.Readiness.Findings {
		if err := typedRow(b, b.finds, findingColumns, &finding{p: p, f: &p.Readiness.Findings[i]}); err != nil {
			return err
		}
	}
	return nil
}

// addDependency writes one edge of dependencies.csv.
func (b *workbook) addDependency(d *inventory.Dependency) error {
	return typedRow(b, b.deps, dependencyColumns, d)
}

// finish writes the summary sheet (summary.json's fields, one per row, maps and
// lists flattened), closes every sheet as a table (so each has filters on its header)
// and writes the workbook to out.
func (b *workbook) finish(sum inventory.Summary, out io.Writer) error {
	js, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	sumSheet, err := b.stream(sheetSummary, []string{"field", "value"})
	if err != nil {
		return err
	}
	rows, err := flatten(js)
	if err != nil {
		return err
	}
	for _, s := range []*sheet{b.projects, b.groups, b.finds, b.deps} {
		if s.omitted > 0 {
			rows = append(rows, [2]any{"rows_omitted." + s.name, int64(s.omitted)})
		}
	}
	for _, r := range rows {
		sumSheet.vals[0], sumSheet.vals[1] = r[0], r[1]
		if t, ok := r[1].(time.Time); ok {
			sumSheet.vals[1] = excelize.Cell{StyleID: b.dateStyle, Value: t}
		}
		if err := sumSheet.write(); err != nil {
			return err
		}
	}
	for _, s := range []*sheet{sumSheet, b.projects, b.groups, b.finds, b.deps} {
		if err := s.close(); err != nil {
			return err
		}
	}
	if _, err := b.f.WriteTo(out); err != nil {
		return fmt.Errorf("workbook: %w", err)
	}
	return nil
}

// close adds the table that gives the sheet its header filters, sets column widths
// and ends the stream.
func (s *sheet) close() error {
	last, err := excelize.CoordinatesToCellName(s.cols, max(s.rows, 2))
	if err != nil {
		return err
	}
	if err := s.sw.AddTable(&excelize.Table{Range: "A1:" + last, Name: "t_" + s.name, StyleName: "TableStyleLight1"}); err != nil {
		return fmt.Errorf("sheet %s table: %w", s.name, err)
	}
	if err := s.sw.Flush(); err != nil {
		return fmt.Errorf("sheet %s: %w", s.name, err)
	}
	return nil
}

func (b *workbook) close() error { return b.f.Close() }

// flatten turns a JSON object into field/value rows in its order: nested objects
// as "parent.key", lists joined with ";", numbers as int64 (float64 when not whole),
// RFC 3339 strings as times, null as blank.
func flatten(js []byte) ([][2]any, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var rows [][2]any
	var walk func(prefix string) error
	walk = func(prefix string) error {
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return err
			}
			key := prefix + t.(string)
			t, err = dec.Token()
			if err != nil {
				return err
			}
			var v any
			switch t := t.(type) {
			case json.Delim:
				if t == '{' {
					if err := walk(key + "."); err != nil {
						return err
					}
				} else {
					var items []string
					for dec.More() {
						var s any
						if err := dec.Decode(&s); err != nil {
							return err
						}
						items = append(items, fmt.Sprint(s))
					}
					v = strings.Join(items, ";")
				}
				if _, err := dec.Token(); err != nil { // the closing delimiter
					return err
				}
				if t == '{' {
					continue
				}
			case json.Number:
				if n, err := t.Int64(); err == nil {
					v = n
				} else if f, err := t.Float64(); err == nil {
					v = f
				}
			case string:
				v = stripUnsafe(t)
				if tm, err := time.Parse(time.RFC3339Nano, t); err == nil {
					v = tm.UTC()
				}
			default:
				v = t // bool or nil
			}
			rows = append(rows, [2]any{key, v})
		}
		return nil
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("summary is not a JSON object: %v", err)
	}
	if err := walk(""); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	return rows, nil
}
