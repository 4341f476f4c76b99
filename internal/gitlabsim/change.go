package gitlabsim

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// ChangeResult says which projects a Change touched.
type ChangeResult struct {
	Share    float64 `json:"share"`
	Seed     int64   `json:"seed"`
	Projects int     `json:"projects"` // projects in the instance, deleted ones (Delete) not counted
	// Changed are the ids of the projects changed, ascending: ⌈share × projects⌉ of
	// them, fewer only when fewer are active (not archived, not empty).
	Changed []int64 `json:"changed"`
	// Since splits the projects: those this change touched have a last_activity_at
	// after it, all others at or before it. Each change is a day after the previous
	// one, the first on the day that starts at the instance's "now" (2025-06-01 unless
	// Options.Now moves it).
	Since time.Time `json:"since"`
}

// growth keeps what a project was before its first change, so that the items it
// already had keep their dates and places and the ones changes add come after them.
type growth struct {
	activity int64
	counts   [nCounts]uint32
}

// Change gives a share of the projects new activity, as a day of work would: a
// push of new commits that grows the repository, a pipeline for it where CI runs,
// new open merge requests where they are enabled, and a later last_activity_at.
// The projects are the active ones (not archived, not empty) ranked first by a hash
// of seed and id, so a seed always picks the same projects; every other project
// stays byte-for-byte the same in the truth and in every answer. share is clamped
// to [0, 1].
func (s *Server) Change(share float64, seed int64) ChangeResult {
	share = clampShare(share)
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.in
	s.changes++
	day := in.now + int64(s.changes)*86400

	var active []int32
	for _, i := range s.allProjects { // deleted projects (Delete) are in no index
		if p := &in.projects[i]; !p.has(fArchived | fEmpty) {
			active = append(active, i)
		}
	}
	in.rankBySeed(active, seed, saltChange)
	// The epsilon keeps 0.1 × 320 at 32 although 0.1 is not exact in binary.
	n := min(int(math.Ceil(share*float64(len(s.allProjects))-1e-9)), len(active))
	res := ChangeResult{Share: share, Seed: seed, Projects: len(s.allProjects), Changed: make([]int64, 0, n), Since: time.Unix(day-86400, 0).UTC()}
	for _, i := range active[:n] {
		p := &in.projects[i]
		in.grow(p, newRNG(seed, uint64(p.id), saltChange+uint64(s.changes)), day)
		res.Changed = append(res.Changed, p.id)
	}
	slices.Sort(res.Changed)
	return res
}

// clampShare is share within [0, 1]; NaN is 0.
func clampShare(share float64) float64 {
	if math.IsNaN(share) {
		return 0
	}
	return min(max(share, 0), 1)
}

// rankBySeed orders project indexes by a hash of seed, salt and the project's id, so
// a seed always puts the same projects first.
func (in *instance) rankBySeed(idx []int32, seed int64, salt uint64) {
	rank := func(i int32) uint64 { return hash3(uint64(seed), uint64(in.projects[i].id), salt) }
	slices.SortFunc(idx, func(a, b int32) int { return cmp.Compare(rank(a), rank(b)) })
}

// grow applies one change to p; its new activity falls within the day before day.
func (in *instance) grow(p *project, r rng, day int64) {
	if p.grown == nil {
		p.grown = &growth{activity: p.activity, counts: p.counts}
	}
	c := &p.counts
	add := func(k int, v int64) { c[k] = uint32(min(int64(c[k])+v, math.MaxUint32)) }
	commits := r.between(1, 12)
	add(cCommits, commits)
	s := &p.sizes
	s[sRepository] += commits * r.between(2*kib, 64*kib)
	if p.has(fCI) && p.has(fJobs) {
		add(cPipelines, r.between(1, commits))
	}
	if p.has(fMRs) {
		mrs := r.between(1, 3)
		add(cMRs, mrs)
		add(cOpenMRs, mrs) // the newest merge requests are the open ones
	}
	p.activity = max(p.activity+1, day-int64(r.intn(86400))) // strictly later than before
}

// countBefore is count c before the project's first change.
func (p *project) countBefore(c int) int64 {
	if p.grown != nil {
		return int64(p.grown.counts[c])
	}
	return p.count(c)
}

// itemTime is the creation time of item k (1-based) of count c: the items a project
// had before its first change keep their places in its original life; those the
// changes added follow, the newest at the last activity.
func (p *project) itemTime(c int, k int64) time.Time {
	g := p.grown
	if g == nil || k <= int64(g.counts[c]) {
		return at(p, k, p.countBefore(c))
	}
	n0 := int64(g.counts[c])
	return time.Unix(g.activity+(p.activity-g.activity)*(k-n0)/(p.count(c)-n0), 0).UTC()
}
