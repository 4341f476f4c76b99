package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/engine"
	"github.com/gl2gh/discovery-agent/internal/metrics"
	"github.com/gl2gh/discovery-agent/local/awsagent"
	"github.com/gl2gh/discovery-agent/local/runner"
	"github.com/gl2gh/discovery-agent/local/service"
	"github.com/spf13/cobra"
)

func newServe() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the service: health on HEALTH_ADDR, metrics on METRICS_ADDR, runs on SCAN_SCHEDULE or POST /runs",
		Long: `serve runs until SIGINT or SIGTERM: /health, /health/ready and /health/live and
POST /runs on HEALTH_ADDR, Prometheus /metrics on METRICS_ADDR, and a run on every
SCAN_SCHEDULE tick. BACKEND=local keeps its state in DATA_DIR; BACKEND=aws drives the
AWS deployment's queues, tables and bucket (docs/DEPLOY.md).`,
		Args: noArgs,
	}
	apply := addSettingFlags(cmd.Flags(), func(config.Var) bool { return true })
	cmd.RunE = command(func(cmd *cobra.Command) error {
		if err := apply(); err != nil {
			return err
		}
		return serve(cmd)
	})
	return cmd
}

func serve(cmd *cobra.Command) error {
	ctx := cmd.Context()
	cfg, err := config.FromEnv()
	if err != nil {
		return usageError(fmt.Errorf("configuration: %w", err))
	}
	sched, err := service.ParseSchedule(cfg.Schedule)
	if err != nil {
		return usageError(fmt.Errorf("configuration: %w", err))
	}
	backend := cfg.Backend
	if backend != "local" && backend != "aws" {
		return usageError(fmt.Errorf("configuration: BACKEND %q: want local or aws", backend))
	}
	// On AWS the token may come from GITLAB_TOKEN_SECRET_ARN: awsagent checks it.
	if backend == "local" {
		if err := cfg.Validate(config.RoleServe); err != nil {
			return usageError(fmt.Errorf("configuration: %w", err))
		}
	}
	log := newLogger(cmd.ErrOrStderr(), cfg.LogLevel, cfg.LogFormat)
	ver, _, _ := buildInfo()
	metrics.Version = ver
	m := metrics.New()
	var b service.Backend
	switch backend {
	case "aws":
		a, err := awsagent.Load(ctx, awsagent.Options{Log: log, Telemetry: m})
		if err != nil {
			return err
		}
		b = a
	default:
		r, err := runner.New(cfg, runner.Options{Log: log, Telemetry: m})
		if err != nil {
			return err
		}
		defer r.Close()
		b = r
	}
	s := &service.Service{
		Backend: b, Metrics: m, Log: log, Version: ver, Schedule: sched,
		HealthAddr: cfg.HealthAddr, MetricsAddr: cfg.MetricsAddr,
		AdminToken: cfg.AdminToken, Secrets: []string{cfg.Token},
	}
	return s.Run(ctx)
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	log := engine.NewLogger(w, level, format)
	slog.SetDefault(log) // libraries that log to the default logger log the same way
	return log
}

// newHealthcheck probes the local agent, for container health checks in images that
// have no shell or curl.
func newHealthcheck() *cobra.Command {
	addr := os.Getenv("HEALTH_ADDR")
	if addr == "" || strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
		if addr == "127.0.0.1" {
			addr += ":8080"
		}
	}
	var u string
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the agent's /health answers 200 (for containers without curl)",
		Args:  noArgs,
	}
	cmd.Flags().StringVar(&u, "url", "http://"+addr+"/health", "URL to probe (from HEALTH_ADDR)")
	cmd.RunE = command(func(cmd *cobra.Command) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return usageError(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthcheck: %s answered %d", u, resp.StatusCode)
		}
		return nil
	})
	return cmd
}
