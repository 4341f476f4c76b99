package ciconfig

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// nested is a job whose script is depth-1 nested lists: depth levels with the
// top-level mapping.
func nested(depth int) string {
	return "job: {script: " + strings.Repeat("[", depth-2) + "x" + strings.Repeat("]", depth-2) + "}\n"
}

// aliasChain nests by aliases only: each anchor is a list holding the previous one,
// so the file is flat but expands n levels deep.
func aliasChain(n int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x]\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d]\n", i, i, i-1)
	}
	return b.String()
}

// quietBomb expands to about 300,000 nodes from 20 KB. yaml.v3's own heuristic
// ("document contains excessive aliasing") allows up to 99% of the decoded nodes to
// come from aliases in a document this size, and the padding keeps the share under
// that: only MaxNodes stops it.
func quietBomb() string {
	return "l0: &l0 [" + strings.Repeat("x, ", 999) + "x]\n" +
		"pad: [" + strings.Repeat("x, ", 4999) + "x]\n" +
		"big: [" + strings.Repeat("*l0, ", 299) + "*l0]\n"
}

func TestAnalyzeLimits(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		limited bool // else valid
	}{
		{"billion laughs", aliasBomb(), true},
		{"alias bomb under the yaml.v3 heuristic", quietBomb(), true},
		{"over MaxSize", "job: {script: x}\n" + strings.Repeat("#", MaxSize), true},
		{"at MaxSize", "job: {script: x}\n#" + strings.Repeat("#", MaxSize-len("job: {script: x}\n#")), false},
		{"nesting at MaxDepth", nested(MaxDepth), false},
		{"nesting over MaxDepth", nested(MaxDepth + 1), true},
		{"nesting through aliases", aliasChain(MaxDepth + 1), true},
		{"alias to an enclosing node", "job: &j {script: [*j]}\n", true},
		{"merge keys still resolve", ".base: &base {tags: [x]}\njob: {<<: *base, script: y}\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			type result struct {
				ci  inventory.CI
				err error
			}
			done := make(chan result, 1)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			go func() {
				ci, err := Analyze([]byte(tt.yaml))
				done <- result{ci, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-ctx.Done():
				t.Fatal("Analyze did not return within 30s")
			}
			runtime.ReadMemStats(&after)
			if tt.limited {
				if !errors.Is(r.err, ErrLimit) || !r.ci.Invalid {
					t.Fatalf("Analyze = %+v, %v; want invalid, ErrLimit", r.ci, r.err)
				}
				// Rejecting costs about what reading the file does, not what it expands to.
				if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20+uint64(3*len(tt.yaml)) {
					t.Errorf("rejecting allocated %d MiB", alloc>>20)
				}
				return
			}
			if r.err != nil || r.ci.Invalid || r.ci.Jobs != 1 {
				t.Fatalf("Analyze = %+v, %v; want one valid job", r.ci, r.err)
			}
		})
	}
}

func TestAnalyzeSaysWhy(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"job: [unclosed\n", "decode"},
		{"- a\n", "not a mapping"},
		{aliasBomb(), "aliases are expanded"},
		{nested(MaxDepth + 1), "nesting deeper than"},
	} {
		_, err := Analyze([]byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Analyze(%.20q) error = %v, want it to say %q", tt.yaml, err, tt.want)
		}
	}
}
