// Command alert-webhook is the receiver monitoring/alertmanager.yml sends every alert to
// by default (http://127.0.0.1:5001/alerts): it writes each alert as one JSON log line on
// stdout, so that alerts are visible in `docker-compose logs alert-webhook` or
// .local/alert-webhook.log until a pager or chat receiver is configured.
//
//	alert-webhook [--addr 127.0.0.1:5001]
//
// POST /alerts takes Alertmanager's webhook payload; GET /health answers 200.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// maxBody bounds a notification: Alertmanager's groups are small, a larger body is not
// one of its notifications.
const maxBody = 1 << 20

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "alert-webhook:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. When ready is not nil it receives the listening address.
func run(ctx context.Context, args []string, out io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("alert-webhook", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:5001", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(out, nil))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: handler(log), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("alert-webhook listening", "addr", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// notification is the part of Alertmanager's webhook payload (version 4) that is logged.
type notification struct {
	Version  string  `json:"version"`
	Receiver string  `json:"receiver"`
	Status   string  `json:"status"`
	Alerts   []alert `json:"alerts"`
}

type alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

func handler(log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /alerts", func(w http.ResponseWriter, r *http.Request) {
		var n notification
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		if err := dec.Decode(&n); err != nil {
			log.Warn("unreadable notification", "remote", r.RemoteAddr, "err", err.Error())
			http.Error(w, "want an Alertmanager webhook payload: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(n.Alerts) == 0 {
			http.Error(w, "notification has no alerts", http.StatusBadRequest)
			return
		}
		for _, a := range n.Alerts {
			attrs := []any{
				"receiver", n.Receiver, "status", a.Status,
				"alertname", a.Labels["alertname"], "severity", a.Labels["severity"],
				"instance", a.Labels["instance"], "summary", a.Annotations["summary"],
				"starts_at", a.StartsAt,
			}
			if a.Status == "resolved" {
				attrs = append(attrs, "ends_at", a.EndsAt)
			}
			if u := a.Annotations["runbook_url"]; u != "" {
				attrs = append(attrs, "runbook_url", u)
			}
			log.Info("alert", attrs...)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
