package export

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// A project has grown when its repository or its storage grew by more than
// growthPercent percent or by more than growthBytes. docs/EXPORTS.md states both.
const (
	growthPercent = 10
	growthBytes   = 100 << 20
)

// Grown reports whether a size that was prev bytes and is now cur bytes has grown
// enough for diff.json to list it.
func Grown(prev, cur int64) bool {
	d := cur - prev
	return d > 0 && (d > growthBytes || d*100 > prev*growthPercent)
}

// A change kind is one list of diff.json, in the order the file has them.
const (
	kindAdded = iota
	kindRemoved
	kindMoved
	kindReadiness
	kindGrown
	nKinds
)

// changeKinds name the lists: their key in diff.json and counts, and their title in
// the report.
var changeKinds = [nKinds]struct{ key, title string }{
	kindAdded:     {"added", "Added"},
	kindRemoved:   {"removed", "Removed"},
	kindMoved:     {"moved", "Moved or renamed"},
	kindReadiness: {"readiness_changed", "Readiness changed"},
	kindGrown:     {"grown", "Grown"},
}

// maxChangesListed is how many entries of each kind the report shows.
const maxChangesListed = 20

// differ compares the run being exported with the previous one. It keeps only a
// small record per previous project in memory (ID, path, readiness category, two
// sizes); the lists it finds are written to temporary files as they are found, and
// the first maxChangesListed of each kept for the report.
type differ struct {
	prevID string
	prev   map[int64]prevProject
	// prevCount is the previous run's project count, before current() deletes.
	prevCount int
	lists     [nKinds]*fragment
	intern    map[string]string // readiness categories, shared by all records
}

// prevProject is what the diff needs of a previous run's project.
type prevProject struct {
	path          string
	category      string
	repo, storage int64 // -1 when unknown
	failed        bool  // not scanned (inventory.Failed): its path and verdict say nothing
}

// diffEntry is one element of a diff.json list; each kind fills the fields it names
// (docs/EXPORTS.md).
type diffEntry struct {
	ID                int64  `json:"project_id"`
	Path              string `json:"path_with_namespace"`
	PreviousPath      string `json:"previous_path_with_namespace,omitempty"`
	WebURL            string `json:"web_url,omitempty"`
	PreviousReadiness string `json:"previous_readiness,omitempty"`
	Readiness         string `json:"readiness,omitempty"`
	PreviousSize      *int64 `json:"previous_repository_size_bytes,omitempty"`
	Size              *int64 `json:"repository_size_bytes"`
	PreviousStorage   *int64 `json:"previous_storage_size_bytes,omitempty"`
	Storage           *int64 `json:"storage_size_bytes,omitempty"`
}

func newDiffer(ctx context.Context, src Source, dir string, prev inventory.Run) (*differ, error) {
	d := &differ{prevID: prev.ID, prev: map[int64]prevProject{}, intern: map[string]string{}}
	err := src.Projects(ctx, prev.ID, func(p inventory.Project) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		normalize(&p)
		d.prev[p.ID] = prevProject{path: p.PathWithNamespace, category: d.category(p.Readiness.Category),
			repo: repoSize(&p), storage: storageSize(&p), failed: inventory.Failed(p.ScanStatus)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("previous run %s: %w", prev.ID, err)
	}
	d.prevCount = len(d.prev)
	for k := range d.lists {
		if d.lists[k], err = newFragment(filepath.Join(dir, "diff-"+changeKinds[k].key)); err != nil {
			d.close()
			return nil, fmt.Errorf("diff: %w", err)
		}
	}
	return d, nil
}

func (d *differ) category(c string) string {
	if s, ok := d.intern[c]; ok {
		return s
	}
	d.intern[c] = c
	return c
}

func repoSize(p *inventory.Project) int64 {
	if p.Statistics == nil {
		return -1
	}
	return p.Statistics.RepositorySize
}

func storageSize(p *inventory.Project) int64 {
	if p.Statistics == nil {
		return -1
	}
	return p.Statistics.StorageSize
}

func sizePtr(n int64) *int64 {
	if n < 0 {
		return nil
	}
	return &n
}

// grown says whether a known size grew past the thresholds.
func grown(prev, cur int64) bool { return prev >= 0 && cur >= 0 && Grown(prev, cur) }

// current compares one normalized project of the run being exported. A project can
// be in several lists: moved, readiness changed and grown at once.
func (d *differ) current(p *inventory.Project) error {
	repo, storage := repoSize(p), storageSize(p)
	e := diffEntry{ID: p.ID, Path: p.PathWithNamespace, WebURL: p.WebURL, Size: sizePtr(repo)}
	old, existed := d.prev[p.ID]
	if !existed {
		e.Readiness = p.Readiness.Category
		return d.lists[kindAdded].add(e)
	}
	delete(d.prev, p.ID) // what remains at the end was removed
	// A project one of the runs could not scan has no path or verdict to compare.
	compared := !old.failed && !inventory.Failed(p.ScanStatus)
	if compared && old.path != p.PathWithNamespace {
		moved := e
		moved.PreviousPath = old.path
		if err := d.lists[kindMoved].add(moved); err != nil {
			return err
		}
	}
	if compared && old.category != p.Readiness.Category {
		changed := e
		changed.PreviousReadiness, changed.Readiness = old.category, p.Readiness.Category
		if err := d.lists[kindReadiness].add(changed); err != nil {
			return err
		}
	}
	if grown(old.repo, repo) || grown(old.storage, storage) {
		g := e
		g.PreviousSize, g.PreviousStorage, g.Storage = sizePtr(old.repo), sizePtr(old.storage), sizePtr(storage)
		return d.lists[kindGrown].add(g)
	}
	return nil
}

// finish lists the removed projects, in ascending ID order, and writes diff.json to
// path.
func (d *differ) finish(runID, path string) error {
	removed := slices.Sorted(maps.Keys(d.prev))
	for _, id := range removed {
		old := d.prev[id]
		if err := d.lists[kindRemoved].add(diffEntry{ID: id, Path: old.path, Readiness: old.category, Size: sizePtr(old.repo)}); err != nil {
			return err
		}
	}
	for _, f := range d.lists {
		if err := f.bw.Flush(); err != nil {
			return err
		}
	}
	return createFile(path, func(out io.Writer) error {
		head, err := json.Marshal(struct {
			RunID      string         `json:"run_id"`
			PreviousID string         `json:"previous_run_id"`
			Counts     map[string]int `json:"counts"`
		}{runID, d.prevID, d.counts()})
		if err != nil {
			return err
		}
		// Splice the lists into the head object: drop its closing brace.
		if _, err := out.Write(head[:len(head)-1]); err != nil {
			return err
		}
		for k, f := range d.lists {
			if _, err := fmt.Fprintf(out, ",\n%q: [", changeKinds[k].key); err != nil {
				return err
			}
			if _, err := f.f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			if _, err := io.Copy(out, f.f); err != nil {
				return err
			}
			if _, err := io.WriteString(out, "\n]"); err != nil {
				return err
			}
		}
		_, err = io.WriteString(out, "\n}\n")
		return err
	})
}

func (d *differ) counts() map[string]int {
	m := make(map[string]int, nKinds)
	for k, f := range d.lists {
		m[changeKinds[k].key] = f.n
	}
	return m
}

func (d *differ) close() {
	for _, f := range d.lists {
		if f != nil {
			f.f.Close() // a temporary file already read or abandoned: nothing to report
		}
	}
}

// fragment is the body of a JSON array, written one element at a time; it keeps
// its first maxChangesListed elements for the report.
type fragment struct {
	f     *os.File
	bw    *bufio.Writer
	n     int
	first []diffEntry
}

func newFragment(path string) (*fragment, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &fragment{f: f, bw: bufio.NewWriter(f)}, nil
}

func (f *fragment) add(e diffEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	sep := ",\n  "
	if f.n == 0 {
		sep = "\n  "
	}
	f.n++
	if len(f.first) < maxChangesListed {
		f.first = append(f.first, e)
	}
	_, err = f.bw.WriteString(sep)
	if err == nil {
		_, err = f.bw.Write(b)
	}
	return err
}
