package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/scancheck"
)

const firing = `{"version":"4","receiver":"critical","status":"firing","alerts":[
 {"status":"firing","labels":{"alertname":"ServiceDown","severity":"critical","instance":"discovery-agent:9090"},
  "annotations":{"summary":"agent down","runbook_url":"https://example.com/RUNBOOK.md#servicedown"},
  "startsAt":"2025-01-02T03:04:05Z","endsAt":"0001-01-01T00:00:00Z"},
 {"status":"resolved","labels":{"alertname":"HighErrorRate","severity":"warning"},
  "annotations":{"summary":"errors"},"startsAt":"2025-01-02T03:00:00Z","endsAt":"2025-01-02T03:10:00Z"}]}`

func TestHandler(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		wantCode int
		wantLogs []map[string]any // subsets of the logged lines, in order
	}{
		{"health", http.MethodGet, "/health", "", http.StatusOK, nil},
		{"alerts logged one line each", http.MethodPost, "/alerts", firing, http.StatusNoContent, []map[string]any{
			{"msg": "alert", "receiver": "critical", "status": "firing", "alertname": "ServiceDown",
				"severity": "critical", "instance": "discovery-agent:9090", "summary": "agent down",
				"runbook_url": "https://example.com/RUNBOOK.md#servicedown", "starts_at": "2025-01-02T03:04:05Z"},
			{"msg": "alert", "status": "resolved", "alertname": "HighErrorRate", "ends_at": "2025-01-02T03:10:00Z"},
		}},
		{"not JSON", http.MethodPost, "/alerts", "alert!", http.StatusBadRequest, []map[string]any{
			{"msg": "unreadable notification", "level": "WARN"},
		}},
		{"no alerts", http.MethodPost, "/alerts", `{"version":"4","alerts":[]}`, http.StatusBadRequest, nil},
		{"too large", http.MethodPost, "/alerts", `{"receiver":"` + strings.Repeat("x", maxBody) + `"}`, http.StatusBadRequest, []map[string]any{
			{"msg": "unreadable notification"},
		}},
		{"GET alerts", http.MethodGet, "/alerts", "", http.StatusMethodNotAllowed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			h := handler(slog.New(slog.NewJSONHandler(&out, nil)))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			lines := logLines(t, out.Bytes())
			if len(lines) != len(tt.wantLogs) {
				t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(tt.wantLogs), out.String())
			}
			for i, want := range tt.wantLogs {
				for k, v := range want {
					if lines[i][k] != v {
						t.Errorf("line %d: %s = %v, want %v", i, k, lines[i][k], v)
					}
				}
			}
			if len(lines) == 2 {
				if _, ok := lines[0]["ends_at"]; ok {
					t.Errorf("a firing alert has no end: %v", lines[0])
				}
			}
		})
	}
}

// run serves on the address it is given and stops when its context ends.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out scancheck.Logs
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--addr", "127.0.0.1:0"}, &out, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	resp, err := http.Post("http://"+addr+"/alerts", "application/json", strings.NewReader(firing))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := strings.Count(out.String(), `"msg":"alert"`); got != 2 {
		t.Errorf("%d alerts logged, want 2:\n%s", got, out.String())
	}
	if _, err := http.Get("http://" + addr + "/health"); err == nil {
		t.Error("still serving after its context ended")
	}
}

func TestRunBadAddress(t *testing.T) {
	err := run(t.Context(), []string{"--addr", "127.0.0.1:notaport"}, &scancheck.Logs{}, nil)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("err = %v, want a listen error", err)
	}
}

func logLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}
