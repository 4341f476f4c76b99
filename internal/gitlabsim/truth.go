package gitlabsim

import (
	"slices"
	"time"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// Truth is the instance as a fault-free scan reports it, sorted by ID, except that
// what the project faults in force deny from the repository (403 on its tree or
// files) is unknown (nil), as a scan must report it; and the faults themselves.
// Projects Delete deleted are not in it.
type Truth struct {
	Groups   []inventory.Group   `json:"groups"`
	Projects []inventory.Project `json:"projects"`
	Faults   TruthFaults         `json:"faults"`
	// Instance is what summary.json's instance must say.
	Instance *inventory.Instance `json:"instance"`
}

// TruthFaults lists the projects that project-level faults affect.
type TruthFaults struct {
	Forbidden map[int64][]string `json:"forbidden"` // project id -> endpoint classes answering 403
	Deleted   []int64            `json:"deleted"`   // listed, but 404 on projects/:id and below (DeletedRate; not Delete)
}

// Truth returns the whole ground truth. For large instances prefer GET /-/sim/truth,
// which streams it.
func (s *Server) Truth() Truth {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fs := s.faults.Load()
	t := Truth{Groups: make([]inventory.Group, len(s.in.groups)), Projects: make([]inventory.Project, len(s.allProjects))}
	for i := range s.in.groups {
		t.Groups[i] = s.in.truthGroup(&s.in.groups[i])
	}
	for k, i := range s.allProjects { // deleted projects (Delete) are not in it
		t.Projects[k] = s.withFaults(fs, s.in.truthProject(&s.in.projects[i]), &s.in.projects[i])
	}
	t.Faults = s.truthFaults()
	t.Instance = s.truthInstance()
	return t
}

func (s *Server) truthFaults() TruthFaults {
	fs := s.faults.Load()
	tf := TruthFaults{Forbidden: map[int64][]string{}, Deleted: []int64{}}
	for _, i := range s.allProjects {
		id := s.in.projects[i].id
		if s.projectDeleted(fs, id) {
			tf.Deleted = append(tf.Deleted, id)
		}
		var classes []string
		for c := clsProject; c < nClasses; c++ {
			if s.projectForbidden(fs, id, c) {
				classes = append(classes, c.String())
			}
		}
		if classes != nil {
			slices.Sort(classes)
			tf.Forbidden[id] = classes
		}
	}
	return tf
}

func (in *instance) truthGroup(g *group) inventory.Group {
	t := inventory.Group{ID: g.id, FullPath: g.fullPath, Projects: len(g.projects), Subgroups: len(g.children), ScanStatus: inventory.StatusComplete}
	if g.parent >= 0 {
		t.ParentID = in.groups[g.parent].id
	}
	return t
}

// truthCounts maps each declared count (facts.Counts) to the per-project count that
// answers it.
var truthCounts = map[string]int{
	"branches": cBranches, "tags": cTags, "merge_requests": cMRs, "open_merge_requests": cOpenMRs,
	"issues": cIssues, "open_issues": cOpenIssues, "pipelines": cPipelines, "releases": cReleases,
	"webhooks": cHooks, "protected_branches": cProtected, "ci_variables": cVariables,
	"environments": cEnvironments,
}

func (in *instance) truthProject(p *project) inventory.Project {
	ns := in.nsFullPath(p)
	t := inventory.Project{
		ID:                p.id,
		PathWithNamespace: ns + "/" + p.path,
		Name:              p.name,
		GroupID:           in.nsID(p), // the user namespace for a personal project
		GroupFullPath:     ns,
		Visibility:        visNames[p.vis],
		Archived:          p.has(fArchived),
		Fork:              p.forkOf >= 0,
		ForkedFrom:        in.forkParent(p),
		Mirror:            p.has(fMirror),
		EmptyRepo:         p.has(fEmpty),
		DefaultBranch:     p.defaultBranch(),
		CreatedAt:         time.Unix(p.created, 0).UTC(),
		LastActivityAt:    time.Unix(p.activity, 0).UTC(),
		WebURL:            in.externalURL + "/" + ns + "/" + p.path,
		NamespaceKind:     "group",
		ScanStatus:        inventory.StatusComplete,
		Errors:            []inventory.ScanError{},
	}
	if p.owner >= 0 {
		t.NamespaceKind = "user"
	}
	s := &p.sizes
	t.Statistics = &inventory.Statistics{
		RepositorySize: s[sRepository], LFSObjectsSize: s[sLFS], WikiSize: s[sWiki], PackagesSize: s[sPackages],
		ContainerRegistrySize: s[sRegistry], JobArtifactsSize: s[sArtifacts], SnippetsSize: s[sSnippets],
		UploadsSize: s[sUploads], StorageSize: p.storageSize(), CommitCount: p.count(cCommits),
	}
	c := &t.Counts
	count := func(name string, v int64) *int64 {
		if v > maxTotal {
			c.LowerBounds = append(c.LowerBounds, name)
			v = maxTotal
		}
		return &v
	}
	for _, f := range facts.Counts {
		*f.Field(c) = count(f.Name, p.count(truthCounts[f.Name]))
	}
	slices.Sort(c.LowerBounds)

	f := &t.Features
	file, external := in.ciFile(p)
	f.HasCI = new(p.has(fCI))
	f.CIConfigPath, f.CIConfigExternal = in.ciConfigPath(p), external
	if file != "" {
		_, ci := in.ciConfig(p)
		f.CI = &ci
	}
	f.UsesLFS = new(p.has(fLFSFilter) || s[sLFS] > 0)
	f.HasSubmodules = new(p.has(fGitmodules))
	f.Submodules = submoduleTargets(in.submodules(p))
	f.HasCodeowners = new(p.has(fCodeownersRoot | fCodeownersGitlab | fCodeownersDocs))
	f.WikiEnabled = p.has(fWiki)
	f.RegistryInUse = new(p.count(cRegistryRepos) > 0)
	f.PackageTypes = p.packageTypeList()
	f.IssuesEnabled = p.has(fIssues)
	f.MREnabled = p.has(fMRs)
	f.JobsEnabled = p.has(fJobs)
	f.RegistryEnabled = p.has(fRegistry)
	t.Owners = in.owners(in.projectMembersAll(p))
	return t
}

// withFaults makes a project's truth what a scan under the faults in force can know:
// the facts read from a repository endpoint that answers 403 are unknown (nil), never
// false. Counts stay as they are: scancheck blanks those whose step failed.
func (s *Server) withFaults(fs *faultState, t inventory.Project, p *project) inventory.Project {
	if p.has(fEmpty) || s.projectDeleted(fs, p.id) {
		return t // an empty repository is not probed: its answers are known
	}
	f := &t.Features
	denied := func(c class) bool { return s.projectForbidden(fs, p.id, c) || s.projectForbidden(fs, p.id, clsProject) }
	lfsKnown := t.Statistics != nil && t.Statistics.LFSObjectsSize > 0
	switch {
	case denied(clsTree):
		f.HasSubmodules, f.HasCodeowners, f.CI, f.Submodules = nil, nil, nil, nil
		if f.CIConfigExternal == "" {
			f.HasCI = nil
		}
		if !lfsKnown {
			f.UsesLFS = nil
		}
	case denied(clsFileRaw):
		f.CI, f.Submodules = nil, nil
		if p.has(fGitattributes) && !lfsKnown {
			f.UsesLFS = nil
		}
	}
	return t
}
