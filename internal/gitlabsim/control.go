package gitlabsim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// serveControl serves the simulator's own endpoints under /-/sim/ (listed at
// ServeHTTP).
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request, p string) {
	switch {
	case p == "stats" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Stats())
	case p == "stats/reset" && r.Method == http.MethodPost:
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	case p == "truth" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		if err := s.writeTruth(w); err != nil {
			// Headers are gone; all that is left is to cut the stream short.
			panic(http.ErrAbortHandler)
		}
	case p == "faults" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.CurrentFaults())
	case p == "faults" && r.Method == http.MethodPut:
		var f Faults
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "faults: " + err.Error()})
			return
		}
		if err := f.Validate(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "faults: " + err.Error()})
			return
		}
		s.SetFaults(f)
		writeJSON(w, http.StatusOK, s.CurrentFaults())
	case p == "change" && r.Method == http.MethodPost:
		var req struct {
			Share  *float64 `json:"share"`
			Seed   int64    `json:"seed"`
			Rename float64  `json:"rename"` // share of the projects also renamed (Rename)
			Delete float64  `json:"delete"` // share of the projects deleted first (Delete)
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "change: " + err.Error()})
			return
		}
		if req.Share == nil || !(*req.Share >= 0 && *req.Share <= 1) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "change: share must be a number in [0, 1]"})
			return
		}
		if !(req.Rename >= 0 && req.Rename <= 1) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "change: rename must be a number in [0, 1]"})
			return
		}
		if !(req.Delete >= 0 && req.Delete <= 1) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "change: delete must be a number in [0, 1]"})
			return
		}
		var res struct {
			ChangeResult
			Renamed []Renamed `json:"renamed,omitempty"`
			Deleted []Deleted `json:"deleted,omitempty"`
		}
		// Deletion comes first, so that no project is reported changed or renamed
		// and then deleted in the same call.
		if req.Delete > 0 {
			res.Deleted = s.Delete(req.Delete, req.Seed)
		}
		res.ChangeResult = s.Change(*req.Share, req.Seed)
		if req.Rename > 0 {
			res.Renamed = s.Rename(req.Rename, req.Seed)
		}
		writeJSON(w, http.StatusOK, res)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"cannot encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body) // nothing to do when the client went away
}

// writeTruth streams the truth one record at a time, so that a 100k-project truth
// never sits in memory whole.
func (s *Server) writeTruth(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fs := s.faults.Load()
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	write := func(str string) { _, _ = bw.WriteString(str) } // bufio keeps the first error for Flush
	write(`{"groups":[`)
	for i := range s.in.groups {
		if i > 0 {
			write(",")
		}
		if err := enc.Encode(s.in.truthGroup(&s.in.groups[i])); err != nil {
			return fmt.Errorf("encode group: %w", err)
		}
	}
	write(`],"projects":[`)
	for k, i := range s.allProjects {
		if k > 0 {
			write(",")
		}
		if err := enc.Encode(s.withFaults(fs, s.in.truthProject(&s.in.projects[i]), &s.in.projects[i])); err != nil {
			return fmt.Errorf("encode project: %w", err)
		}
	}
	write(`],"faults":`)
	if err := enc.Encode(s.truthFaults()); err != nil {
		return fmt.Errorf("encode faults: %w", err)
	}
	write(`,"instance":`)
	if err := enc.Encode(s.truthInstance()); err != nil {
		return fmt.Errorf("encode instance: %w", err)
	}
	write("}\n")
	return bw.Flush()
}

// faultsJSON is Faults on the wire: snake_case, durations as Go duration strings.
type faultsJSON struct {
	Latency            jsonDuration `json:"latency"`
	Jitter             jsonDuration `json:"jitter"`
	ErrorRate          float64      `json:"error_rate"`
	TimeoutRate        float64      `json:"timeout_rate"`
	Hang               jsonDuration `json:"hang"`
	MalformedRate      float64      `json:"malformed_rate"`
	ForbiddenRate      float64      `json:"forbidden_rate"`
	ForbiddenEndpoints []string     `json:"forbidden_endpoints"`
	DeletedRate        float64      `json:"deleted_rate"`
	Burst429Rate       float64      `json:"burst429_rate"`
	NoHeaders429       bool         `json:"no_headers_429"`
}

// MarshalJSON writes Faults with snake_case keys and durations such as "250ms".
func (f Faults) MarshalJSON() ([]byte, error) {
	eps := f.ForbiddenEndpoints
	if eps == nil {
		eps = []string{}
	}
	return json.Marshal(faultsJSON{
		jsonDuration(f.Latency), jsonDuration(f.Jitter), f.ErrorRate, f.TimeoutRate, jsonDuration(f.Hang),
		f.MalformedRate, f.ForbiddenRate, eps, f.DeletedRate, f.Burst429Rate, f.NoHeaders429,
	})
}

// UnmarshalJSON reads what MarshalJSON writes; durations may also be nanoseconds.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a misspelt rate must not silently mean 0
	if err := dec.Decode(&j); err != nil {
		return err
	}
	*f = Faults{
		Latency: time.Duration(j.Latency), Jitter: time.Duration(j.Jitter), ErrorRate: j.ErrorRate,
		TimeoutRate: j.TimeoutRate, Hang: time.Duration(j.Hang), MalformedRate: j.MalformedRate,
		ForbiddenRate: j.ForbiddenRate, ForbiddenEndpoints: j.ForbiddenEndpoints, DeletedRate: j.DeletedRate,
		Burst429Rate: j.Burst429Rate, NoHeaders429: j.NoHeaders429,
	}
	return nil
}

type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			return fmt.Errorf("duration %q: %w", x, err)
		}
		*d = jsonDuration(p)
	case float64:
		*d = jsonDuration(time.Duration(x))
	case nil:
		*d = 0
	default:
		return errors.New("a duration is a string such as \"250ms\" or a number of nanoseconds")
	}
	return nil
}
