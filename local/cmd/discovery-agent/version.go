package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by `make build` with -ldflags "-X main.version=... -X main.commit=... -X
// main.date=..."; a plain `go build` falls back to the VCS stamp Go records.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// buildInfo returns the version, commit and build date: the linker's, else the VCS
// information go build embeds ("unknown" when built outside a checkout).
func buildInfo() (ver, rev, when string) {
	ver, rev, when = version, commit, date
	if bi, ok := debug.ReadBuildInfo(); ok {
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.time":
				if when == "" {
					when = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if ver == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		if modified && commit == "" && rev != "" {
			rev += "-dirty"
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	if when == "" {
		when = "unknown"
	}
	return ver, rev, when
}

func versionString() string {
	v, c, d := buildInfo()
	return fmt.Sprintf("%s (commit %s, built %s, %s)", v, c, d, runtime.Version())
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  noArgs,
		RunE: command(func(cmd *cobra.Command) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "discovery-agent", versionString())
			return err
		}),
	}
}
