package discovery

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
)

type gqlAnswer struct {
	QueryComplexity *struct {
		Score int `json:"score"`
		Limit int `json:"limit"`
	} `json:"queryComplexity"`
	Projects map[string]json.RawMessage `json:"-"`
}

func (a *gqlAnswer) UnmarshalJSON(data []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	if qc, ok := all["queryComplexity"]; ok {
		if err := json.Unmarshal(qc, &a.QueryComplexity); err != nil {
			return err
		}
		delete(all, "queryComplexity")
	}
	a.Projects = all
	return nil
}

// gqlProject is one project of the answer.
type gqlProject struct {
	ID                         string           `json:"id"`
	ContainerRepositoriesCount *int64           `json:"containerRepositoriesCount"`
	Packages                   *gqlPackages     `json:"packages"`
	Repository                 *gqlRepository   `json:"repository"`
	Counts                     map[string]int64 `json:"-"`
}

type gqlPackages struct {
	PageInfo struct {
		HasNextPage bool `json:"hasNextPage"`
	} `json:"pageInfo"`
	Nodes []struct {
		PackageType string `json:"packageType"`
	} `json:"nodes"`
}

type gqlRepository struct {
	Blobs *struct {
		PageInfo struct {
			HasNextPage bool `json:"hasNextPage"`
		} `json:"pageInfo"`
		Nodes []struct {
			Path        string  `json:"path"`
			RawTextBlob *string `json:"rawTextBlob"`
		} `json:"nodes"`
	} `json:"blobs"`
}

// decodeGQLProject reads one alias's answer for project id; failed names the facts
// an error or a null made unknown ("" for the whole project).
func decodeGQLProject(raw json.RawMessage, id int64, failed map[string]bool) (*prefetched, error) {
	if failed[""] || len(raw) == 0 || string(raw) == "null" {
		return nil, nil // not visible, gone or refused: REST tells which
	}
	var gp gqlProject
	if err := json.Unmarshal(raw, &gp); err != nil {
		return nil, err
	}
	got, err := gitlab.ParseGID(gp.ID)
	if err != nil {
		return nil, err
	}
	if got != id {
		// The path names another project now (renamed, moved, its path reused since
		// the listing): its facts are not this one's.
		return nil, fmt.Errorf("its path is project %d's now", got)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	pf := &prefetched{counts: map[string]int64{}, lower: map[string]bool{}}
	for _, c := range facts.Counts {
		if c.GraphQL == "" || failed[c.Name] {
			continue
		}
		if c.GraphQLAbility != "" && (failed["userPermissions"] || !gqlAbility(fields["userPermissions"], c.GraphQLAbility)) {
			continue
		}
		if n, ok := gqlCount(fields[c.Name], c); ok {
			// GraphQL counts past REST's cap; the exports say what REST says, one
			// meaning for a count whichever API read it.
			pf.counts[c.Name] = min(n, facts.TotalCap)
			pf.lower[c.Name] = n > facts.TotalCap
		}
	}
	if n := gp.ContainerRepositoriesCount; n != nil && *n >= 0 && !failed["containerRepositoriesCount"] {
		pf.registry = n
	}
	if p := gp.Packages; p != nil && !p.PageInfo.HasNextPage && !failed["packages"] {
		types := []string{}
		for _, n := range p.Nodes {
			if t := strings.ToLower(n.PackageType); t != "" && !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
		slices.Sort(types)
		pf.packageTypes = types
	}
	if !failed["owners"] {
		pf.owners = gqlOwners(fields["owners"])
	}
	if r := gp.Repository; r != nil && r.Blobs != nil && !r.Blobs.PageInfo.HasNextPage && !failed["repository"] {
		pf.filesKnown = true
		pf.files = map[string]*string{}
		for _, n := range r.Blobs.Nodes {
			pf.files[n.Path] = n.RawTextBlob
		}
	}
	return pf, nil
}

// gqlAbility reads one ability of a ProjectPermissions answer: true only when
// GitLab said true.
func gqlAbility(raw json.RawMessage, ability string) bool {
	var perms map[string]*bool
	if json.Unmarshal(raw, &perms) != nil {
		return false
	}
	v := perms[ability]
	return v != nil && *v
}

// gqlCount reads count c from its answer: a connection's count, or the number of
// its nodes when the page holds them all, or a list's length. A null (no
// permission, an error) or a page with more after it gives none: REST counts then.
func gqlCount(raw json.RawMessage, c facts.Count) (int64, bool) {
	var v *struct {
		Count    *int64 `json:"count"`
		PageInfo *struct {
			HasNextPage bool `json:"hasNextPage"`
		} `json:"pageInfo"`
		Nodes []json.RawMessage `json:"nodes"`
		List  []json.RawMessage `json:"list"`
	}
	if json.Unmarshal(raw, &v) != nil || v == nil {
		return 0, false
	}
	if c.GraphQLList != "" {
		if v.List == nil {
			return 0, false
		}
		return int64(len(v.List)), true
	}
	if c.GraphQLNodes {
		if v.PageInfo == nil || v.PageInfo.HasNextPage || v.Nodes == nil {
			return 0, false
		}
		return int64(len(v.Nodes)), true
	}
	if v.Count == nil || *v.Count < 0 || *v.Count > gitlab.MaxCount {
		return 0, false
	}
	return *v.Count, true
}

// errorsByAlias groups a partial answer's errors: alias → the failed top fields of
// its project ("" when the project itself failed).
func errorsByAlias(errs []gitlab.GraphQLError) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, e := range errs {
		alias := e.Alias()
		if alias == "" {
			continue
		}
		if out[alias] == nil {
			out[alias] = map[string]bool{}
		}
		field, _, _ := strings.Cut(e.Field(), ".")
		out[alias][field] = true
	}
	return out
}
