//go:build unix

// Command e2e-aws runs a whole discovery through the Lambda functions on this machine
// (aws-lambda-rie, moto_server, the GitLab simulator) and prints what happened and
// what it measured: make e2e-aws.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gl2gh/discovery-agent/e2e"
)

var runs int

func main() {
	var o e2e.Options
	flag.StringVar(&o.BinDir, "bin", "", "directory of <function>/bootstrap for this machine (make lambda-bins); empty builds them")
	flag.Int64Var(&o.Seed, "seed", 3, "simulator seed")
	flag.IntVar(&o.Groups, "groups", 12, "simulated groups in total")
	flag.IntVar(&o.Projects, "projects", 150, "simulated projects")
	flag.IntVar(&o.Workers, "workers", 2, "worker execution environments (concurrent invocations)")
	flag.IntVar(&o.BatchSize, "batch", 1, "messages per worker invocation")
	flag.DurationVar(&o.Visibility, "visibility", 40*time.Second, "scan queue visibility timeout")
	flag.DurationVar(&o.WorkerTimeout, "worker-timeout", 30*time.Second, "worker function timeout (a page of 100 projects must fit)")
	flag.DurationVar(&o.Faults.Latency, "latency", 0, "latency the simulator adds to every request")
	flag.IntVar(&o.RateLimitRPM, "rpm", 0, "shared rate budget, requests per minute; 0 for none (RATE_LIMIT_RPM=auto in the environment: the agent's default)")
	flag.IntVar(&o.SimRPM, "sim-rpm", 0, "limit the simulator announces and enforces, requests per minute; 0 for none")
	flag.BoolVar(&o.Kill, "kill", false, "kill a worker in the middle of its first invocation")
	flag.BoolVar(&o.Recursion, "recursion", false, "model Lambda's recursive loop detection (refuse the 17th invocation of a chain unless template.yaml's RecursiveLoop is Allow)")
	flag.StringVar(&o.Template, "template", "", "SAM template the recursion model reads RecursiveLoop from; default template.yaml")
	flag.DurationVar(&o.Retention, "retention", 0, "scan queue message retention, accelerated (older messages are deleted unseen); 0 for 14 days")
	flag.DurationVar(&o.ReconcileEvery, "reconcile-every", 0, "invoke the reconciler on this schedule during the scan; 0 never")
	flag.IntVar(&runs, "runs", 1, "runs one after the other (the second and later write diff.json)")
	flag.Parse()
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "e2e-aws:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o e2e.Options) error {
	h, err := e2e.Start(ctx, o)
	if err != nil {
		return err
	}
	defer h.Close()
	for i := range runs {
		rep, err := h.Run(ctx)
		fmt.Printf("--- run %d of %d\n%s", i+1, runs, rep.Summary())
		if err != nil {
			return err
		}
		if len(rep.Diffs) > 0 {
			return fmt.Errorf("%d differences from the truth", len(rep.Diffs))
		}
	}
	return nil
}
