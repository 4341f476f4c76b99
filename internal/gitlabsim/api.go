package gitlabsim

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// dispatch answers a routed, authorised request that no fault intercepted.
func (s *Server) dispatch(c *call) {
	switch cls := c.route.cls; {
	case cls == clsVersion:
		c.json(http.StatusOK, versionBody)
	case cls == clsUser:
		c.json(http.StatusOK, s.userBody())
	case cls == clsAppStatistics:
		s.appStatistics(c)
	case cls == clsGroups:
		s.listGroups(c, s.allGroups, c.flag("top_level_only"))
	case cls == clsProjects:
		s.listProjects(c)
	case cls == clsUserProjects:
		ui, ok := s.in.lookupUser(c.route.ref)
		if !ok {
			c.error(http.StatusNotFound, "message", "404 User Not Found")
			return
		}
		s.writeProjects(c, pickPage(c, s.in.users[ui].projects, s.projectFilter(c), c.q().Get("sort") == "desc"))
	case cls >= clsGroup && cls <= clsGroupMembers:
		gi, ok := s.in.lookupGroup(c.route.ref)
		if !ok {
			c.error(http.StatusNotFound, "message", "404 Group Not Found")
			return
		}
		g := &s.in.groups[gi]
		switch cls {
		case clsGroup:
			c.json(http.StatusOK, s.groupJSON(g))
		case clsGroupSubgroups:
			s.listGroups(c, g.children, false)
		case clsGroupDescendants:
			s.listGroups(c, g.descendants, false)
		case clsGroupProjects:
			s.listGroupProjects(c, g)
		case clsGroupMembers:
			s.in.listMembers(c, s.in.groupMembersAll(int32(gi)))
		}
	case cls.projectScoped():
		pi, ok := s.in.lookupProject(c.route.ref)
		if !ok {
			c.error(http.StatusNotFound, "message", "404 Project Not Found")
			return
		}
		p := &s.in.projects[pi]
		if s.projectDeleted(c.fs, p.id) {
			c.fault = true
			c.error(http.StatusNotFound, "message", "404 Project Not Found")
			return
		}
		if s.projectForbidden(c.fs, p.id, cls) {
			c.fault = true
			c.error(http.StatusForbidden, "message", "403 Forbidden")
			return
		}
		s.serveProject(c, p)
	default:
		c.error(http.StatusNotFound, "error", "404 Not Found")
	}
}

var versionBody = map[string]any{
	"version":    "17.5.0-ee",
	"revision":   "4d9c2b1a0f3",
	"kas":        map[string]any{"enabled": true, "externalUrl": "wss://kas.gitlab.example.com", "version": "17.5.0"},
	"enterprise": true,
}

func (s *Server) userBody() map[string]any {
	return map[string]any{
		"id": 1, "username": "sim-admin", "name": "Simulator Admin", "state": "active", "locked": false,
		"avatar_url": nil, "web_url": s.in.externalURL + "/sim-admin", "created_at": "2014-03-01T09:00:00.000Z",
		"bio": "", "email": "sim-admin@example.com", "is_admin": !s.notAdmin, "can_create_group": true,
		"can_create_project": true, "two_factor_enabled": true, "external": false, "private_profile": false,
	}
}

// --- groups ---

type apiGroup struct {
	ID                    int64     `json:"id"`
	WebURL                string    `json:"web_url"`
	Name                  string    `json:"name"`
	Path                  string    `json:"path"`
	Description           string    `json:"description"`
	Visibility            string    `json:"visibility"`
	ShareWithGroupLock    bool      `json:"share_with_group_lock"`
	RequireTwoFactorAuth  bool      `json:"require_two_factor_authentication"`
	TwoFactorGracePeriod  int       `json:"two_factor_grace_period"`
	ProjectCreationLevel  string    `json:"project_creation_level"`
	AutoDevopsEnabled     *bool     `json:"auto_devops_enabled"`
	SubGroupCreationLevel string    `json:"subgroup_creation_level"`
	EmailsDisabled        bool      `json:"emails_disabled"`
	EmailsEnabled         bool      `json:"emails_enabled"`
	MentionsDisabled      *bool     `json:"mentions_disabled"`
	LFSEnabled            bool      `json:"lfs_enabled"`
	DefaultBranch         *string   `json:"default_branch"`
	AvatarURL             *string   `json:"avatar_url"`
	RequestAccessEnabled  bool      `json:"request_access_enabled"`
	RepositoryStorage     string    `json:"repository_storage"`
	FullName              string    `json:"full_name"`
	FullPath              string    `json:"full_path"`
	CreatedAt             time.Time `json:"created_at"`
	ParentID              *int64    `json:"parent_id"`
	OrganizationID        int64     `json:"organization_id"`
	SharedRunnersSetting  string    `json:"shared_runners_setting"`
	WikiAccessLevel       string    `json:"wiki_access_level"`
	MarkedForDeletionOn   *string   `json:"marked_for_deletion_on"`
}

func (s *Server) fullName(g *group) string {
	if g.parent < 0 {
		return g.name
	}
	return s.fullName(&s.in.groups[g.parent]) + " / " + g.name
}

func (s *Server) groupJSON(g *group) apiGroup {
	a := apiGroup{
		ID: g.id, WebURL: s.in.externalURL + "/groups/" + g.fullPath, Name: g.name, Path: g.path,
		Description: g.name + " group", Visibility: visNames[g.vis], TwoFactorGracePeriod: 48,
		ProjectCreationLevel: "developer", SubGroupCreationLevel: "maintainer", EmailsEnabled: true,
		LFSEnabled: true, RequestAccessEnabled: true, RepositoryStorage: "default",
		FullName: s.fullName(g), FullPath: g.fullPath, CreatedAt: time.Unix(g.created, 0).UTC(),
		OrganizationID: 1, SharedRunnersSetting: "enabled", WikiAccessLevel: "enabled",
	}
	if g.parent >= 0 {
		pid := s.in.groups[g.parent].id
		a.ParentID = &pid
	}
	return a
}

// listGroups lists groups (indices ascending by id) with GitLab's ordering options.
func (s *Server) listGroups(c *call, idx []int32, topLevel bool) {
	in := s.in
	var keep func(int32) bool
	search := strings.ToLower(c.q().Get("search"))
	if topLevel || search != "" {
		keep = func(i int32) bool {
			g := &in.groups[i]
			return (!topLevel || g.parent < 0) && (search == "" || strings.Contains(strings.ToLower(g.name), search) || strings.Contains(g.path, search))
		}
	}
	if c.q().Get("pagination") == "keyset" {
		page, ok := c.keyset(idx, func(i int32) int64 { return in.groups[i].id }, keep)
		if ok {
			c.json(http.StatusOK, mapSlice(page, func(i int32) apiGroup { return s.groupJSON(&in.groups[i]) }))
		}
		return
	}
	orderBy := c.q().Get("order_by")
	switch orderBy {
	case "", "name", "path":
		key := func(g *group) string { return g.name }
		if orderBy == "path" {
			key = func(g *group) string { return g.path }
		}
		idx = slices.Clone(idx)
		slices.SortStableFunc(idx, func(a, b int32) int {
			return cmp.Or(strings.Compare(strings.ToLower(key(&in.groups[a])), strings.ToLower(key(&in.groups[b]))), cmp.Compare(a, b))
		})
	}
	page := pickPage(c, idx, keep, c.q().Get("sort") == "desc")
	c.json(http.StatusOK, mapSlice(page, func(i int32) apiGroup { return s.groupJSON(&in.groups[i]) }))
}

// --- projects ---

type apiNamespace struct {
	ID        int64   `json:"id"`
	Name      string  `json:"name"`
	Path      string  `json:"path"`
	Kind      string  `json:"kind"`
	FullPath  string  `json:"full_path"`
	ParentID  *int64  `json:"parent_id"`
	AvatarURL *string `json:"avatar_url"`
	WebURL    string  `json:"web_url"`
}

type apiForkParent struct {
	ID                int64     `json:"id"`
	Description       string    `json:"description"`
	Name              string    `json:"name"`
	NameWithNamespace string    `json:"name_with_namespace"`
	Path              string    `json:"path"`
	PathWithNamespace string    `json:"path_with_namespace"`
	CreatedAt         time.Time `json:"created_at"`
	DefaultBranch     *string   `json:"default_branch"`
	HTTPURLToRepo     string    `json:"http_url_to_repo"`
	WebURL            string    `json:"web_url"`
}

type apiStatistics struct {
	CommitCount           int64 `json:"commit_count"`
	StorageSize           int64 `json:"storage_size"`
	RepositorySize        int64 `json:"repository_size"`
	WikiSize              int64 `json:"wiki_size"`
	LFSObjectsSize        int64 `json:"lfs_objects_size"`
	JobArtifactsSize      int64 `json:"job_artifacts_size"`
	PipelineArtifactsSize int64 `json:"pipeline_artifacts_size"`
	PackagesSize          int64 `json:"packages_size"`
	SnippetsSize          int64 `json:"snippets_size"`
	UploadsSize           int64 `json:"uploads_size"`
	ContainerRegistrySize int64 `json:"container_registry_size"`
}

// apiProject is GitLab's project entity; simple=true leaves out everything past the
// embedded detail pointer.
type apiProject struct {
	ID                int64        `json:"id"`
	Description       string       `json:"description"`
	Name              string       `json:"name"`
	NameWithNamespace string       `json:"name_with_namespace"`
	Path              string       `json:"path"`
	PathWithNamespace string       `json:"path_with_namespace"`
	CreatedAt         time.Time    `json:"created_at"`
	DefaultBranch     *string      `json:"default_branch"`
	TagList           []string     `json:"tag_list"`
	Topics            []string     `json:"topics"`
	SSHURLToRepo      string       `json:"ssh_url_to_repo"`
	HTTPURLToRepo     string       `json:"http_url_to_repo"`
	WebURL            string       `json:"web_url"`
	ReadmeURL         *string      `json:"readme_url"`
	ForksCount        int64        `json:"forks_count"`
	AvatarURL         *string      `json:"avatar_url"`
	StarCount         int64        `json:"star_count"`
	LastActivityAt    time.Time    `json:"last_activity_at"`
	Namespace         apiNamespace `json:"namespace"`
	*apiProjectDetail
}

type apiProjectDetail struct {
	ContainerRegistryImagePrefix     string            `json:"container_registry_image_prefix"`
	Links                            map[string]string `json:"_links"`
	PackagesEnabled                  bool              `json:"packages_enabled"`
	EmptyRepo                        bool              `json:"empty_repo"`
	Archived                         bool              `json:"archived"`
	Visibility                       string            `json:"visibility"`
	ResolveOutdatedDiffDiscussions   bool              `json:"resolve_outdated_diff_discussions"`
	ContainerRegistryEnabled         bool              `json:"container_registry_enabled"`
	IssuesEnabled                    bool              `json:"issues_enabled"`
	MergeRequestsEnabled             bool              `json:"merge_requests_enabled"`
	WikiEnabled                      bool              `json:"wiki_enabled"`
	JobsEnabled                      bool              `json:"jobs_enabled"`
	SnippetsEnabled                  bool              `json:"snippets_enabled"`
	ContainerRegistryAccessLevel     string            `json:"container_registry_access_level"`
	IssuesAccessLevel                string            `json:"issues_access_level"`
	RepositoryAccessLevel            string            `json:"repository_access_level"`
	MergeRequestsAccessLevel         string            `json:"merge_requests_access_level"`
	ForkingAccessLevel               string            `json:"forking_access_level"`
	WikiAccessLevel                  string            `json:"wiki_access_level"`
	BuildsAccessLevel                string            `json:"builds_access_level"`
	SnippetsAccessLevel              string            `json:"snippets_access_level"`
	PagesAccessLevel                 string            `json:"pages_access_level"`
	ReleasesAccessLevel              string            `json:"releases_access_level"`
	PackageRegistryAccessLevel       string            `json:"package_registry_access_level"`
	EmailsDisabled                   bool              `json:"emails_disabled"`
	EmailsEnabled                    bool              `json:"emails_enabled"`
	SharedRunnersEnabled             bool              `json:"shared_runners_enabled"`
	LFSEnabled                       bool              `json:"lfs_enabled"`
	CreatorID                        int64             `json:"creator_id"`
	ForkedFromProject                *apiForkParent    `json:"forked_from_project,omitempty"`
	ImportURL                        *string           `json:"import_url"`
	ImportType                       *string           `json:"import_type"`
	ImportStatus                     string            `json:"import_status"`
	OpenIssuesCount                  *int64            `json:"open_issues_count,omitempty"`
	UpdatedAt                        time.Time         `json:"updated_at"`
	CIDefaultGitDepth                int               `json:"ci_default_git_depth"`
	CIConfigPath                     string            `json:"ci_config_path"`
	PublicJobs                       bool              `json:"public_jobs"`
	SharedWithGroups                 []any             `json:"shared_with_groups"`
	OnlyAllowMergeIfPipelineSucceeds bool              `json:"only_allow_merge_if_pipeline_succeeds"`
	RequestAccessEnabled             bool              `json:"request_access_enabled"`
	MergeMethod                      string            `json:"merge_method"`
	SquashOption                     string            `json:"squash_option"`
	RepositoryStorage                string            `json:"repository_storage"`
	Mirror                           bool              `json:"mirror"`
	MirrorTriggerBuilds              *bool             `json:"mirror_trigger_builds,omitempty"`
	Statistics                       *apiStatistics    `json:"statistics,omitempty"`
	Owner                            *apiUser          `json:"owner,omitempty"` // personal projects only, as GitLab does
}

func access(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}

// namespaceJSON is a project's namespace: kind "group", or "user" for a personal project.
func (s *Server) namespaceJSON(p *project) apiNamespace {
	if p.owner >= 0 {
		u := &s.in.users[p.owner]
		avatar := "https://secure.gravatar.com/avatar/" + u.username
		return apiNamespace{ID: u.id, Name: u.name, Path: u.username, Kind: "user", FullPath: u.username, AvatarURL: &avatar, WebURL: s.in.externalURL + "/" + u.username}
	}
	g := &s.in.groups[p.group]
	ns := apiNamespace{ID: g.id, Name: g.name, Path: g.path, Kind: "group", FullPath: g.fullPath, WebURL: s.in.externalURL + "/groups/" + g.fullPath}
	if g.parent >= 0 {
		pid := s.in.groups[g.parent].id
		ns.ParentID = &pid
	}
	return ns
}

// nsFullName is the namespace part of name_with_namespace.
func (s *Server) nsFullName(p *project) string {
	if p.owner >= 0 {
		return s.in.users[p.owner].name
	}
	return s.fullName(&s.in.groups[p.group])
}

func (in *instance) ownerJSON(u *user) *apiUser {
	return &apiUser{ID: u.id, Username: u.username, Name: u.name, State: "active", AvatarURL: "https://secure.gravatar.com/avatar/" + u.username, WebURL: in.externalURL + "/" + u.username}
}

func (s *Server) projectJSON(p *project, withStats, simple bool) apiProject {
	in := s.in
	pwn := in.pathWithNamespace(p)
	web := in.externalURL + "/" + pwn
	host := strings.TrimPrefix(strings.TrimPrefix(in.externalURL, "https://"), "http://")
	a := apiProject{
		ID: p.id, Description: descriptionOf(p), Name: p.name, NameWithNamespace: s.nsFullName(p) + " / " + p.name,
		Path: p.path, PathWithNamespace: pwn, CreatedAt: time.Unix(p.created, 0).UTC(),
		TagList: []string{}, Topics: []string{}, SSHURLToRepo: "git@" + host + ":" + pwn + ".git",
		HTTPURLToRepo: web + ".git", WebURL: web, ForksCount: int64(p.id % 3), StarCount: int64(p.id % 7),
		LastActivityAt: time.Unix(p.activity, 0).UTC(), Namespace: s.namespaceJSON(p),
	}
	if b := p.defaultBranch(); b != "" {
		a.DefaultBranch = &b
		readme := web + "/-/blob/" + b + "/README.md"
		a.ReadmeURL = &readme
	}
	if p.lang == langGo || p.lang == langNode {
		a.Topics = append(a.Topics, []string{"go", "typescript"}[p.lang-langGo])
		a.TagList = a.Topics
	}
	if simple {
		return a
	}
	api := in.externalURL + "/api/v4/projects/" + strconv.FormatInt(p.id, 10)
	d := &apiProjectDetail{
		ContainerRegistryImagePrefix: "registry." + host + "/" + pwn,
		Links: map[string]string{
			"self": api, "issues": api + "/issues", "merge_requests": api + "/merge_requests",
			"repo_branches": api + "/repository/branches", "labels": api + "/labels", "events": api + "/events",
			"members": api + "/members", "cluster_agents": api + "/cluster_agents",
		},
		PackagesEnabled: p.has(fPackages), EmptyRepo: p.has(fEmpty), Archived: p.has(fArchived),
		Visibility: visNames[p.vis], ContainerRegistryEnabled: p.has(fRegistry), IssuesEnabled: p.has(fIssues),
		MergeRequestsEnabled: p.has(fMRs), WikiEnabled: p.has(fWiki), JobsEnabled: p.has(fJobs), SnippetsEnabled: true,
		ContainerRegistryAccessLevel: access(p.has(fRegistry)), IssuesAccessLevel: access(p.has(fIssues)),
		RepositoryAccessLevel: "enabled", MergeRequestsAccessLevel: access(p.has(fMRs)), ForkingAccessLevel: "enabled",
		WikiAccessLevel: access(p.has(fWiki)), BuildsAccessLevel: access(p.has(fJobs)), SnippetsAccessLevel: "enabled",
		PagesAccessLevel: "private", ReleasesAccessLevel: "enabled", PackageRegistryAccessLevel: access(p.has(fPackages)),
		EmailsEnabled: true, SharedRunnersEnabled: true, LFSEnabled: p.has(fLFSEnabled),
		CreatorID: int64(2 + p.id%int64(len(userNames))), ImportStatus: "none",
		UpdatedAt: time.Unix(p.activity, 0).UTC(), CIDefaultGitDepth: 20, SharedWithGroups: []any{},
		RequestAccessEnabled: true, MergeMethod: "merge", SquashOption: "default_off", RepositoryStorage: "default",
		Mirror: p.has(fMirror), CIConfigPath: in.ciConfigPath(p),
	}
	if p.owner >= 0 {
		d.Owner = in.ownerJSON(&in.users[p.owner])
		d.CreatorID = d.Owner.ID
	}
	if p.has(fIssues) {
		open := p.count(cOpenIssues)
		d.OpenIssuesCount = &open
	}
	if p.has(fMirror) {
		u, t, on := "https://github.com/example/"+p.path+".git", "github", true
		d.ImportURL, d.ImportType, d.ImportStatus, d.MirrorTriggerBuilds = &u, &t, "finished", &on
	}
	if p.forkOf >= 0 {
		f := &in.projects[p.forkOf]
		fp := in.pathWithNamespace(f)
		d.ForkedFromProject = &apiForkParent{
			ID: f.id, Description: descriptionOf(f), Name: f.name, NameWithNamespace: s.nsFullName(f) + " / " + f.name,
			Path: f.path, PathWithNamespace: fp, CreatedAt: time.Unix(f.created, 0).UTC(),
			HTTPURLToRepo: in.externalURL + "/" + fp + ".git", WebURL: in.externalURL + "/" + fp,
		}
		if b := f.defaultBranch(); b != "" {
			d.ForkedFromProject.DefaultBranch = &b
		}
	}
	if withStats {
		d.Statistics = statisticsJSON(p)
	}
	a.apiProjectDetail = d
	return a
}

func statisticsJSON(p *project) *apiStatistics {
	s := &p.sizes
	return &apiStatistics{
		CommitCount: p.count(cCommits), StorageSize: p.storageSize(), RepositorySize: s[sRepository],
		WikiSize: s[sWiki], LFSObjectsSize: s[sLFS], JobArtifactsSize: s[sArtifacts],
		PipelineArtifactsSize: s[sPipelineArtifacts], PackagesSize: s[sPackages], SnippetsSize: s[sSnippets],
		UploadsSize: s[sUploads], ContainerRegistrySize: s[sRegistry],
	}
}

func descriptionOf(p *project) string {
	if p.has(fEmpty) {
		return ""
	}
	return strings.ReplaceAll(p.path, "-", " ") + " (" + []string{"Go", "TypeScript", "Java", "Python", ".NET", "documentation"}[p.lang] + ")"
}

// projectFilter returns the filter for archived= and visibility=, nil when none.
func (s *Server) projectFilter(c *call) func(int32) bool {
	archived, hasArchived := c.q()["archived"]
	visibility := c.q().Get("visibility")
	if !hasArchived && visibility == "" {
		return nil
	}
	want, _ := strconv.ParseBool(strings.Join(archived, ""))
	return func(i int32) bool {
		p := &s.in.projects[i]
		return (!hasArchived || p.has(fArchived) == want) && (visibility == "" || visNames[p.vis] == visibility)
	}
}

// activityFilter adds GET /projects' last_activity_after and last_activity_before
// (ISO 8601, strict bounds) to keep; false after answering 400 for a bad time.
func (s *Server) activityFilter(c *call, keep func(int32) bool) (func(int32) bool, bool) {
	var after, before time.Time
	for _, b := range []struct {
		name string
		dst  *time.Time
	}{{"last_activity_after", &after}, {"last_activity_before", &before}} {
		v := c.q().Get(b.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			c.error(http.StatusBadRequest, "error", b.name+" is invalid")
			return nil, false
		}
		*b.dst = t
	}
	if after.IsZero() && before.IsZero() {
		return keep, true
	}
	return func(i int32) bool {
		a := time.Unix(s.in.projects[i].activity, 0)
		return (after.IsZero() || a.After(after)) && (before.IsZero() || a.Before(before)) && (keep == nil || keep(i))
	}, true
}

func (s *Server) writeProjects(c *call, page []int32) {
	stats, simple := c.flag("statistics"), c.flag("simple")
	c.json(http.StatusOK, mapSlice(page, func(i int32) apiProject { return s.projectJSON(&s.in.projects[i], stats, simple) }))
}

// listGroupProjects lists a group's projects, ascending id unless sort=desc.
func (s *Server) listGroupProjects(c *call, g *group) {
	idx := g.projects
	if c.flag("include_subgroups") {
		idx = g.subtree
	}
	s.writeProjects(c, pickPage(c, idx, s.projectFilter(c), c.q().Get("sort") == "desc"))
}

// offsetCap is GitLab's maximum offset on endpoints that support keyset pagination.
const offsetCap = 50000

// listProjects is GET /projects: newest first unless sort=asc, keyset on request.
func (s *Server) listProjects(c *call) {
	keep, ok := s.activityFilter(c, s.projectFilter(c))
	if !ok {
		return
	}
	if c.q().Get("pagination") == "keyset" {
		page, ok := c.keyset(s.allProjects, func(i int32) int64 { return s.in.projects[i].id }, keep)
		if ok {
			s.writeProjects(c, page)
		}
		return
	}
	if page, perPage := c.pageParams(); (page-1)*perPage >= offsetCap {
		c.error(http.StatusMethodNotAllowed, "error", "Offset pagination has a maximum allowed offset of 50000 for requests that return objects of type Project. Remaining records can be retrieved using keyset pagination.")
		return
	}
	s.writeProjects(c, pickPage(c, s.allProjects, keep, c.q().Get("sort") != "asc"))
}

// pickPage writes the pagination headers for the items of idx that keep accepts
// (all when keep is nil) and returns the requested page, descending when desc.
func pickPage(c *call, idx []int32, keep func(int32) bool, desc bool) []int32 {
	at := func(k int) int32 {
		if desc {
			return idx[len(idx)-1-k]
		}
		return idx[k]
	}
	if keep == nil {
		start, end := c.paginate(int64(len(idx)))
		out := make([]int32, 0, end-start)
		for k := start; k < end; k++ {
			out = append(out, at(int(k)))
		}
		return out
	}
	var total int64
	for _, i := range idx {
		if keep(i) {
			total++
		}
	}
	start, end := c.paginate(total)
	out := make([]int32, 0, end-start)
	var rank int64
	for k := range idx {
		i := at(k)
		if !keep(i) {
			continue
		}
		if rank >= start && rank < end {
			out = append(out, i)
		}
		rank++
		if rank >= end {
			break
		}
	}
	return out
}

// keyset serves pagination=keyset&order_by=id: the page after id_after (ascending) or
// before id_before (descending, the default), with a next link while more remain.
func (c *call) keyset(idx []int32, id func(int32) int64, keep func(int32) bool) ([]int32, bool) {
	if ob := c.q().Get("order_by"); ob != "id" {
		c.error(http.StatusMethodNotAllowed, "error", "Keyset pagination is not supported for ordering by "+cmp.Or(ob, "the default order")+"; use order_by=id")
		return nil, false
	}
	desc := c.q().Get("sort") != "asc"
	_, perPage := c.pageParams()
	var from int
	if desc {
		before, err := strconv.ParseInt(c.q().Get("id_before"), 10, 64)
		from, _ = slices.BinarySearchFunc(idx, before, func(i int32, t int64) int { return cmp.Compare(id(i), t) })
		if err != nil {
			from = len(idx)
		}
		from--
	} else {
		after, _ := strconv.ParseInt(c.q().Get("id_after"), 10, 64)
		from, _ = slices.BinarySearchFunc(idx, after+1, func(i int32, t int64) int { return cmp.Compare(id(i), t) })
	}
	step := 1
	if desc {
		step = -1
	}
	out := make([]int32, 0, perPage)
	more := false
	for k := from; k >= 0 && k < len(idx); k += step {
		if keep != nil && !keep(idx[k]) {
			continue
		}
		if int64(len(out)) == perPage {
			more = true
			break
		}
		out = append(out, idx[k])
	}
	h := c.w.Header()
	h.Set("X-Per-Page", strconv.FormatInt(perPage, 10))
	if more {
		last := strconv.FormatInt(id(out[len(out)-1]), 10)
		params := map[string]string{"page": "", "id_after": last, "id_before": ""}
		if desc {
			params = map[string]string{"page": "", "id_after": "", "id_before": last}
		}
		h.Set("Link", c.link(params, "next"))
	}
	return out, true
}

func mapSlice[T any](idx []int32, f func(int32) T) []T {
	out := make([]T, len(idx))
	for k, i := range idx {
		out[k] = f(i)
	}
	return out
}

// --- below a project ---

var forbiddenFeature = map[class]uint32{
	clsMergeRequests: fMRs,
	clsIssues:        fIssues,
	clsPipelines:     fJobs,
	clsRegistry:      fRegistry,
	clsPackages:      fPackages,
	clsEnvironments:  fJobs,
}

func (s *Server) serveProject(c *call, p *project) {
	in := s.in
	cls := c.route.cls
	if f, ok := forbiddenFeature[cls]; ok && !p.has(f) {
		c.error(http.StatusForbidden, "message", "403 Forbidden")
		return
	}
	asc := c.q().Get("sort") == "asc"
	switch cls {
	case clsProject:
		c.json(http.StatusOK, s.projectJSON(p, c.flag("statistics"), false))
	case clsBranches:
		listItems(c, p.count(cBranches), false, func(pos int64) apiBranch { return in.branch(p, pos) })
	case clsTags:
		listItems(c, p.count(cTags), asc, func(pos int64) apiTag { return in.tag(p, pos) })
	case clsReleases:
		listItems(c, p.count(cReleases), asc, func(pos int64) apiRelease { return in.release(p, pos) })
	case clsTree:
		nodes, ok := in.tree(p, c.q().Get("path"), c.flag("recursive"))
		if !ok {
			c.error(http.StatusNotFound, "message", "404 Tree Not Found")
			return
		}
		listItems(c, int64(len(nodes)), false, func(pos int64) treeNode { return nodes[pos] })
	case clsFileRaw:
		body, ok := in.file(p, c.route.file)
		if !ok {
			c.error(http.StatusNotFound, "message", "404 File Not Found")
			return
		}
		h := c.w.Header()
		h.Set("X-Gitlab-File-Path", c.route.file)
		h.Set("X-Gitlab-Ref", cmp.Or(c.q().Get("ref"), p.defaultBranch()))
		h.Set("X-Gitlab-Size", strconv.Itoa(len(body)))
		c.write(http.StatusOK, "text/plain; charset=utf-8", []byte(body))
	case clsMergeRequests:
		state := c.q().Get("state")
		if !slices.Contains([]string{"", "all", "opened", "closed", "merged", "locked"}, state) {
			c.error(http.StatusBadRequest, "error", "state does not have a valid value")
			return
		}
		listItems(c, mrTotal(p, state), false, func(pos int64) apiMergeRequest { return in.mergeRequest(p, mrIID(p, state, pos, asc)) })
	case clsIssues:
		state := c.q().Get("state")
		if !slices.Contains([]string{"", "all", "opened", "closed"}, state) {
			c.error(http.StatusBadRequest, "error", "state does not have a valid value")
			return
		}
		listItems(c, issueTotal(p, state), false, func(pos int64) apiIssue { return in.issue(p, issueIID(p, state, pos, asc)) })
	case clsPipelines:
		n := p.count(cPipelines)
		listItems(c, n, false, func(pos int64) apiPipeline {
			if asc {
				return in.pipeline(p, pos+1)
			}
			return in.pipeline(p, n-pos)
		})
	case clsHooks:
		listItems(c, p.count(cHooks), false, func(pos int64) apiHook { return in.hook(p, pos) })
	case clsProtectedBranches:
		listItems(c, p.count(cProtected), false, func(pos int64) apiProtectedBranch { return in.protectedBranch(p, pos) })
	case clsVariables:
		listItems(c, p.count(cVariables), false, func(pos int64) apiVariable { return in.variable(p, pos) })
	case clsPackages:
		n := p.count(cPackages)
		types := p.packageTypeList()
		if t := c.q().Get("package_type"); t != "" && n > 0 {
			// Package k has type k mod len(types): select those of type t.
			ti := int64(slices.Index(types, t))
			L := int64(len(types))
			total := int64(0)
			if ti >= 0 && ti < n {
				total = (n - ti + L - 1) / L
			}
			listItems(c, total, false, func(pos int64) apiPackage { return in.pkg(p, ti+pos*L) })
			return
		}
		listItems(c, n, false, func(pos int64) apiPackage { return in.pkg(p, pos) })
	case clsEnvironments:
		listItems(c, p.count(cEnvironments), false, func(pos int64) apiEnvironment { return in.environment(p, pos) })
	case clsProjectMembers:
		in.listMembers(c, in.projectMembersAll(p))
	case clsRegistry:
		tags := c.flag("tags_count")
		listItems(c, p.count(cRegistryRepos), false, func(pos int64) apiRegistryRepository { return in.registryRepository(p, pos, tags) })
	default:
		c.error(http.StatusNotFound, "error", "404 Not Found")
	}
}

// listItems paginates a generated list; reverse flips the positions (sort=asc on a
// newest-first list).
func listItems[T any](c *call, total int64, reverse bool, item func(pos int64) T) {
	start, end := c.paginate(total)
	out := make([]T, 0, end-start)
	for pos := start; pos < end; pos++ {
		if reverse {
			out = append(out, item(total-1-pos))
		} else {
			out = append(out, item(pos))
		}
	}
	c.json(http.StatusOK, out)
}
