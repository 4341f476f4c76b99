package readiness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvThresholds names the environment variable that points at a thresholds file.
const EnvThresholds = "READINESS_THRESHOLDS"

// Thresholds are the limits the rules compare against. A rule matches when a value is
// strictly over its threshold. Sizes compare with GitLab's statistics in bytes.
type Thresholds struct {
	// MaxRepositorySize: a larger Git repository blocks the migration (GitHub
	// Enterprise Importer's Git source limit).
	MaxRepositorySize Bytes `json:"max_repository_size" yaml:"max_repository_size"`
	// MaxExportSize: a larger export (repository + wiki + LFS + snippets + uploads)
	// blocks the migration (GitLab's export archive limit).
	MaxExportSize Bytes `json:"max_export_size" yaml:"max_export_size"`
	// LargeRepositorySize: a larger repository needs attention.
	LargeRepositorySize Bytes `json:"large_repository_size" yaml:"large_repository_size"`
	// LargeStorageSize and LargeRegistrySize: larger project storage or container
	// registry needs attention (GitLab PS "Evaluate" thresholds).
	LargeStorageSize  Bytes `json:"large_storage_size" yaml:"large_storage_size"`
	LargeRegistrySize Bytes `json:"large_registry_size" yaml:"large_registry_size"`
	// ManyCommits: a longer history needs attention.
	ManyCommits int64 `json:"many_commits" yaml:"many_commits"`

	// Counts above which a project needs attention.
	ManyMergeRequests int64 `json:"many_merge_requests" yaml:"many_merge_requests"`
	ManyIssues        int64 `json:"many_issues" yaml:"many_issues"`
	ManyPipelines     int64 `json:"many_pipelines" yaml:"many_pipelines"`
	ManyBranches      int64 `json:"many_branches" yaml:"many_branches"`
	ManyTags          int64 `json:"many_tags" yaml:"many_tags"`

	// Size class boundaries on the export size: below SizeM is S, below SizeL is M,
	// below SizeXL is L, the rest XL.
	SizeM  Bytes `json:"size_m" yaml:"size_m"`
	SizeL  Bytes `json:"size_l" yaml:"size_l"`
	SizeXL Bytes `json:"size_xl" yaml:"size_xl"`
}

// DefaultThresholds returns the GitHub importer's limits and the thresholds GitLab
// Professional Services flag in their migration evaluations.
func DefaultThresholds() Thresholds {
	return Thresholds{
		MaxRepositorySize:   40 * GiB,
		MaxExportSize:       40 * GiB,
		LargeRepositorySize: 5 * GiB,
		LargeStorageSize:    20 * GiB,
		LargeRegistrySize:   20 * GiB,
		ManyCommits:         50000,
		ManyMergeRequests:   5000,
		ManyIssues:          5000,
		ManyPipelines:       5000,
		ManyBranches:        1000,
		ManyTags:            5000,
		SizeM:               100 * MiB,
		SizeL:               1 * GiB,
		SizeXL:              10 * GiB,
	}
}

// Validate reports a threshold that is negative or size classes out of order.
func (t Thresholds) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max_repository_size", int64(t.MaxRepositorySize)},
		{"max_export_size", int64(t.MaxExportSize)},
		{"large_repository_size", int64(t.LargeRepositorySize)},
		{"large_storage_size", int64(t.LargeStorageSize)},
		{"large_registry_size", int64(t.LargeRegistrySize)},
		{"many_commits", t.ManyCommits},
		{"many_merge_requests", t.ManyMergeRequests},
		{"many_issues", t.ManyIssues},
		{"many_pipelines", t.ManyPipelines},
		{"many_branches", t.ManyBranches},
		{"many_tags", t.ManyTags},
		{"size_m", int64(t.SizeM)},
		{"size_l", int64(t.SizeL)},
		{"size_xl", int64(t.SizeXL)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%d)", f.name, f.v))
		}
	}
	if t.SizeM > t.SizeL || t.SizeL > t.SizeXL {
		errs = append(errs, fmt.Errorf("size classes out of order: size_m %d <= size_l %d <= size_xl %d required",
			t.SizeM, t.SizeL, t.SizeXL))
	}
	return errors.Join(errs...)
}

// LoadThresholds reads overrides from a JSON (.json) or YAML (any other extension)
// file. Keys that are absent keep their default; unknown keys are an error so that a
// typo does not silently keep a default.
func LoadThresholds(path string) (Thresholds, error) {
	t := DefaultThresholds()
	data, err := os.ReadFile(path)
	if err != nil {
		return Thresholds{}, fmt.Errorf("readiness thresholds: %w", err)
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(&t)
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		err = dec.Decode(&t)
	}
	if err != nil && !errors.Is(err, io.EOF) { // an empty file overrides nothing
		return Thresholds{}, fmt.Errorf("readiness thresholds %s: %w", path, err)
	}
	if err := t.Validate(); err != nil {
		return Thresholds{}, fmt.Errorf("readiness thresholds %s: %w", path, err)
	}
	return t, nil
}

// ThresholdsFromEnv loads the file named by READINESS_THRESHOLDS, or returns the
// defaults when it is unset.
func ThresholdsFromEnv() (Thresholds, error) {
	path := os.Getenv(EnvThresholds)
	if path == "" {
		return DefaultThresholds(), nil
	}
	return LoadThresholds(path)
}
