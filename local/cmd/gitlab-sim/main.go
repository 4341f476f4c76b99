// Command gitlab-sim serves a simulated GitLab (REST API v4 and GraphQL subsets) for
// demos, tests and benchmarks of the discovery agent.
//
//	gitlab-sim --addr 127.0.0.1:8929 --seed 1 --groups 50 --projects 2000 [--users 20 --personal-projects 300]
//
// The API is under /api/v4; /-/sim/stats, /-/sim/truth and /-/sim/faults expose the
// request accounting, the ground truth and the fault settings, and POST /-/sim/change
// gives a share of the projects new activity and renames and deletes shares of them
// ({"share":0.05,"seed":1,"rename":0.005,"delete":0.005}). GraphQL is served at
// /api/graphql (--graphql-complexity, --no-graphql). --endpoint-limits and
// --gitlab-com-limits add endpoint classes' own limits; --no-ratelimit-headers
// throttles without announcing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(context.Background(), os.Args[1:], logger, nil); err != nil {
		logger.Error("gitlab-sim failed", "error", err)
		os.Exit(1)
	}
}

// run parses flags, serves until ctx ends or SIGINT/SIGTERM, then shuts down. When
// ready is not nil it receives the listening address.
func run(ctx context.Context, args []string, logger *slog.Logger, ready chan<- string) error {
	opts, addr, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	start := time.Now()
	sim, err := gitlabsim.New(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	srv.RegisterOnShutdown(sim.Close) // release requests hanging in timeout faults

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("gitlab-sim listening", "addr", ln.Addr().String(), "groups", opts.Groups, "projects", opts.Projects,
		"users", opts.Users, "personal_projects", opts.PersonalProjects,
		"seed", opts.Seed, "rate_limit_rpm", opts.RateLimitRPM, "endpoint_limits", len(opts.EndpointLimits),
		"build_ms", time.Since(start).Milliseconds())
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("gitlab-sim shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// parseFlags reads the options; flag.ErrHelp after printing the usage for --help.
func parseFlags(args []string) (gitlabsim.Options, string, error) {
	fs := flag.NewFlagSet("gitlab-sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		opts      gitlabsim.Options
		addr      = fs.String("addr", "127.0.0.1:8929", "listen address")
		endpoints = fs.String("forbidden-endpoints", "", "comma-separated endpoint classes answering 403 for forbidden projects (\"*\" = all projects/:id endpoints)")
		limits    = fs.String("endpoint-limits", "", "endpoint classes' own limits, class=limit[/window] comma-separated, such as projects/:id=400,projects=2000/10m (window default 1m)")
		now       = fs.String("now", "", "the instance's \"now\", a date (2026-12-06), an RFC 3339 time or \"today\" (UTC midnight): every timestamp moves so that activity ages are relative to it; default the fixed 2025-06-01")
		gitlabCom = fs.Bool("gitlab-com-limits", false, "GitLab.com's documented limits: --rate-limit-rpm 2000 unless given, its per-endpoint limits (--endpoint-limits overrides or adds), quiet unless --endpoint-limits-quiet=false")
	)
	fs.Int64Var(&opts.Seed, "seed", 1, "instance seed")
	fs.IntVar(&opts.Groups, "groups", 50, "groups (top-level and subgroups)")
	fs.IntVar(&opts.Projects, "projects", 2000, "projects in groups")
	fs.IntVar(&opts.Users, "users", 0, "user namespaces (ids from 1000000)")
	fs.IntVar(&opts.PersonalProjects, "personal-projects", 0, "personal projects spread over --users, listed by /projects but in no group")
	fs.StringVar(&opts.Token, "token", "sim-token", "accepted token (PRIVATE-TOKEN or Authorization: Bearer)")
	fs.StringVar(&opts.ExternalURL, "external-url", "https://gitlab.example.com", "external URL used in web_url fields")
	fs.IntVar(&opts.RateLimitRPM, "rate-limit-rpm", 0, "requests per minute per token, 0 = unlimited")
	fs.DurationVar(&opts.RateWindow, "rate-window", time.Minute, "rate-limit window")
	fs.BoolVar(&opts.QuietEndpointLimits, "endpoint-limits-quiet", false, "endpoint limits answer as GitLab.com documents: no rate-limit headers of their own, 429s with Retry-After only")
	fs.BoolVar(&opts.HideRateLimitHeaders, "no-ratelimit-headers", false, "throttle without any RateLimit-* header (429s keep Retry-After unless --no-headers-429)")
	fs.DurationVar(&opts.Faults.Latency, "latency", 0, "added latency per request")
	fs.DurationVar(&opts.Faults.Jitter, "jitter", 0, "added random latency, up to this")
	fs.Float64Var(&opts.Faults.ErrorRate, "error-rate", 0, "fraction of requests answered 500/502/503")
	fs.Float64Var(&opts.Faults.TimeoutRate, "timeout-rate", 0, "fraction of requests that hang, then answer 504")
	fs.DurationVar(&opts.Faults.Hang, "hang", 30*time.Second, "how long a timeout fault hangs")
	fs.Float64Var(&opts.Faults.MalformedRate, "malformed-rate", 0, "fraction of JSON bodies garbled")
	fs.Float64Var(&opts.Faults.ForbiddenRate, "forbidden-rate", 0, "fraction of projects answering 403 on --forbidden-endpoints")
	fs.Float64Var(&opts.Faults.DeletedRate, "deleted-rate", 0, "fraction of projects listed but answering 404")
	fs.Float64Var(&opts.Faults.Burst429Rate, "burst429-rate", 0, "fraction of requests answered 429 regardless of the limit")
	fs.BoolVar(&opts.Faults.NoHeaders429, "no-headers-429", false, "429s without rate-limit headers and Retry-After")
	fs.IntVar(&opts.GraphQLComplexity, "graphql-complexity", gitlabsim.DefaultGraphQLComplexity, "GraphQL query complexity limit (GitLab: 250 for a user, 300 for an administrator)")
	fs.BoolVar(&opts.NoGraphQL, "no-graphql", false, "serve no GraphQL API: /api/graphql answers 404, as a GitLab before 12.1")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
			return opts, "", err
		}
		return opts, "", fmt.Errorf("flags: %w", err)
	}
	if *endpoints != "" {
		for _, e := range strings.Split(*endpoints, ",") {
			opts.Faults.ForbiddenEndpoints = append(opts.Faults.ForbiddenEndpoints, strings.TrimSpace(e))
		}
	}
	at, err := parseNow(*now, time.Now())
	if err != nil {
		return opts, "", fmt.Errorf("flags: --now: %w", err)
	}
	opts.Now = at
	own, err := gitlabsim.ParseEndpointLimits(*limits)
	if err != nil {
		return opts, "", fmt.Errorf("flags: --endpoint-limits: %w", err)
	}
	opts.EndpointLimits = own
	if *gitlabCom {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if !given["rate-limit-rpm"] {
			opts.RateLimitRPM = gitlabsim.GitLabComRPM
		}
		if !given["endpoint-limits-quiet"] {
			opts.QuietEndpointLimits = true
		}
		opts.EndpointLimits = gitlabsim.MergeEndpointLimits(gitlabsim.GitLabComEndpointLimits(), own)
	}
	return opts, *addr, nil
}

// parseNow reads --now: "" is the simulator's fixed clock (the zero time), "today"
// the UTC midnight that starts wall's day, else a date or an RFC 3339 time.
func parseNow(v string, wall time.Time) (time.Time, error) {
	switch v {
	case "":
		return time.Time{}, nil
	case "today":
		return wall.UTC().Truncate(24 * time.Hour), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date (2006-01-02), an RFC 3339 time nor \"today\"", v)
	}
	return t, nil
}
