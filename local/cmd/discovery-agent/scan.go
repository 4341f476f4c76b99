package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/engine"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/local/runner"
	"github.com/spf13/cobra"
)

// scanOptions are scan's own flags, besides the settings'.
type scanOptions struct {
	redrive, newRun, full, dryRun, quiet bool
}

func newScan() *cobra.Command {
	var o scanOptions
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Scan GitLab once (or resume the unfinished run) and write the exports",
		Long: `scan runs one discovery to its end and writes the exports under EXPORT_DIR
(runs/<run-id>/ and latest/), then prints a summary: readiness by tier, the blockers,
the most frequent findings and where the exports are.

An interrupted scan (Ctrl-C, SIGTERM, a crash) resumes where it stopped on the next
scan with the same settings. On a terminal it shows a progress bar and text logs
(warnings and errors unless LOG_LEVEL is set); otherwise JSON log lines with a progress
line every 30 s.

Exit codes: 0 ok, 1 the run failed, 2 usage or configuration, 3 GitLab rejected the
token (401), 4 completed with errors, 130 interrupted (scan again to resume).`,
		Example: `  GITLAB_TOKEN=glpat-... discovery-agent scan --gitlab-url https://gitlab.example.com --root-groups platform,42
  GITLAB_TOKEN_FILE=/run/secrets/gitlab_token discovery-agent scan --dry-run`,
		Args: noArgs,
	}
	apply := addSettingFlags(cmd.Flags(), func(v config.Var) bool { return !serviceOnly(v) })
	f := cmd.Flags()
	f.BoolVar(&o.redrive, "redrive", false, "queue the dead letters again and resume the run that failed on them (serve: POST /dead-letters/redrive)")
	f.BoolVar(&o.newRun, "new-run", false, "abandon the unfinished run in DATA_DIR, if any (it can no longer be resumed), and start a new one")
	f.BoolVar(&o.full, "full", false, "profile every project again instead of carrying unchanged ones over (FULL_SCAN_EVERY)")
	f.BoolVar(&o.dryRun, "dry-run", false, "count the projects in scope and print the expected API calls and duration; profile nothing, write nothing")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress and no summary; log errors only (unless LOG_LEVEL is set); the result lines stay")
	cmd.RunE = command(func(cmd *cobra.Command) error {
		if err := apply(); err != nil {
			return err
		}
		return scan(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

// scanConfig reads and checks the configuration: every error is a usage error.
func scanConfig() (config.Config, error) {
	cfg, err := config.FromEnv()
	if err == nil {
		err = cfg.Validate(config.RoleScan)
	}
	if err == nil {
		// What the engine loads from the configuration (the readiness thresholds).
		_, err = engine.New(cfg, engine.Backends{}, engine.Options{})
	}
	if err != nil {
		return cfg, usageError(fmt.Errorf("configuration: %w", err))
	}
	return cfg, nil
}

func scan(ctx context.Context, o scanOptions, stdout, stderr io.Writer) error {
	cfg, err := scanConfig()
	if err != nil {
		return err
	}
	if o.full {
		ctx = discovery.WithFull(ctx)
	}
	tty := engine.IsTerminal(stderr) && !o.quiet
	level := cfg.LogLevel
	if os.Getenv("LOG_LEVEL") == "" {
		switch {
		case o.quiet:
			level = "error"
		case tty:
			level = "warn" // the bar tells the rest; info lines would crowd it
		}
	}
	format := cfg.LogFormat
	if format == "auto" && engine.IsTerminal(stderr) {
		format = "text" // decided here: the logger writes to the terminal through out
	}
	out := &barWriter{w: stderr}
	log := newLogger(out, level, format)
	if o.dryRun { // writes nothing: before the directories are checked (and made)
		est, err := runner.Estimate(ctx, cfg, runner.Options{Log: log})
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, est)
		return nil
	}
	if err := runner.CheckWritable(map[string]string{"DATA_DIR": cfg.DataDir, "EXPORT_DIR": cfg.ExportDir}); err != nil {
		return usageError(fmt.Errorf("configuration: %w", err))
	}
	r, err := runner.New(cfg, runner.Options{Log: log})
	if err != nil {
		return err
	}
	defer r.Close()
	if err := prepare(ctx, r, o.redrive, o.newRun, stderr); err != nil {
		return err
	}

	stop := func() {}
	switch {
	case tty:
		stop = showBar(ctx, r.Progress, out)
	case !o.quiet:
		stop = logProgress(ctx, r.Progress, log)
	}
	run, err := r.Scan(ctx)
	stop()
	if err != nil {
		return err
	}
	if run.Status == inventory.RunFailed {
		return fmt.Errorf("run %s failed: %s", run.ID, run.Reason)
	}
	dir, _ := filepath.Abs(filepath.Join(cfg.ExportDir, "runs", run.ID))
	latest, _ := filepath.Abs(filepath.Join(cfg.ExportDir, "latest"))
	if !o.quiet {
		if err := writeSummary(ctx, stdout, r, run, dir); err != nil {
			log.Warn("summary", "err", err)
		}
	}
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
