package lambdaapp

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/metrics"
)

// sum adds up every series of a Prometheus metric family.
func sum(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			switch {
			case s.GetCounter() != nil:
				total += s.GetCounter().GetValue()
			case s.GetGauge() != nil:
				total += s.GetGauge().GetValue()
			}
		}
	}
	return total
}

// The serve mode's hooks: telemetry teed with EMF, the run-finished hook, the token
// check and the budget gauge.
func TestServeHooks(t *testing.T) {
	f := newFixture(t, gitlabsim.Options{Seed: 5, Groups: 3, Projects: 20})
	ctx := context.Background()
	prom := metrics.New()
	a, err := New(ctx, f.settings, f.srv.Config(ctx), Options{
		Log:       slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:   f.emf,
		GitLab:    gitlab.Options{BaseBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		Telemetry: prom,
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		finished []inventory.Run
	)
	a.OnRunFinished(func(run inventory.Run) {
		mu.Lock()
		finished = append(finished, run)
		mu.Unlock()
	})
	if got := a.BudgetTokens(); got != 0 {
		t.Errorf("BudgetTokens before any run = %v, want 0", got)
	}
	if err := a.CheckGitLab(ctx); err != nil {
		t.Fatalf("CheckGitLab: %v", err)
	}

	res, err := a.Schedule(ctx, nil)
	if err != nil || !res.Started {
		t.Fatalf("Schedule = %+v, %v", res, err)
	}
	f.deliver(t, f.scan, a.Work)
	f.deliver(t, f.export, a.Export)
	f.checkExports(t, a, res.RunID)

	mu.Lock()
	if len(finished) != 1 || finished[0].ID != res.RunID || finished[0].Status != inventory.RunSucceeded {
		t.Errorf("run-finished hook got %+v, want run %s succeeded once", finished, res.RunID)
	}
	mu.Unlock()
	projects := len(f.sim.Truth().Projects)
	if got := sum(t, prom, "discovery_projects_total"); got != float64(projects) {
		t.Errorf("Prometheus discovery_projects_total = %v, want %d", got, projects)
	}
	// The token check and the scheduler's calls precede the run; the rest are its own.
	if got, served := sum(t, prom, "gitlab_api_requests_total"), f.sim.Stats().Requests; got != float64(served) {
		t.Errorf("Prometheus gitlab_api_requests_total = %v, the simulator served %d", got, served)
	}
	if !strings.Contains(f.emf.String(), `"discovery_projects_total"`) {
		t.Error("EMF no longer receives the progress")
	}

	bad := f.settings
	bad.Config.Token = "glpat-wrong-token-for-the-check"
	b, err := New(ctx, bad, f.srv.Config(ctx), Options{Log: slog.New(slog.DiscardHandler), Metrics: f.emf,
		GitLab: gitlab.Options{BaseBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	err = b.CheckGitLab(ctx)
	if !errors.Is(err, gitlab.ErrUnauthorized) || !strings.Contains(err.Error(), "401") {
		t.Errorf("CheckGitLab with a wrong token = %v, want ErrUnauthorized naming 401", err)
	}
	if strings.Contains(err.Error(), bad.Config.Token) {
		t.Error("the token check's error contains the token")
	}
}
