package gitlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// Project is the part of a GitLab project the scanner uses.
type Project struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	PathWithNamespace string `json:"path_with_namespace"`
	Namespace         struct {
		ID       int64  `json:"id"`
		Kind     string `json:"kind"` // group or user
		FullPath string `json:"full_path"`
	} `json:"namespace"`
	Visibility        string          `json:"visibility"`
	Archived          bool            `json:"archived"`
	ForkedFromProject json.RawMessage `json:"forked_from_project"`
	Mirror            bool            `json:"mirror"`
	EmptyRepo         bool            `json:"empty_repo"`
	DefaultBranch     string          `json:"default_branch"`
	CreatedAt         time.Time       `json:"created_at"`
	LastActivityAt    time.Time       `json:"last_activity_at"`
	WebURL            string          `json:"web_url"`
	OpenIssuesCount   int64           `json:"open_issues_count"`
	// CIConfigPath is where the project's CI configuration is: "" for .gitlab-ci.yml,
	// a repository path, "file.yml@group/project[:ref]" or a URL.
	CIConfigPath string `json:"ci_config_path"`

	// GitLab sends both the older *_enabled booleans and the *_access_level values;
	// either may be missing depending on version.
	IssuesEnabled            *bool  `json:"issues_enabled"`
	MergeRequestsEnabled     *bool  `json:"merge_requests_enabled"`
	JobsEnabled              *bool  `json:"jobs_enabled"`
	WikiEnabled              *bool  `json:"wiki_enabled"`
	ContainerRegistryEnabled *bool  `json:"container_registry_enabled"`
	PackagesEnabled          *bool  `json:"packages_enabled"`
	IssuesAccessLevel        string `json:"issues_access_level"`
	MergeRequestsAccessLevel string `json:"merge_requests_access_level"`
	BuildsAccessLevel        string `json:"builds_access_level"`
	WikiAccessLevel          string `json:"wiki_access_level"`
	RegistryAccessLevel      string `json:"container_registry_access_level"`

	Statistics *inventory.Statistics `json:"statistics"`

	// decodeProblem is why the record did not decode (a field of the wrong type); the
	// fields before it are filled as far as they could be read.
	decodeProblem string
}

// Fork reports whether the project is a fork.
func (p *Project) Fork() bool {
	return len(p.ForkedFromProject) > 0 && string(p.ForkedFromProject) != "null"
}

// ForkParent is the path_with_namespace of the project this one was forked from; ""
// when it is not a fork or GitLab left the parent out (e.g. not visible to the token).
func (p *Project) ForkParent() string {
	if !p.Fork() {
		return ""
	}
	var parent struct {
		Path string `json:"path_with_namespace"`
	}
	if json.Unmarshal(p.ForkedFromProject, &parent) != nil {
		return ""
	}
	return parent.Path
}

func enabled(flag *bool, level string) bool {
	if level != "" {
		return level != "disabled"
	}
	return flag == nil || *flag
}

// Feature flags, defaulting to enabled when GitLab says nothing.
func (p *Project) IssuesOn() bool { return enabled(p.IssuesEnabled, p.IssuesAccessLevel) }
func (p *Project) MROn() bool     { return enabled(p.MergeRequestsEnabled, p.MergeRequestsAccessLevel) }
func (p *Project) JobsOn() bool   { return enabled(p.JobsEnabled, p.BuildsAccessLevel) }
func (p *Project) WikiOn() bool   { return enabled(p.WikiEnabled, p.WikiAccessLevel) }
func (p *Project) RegistryOn() bool {
	return enabled(p.ContainerRegistryEnabled, p.RegistryAccessLevel)
}
func (p *Project) PackagesOn() bool { return p.PackagesEnabled == nil || *p.PackagesEnabled }

// Bounds beyond which a number GitLab reports is not taken as a fact.
const (
	MaxSize  = 1 << 50 // bytes: 1 PiB in one project's statistic
	MaxCount = 1 << 40 // items: a trillion commits or issues
)

// RecordError is a project record not to be taken as fact: a field of the wrong type,
// a missing ID, or a number no project can have. It matches ErrMalformed.
type RecordError struct {
	ID       int64    // 0 when the record has no readable ID
	Problems []string // one per bad field, e.g. "statistics.wiki_size: -3 is negative"
}

func (e *RecordError) Error() string {
	return cut("invalid project record: "+strings.Join(e.Problems, "; "), MaxErrorLen)
}

func (e *RecordError) Is(target error) bool { return target == ErrMalformed }

// Validate reports what is wrong with the record, as a *RecordError, or nil. A project
// that fails is not to be profiled: only its ID (when readable) and the error are
// worth recording; its numbers, statistics included, are not facts.
func (p *Project) Validate() error {
	var problems []string
	if p.decodeProblem != "" {
		problems = append(problems, p.decodeProblem)
	}
	if p.ID <= 0 {
		problems = append(problems, fmt.Sprintf("id: %d is not a project ID", p.ID))
	}
	check := func(field string, v, limit int64) {
		switch {
		case v < 0:
			problems = append(problems, fmt.Sprintf("%s: %d is negative", field, v))
		case v > limit:
			problems = append(problems, fmt.Sprintf("%s: %d is beyond %d", field, v, limit))
		}
	}
	check("open_issues_count", p.OpenIssuesCount, MaxCount)
	if s := p.Statistics; s != nil {
		for _, f := range []struct {
			name string
			v    int64
		}{
			{"repository_size", s.RepositorySize}, {"lfs_objects_size", s.LFSObjectsSize},
			{"wiki_size", s.WikiSize}, {"packages_size", s.PackagesSize},
			{"container_registry_size", s.ContainerRegistrySize}, {"job_artifacts_size", s.JobArtifactsSize},
			{"snippets_size", s.SnippetsSize}, {"uploads_size", s.UploadsSize}, {"storage_size", s.StorageSize},
		} {
			check("statistics."+f.name, f.v, MaxSize)
		}
		check("statistics.commit_count", s.CommitCount, MaxCount)
	}
	if len(problems) == 0 {
		return nil
	}
	return &RecordError{ID: max(p.ID, 0), Problems: problems}
}

// decodeProject decodes one project record. A field of the wrong type does not fail
// it: encoding/json fills what it can and the problem is kept for Validate.
func decodeProject(data []byte, r redactor) Project {
	var p Project
	if err := json.Unmarshal(data, &p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			p.decodeProblem = fmt.Sprintf("%s: JSON %s where %s belongs", te.Field, te.Value, te.Type)
		} else {
			p.decodeProblem = err.Error()
		}
		p.decodeProblem = r.clean(p.decodeProblem)
	}
	return p
}

// projectPage decodes a list of projects element by element, so that one record GitLab
// got wrong marks that project (see Validate) instead of failing the whole page. Only a
// body that is not a JSON array fails.
type projectPage []Project

func (pp *projectPage) decodeJSON(data []byte, r redactor) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	ps := make([]Project, len(raw))
	for i, e := range raw {
		ps[i] = decodeProject(e, r)
	}
	*pp = ps
	return nil
}

// highestID is the largest project ID of a page, 0 for an empty one.
func highestID(ps []Project) int64 {
	var id int64
	for _, p := range ps {
		id = max(id, p.ID)
	}
	return id
}
