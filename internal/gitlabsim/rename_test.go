package gitlabsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestRename: a rename keeps a project's id and data and changes its path, in the
// truth and in every answer (the project answers under its new path, not its old
// one); projects others name by path are never renamed; a seed renames the same
// projects in the same instance, and renamed ones are not renamed again; and the change endpoint renames on request.
func TestRename(t *testing.T) {
	o := Options{Seed: 1, Groups: 12, Projects: 300}
	s := newTestServer(t, o)
	before := truthByID(s.Truth())
	renamed := s.Rename(0.05, 7)
	if len(renamed) < 10 || len(renamed) > 15 {
		t.Fatalf("renamed %d projects, want about 5%% of 300", len(renamed))
	}
	named := map[string]bool{ciTemplates: true, ciDownstream: true}
	for i := range s.in.projects {
		for _, sm := range s.in.submodules(&s.in.projects[i]) {
			named[sm.target] = true
		}
	}
	after := truthByID(s.Truth())
	for _, r := range renamed {
		if named[r.From] {
			t.Errorf("renamed %s, which other projects name by path", r.From)
		}
		if r.To != r.From+renameSuffix {
			t.Errorf("renamed %s to %s", r.From, r.To)
		}
		was, is := before[r.ID], after[r.ID]
		if is.PathWithNamespace != r.To || was.LastActivityAt != is.LastActivityAt || !reflect.DeepEqual(was.Statistics, is.Statistics) {
			t.Errorf("project %d: truth %s (activity %v → %v), want %s with its data kept", r.ID, is.PathWithNamespace, was.LastActivityAt, is.LastActivityAt, r.To)
		}
		code, body := answer(s, http.MethodGet, "/api/v4/projects/"+url.PathEscape(r.To), "")
		if code != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"id":%d,`, r.ID)) {
			t.Errorf("GET the new path %s: %d", r.To, code)
		}
		if code, _ := answer(s, http.MethodGet, "/api/v4/projects/"+url.PathEscape(r.From), ""); code != http.StatusNotFound {
			t.Errorf("GET the old path %s: %d, want 404", r.From, code)
		}
	}
	for id, p := range after {
		if !strings.HasSuffix(p.PathWithNamespace, renameSuffix) && p.PathWithNamespace != before[id].PathWithNamespace {
			t.Errorf("project %d moved from %s to %s without a rename", id, before[id].PathWithNamespace, p.PathWithNamespace)
		}
	}
	again := newTestServer(t, o).Rename(0.05, 7)
	if a, b := fmt.Sprint(again), fmt.Sprint(renamed); a != b {
		t.Errorf("the same seed renamed %s, then %s", b, a)
	}
	for _, r := range s.Rename(0.05, 7) { // a project renamed before is left alone
		if strings.HasSuffix(r.From, renameSuffix) {
			t.Errorf("renamed %s again", r.From)
		}
	}

	code, body := answer(newTestServer(t, o), http.MethodPost, "/-/sim/change", `{"share":0,"seed":7,"rename":0.05}`)
	var res struct {
		Renamed []Renamed `json:"renamed"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil || fmt.Sprint(res.Renamed) != fmt.Sprint(renamed) {
		t.Errorf("POST /-/sim/change with rename: %d %s, want the renames %v", code, body, renamed)
	}
}
