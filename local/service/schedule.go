package service

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule says when the next run is due; the zero time means never again.
type Schedule interface {
	Next(time.Time) time.Time
}

// minInterval is the shortest schedule: runs closer together than that are a mistake.
const minInterval = time.Minute

// ParseSchedule reads SCAN_SCHEDULE: a 5-field cron expression ("0 2 * * *"), a cron
// descriptor ("@daily", "@every 6h") or a plain interval ("24h"). Empty means on demand
// only (nil Schedule). A schedule that never fires (31 February) is refused: the cron
// library answers such a date with the zero time, which a loop would take for "now".
func ParseSchedule(s string) (Schedule, error) {
	return parseSchedule(s, time.Now())
}

func parseSchedule(s string, now time.Time) (Schedule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var sch cron.Schedule
	if d, err := time.ParseDuration(s); err == nil {
		sch = cron.Every(d)
	} else if sch, err = cron.ParseStandard(s); err != nil {
		return nil, fmt.Errorf("SCAN_SCHEDULE %q: want a cron expression or an interval: %w", s, err)
	}
	if every, ok := sch.(cron.ConstantDelaySchedule); ok && every.Delay < minInterval {
		return nil, fmt.Errorf("SCAN_SCHEDULE %q: an interval under a minute is not a schedule", s)
	}
	// The cron library searches five years ahead; every real schedule fires within one.
	if next := sch.Next(now); next.IsZero() {
		return nil, fmt.Errorf("SCAN_SCHEDULE %q never fires: no date matches within five years", s)
	}
	return sch, nil
}

// nextFire is the next time sch fires after now, or an error when it never does again
// (or names a time that is not ahead, which a timer would fire at once, again and again).
func nextFire(sch Schedule, now time.Time) (time.Time, error) {
	next := sch.Next(now)
	if next.IsZero() {
		return next, fmt.Errorf("the schedule never fires again after %s", now.UTC().Format(time.RFC3339))
	}
	if !next.After(now) {
		return next, fmt.Errorf("the schedule's next time %s is not after %s", next.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return next, nil
}
