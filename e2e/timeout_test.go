//go:build unix

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestFunctionTimeout: an invocation that passes the function's timeout is ended by
// the emulator ("Task timed out"), which the harness counts (timedOut) and answers
// with a fresh environment, as Lambda does.
func TestFunctionTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	rie, err := FindRIE()
	if err != nil {
		if os.Getenv("REQUIRE_INTEGRATION") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", bin, "./testdata/sleeper")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the sleeper: %v\n%s", err, out)
	}
	f, err := StartFunction(ctx, "sleeper", rie, bin, []string{"PATH=" + os.Getenv("PATH")}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()

	var answer string
	if err := f.Invoke(ctx, map[string]string{"sleep": "0s"}, &answer); err != nil || answer != "awake" {
		t.Fatalf("quick invocation: %q, %v", answer, err)
	}
	err = f.Invoke(ctx, map[string]string{"sleep": "5s"}, &answer)
	if !timedOut(err) {
		t.Fatalf("an invocation of 5 s under a 1 s timeout answered %v, want Task timed out", err)
	}
	if err := f.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	answer = ""
	if err := f.Invoke(ctx, map[string]string{"sleep": "0s"}, &answer); err != nil || answer != "awake" {
		t.Fatalf("after the restart: %q, %v", answer, err)
	}
}
