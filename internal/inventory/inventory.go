// Package inventory defines the records a discovery run produces: runs, groups and
// project profiles. The simulator's ground truth uses the same types so a scan can be
// compared with it field by field.
package inventory

import "time"

// Scan statuses of a project or group.
const (
	StatusComplete  = "complete"  // every step succeeded
	StatusPartial   = "partial"   // some steps failed (e.g. 403 on hooks); the rest is valid
	StatusForbidden = "forbidden" // the project itself answered 403
	StatusNotFound  = "not_found" // deleted between listing and detail
	StatusError     = "error"     // the project could not be profiled at all
)

// Run statuses.
const (
	RunRunning   = "running"
	RunExporting = "exporting"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// Readiness categories.
const (
	Ready          = "ready"
	NeedsAttention = "needs_attention"
	Blocked        = "blocked"
)

// Run is one discovery pass over an estate.
type Run struct {
	ID         string    `json:"run_id"`
	GitLabURL  string    `json:"gitlab_url"`
	RootGroups []string  `json:"root_groups"`
	Status     string    `json:"status"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Reason explains a failed run, or what leaves a succeeded one incomplete (never
	// contains the token).
	Reason string `json:"reason,omitempty"`
	// Scope is what the run was configured to cover; nil for runs recorded before it
	// was kept. Resuming a run under another scope would mix two inventories.
	Scope *Scope `json:"scope,omitempty"`
	// FailedGroups and FailedProjects count what a succeeded run could not scan (scan
	// status error or forbidden): non-zero means it completed with errors.
	FailedGroups   int `json:"failed_groups,omitempty"`
	FailedProjects int `json:"failed_projects,omitempty"`
	// Full is a run that profiles every project again (scan --full, {"full":true});
	// other runs carry unchanged projects over from the previous successful run.
	Full bool `json:"full,omitempty"`
	// ProjectsInScope is what the scheduler counted when the run started (the
	// progress line's total); 0 when unknown.
	ProjectsInScope int64 `json:"projects_in_scope,omitempty"`
	// StaleAfter is STALE_AFTER when the run started: a project whose last activity is
	// older than StartedAt-StaleAfter is stale. 0 (runs recorded before it was kept)
	// leaves the stale flag unknown.
	StaleAfter time.Duration `json:"stale_after,omitempty"`
	// Instance is what the scheduler learnt of the GitLab instance when the run
	// started; nil when it was not asked (runs recorded before it was kept).
	Instance *Instance `json:"instance,omitempty"`
}

// Instance describes the GitLab instance a run scanned. A nil field is unknown: the
// token may not ask (users and projects need an admin token) or GitLab did not say.
type Instance struct {
	Version    string `json:"version"`
	Revision   string `json:"revision"`
	Enterprise *bool  `json:"enterprise"`
	Users      *int64 `json:"users"`
	Projects   *int64 `json:"projects"`
}

// Scope is the configuration that decides what a run covers.
type Scope struct {
	RootGroups      []string `json:"root_groups"` // as configured; empty: every top-level group
	IncludePersonal bool     `json:"include_personal"`
}

// Group is a GitLab group as the run saw it.
type Group struct {
	ID         int64  `json:"group_id"`
	FullPath   string `json:"full_path"`
	ParentID   int64  `json:"parent_id"` // 0 for a top-level group
	Projects   int    `json:"projects"`  // direct projects (not in subgroups)
	Subgroups  int    `json:"subgroups"` // direct subgroups
	ScanStatus string `json:"scan_status"`
}

// Statistics are GitLab's project statistics, in bytes (CommitCount a count).
// A nil *Statistics means GitLab did not return them (e.g. role below Reporter).
type Statistics struct {
	RepositorySize        int64 `json:"repository_size"`
	LFSObjectsSize        int64 `json:"lfs_objects_size"`
	WikiSize              int64 `json:"wiki_size"`
	PackagesSize          int64 `json:"packages_size"`
	ContainerRegistrySize int64 `json:"container_registry_size"`
	JobArtifactsSize      int64 `json:"job_artifacts_size"`
	SnippetsSize          int64 `json:"snippets_size"`
	UploadsSize           int64 `json:"uploads_size"`
	StorageSize           int64 `json:"storage_size"`
	CommitCount           int64 `json:"commit_count"`
}

// ExportSize estimates the GitLab export archive: what the GitHub importer must move.
func (s *Statistics) ExportSize() int64 {
	if s == nil {
		return 0
	}
	return s.RepositorySize + s.WikiSize + s.LFSObjectsSize + s.SnippetsSize + s.UploadsSize
}

// Counts holds the per-project object counts. A nil pointer is unknown (the step failed).
// Counts above GitLab's 10,000 total-header cut-off are the lower bound 10000 and their
// names are listed in LowerBounds.
type Counts struct {
	Branches          *int64   `json:"branches"`
	Tags              *int64   `json:"tags"`
	MergeRequests     *int64   `json:"merge_requests"`
	OpenMergeRequests *int64   `json:"open_merge_requests"`
	Issues            *int64   `json:"issues"`
	OpenIssues        *int64   `json:"open_issues"`
	Pipelines         *int64   `json:"pipelines"`
	Releases          *int64   `json:"releases"`
	Webhooks          *int64   `json:"webhooks"`
	ProtectedBranches *int64   `json:"protected_branches"`
	CIVariables       *int64   `json:"ci_variables"`
	Environments      *int64   `json:"environments"`
	LowerBounds       []string `json:"lower_bounds,omitempty"`
}

// CI describes a parsed .gitlab-ci.yml.
type CI struct {
	Jobs       int      `json:"jobs"`
	Stages     int      `json:"stages"`
	Includes   int      `json:"includes"`
	Constructs []string `json:"constructs"` // sorted: dind, extends, include, needs, rules, services, tags, trigger
	Complexity int      `json:"complexity"` // 0-100
	Invalid    bool     `json:"invalid,omitempty"`
	// IncludeProjects and TriggerProjects are the projects named by include:project
	// and trigger:project (or trigger: path), sorted and unique.
	IncludeProjects []string `json:"include_projects,omitempty"`
	TriggerProjects []string `json:"trigger_projects,omitempty"`
	// LocalIncludes is how many local files the configuration includes (include:
	// local, nested ones too) were read and counted in Jobs; JobsLowerBound says some
	// were not (over the bound, a wildcard or a variable, missing): Jobs is then a
	// lower bound.
	LocalIncludes  int  `json:"local_includes,omitempty"`
	JobsLowerBound bool `json:"jobs_lower_bound,omitempty"`
}

// Features are what the project uses that a migration must carry over or replace.
// A nil flag, and nil PackageTypes, are unknown: the step that finds them out failed
// (403, 404, 5xx after retries, budget spent) or never ran. They are exported empty in
// CSV and null in JSONL, never as false.
type Features struct {
	HasCI *bool `json:"has_ci"`
	CI    *CI   `json:"ci,omitempty"`
	// CIConfigPath is the project's ci_config_path as GitLab reports it; "" is the
	// default .gitlab-ci.yml.
	CIConfigPath string `json:"ci_config_path,omitempty"`
	// CIConfigExternal is where a CI configuration kept outside the repository lives:
	// the project path of "file.yml@group/project[:ref]", or the URL of a remote one.
	CIConfigExternal string `json:"ci_config_external,omitempty"`
	UsesLFS          *bool  `json:"uses_lfs"`
	HasSubmodules    *bool  `json:"has_submodules"`
	// Submodules are the targets of .gitmodules' url lines: a project path where the
	// URL points into the scanned GitLab, the URL as written otherwise; sorted, unique.
	Submodules      []string `json:"submodules,omitempty"`
	HasCodeowners   *bool    `json:"has_codeowners"`
	WikiEnabled     bool     `json:"wiki_enabled"`
	RegistryInUse   *bool    `json:"registry_in_use"`
	PackageTypes    []string `json:"package_types"` // sorted, unique
	IssuesEnabled   bool     `json:"issues_enabled"`
	MREnabled       bool     `json:"merge_requests_enabled"`
	JobsEnabled     bool     `json:"jobs_enabled"`
	RegistryEnabled bool     `json:"container_registry_enabled"`
}

// Is reports whether a flag is known to be set: false when unset or unknown.
func Is(flag *bool) bool { return flag != nil && *flag }

// ScanError records one failed profiling step; the scan goes on without it.
type ScanError struct {
	Step    string `json:"step"`    // e.g. "hooks", "statistics", "file:.gitlab-ci.yml"
	Status  int    `json:"status"`  // HTTP status, 0 when none (budget spent, timeout)
	Message string `json:"message"` // never contains the token
}

// Finding is one readiness rule that matched.
type Finding struct {
	Code        string `json:"code"`
	Severity    string `json:"severity"` // blocker, warning, info
	Tier        string `json:"tier"`     // blocker, data, ci, settings, info
	Message     string `json:"message"`
	Remediation string `json:"remediation"`
}

// Readiness is the migration-readiness verdict for one project.
type Readiness struct {
	Category  string `json:"category"` // ready, needs_attention, blocked
	Tier      string `json:"tier"`     // worst finding tier: blocker, data, ci, settings; none
	Score     int    `json:"score"`    // complexity 0-100
	SizeClass string `json:"size_class"`
	// EffortHours is the estimated migration effort, Effort its class S/M/L/XL.
	EffortHours int64  `json:"effort_hours"`
	Effort      string `json:"effort"`
	// Path is the migration path (MIGRATION_PATH) the verdict assumes.
	Path     string    `json:"migration_path"`
	Findings []Finding `json:"findings"`
}

// Project is the full profile of one project.
type Project struct {
	ID                int64  `json:"project_id"`
	PathWithNamespace string `json:"path_with_namespace"`
	Name              string `json:"name"`
	GroupID           int64  `json:"group_id"`
	GroupFullPath     string `json:"group_full_path"`
	Visibility        string `json:"visibility"`
	Archived          bool   `json:"archived"`
	Fork              bool   `json:"fork"`
	// ForkedFrom is the fork parent's path_with_namespace; "" when not a fork or
	// GitLab did not say.
	ForkedFrom     string      `json:"forked_from,omitempty"`
	Mirror         bool        `json:"mirror"`
	EmptyRepo      bool        `json:"empty_repo"`
	DefaultBranch  string      `json:"default_branch"`
	CreatedAt      time.Time   `json:"created_at"`
	LastActivityAt time.Time   `json:"last_activity_at"`
	WebURL         string      `json:"web_url"`
	Statistics     *Statistics `json:"statistics"`
	Counts         Counts      `json:"counts"`
	Features       Features    `json:"features"`
	Readiness      *Readiness  `json:"readiness,omitempty"`
	ScanStatus     string      `json:"scan_status"`
	Errors         []ScanError `json:"errors"`
	// LastProfiledAt is when GitLab was last asked for the project's profile: this
	// run, or an earlier one whose profile an unchanged project carries over.
	LastProfiledAt time.Time `json:"last_profiled_at,omitzero"`
	// NamespaceKind is the kind of the project's namespace: group or user.
	NamespaceKind string `json:"namespace_kind,omitempty"`
	// Stale says the project's last activity is older than the run's STALE_AFTER;
	// nil is unknown. The export sets it from the run (see Run.StaleAfter).
	Stale *bool `json:"stale"`
	// Owners are the usernames of the active members, inherited ones included, with
	// Maintainer (40) or Owner (50) access, sorted; nil is unknown (INCLUDE_MEMBERS
	// off, or the members step failed), [] a project none such holds.
	Owners []string `json:"owners"`
	// Wave is the suggested migration wave, set by the export (see Waves); 0 when
	// not computed.
	Wave int `json:"wave,omitempty"`
}

// Summary is the run-level roll-up written to summary.json.
type Summary struct {
	RunID      string    `json:"run_id"`
	GitLabURL  string    `json:"gitlab_url"`
	RootGroups []string  `json:"root_groups"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Groups     int       `json:"groups"`
	Projects   int       `json:"projects"`
	APICalls   int64     `json:"api_calls"`
	Errors     int       `json:"errors"` // projects with at least one scan error
	// FailedGroups and FailedProjects count what the run could not scan: scan_status
	// error or forbidden (not_found is a deletion during the run, not a failure).
	FailedGroups   int            `json:"failed_groups"`
	FailedProjects int            `json:"failed_projects"`
	ByReadiness    map[string]int `json:"by_readiness"`
	// ByTier counts projects by verdict tier; MigrationPath is the path the verdicts
	// assume (paths joined with "," if stored verdicts disagree).
	ByTier        map[string]int `json:"by_tier"`
	MigrationPath string         `json:"migration_path"`
	ByStatus      map[string]int `json:"by_scan_status"`
	BySizeClass   map[string]int `json:"by_size_class"`
	Status        string         `json:"status"`
	// Stale counts the projects whose stale flag is set.
	Stale int `json:"stale"`
	// Instance is the scanned GitLab instance; null when the run did not record it.
	Instance *Instance `json:"instance"`
	// ProjectCountDrop is set when the run has a larger share fewer projects than the
	// previous one than DropShare: a scope or access change, or a partial scan.
	ProjectCountDrop *CountDrop `json:"project_count_drop,omitempty"`
}

// DropShare is the share of projects a run may lose against the previous run before
// summary.json and the report flag it.
const DropShare = 0.2

// CountDrop is a flagged fall in the project count: share is (previous-now)/previous.
type CountDrop struct {
	Previous int     `json:"previous"`
	Now      int     `json:"now"`
	Share    float64 `json:"share"`
}

// Failed says a group or project was not scanned: an error, or a 403 on itself.
// not_found is not a failure: it was deleted while the run went on.
func Failed(scanStatus string) bool {
	return scanStatus == StatusError || scanStatus == StatusForbidden
}
