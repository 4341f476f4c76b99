package discovery

import (
	"context"
	"sync"

	"github.com/gl2gh/discovery-agent/internal/gitlab"
)

// prefetch is profileEach's GraphQL side alone, for the tests: what the queries said
// of each project, by ID. A project missing from the result would be profiled
// through REST alone; an error here is only the context's.
func (w *Worker) prefetch(ctx context.Context, projects []gitlab.Project) (map[int64]*prefetched, error) {
	out := map[int64]*prefetched{}
	var mu sync.Mutex
	err := w.profileEach(ctx, projects, func(_ context.Context, i int, pre *prefetched) error {
		if pre != nil {
			mu.Lock()
			out[projects[i].ID] = pre
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
