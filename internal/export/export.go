// Package export writes a discovery run's exports: projects.csv, projects.jsonl,
// groups.csv, dependencies.csv, summary.json, report.html, inventory.xlsx and, when there is a
// previous run, diff.json.
// docs/EXPORTS.md is the contract for their content.
//
// Write streams: projects go to temporary files as the Source yields them, and only
// aggregates, a bounded selection of projects for the report and, for the diff, a
// small record per previous project stay in memory.
package export

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// Source streams a run's records in ascending ID order. The stores implement it (see
// discovery.Store).
type Source interface {
	Groups(ctx context.Context, runID string, fn func(inventory.Group) error) error
	Projects(ctx context.Context, runID string, fn func(inventory.Project) error) error
	APICalls(ctx context.Context, runID string) (int64, error)
}

// Export file names and their content types.
const (
	ProjectsCSV     = "projects.csv"
	ProjectsJSONL   = "projects.jsonl"
	GroupsCSV       = "groups.csv"
	SummaryJSON     = "summary.json"
	ReportHTML      = "report.html"
	DiffJSON        = "diff.json"
	InventoryXLSX   = "inventory.xlsx"
	DependenciesCSV = "dependencies.csv"

	// LatestPrefix is where the newest run's files are copied.
	LatestPrefix = "latest/"
)

var contentTypes = map[string]string{
	ProjectsCSV:     "text/csv; charset=utf-8",
	ProjectsJSONL:   "application/x-ndjson",
	GroupsCSV:       "text/csv; charset=utf-8",
	SummaryJSON:     "application/json",
	ReportHTML:      "text/html; charset=utf-8",
	DiffJSON:        "application/json",
	InventoryXLSX:   "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	DependenciesCSV: "text/csv; charset=utf-8",
}

// RunPrefix is where a run's files are stored: "runs/<run-id>/".
func RunPrefix(runID string) string { return "runs/" + runID + "/" }

// ValidRunID reports whether id can name a run's export folder.
func ValidRunID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\\\x00") {
		return fmt.Errorf("run id %q cannot name an export folder", id)
	}
	return nil
}

// Write writes the run's exports to sink, under runs/<run-id>/ and then latest/, and
// returns the run's summary. prev, when not nil, is the previous succeeded run to
// write diff.json against. Projects stored without a readiness verdict are assessed
// with the default thresholds.
func Write(ctx context.Context, src Source, sink Sink, run inventory.Run, prev *inventory.Run) (inventory.Summary, error) {
	if err := ValidRunID(run.ID); err != nil {
		return inventory.Summary{}, fmt.Errorf("export: %w", err)
	}
	if prev != nil && prev.ID == "" {
		return inventory.Summary{}, errors.New("export: previous run without an id")
	}
	dir, err := os.MkdirTemp("", "export-*")
	if err != nil {
		return inventory.Summary{}, fmt.Errorf("export %s: %w", run.ID, err)
	}
	defer os.RemoveAll(dir)

	w := &writer{dir: dir, run: run, prev: prev, agg: newAggregate()}
	w.agg.asOf = cmp.Or(run.StartedAt, time.Now()) // activity ages, as the stale flag, from the run's start
	files, err := w.write(ctx, src)
	if err != nil {
		return inventory.Summary{}, fmt.Errorf("export %s: %w", run.ID, err)
	}
	for _, name := range files {
		if err := put(ctx, sink, filepath.Join(dir, name), RunPrefix(run.ID)+name); err != nil {
			return inventory.Summary{}, fmt.Errorf("export %s: %w", run.ID, err)
		}
	}
	// latest/ after the run's folder is complete; a sink that copies on its side does
	// not receive the files twice.
	copier, _ := sink.(Copier)
	for _, name := range files {
		if copier != nil {
			err := copier.Copy(ctx, RunPrefix(run.ID)+name, LatestPrefix+name)
			if err == nil {
				continue
			}
			if !errors.Is(err, ErrCopyUnsupported) {
				return inventory.Summary{}, fmt.Errorf("export %s: %w", run.ID, err)
			}
		}
		if err := put(ctx, sink, filepath.Join(dir, name), LatestPrefix+name); err != nil {
			return inventory.Summary{}, fmt.Errorf("export %s: %w", run.ID, err)
		}
	}
	return w.summary, nil
}

func put(ctx context.Context, sink Sink, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := sink.Put(ctx, name, contentTypes[filepath.Base(name)], f); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	return nil
}

// writer holds one export in progress.
type writer struct {
	dir     string
	run     inventory.Run
	prev    *inventory.Run
	agg     *aggregate
	groups  []inventory.Group // in the source's order
	diff    *differ
	book    *workbook
	waves   map[string]int // project path -> suggested wave, from writeDependencies
	summary inventory.Summary
}

// write produces every file in the temporary directory and returns their names in the
// order they are to be published: summary.json last, so that a new summary means the
// rest is in place.
func (w *writer) write(ctx context.Context, src Source) ([]string, error) {
	if w.prev != nil {
		d, err := newDiffer(ctx, src, w.dir, *w.prev)
		if err != nil {
			return nil, err
		}
		defer d.close()
		w.diff = d
	}
	book, err := newWorkbook()
	if err != nil {
		return nil, err
	}
	defer book.close() // removes its temporary files; the workbook is written by then
	w.book = book
	if err := w.readGroups(ctx, src); err != nil {
		return nil, err
	}
	if err := w.writeDependencies(ctx, src); err != nil {
		return nil, err
	}
	if err := w.writeProjects(ctx, src); err != nil {
		return nil, err
	}
	if err := w.writeGroups(ctx); err != nil {
		return nil, err
	}
	calls, err := src.APICalls(ctx, w.run.ID)
	if err != nil {
		return nil, fmt.Errorf("api calls: %w", err)
	}
	w.summary = w.agg.summary(w.run, calls, time.Now())
	if w.diff != nil {
		w.summary.ProjectCountDrop = countDrop(w.diff.prevCount, w.summary.Projects)
	}

	files := []string{ProjectsCSV, ProjectsJSONL, GroupsCSV, DependenciesCSV, InventoryXLSX, ReportHTML}
	if err := createFile(filepath.Join(w.dir, InventoryXLSX), func(out io.Writer) error {
		return w.book.finish(w.summary, out)
	}); err != nil {
		return nil, fmt.Errorf("workbook: %w", err)
	}
	if w.diff != nil { // before the report, which shows it
		if err := w.diff.finish(w.run.ID, filepath.Join(w.dir, DiffJSON)); err != nil {
			return nil, fmt.Errorf("diff: %w", err)
		}
		files = append(files, DiffJSON)
	}
	if err := createFile(filepath.Join(w.dir, ReportHTML), func(out io.Writer) error {
		return writeReport(out, w.report(time.Now()))
	}); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if err := createFile(filepath.Join(w.dir, SummaryJSON), func(out io.Writer) error {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(w.summary)
	}); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	return append(files, SummaryJSON), nil
}

// readGroups reads the run's groups into memory (they are few next to projects): their
// rows carry subtree totals, known only once every project has been seen.
func (w *writer) readGroups(ctx context.Context, src Source) error {
	err := src.Groups(ctx, w.run.ID, func(g inventory.Group) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		w.agg.addGroup(g)
		w.groups = append(w.groups, g)
		return nil
	})
	if err != nil {
		return fmt.Errorf("groups: %w", err)
	}
	return nil
}

// writeGroups writes groups.csv and the workbook's groups once the projects are counted.
func (w *writer) writeGroups(ctx context.Context) error {
	w.agg.rollUp(0)
	return createFile(filepath.Join(w.dir, GroupsCSV), func(out io.Writer) error {
		cw := newCSVWriter(out)
		if err := cw.Write(groupsHeader); err != nil {
			return err
		}
		cells := make([]string, len(groupsHeader))
		for i := range w.groups {
			if err := ctx.Err(); err != nil {
				return err
			}
			r := groupRow{g: &w.groups[i], sub: w.agg.groupByID[w.groups[i].ID]}
			if err := w.book.addGroup(&r); err != nil {
				return err
			}
			if err := cw.Write(row(cells, groupColumns, &r)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (w *writer) writeProjects(ctx context.Context, src Source) error {
	return createFile(filepath.Join(w.dir, ProjectsCSV), func(csvOut io.Writer) error {
		return createFile(filepath.Join(w.dir, ProjectsJSONL), func(jsonOut io.Writer) error {
			cw := newCSVWriter(csvOut)
			if err := cw.Write(projectsHeader); err != nil {
				return err
			}
			enc := json.NewEncoder(jsonOut)
			enc.SetEscapeHTML(false)
			cells := make([]string, len(projectsHeader))
			err := src.Projects(ctx, w.run.ID, func(p inventory.Project) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				normalize(&p)
				p.Stale = stale(&p, w.run)
				p.Wave = w.waves[p.PathWithNamespace]
				if err := cw.Write(row(cells, projectColumns, &p)); err != nil {
					return err
				}
				if err := enc.Encode(&p); err != nil {
					return fmt.Errorf("project %d: %w", p.ID, err)
				}
				w.agg.addProject(&p)
				if err := w.book.addProject(&p); err != nil {
					return err
				}
				if w.diff != nil {
					return w.diff.current(&p)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("projects: %w", err)
			}
			return nil
		})
	})
}

// normalize fills in what the exports promise: a readiness verdict, and empty lists
// rather than nulls for errors, findings and package types.
func normalize(p *inventory.Project) {
	if p.Readiness == nil {
		r := readiness.Assess(*p, readiness.DefaultThresholds())
		p.Readiness = &r
	}
	if p.Readiness.Findings == nil {
		r := *p.Readiness // the source's copy is not ours to change
		r.Findings = []inventory.Finding{}
		p.Readiness = &r
	}
	if p.Errors == nil {
		p.Errors = []inventory.ScanError{}
	}
}

// countDrop flags a project count that fell by more than inventory.DropShare from
// the previous run's; nil otherwise.
func countDrop(prev, now int) *inventory.CountDrop {
	if prev == 0 || now >= prev {
		return nil
	}
	share := float64(prev-now) / float64(prev)
	if share <= inventory.DropShare {
		return nil
	}
	return &inventory.CountDrop{Previous: prev, Now: now, Share: math.Round(share*1000) / 1000}
}

// stale says whether p's last activity is older than the run's STALE_AFTER before
// the run's start: nil (unknown) when either is unknown.
func stale(p *inventory.Project, run inventory.Run) *bool {
	if run.StaleAfter <= 0 || run.StartedAt.IsZero() || p.LastActivityAt.IsZero() {
		return nil
	}
	s := p.LastActivityAt.Before(run.StartedAt.Add(-run.StaleAfter))
	return &s
}

// createFile creates path, lets fill write it through a buffer, and closes it,
// reporting the first error.
func createFile(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	return errors.Join(err, f.Close())
}
