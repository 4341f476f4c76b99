package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

func TestZZClasses(t *testing.T) {
	for _, api := range []string{"rest", "auto"} {
	sim, _ := gitlabsim.New(gitlabsim.Options{Seed: 1, Groups: 40, Projects: 2000, Token: "t"})
	ts := httptest.NewServer(sim)
	defer ts.Close()
	dir := t.TempDir()
	cfg := config.Config{GitLabURL: ts.URL, Token: "t", DataDir: filepath.Join(dir, "data"), ExportDir: filepath.Join(dir, "exports"),
		MaxPerProjectCalls: 200, Concurrency: 16, RequestTimeout: 5 * time.Second, API: api}
	r, _ := New(cfg, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), RetryDelay: time.Millisecond,
		GitLab: gitlab.Options{BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}})
	defer r.Close()
	if _, err := r.Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	var ks []string
	for k := range st.ByClass {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	fmt.Println("==", api)
	for _, k := range ks {
		fmt.Printf("%-45s %.3f\n", k, float64(st.ByClass[k])/2000)
	}
	fmt.Println("total", float64(st.Requests)/2000)
	}
}
