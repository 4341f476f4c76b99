package readiness

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// Finding severities, most severe first.
const (
	SeverityBlocker = "blocker"
	SeverityWarning = "warning"
	SeverityInfo    = "info"
)

// A Rule is one finding code: what it means, what to do about it and when it matches.
type Rule struct {
	Code        string
	Tier        string // TierBlocker, TierData, TierCI, TierSettings or TierInfo
	Title       string
	Remediation string
	// Check reports whether the rule matches the project under the thresholds, and
	// if so the finding's message with the project's values. Unknown values (a nil
	// count, nil statistics) never match.
	Check func(p inventory.Project, t Thresholds) (message string, ok bool)
}

// Severity is the rule's severity, derived from its tier: blocker, warning or info.
func (r Rule) Severity() string { return severityOf(r.Tier) }

// Rules are every rule Assess applies. docs/EXPORTS.md documents each (a test checks).
var Rules = []Rule{
	{Code: "repo_too_large", Tier: TierBlocker, Title: "Repository over the importer's size limit",
		Remediation: "Shrink the repository below the limit before migrating: remove large files from history (git filter-repo), move binaries to LFS or release assets, or split the repository.",
		Check: withStatistics(func(st *inventory.Statistics, t Thresholds) (string, bool) {
			if !over(st.RepositorySize, t.MaxRepositorySize) {
				return "", false
			}
			return found("Repository is %s, over the %s limit of the %s path.", Bytes(st.RepositorySize), t.MaxRepositorySize, t.Path)
		})},
	{Code: "export_too_large", Tier: TierBlocker, Title: "Export over the importer's size limit",
		Remediation: "Shrink what the export carries: move LFS objects separately, trim the wiki, uploads and snippets, or migrate the Git history alone and carry the rest over by other means.",
		Check: withStatistics(func(st *inventory.Statistics, t Thresholds) (string, bool) {
			if !over(st.ExportSize(), t.MaxExportSize) {
				return "", false
			}
			return found("Estimated export (repository, wiki, LFS, snippets, uploads) is %s, over the %s limit of the %s path.", Bytes(st.ExportSize()), t.MaxExportSize, t.Path)
		})},
	{Code: "gitlab_ci", Tier: TierCI, Title: "GitLab CI/CD to convert",
		Remediation: "Convert .gitlab-ci.yml to GitHub Actions workflows (GitHub Actions Importer can audit and dry-run the conversion); pipelines, schedules and their history are not migrated.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			switch ci := p.Features.CI; {
			case !inventory.Is(p.Features.HasCI): // no CI, or unknown (see unchecked)
				return "", false
			case ci == nil && p.Features.CIConfigExternal != "":
				return found("GitLab CI/CD configuration to convert, kept in %s (complexity unknown).", p.Features.CIConfigExternal)
			case ci == nil:
				return found("GitLab CI/CD configuration to convert (complexity unknown).")
			case ci.Invalid:
				return found("GitLab CI/CD configuration to convert (invalid file, complexity unknown).")
			default:
				return found("GitLab CI/CD configuration to convert: %d jobs, %d stages, %d includes, complexity %d/100.",
					ci.Jobs, ci.Stages, ci.Includes, ci.Complexity)
			}
		}},
	{Code: "lfs", Tier: TierData, Title: "LFS objects to re-push",
		Remediation: "The importer does not migrate LFS objects: after the migration run `git lfs fetch --all` against GitLab and `git lfs push --all` to GitHub.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			if st := p.Statistics; st != nil && st.LFSObjectsSize > 0 {
				return found("%s of LFS objects to re-push.", Bytes(st.LFSObjectsSize))
			}
			return foundIf(inventory.Is(p.Features.UsesLFS), "LFS objects to re-push.")
		}},
	{Code: "submodules", Tier: TierSettings, Title: "Submodules to repoint",
		Remediation: "Migrate the submodule repositories in the same or an earlier wave and update the URLs in .gitmodules to their GitHub locations.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			return foundIf(inventory.Is(p.Features.HasSubmodules), "Repository has submodules.")
		}},
	{Code: "container_registry", Tier: TierData, Title: "Container images to copy",
		Remediation: "Container images are not migrated: copy them to GitHub Container Registry (e.g. with skopeo or crane) and update image references in workflows and deployments.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			if st := p.Statistics; st != nil && st.ContainerRegistrySize > 0 {
				return found("%s of container images in the registry.", Bytes(st.ContainerRegistrySize))
			}
			return foundIf(inventory.Is(p.Features.RegistryInUse), "Container registry in use.")
		}},
	{Code: "packages", Tier: TierData, Title: "Packages to republish",
		Remediation: "Packages are not migrated: republish them to GitHub Packages (or another registry) and update consumers' registry configuration.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			if types := p.Features.PackageTypes; len(types) > 0 {
				return found("Packages published: %s.", strings.Join(types, ", "))
			}
			if st := p.Statistics; st != nil && st.PackagesSize > 0 {
				return found("%s of packages published.", Bytes(st.PackagesSize))
			}
			return "", false
		}},
	{Code: "webhooks", Tier: TierSettings, Title: "Webhooks to recreate",
		Remediation: "Webhooks are not migrated: recreate them on the GitHub repository or organization (or replace them with a GitHub App) with new secrets.",
		Check:       anyOf(func(c inventory.Counts) *int64 { return c.Webhooks }, "%d webhooks.")},
	{Code: "ci_variables", Tier: TierSettings, Title: "CI/CD variables to recreate",
		Remediation: "CI/CD variables are not migrated: recreate them as GitHub Actions secrets and variables at repository, environment or organization level.",
		Check:       anyOf(func(c inventory.Counts) *int64 { return c.CIVariables }, "%d CI/CD variables.")},
	{Code: "internal_visibility", Tier: TierSettings, Title: "Internal visibility has no direct equivalent",
		Remediation: "GitHub has internal visibility only in enterprise-owned organizations: decide between private and internal before migrating.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			return foundIf(p.Visibility == "internal", "Project visibility is internal.")
		}},
	{Code: "protected_branches", Tier: TierSettings, Title: "Protected branches to recreate",
		Remediation: "Recreate branch protection as GitHub rulesets or branch protection rules; GitLab approval and push rules are not migrated.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			// One protected branch is taken to be the default branch, which GitLab
			// protects in every new project: default_branch_protected says so.
			if n, ok := known(p.Counts.ProtectedBranches); ok && n > 1 {
				return found("%d protected branches.", n)
			}
			return "", false
		}},
	{Code: "default_branch_protected", Tier: TierInfo, Title: "Only the default branch is protected",
		Remediation: "One protected branch is taken to be the default branch (GitLab protects it in every new project): protect it on GitHub with one ruleset for the default branch, across the organization if you like.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			n, ok := known(p.Counts.ProtectedBranches)
			return foundIf(ok && n == 1, "One protected branch, taken to be the default branch.")
		}},
	{Code: "many_merge_requests", Tier: TierData, Title: "Many merge requests",
		Remediation: "Migration time grows with the number of merge requests: give this project its own slot or a quiet window, and time it in a dry run.",
		Check: countOver("merge requests", "merge_requests",
			func(c inventory.Counts) *int64 { return c.MergeRequests }, func(t Thresholds) int64 { return t.ManyMergeRequests })},
	{Code: "many_issues", Tier: TierData, Title: "Many issues",
		Remediation: "Many issues lengthen the migration: time it in a dry run and plan the window accordingly, or close and archive stale issues first.",
		Check: countOver("issues", "issues",
			func(c inventory.Counts) *int64 { return c.Issues }, func(t Thresholds) int64 { return t.ManyIssues })},
	{Code: "many_pipelines", Tier: TierData, Title: "Many pipelines",
		Remediation: "Pipeline history is not migrated: export what must be kept (audit, release evidence) before GitLab is switched off.",
		Check: countOver("pipelines", "pipelines",
			func(c inventory.Counts) *int64 { return c.Pipelines }, func(t Thresholds) int64 { return t.ManyPipelines })},
	{Code: "many_branches", Tier: TierData, Title: "Many branches",
		Remediation: "Delete merged and stale branches before migrating: every ref is migrated and slows the import.",
		Check: countOver("branches", "branches",
			func(c inventory.Counts) *int64 { return c.Branches }, func(t Thresholds) int64 { return t.ManyBranches })},
	{Code: "many_tags", Tier: TierData, Title: "Many tags",
		Remediation: "Prune obsolete tags before migrating: every ref is migrated and slows the import.",
		Check: countOver("tags", "tags",
			func(c inventory.Counts) *int64 { return c.Tags }, func(t Thresholds) int64 { return t.ManyTags })},
	{Code: "large_repo", Tier: TierData, Title: "Large repository",
		Remediation: "Check for files over 100 MiB (GitHub rejects them) and pushes over 2 GiB; consider LFS or a history clean-up, and time the migration in a dry run.",
		Check: withStatistics(func(st *inventory.Statistics, t Thresholds) (string, bool) {
			// A repository too large to import is already a blocker; saying it is large too is noise.
			if st.RepositorySize <= int64(t.LargeRepositorySize) || over(st.RepositorySize, t.MaxRepositorySize) {
				return "", false
			}
			return found("Repository is %s, over %s.", Bytes(st.RepositorySize), t.LargeRepositorySize)
		})},
	{Code: "large_storage", Tier: TierData, Title: "Large project storage",
		Remediation: "Much of the storage (job artifacts, packages, registry, LFS) does not move with the importer: decide what to carry over, archive or drop, and plan where it goes on GitHub.",
		Check: withStatistics(func(st *inventory.Statistics, t Thresholds) (string, bool) {
			if st.StorageSize <= int64(t.LargeStorageSize) {
				return "", false
			}
			return found("Project storage is %s, over %s.", Bytes(st.StorageSize), t.LargeStorageSize)
		})},
	{Code: "large_registry", Tier: TierData, Title: "Large container registry",
		Remediation: "Copying the images takes long and costs transfer: prune old tags first, then copy them to GitHub Container Registry (skopeo, crane) ahead of the cut-over.",
		Check: withStatistics(func(st *inventory.Statistics, t Thresholds) (string, bool) {
			if st.ContainerRegistrySize <= int64(t.LargeRegistrySize) {
				return "", false
			}
			return found("Container registry is %s, over %s.", Bytes(st.ContainerRegistrySize), t.LargeRegistrySize)
		})},
	{Code: "many_commits", Tier: TierData, Title: "Long history",
		Remediation: "A long history makes the Git import slow: time it in a dry run and give the project its own slot.",
		Check: withStatistics(func(st *inventory.Statistics, t Thresholds) (string, bool) {
			if st.CommitCount <= t.ManyCommits {
				return "", false
			}
			return found("%d commits, over %d.", st.CommitCount, t.ManyCommits)
		})},
	{Code: "ci_invalid", Tier: TierInfo, Title: "CI file could not be parsed",
		Remediation: "The .gitlab-ci.yml is not valid YAML or not a mapping: its conversion effort is unknown, so review it by hand.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			return foundIf(p.Features.CI != nil && p.Features.CI.Invalid, "The .gitlab-ci.yml could not be parsed.")
		}},
	{Code: "archived", Tier: TierInfo, Title: "Archived project",
		Remediation: "Decide whether to migrate it (and archive it on GitHub) or leave it behind.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			return foundIf(p.Archived, "Project is archived.")
		}},
	{Code: "empty_repo", Tier: TierInfo, Title: "Empty repository",
		Remediation: "Nothing to import: create the GitHub repository directly or skip the project.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			return foundIf(p.EmptyRepo, "Repository is empty.")
		}},
	{Code: "lower_bound_counts", Tier: TierInfo, Title: "Counts are lower bounds",
		Remediation: "GitLab stops counting at 10,000: the real numbers are higher. Check them in GitLab if they matter for planning.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			if lb := p.Counts.LowerBounds; len(lb) > 0 {
				return found("Counts are at least 10,000 (GitLab stops counting): %s.", strings.Join(lb, ", "))
			}
			return "", false
		}},
	{Code: "incomplete_scan", Tier: TierInfo, Title: "Scan incomplete",
		Remediation: "Some profiling steps failed, so rules needing that data were not evaluated: fix the token's access (403) or re-run discovery.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			if (p.ScanStatus == "" || p.ScanStatus == inventory.StatusComplete) && len(p.Errors) == 0 {
				return "", false
			}
			steps := make([]string, 0, len(p.Errors))
			for _, e := range p.Errors {
				steps = append(steps, e.Step)
			}
			return found("Scan status %s; failed steps: %s.", cmp.Or(p.ScanStatus, "unknown"), cmp.Or(strings.Join(steps, ", "), "none recorded"))
		}},
	{Code: "unchecked", Tier: TierInfo, Title: "Facts that could not be checked",
		Remediation: "GitLab denied or failed the requests these facts come from, so the rules that read them were not judged: give the token access to the project's repository and settings (Reporter or higher) or re-run discovery, then read the verdict again.",
		Check: func(p inventory.Project, _ Thresholds) (string, bool) {
			names := unchecked(p)
			if len(names) == 0 {
				return "", false
			}
			return found("Could not check: %s.", strings.Join(names, ", "))
		}},
}

// unchecked names, as the exports do, the facts the rules read that the scan left
// unknown, except those statistics already settle.
func unchecked(p inventory.Project) []string {
	var out []string
	st := p.Statistics
	if st == nil {
		out = append(out, "statistics")
	}
	for _, fl := range facts.Flags {
		if *fl.Field(&p.Features) != nil {
			continue
		}
		switch {
		case fl.Name == "uses_lfs" && st != nil && st.LFSObjectsSize > 0,
			fl.Name == "registry_in_use" && st != nil:
			continue
		}
		out = append(out, fl.Name)
	}
	if p.Features.PackageTypes == nil && (st == nil || st.PackagesSize == 0) {
		out = append(out, "package_types")
	}
	for _, c := range facts.Counts {
		if *c.Field(&p.Counts) == nil {
			out = append(out, c.Name)
		}
	}
	return out
}

// RuleFor returns the rule of a finding code.
func RuleFor(code string) (Rule, bool) {
	i := slices.IndexFunc(Rules, func(r Rule) bool { return r.Code == code })
	if i < 0 {
		return Rule{}, false
	}
	return Rules[i], true
}

// over reports whether size is over a blocker limit; a limit of 0 is none (the path
// documents no maximum).
func over(size int64, limit Bytes) bool {
	return limit > 0 && size > int64(limit)
}

// found is a Check's result for a match.
func found(format string, args ...any) (string, bool) {
	return fmt.Sprintf(format, args...), true
}

// foundIf is a Check's result for a match with a fixed message when cond holds.
func foundIf(cond bool, message string) (string, bool) {
	if !cond {
		return "", false
	}
	return message, true
}

// withStatistics makes a Check of one that needs the project's statistics: unknown
// statistics never match.
func withStatistics(check func(st *inventory.Statistics, t Thresholds) (string, bool)) func(inventory.Project, Thresholds) (string, bool) {
	return func(p inventory.Project, t Thresholds) (string, bool) {
		if p.Statistics == nil {
			return "", false
		}
		return check(p.Statistics, t)
	}
}

// anyOf matches when a known count is over zero; format has one %d for the count.
func anyOf(count func(inventory.Counts) *int64, format string) func(inventory.Project, Thresholds) (string, bool) {
	return func(p inventory.Project, _ Thresholds) (string, bool) {
		n := count(p.Counts)
		if n == nil || *n <= 0 {
			return "", false
		}
		return found(format, *n)
	}
}

// countOver matches when a known count is strictly over its threshold. field is the
// count's name in Counts.LowerBounds: a count GitLab stopped counting reads "at least".
func countOver(what, field string, count func(inventory.Counts) *int64, threshold func(Thresholds) int64) func(inventory.Project, Thresholds) (string, bool) {
	return func(p inventory.Project, t Thresholds) (string, bool) {
		n, limit := count(p.Counts), threshold(t)
		if n == nil || *n <= limit {
			return "", false
		}
		atLeast := ""
		if slices.Contains(p.Counts.LowerBounds, field) {
			atLeast = "at least "
		}
		return found("%s%d %s, over %d.", atLeast, *n, what, limit)
	}
}
