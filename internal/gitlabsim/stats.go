package gitlabsim

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats are the requests the simulator served since start or the last reset.
type Stats struct {
	Requests      int64            `json:"requests"`
	ByClass       map[string]int64 `json:"by_class"`
	ByStatus      map[int]int64    `json:"by_status"`
	Throttled     int64            `json:"throttled"`       // 429s, injected ones included
	Faults        int64            `json:"faults"`          // injected faults: 5xx, timeouts, malformed bodies, burst 429s, forbidden and deleted projects
	PeakPerMinute int64            `json:"peak_per_minute"` // most requests in any 60 s window (1 s resolution)
}

type counters struct {
	requests  atomic.Int64
	byClass   [nClasses]atomic.Int64
	byStatus  [600]atomic.Int64
	throttled atomic.Int64
	faults    atomic.Int64

	mu      sync.Mutex
	ring    [60]int64 // requests per second of the last minute
	last    int64     // Unix second of the newest ring slot
	running int64     // sum of the ring
	peak    int64
}

func (c *counters) record(cls class, status int, throttled, fault bool, now time.Time) {
	c.requests.Add(1)
	c.byClass[cls].Add(1)
	if status >= 0 && status < len(c.byStatus) {
		c.byStatus[status].Add(1)
	}
	if throttled {
		c.throttled.Add(1)
	}
	if fault {
		c.faults.Add(1)
	}
	sec := now.Unix()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == 0 {
		c.last = sec
	}
	if sec > c.last {
		// Expire the seconds that fell out of the window.
		for s := c.last + 1; s <= sec && s <= c.last+int64(len(c.ring)); s++ {
			slot := &c.ring[s%int64(len(c.ring))]
			c.running -= *slot
			*slot = 0
		}
		c.last = sec
	}
	if sec > c.last-int64(len(c.ring)) {
		c.ring[sec%int64(len(c.ring))]++
		c.running++
	}
	c.peak = max(c.peak, c.running)
}

func (c *counters) snapshot() Stats {
	st := Stats{
		Requests:  c.requests.Load(),
		ByClass:   map[string]int64{},
		ByStatus:  map[int]int64{},
		Throttled: c.throttled.Load(),
		Faults:    c.faults.Load(),
	}
	for i := range c.byClass {
		if n := c.byClass[i].Load(); n > 0 {
			st.ByClass[classNames[i]] = n
		}
	}
	for i := range c.byStatus {
		if n := c.byStatus[i].Load(); n > 0 {
			st.ByStatus[i] = n
		}
	}
	c.mu.Lock()
	st.PeakPerMinute = c.peak
	c.mu.Unlock()
	return st
}

func (c *counters) reset() {
	c.requests.Store(0)
	for i := range c.byClass {
		c.byClass[i].Store(0)
	}
	for i := range c.byStatus {
		c.byStatus[i].Store(0)
	}
	c.throttled.Store(0)
	c.faults.Store(0)
	c.mu.Lock()
	c.ring = [60]int64{}
	c.last, c.running, c.peak = 0, 0, 0
	c.mu.Unlock()
}

// Stats returns the counters since start or the last ResetStats.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// ResetStats zeroes the counters.
func (s *Server) ResetStats() { s.stats.reset() }
