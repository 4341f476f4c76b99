package export

import (
	"strconv"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// column is one projects.csv column: its header and how a project's cell is written.
// The project is normalized (Readiness set).
type column struct {
	name string
	cell func(p *inventory.Project) string
}

// projectColumns is the data contract of projects.csv: columns are only ever
// appended. Counts and statistics declared in package facts after those placed
// here are appended at the end, in their declaration order.
var projectColumns = withFacts([]column{
	{"project_id", func(p *inventory.Project) string { return strconv.FormatInt(p.ID, 10) }},
	{"path_with_namespace", func(p *inventory.Project) string { return p.PathWithNamespace }},
	{"name", func(p *inventory.Project) string { return p.Name }},
	{"group_full_path", func(p *inventory.Project) string { return p.GroupFullPath }},
	{"visibility", func(p *inventory.Project) string { return p.Visibility }},
	{"archived", func(p *inventory.Project) string { return strconv.FormatBool(p.Archived) }},
	{"fork", func(p *inventory.Project) string { return strconv.FormatBool(p.Fork) }},
	{"mirror", func(p *inventory.Project) string { return strconv.FormatBool(p.Mirror) }},
	{"empty_repo", func(p *inventory.Project) string { return strconv.FormatBool(p.EmptyRepo) }},
	{"default_branch", func(p *inventory.Project) string { return p.DefaultBranch }},
	{"created_at", func(p *inventory.Project) string { return timestamp(p.CreatedAt) }},
	{"last_activity_at", func(p *inventory.Project) string { return timestamp(p.LastActivityAt) }},
	{"web_url", func(p *inventory.Project) string { return p.WebURL }},
	statColumn("repository_size_bytes"),
	statColumn("lfs_objects_size_bytes"),
	statColumn("wiki_size_bytes"),
	statColumn("packages_size_bytes"),
	statColumn("container_registry_size_bytes"),
	statColumn("job_artifacts_size_bytes"),
	statColumn("storage_size_bytes"),
	statColumn("commit_count"),
	countColumn("branches"),
	countColumn("tags"),
	countColumn("merge_requests"),
	countColumn("open_merge_requests"),
	countColumn("issues"),
	countColumn("open_issues"),
	countColumn("pipelines"),
	countColumn("releases"),
	countColumn("webhooks"),
	countColumn("protected_branches"),
	countColumn("ci_variables"),
	{"has_ci", func(p *inventory.Project) string { return strconv.FormatBool(p.Features.HasCI) }},
	{"ci_jobs", ciCell(func(ci *inventory.CI) string { return strconv.Itoa(ci.Jobs) })},
	{"uses_lfs", func(p *inventory.Project) string { return strconv.FormatBool(p.Features.UsesLFS) }},
	{"has_submodules", func(p *inventory.Project) string { return strconv.FormatBool(p.Features.HasSubmodules) }},
	{"has_codeowners", func(p *inventory.Project) string { return strconv.FormatBool(p.Features.HasCodeowners) }},
	{"readiness", func(p *inventory.Project) string { return p.Readiness.Category }},
	{"complexity_score", func(p *inventory.Project) string { return strconv.Itoa(p.Readiness.Score) }},
	{"size_class", func(p *inventory.Project) string { return p.Readiness.SizeClass }},
	{"blockers", func(p *inventory.Project) string {
		return findingCodes(p.Readiness.Findings, readiness.SeverityBlocker)
	}},
	{"scan_status", func(p *inventory.Project) string { return p.ScanStatus }},
	{"errors", func(p *inventory.Project) string { return scanErrors(p.Errors) }},
	// Appended columns.
	statColumn("snippets_size_bytes"),
	statColumn("uploads_size_bytes"),
	{"ci_complexity", ciCell(func(ci *inventory.CI) string { return strconv.Itoa(ci.Complexity) })},
	{"ci_constructs", ciCell(func(ci *inventory.CI) string { return strings.Join(ci.Constructs, ";") })},
	{"registry_in_use", func(p *inventory.Project) string { return strconv.FormatBool(p.Features.RegistryInUse) }},
	{"package_types", func(p *inventory.Project) string { return strings.Join(p.Features.PackageTypes, ";") }},
	{"wiki_enabled", func(p *inventory.Project) string { return strconv.FormatBool(p.Features.WikiEnabled) }},
	{"lower_bound_counts", func(p *inventory.Project) string { return strings.Join(p.Counts.LowerBounds, ";") }},
	{"findings", func(p *inventory.Project) string { return findingCodes(p.Readiness.Findings, "") }},
	{"export_size_bytes", func(p *inventory.Project) string {
		if p.Statistics == nil {
			return ""
		}
		return strconv.FormatInt(p.Statistics.ExportSize(), 10)
	}},
})

// projectsHeader is projects.csv's header row.
var projectsHeader = func() []string {
	h := make([]string, len(projectColumns))
	for i, c := range projectColumns {
		h[i] = c.name
	}
	return h
}()

// countColumn is the column of the declared count name: empty when unknown.
func countColumn(name string) column {
	for _, f := range facts.Counts {
		if f.Name == name {
			return column{name, func(p *inventory.Project) string { return count(*f.Field(&p.Counts)) }}
		}
	}
	panic("export: no declared count " + name)
}

// statColumn is the column of the declared statistics field: empty when unknown.
func statColumn(name string) column {
	for _, s := range facts.Stats {
		if s.Column == name {
			return column{name, func(p *inventory.Project) string {
				if p.Statistics == nil {
					return ""
				}
				return strconv.FormatInt(s.Field(p.Statistics), 10)
			}}
		}
	}
	panic("export: no declared statistics column " + name)
}

// withFacts appends a column for each declared count and statistics field that cols
// lacks: a new fact becomes the last column.
func withFacts(cols []column) []column {
	has := map[string]bool{}
	for _, c := range cols {
		has[c.name] = true
	}
	for _, s := range facts.Stats {
		if !has[s.Column] {
			cols = append(cols, statColumn(s.Column))
		}
	}
	for _, f := range facts.Counts {
		if !has[f.Name] {
			cols = append(cols, countColumn(f.Name))
		}
	}
	return cols
}

// ciCell writes a parsed, valid CI configuration's value; empty otherwise.
func ciCell(f func(*inventory.CI) string) func(*inventory.Project) string {
	return func(p *inventory.Project) string {
		if ci := p.Features.CI; ci != nil && !ci.Invalid {
			return f(ci)
		}
		return ""
	}
}

var groupsHeader = []string{"group_id", "full_path", "parent_id", "projects", "subgroups", "scan_status"}

// projectRow fills row (len(projectsHeader)) with p's cells. p must be normalized.
func projectRow(row []string, p *inventory.Project) []string {
	row = row[:0]
	for _, c := range projectColumns {
		row = append(row, c.cell(p))
	}
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
