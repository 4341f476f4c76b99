package export

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// dependencyColumns is the data contract of dependencies.csv: one row per edge.
var dependencyColumns = []column[inventory.Dependency]{
	text("from", func(d *inventory.Dependency) string { return d.From }),
	text("to", func(d *inventory.Dependency) string { return d.To }),
	text("kind", func(d *inventory.Dependency) string { return d.Kind }),
	value("external", func(d *inventory.Dependency) string { return strconv.FormatBool(d.External()) }),
}

var dependenciesHeader = header(dependencyColumns)

// writeDependencies is the export's first pass over the projects: it writes
// dependencies.csv and the workbook's dependencies sheet as the edges stream past,
// keeping only the graph (an index per project path, its edges as indexes), and
// layers it into waves (see waves) for the second pass to write.
func (w *writer) writeDependencies(ctx context.Context, src Source) error {
	index := map[string]int{}
	var paths []string
	type edge struct {
		from int
		to   string
	}
	var edges []edge
	err := createFile(filepath.Join(w.dir, DependenciesCSV), func(out io.Writer) error {
		cw := newCSVWriter(out)
		if err := cw.Write(dependenciesHeader); err != nil {
			return err
		}
		cells := make([]string, len(dependenciesHeader))
		err := src.Projects(ctx, w.run.ID, func(p inventory.Project) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			from, ok := index[p.PathWithNamespace]
			if !ok {
				from = len(paths)
				index[p.PathWithNamespace] = from
				paths = append(paths, p.PathWithNamespace)
			}
			for _, d := range inventory.Dependencies(&p) {
				if err := cw.Write(row(cells, dependencyColumns, &d)); err != nil {
					return err
				}
				if err := w.book.addDependency(&d); err != nil {
					return err
				}
				if !d.External() {
					edges = append(edges, edge{from, d.To})
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("dependencies: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Edges to projects outside the run (another group, not visible) order nothing.
	adj := make([][]int, len(paths))
	for _, e := range edges {
		if to, ok := index[e.to]; ok {
			adj[e.from] = append(adj[e.from], to)
		}
	}
	wave := waves(adj)
	w.waves = make(map[string]int, len(paths))
	for i, p := range paths {
		w.waves[p] = wave[i]
	}
	return nil
}
