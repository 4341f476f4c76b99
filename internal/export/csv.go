package export

import (
	"strconv"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// projectsHeader is the data contract of projects.csv: columns are only ever appended.
var projectsHeader = strings.Split("project_id,path_with_namespace,name,group_full_path,visibility,"+
	"archived,fork,mirror,empty_repo,default_branch,created_at,last_activity_at,web_url,"+
	"repository_size_bytes,lfs_objects_size_bytes,wiki_size_bytes,packages_size_bytes,"+
	"container_registry_size_bytes,job_artifacts_size_bytes,storage_size_bytes,commit_count,"+
	"branches,tags,merge_requests,open_merge_requests,issues,open_issues,pipelines,releases,"+
	"webhooks,protected_branches,ci_variables,has_ci,ci_jobs,uses_lfs,has_submodules,"+
	"has_codeowners,readiness,complexity_score,size_class,blockers,scan_status,errors,"+
	// Appended columns.
	"snippets_size_bytes,uploads_size_bytes,ci_complexity,ci_constructs,registry_in_use,"+
	"package_types,wiki_enabled,lower_bound_counts,findings,export_size_bytes", ",")

var groupsHeader = []string{"group_id", "full_path", "parent_id", "projects", "subgroups", "scan_status"}

// projectRow fills row (len(projectsHeader)) with p's cells. p must be normalized.
func projectRow(row []string, p *inventory.Project) []string {
	row = row[:0]
	st := p.Statistics
	stat := func(f func(*inventory.Statistics) int64) string {
		if st == nil {
			return ""
		}
		return strconv.FormatInt(f(st), 10)
	}
	c := &p.Counts
	f := &p.Features
	r := p.Readiness
	ciJobs, ciComplexity := "", ""
	var ciConstructs []string
	if f.CI != nil && !f.CI.Invalid {
		ciJobs = strconv.Itoa(f.CI.Jobs)
		ciComplexity = strconv.Itoa(f.CI.Complexity)
		ciConstructs = f.CI.Constructs
	}
	exportSize := ""
	if st != nil {
		exportSize = strconv.FormatInt(st.ExportSize(), 10)
	}

	row = append(row,
		strconv.FormatInt(p.ID, 10),
		p.PathWithNamespace,
		p.Name,
		p.GroupFullPath,
		p.Visibility,
		strconv.FormatBool(p.Archived),
		strconv.FormatBool(p.Fork),
		strconv.FormatBool(p.Mirror),
		strconv.FormatBool(p.EmptyRepo),
		p.DefaultBranch,
		timestamp(p.CreatedAt),
		timestamp(p.LastActivityAt),
		p.WebURL,
		stat(func(s *inventory.Statistics) int64 { return s.RepositorySize }),
		stat(func(s *inventory.Statistics) int64 { return s.LFSObjectsSize }),
		stat(func(s *inventory.Statistics) int64 { return s.WikiSize }),
		stat(func(s *inventory.Statistics) int64 { return s.PackagesSize }),
		stat(func(s *inventory.Statistics) int64 { return s.ContainerRegistrySize }),
		stat(func(s *inventory.Statistics) int64 { return s.JobArtifactsSize }),
		stat(func(s *inventory.Statistics) int64 { return s.StorageSize }),
		stat(func(s *inventory.Statistics) int64 { return s.CommitCount }),
		count(c.Branches),
		count(c.Tags),
		count(c.MergeRequests),
		count(c.OpenMergeRequests),
		count(c.Issues),
		count(c.OpenIssues),
		count(c.Pipelines),
		count(c.Releases),
		count(c.Webhooks),
		count(c.ProtectedBranches),
		count(c.CIVariables),
		strconv.FormatBool(f.HasCI),
		ciJobs,
		strconv.FormatBool(f.UsesLFS),
		strconv.FormatBool(f.HasSubmodules),
		strconv.FormatBool(f.HasCodeowners),
		r.Category,
		strconv.Itoa(r.Score),
		r.SizeClass,
		findingCodes(r.Findings, readiness.SeverityBlocker),
		p.ScanStatus,
		scanErrors(p.Errors),
		// Appended columns.
		stat(func(s *inventory.Statistics) int64 { return s.SnippetsSize }),
		stat(func(s *inventory.Statistics) int64 { return s.UploadsSize }),
		ciComplexity,
		strings.Join(ciConstructs, ";"),
		strconv.FormatBool(f.RegistryInUse),
		strings.Join(f.PackageTypes, ";"),
		strconv.FormatBool(f.WikiEnabled),
		strings.Join(c.LowerBounds, ";"),
		findingCodes(r.Findings, ""),
		exportSize,
	)
	return row
}

func groupRow(row []string, g inventory.Group) []string {
	return append(row[:0],
		strconv.FormatInt(g.ID, 10),
		g.FullPath,
		strconv.FormatInt(g.ParentID, 10),
		strconv.Itoa(g.Projects),
		strconv.Itoa(g.Subgroups),
		g.ScanStatus,
	)
}

func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func count(n *int64) string {
	if n == nil {
		return ""
	}
	return strconv.FormatInt(*n, 10)
}

// findingCodes joins the codes of the findings of a severity ("" for all) with ";".
func findingCodes(fs []inventory.Finding, severity string) string {
	var b strings.Builder
	for _, f := range fs {
		if severity != "" && f.Severity != severity {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString(f.Code)
	}
	return b.String()
}

// scanErrors formats errors as step:status:message joined with ";".
func scanErrors(errs []inventory.ScanError) string {
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(e.Step)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteByte(':')
		b.WriteString(e.Message)
	}
	return b.String()
}
