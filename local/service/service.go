// Package service is the long-running local agent (`discovery-agent serve`): the local
// runner's message loop, runs on a schedule and on demand, health endpoints for
// orchestrators and Prometheus metrics, with a graceful shutdown.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/metrics"
)

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
	// AdminToken (ADMIN_TOKEN) is the bearer token of the state-changing endpoints;
	// empty: they answer loopback clients only (guard).
	AdminToken string
	// Secrets are values no answer or log line of the service may show: the GitLab
	// token. AdminToken is one too.
	Secrets []string
	// StartWait bounds how long POST /runs waits for a run to start, which asks GitLab
	// for the token's user and the root groups; past it the start goes on and the
	// answer says so (default 10s).
	StartWait time.Duration

	started time.Time
	base    context.Context // the work's: starts outlive the requests asking for them
	guard   *guard
	redact  redactor

	startMu  sync.Mutex
	starting *pendingStart  // the start in progress, nil when none
	starts   sync.WaitGroup // shutdown waits for them

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

// setup checks the settings and fills in the defaults; base is the context starts run
// under.
func (s *Service) setup(base context.Context) error {
	if s.AdminToken != "" && len(s.AdminToken) < minAdminToken {
		return fmt.Errorf("ADMIN_TOKEN has fewer than %d characters: use a random one, e.g. openssl rand -hex 32", minAdminToken)
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.Grace <= 0 {
		s.Grace = 25 * time.Second
	}
	if s.ReadyCacheTTL <= 0 {
		s.ReadyCacheTTL = 30 * time.Second
	}
	if s.StartWait <= 0 {
		s.StartWait = 10 * time.Second
	}
	s.started = time.Now()
	s.stopping = make(chan struct{})
	s.base = base
	s.guard = newGuard(s.AdminToken)
	s.redact = newRedactor(append([]string{s.AdminToken}, s.Secrets...)...)
	return nil
}

// Run serves until ctx is done, then shuts down within Grace: it stops taking work,
// lets in-flight messages stop at their checkpoints (they are delivered again on the
// next start) and closes the servers.
func (s *Service) Run(ctx context.Context) error {
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	if err := s.setup(workCtx); err != nil {
		return err
	}
	if _, _, err := s.Listen(); err != nil {
		return err
	}
	b := s.Backend
	m := s.Metrics

	// Runs end inside the worker: report them to Prometheus.
	b.OnRunFinished(func(run inventory.Run) {
		m.RunFinished(run.Status == inventory.RunSucceeded, run.FinishedAt.Sub(run.StartedAt))
		s.Log.Info("run finished", "run_id", run.ID, "status", run.Status, "reason", s.redact.text(run.Reason))
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

	healthSrv, metricsSrv := s.servers()
	errc := make(chan error, 2)
	go func() { errc <- serve(healthSrv, s.listeners.health) }()
	go func() { errc <- serve(metricsSrv, s.listeners.metrics) }()
	s.Log.Info("serving", "health", s.listeners.health.Addr().String(), "metrics", s.listeners.metrics.Addr().String(),
		"scheduled", s.Schedule != nil, "admin_token", s.AdminToken != "", "version", s.Version)

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
	go func() { wg.Wait(); s.starts.Wait(); close(done) }()
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

// StartRun starts a run unless one is active, and waits for the answer.
func (s *Service) StartRun(ctx context.Context) (inventory.Run, bool, error) {
	p, _ := s.beginStart()
	select {
	case <-p.done:
		return p.run, p.started, p.err
	case <-ctx.Done():
		return inventory.Run{}, false, context.Cause(ctx)
	}
}

// pendingStart is a start in progress; its fields are set when done is closed.
type pendingStart struct {
	done    chan struct{}
	run     inventory.Run
	started bool
	err     error
}

// beginStart starts a run in the background, or joins the start already in progress
// (joined true): schedule, signal and POST /runs never start two at once, and a start
// waiting on a slow GitLab does not hold the request that asked for it.
func (s *Service) beginStart() (p *pendingStart, joined bool) { return s.begin(false) }

// begin is beginStart; full asks for a full run (a joined start stays what it is).
func (s *Service) begin(full bool) (p *pendingStart, joined bool) {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.starting != nil {
		return s.starting, true
	}
	p = &pendingStart{done: make(chan struct{})}
	s.starting = p
	s.starts.Go(func() {
		ctx := s.base
		if full {
			ctx = discovery.WithFull(ctx)
		}
		p.run, p.started, p.err = s.Backend.Start(ctx)
		if p.err != nil {
			s.Log.Error("could not start a run", "err", s.redact.err(p.err))
		} else if p.started {
			s.Metrics.RunStarted(p.run.ID)
		}
		s.startMu.Lock()
		s.starting = nil
		s.startMu.Unlock()
		close(p.done)
	})
	return p, false
}

// scheduleLoop starts runs on the schedule. A schedule with no time ahead stops it:
// waiting for the zero time would fire at once, again and again.
func (s *Service) scheduleLoop(ctx context.Context) {
	for {
		next, err := nextFire(s.Schedule, time.Now())
		if err != nil {
			s.Log.Error("scheduled runs stopped; POST /runs and SIGUSR1 still start runs", "err", err)
			return
		}
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
			s.Log.Warn("read gauges", "err", s.redact.err(err))
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
