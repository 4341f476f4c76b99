// Package readiness judges how ready a GitLab project is to move to GitHub. Rules
// produce findings (blocker, warning or info, each with a code, a message and
// remediation); the findings give the project its category:
//
//	blocked          at least one blocker
//	needs_attention  at least one warning, no blocker
//	ready            neither (info findings do not count)
//
// Unknown values (a nil count, nil statistics) never trigger a rule.
//
// The thresholds the rules compare against are one table, Thresholds. The defaults
// come from DefaultThresholds; the file named by the READINESS_THRESHOLDS environment
// variable (JSON or YAML, see LoadThresholds) overrides any of them.
//
// Besides the category, Assess gives a 0-100 complexity score (see Score) and a size
// class S/M/L/XL of the export size (see SizeClass).
package readiness

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// Finding severities, most severe first.
const (
	SeverityBlocker = "blocker"
	SeverityWarning = "warning"
	SeverityInfo    = "info"
)

// Finding codes.
const (
	CodeRepoTooLarge       = "repo_too_large"
	CodeExportTooLarge     = "export_too_large"
	CodeGitLabCI           = "gitlab_ci"
	CodeLFS                = "lfs"
	CodeSubmodules         = "submodules"
	CodeContainerRegistry  = "container_registry"
	CodePackages           = "packages"
	CodeWebhooks           = "webhooks"
	CodeCIVariables        = "ci_variables"
	CodeInternalVisibility = "internal_visibility"
	CodeProtectedBranches  = "protected_branches"
	CodeManyMergeRequests  = "many_merge_requests"
	CodeManyIssues         = "many_issues"
	CodeManyPipelines      = "many_pipelines"
	CodeManyBranches       = "many_branches"
	CodeManyTags           = "many_tags"
	CodeLargeRepo          = "large_repo"
	CodeLargeStorage       = "large_storage"
	CodeLargeRegistry      = "large_registry"
	CodeManyCommits        = "many_commits"
	CodeCIInvalid          = "ci_invalid"
	CodeArchived           = "archived"
	CodeEmptyRepo          = "empty_repo"
	CodeLowerBoundCounts   = "lower_bound_counts"
	CodeIncompleteScan     = "incomplete_scan"
)

// Size classes.
const (
	SizeS  = "S"
	SizeM  = "M"
	SizeL  = "L"
	SizeXL = "XL"
)

// Rule describes one finding code.
type Rule struct {
	Code        string
	Severity    string
	Title       string
	Remediation string
}

var rules = []Rule{
	{CodeRepoTooLarge, SeverityBlocker, "Repository over the importer's size limit",
		"Shrink the repository below the limit before migrating: remove large files from history (git filter-repo), move binaries to LFS or release assets, or split the repository."},
	{CodeExportTooLarge, SeverityBlocker, "Export over the importer's size limit",
		"Shrink what the export carries: move LFS objects separately, trim the wiki, uploads and snippets, or migrate the Git history alone and carry the rest over by other means."},
	{CodeGitLabCI, SeverityWarning, "GitLab CI/CD to convert",
		"Convert .gitlab-ci.yml to GitHub Actions workflows (GitHub Actions Importer can audit and dry-run the conversion); pipelines, schedules and their history are not migrated."},
	{CodeLFS, SeverityWarning, "LFS objects to re-push",
		"The importer does not migrate LFS objects: after the migration run `git lfs fetch --all` against GitLab and `git lfs push --all` to GitHub."},
	{CodeSubmodules, SeverityWarning, "Submodules to repoint",
		"Migrate the submodule repositories in the same or an earlier wave and update the URLs in .gitmodules to their GitHub locations."},
	{CodeContainerRegistry, SeverityWarning, "Container images to copy",
		"Container images are not migrated: copy them to GitHub Container Registry (e.g. with skopeo or crane) and update image references in workflows and deployments."},
	{CodePackages, SeverityWarning, "Packages to republish",
		"Packages are not migrated: republish them to GitHub Packages (or another registry) and update consumers' registry configuration."},
	{CodeWebhooks, SeverityWarning, "Webhooks to recreate",
		"Webhooks are not migrated: recreate them on the GitHub repository or organization (or replace them with a GitHub App) with new secrets."},
	{CodeCIVariables, SeverityWarning, "CI/CD variables to recreate",
		"CI/CD variables are not migrated: recreate them as GitHub Actions secrets and variables at repository, environment or organization level."},
	{CodeInternalVisibility, SeverityWarning, "Internal visibility has no direct equivalent",
		"GitHub has internal visibility only in enterprise-owned organizations: decide between private and internal before migrating."},
	{CodeProtectedBranches, SeverityWarning, "Protected branches to recreate",
		"Recreate branch protection as GitHub rulesets or branch protection rules; GitLab approval and push rules are not migrated."},
	{CodeManyMergeRequests, SeverityWarning, "Many merge requests",
		"Migration time grows with the number of merge requests: give this project its own slot or a quiet window, and time it in a dry run."},
	{CodeManyIssues, SeverityWarning, "Many issues",
		"Many issues lengthen the migration: time it in a dry run and plan the window accordingly, or close and archive stale issues first."},
	{CodeManyPipelines, SeverityWarning, "Many pipelines",
		"Pipeline history is not migrated: export what must be kept (audit, release evidence) before GitLab is switched off."},
	{CodeManyBranches, SeverityWarning, "Many branches",
		"Delete merged and stale branches before migrating: every ref is migrated and slows the import."},
	{CodeManyTags, SeverityWarning, "Many tags",
		"Prune obsolete tags before migrating: every ref is migrated and slows the import."},
	{CodeLargeRepo, SeverityWarning, "Large repository",
		"Check for files over 100 MiB (GitHub rejects them) and pushes over 2 GiB; consider LFS or a history clean-up, and time the migration in a dry run."},
	{CodeLargeStorage, SeverityWarning, "Large project storage",
		"Much of the storage (job artifacts, packages, registry, LFS) does not move with the importer: decide what to carry over, archive or drop, and plan where it goes on GitHub."},
	{CodeLargeRegistry, SeverityWarning, "Large container registry",
		"Copying the images takes long and costs transfer: prune old tags first, then copy them to GitHub Container Registry (skopeo, crane) ahead of the cut-over."},
	{CodeManyCommits, SeverityWarning, "Long history",
		"A long history makes the Git import slow: time it in a dry run and give the project its own slot."},
	{CodeCIInvalid, SeverityInfo, "CI file could not be parsed",
		"The .gitlab-ci.yml is not valid YAML or not a mapping: its conversion effort is unknown, so review it by hand."},
	{CodeArchived, SeverityInfo, "Archived project",
		"Decide whether to migrate it (and archive it on GitHub) or leave it behind."},
	{CodeEmptyRepo, SeverityInfo, "Empty repository",
		"Nothing to import: create the GitHub repository directly or skip the project."},
	{CodeLowerBoundCounts, SeverityInfo, "Counts are lower bounds",
		"GitLab stops counting at 10,000: the real numbers are higher. Check them in GitLab if they matter for planning."},
	{CodeIncompleteScan, SeverityInfo, "Scan incomplete",
		"Some profiling steps failed, so rules needing that data were not evaluated: fix the token's access (403) or re-run discovery."},
}

var ruleByCode = func() map[string]Rule {
	m := make(map[string]Rule, len(rules))
	for _, r := range rules {
		m[r.Code] = r
	}
	return m
}()

// Rules lists every finding code with its severity, a short title and remediation.
func Rules() []Rule { return slices.Clone(rules) }

// RuleFor returns the rule of a finding code.
func RuleFor(code string) (Rule, bool) {
	r, ok := ruleByCode[code]
	return r, ok
}

// Assess applies the rules to a project.
func Assess(p inventory.Project, t Thresholds) inventory.Readiness {
	a := assessment{findings: []inventory.Finding{}}
	st := p.Statistics

	if st != nil {
		repoTooLarge := st.RepositorySize > int64(t.MaxRepositorySize)
		if repoTooLarge {
			a.add(CodeRepoTooLarge, "Repository is %s, over the GitHub importer's %s limit.",
				Bytes(st.RepositorySize), t.MaxRepositorySize)
		}
		if exp := st.ExportSize(); exp > int64(t.MaxExportSize) {
			a.add(CodeExportTooLarge, "Estimated export (repository, wiki, LFS, snippets, uploads) is %s, over the %s limit.",
				Bytes(exp), t.MaxExportSize)
		}
		// A repository too large to import is already a blocker; saying it is large too is noise.
		if !repoTooLarge && st.RepositorySize > int64(t.LargeRepositorySize) {
			a.add(CodeLargeRepo, "Repository is %s, over %s.", Bytes(st.RepositorySize), t.LargeRepositorySize)
		}
		if st.StorageSize > int64(t.LargeStorageSize) {
			a.add(CodeLargeStorage, "Project storage is %s, over %s.", Bytes(st.StorageSize), t.LargeStorageSize)
		}
		if st.ContainerRegistrySize > int64(t.LargeRegistrySize) {
			a.add(CodeLargeRegistry, "Container registry is %s, over %s.", Bytes(st.ContainerRegistrySize), t.LargeRegistrySize)
		}
		if st.CommitCount > t.ManyCommits {
			a.add(CodeManyCommits, "%d commits, over %d.", st.CommitCount, t.ManyCommits)
		}
	}

	f := p.Features
	if f.HasCI {
		switch {
		case f.CI == nil:
			a.add(CodeGitLabCI, "GitLab CI/CD configuration to convert (complexity unknown).")
		case f.CI.Invalid:
			a.add(CodeGitLabCI, "GitLab CI/CD configuration to convert (invalid file, complexity unknown).")
		default:
			a.add(CodeGitLabCI, "GitLab CI/CD configuration to convert: %d jobs, %d stages, %d includes, complexity %d/100.",
				f.CI.Jobs, f.CI.Stages, f.CI.Includes, f.CI.Complexity)
		}
	}
	if f.CI != nil && f.CI.Invalid {
		a.add(CodeCIInvalid, "The .gitlab-ci.yml could not be parsed.")
	}
	if f.UsesLFS || (st != nil && st.LFSObjectsSize > 0) {
		if st != nil && st.LFSObjectsSize > 0 {
			a.add(CodeLFS, "%s of LFS objects to re-push.", Bytes(st.LFSObjectsSize))
		} else {
			a.add(CodeLFS, "LFS objects to re-push.")
		}
	}
	if f.HasSubmodules {
		a.add(CodeSubmodules, "Repository has submodules.")
	}
	if f.RegistryInUse || (st != nil && st.ContainerRegistrySize > 0) {
		if st != nil && st.ContainerRegistrySize > 0 {
			a.add(CodeContainerRegistry, "%s of container images in the registry.", Bytes(st.ContainerRegistrySize))
		} else {
			a.add(CodeContainerRegistry, "Container registry in use.")
		}
	}
	if len(f.PackageTypes) > 0 {
		a.add(CodePackages, "Packages published: %s.", strings.Join(f.PackageTypes, ", "))
	} else if st != nil && st.PackagesSize > 0 {
		a.add(CodePackages, "%s of packages published.", Bytes(st.PackagesSize))
	}

	c := p.Counts
	if n, ok := known(c.Webhooks); ok && n > 0 {
		a.add(CodeWebhooks, "%d webhooks.", n)
	}
	if n, ok := known(c.CIVariables); ok && n > 0 {
		a.add(CodeCIVariables, "%d CI/CD variables.", n)
	}
	if p.Visibility == "internal" {
		a.add(CodeInternalVisibility, "Project visibility is internal.")
	}
	if n, ok := known(c.ProtectedBranches); ok && n > 0 {
		a.add(CodeProtectedBranches, "%d protected branches.", n)
	}
	a.over(CodeManyMergeRequests, "merge requests", c.MergeRequests, t.ManyMergeRequests, c.LowerBounds, "merge_requests")
	a.over(CodeManyIssues, "issues", c.Issues, t.ManyIssues, c.LowerBounds, "issues")
	a.over(CodeManyPipelines, "pipelines", c.Pipelines, t.ManyPipelines, c.LowerBounds, "pipelines")
	a.over(CodeManyBranches, "branches", c.Branches, t.ManyBranches, c.LowerBounds, "branches")
	a.over(CodeManyTags, "tags", c.Tags, t.ManyTags, c.LowerBounds, "tags")

	if p.Archived {
		a.add(CodeArchived, "Project is archived.")
	}
	if p.EmptyRepo {
		a.add(CodeEmptyRepo, "Repository is empty.")
	}
	if len(c.LowerBounds) > 0 {
		a.add(CodeLowerBoundCounts, "Counts are at least 10,000 (GitLab stops counting): %s.", strings.Join(c.LowerBounds, ", "))
	}
	if (p.ScanStatus != "" && p.ScanStatus != inventory.StatusComplete) || len(p.Errors) > 0 {
		steps := make([]string, 0, len(p.Errors))
		for _, e := range p.Errors {
			steps = append(steps, e.Step)
		}
		a.add(CodeIncompleteScan, "Scan status %s; failed steps: %s.", cmp.Or(p.ScanStatus, "unknown"), cmp.Or(strings.Join(steps, ", "), "none recorded"))
	}

	slices.SortStableFunc(a.findings, func(x, y inventory.Finding) int {
		return cmp.Or(cmp.Compare(severityRank(x.Severity), severityRank(y.Severity)), strings.Compare(x.Code, y.Code))
	})
	r := inventory.Readiness{
		Category:  Category(a.findings),
		SizeClass: SizeClass(st, t),
		Findings:  a.findings,
	}
	r.Score = Score(p, a.findings)
	return r
}

type assessment struct {
	findings []inventory.Finding
}

func (a *assessment) add(code, format string, args ...any) {
	r := ruleByCode[code]
	a.findings = append(a.findings, inventory.Finding{
		Code:        code,
		Severity:    r.Severity,
		Message:     fmt.Sprintf(format, args...),
		Remediation: r.Remediation,
	})
}

// over adds code when a known count is strictly over its threshold.
func (a *assessment) over(code, what string, n *int64, threshold int64, lowerBounds []string, field string) {
	v, ok := known(n)
	if !ok || v <= threshold {
		return
	}
	atLeast := ""
	if slices.Contains(lowerBounds, field) {
		atLeast = "at least "
	}
	a.add(code, "%s%d %s, over %d.", atLeast, v, what, threshold)
}

func known(n *int64) (int64, bool) {
	if n == nil {
		return 0, false
	}
	return *n, true
}

func severityRank(s string) int {
	switch s {
	case SeverityBlocker:
		return 0
	case SeverityWarning:
		return 1
	default:
		return 2
	}
}

// Category is blocked with any blocker, needs_attention with any warning, else ready.
func Category(findings []inventory.Finding) string {
	category := inventory.Ready
	for _, f := range findings {
		switch f.Severity {
		case SeverityBlocker:
			return inventory.Blocked
		case SeverityWarning:
			category = inventory.NeedsAttention
		}
	}
	return category
}

// SizeClass classes a project by its export size (repository + wiki + LFS + snippets
// + uploads: what has to move). It is "" when the statistics are unknown.
func SizeClass(st *inventory.Statistics, t Thresholds) string {
	if st == nil {
		return ""
	}
	switch size := Bytes(st.ExportSize()); {
	case size < t.SizeM:
		return SizeS
	case size < t.SizeL:
		return SizeM
	case size < t.SizeXL:
		return SizeL
	default:
		return SizeXL
	}
}

// Score weights (points), see Score.
const (
	scoreCI          = 25
	scoreMRs         = 25
	scoreIssues      = 15
	scoreSize        = 20
	scoreFindings    = 15
	pointsPerBlocker = 5
	pointsPerWarning = 3
)

// Score is a 0-100 estimate of the migration effort, the rounded sum of
//
//	CI           25 × CI complexity / 100          (0 when unknown or invalid)
//	MRs          25 × min(1, log10(1 + MRs) / 4)   (10,000 MRs or more give 25)
//	issues       15 × min(1, log10(1 + issues) / 4)
//	size         20 × min(1, log10(1 + export MiB) / log10(1 + 40960))  (40 GiB or more give 20)
//	findings     min(15, 5 × blockers + 3 × warnings)
//
// Unknown values add nothing. Every term grows with its input, so more of anything
// never lowers the score. The score does not depend on Thresholds, so it stays
// comparable across runs with different overrides.
func Score(p inventory.Project, findings []inventory.Finding) int {
	var s float64
	if ci := p.Features.CI; ci != nil && !ci.Invalid {
		s += scoreCI * float64(min(max(ci.Complexity, 0), 100)) / 100
	}
	s += logPoints(p.Counts.MergeRequests, scoreMRs)
	s += logPoints(p.Counts.Issues, scoreIssues)
	if st := p.Statistics; st != nil && st.ExportSize() > 0 {
		mib := float64(st.ExportSize()) / float64(MiB)
		s += scoreSize * math.Min(1, math.Log10(1+mib)/math.Log10(1+40960))
	}
	fp := 0
	for _, f := range findings {
		switch f.Severity {
		case SeverityBlocker:
			fp += pointsPerBlocker
		case SeverityWarning:
			fp += pointsPerWarning
		}
	}
	s += float64(min(fp, scoreFindings))
	return min(max(int(math.Round(s)), 0), 100)
}

// logPoints gives weight × min(1, log10(1+n)/4) for a known count n: on a log scale
// 10 earns about a quarter of the weight, 100 half and 10,000 all of it, so the first
// hundreds matter and a long tail does not dominate.
func logPoints(n *int64, weight float64) float64 {
	v, ok := known(n)
	if !ok || v <= 0 {
		return 0
	}
	return weight * math.Min(1, math.Log10(1+float64(v))/4)
}
