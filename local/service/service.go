// Package service is the long-running local agent (`discovery-agent serve`): the local
// runner's message loop, runs on a schedule and on demand, health endpoints for
// orchestrators and Prometheus metrics, with a graceful shutdown.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/metrics"
)

// Schedule says when the next run is due.
type Schedule interface {
	Next(time.Time) time.Time
}

// ParseSchedule reads SCAN_SCHEDULE: a 5-field cron expression ("0 2 * * *"), a cron
// descriptor ("@daily", "@every 6h") or a plain interval ("24h"). Empty means on demand
// only (nil Schedule).
func ParseSchedule(s string) (Schedule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < time.Minute {
			return nil, fmt.Errorf("SCAN_SCHEDULE %q: an interval under a minute is not a schedule", s)
		}
		return cron.Every(d), nil
	}
	sch, err := cron.ParseStandard(s)
	if err != nil {
		return nil, fmt.Errorf("SCAN_SCHEDULE %q: want a cron expression or an interval: %w", s, err)
	}
	return sch, nil
}

// Service is the agent in service mode.
type Service struct {
	Backend     Backend
	Metrics     *metrics.Metrics
	Log         *slog.Logger
	Version     string
	HealthAddr  string   // e.g. ":8080"
	MetricsAddr string   // e.g. ":9090"
	Schedule    Schedule // nil: on demand only
	// Grace bounds the shutdown after SIGTERM (default 25s: inside Docker's and
	// Kubernetes' default 30s).
	Grace time.Duration
	// ReadyCacheTTL is how long a GitLab token check is reused by /health/ready, so
	// probes do not spend the API budget (default 30s).
	ReadyCacheTTL time.Duration

	started time.Time

	readyMu   sync.Mutex
	readyAt   time.Time
	readyErr  error
	stopping  chan struct{}
	listeners struct{ health, metrics net.Listener }
}

// Listen binds both ports. Run calls it when it has not been called; tests call it
// first to learn the ports chosen for ":0".
func (s *Service) Listen() (health, metricsAddr string, err error) {
	if s.listeners.health == nil {
		if s.listeners.health, err = net.Listen("tcp", s.HealthAddr); err != nil {
			return "", "", fmt.Errorf("listen HEALTH_ADDR %s: %w", s.HealthAddr, err)
		}
	}
	if s.listeners.metrics == nil {
		if s.listeners.metrics, err = net.Listen("tcp", s.MetricsAddr); err != nil {
			s.listeners.health.Close()
			return "", "", fmt.Errorf("listen METRICS_ADDR %s: %w", s.MetricsAddr, err)
		}
	}
	return s.listeners.health.Addr().String(), s.listeners.metrics.Addr().String(), nil
}

// Run serves until ctx is done, then shuts down within Grace: it stops taking work,
// lets in-flight messages stop at their checkpoints (they are delivered again on the
// next start) and closes the servers.
func (s *Service) Run(ctx context.Context) error {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.Grace <= 0 {
		s.Grace = 25 * time.Second
	}
	if s.ReadyCacheTTL <= 0 {
		s.ReadyCacheTTL = 30 * time.Second
	}
	s.started = time.Now()
	s.stopping = make(chan struct{})
	if _, _, err := s.Listen(); err != nil {
		return err
	}
	b := s.Backend
	m := s.Metrics

	// Runs end inside the worker: report them to Prometheus.
	b.OnRunFinished(func(run inventory.Run) {
		m.RunFinished(run.Status == inventory.RunSucceeded, run.FinishedAt.Sub(run.StartedAt))
		s.Log.Info("run finished", "run_id", run.ID, "status", run.Status, "reason", run.Reason)
	})
	if last, ok, err := b.LastSucceeded(ctx); err != nil {
		return err
	} else if ok {
		m.SetLastRunSuccess(last.FinishedAt)
	}
	if active, ok, err := b.ActiveRun(ctx); err != nil {
		return err
	} else if ok {
		s.Log.Info("resuming unfinished run", "run_id", active.ID)
		m.RunStarted(active.ID)
		b.Track(active.ID)
	}

	healthSrv := &http.Server{Handler: s.healthMux(ctx), ReadHeaderTimeout: 10 * time.Second}
	metricsSrv := &http.Server{Handler: s.metricsMux(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- serve(healthSrv, s.listeners.health) }()
	go func() { errc <- serve(metricsSrv, s.listeners.metrics) }()
	s.Log.Info("serving", "health", s.listeners.health.Addr().String(), "metrics", s.listeners.metrics.Addr().String(),
		"scheduled", s.Schedule != nil, "version", s.Version)

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { b.Work(workCtx) })
	wg.Go(func() { s.gauges(workCtx) })
	if s.Schedule != nil {
		wg.Go(func() { s.scheduleLoop(workCtx) })
	}
	wg.Go(func() { s.signalLoop(workCtx) })

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		s.Log.Error("server failed", "err", err)
	}
	s.Log.Info("shutting down", "grace", s.Grace.String())
	close(s.stopping)
	stopWork()
	shutCtx, cancel := context.WithTimeout(context.Background(), s.Grace)
	defer cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-shutCtx.Done():
		s.Log.Warn("work did not stop within the grace period")
	}
	err = errors.Join(err, healthSrv.Shutdown(shutCtx), metricsSrv.Shutdown(shutCtx))
	s.Log.Info("stopped")
	return err
}

func serve(srv *http.Server, l net.Listener) error {
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// StartRun starts a run unless one is active.
func (s *Service) StartRun(ctx context.Context) (inventory.Run, bool, error) {
	run, started, err := s.Backend.Start(ctx)
	if err != nil {
		s.Log.Error("could not start a run", "err", err)
		return run, false, err
	}
	if started {
		s.Metrics.RunStarted(run.ID)
	}
	return run, started, nil
}

func (s *Service) scheduleLoop(ctx context.Context) {
	for {
		next := s.Schedule.Next(time.Now())
		s.Log.Info("next scheduled run", "at", next.UTC().Format(time.RFC3339))
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			_, _, _ = s.StartRun(ctx) // logged inside; the schedule goes on
		}
	}
}

// signalLoop starts a run on SIGUSR1, for operators without curl.
func (s *Service) signalLoop(ctx context.Context) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	defer signal.Stop(c)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c:
			s.Log.Info("SIGUSR1: starting a run")
			_, _, _ = s.StartRun(ctx)
		}
	}
}

// gauges refreshes the gauges that are states rather than events.
func (s *Service) gauges(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if tokens, dead, err := s.Backend.Gauges(ctx); err != nil {
			s.Log.Warn("read gauges", "err", err)
		} else {
			s.Metrics.SetBudgetTokens(tokens)
			s.Metrics.SetDeadLetters(dead)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) metricsMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.Metrics.Handler())
	return mux
}

func (s *Service) healthMux(ctx context.Context) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{
			"status":         "ok",
			"version":        s.Version,
			"uptime_seconds": int64(time.Since(s.started).Seconds()),
		}
		if run, ok, err := s.Backend.ActiveRun(r.Context()); err == nil && ok {
			snap := s.Backend.Snapshot()
			body["run"] = map[string]any{"run_id": run.ID, "status": run.Status, "started_at": run.StartedAt,
				"groups_done": snap.Groups, "projects_done": snap.Projects, "api_calls": snap.APICalls}
		}
		writeJSON(w, http.StatusOK, body)
	})
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
				writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"count": len(dls), "dead_letters": dls})
		})
		mux.HandleFunc("POST /dead-letters/redrive", func(w http.ResponseWriter, r *http.Request) {
			n, err := dlq.RedriveDeadLetters(r.Context())
			s.deadLetterResult(w, "redriven", n, err)
		})
		mux.HandleFunc("DELETE /dead-letters", func(w http.ResponseWriter, r *http.Request) {
			n, err := dlq.PurgeDeadLetters(r.Context())
			s.deadLetterResult(w, "purged", n, err)
		})
	}
	mux.HandleFunc("POST /runs", func(w http.ResponseWriter, r *http.Request) {
		run, started, err := s.StartRun(r.Context())
		switch {
		case err != nil:
			writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error()})
		case !started:
			writeJSON(w, http.StatusConflict, map[string]any{"run_id": run.ID, "status": run.Status, "started": false,
				"message": "a run is already active; not starting another"})
		default:
			writeJSON(w, http.StatusAccepted, map[string]any{"run_id": run.ID, "status": run.Status, "started": true})
		}
	})
	return mux
}

func (s *Service) deadLetterResult(w http.ResponseWriter, verb string, n int, err error) {
	s.Log.Info("dead letters "+verb, "count", n, "err", err)
	if _, dead, derr := s.Backend.Gauges(context.Background()); derr == nil {
		s.Metrics.SetDeadLetters(dead)
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{verb: n, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{verb: n})
}

// ready checks what a scan needs: a writable store and a GitLab that accepts the token.
func (s *Service) ready(ctx context.Context) (map[string]string, bool) {
	checks := map[string]string{"store": "ok", "gitlab": "ok"}
	ok := true
	select {
	case <-s.stopping:
		return map[string]string{"service": "shutting down"}, false
	default:
	}
	if err := s.Backend.CheckStore(ctx); err != nil {
		checks["store"], ok = err.Error(), false
	}
	if err := s.gitlabReady(ctx); err != nil {
		checks["gitlab"], ok = err.Error(), false
	}
	return checks, ok
}

func (s *Service) gitlabReady(ctx context.Context) error {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if !s.readyAt.IsZero() && time.Since(s.readyAt) < s.ReadyCacheTTL {
		return s.readyErr
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := s.Backend.CheckGitLab(cctx)
	if err != nil {
		err = fmt.Errorf("GitLab not usable: %w", err)
	}
	s.readyAt, s.readyErr = time.Now(), err
	return err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}
