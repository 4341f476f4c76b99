package export

import (
	"strconv"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// column is one CSV column of records of type T: its header and how a record's cell
// is written. A text column's cells are neutralized as they are written (see
// neutralize); a value column's cells are numbers, booleans or timestamps this package
// formats, written as they are.
type column[T any] struct {
	name string
	cell func(*T) string
	text bool
}

// text declares a column of free text: names, paths, codes, messages.
func text[T any](name string, cell func(*T) string) column[T] {
	return column[T]{name: name, cell: cell, text: true}
}

// value declares a column of numbers, booleans or timestamps.
func value[T any](name string, cell func(*T) string) column[T] {
	return column[T]{name: name, cell: cell}
}

// header returns the column names.
func header[T any](cols []column[T]) []string {
	h := make([]string, len(cols))
	for i, c := range cols {
		h[i] = c.name
	}
	return h
}

// row fills row (len(cols)) with v's cells, text cells neutralized.
func row[T any](row []string, cols []column[T], v *T) []string {
	row = row[:0]
	for _, c := range cols {
		s := c.cell(v)
		if c.text {
			s = neutralize(s)
		}
		row = append(row, s)
	}
	return row
}

// projectColumns is the data contract of projects.csv: columns are only ever
// appended. Counts and statistics declared in package facts after those placed
// here are appended at the end, in their declaration order. The project is
// normalized (Readiness set).
var projectColumns = withFacts([]column[inventory.Project]{
	value("project_id", func(p *inventory.Project) string { return strconv.FormatInt(p.ID, 10) }),
	text("path_with_namespace", func(p *inventory.Project) string { return p.PathWithNamespace }),
	text("name", func(p *inventory.Project) string { return p.Name }),
	text("group_full_path", func(p *inventory.Project) string { return p.GroupFullPath }),
	text("visibility", func(p *inventory.Project) string { return p.Visibility }),
	value("archived", func(p *inventory.Project) string { return strconv.FormatBool(p.Archived) }),
	value("fork", func(p *inventory.Project) string { return strconv.FormatBool(p.Fork) }),
	value("mirror", func(p *inventory.Project) string { return strconv.FormatBool(p.Mirror) }),
	value("empty_repo", func(p *inventory.Project) string { return strconv.FormatBool(p.EmptyRepo) }),
	text("default_branch", func(p *inventory.Project) string { return p.DefaultBranch }),
	value("created_at", func(p *inventory.Project) string { return timestamp(p.CreatedAt) }),
	value("last_activity_at", func(p *inventory.Project) string { return timestamp(p.LastActivityAt) }),
	text("web_url", func(p *inventory.Project) string { return p.WebURL }),
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
	flagColumn("has_ci"),
	value("ci_jobs", ciCell(func(ci *inventory.CI) string { return strconv.Itoa(ci.Jobs) })),
	flagColumn("uses_lfs"),
	flagColumn("has_submodules"),
	flagColumn("has_codeowners"),
	text("readiness", func(p *inventory.Project) string { return p.Readiness.Category }),
	value("complexity_score", func(p *inventory.Project) string { return strconv.Itoa(p.Readiness.Score) }),
	text("size_class", func(p *inventory.Project) string { return p.Readiness.SizeClass }),
	text("blockers", func(p *inventory.Project) string {
		return findingCodes(p.Readiness.Findings, readiness.SeverityBlocker)
	}),
	text("scan_status", func(p *inventory.Project) string { return p.ScanStatus }),
	text("errors", func(p *inventory.Project) string { return scanErrors(p.Errors) }),
	// Appended columns.
	statColumn("snippets_size_bytes"),
	statColumn("uploads_size_bytes"),
	value("ci_complexity", ciCell(func(ci *inventory.CI) string { return strconv.Itoa(ci.Complexity) })),
	text("ci_constructs", ciCell(func(ci *inventory.CI) string { return strings.Join(ci.Constructs, ";") })),
	flagColumn("registry_in_use"),
	text("package_types", func(p *inventory.Project) string { return strings.Join(p.Features.PackageTypes, ";") }),
	value("wiki_enabled", func(p *inventory.Project) string { return strconv.FormatBool(p.Features.WikiEnabled) }),
	text("lower_bound_counts", func(p *inventory.Project) string { return strings.Join(p.Counts.LowerBounds, ";") }),
	text("findings", func(p *inventory.Project) string { return findingCodes(p.Readiness.Findings, "") }),
	value("export_size_bytes", func(p *inventory.Project) string {
		if p.Statistics == nil {
			return ""
		}
		return strconv.FormatInt(p.Statistics.ExportSize(), 10)
	}),
	countColumn("environments"), // appended by withFacts before the columns below
	text("tier", func(p *inventory.Project) string { return p.Readiness.Tier }),
	value("effort_hours", func(p *inventory.Project) string {
		if p.Readiness.Effort == "" { // a stored verdict from before effort estimates
			return ""
		}
		return strconv.FormatInt(p.Readiness.EffortHours, 10)
	}),
	text("effort", func(p *inventory.Project) string { return p.Readiness.Effort }),
	text("migration_path", func(p *inventory.Project) string { return p.Readiness.Path }),
	text("ci_config_path", func(p *inventory.Project) string { return p.Features.CIConfigPath }),
	text("ci_config_external", func(p *inventory.Project) string { return p.Features.CIConfigExternal }),
	value("last_profiled_at", func(p *inventory.Project) string { return timestamp(p.LastProfiledAt) }),
	text("namespace_kind", func(p *inventory.Project) string { return p.NamespaceKind }),
	value("stale", func(p *inventory.Project) string { return flag(p.Stale) }),
	text("forked_from", func(p *inventory.Project) string { return p.ForkedFrom }),
	text("submodules", func(p *inventory.Project) string { return strings.Join(p.Features.Submodules, ";") }),
	text("ci_include_projects", ciCell(func(ci *inventory.CI) string { return strings.Join(ci.IncludeProjects, ";") })),
	text("ci_trigger_projects", ciCell(func(ci *inventory.CI) string { return strings.Join(ci.TriggerProjects, ";") })),
	value("dependencies", func(p *inventory.Project) string { return strconv.Itoa(len(inventory.Dependencies(p))) }),
	value("wave", func(p *inventory.Project) string {
		if p.Wave == 0 {
			return ""
		}
		return strconv.Itoa(p.Wave)
	}),
	text("owners", func(p *inventory.Project) string { return strings.Join(p.Owners, ";") }),
	value("ci_jobs_lower_bound", ciCell(func(ci *inventory.CI) string { return strconv.FormatBool(ci.JobsLowerBound) })),
})

// projectsHeader is projects.csv's header row.
var projectsHeader = header(projectColumns)

// countColumn is the column of the declared count name: empty when unknown.
func countColumn(name string) column[inventory.Project] {
	for _, f := range facts.Counts {
		if f.Name == name {
			return value(name, func(p *inventory.Project) string { return count(*f.Field(&p.Counts)) })
		}
	}
	panic("export: no declared count " + name)
}

// flagColumn is the column of the declared feature flag name: empty when unknown.
func flagColumn(name string) column[inventory.Project] {
	fl := facts.FlagNamed(name)
	return value(name, func(p *inventory.Project) string {
		return flag(*fl.Field(&p.Features))
	})
}

// flag writes a known flag; empty when unknown.
func flag(b *bool) string {
	if b == nil {
		return ""
	}
	return strconv.FormatBool(*b)
}

// statColumn is the column of the declared statistics field: empty when unknown.
func statColumn(name string) column[inventory.Project] {
	for _, s := range facts.Stats {
		if s.Column == name {
			return value(name, func(p *inventory.Project) string {
				if p.Statistics == nil {
					return ""
				}
				return strconv.FormatInt(s.Field(p.Statistics), 10)
			})
		}
	}
	panic("export: no declared statistics column " + name)
}

// withFacts appends a column for each declared count and statistics field that cols
// lacks: a new fact becomes the last column.
func withFacts(cols []column[inventory.Project]) []column[inventory.Project] {
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

// groupRow is one groups.csv row: the group and its subtree totals (rolled up).
type groupRow struct {
	g   *inventory.Group
	sub *groupAgg
}

// groupColumns is the data contract of groups.csv: columns are only ever appended.
var groupColumns = []column[groupRow]{
	value("group_id", func(r *groupRow) string { return strconv.FormatInt(r.g.ID, 10) }),
	text("full_path", func(r *groupRow) string { return r.g.FullPath }),
	value("parent_id", func(r *groupRow) string { return strconv.FormatInt(r.g.ParentID, 10) }),
	value("projects", func(r *groupRow) string { return strconv.Itoa(r.g.Projects) }),
	value("subgroups", func(r *groupRow) string { return strconv.Itoa(r.g.Subgroups) }),
	text("scan_status", func(r *groupRow) string { return r.g.ScanStatus }),
	// Subtree totals: the group and every descendant, from the projects exported.
	value("subtree_projects", func(r *groupRow) string { return strconv.Itoa(r.sub.Projects) }),
	value("subtree_storage_size_bytes", func(r *groupRow) string { return strconv.FormatInt(r.sub.Storage, 10) }),
	value("subtree_export_size_bytes", func(r *groupRow) string { return strconv.FormatInt(r.sub.ExportSize, 10) }),
	value("subtree_ready", func(r *groupRow) string { return strconv.Itoa(r.sub.Ready) }),
	value("subtree_needs_attention", func(r *groupRow) string { return strconv.Itoa(r.sub.NeedsAttention) }),
	value("subtree_blocked", func(r *groupRow) string { return strconv.Itoa(r.sub.Blocked) }),
	value("subtree_unknown_size", func(r *groupRow) string { return strconv.Itoa(r.sub.UnknownSize) }),
}

var groupsHeader = header(groupColumns)

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
