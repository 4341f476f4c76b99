package readiness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvThresholds names the environment variable that points at a thresholds file.
const EnvThresholds = "READINESS_THRESHOLDS"

// MaxThresholdsSize bounds a thresholds file: two dozen keys fit in a few hundred
// bytes, so a larger file is a wrong path (a log, a device), refused before it is
// read whole.
const MaxThresholdsSize = 1 << 20

// Thresholds are the limits the rules compare against. A rule matches when a value is
// strictly over its threshold. Sizes compare with GitLab's statistics in bytes.
//
// Every field is declared once in thresholds below, with its key in a thresholds file
// and its default; a test fails for a field without a declaration.
type Thresholds struct {
	// Path is the migration path the thresholds assume (MIGRATION_PATH, see Paths):
	// its limits set the defaults of the size limits. It is not a file key.
	Path string

	// MaxRepositorySize: a larger Git repository blocks the migration (GitHub
	// Enterprise Importer's Git source limit); 0 means the path has none.
	MaxRepositorySize Bytes
	// MaxExportSize: a larger export (repository + wiki + LFS + snippets + uploads)
	// blocks the migration (GitLab's export archive limit); 0 means the path has none.
	MaxExportSize Bytes
	// LargeRepositorySize: a larger repository needs attention.
	LargeRepositorySize Bytes
	// LargeStorageSize and LargeRegistrySize: larger project storage or container
	// registry needs attention (GitLab PS "Evaluate" thresholds).
	LargeStorageSize  Bytes
	LargeRegistrySize Bytes
	// ManyCommits: a longer history needs attention.
	ManyCommits int64

	// Counts above which a project needs attention.
	ManyMergeRequests int64
	ManyIssues        int64
	ManyPipelines     int64
	ManyBranches      int64
	ManyTags          int64

	// Size class boundaries on the export size: below SizeM is S, below SizeL is M,
	// below SizeXL is L, the rest XL.
	SizeM  Bytes
	SizeL  Bytes
	SizeXL Bytes

	// Effort weights, see Effort: hours per project, per finding of each tier, one
	// more hour per EffortCIJobsPerHour CI jobs and per EffortSizePerHour of export
	// (0 turns a size term off); effort class boundaries in hours.
	EffortBaseHours     int64
	EffortBlockerHours  int64
	EffortDataHours     int64
	EffortCIHours       int64
	EffortSettingsHours int64
	EffortCIJobsPerHour int64
	EffortSizePerHour   Bytes
	EffortM             int64
	EffortL             int64
	EffortXL            int64
}

// A threshold declares one field of Thresholds: its key in a thresholds file, its
// default and where it is. DefaultThresholds, LoadThresholds and Validate iterate
// over the declarations, so a declared threshold has its default, its key and its
// validation.
type threshold struct {
	key        string
	addr       func(*Thresholds) any // a *Bytes (a size, "40GiB" allowed) or a *int64
	value      func(Thresholds) int64
	setDefault func(*Thresholds)
}

func declare[T Bytes | int64](key string, def T, field func(*Thresholds) *T) threshold {
	return threshold{
		key:        key,
		addr:       func(t *Thresholds) any { return field(t) },
		value:      func(t Thresholds) int64 { return int64(*field(&t)) },
		setDefault: func(t *Thresholds) { *field(t) = def },
	}
}

// thresholds are the GitHub importer's limits and the thresholds GitLab Professional
// Services flag in their migration evaluations. docs/EXPORTS.md documents each key (a
// test checks).
var thresholds = []threshold{
	declare("max_repository_size", 40*GiB, func(t *Thresholds) *Bytes { return &t.MaxRepositorySize }),
	declare("max_export_size", 40*GiB, func(t *Thresholds) *Bytes { return &t.MaxExportSize }),
	declare("large_repository_size", 5*GiB, func(t *Thresholds) *Bytes { return &t.LargeRepositorySize }),
	declare("large_storage_size", 20*GiB, func(t *Thresholds) *Bytes { return &t.LargeStorageSize }),
	declare("large_registry_size", 20*GiB, func(t *Thresholds) *Bytes { return &t.LargeRegistrySize }),
	declare("many_commits", 50000, func(t *Thresholds) *int64 { return &t.ManyCommits }),
	declare("many_merge_requests", 5000, func(t *Thresholds) *int64 { return &t.ManyMergeRequests }),
	declare("many_issues", 5000, func(t *Thresholds) *int64 { return &t.ManyIssues }),
	declare("many_pipelines", 5000, func(t *Thresholds) *int64 { return &t.ManyPipelines }),
	declare("many_branches", 1000, func(t *Thresholds) *int64 { return &t.ManyBranches }),
	declare("many_tags", 5000, func(t *Thresholds) *int64 { return &t.ManyTags }),
	declare("size_m", 100*MiB, func(t *Thresholds) *Bytes { return &t.SizeM }),
	declare("size_l", 1*GiB, func(t *Thresholds) *Bytes { return &t.SizeL }),
	declare("size_xl", 10*GiB, func(t *Thresholds) *Bytes { return &t.SizeXL }),
	declare("effort_base_hours", 1, func(t *Thresholds) *int64 { return &t.EffortBaseHours }),
	declare("effort_blocker_hours", 16, func(t *Thresholds) *int64 { return &t.EffortBlockerHours }),
	declare("effort_data_hours", 2, func(t *Thresholds) *int64 { return &t.EffortDataHours }),
	declare("effort_ci_hours", 4, func(t *Thresholds) *int64 { return &t.EffortCIHours }),
	declare("effort_settings_hours", 1, func(t *Thresholds) *int64 { return &t.EffortSettingsHours }),
	declare("effort_ci_jobs_per_hour", 5, func(t *Thresholds) *int64 { return &t.EffortCIJobsPerHour }),
	declare("effort_size_per_hour", 10*GiB, func(t *Thresholds) *Bytes { return &t.EffortSizePerHour }),
	declare("effort_m", 4, func(t *Thresholds) *int64 { return &t.EffortM }),
	declare("effort_l", 16, func(t *Thresholds) *int64 { return &t.EffortL }),
	declare("effort_xl", 40, func(t *Thresholds) *int64 { return &t.EffortXL }),
}

// pathDefaults returns the declared defaults with the path's limits over them.
func pathDefaults(p Path) Thresholds {
	t := Thresholds{Path: p.Name}
	for _, d := range thresholds {
		d.setDefault(&t)
	}
	p.defaults(&t)
	return t
}

// DefaultThresholds returns the defaults of DefaultPath: its limits and the thresholds
// GitLab Professional Services flag in their migration evaluations.
func DefaultThresholds() Thresholds {
	p, _ := PathFor(DefaultPath)
	return pathDefaults(p)
}

// PathThresholds returns the defaults of a migration path.
func PathThresholds(path string) (Thresholds, error) {
	p, err := PathFor(path)
	if err != nil {
		return Thresholds{}, err
	}
	return pathDefaults(p), nil
}

// Validate reports a threshold that is negative or size classes out of order.
func (t Thresholds) Validate() error {
	var errs []error
	for _, d := range thresholds {
		if v := d.value(t); v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%d)", d.key, v))
		}
	}
	if t.SizeM > t.SizeL || t.SizeL > t.SizeXL {
		errs = append(errs, fmt.Errorf("size classes out of order: size_m %d <= size_l %d <= size_xl %d required",
			t.SizeM, t.SizeL, t.SizeXL))
	}
	if t.EffortM > t.EffortL || t.EffortL > t.EffortXL {
		errs = append(errs, fmt.Errorf("effort classes out of order: effort_m %d <= effort_l %d <= effort_xl %d required",
			t.EffortM, t.EffortL, t.EffortXL))
	}
	if _, err := PathFor(t.Path); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// LoadThresholds is Load on DefaultPath.
func LoadThresholds(path string) (Thresholds, error) { return Load(DefaultPath, path) }

// Load returns the migration path's defaults overridden by a JSON (.json) or YAML (any
// other extension) file; an empty path means no file, the defaults. Keys that are
// absent keep their default; unknown keys are an error so that a typo does not
// silently keep a default.
func Load(migrationPath, path string) (Thresholds, error) {
	t, err := PathThresholds(migrationPath)
	if err != nil {
		return Thresholds{}, fmt.Errorf("%s: %w", EnvPath, err)
	}
	if path == "" {
		return t, nil
	}
	data, err := readFile(path, MaxThresholdsSize)
	if err != nil {
		return Thresholds{}, fmt.Errorf("readiness thresholds: %w", err)
	}
	var values map[string]func(addr any) error
	if strings.EqualFold(filepath.Ext(path), ".json") {
		values, err = jsonValues(data)
	} else {
		values, err = yamlValues(data)
	}
	if err != nil {
		return Thresholds{}, fmt.Errorf("readiness thresholds %s: %w", path, err)
	}
	if err := t.set(values); err != nil {
		return Thresholds{}, fmt.Errorf("readiness thresholds %s: %w", path, err)
	}
	if err := t.Validate(); err != nil {
		return Thresholds{}, fmt.Errorf("readiness thresholds %s: %w", path, err)
	}
	return t, nil
}

// readFile reads path, failing once it is over max bytes without reading further.
func readFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return data, nil
}

// set decodes each key's value into its field.
func (t *Thresholds) set(values map[string]func(addr any) error) error {
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(values)) {
		i := slices.IndexFunc(thresholds, func(d threshold) bool { return d.key == key })
		if i < 0 {
			errs = append(errs, fmt.Errorf("unknown key %q", key))
			continue
		}
		if err := values[key](thresholds[i].addr(t)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

// jsonValues maps each key of a JSON object to a decoder of its value.
func jsonValues(data []byte) (map[string]func(addr any) error, error) {
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&raw); err != nil && !errors.Is(err, io.EOF) { // an empty file overrides nothing
		return nil, err
	}
	values := make(map[string]func(any) error, len(raw))
	for key, v := range raw {
		values[key] = func(addr any) error { return json.Unmarshal(v, addr) }
	}
	return values, nil
}

// yamlValues maps each key of a YAML mapping to a decoder of its value.
func yamlValues(data []byte) (map[string]func(addr any) error, error) {
	var nodes map[string]yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&nodes); err != nil && !errors.Is(err, io.EOF) { // an empty file overrides nothing
		return nil, err
	}
	values := make(map[string]func(any) error, len(nodes))
	for key, n := range nodes {
		values[key] = func(addr any) error { return n.Decode(addr) }
	}
	return values, nil
}

// ThresholdsFromEnv loads the file named by READINESS_THRESHOLDS, or returns the
// defaults when it is unset.
func ThresholdsFromEnv() (Thresholds, error) {
	return LoadThresholds(os.Getenv(EnvThresholds))
}
