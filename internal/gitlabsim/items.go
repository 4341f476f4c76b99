package gitlabsim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Lists are never stored: item k of a list is computed from the seed, the project
// and k, consistently with the project's counts and the state filters.

// itemID gives list items globally unique ids.
func itemID(projectID, iid int64) int64 { return projectID*100000 + iid }

var userNames = []string{
	"alice.martin", "bob.nguyen", "carol.smith", "dave.okafor", "erin.kowalski", "frank.li", "grace.hopper",
	"heidi.schmidt", "ivan.petrov", "judy.garcia", "mallory.brown", "niaj.patel", "olivia.rossi", "peggy.chen",
	"rupert.jones", "sybil.dubois", "trent.ito", "victor.silva", "walter.meyer", "yasmin.haddad",
}

type apiUser struct {
	ID        int64  `json:"id"`
	Username  string `json:"username"`
	Name      string `json:"name"`
	State     string `json:"state"`
	Locked    bool   `json:"locked"`
	AvatarURL string `json:"avatar_url"`
	WebURL    string `json:"web_url"`
}

func (in *instance) user(k uint64) apiUser {
	u := userNames[k%uint64(len(userNames))]
	first, last, _ := strings.Cut(u, ".")
	return apiUser{
		ID:        int64(k%uint64(len(userNames))) + 2,
		Username:  u,
		Name:      strings.ToUpper(first[:1]) + first[1:] + " " + strings.ToUpper(last[:1]) + last[1:],
		State:     "active",
		AvatarURL: "https://secure.gravatar.com/avatar/" + u,
		WebURL:    in.externalURL + "/" + u,
	}
}

// at spreads item k of n over the project's life: item 1 at creation, item n at the
// last activity before any change (Server.Change), so that a change moves no item.
func at(p *project, k, n int64) time.Time {
	end := p.activity
	if p.grown != nil {
		end = p.grown.activity
	}
	span := end - p.created
	return time.Unix(p.created+span*k/(n+1), 0).UTC()
}

// kth returns the k-th (1-based) position in 1..n whose predicate holds, where the
// predicate holds at positions spread evenly (Bresenham) m times in 1..n.
// inverse selects the positions where it does not hold.
func kth(k, m, n int64, inverse bool) int64 {
	if !inverse {
		// smallest j with floor(j*m/n) >= k
		return (k*n + m - 1) / m
	}
	lo, hi := k, n
	for lo < hi {
		j := (lo + hi) / 2
		if j-j*m/n >= k {
			hi = j
		} else {
			lo = j + 1
		}
	}
	return lo
}

// spread reports whether position j (1-based) of n is one of m evenly spread positions.
func spread(j, m, n int64) bool { return j*m/n > (j-1)*m/n }

// --- merge requests ---

type apiMergeRequest struct {
	ID              int64      `json:"id"`
	IID             int64      `json:"iid"`
	ProjectID       int64      `json:"project_id"`
	Title           string     `json:"title"`
	Description     string     `json:"description"`
	State           string     `json:"state"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	MergedAt        *time.Time `json:"merged_at"`
	ClosedAt        *time.Time `json:"closed_at"`
	TargetBranch    string     `json:"target_branch"`
	SourceBranch    string     `json:"source_branch"`
	Upvotes         int64      `json:"upvotes"`
	Downvotes       int64      `json:"downvotes"`
	Author          apiUser    `json:"author"`
	SourceProjectID int64      `json:"source_project_id"`
	TargetProjectID int64      `json:"target_project_id"`
	Labels          []string   `json:"labels"`
	Draft           bool       `json:"draft"`
	MergeStatus     string     `json:"merge_status"`
	DetailedStatus  string     `json:"detailed_merge_status"`
	SHA             string     `json:"sha"`
	UserNotesCount  int64      `json:"user_notes_count"`
	Reference       string     `json:"reference"`
	WebURL          string     `json:"web_url"`
}

var titleVerbs = []string{"Add", "Fix", "Refactor", "Update", "Remove", "Improve", "Document", "Bump"}
var titleThings = []string{"retry logic", "pagination", "logging", "metrics", "error handling", "cache", "config loading", "CI job", "dependencies", "tests", "rate limiting", "timeouts"}

func (in *instance) title(p *project, salt, iid int64) string {
	r := newRNG(in.seed, hash2(uint64(p.id), uint64(iid)), uint64(salt))
	return titleVerbs[r.intn(len(titleVerbs))] + " " + projectStems[r.intn(len(projectStems))] + " " + titleThings[r.intn(len(titleThings))]
}

// mrState gives the state of MR iid: the newest are open, older ones merged or closed.
func mrState(p *project, iid int64) string {
	n, open, merged := p.count(cMRs), p.count(cOpenMRs), p.count(cMergedMRs)
	old := n - open
	switch {
	case iid > old:
		return "opened"
	case spread(iid, old-merged, old):
		return "closed"
	}
	return "merged"
}

// mrIID maps position pos (0-based, newest first unless asc) of the state-filtered list to an iid.
func mrIID(p *project, state string, pos int64, asc bool) int64 {
	n, open, merged := p.count(cMRs), p.count(cOpenMRs), p.count(cMergedMRs)
	old := n - open
	total := mrTotal(p, state)
	k := total - pos // 1-based rank from the oldest
	if asc {
		k = pos + 1
	}
	switch state {
	case "opened":
		return old + k
	case "closed":
		return kth(k, old-merged, old, false)
	case "merged":
		return kth(k, old-merged, old, true)
	}
	return k
}

func mrTotal(p *project, state string) int64 {
	n, open, merged := p.count(cMRs), p.count(cOpenMRs), p.count(cMergedMRs)
	switch state {
	case "", "all":
		return n
	case "opened":
		return open
	case "merged":
		return merged
	case "closed":
		return n - open - merged
	}
	return 0
}

func (in *instance) mergeRequest(p *project, iid int64) apiMergeRequest {
	r := newRNG(in.seed, hash2(uint64(p.id), uint64(iid)), saltItems)
	created := p.itemTime(cMRs, iid)
	state := mrState(p, iid)
	mr := apiMergeRequest{
		ID:              itemID(p.id, iid),
		IID:             iid,
		ProjectID:       p.id,
		Title:           in.title(p, 1, iid),
		Description:     "Closes #" + strconv.FormatInt(int64(1+r.next()%uint64(max(1, p.count(cIssues)))), 10),
		State:           state,
		CreatedAt:       created,
		UpdatedAt:       created.Add(time.Duration(r.intn(72*3600)) * time.Second),
		TargetBranch:    p.defaultBranch(),
		SourceBranch:    fmt.Sprintf("feature/%d-%s", iid, projectStems[r.intn(len(projectStems))]),
		Upvotes:         int64(r.intn(4)),
		Author:          in.user(r.next()),
		SourceProjectID: p.id,
		TargetProjectID: p.id,
		Labels:          []string{},
		MergeStatus:     "can_be_merged",
		DetailedStatus:  "mergeable",
		SHA:             in.objectID(p, "mr/"+strconv.FormatInt(iid, 10)),
		UserNotesCount:  int64(r.intn(30)),
		Reference:       "!" + strconv.FormatInt(iid, 10),
		WebURL:          fmt.Sprintf("%s/%s/-/merge_requests/%d", in.externalURL, in.pathWithNamespace(p), iid),
	}
	if r.chance(0.4) {
		mr.Labels = append(mr.Labels, []string{"bug", "feature", "tech-debt", "security"}[r.intn(4)])
	}
	switch state {
	case "merged":
		t := mr.UpdatedAt
		mr.MergedAt = &t
		mr.DetailedStatus = "not_open"
	case "closed":
		t := mr.UpdatedAt
		mr.ClosedAt = &t
		mr.DetailedStatus = "not_open"
	case "opened":
		mr.Draft = r.chance(0.15)
	}
	return mr
}

// --- issues ---

type apiIssue struct {
	ID             int64      `json:"id"`
	IID            int64      `json:"iid"`
	ProjectID      int64      `json:"project_id"`
	Title          string     `json:"title"`
	Description    string     `json:"description"`
	State          string     `json:"state"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	ClosedAt       *time.Time `json:"closed_at"`
	Labels         []string   `json:"labels"`
	Author         apiUser    `json:"author"`
	Assignees      []apiUser  `json:"assignees"`
	Type           string     `json:"type"`
	IssueType      string     `json:"issue_type"`
	UserNotesCount int64      `json:"user_notes_count"`
	Upvotes        int64      `json:"upvotes"`
	Downvotes      int64      `json:"downvotes"`
	Confidential   bool       `json:"confidential"`
	WebURL         string     `json:"web_url"`
}

func issueTotal(p *project, state string) int64 {
	switch state {
	case "", "all":
		return p.count(cIssues)
	case "opened":
		return p.count(cOpenIssues)
	case "closed":
		return p.count(cIssues) - p.count(cOpenIssues)
	}
	return 0
}

func issueIID(p *project, state string, pos int64, asc bool) int64 {
	n, open := p.count(cIssues), p.count(cOpenIssues)
	k := issueTotal(p, state) - pos
	if asc {
		k = pos + 1
	}
	switch state {
	case "opened":
		return kth(k, open, n, false)
	case "closed":
		return kth(k, open, n, true)
	}
	return k
}

func (in *instance) issue(p *project, iid int64) apiIssue {
	n, open := p.count(cIssues), p.count(cOpenIssues)
	r := newRNG(in.seed, hash2(uint64(p.id), uint64(iid)), saltItems+1)
	created := at(p, iid, n)
	is := apiIssue{
		ID:             itemID(p.id, iid),
		IID:            iid,
		ProjectID:      p.id,
		Title:          in.title(p, 2, iid),
		Description:    "Steps to reproduce are in the linked thread.",
		State:          "closed",
		CreatedAt:      created,
		UpdatedAt:      created.Add(time.Duration(r.intn(30*24*3600)) * time.Second),
		Labels:         []string{},
		Author:         in.user(r.next()),
		Assignees:      []apiUser{},
		Type:           "ISSUE",
		IssueType:      "issue",
		UserNotesCount: int64(r.intn(20)),
		Upvotes:        int64(r.intn(6)),
		WebURL:         fmt.Sprintf("%s/%s/-/issues/%d", in.externalURL, in.pathWithNamespace(p), iid),
	}
	if spread(iid, open, n) {
		is.State = "opened"
	} else {
		t := is.UpdatedAt
		is.ClosedAt = &t
	}
	if r.chance(0.5) {
		is.Assignees = append(is.Assignees, in.user(r.next()))
	}
	if r.chance(0.6) {
		is.Labels = append(is.Labels, []string{"bug", "feature", "support", "documentation", "priority::1"}[r.intn(5)])
	}
	return is
}

// --- pipelines ---

type apiPipeline struct {
	ID        int64     `json:"id"`
	IID       int64     `json:"iid"`
	ProjectID int64     `json:"project_id"`
	SHA       string    `json:"sha"`
	Ref       string    `json:"ref"`
	Status    string    `json:"status"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	WebURL    string    `json:"web_url"`
}

func (in *instance) pipeline(p *project, iid int64) apiPipeline {
	n := p.count(cPipelines)
	r := newRNG(in.seed, hash2(uint64(p.id), uint64(iid)), saltItems+2)
	created := p.itemTime(cPipelines, iid)
	status := []string{"success", "failed", "canceled", "skipped", "manual"}[r.pick([]float64{78, 14, 4, 2, 2})]
	if iid == n && r.chance(0.3) {
		status = "running"
	}
	ref := p.defaultBranch()
	source := "push"
	switch u := r.float(); {
	case u < 0.35:
		ref = fmt.Sprintf("refs/merge-requests/%d/head", 1+r.next()%uint64(max(1, p.countBefore(cMRs))))
		source = "merge_request_event"
	case u < 0.45:
		source = "schedule"
	case u < 0.5:
		source = "web"
	}
	return apiPipeline{
		ID:        itemID(p.id, iid),
		IID:       iid,
		ProjectID: p.id,
		SHA:       in.objectID(p, "pipeline/"+strconv.FormatInt(iid, 10)),
		Ref:       ref,
		Status:    status,
		Source:    source,
		CreatedAt: created,
		UpdatedAt: created.Add(time.Duration(60+r.intn(3600)) * time.Second),
		WebURL:    fmt.Sprintf("%s/%s/-/pipelines/%d", in.externalURL, in.pathWithNamespace(p), itemID(p.id, iid)),
	}
}

// --- branches, tags, releases ---

type apiCommit struct {
	ID             string    `json:"id"`
	ShortID        string    `json:"short_id"`
	CreatedAt      time.Time `json:"created_at"`
	ParentIDs      []string  `json:"parent_ids"`
	Title          string    `json:"title"`
	Message        string    `json:"message"`
	AuthorName     string    `json:"author_name"`
	AuthorEmail    string    `json:"author_email"`
	AuthoredDate   time.Time `json:"authored_date"`
	CommitterName  string    `json:"committer_name"`
	CommitterEmail string    `json:"committer_email"`
	CommittedDate  time.Time `json:"committed_date"`
	WebURL         string    `json:"web_url"`
}

func (in *instance) commit(p *project, ref string, when time.Time) apiCommit {
	id := in.objectID(p, "commit/"+ref)
	u := in.user(hashString(uint64(p.id), ref))
	title := in.title(p, 3, int64(hashString(0, ref)%1000))
	return apiCommit{
		ID: id, ShortID: id[:8], CreatedAt: when, ParentIDs: []string{in.objectID(p, "parent/"+ref)},
		Title: title, Message: title + "\n",
		AuthorName: u.Name, AuthorEmail: u.Username + "@example.com", AuthoredDate: when,
		CommitterName: u.Name, CommitterEmail: u.Username + "@example.com", CommittedDate: when,
		WebURL: fmt.Sprintf("%s/%s/-/commit/%s", in.externalURL, in.pathWithNamespace(p), id),
	}
}

type apiBranch struct {
	Name               string    `json:"name"`
	Merged             bool      `json:"merged"`
	Protected          bool      `json:"protected"`
	Default            bool      `json:"default"`
	DevelopersCanPush  bool      `json:"developers_can_push"`
	DevelopersCanMerge bool      `json:"developers_can_merge"`
	CanPush            bool      `json:"can_push"`
	WebURL             string    `json:"web_url"`
	Commit             apiCommit `json:"commit"`
}

// Non-default branches fall in prefix buckets; within a bucket names sort by number,
// so that position k of GitLab's name-sorted list is computed without the list.
var branchBuckets = []struct {
	prefix string
	share  int64 // per mille
}{{"bugfix", 150}, {"feature", 600}, {"hotfix", 50}, {"release", 150}, {"renovate", 50}}

// branchName returns the name at position pos of the name-sorted branch list.
func (in *instance) branchName(p *project, pos int64) string {
	others := p.count(cBranches) - 1
	def := p.defaultBranch()
	width := len(strconv.FormatInt(max(others, 1), 10))
	placed := false
	var lo, cum int64 // bucket start among the non-default branches, shares so far
	for _, b := range branchBuckets {
		if !placed && def < b.prefix {
			if pos == 0 {
				return def
			}
			pos--
			placed = true
		}
		cum += b.share
		hi := others * cum / 1000
		if pos < hi-lo {
			r := newRNG(in.seed, hash2(uint64(p.id), uint64(lo+pos)), saltItems+3)
			return fmt.Sprintf("%s/%0*d-%s", b.prefix, width, pos+1, projectStems[r.intn(len(projectStems))])
		}
		pos -= hi - lo
		lo = hi
	}
	return def
}

func (in *instance) branch(p *project, pos int64) apiBranch {
	name := in.branchName(p, pos)
	def := name == p.defaultBranch()
	when := at(p, pos+1, p.count(cBranches))
	if def {
		when = time.Unix(p.activity, 0).UTC()
	}
	return apiBranch{
		Name:      name,
		Merged:    !def && strings.HasPrefix(name, "bugfix/"),
		Protected: (def && p.count(cProtected) > 0) || (strings.HasPrefix(name, "release/") && p.count(cProtected) > 1),
		Default:   def,
		CanPush:   true,
		WebURL:    fmt.Sprintf("%s/%s/-/tree/%s", in.externalURL, in.pathWithNamespace(p), name),
		Commit:    in.commit(p, name, when),
	}
}

type apiReleaseRef struct {
	TagName     string `json:"tag_name"`
	Description string `json:"description"`
}

type apiTag struct {
	Name      string         `json:"name"`
	Message   string         `json:"message"`
	Target    string         `json:"target"`
	Commit    apiCommit      `json:"commit"`
	Release   *apiReleaseRef `json:"release"`
	Protected bool           `json:"protected"`
	CreatedAt time.Time      `json:"created_at"`
}

// tagName names tag j (0 = oldest) as a semantic version.
func tagName(j int64) string {
	k := j + 10
	return fmt.Sprintf("v%d.%d.%d", k/100, (k/10)%10, k%10)
}

// tag returns the tag at position pos of the newest-first list.
func (in *instance) tag(p *project, pos int64) apiTag {
	n := p.count(cTags)
	j := n - 1 - pos
	name := tagName(j)
	when := at(p, j+1, n)
	t := apiTag{Name: name, Message: "Release " + name, Target: in.objectID(p, "tag/"+name), Commit: in.commit(p, name, when), CreatedAt: when}
	if pos < p.count(cReleases) {
		t.Release = &apiReleaseRef{TagName: name, Description: "Changes in " + name}
	}
	return t
}

type apiRelease struct {
	Name            string        `json:"name"`
	TagName         string        `json:"tag_name"`
	Description     string        `json:"description"`
	CreatedAt       time.Time     `json:"created_at"`
	ReleasedAt      time.Time     `json:"released_at"`
	UpcomingRelease bool          `json:"upcoming_release"`
	Author          apiUser       `json:"author"`
	Commit          apiCommit     `json:"commit"`
	CommitPath      string        `json:"commit_path"`
	TagPath         string        `json:"tag_path"`
	Assets          releaseAssets `json:"assets"`
	Evidences       []any         `json:"evidences"`
	Links           releaseLinks  `json:"_links"`
}

type releaseAssets struct {
	Count   int64           `json:"count"`
	Sources []releaseSource `json:"sources"`
	Links   []any           `json:"links"`
}

type releaseSource struct {
	Format string `json:"format"`
	URL    string `json:"url"`
}

type releaseLinks struct {
	Self string `json:"self"`
}

// release returns the release at position pos (newest first); release k is tag k.
func (in *instance) release(p *project, pos int64) apiRelease {
	t := in.tag(p, pos)
	pwn := in.pathWithNamespace(p)
	base := fmt.Sprintf("%s/%s/-/archive/%s/%s-%s", in.externalURL, pwn, t.Name, p.path, t.Name)
	return apiRelease{
		Name: t.Name, TagName: t.Name, Description: "## Changes\n\n- " + in.title(p, 4, pos),
		CreatedAt: t.CreatedAt, ReleasedAt: t.CreatedAt, Author: in.user(hashString(uint64(p.id), t.Name)),
		Commit: t.Commit, CommitPath: "/" + pwn + "/-/commit/" + t.Commit.ID, TagPath: "/" + pwn + "/-/tags/" + t.Name,
		Assets:    releaseAssets{Count: 2, Sources: []releaseSource{{"zip", base + ".zip"}, {"tar.gz", base + ".tar.gz"}}, Links: []any{}},
		Evidences: []any{},
		Links:     releaseLinks{Self: fmt.Sprintf("%s/%s/-/releases/%s", in.externalURL, pwn, t.Name)},
	}
}

// --- settings: hooks, protected branches, variables ---

type apiHook struct {
	ID                       int64     `json:"id"`
	URL                      string    `json:"url"`
	Name                     string    `json:"name"`
	Description              string    `json:"description"`
	ProjectID                int64     `json:"project_id"`
	PushEvents               bool      `json:"push_events"`
	PushEventsBranchFilter   string    `json:"push_events_branch_filter"`
	IssuesEvents             bool      `json:"issues_events"`
	ConfidentialIssuesEvents bool      `json:"confidential_issues_events"`
	MergeRequestsEvents      bool      `json:"merge_requests_events"`
	TagPushEvents            bool      `json:"tag_push_events"`
	NoteEvents               bool      `json:"note_events"`
	JobEvents                bool      `json:"job_events"`
	PipelineEvents           bool      `json:"pipeline_events"`
	WikiPageEvents           bool      `json:"wiki_page_events"`
	DeploymentEvents         bool      `json:"deployment_events"`
	ReleasesEvents           bool      `json:"releases_events"`
	EnableSSLVerification    bool      `json:"enable_ssl_verification"`
	AlertStatus              string    `json:"alert_status"`
	CreatedAt                time.Time `json:"created_at"`
}

var hookTargets = []string{"https://jenkins.example.com/project/%s", "https://hooks.slack.com/services/T000/B000/%s", "https://sonar.example.com/api/webhooks/%s", "https://jira.example.com/rest/gitlab/1.0/%s", "https://argo.example.com/api/webhook/%s"}

func (in *instance) hook(p *project, k int64) apiHook {
	r := newRNG(in.seed, hash2(uint64(p.id), uint64(k)), saltItems+4)
	return apiHook{
		ID: itemID(p.id, k+1), URL: fmt.Sprintf(hookTargets[r.intn(len(hookTargets))], p.path), Name: "", ProjectID: p.id,
		PushEvents: true, MergeRequestsEvents: r.chance(0.6), TagPushEvents: r.chance(0.4), PipelineEvents: r.chance(0.3),
		IssuesEvents: r.chance(0.2), NoteEvents: r.chance(0.1), EnableSSLVerification: true, AlertStatus: "executable",
		CreatedAt: at(p, k+1, p.count(cHooks)),
	}
}

type accessLevel struct {
	ID                     int64  `json:"id"`
	AccessLevel            int    `json:"access_level"`
	AccessLevelDescription string `json:"access_level_description"`
}

type apiProtectedBranch struct {
	ID                        int64         `json:"id"`
	Name                      string        `json:"name"`
	PushAccessLevels          []accessLevel `json:"push_access_levels"`
	MergeAccessLevels         []accessLevel `json:"merge_access_levels"`
	UnprotectAccessLevels     []accessLevel `json:"unprotect_access_levels"`
	AllowForcePush            bool          `json:"allow_force_push"`
	CodeOwnerApprovalRequired bool          `json:"code_owner_approval_required"`
}

var protectedPatterns = []string{"release/*", "hotfix/*", "stable", "production", "v*"}

func (in *instance) protectedBranch(p *project, k int64) apiProtectedBranch {
	name := p.defaultBranch()
	if k > 0 {
		if int(k-1) < len(protectedPatterns) {
			name = protectedPatterns[k-1]
		} else {
			name = "protected-" + strconv.FormatInt(k, 10)
		}
	}
	id := itemID(p.id, k+1)
	return apiProtectedBranch{
		ID: id, Name: name,
		PushAccessLevels:          []accessLevel{{id*10 + 1, 40, "Maintainers"}},
		MergeAccessLevels:         []accessLevel{{id*10 + 2, 30, "Developers + Maintainers"}},
		UnprotectAccessLevels:     []accessLevel{},
		CodeOwnerApprovalRequired: k == 0 && p.has(fCodeownersRoot|fCodeownersGitlab),
	}
}

type apiVariable struct {
	VariableType     string  `json:"variable_type"`
	Key              string  `json:"key"`
	Value            string  `json:"value"`
	Protected        bool    `json:"protected"`
	Masked           bool    `json:"masked"`
	Hidden           bool    `json:"hidden"`
	Raw              bool    `json:"raw"`
	EnvironmentScope string  `json:"environment_scope"`
	Description      *string `json:"description"`
}

var variableKeys = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DOCKER_AUTH_CONFIG", "SONAR_TOKEN", "NPM_TOKEN", "DEPLOY_KEY", "KUBECONFIG", "SLACK_WEBHOOK_URL", "DATABASE_URL", "SENTRY_DSN", "VAULT_ADDR", "API_KEY", "GPG_PRIVATE_KEY", "CODECOV_TOKEN", "HELM_REPO_PASSWORD"}

func (in *instance) variable(p *project, k int64) apiVariable {
	r := newRNG(in.seed, hash2(uint64(p.id), uint64(k)), saltItems+5)
	key := variableKeys[k%int64(len(variableKeys))]
	if k >= int64(len(variableKeys)) {
		key += "_" + strconv.FormatInt(k/int64(len(variableKeys))+1, 10)
	}
	v := apiVariable{VariableType: "env_var", Key: key, Value: fmt.Sprintf("sim-%016x", r.next()), Protected: r.chance(0.5), Masked: r.chance(0.6), EnvironmentScope: "*"}
	if key == "KUBECONFIG" || key == "GPG_PRIVATE_KEY" {
		v.VariableType = "file"
	}
	if r.chance(0.2) {
		v.EnvironmentScope = "production"
	}
	return v
}

// --- packages and registry ---

type apiPackage struct {
	ID          int64        `json:"id"`
	Name        string       `json:"name"`
	Version     string       `json:"version"`
	PackageType string       `json:"package_type"`
	Status      string       `json:"status"`
	CreatedAt   time.Time    `json:"created_at"`
	Links       packageLinks `json:"_links"`
	Tags        []any        `json:"tags"`
}

type packageLinks struct {
	WebPath       string `json:"web_path"`
	DeleteAPIPath string `json:"delete_api_path"`
}

func (in *instance) pkg(p *project, k int64) apiPackage {
	types := p.packageTypeList()
	typ := types[k%int64(len(types))]
	name := p.path
	switch typ {
	case "npm":
		name = "@example/" + p.path
	case "maven":
		name = "com/example/" + p.path
	case "generic":
		name = p.path + "-artifacts"
	case "helm":
		name = p.path + "-chart"
	}
	id := itemID(p.id, k+1)
	return apiPackage{
		ID: id, Name: name, Version: fmt.Sprintf("1.%d.%d", k/10, k%10), PackageType: typ, Status: "default",
		CreatedAt: at(p, k+1, p.count(cPackages)),
		Links:     packageLinks{WebPath: fmt.Sprintf("/%s/-/packages/%d", in.pathWithNamespace(p), id), DeleteAPIPath: fmt.Sprintf("%s/api/v4/projects/%d/packages/%d", in.externalURL, p.id, id)},
		Tags:      []any{},
	}
}

type apiRegistryRepository struct {
	ID                     int64      `json:"id"`
	Name                   string     `json:"name"`
	Path                   string     `json:"path"`
	ProjectID              int64      `json:"project_id"`
	Location               string     `json:"location"`
	CreatedAt              time.Time  `json:"created_at"`
	CleanupPolicyStartedAt *time.Time `json:"cleanup_policy_started_at"`
	TagsCount              *int64     `json:"tags_count,omitempty"`
}

var imageNames = []string{"", "api", "worker", "migrations", "debug", "base", "tools", "nginx", "sidecar", "e2e", "cache", "cron"}

func (in *instance) registryRepository(p *project, k int64, withTags bool) apiRegistryRepository {
	name := imageNames[k%int64(len(imageNames))]
	if k >= int64(len(imageNames)) {
		name += strconv.FormatInt(k, 10)
	}
	repoPath := in.pathWithNamespace(p)
	if name != "" {
		repoPath += "/" + name
	}
	host := strings.TrimPrefix(strings.TrimPrefix(in.externalURL, "https://"), "http://")
	rr := apiRegistryRepository{ID: itemID(p.id, k+1), Name: name, Path: repoPath, ProjectID: p.id, Location: "registry." + host + "/" + repoPath, CreatedAt: at(p, k+1, p.count(cRegistryRepos))}
	if withTags {
		n := int64(1 + hash2(uint64(p.id), uint64(k))%200)
		rr.TagsCount = &n
	}
	return rr
}
