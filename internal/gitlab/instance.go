package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Version is GET /version: the instance's version, revision and edition.
type Version struct {
	Version  string `json:"version"`
	Revision string `json:"revision"`
	// Enterprise is nil when GitLab does not say (versions before the field).
	Enterprise *bool `json:"enterprise"`
}

// Version returns the instance's version; any authenticated token may ask.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	_, err := c.get(ctx, "version", nil, &v)
	return v, err
}

// Totals are the instance's user and project totals (GET /application/statistics).
type Totals struct {
	Users    int64
	Projects int64
}

// Totals returns the instance's totals. Only an administrator may ask: other tokens
// get ErrForbidden. Above 10,000 GitLab's counts are estimates.
func (c *Client) Totals(ctx context.Context) (Totals, error) {
	var s struct {
		Users    json.RawMessage `json:"users"`
		Projects json.RawMessage `json:"projects"`
	}
	if _, err := c.get(ctx, "application/statistics", nil, &s); err != nil {
		return Totals{}, err
	}
	var (
		t   Totals
		err error
	)
	if t.Users, err = statisticsCount(s.Users); err != nil {
		return Totals{}, fmt.Errorf("application statistics: users: %w", err)
	}
	if t.Projects, err = statisticsCount(s.Projects); err != nil {
		return Totals{}, fmt.Errorf("application statistics: projects: %w", err)
	}
	return t, nil
}

// statisticsCount reads one of /application/statistics' counts: GitLab has written
// them as strings ("1,234" with delimiters) and, lately, as numbers.
func statisticsCount(raw json.RawMessage) (int64, error) {
	s := string(bytes.TrimSpace(raw))
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	s = strings.ReplaceAll(s, ",", "")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: count %.40q", ErrMalformed, string(raw))
	}
	return n, nil
}
