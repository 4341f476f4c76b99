//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestAdmit(t *testing.T) {
	h := functionHash("worker")
	other := functionHash("scheduler")
	chain := func(n int) string {
		return "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=" + other + ":3|" + h + ":" + strconv.Itoa(n)
	}
	tests := []struct {
		name          string
		traces        []string
		allow         bool
		refused, want int // refused records, the invocation's chain count
	}{
		{"untraced starts a chain", []string{""}, false, 0, 1},
		{"one more", []string{chain(4)}, false, 0, 5},
		{"the 16th invocation runs", []string{chain(15)}, false, 0, 16},
		{"the 17th is refused", []string{chain(16)}, false, 1, 1},
		{"allowed", []string{chain(16)}, true, 0, 17},
		{"longest chain of a batch", []string{chain(2), "", chain(9)}, false, 0, 10},
		{"refused one of a batch", []string{chain(2), chain(16)}, false, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := admit("worker", tt.traces, tt.allow)
			if len(a.refuse) != tt.refused || a.chain != tt.want || len(a.deliver)+len(a.refuse) != len(tt.traces) {
				t.Fatalf("admit = %+v, want %d refused, chain %d", a, tt.refused, tt.want)
			}
			got := parseTrace(a.header)
			if got.lineage[h] != tt.want || !strings.HasPrefix(got.root(), "Root=1-") {
				t.Errorf("invocation header %q: lineage %v root %q", a.header, got.lineage, got.root())
			}
			if strings.Contains(tt.traces[0], "Lineage") && tt.refused == 0 && got.lineage[other] != 3 {
				t.Errorf("invocation header %q lost the other function's count", a.header)
			}
		})
	}
}

// TestRecursiveLoopFromTemplate: the model reads the worker's setting from the
// template, so deleting it from template.yaml makes the model refuse the 17th hop.
func TestRecursiveLoopFromTemplate(t *testing.T) {
	got, err := RecursiveLoop("../template.yaml")
	if err != nil || got != "Allow" {
		t.Fatalf("template.yaml: RecursiveLoop = %q, %v; want Allow", got, err)
	}
	path := withoutRecursiveLoop(t)
	if got, err := RecursiveLoop(path); err != nil || got != "Terminate" {
		t.Errorf("template without RecursiveLoop: %q, %v; want Lambda's default Terminate", got, err)
	}
}

// withoutRecursiveLoop writes a copy of template.yaml without the worker's
// RecursiveLoop: Allow and returns its path.
func withoutRecursiveLoop(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	removed := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.TrimSpace(line) == "RecursiveLoop: Allow" {
			removed++
			continue
		}
		kept = append(kept, line)
	}
	if removed != 1 {
		t.Fatalf("template.yaml has %d lines RecursiveLoop: Allow, want 1", removed)
	}
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
