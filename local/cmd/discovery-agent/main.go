// Command discovery-agent runs GitLab discovery locally.
//
//	discovery-agent scan [--gitlab-url URL] [--root-group PATH_OR_ID]... [--out DIR] [--data-dir DIR] [--redrive] [--new-run] [--full] [--dry-run]
//	discovery-agent serve
//	discovery-agent version
//
// Every flag also has an environment variable (see README); the token is read only from
// GITLAB_TOKEN, never from a flag. Exit codes: see exitFailed and the ones below it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/engine"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/metrics"
	"github.com/gl2gh/discovery-agent/local/awsagent"
	"github.com/gl2gh/discovery-agent/local/runner"
	"github.com/gl2gh/discovery-agent/local/service"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes (README "Local mode").
const (
	exitFailed      = 1 // bad configuration, GitLab or DATA_DIR unusable, or the run failed
	exitUsage       = 2 // unknown command or flag
	exitIncomplete  = 3 // the run completed and exported, but groups or projects were not scanned, or it saw nothing
	exitInterrupted = 4 // SIGINT or SIGTERM: scan again to resume
)

// exitError is an error with its exit code; any other error exits exitFailed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(exitUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "scan":
		err = scan(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "serve":
		err = serve(ctx, os.Stderr)
	case "healthcheck":
		err = healthcheck(ctx, os.Args[2:])
	case "version":
		fmt.Println(version)
	case "-h", "--help", "help":
		usage(os.Stdout)
	default:
		usage(os.Stderr)
		os.Exit(exitUsage)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "discovery-agent:", oneLine(err))
		code := exitFailed
		if ee := (*exitError)(nil); errors.As(err, &ee) {
			code = ee.code
		}
		os.Exit(code)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  discovery-agent scan [--gitlab-url URL] [--root-group PATH_OR_ID]... [--out DIR] [--data-dir DIR] [--redrive] [--new-run] [--full] [--dry-run]
                        (exit 0 complete, 1 failed, 2 usage, 3 completed with errors, 4 interrupted)
  discovery-agent serve    (health on HEALTH_ADDR, metrics on METRICS_ADDR, runs on SCAN_SCHEDULE or POST /runs)
  discovery-agent healthcheck [--url URL]   (exit 0 when the agent's /health answers 200; for containers without curl)
  discovery-agent version
The token is read from GITLAB_TOKEN. See README.md for every environment variable.
`)
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func newLogger(w io.Writer, level string) *slog.Logger {
	log := engine.NewLogger(w, level)
	slog.SetDefault(log) // libraries that log to the default logger log JSON too
	return log
}

func scan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the error alone, on one line
	var (
		roots           multi
		redrive, newRun bool
	)
	fs.StringVar(&cfg.GitLabURL, "gitlab-url", cfg.GitLabURL, "GitLab base URL (GITLAB_URL)")
	fs.Var(&roots, "root-group", "group path or ID to scan, repeatable (ROOT_GROUPS)")
	fs.StringVar(&cfg.ExportDir, "out", cfg.ExportDir, "export directory (EXPORT_DIR)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "store directory (DATA_DIR)")
	fs.BoolVar(&redrive, "redrive", false, "queue the dead letters again and resume the run that failed on them (serve: POST /dead-letters/redrive)")
	fs.BoolVar(&newRun, "new-run", false, "abandon the unfinished run in DATA_DIR, if any (it can no longer be resumed), and start a new one")
	full := fs.Bool("full", false, "profile every project again instead of carrying unchanged ones over (FULL_SCAN_EVERY)")
	dryRun := fs.Bool("dry-run", false, "count the projects in scope and print the expected API calls and duration; profile nothing, write nothing")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil
	} else if err != nil {
		return &exitError{exitUsage, fmt.Errorf("scan: %w", err)}
	}
	if fs.NArg() > 0 {
		return &exitError{exitUsage, fmt.Errorf("scan: unexpected argument %q", fs.Arg(0))}
	}
	if *full {
		ctx = discovery.WithFull(ctx)
	}
	if len(roots) > 0 {
		cfg.RootGroups = nil
		for _, g := range roots {
			if g = strings.Trim(strings.TrimSpace(g), "/"); g != "" {
				cfg.RootGroups = append(cfg.RootGroups, g)
			}
		}
	}
	cfg.GitLabURL = strings.TrimRight(cfg.GitLabURL, "/")
	if err := cfg.Validate(config.RoleScan); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	level := cfg.LogLevel
	if isTerminal(stderr) && os.Getenv("LOG_LEVEL") == "" {
		level = "warn" // the progress line tells the rest; info lines would break it up
	}
	log := newLogger(stderr, level)
	if *dryRun { // writes nothing: before the directories are checked (and made)
		est, err := runner.Estimate(ctx, cfg, runner.Options{Log: log})
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, est)
		return nil
	}
	if err := runner.CheckWritable(map[string]string{"DATA_DIR": cfg.DataDir, "EXPORT_DIR": cfg.ExportDir}); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	r, err := runner.New(cfg, runner.Options{Log: log})
	if err != nil {
		return err
	}
	defer r.Close()
	if err := prepare(ctx, r, redrive, newRun, stderr); err != nil {
		return err
	}

	stopProgress := showProgress(ctx, r.Progress, stderr, log)
	run, err := r.Scan(ctx)
	stopProgress()
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{exitInterrupted, err}
		}
		return err
	}
	if run.Status == inventory.RunFailed {
		return fmt.Errorf("run %s failed: %s", run.ID, run.Reason)
	}
	dir, _ := filepath.Abs(filepath.Join(cfg.ExportDir, "runs", run.ID))
	latest, _ := filepath.Abs(filepath.Join(cfg.ExportDir, "latest"))
	fmt.Fprintf(stdout, "run %s %s\nexports: %s\nlatest:  %s\n", run.ID, run.Status, dir, latest)
	if run.Reason != "" { // succeeded, but incomplete
		return &exitError{exitIncomplete, fmt.Errorf("run %s %s", run.ID, run.Reason)}
	}
	return nil
}

// prepare carries out --redrive and --new-run before the scan, saying what it did.
func prepare(ctx context.Context, r *runner.Runner, redrive, newRun bool, stderr io.Writer) error {
	if redrive {
		n, err := r.RedriveDeadLetters(ctx)
		if err != nil {
			return fmt.Errorf("redrive: %w", err)
		}
		fmt.Fprintf(stderr, "discovery-agent: %d dead letters queued again\n", n)
	}
	if newRun {
		old, ok, err := r.Abandon(ctx, "abandoned by scan --new-run")
		if err != nil {
			return fmt.Errorf("new run: %w", err)
		}
		if ok {
			fmt.Fprintf(stderr, "discovery-agent: abandoned unfinished run %s (it can no longer be resumed); starting a new run\n", old.ID)
		}
	}
	return nil
}

// showProgress redraws one status line on a terminal, or logs progress every 30 s
// otherwise. The returned function stops it and waits for it.
func showProgress(ctx context.Context, p *runner.Progress, w io.Writer, log *slog.Logger) func() {
	tty := isTerminal(w)
	every := 30 * time.Second
	if tty {
		every = time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				if tty {
					fmt.Fprintf(w, "\r\033[K%s\n", p.Snapshot())
				}
				return
			case <-t.C:
				s := p.Snapshot()
				if tty {
					fmt.Fprintf(w, "\r\033[K%s", s)
				} else {
					log.Info("progress", "run_id", s.RunID, "groups", s.Groups, "projects", s.Projects, "projects_in_scope", s.Total,
						"errors", s.Errors, "api_calls", s.APICalls, "rate_remaining", s.RateRemaining)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func serve(ctx context.Context, stderr io.Writer) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	sched, err := service.ParseSchedule(cfg.Schedule)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	backend := strings.TrimSpace(os.Getenv("BACKEND"))
	if backend == "" {
		backend = "local"
	}
	if backend != "local" && backend != "aws" {
		return fmt.Errorf("configuration: BACKEND %q: want local or aws", backend)
	}
	// On AWS the token may come from GITLAB_TOKEN_SECRET_ARN: awsagent checks it.
	if backend == "local" {
		if err := cfg.Validate(config.RoleServe); err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
	}
	log := newLogger(stderr, cfg.LogLevel)
	metrics.Version = version
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
		Backend: b, Metrics: m, Log: log, Version: version, Schedule: sched,
		HealthAddr: cfg.HealthAddr, MetricsAddr: cfg.MetricsAddr,
		AdminToken: cfg.AdminToken, Secrets: []string{cfg.Token},
	}
	return s.Run(ctx)
}

// healthcheck probes the local agent, for container health checks in images that have
// no shell or curl.
func healthcheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	addr := os.Getenv("HEALTH_ADDR")
	if addr == "" || strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
		if addr == "127.0.0.1" {
			addr += ":8080"
		}
	}
	u := fs.String("url", "http://"+addr+"/health", "URL to probe")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", *u, resp.StatusCode)
	}
	return nil
}
