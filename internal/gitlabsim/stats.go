package gitlabsim

import (
	"maps"
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
	// PeakPerMinuteByClass is the same per endpoint class, to check per-endpoint limits.
	PeakPerMinuteByClass map[string]int64 `json:"peak_per_minute_by_class"`
	// GraphQLOperations counts POST /api/graphql requests by operation name
	// ("anonymous" when unnamed); each is also one request of class "graphql".
	GraphQLOperations map[string]int64 `json:"graphql_operations,omitempty"`
}

type counters struct {
	requests  atomic.Int64
	byClass   [nClasses]atomic.Int64
	byStatus  [600]atomic.Int64
	throttled atomic.Int64
	faults    atomic.Int64

	mu         sync.Mutex
	all        window
	byClassWin [nClasses]window
	ops        map[string]int64
}

// recordOperation counts a GraphQL request under its operation name; names past
// graphQLMaxOperations distinct ones are counted as "other".
func (c *counters) recordOperation(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ops == nil {
		c.ops = map[string]int64{}
	}
	if _, ok := c.ops[name]; !ok && len(c.ops) >= graphQLMaxOperations {
		name = "other"
	}
	c.ops[name]++
}

// window counts requests in a sliding minute at one-second resolution.
type window struct {
	ring    [60]int64 // requests per second of the last minute
	last    int64     // Unix second of the newest ring slot
	running int64     // sum of the ring
	peak    int64
}

func (w *window) add(sec int64) {
	if w.last == 0 {
		w.last = sec
	}
	if sec > w.last {
		// Expire the seconds that fell out of the window.
		for s := w.last + 1; s <= sec && s <= w.last+int64(len(w.ring)); s++ {
			slot := &w.ring[s%int64(len(w.ring))]
			w.running -= *slot
			*slot = 0
		}
		w.last = sec
	}
	if sec > w.last-int64(len(w.ring)) {
		w.ring[sec%int64(len(w.ring))]++
		w.running++
	}
	w.peak = max(w.peak, w.running)
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
	c.all.add(sec)
	c.byClassWin[cls].add(sec)
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
	st.GraphQLOperations = maps.Clone(c.ops)
	st.PeakPerMinute = c.all.peak
	st.PeakPerMinuteByClass = map[string]int64{}
	for i := range c.byClassWin {
		if p := c.byClassWin[i].peak; p > 0 {
			st.PeakPerMinuteByClass[classNames[i]] = p
		}
	}
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
	c.all = window{}
	c.byClassWin = [nClasses]window{}
	c.ops = nil
	c.mu.Unlock()
}

// Stats returns the counters since start or the last ResetStats.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// ResetStats zeroes the counters.
func (s *Server) ResetStats() { s.stats.reset() }
