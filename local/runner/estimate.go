package runner

import (
	"context"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/engine"
)

// Estimate counts what a run would cost (scan --dry-run) without opening the store:
// it writes nothing and makes no profiling calls, only the listing of the root groups
// and one count per root (discovery.Scheduler.Estimate).
func Estimate(ctx context.Context, cfg config.Config, opts Options) (discovery.Estimate, error) {
	if err := cfg.Validate(config.RoleScan); err != nil {
		return discovery.Estimate{}, err
	}
	eng, err := engine.New(cfg, engine.Backends{Log: opts.Log}, engine.Options{GitLab: opts.GitLab})
	if err != nil {
		return discovery.Estimate{}, err
	}
	gl, err := eng.Client(budget.NewMemory(eng.Budget()))
	if err != nil {
		return discovery.Estimate{}, err
	}
	return eng.Scheduler(gl).Estimate(ctx)
}
