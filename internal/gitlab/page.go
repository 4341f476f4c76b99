package gitlab

import (
	"errors"
	"fmt"
)

// ErrPageLoop is a page walk that would not end: GitLab's next page does not lie after
// the current one, a keyset cursor does not move, or the walk passed MaxPages.
var ErrPageLoop = errors.New("pagination does not advance")

// MaxPages bounds any offset page walk: at PerPage items a page, ten million items.
const MaxPages = 100000

// nextPage checks the X-Next-Page GitLab sent with page: 0 ends the walk.
func nextPage(endpoint string, page int, next int64) (int, error) {
	switch {
	case next == 0:
		return 0, nil
	case next <= int64(page):
		return 0, fmt.Errorf("GET %s: %w: page %d names page %d as next", endpoint, ErrPageLoop, page, next)
	case next > MaxPages:
		return 0, fmt.Errorf("GET %s: %w: page %d names page %d as next, past the %d-page ceiling", endpoint, ErrPageLoop, page, next, MaxPages)
	}
	return int(next), nil
}

// nextCursor checks a keyset cursor: the next walk continues after the highest ID of
// the page, which must lie after the previous cursor.
func nextCursor(endpoint string, after, highest int64) (int64, error) {
	if highest <= after {
		return 0, fmt.Errorf("GET %s: %w: the page after id %d ends at id %d", endpoint, ErrPageLoop, after, highest)
	}
	return highest, nil
}
