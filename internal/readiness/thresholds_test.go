package readiness

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestThresholdsDeclared: every field of Thresholds has exactly one declaration, so
// none lacks a key, a default or validation.
func TestThresholdsDeclared(t *testing.T) {
	var th Thresholds
	declared := map[uintptr]string{}
	keys := map[string]bool{}
	for _, d := range thresholds {
		if keys[d.key] {
			t.Errorf("key %s declared twice", d.key)
		}
		keys[d.key] = true
		addr := reflect.ValueOf(d.addr(&th)).Pointer()
		if prev, ok := declared[addr]; ok {
			t.Errorf("%s and %s declare the same field", prev, d.key)
		}
		declared[addr] = d.key
	}
	v := reflect.ValueOf(&th).Elem()
	for i := range v.NumField() {
		if v.Type().Field(i).Name == "Path" {
			continue // MIGRATION_PATH's, declared in Paths; not a file key
		}
		if _, ok := declared[v.Field(i).Addr().Pointer()]; !ok {
			t.Errorf("Thresholds.%s has no declaration in thresholds", v.Type().Field(i).Name)
		}
	}
}

// TestThresholdsEveryKey loads, validates and rejects each declared threshold by its key.
func TestThresholdsEveryKey(t *testing.T) {
	dir := t.TempDir()
	for _, d := range thresholds {
		t.Run(d.key, func(t *testing.T) {
			// Just over the default keeps the size classes in order and differs from
			// every other field's default.
			v := d.value(DefaultThresholds()) + 7
			want := DefaultThresholds()
			setThreshold(&want, d, v)
			for _, f := range []struct{ name, body string }{
				{d.key + ".yaml", fmt.Sprintf("%s: %d\n", d.key, v)},
				{d.key + ".json", fmt.Sprintf(`{%q: %d}`, d.key, v)},
			} {
				path := filepath.Join(dir, f.name)
				if err := os.WriteFile(path, []byte(f.body), 0o600); err != nil {
					t.Fatal(err)
				}
				got, err := LoadThresholds(path)
				if err != nil {
					t.Fatalf("%s: %v", f.name, err)
				}
				if got != want {
					t.Errorf("%s: got %+v, want %+v", f.name, got, want)
				}
			}
			neg := DefaultThresholds()
			setThreshold(&neg, d, -1)
			if err := neg.Validate(); err == nil || !strings.Contains(err.Error(), d.key+" is negative") {
				t.Errorf("Validate with %s = -1: err = %v, want %q", d.key, err, d.key+" is negative")
			}
		})
	}
}

func setThreshold(t *Thresholds, d threshold, v int64) {
	switch p := d.addr(t).(type) {
	case *Bytes:
		*p = Bytes(v)
	case *int64:
		*p = v
	default:
		panic(fmt.Sprintf("threshold %s: field of type %T", d.key, p))
	}
}

func TestDefaultThresholdsValid(t *testing.T) {
	if err := DefaultThresholds().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadThresholds(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	def := DefaultThresholds()
	tests := []struct {
		name    string
		file    string
		body    string
		want    func(t *Thresholds)
		wantErr string
	}{
		{"yaml partial override", "t.yaml", "many_branches: 200\nmax_repository_size: 20GiB\nlarge_repository_size: 2 GB\n",
			func(t *Thresholds) { t.ManyBranches = 200; t.MaxRepositorySize = 20 * GiB; t.LargeRepositorySize = 2e9 }, ""},
		{"yaml bytes as number", "t.yml", "size_m: 1048576\n", func(t *Thresholds) { t.SizeM = MiB }, ""},
		{"json partial override", "t.json", `{"many_tags": 10, "max_export_size": "1.5TiB", "size_xl": 21474836480}`,
			func(t *Thresholds) { t.ManyTags = 10; t.MaxExportSize = 3 * TiB / 2; t.SizeXL = 20 * GiB }, ""},
		{"empty yaml keeps defaults", "empty.yaml", "", func(*Thresholds) {}, ""},
		{"unknown yaml key", "t.yaml", "many_brnaches: 5\n", nil, "many_brnaches"},
		{"unknown json key", "t.json", `{"many_brnaches": 5}`, nil, "many_brnaches"},
		{"bad size", "t.yaml", "max_repository_size: big\n", nil, "invalid size"},
		{"bad unit", "t.json", `{"max_repository_size": "5 PB"}`, nil, "invalid size"},
		{"negative count", "t.yaml", "many_issues: -1\n", nil, "many_issues is negative"},
		{"size classes out of order", "t.yaml", "size_m: 2GiB\n", nil, "out of order"},
		{"malformed json", "t.json", `{"many_tags": `, nil, "t.json"},
		{"unknown and bad keys all reported", "t.yaml", "foo: 1\nmany_tags: x\n", nil, "unknown key \"foo\"\nmany_tags: "},
		{"not a mapping", "t.yaml", "- 1\n", nil, "cannot unmarshal"},
		{"duplicate yaml key", "t.yaml", "many_tags: 1\nmany_tags: 2\n", nil, "already defined"},
		{"yaml merge key", "t.yaml", "<<: {many_tags: 3}\n", func(t *Thresholds) { t.ManyTags = 3 }, ""},
		{"yaml null keeps the default", "t.yaml", "many_tags:\nsize_m:\n", func(*Thresholds) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadThresholds(write(tt.file, tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := def
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
	if got, err := LoadThresholds(""); err != nil || got != def {
		t.Errorf(`LoadThresholds("") = %+v, %v; want the defaults`, got, err)
	}
	if _, err := LoadThresholds(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want not-exist", err)
	}
}

func TestThresholdsFromEnv(t *testing.T) {
	t.Setenv(EnvThresholds, "")
	got, err := ThresholdsFromEnv()
	if err != nil || got != DefaultThresholds() {
		t.Fatalf("unset: got %+v, %v; want defaults", got, err)
	}
	path := filepath.Join(t.TempDir(), "thresholds.yaml")
	if err := os.WriteFile(path, []byte("many_pipelines: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvThresholds, path)
	got, err = ThresholdsFromEnv()
	if err != nil || got.ManyPipelines != 7 {
		t.Fatalf("set: got %+v, %v; want many_pipelines 7", got, err)
	}
}
