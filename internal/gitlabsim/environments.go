package gitlabsim

import (
	"strconv"
	"strings"
	"time"
)

// apiEnvironment is GitLab's environment entity (GET /projects/:id/environments).
type apiEnvironment struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Slug        string    `json:"slug"`
	ExternalURL *string   `json:"external_url"`
	State       string    `json:"state"` // available, stopping or stopped
	Tier        string    `json:"tier"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// drawEnvironments draws a project's environment count from a stream of its own,
// so that every other fact of the instance stays as it was before environments.
// Environments are the targets of CI deployments: only projects with CI have them.
func (in *instance) drawEnvironments(p *project) {
	if !p.has(fJobs) || !p.has(fCI) {
		return
	}
	r := newRNG(in.seed, uint64(p.id), saltEnvironments)
	if !r.chance(0.45) {
		return
	}
	n := r.between(1, 3)
	if r.chance(0.2) { // review apps: one environment per merge request branch
		n += r.count(6, 1.2, 1, 200)
	}
	p.counts[cEnvironments] = uint32(n)
}

var environmentTiers = [...]struct{ name, tier string }{
	{"production", "production"}, {"staging", "staging"}, {"development", "development"},
}

// environment is the project's environment at position k: the fixed tiers first,
// then review apps, the older of which are stopped.
func (in *instance) environment(p *project, k int64) apiEnvironment {
	n := p.count(cEnvironments)
	r := newRNG(in.seed, hash2(uint64(p.id), uint64(k)), saltEnvironments)
	var name, tier string
	if k < int64(len(environmentTiers)) {
		name, tier = environmentTiers[k].name, environmentTiers[k].tier
	} else {
		name, tier = "review/"+projectStems[r.intn(len(projectStems))]+"-"+strconv.FormatInt(k-2, 10), "development"
	}
	// GitLab's slug: lower case, [a-z0-9-], at most 24 characters with a random suffix.
	slug := strings.ReplaceAll(name, "/", "-")
	slug = slug[:min(len(slug), 17)] + "-" + strconv.FormatUint(100000+r.next()%900000, 36)
	url := "https://" + slug + "." + p.path + ".apps.example.com"
	state := "available"
	if tier == "development" && k+5 < n { // all but the newest review apps are stopped
		state = "stopped"
	}
	return apiEnvironment{
		ID: itemID(p.id, k+1), Name: name, Slug: slug, ExternalURL: &url, State: state, Tier: tier,
		CreatedAt: at(p, k+1, n), UpdatedAt: at(p, min(k+2, n), n),
	}
}
