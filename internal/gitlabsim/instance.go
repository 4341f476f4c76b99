package gitlabsim

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Visibility levels, ordered so that clamping keeps a project no more visible than its group.
const (
	visPrivate uint8 = iota
	visInternal
	visPublic
)

var visNames = [...]string{"private", "internal", "public"}

// Project flags.
const (
	fArchived uint32 = 1 << iota
	fFork
	fMirror
	fEmpty
	fIssues
	fMRs
	fJobs
	fWiki
	fRegistry
	fPackages
	fLFSEnabled
	fCI
	fCIInvalid
	fGitattributes
	fLFSFilter
	fGitmodules
	fCodeownersRoot
	fCodeownersGitlab
	fCodeownersDocs
	fGitlabDir
	fLicense
	fDockerfile
)

// Per-project counts, stored because they are drawn once from skewed distributions
// and every list endpoint must agree with them.
const (
	cBranches = iota
	cTags
	cMRs
	cOpenMRs
	cMergedMRs
	cIssues
	cOpenIssues
	cPipelines
	cReleases
	cHooks
	cProtected
	cVariables
	cRegistryRepos
	cPackages
	cCommits
	cEnvironments
	nCounts
)

// Per-project sizes in bytes.
const (
	sRepository = iota
	sLFS
	sWiki
	sPackages
	sRegistry
	sArtifacts
	sPipelineArtifacts
	sSnippets
	sUploads
	nSizes
)

// Repository languages decide the tree, the files and the CI scripts.
const (
	langGo uint8 = iota
	langNode
	langJava
	langPython
	langDotnet
	langDocs
)

var defaultBranches = [...]string{"main", "master", "develop"}

// packageTypes is sorted so that a bit mask decodes to a sorted list.
var packageTypes = [...]string{"conan", "generic", "golang", "helm", "maven", "npm", "nuget", "pypi", "rubygems", "terraform_module"}

const (
	gib = int64(1) << 30
	mib = int64(1) << 20
	kib = int64(1) << 10
)

// simNow is the instance's default "now": fixed, so that dates do not depend on the
// wall clock. Options.Now moves it (see instance.shiftClock).
var simNow = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).Unix()

// maxDepth is the deepest subgroup nesting below a top-level group.
const maxDepth = 5

type group struct {
	id          int64
	parent      int32 // index, -1 for a top-level group
	depth       uint8
	vis         uint8
	name        string
	path        string
	fullPath    string
	created     int64
	children    []int32 // direct subgroups, ascending id
	projects    []int32 // direct projects, ascending id
	subtree     []int32 // projects of the group and its descendants, ascending id
	descendants []int32 // descendant groups, ascending id
}

// project is the compact metadata kept per project; everything else (lists, files,
// CI configuration) is derived from the seed and the id when asked for.
type project struct {
	id       int64
	forkOf   int32 // index of the forked project, -1 when not a fork
	group    int32 // index of the group, -1 for a personal project
	owner    int32 // index of the user owning a personal project, -1 for a group project
	name     string
	path     string
	created  int64
	activity int64
	flags    uint32
	pkgTypes uint16
	vis      uint8
	lang     uint8
	branch   uint8 // index in defaultBranches
	removed  bool  // deleted by Server.Delete: listed nowhere, 404 everywhere, not in the truth
	counts   [nCounts]uint32
	sizes    [nSizes]int64
	grown    *growth // what it was before Server.Change first touched it; nil if never
}

func (p *project) has(f uint32) bool { return p.flags&f != 0 }

func (p *project) count(c int) int64 { return int64(p.counts[c]) }

func (p *project) defaultBranch() string {
	if p.has(fEmpty) {
		return ""
	}
	return defaultBranches[p.branch]
}

func (p *project) packageTypeList() []string {
	out := []string{}
	for i, t := range packageTypes {
		if p.pkgTypes&(1<<i) != 0 {
			out = append(out, t)
		}
	}
	return out
}

// user is a user namespace holding personal projects. The simulator gives a user
// and its namespace the same id.
type user struct {
	id       int64
	username string
	name     string
	created  int64
	projects []int32 // ascending id
}

type instance struct {
	seed        int64
	externalURL string
	groups      []group
	byPath      map[string]int32 // group full path (lower case) -> index
	roots       []int32
	projects    []project // group projects first, then personal ones: ascending id
	users       []user
	byUsername  map[string]int32 // username -> index
	now         int64            // the instance's "now", Unix seconds: simNow unless Options.Now
	people      []person         // whom members are (members.go)
}

// Special roles make sure every readiness rule and the 10,000 cut-off are exercised
// even in small instances; each goes to one project per `per` projects, at least one.
type role uint8

const (
	roleNone role = iota
	roleManyPipelines
	roleManyMRs
	roleHugeRepo
	roleInvalidCI
	roleBusy
	roleManyBranches
	roleManyTags
	roleManyCommits
	roleMultiGB
	roleBigRegistry
	roleManyIssues
)

var roleQuota = []struct {
	role role
	per  int
}{
	{roleManyPipelines, 2000},
	{roleManyMRs, 4000},
	{roleHugeRepo, 10000},
	{roleInvalidCI, 1000},
	{roleBusy, 1000},
	{roleManyBranches, 2000},
	{roleManyTags, 2000},
	{roleManyCommits, 2000},
	{roleMultiGB, 1000},
	{roleBigRegistry, 2000},
	{roleManyIssues, 4000},
}

var topGroupNames = []string{
	"Platform", "Payments", "Mobile", "Data Science", "Infrastructure", "Security", "Marketing Web",
	"Internal Tools", "Customer Success", "Research", "Retail", "Logistics", "Identity", "Observability",
	"Frontend", "Backend", "Analytics", "Billing", "Search", "Messaging", "Finance IT", "HR Systems",
	"Developer Experience", "Edge", "Growth", "Partner Integrations", "Compliance", "Legacy",
}

var subGroupNames = []string{
	"Core", "API", "Services", "Libraries", "Apps", "Infra", "Tools", "Experiments", "Legacy", "Archive",
	"Integrations", "SDKs", "Terraform", "Helm Charts", "Pipelines", "Docs", "Team Alpha", "Team Beta",
	"Team Gamma", "Shared", "Sandbox", "Migrations", "QA", "Release Engineering", "Templates",
}

var projectStems = []string{
	"auth", "billing", "catalog", "checkout", "gateway", "inventory", "ledger", "notification", "order",
	"payment", "profile", "search", "session", "shipping", "user", "report", "invoice", "pricing", "media",
	"event", "audit", "config", "feature-flag", "metrics", "log", "cache", "queue", "scheduler", "storage",
	"identity", "onboarding", "recommendation", "fraud", "tax", "subscription", "webhook", "export",
	"import", "sync", "analytics", "cart", "review", "loyalty", "geo", "consent",
}

var projectSuffixes = []string{
	"service", "api", "worker", "web", "ui", "app", "lib", "sdk", "cli", "infra", "terraform", "helm",
	"docs", "proxy", "jobs", "client", "server", "core", "common", "tools", "bot", "etl", "pipeline",
	"dashboard", "mobile",
}

func slug(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), " ", "-")
}

// build creates the instance: groups, then projects spread over them.
func build(o Options) (*instance, error) {
	if o.Groups < 1 {
		return nil, errors.New("gitlabsim: at least one group is required")
	}
	if o.Projects < 0 {
		return nil, fmt.Errorf("gitlabsim: negative project count %d", o.Projects)
	}
	if o.Users < 0 || o.PersonalProjects < 0 {
		return nil, fmt.Errorf("gitlabsim: negative user (%d) or personal project (%d) count", o.Users, o.PersonalProjects)
	}
	if o.PersonalProjects > 0 && o.Users == 0 {
		return nil, errors.New("gitlabsim: personal projects need at least one user")
	}
	in := &instance{seed: o.Seed, externalURL: strings.TrimRight(o.ExternalURL, "/")}
	in.buildGroups(o.Groups)
	in.buildProjects(o.Projects)
	// Users and their projects come last so that an instance without them is the
	// same as before they existed, and personal project ids follow every group
	// project's.
	in.buildUsers(o.Users)
	in.buildPersonalProjects(o.PersonalProjects)
	in.buildPeople()
	in.now = simNow
	if !o.Now.IsZero() {
		in.shiftClock(o.Now.Unix() - simNow)
	}
	return in, nil
}

// shiftClock moves every timestamp of the instance by d seconds, "now" included,
// so that ages relative to now stay as generated. It runs after everything is drawn,
// so the instance is otherwise the one the seed gives.
func (in *instance) shiftClock(d int64) {
	in.now += d
	for i := range in.groups {
		in.groups[i].created += d
	}
	for i := range in.projects {
		p := &in.projects[i]
		p.created += d
		p.activity += d
	}
	for i := range in.users {
		in.users[i].created += d
	}
}

func (in *instance) buildGroups(n int) {
	in.groups = make([]group, n)
	in.byPath = make(map[string]int32, n)
	nTop := max(1, int(math.Round(float64(n)*0.2)))
	used := make(map[string]int) // parent index + path -> uses, for unique sibling paths
	id := int64(8)
	start := time.Date(2014, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	span := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC).Unix() - start
	for k := range n {
		r := newRNG(in.seed, uint64(k), saltGroup)
		g := &in.groups[k]
		id += 1 + int64(r.intn(4))
		g.id = id
		g.parent = -1
		g.created = start + span*int64(k)/int64(n) + int64(r.intn(3600))
		names := topGroupNames
		if k >= nTop {
			c := int32(r.intn(k))
			for in.groups[c].depth >= maxDepth {
				c = in.groups[c].parent
			}
			g.parent = c
			g.depth = in.groups[c].depth + 1
			names = subGroupNames
		}
		g.name = names[r.intn(len(names))]
		g.path = slug(g.name)
		key := strconv.Itoa(int(g.parent)) + "/" + g.path
		if u := used[key]; u > 0 {
			g.name += " " + strconv.Itoa(u+1)
			g.path += "-" + strconv.Itoa(u+1)
		}
		used[key]++
		g.vis = uint8(r.pick([]float64{35, 45, 20}))
		if g.parent >= 0 {
			parent := &in.groups[g.parent]
			// Subgroups mostly inherit; never more visible than their parent.
			g.vis = parent.vis
			if r.chance(0.25) {
				g.vis = uint8(r.intn(int(parent.vis) + 1))
			}
			g.fullPath = parent.fullPath + "/" + g.path
			parent.children = append(parent.children, int32(k))
		} else {
			g.fullPath = g.path
			in.roots = append(in.roots, int32(k))
		}
		in.byPath[g.fullPath] = int32(k)
	}
}

func (in *instance) buildProjects(n int) {
	in.projects = make([]project, n)
	// Group weights: skewed (a few groups hold most projects), some groups empty.
	cum := make([]float64, len(in.groups))
	var total float64
	for k := range in.groups {
		r := newRNG(in.seed, uint64(k), saltGroupWeight)
		w := r.logNormal(1, 1.3)
		if r.chance(0.12) {
			w = 0
		}
		total += w
		cum[k] = total
	}
	if total == 0 {
		cum[len(cum)-1], total = 1, 1
	}
	roles := in.assignRoles(n)
	used := make(map[string]int, n)
	id := int64(0)
	start := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	span := time.Date(2025, 5, 15, 0, 0, 0, 0, time.UTC).Unix() - start
	for i := range n {
		r := newRNG(in.seed, uint64(i), saltProjectID)
		id = nextProjectID(&r, id)
		gi := int32(min(sortSearch(cum, r.float()*total), len(cum)-1))
		p := &in.projects[i]
		p.id = id
		p.group = gi
		p.owner = -1
		p.forkOf = -1
		nameProject(p, &r, strconv.Itoa(int(gi)), used)
		p.created = start + span*int64(i)/int64(n) + int64(r.intn(int(max(1, span/int64(n)))))
		g := &in.groups[gi]
		g.projects = append(g.projects, int32(i))
		in.profile(p, i, roles[i], g.vis)
	}
	// Subtrees: a group's projects plus its descendants', ascending id.
	for k := len(in.groups) - 1; k >= 0; k-- {
		g := &in.groups[k]
		sub := slices.Clone(g.projects)
		desc := []int32{}
		for _, c := range g.children {
			sub = append(sub, in.groups[c].subtree...)
			desc = append(desc, c)
			desc = append(desc, in.groups[c].descendants...)
		}
		slices.Sort(sub)
		slices.Sort(desc)
		g.subtree, g.descendants = sub, desc
	}
}

// nextProjectID draws the id after id.
func nextProjectID(r *rng, id int64) int64 {
	switch u := r.float(); {
	case u < 0.80:
		return id + 1
	case u < 0.95:
		return id + r.between(2, 4)
	default:
		return id + r.between(5, 20) // projects deleted long ago leave gaps
	}
}

// nameProject draws a project's path, unique within its namespace ns, and its name.
func nameProject(p *project, r *rng, ns string, used map[string]int) {
	stem := projectStems[r.intn(len(projectStems))]
	suffix := projectSuffixes[r.intn(len(projectSuffixes))]
	p.path = stem + "-" + suffix
	key := ns + "/" + p.path
	if u := used[key]; u > 0 {
		p.path += "-" + strconv.Itoa(u+1)
	}
	used[key]++
	p.name = p.path
	if r.chance(0.3) {
		p.name = strings.ToUpper(p.path[:1]) + strings.ReplaceAll(p.path[1:], "-", " ")
	}
}

// userIDBase is where user namespace ids start, far above the group ids of any
// instance this simulator builds (groups take 1 to 4 ids each), so that the two
// never collide; buildUsers moves it further up if they ever would.
const userIDBase = 1_000_000

var firstNames = []string{
	"alice", "bruno", "chloe", "dmitri", "elena", "fatima", "george", "hana", "igor", "julia", "kenji",
	"lucia", "marco", "nadia", "oscar", "priya", "quentin", "rosa", "samir", "tanya", "umar", "vera",
	"wei", "ximena", "yusuf", "zoe",
}

var lastNames = []string{
	"smith", "andersen", "baptiste", "castillo", "dubois", "eriksson", "fischer", "gonzalez", "horvat",
	"ivanova", "jensen", "kim", "lopez", "moreau", "novak", "oconnor", "park", "quinn", "rahman",
	"sato", "tanaka", "usman", "varga", "weber", "yilmaz", "zielinski",
}

// buildUsers creates n user namespaces with usernames such as "alice.smith".
func (in *instance) buildUsers(n int) {
	if n == 0 {
		return
	}
	in.users = make([]user, n)
	in.byUsername = make(map[string]int32, n)
	base := int64(userIDBase)
	if last := in.groups[len(in.groups)-1].id; last >= base {
		base = (last/userIDBase + 1) * userIDBase
	}
	used := make(map[string]int, n)
	id := base
	start := time.Date(2014, 6, 1, 0, 0, 0, 0, time.UTC).Unix()
	span := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC).Unix() - start
	for k := range n {
		r := newRNG(in.seed, uint64(k), saltUser)
		id += 1 + int64(r.intn(3))
		first, last := firstNames[r.intn(len(firstNames))], lastNames[r.intn(len(lastNames))]
		u := &in.users[k]
		u.id = id
		u.username = first + "." + last
		u.name = strings.ToUpper(first[:1]) + first[1:] + " " + strings.ToUpper(last[:1]) + last[1:]
		if c := used[u.username]; c > 0 {
			u.username += strconv.Itoa(c + 1)
		}
		used[first+"."+last]++
		u.created = start + span*int64(k)/int64(n) + int64(r.intn(86400))
		in.byUsername[u.username] = int32(k)
	}
}

// buildPersonalProjects spreads n projects over the users, skewed like projects
// over groups, with ids after every group project's and the same per-project
// generator.
func (in *instance) buildPersonalProjects(n int) {
	if n == 0 {
		return
	}
	cum := make([]float64, len(in.users))
	var total float64
	for k := range in.users {
		r := newRNG(in.seed, uint64(k), saltUserWeight)
		total += r.logNormal(1, 1.2)
		cum[k] = total
	}
	first := len(in.projects)
	id := int64(0)
	if first > 0 {
		id = in.projects[first-1].id
	}
	in.projects = slices.Grow(in.projects, n)[:first+n]
	used := make(map[string]int, n)
	start := time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	span := time.Date(2025, 5, 15, 0, 0, 0, 0, time.UTC).Unix() - start
	for j := range n {
		i := first + j
		r := newRNG(in.seed, uint64(i), saltProjectID)
		id = nextProjectID(&r, id)
		ui := int32(min(sortSearch(cum, r.float()*total), len(cum)-1))
		p := &in.projects[i]
		p.id = id
		p.group = -1
		p.owner = ui
		p.forkOf = -1
		u := &in.users[ui]
		nameProject(p, &r, u.username, used)
		p.created = start + span*int64(j)/int64(n) + int64(r.intn(int(max(1, span/int64(n)))))
		u.projects = append(u.projects, int32(i))
		in.profile(p, i, roleNone, visPublic) // a user namespace caps no visibility
	}
}

// sortSearch returns the first index with cum[i] > x.
func sortSearch(cum []float64, x float64) int {
	lo, hi := 0, len(cum)
	for lo < hi {
		m := (lo + hi) / 2
		if cum[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// assignRoles hands the special roles to the projects with the smallest role hash.
func (in *instance) assignRoles(n int) []role {
	roles := make([]role, n)
	need := 0
	for _, q := range roleQuota {
		need += max(1, n/q.per)
	}
	order := make([]int32, n)
	keys := make([]uint64, n)
	for i := range order {
		order[i] = int32(i)
		keys[i] = hash3(uint64(in.seed), uint64(i), saltSpecial)
	}
	slices.SortFunc(order, func(a, b int32) int {
		switch {
		case keys[a] < keys[b]:
			return -1
		case keys[a] > keys[b]:
			return 1
		}
		return 0
	})
	next := 0
	for _, q := range roleQuota {
		for range max(1, n/q.per) {
			if next >= n {
				return roles
			}
			roles[order[next]] = q.role
			next++
		}
	}
	return roles
}

// profile draws a project's attributes, counts and sizes.
// visCap is the namespace's visibility, which a project never exceeds.
func (in *instance) profile(p *project, i int, special role, visCap uint8) {
	r := newRNG(in.seed, uint64(p.id), saltProject)
	p.vis = visCap
	if r.chance(0.45) {
		p.vis = uint8(r.intn(int(visCap) + 1))
	}
	p.lang = uint8(r.pick([]float64{20, 25, 20, 20, 8, 7}))
	p.branch = uint8(r.pick([]float64{65, 30, 5}))
	set := func(f uint32, on bool) {
		if on {
			p.flags |= f
		}
	}
	set(fArchived, r.chance(0.06))
	set(fEmpty, r.chance(0.04) && special == roleNone)
	if r.chance(0.04) && i > 0 {
		p.flags |= fFork
		p.forkOf = int32(r.intn(i))
	}
	set(fMirror, r.chance(0.03) && !p.has(fFork|fEmpty))
	set(fIssues, r.chance(0.88))
	set(fMRs, r.chance(0.93))
	set(fJobs, r.chance(0.85))
	set(fWiki, r.chance(0.55))
	set(fRegistry, r.chance(0.5))
	set(fPackages, r.chance(0.55))
	set(fLFSEnabled, r.chance(0.9))
	switch special {
	case roleManyPipelines, roleInvalidCI:
		p.flags |= fJobs
	case roleManyMRs:
		p.flags |= fMRs
	case roleBusy:
		p.flags |= fJobs | fMRs | fIssues
	case roleBigRegistry:
		p.flags |= fRegistry
	case roleManyIssues:
		p.flags |= fIssues
	}
	p.activity = p.created + int64(float64(simNow-p.created)*(1-math.Pow(r.float(), 3)))
	if p.has(fArchived) {
		p.activity = p.created + int64(float64(simNow-p.created)*0.4*r.float())
	}

	if !p.has(fEmpty) {
		ciShare := 0.2
		if p.has(fJobs) {
			ciShare = 0.75
		}
		set(fCI, r.chance(ciShare))
		set(fGitattributes, r.chance(0.28))
		set(fLFSFilter, p.has(fGitattributes) && r.chance(0.45))
		set(fGitmodules, r.chance(0.05))
		switch u := r.float(); {
		case u < 0.08:
			p.flags |= fCodeownersRoot
		case u < 0.16:
			p.flags |= fCodeownersGitlab | fGitlabDir
		case u < 0.20:
			p.flags |= fCodeownersDocs
		}
		set(fGitlabDir, r.chance(0.15))
		set(fLicense, r.chance(0.6))
		set(fDockerfile, r.chance(0.4))
		switch special {
		case roleManyPipelines, roleBusy:
			p.flags |= fCI
		case roleInvalidCI:
			p.flags |= fCI | fCIInvalid
		}
	}

	c := &p.counts
	put := func(k int, v int64) { c[k] = uint32(max(v, 0)) }
	empty := p.has(fEmpty)
	if !empty {
		put(cCommits, r.count(150, 1.6, 1, 45000))
		put(cBranches, 1+r.count(3, 1.3, 0, 900))
		if !r.chance(0.45) {
			put(cTags, r.count(8, 1.5, 1, 4000))
		}
		if c[cTags] > 0 && r.chance(0.5) {
			put(cReleases, min(int64(c[cTags]), r.count(5, 1.2, 1, 400)))
		}
		if !r.chance(0.08) {
			put(cProtected, 1)
			if c[cBranches] > 5 {
				put(cProtected, 1+int64(r.intn(3)))
			}
		}
	}
	if p.has(fMRs) && !empty {
		put(cMRs, r.count(35, 1.7, 0, 4800))
	}
	if p.has(fIssues) && !r.chance(0.2) {
		put(cIssues, r.count(25, 1.8, 0, 4800))
	}
	if p.has(fJobs) && p.has(fCI) {
		put(cPipelines, r.count(180, 1.9, 1, 4900))
	}
	if !r.chance(0.7) {
		put(cHooks, r.between(1, 4))
	}
	if !r.chance(0.45) {
		put(cVariables, r.count(4, 1, 1, 60))
	}
	if p.has(fRegistry) && !empty && r.chance(0.18) {
		put(cRegistryRepos, r.between(1, 5))
	}
	if p.has(fPackages) && r.chance(0.12) {
		put(cPackages, r.count(6, 1.2, 1, 400))
		p.pkgTypes = 1 << []int{4, 5, 7, 1, 6, 3, 0, 2, 8, 9}[r.pick([]float64{25, 30, 15, 15, 6, 4, 2, 2, 1, 1})]
		if r.chance(0.2) && c[cPackages] > 1 {
			// A second type only when there are packages to carry both.
			p.pkgTypes |= 1 << r.intn(len(packageTypes))
		}
	}

	s := &p.sizes
	if !empty {
		s[sRepository] = int64(r.logNormal(18*float64(mib), 1.8))
		s[sRepository] = min(max(s[sRepository], 40*kib), 4800*mib)
		if p.has(fLFSFilter) && r.chance(0.85) {
			s[sLFS] = min(int64(r.logNormal(300*float64(mib), 1.8)), 30*gib)
		}
	}
	if p.has(fWiki) && r.chance(0.4) {
		s[sWiki] = int64(r.logNormal(200*float64(kib), 1.5))
	}
	if r.chance(0.1) {
		s[sSnippets] = int64(r.logNormal(20*float64(kib), 1))
	}
	if r.chance(0.35) {
		s[sUploads] = int64(r.logNormal(2*float64(mib), 1.5))
	}

	switch special {
	case roleManyPipelines:
		put(cPipelines, r.between(12000, 60000))
	case roleManyMRs:
		put(cMRs, r.between(10500, 30000))
	case roleHugeRepo:
		s[sRepository] = r.between(41*gib, 48*gib)
	case roleBusy:
		put(cMRs, r.between(5200, 9500))
		put(cPipelines, r.between(5500, 9800))
		put(cIssues, r.between(5100, 9000))
	case roleManyBranches:
		put(cBranches, r.between(1100, 3000))
		put(cProtected, r.between(2, 6))
	case roleManyTags:
		put(cTags, r.between(5200, 8000))
		put(cReleases, r.between(100, 300))
	case roleManyCommits:
		put(cCommits, r.between(55000, 250000))
		s[sRepository] = r.between(gib, 4*gib)
	case roleMultiGB:
		s[sRepository] = r.between(5500*mib, 15*gib)
	case roleBigRegistry:
		put(cRegistryRepos, r.between(3, 12))
	case roleManyIssues:
		put(cIssues, r.between(10200, 25000))
	}

	// Open and merged shares, kept consistent with the totals.
	if n := int64(c[cMRs]); n > 0 {
		open := min(n, max(int64(float64(n)*(0.03+0.17*r.float())), 1))
		if n > 10000 {
			open = r.between(50, 400)
		}
		put(cOpenMRs, open)
		put(cMergedMRs, int64(float64(n-open)*(0.75+0.15*r.float())))
	}
	if n := int64(c[cIssues]); n > 0 {
		put(cOpenIssues, max(int64(float64(n)*(0.15+0.3*r.float())), 1))
	}

	if c[cPackages] > 0 {
		s[sPackages] = int64(r.logNormal(20*float64(mib)*math.Sqrt(float64(c[cPackages])), 1.5))
	}
	if c[cRegistryRepos] > 0 {
		s[sRegistry] = min(int64(r.logNormal(800*float64(mib), 1.5)), 15*gib)
		if special == roleBigRegistry {
			s[sRegistry] = r.between(21*gib, 80*gib)
		}
	}
	if c[cPipelines] > 0 {
		s[sArtifacts] = int64(r.logNormal(50*float64(mib), 2))
		s[sPipelineArtifacts] = int64(r.logNormal(2*float64(mib), 1.2))
	}
	in.drawEnvironments(p)
}

// storageSize is GitLab's storage_size: everything but the container registry.
func (p *project) storageSize() int64 {
	s := &p.sizes
	return s[sRepository] + s[sLFS] + s[sWiki] + s[sPackages] + s[sArtifacts] + s[sPipelineArtifacts] + s[sSnippets] + s[sUploads]
}

// projectIndex finds a project by id; a removed project is not found.
func (in *instance) projectIndex(id int64) (int, bool) {
	i, ok := slices.BinarySearchFunc(in.projects, id, func(p project, id int64) int {
		switch {
		case p.id < id:
			return -1
		case p.id > id:
			return 1
		}
		return 0
	})
	return i, ok && !in.projects[i].removed
}

// groupIndex finds a group by id.
func (in *instance) groupIndex(id int64) (int, bool) {
	return slices.BinarySearchFunc(in.groups, id, func(g group, id int64) int {
		switch {
		case g.id < id:
			return -1
		case g.id > id:
			return 1
		}
		return 0
	})
}

// lookupGroup resolves a numeric id or a full path.
func (in *instance) lookupGroup(ref string) (int, bool) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return in.groupIndex(id)
	}
	i, ok := in.byPath[strings.ToLower(ref)]
	return int(i), ok
}

// lookupProject resolves a numeric id or a path with namespace.
func (in *instance) lookupProject(ref string) (int, bool) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return in.projectIndex(id)
	}
	ref = strings.ToLower(ref)
	slash := strings.LastIndexByte(ref, '/')
	if slash < 0 {
		return 0, false
	}
	var candidates []int32
	if gi, ok := in.byPath[ref[:slash]]; ok {
		candidates = in.groups[gi].projects
	} else if ui, ok := in.byUsername[ref[:slash]]; ok {
		candidates = in.users[ui].projects
	}
	for _, pi := range candidates {
		if in.projects[pi].path == ref[slash+1:] {
			return int(pi), true
		}
	}
	return 0, false
}

// lookupUser resolves a numeric id or a username.
func (in *instance) lookupUser(ref string) (int, bool) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return slices.BinarySearchFunc(in.users, id, func(u user, id int64) int { return cmp.Compare(u.id, id) })
	}
	i, ok := in.byUsername[strings.ToLower(ref)]
	return int(i), ok
}

// nsID, nsFullPath and nsName describe a project's namespace: its group or, for a
// personal project, its owner's user namespace.
func (in *instance) nsID(p *project) int64 {
	if p.owner >= 0 {
		return in.users[p.owner].id
	}
	return in.groups[p.group].id
}

func (in *instance) nsFullPath(p *project) string {
	if p.owner >= 0 {
		return in.users[p.owner].username
	}
	return in.groups[p.group].fullPath
}

func (in *instance) nsName(p *project) string {
	if p.owner >= 0 {
		return in.users[p.owner].name
	}
	return in.groups[p.group].name
}

func (in *instance) pathWithNamespace(p *project) string {
	return in.nsFullPath(p) + "/" + p.path
}
