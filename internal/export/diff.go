package export

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// A project has grown when its repository grew by more than growthPercent percent or
// by more than growthBytes.
const (
	growthPercent = 10
	growthBytes   = 100 << 20
)

// Grown reports whether a repository that was prev bytes and is now cur bytes has
// grown enough for diff.json to list it.
func Grown(prev, cur int64) bool {
	d := cur - prev
	return d > 0 && (d > growthBytes || d*100 > prev*growthPercent)
}

// differ compares the run being exported with the previous one. It keeps only the
// previous run's project IDs and repository sizes in memory; the lists it finds are
// written to temporary files as they are found.
type differ struct {
	prevID                   string
	prev                     map[int64]int64 // previous run's project ID -> repository size, -1 when unknown
	added, grown, gone       *fragment
	nAdded, nGrown, nRemoved int
}

type diffEntry struct {
	ID           int64  `json:"project_id"`
	Path         string `json:"path_with_namespace"`
	PreviousSize *int64 `json:"previous_repository_size_bytes,omitempty"`
	Size         *int64 `json:"repository_size_bytes"`
}

func newDiffer(ctx context.Context, src Source, dir string, prev inventory.Run) (*differ, error) {
	d := &differ{prevID: prev.ID, prev: map[int64]int64{}}
	err := src.Projects(ctx, prev.ID, func(p inventory.Project) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.prev[p.ID] = repoSize(&p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("previous run %s: %w", prev.ID, err)
	}
	for _, f := range []struct {
		frag **fragment
		name string
	}{{&d.added, "diff-added"}, {&d.grown, "diff-grown"}, {&d.gone, "diff-removed"}} {
		if *f.frag, err = newFragment(filepath.Join(dir, f.name)); err != nil {
			d.close()
			return nil, fmt.Errorf("diff: %w", err)
		}
	}
	return d, nil
}

func repoSize(p *inventory.Project) int64 {
	if p.Statistics == nil {
		return -1
	}
	return p.Statistics.RepositorySize
}

func sizePtr(n int64) *int64 {
	if n < 0 {
		return nil
	}
	return &n
}

// current compares one project of the run being exported.
func (d *differ) current(p *inventory.Project) error {
	cur := repoSize(p)
	prev, existed := d.prev[p.ID]
	if !existed {
		d.nAdded++
		return d.added.add(diffEntry{ID: p.ID, Path: p.PathWithNamespace, Size: sizePtr(cur)})
	}
	delete(d.prev, p.ID) // what remains at the end was removed
	if prev >= 0 && cur >= 0 && Grown(prev, cur) {
		d.nGrown++
		return d.grown.add(diffEntry{ID: p.ID, Path: p.PathWithNamespace, PreviousSize: sizePtr(prev), Size: sizePtr(cur)})
	}
	return nil
}

// finish lists the removed projects, by streaming the previous run again for their
// paths, and writes diff.json to path.
func (d *differ) finish(ctx context.Context, src Source, runID, path string) error {
	if len(d.prev) > 0 {
		err := src.Projects(ctx, d.prevID, func(p inventory.Project) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			size, removed := d.prev[p.ID]
			if !removed {
				return nil
			}
			d.nRemoved++
			return d.gone.add(diffEntry{ID: p.ID, Path: p.PathWithNamespace, Size: sizePtr(size)})
		})
		if err != nil {
			return fmt.Errorf("previous run %s: %w", d.prevID, err)
		}
	}
	for _, f := range []*fragment{d.added, d.grown, d.gone} {
		if err := f.bw.Flush(); err != nil {
			return err
		}
	}
	return createFile(path, func(out io.Writer) error {
		head, err := json.Marshal(struct {
			RunID      string         `json:"run_id"`
			PreviousID string         `json:"previous_run_id"`
			Counts     map[string]int `json:"counts"`
		}{runID, d.prevID, map[string]int{"added": d.nAdded, "removed": d.nRemoved, "grown": d.nGrown}})
		if err != nil {
			return err
		}
		// Splice the lists into the head object: drop its closing brace.
		if _, err := out.Write(head[:len(head)-1]); err != nil {
			return err
		}
		for _, part := range []struct {
			key  string
			frag *fragment
		}{{"added", d.added}, {"removed", d.gone}, {"grown", d.grown}} {
			if _, err := fmt.Fprintf(out, ",\n%q: [", part.key); err != nil {
				return err
			}
			if _, err := part.frag.f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			if _, err := io.Copy(out, part.frag.f); err != nil {
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

func (d *differ) close() {
	for _, f := range []*fragment{d.added, d.grown, d.gone} {
		if f != nil {
			f.f.Close() // a temporary file already read or abandoned: nothing to report
		}
	}
}

// fragment is the body of a JSON array, written one element at a time.
type fragment struct {
	f  *os.File
	bw *bufio.Writer
	n  int
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
	_, err = f.bw.WriteString(sep)
	if err == nil {
		_, err = f.bw.Write(b)
	}
	return err
}
