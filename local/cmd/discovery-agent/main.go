// Command discovery-agent runs GitLab discovery locally.
//
//	discovery-agent scan [flags]     one run to its end: exports and a summary
//	discovery-agent serve [flags]    the long-running service (health, metrics, schedule)
//	discovery-agent healthcheck      probes a running service, for container health checks
//	discovery-agent version          version, commit and build date
//	discovery-agent completion SHELL shell completion
//
// Every setting is an environment variable declared once in internal/config; scan and
// serve derive a flag from each (flags.go), so a flag beats the variable and the
// variable beats the documented default. The token is read only from GITLAB_TOKEN or
// GITLAB_TOKEN_FILE, never from a flag. Exit codes: see exitOK and the ones below it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/spf13/cobra"
)

// Exit codes (README "Exit codes", docs/RUNBOOK.md): a job or script branches on them.
const (
	exitOK          = 0
	exitFailed      = 1   // the run failed, or GitLab or DATA_DIR was unusable
	exitUsage       = 2   // unknown command or flag, bad flag or setting, invalid configuration
	exitAuth        = 3   // GitLab rejected the token (401)
	exitIncomplete  = 4   // the run completed and exported, but groups or projects were not scanned, or it saw nothing
	exitInterrupted = 130 // SIGINT (Ctrl-C) or SIGTERM: scan again to resume
)

// exitError is an error with its exit code; any other error a command returns exits
// exitFailed, and an error cobra returns itself (unknown command) exitUsage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is a usage or configuration error: exit 2.
func usageError(err error) error { return &exitError{exitUsage, err} }

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		// A second signal ends the process at once; the run resumes from its
		// checkpoints either way.
		signal.Stop(sigs)
		cancel(fmt.Errorf("%w: %v", errInterrupted, sig))
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// errInterrupted is the cause of a context ended by SIGINT or SIGTERM.
var errInterrupted = errors.New("interrupted")

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "discovery-agent:", oneLine(err))
	if ee := (*exitError)(nil); errors.As(err, &ee) {
		return ee.code
	}
	// Commands wrap their errors (command); cobra's own are usage errors.
	return exitUsage
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "discovery-agent",
		Short: "Inventory a GitLab instance and judge its projects' readiness to move to GitHub",
		Long: `discovery-agent walks every group and project of a GitLab instance under one shared
API-rate budget and writes an inventory and a migration-readiness report.

Every setting is an environment variable (README.md, "Configuration"); scan and serve
take each as a flag too, which beats the variable. The token is read only from
GITLAB_TOKEN or GITLAB_TOKEN_FILE.

Exit codes: 0 ok, 1 the run failed, 2 usage or configuration, 3 GitLab rejected the
token (401), 4 completed with errors (exported; some groups or projects not scanned),
130 interrupted (scan again to resume).`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("discovery-agent {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(newScan(), newServe(), newHealthcheck(), newVersion())
	return root
}

// command adapts a command's function: its untyped errors exit exitFailed, those that
// wrap gitlab.ErrUnauthorized exitAuth, and an interrupted one exitInterrupted.
func command(fn func(cmd *cobra.Command) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		err := fn(cmd)
		if err == nil {
			return nil
		}
		if ee := (*exitError)(nil); errors.As(err, &ee) {
			return err
		}
		switch {
		case errors.Is(context.Cause(cmd.Context()), errInterrupted):
			return &exitError{exitInterrupted, err}
		case errors.Is(err, gitlab.ErrUnauthorized):
			return &exitError{exitAuth, err}
		}
		return &exitError{exitFailed, err}
	}
}

// noArgs rejects arguments, naming the first.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return usageError(fmt.Errorf("unknown command %q for %q; see %s --help", args[0], cmd.CommandPath(), cmd.CommandPath()))
	}
	return usageError(fmt.Errorf("%s: unexpected argument %q", cmd.Name(), args[0]))
}

// oneLine joins an error's non-blank lines: the reason is one line on stderr.
func oneLine(err error) string {
	var parts []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}
