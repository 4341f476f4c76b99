package stack

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case
	Args string
}

type stage struct {
	Name, From string
	Instr      []instruction
}

func (s stage) all(cmd string) []string {
	var args []string
	for _, in := range s.Instr {
		if in.Cmd == cmd {
			args = append(args, in.Args)
		}
	}
	return args
}

func (s stage) last(cmd string) string {
	a := s.all(cmd)
	if len(a) == 0 {
		return ""
	}
	return a[len(a)-1]
}

// parseDockerfile returns the global ARGs and the stages of local/Dockerfile.
func parseDockerfile(t *testing.T) (args map[string]string, stages []stage) {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "local/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	args = map[string]string{}
	var ins []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue // comments are dropped, inside continuations too
		}
		if l, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(line)
		cmd, rest, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		ins = append(ins, instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(rest), " ")})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		switch {
		case in.Cmd == "FROM":
			from, name, _ := strings.Cut(in.Args, " AS ")
			stages = append(stages, stage{Name: strings.TrimSpace(name), From: strings.TrimSpace(from)})
		case len(stages) == 0 && in.Cmd == "ARG":
			k, v, _ := strings.Cut(in.Args, "=")
			args[k] = v
		case len(stages) == 0:
			t.Fatalf("%s before the first FROM", in.Cmd)
		default:
			stages[len(stages)-1].Instr = append(stages[len(stages)-1].Instr, in)
		}
	}
	return args, stages
}

func dockerfileStages(t *testing.T) []string {
	_, stages := parseDockerfile(t)
	var names []string
	for _, s := range stages {
		names = append(names, s.Name)
	}
	return names
}

func stageNamed(t *testing.T, stages []stage, name string) stage {
	t.Helper()
	for _, s := range stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("local/Dockerfile has no stage %q", name)
	return stage{}
}

// buildCommand is the builder stage's `go build` as words, with its environment.
func buildCommand(t *testing.T) (words []string, env []string) {
	t.Helper()
	_, stages := parseDockerfile(t)
	b := stageNamed(t, stages, "build")
	for _, e := range b.all("ENV") {
		env = append(env, strings.Fields(e)...)
	}
	for _, r := range b.all("RUN") {
		if strings.HasPrefix(r, "go build ") {
			return shellWords(t, r), env
		}
	}
	t.Fatal("the build stage has no RUN go build")
	return nil, nil
}

// shellWords splits a command line the way the shell would for the simple quoting a
// Dockerfile RUN uses here; it refuses what it does not understand.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	if strings.ContainsAny(s, "&|;`<>") || strings.Contains(s, "$(") {
		t.Fatalf("RUN %q: more than one simple command", s)
	}
	var words []string
	var w strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

func TestDockerfile(t *testing.T) {
	args, stages := parseDockerfile(t)
	names := dockerfileStages(t)
	if want := []string{"build", "gitlab-sim", "alert-webhook", "discovery-agent"}; !slices.Equal(names, want) {
		t.Fatalf("stages %v, want %v (the agent last: a build without --target makes it)", names, want)
	}

	// The builder's Go is the one go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	if args["GO_VERSION"] != string(m[1]) {
		t.Errorf("ARG GO_VERSION=%s, go.mod says go %s", args["GO_VERSION"], m[1])
	}
	if b := stageNamed(t, stages, "build"); b.From != "golang:${GO_VERSION}" {
		t.Errorf("builder FROM %s", b.From)
	}
	words, env := buildCommand(t)
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("builder ENV %v: want CGO_ENABLED=0 for static binaries", env)
	}
	if !slices.Contains(words, "-trimpath") || !strings.Contains(strings.Join(words, " "), "-X main.version=${VERSION}") {
		t.Errorf("go build %v: want -trimpath and -X main.version", words)
	}

	// Every runtime image is distroless, non-root, and runs the binary it copies.
	for _, tc := range []struct {
		stage, entrypoint string
	}{
		{"discovery-agent", `["/discovery-agent"]`},
		{"gitlab-sim", `["/gitlab-sim"]`},
		{"alert-webhook", `["/alert-webhook"]`},
	} {
		s := stageNamed(t, stages, tc.stage)
		if s.From != "gcr.io/distroless/static-debian12:nonroot" {
			t.Errorf("%s FROM %s, want gcr.io/distroless/static-debian12:nonroot", tc.stage, s.From)
		}
		if u := s.last("USER"); u != "nonroot:nonroot" && u != "65532:65532" {
			t.Errorf("%s USER %q, want nonroot", tc.stage, u)
		}
		if got := s.last("ENTRYPOINT"); got != tc.entrypoint {
			t.Errorf("%s ENTRYPOINT %s, want %s", tc.stage, got, tc.entrypoint)
		}
		bin := strings.Trim(tc.entrypoint, `[]"`)
		if !slices.Contains(s.all("COPY"), "--from=build /out"+bin+" "+bin) {
			t.Errorf("%s does not copy /out%s from the builder: %v", tc.stage, bin, s.all("COPY"))
		}
	}
	agent := stageNamed(t, stages, "discovery-agent")
	for cmd, want := range map[string]string{
		"CMD": `["serve"]`, "EXPOSE": "8080 9090", "VOLUME": "/data",
	} {
		if got := agent.last(cmd); got != want {
			t.Errorf("agent %s %q, want %q", cmd, got, want)
		}
	}
	agentEnv := strings.Fields(strings.Join(agent.all("ENV"), " "))
	for _, want := range []string{"DATA_DIR=/data", "EXPORT_DIR=/data/exports"} {
		if !slices.Contains(agentEnv, want) {
			t.Errorf("agent ENV %v, want %s", agentEnv, want)
		}
	}
	if !slices.Contains(agent.all("COPY"), "--from=build --chown=65532:65532 /out/data /data") {
		t.Errorf("agent: /data must belong to nonroot, or the agent cannot write its volume: %v", agent.all("COPY"))
	}
}

// The builder copies only some directories of the context: every package the binaries
// import must be in them, or the image build breaks where `go build` here works.
func TestDockerfileCopiesWhatTheBuildNeeds(t *testing.T) {
	_, stages := parseDockerfile(t)
	var copied []string
	for _, c := range stageNamed(t, stages, "build").all("COPY") {
		f := strings.Fields(c)
		for _, src := range f[:len(f)-1] {
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("COPY %s: %v", src, err)
			}
			copied = append(copied, strings.TrimSuffix(src, "/"))
		}
	}
	words, _ := buildCommand(t)
	var pkgs []string
	for _, w := range words {
		if strings.HasPrefix(w, "./") {
			pkgs = append(pkgs, w)
		}
	}
	if len(pkgs) != 3 {
		t.Fatalf("go build builds %v, want the agent, the simulator and the webhook", pkgs)
	}
	cmd := exec.CommandContext(t.Context(), goTool(t), append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}"}, pkgs...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	top := absRoot(t)
	n := 0
	for dir := range strings.FieldsSeq(string(out)) {
		rel, err := filepath.Rel(top, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module from the proxy: go mod download fetches it
		}
		n++
		if !slices.ContainsFunc(copied, func(c string) bool { return rel == c || strings.HasPrefix(rel, c+"/") }) {
			t.Errorf("the build needs %s, which the builder does not COPY (it copies %v)", rel, copied)
		}
	}
	if n < 3 {
		t.Errorf("go list found %d packages of this module: the check saw nothing", n)
	}
}

// The Dockerfile's own `go build` line, run here, makes static binaries that carry the
// version: what a distroless image needs.
func TestDockerfileBuildIsStatic(t *testing.T) {
	bin := binaries(t)
	for _, name := range []string{"discovery-agent", "gitlab-sim", "alert-webhook"} {
		f, err := elf.Open(filepath.Join(bin, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s has a dynamic loader: not static", name)
			}
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("%s links %v (%v): not static", name, libs, err)
		}
		f.Close()
	}
	out, err := exec.CommandContext(t.Context(), filepath.Join(bin, "discovery-agent"), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "discovery-agent "+testVersion+" (commit "+testCommit+",") {
		t.Errorf("discovery-agent version = %q (%v), want %s and commit %s from -X main.version and main.commit", out, err, testVersion, testCommit)
	}
}

const (
	testVersion = "stack-test"
	testCommit  = "0123abc" // the build argument COMMIT
)

var (
	binDir   string // set by TestMain
	buildMu  sync.Mutex
	buildErr error
	built    bool
)

// binaries builds the three binaries once, with the Dockerfile's go build command and
// environment, and returns their directory.
func binaries(t *testing.T) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if !built {
		built = true
		words, env := buildCommand(t)
		for i, w := range words {
			words[i] = strings.NewReplacer("${VERSION}", testVersion, "${COMMIT}", testCommit, "${BUILD_DATE}", "").Replace(w)
			if i > 0 && words[i-1] == "-o" {
				words[i] = binDir + "/"
			}
		}
		cmd := exec.Command(goTool(t), words[1:]...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%s: %w\n%s", strings.Join(words, " "), err, out)
		}
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		t.Fatal("go not found on PATH")
	}
	return p
}
