// Package budget paces GitLab API calls: a shared request rate that follows what GitLab
// announces, pauses on exhausted limits, and a per-run cap on the number of calls.
// Memory implements it within one process; internal/dynamobudget shares it between
// Lambda invocations in DynamoDB.
package budget

import (
	"errors"
	"time"
)

// ErrExhausted is returned (wrapped) by Wait once the run's call budget is spent.
var ErrExhausted = errors.New("API call budget exhausted")

// MaxPause is the longest any pause lasts, whatever GitLab (or a proxy in front of it)
// says: a RateLimit-Reset a century ahead or a Retry-After of years must not stop a run
// for good. GitLab's own windows are a minute; its longest documented lockouts are
// minutes too. Every limiter and the GitLab client's transport apply it.
const MaxPause = 15 * time.Minute

// CapPause returns the pause end t bounded to now+MaxPause, and false when t is not
// after now (a past or zero reset, which carries no pause).
func CapPause(now, t time.Time) (time.Time, bool) {
	if !t.After(now) {
		return time.Time{}, false
	}
	if limit := now.Add(MaxPause); t.After(limit) {
		return limit, true
	}
	return t, true
}
