//go:build unix

// Command sam-local-env gets this machine ready for docs/DEPLOY.md's `sam local
// invoke`: moto_server on :5000 and the GitLab simulator on :8929, both on every
// interface so that Docker containers reach them as host.docker.internal, with the
// tables, queues, bucket, token secret and runs that events/env.json and the sample
// events name. It prints the env.json to use and runs until interrupted:
// make sam-local-env.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gl2gh/discovery-agent/e2e"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/mototest"
)

func main() {
	motoAddr := flag.String("moto", "0.0.0.0:5000", "address moto_server listens on (events/env.json: port 5000)")
	simAddr := flag.String("sim", "0.0.0.0:8929", "address the GitLab simulator listens on (events/env.json: port 8929)")
	envFile := flag.String("env", "events/env.json", "the env.json to print")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *motoAddr, *simAddr, *envFile); err != nil {
		fmt.Fprintln(os.Stderr, "sam-local-env:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, motoAddr, simAddr, envFile string) error {
	env, err := os.ReadFile(envFile)
	if err != nil {
		return err
	}
	motoHost, motoPort, err := net.SplitHostPort(motoAddr)
	if err != nil {
		return fmt.Errorf("-moto: %w", err)
	}
	bin := cmp.Or(os.Getenv("MOTO_SERVER"), mototest.Binary)
	path, err := exec.LookPath(bin)
	if err != nil {
		return fmt.Errorf("%w (pip install 'moto[server]')", err)
	}
	moto := exec.Command(path, "-H", motoHost, "-p", motoPort)
	moto.Stdout, moto.Stderr = os.Stderr, os.Stderr
	if err := moto.Start(); err != nil {
		return fmt.Errorf("start %s: %w", path, err)
	}
	defer func() { _ = moto.Process.Signal(os.Interrupt); _ = moto.Wait() }()

	sim, err := gitlabsim.New(e2e.SamSimOptions)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", simAddr)
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	clients := e2e.NewSamClients("http://127.0.0.1:" + motoPort)
	if err := awaitMoto(ctx, clients); err != nil {
		return err
	}
	if err := e2e.SetUpSamLocal(ctx, clients); err != nil {
		return err
	}
	abs, _ := filepath.Abs(envFile)
	fmt.Printf(`moto on %s, the GitLab simulator on %s (token %q in secret %s).
Runs: %s (running: the group samples), %s (scanned, awaiting export: sqs-export.json).
Use --env-vars %s, which reads:
%s
In another terminal, e.g.:
  sam local invoke WorkerFunction -e events/sqs-group-scan.json --env-vars events/env.json \
    --parameter-overrides GitLabURL=http://host.docker.internal:8929 --add-host host.docker.internal:host-gateway
Ctrl-C stops both; run again for a fresh set-up.
`, motoAddr, simAddr, e2e.SamToken, e2e.SamTokenSecret, e2e.SamScanRun, e2e.SamExportRun, abs, env)
	<-ctx.Done()
	slog.Info("stopping")
	return nil
}

// awaitMoto waits until moto_server answers.
func awaitMoto(ctx context.Context, c e2e.SamClients) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := c.DynamoDB.ListTables(ctx, nil)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(errors.New("moto_server did not answer within 30s"), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
