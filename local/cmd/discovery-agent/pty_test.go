package main

import (
	"bytes"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// frame is one drawing of the progress bar, when the test read it.
type frame struct {
	at               time.Time
	pct, done, total int64
	eta              time.Duration // -1 unknown
	resumedAt        int64
	text             string
}

// barFrame matches a drawing of the bar: "  10% |███     | (65/600) 28.0/s  eta 19s ...".
var barFrame = regexp.MustCompile(`(\d+)% \|[^|]*\| \((\d+)/(\d+)\) ([\d.]+)/s  eta (\S+)[^\r\n]*?(?:resumed at (\d+))?\s*(?:\x1b\[0K|$)`)

// terminal is a scan running under a pseudo-terminal, its output read as it comes.
type terminal struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	frames []frame
	done   chan struct{}
}

func startTerminal(t *testing.T, cmd *exec.Cmd) *terminal {
	t.Helper()
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		defer f.Close()
		buf := make([]byte, 4096)
		var pending string
		for {
			n, err := f.Read(buf)
			now := time.Now()
			term.mu.Lock()
			term.out.Write(buf[:n])
			pending += string(buf[:n])
			// Frames end with the bar's erase-to-end-of-line.
			for {
				i := strings.Index(pending, "\x1b[0K")
				if i < 0 {
					break
				}
				if m := barFrame.FindStringSubmatch(pending[:i+4]); m != nil {
					term.frames = append(term.frames, parseFrame(now, m))
				}
				pending = pending[i+4:]
			}
			term.mu.Unlock()
			if err != nil { // EIO once the process is gone
				return
			}
		}
	}()
	return term
}

func parseFrame(at time.Time, m []string) frame {
	n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	fr := frame{at: at, pct: n(m[1]), done: n(m[2]), total: n(m[3]), eta: -1, resumedAt: n(m[6]), text: m[0]}
	if d, err := time.ParseDuration(m[5]); err == nil {
		fr.eta = d
	}
	return fr
}

// wait waits for the scan and its output, and returns the exit code.
func (term *terminal) wait(t *testing.T) int {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- term.cmd.Wait() }()
	select {
	case err := <-exited:
		<-term.done
		code, sig := exitOf(err)
		if sig != 0 {
			t.Fatalf("ended by %v", sig)
		}
		return code
	case <-time.After(3 * time.Minute):
		term.cmd.Process.Kill()
		t.Fatalf("the scan did not end:\n%s", term.output())
	}
	return -1
}

func (term *terminal) output() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

func (term *terminal) snapshot() []frame {
	term.mu.Lock()
	defer term.mu.Unlock()
	return append([]frame(nil), term.frames...)
}

// On a terminal, scan draws a bar with done/total and %; interrupted and resumed, the
// bar's total is the run's and its count starts from what the run had done, not 0; the
// summary follows. It also measures (and logs, never asserts: the timing is the
// machine's) how far the ETA shown once 10% was done is from the real time left.
func TestProgressBarUnderTerminal(t *testing.T) {
	// ETA_PROJECTS sizes the instance for a longer measurement.
	sim, url := startSim(t, gitlabsim.Options{Seed: 29, Groups: 8, Projects: envInt(t, "ETA_PROJECTS", 400), Faults: gitlabsim.Faults{Latency: time.Millisecond}})
	env := scanEnv(t, url)
	env["CONCURRENT_REQUESTS"] = "4"
	// A steady pace the ETA can be measured against; ETA_RPM=0 measures a run only the
	// simulator's latency and CONCURRENT_REQUESTS hold back.
	env["RATE_LIMIT_RPM"] = strconv.Itoa(envInt(t, "ETA_RPM", 30000))
	env["TERM"] = "xterm"
	bin := buildAgent(t)
	n := int64(len(sim.Truth().Projects))

	// A whole run, measured.
	whole := scanEnv(t, url)
	for k, v := range env {
		if k != "DATA_DIR" && k != "EXPORT_DIR" {
			whole[k] = v
		}
	}
	term := startTerminal(t, agentCmd(bin, whole, "scan"))
	if code := term.wait(t); code != 0 {
		t.Fatalf("scan: exit %d\n%s", code, term.output())
	}
	frames := term.snapshot()
	if len(frames) < 3 {
		t.Fatalf("%d bar frames, want the bar drawn through the run:\n%q", len(frames), term.output())
	}
	last := frames[len(frames)-1]
	if last.total != n || last.done != n || last.pct != 100 {
		t.Errorf("last frame %q, want %d/%d at 100%%", last.text, n, n)
	}
	for _, fr := range frames {
		if fr.total != n {
			t.Errorf("frame %q: total %d, want the %d projects in scope", fr.text, fr.total, n)
			break
		}
	}
	out := term.output()
	for _, want := range []string{"readiness (mirror): ready ", "by tier (worst finding): blocker ", "top findings:", "exports: ", "report: "} {
		if !strings.Contains(out, want) {
			t.Errorf("the end of the run does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"level":`) {
		t.Errorf("a terminal got JSON log lines:\n%s", out)
	}
	logETAError(t, frames, n)

	// Interrupted at about a third, then resumed.
	term = startTerminal(t, agentCmd(bin, env, "scan"))
	deadline := time.Now().Add(time.Minute)
	for {
		fs := term.snapshot()
		if len(fs) > 0 && fs[len(fs)-1].done*3 >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scan did not reach a third:\n%s", term.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	term.cmd.Process.Signal(syscall.SIGINT)
	if code := term.wait(t); code != exitInterrupted {
		t.Fatalf("SIGINT: exit %d, want %d\n%s", code, exitInterrupted, term.output())
	}
	before := term.snapshot()
	doneBefore := before[len(before)-1].done

	term = startTerminal(t, agentCmd(bin, env, "scan"))
	if code := term.wait(t); code != 0 {
		t.Fatalf("resumed scan: exit %d\n%s", code, term.output())
	}
	after := term.snapshot()
	if len(after) == 0 {
		t.Fatalf("no bar after the resume:\n%q", term.output())
	}
	first := after[0]
	for _, fr := range after {
		if fr.total != 0 {
			first = fr
			break
		}
	}
	if first.total != n || first.done < doneBefore*9/10 || first.resumedAt == 0 {
		t.Errorf("first frame after the resume %q: want the run's total %d, and the %d or so projects done before as its count and where it resumed", first.text, n, doneBefore)
	}
	if l := after[len(after)-1]; l.done != n || l.total != n {
		t.Errorf("last frame after the resume %q, want %d/%d", l.text, n, n)
	}
	t.Logf("interrupted at %d/%d; resumed bar first drew %q", doneBefore, n, first.text)
}

// logETAError logs the ETA error once 10% of the projects were done: the ETA shown
// then against the time the run really took from there.
func logETAError(t *testing.T, frames []frame, n int64) {
	t.Helper()
	var at10 *frame
	for i := range frames {
		if frames[i].done*10 >= n && frames[i].eta >= 0 {
			at10 = &frames[i]
			break
		}
	}
	end := frames[len(frames)-1].at
	if at10 == nil {
		t.Log("ETA: no frame with an ETA after 10%")
		return
	}
	real := end.Sub(at10.at)
	errPct := 100 * (at10.eta - real).Seconds() / real.Seconds()
	t.Logf("ETA at %d/%d (%d%%): %v shown, %v real: error %+.0f%%", at10.done, n, at10.pct, at10.eta, real.Round(100*time.Millisecond), errPct)
}
