package readiness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadThresholdsSizeCap: a file over MaxThresholdsSize is refused, even one
// valid YAML would accept (the rest is a comment).
func TestLoadThresholdsSizeCap(t *testing.T) {
	dir := t.TempDir()
	head := "many_tags: 3\n#"
	for _, tt := range []struct {
		name string
		size int
		ok   bool
	}{
		{"at the cap", MaxThresholdsSize, true},
		{"over the cap", MaxThresholdsSize + 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "t.yaml")
			body := head + strings.Repeat("x", tt.size-len(head))
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadThresholds(path)
			if !tt.ok {
				if err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
					t.Fatalf("err = %v, want the size cap", err)
				}
				return
			}
			if err != nil || got.ManyTags != 3 {
				t.Fatalf("got many_tags %d, %v; want 3", got.ManyTags, err)
			}
		})
	}
	if _, err := LoadThresholds(dir); err == nil {
		t.Error("a directory loaded as a thresholds file")
	}
}

func FuzzLoadThresholds(f *testing.F) {
	for _, s := range []string{
		"", "many_tags: 3\n", "size_m: 1GiB\nsize_l: 2GiB\nsize_xl: 3 GB\n", "<<: {many_tags: 3}\n",
		`{"max_export_size": "1.5TiB", "many_tags": 10}`, "many_issues: -1\n", "- 1\n", "a: &a [*a]\n",
		"max_repository_size: 99999999999 TiB\n", `{"size_m": 1e400}`, "many_tags: !!binary AAAA\n",
		"effort_m: 50\n", `{"effort_size_per_hour": "1GiB", "effort_ci_jobs_per_hour": 0}`, "max_export_size: 0\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"t.yaml", "t.json"} {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadThresholds(path)
			if err != nil {
				if got != (Thresholds{}) {
					t.Fatalf("%s: error %v with thresholds %+v", name, err, got)
				}
				continue
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("%s: loaded thresholds fail Validate: %v", name, err)
			}
		}
	})
}
