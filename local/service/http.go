package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The servers' limits: a client that sends its headers slowly, never reads the answer
// or keeps an idle connection holds a goroutine and a file descriptor, so every phase
// has a ceiling. WriteTimeout is above StartWait and the readiness check's 10 s.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	readyCheckTimeout = 10 * time.Second
	maxRunBody        = 1 << 10 // POST /runs: {"full":true}
)

// servers builds the health and metrics servers.
func (s *Service) servers() (health, metrics *http.Server) {
	return newServer(s.healthMux()), newServer(s.metricsMux())
}

func newServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}
}

func (s *Service) metricsMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.Metrics.Handler())
	return mux
}

// healthMux serves the health endpoints and, behind the guard, the state-changing ones.
func (s *Service) healthMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		checks, ok := s.ready(r.Context())
		status, code := "ready", http.StatusOK
		if !ok {
			status, code = "not_ready", http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"status": status, "checks": checks})
	})
	if dlq, ok := s.Backend.(DeadLetterQueue); ok {
		// The local dead-letter queue: look, queue again, or drop (DeadLetterQueueNotEmpty).
		mux.HandleFunc("GET /dead-letters", func(w http.ResponseWriter, r *http.Request) {
			dls, err := dlq.DeadLetters(r.Context())
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]any{"error": s.redact.err(err)})
				return
			}
			for i := range dls {
				dls[i].Reason = s.redact.text(dls[i].Reason)
			}
			writeJSON(w, http.StatusOK, map[string]any{"count": len(dls), "dead_letters": dls})
		})
		mux.HandleFunc("POST /dead-letters/redrive", s.guard.wrap(func(w http.ResponseWriter, r *http.Request) {
			n, err := dlq.RedriveDeadLetters(r.Context())
			s.deadLetterResult(w, "redriven", n, err)
		}))
		mux.HandleFunc("DELETE /dead-letters", s.guard.wrap(func(w http.ResponseWriter, r *http.Request) {
			n, err := dlq.PurgeDeadLetters(r.Context())
			s.deadLetterResult(w, "purged", n, err)
		}))
	}
	mux.HandleFunc("POST /runs", s.guard.wrap(s.postRun))
	return mux
}

func (s *Service) health(w http.ResponseWriter, r *http.Request) {
	body := map[string]any{
		"status":         "ok",
		"version":        s.Version,
		"uptime_seconds": int64(time.Since(s.started).Seconds()),
	}
	if run, ok, err := s.Backend.ActiveRun(r.Context()); err == nil && ok {
		snap := s.Backend.Snapshot()
		body["run"] = map[string]any{"run_id": run.ID, "status": run.Status, "started_at": run.StartedAt, "full": run.Full,
			"groups_done": snap.Groups, "projects_done": snap.Projects, "projects_in_scope": run.ProjectsInScope, "api_calls": snap.APICalls}
	}
	writeJSON(w, http.StatusOK, body)
}

// postRun starts a run and answers within StartWait: 202 started, 409 one is active or
// being started, 502 the start failed (GitLab refused the token, say), 202 "starting"
// when GitLab is slow to answer and the start goes on. A body {"full":true} asks for a
// full run; no body, an incremental one.
func (s *Service) postRun(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Full bool `json:"full"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRunBody+1))
	if err == nil && len(body) > maxRunBody {
		err = fmt.Errorf("body over %d bytes", maxRunBody)
	}
	if err == nil && len(bytes.TrimSpace(body)) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": `want no body or {"full":true}: ` + err.Error()})
		return
	}
	p, joined := s.begin(req.Full)
	if joined {
		writeJSON(w, http.StatusConflict, map[string]any{"status": "starting", "started": false,
			"message": "a run is being started; not starting another"})
		return
	}
	t := time.NewTimer(s.StartWait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		writeJSON(w, http.StatusAccepted, map[string]any{"status": "starting", "started": false,
			"message": fmt.Sprintf("GitLab has not answered within %s; the run starts when it does: watch GET /health and the logs", s.StartWait)})
		return
	case <-r.Context().Done():
		return // the client went away; the start goes on
	}
	switch {
	case p.err != nil:
		writeJSON(w, http.StatusBadGateway, map[string]any{"error": s.redact.err(p.err)})
	case !p.started:
		writeJSON(w, http.StatusConflict, map[string]any{"run_id": p.run.ID, "status": p.run.Status, "started": false,
			"message": "a run is already active; not starting another"})
	default:
		writeJSON(w, http.StatusAccepted, map[string]any{"run_id": p.run.ID, "status": p.run.Status, "started": true, "full": p.run.Full})
	}
}

func (s *Service) deadLetterResult(w http.ResponseWriter, verb string, n int, err error) {
	s.Log.Info("dead letters "+verb, "count", n, "err", s.redact.err(err))
	if _, dead, derr := s.Backend.Gauges(context.Background()); derr == nil {
		s.Metrics.SetDeadLetters(dead)
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{verb: n, "error": s.redact.err(err)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{verb: n})
}

// ready checks what a scan needs: a writable store and a GitLab that accepts the token.
// The reasons are redacted and cut: a GitLab error can echo the request's headers.
func (s *Service) ready(ctx context.Context) (map[string]string, bool) {
	checks := map[string]string{"store": "ok", "gitlab": "ok"}
	ok := true
	select {
	case <-s.stopping:
		return map[string]string{"service": "shutting down"}, false
	default:
	}
	if err := s.Backend.CheckStore(ctx); err != nil {
		checks["store"], ok = s.redact.err(err), false
	}
	if err := s.gitlabReady(ctx); err != nil {
		checks["gitlab"], ok = s.redact.err(err), false
	}
	return checks, ok
}

func (s *Service) gitlabReady(ctx context.Context) error {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if !s.readyAt.IsZero() && time.Since(s.readyAt) < s.ReadyCacheTTL {
		return s.readyErr
	}
	cctx, cancel := context.WithTimeout(ctx, readyCheckTimeout)
	defer cancel()
	err := s.Backend.CheckGitLab(cctx)
	if err != nil {
		err = fmt.Errorf("GitLab not usable: %w", err)
	}
	if ctx.Err() == nil { // a probe that went away says nothing about GitLab
		s.readyAt, s.readyErr = time.Now(), err
	}
	return err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}
