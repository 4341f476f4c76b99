package gitlabsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// instanceDigest hashes what a scanner can observe of an instance: the streamed
// truth, every /projects keyset page, every group's project listing and each
// project's detail with statistics.
func instanceDigest(t *testing.T, o Options) string {
	t.Helper()
	s := newTestServer(t, o)
	h := sha256.New()
	if err := s.writeTruth(h); err != nil {
		t.Fatalf("writeTruth: %v", err)
	}
	get := func(path string) []byte {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Private-Token", "sim-token")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		io.WriteString(h, path+"\n"+strconv.Itoa(rec.Code)+"\n"+rec.Header().Get("Link")+"\n")
		h.Write(rec.Body.Bytes())
		return rec.Body.Bytes()
	}
	var ids []int64
	for after := int64(0); ; {
		var page []struct {
			ID int64 `json:"id"`
		}
		body := get("/api/v4/projects?pagination=keyset&order_by=id&sort=asc&per_page=100&statistics=true&id_after=" + strconv.FormatInt(after, 10))
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("decode /projects: %v", err)
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			ids = append(ids, p.ID)
		}
		after = page[len(page)-1].ID
	}
	for _, g := range s.in.groups {
		for p := 1; p <= 1+len(g.projects)/100; p++ {
			get("/api/v4/groups/" + strconv.FormatInt(g.id, 10) + "/projects?per_page=100&page=" + strconv.Itoa(p))
		}
	}
	for _, id := range ids {
		get("/api/v4/projects/" + strconv.FormatInt(id, 10) + "?statistics=true")
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestInstanceWithoutUsersUnchanged pins what instances without users serve to the
// digests recorded before user namespaces existed: adding them must not move a
// single id, path, count or byte.
func TestInstanceWithoutUsersUnchanged(t *testing.T) {
	tests := []struct {
		o    Options
		want string
	}{
		{Options{Seed: 1, Groups: 50, Projects: 2000}, "a01dc4fb384723aa5b46f6afdb9b6b6b6e79b87d5f61e28a57d6a7bb047b3cfa"},
		{Options{Seed: 1, Groups: 50, Projects: 2000, Users: 0, PersonalProjects: 0}, "a01dc4fb384723aa5b46f6afdb9b6b6b6e79b87d5f61e28a57d6a7bb047b3cfa"},
		{Options{Seed: 1, Groups: 12, Projects: 300, Faults: Faults{ForbiddenRate: 0.1, ForbiddenEndpoints: []string{"*"}, DeletedRate: 0.05}}, "e93bea8090d6106ff1554af69d816a0d71b6a1ef83f919ff6d2f366512e6bf39"},
		{Options{Seed: 7, Groups: 3, Projects: 40}, "8c0de4bc72fca872c7e9ebeb38863c837621a787fae8c80a444620baee4e0362"},
	}
	for _, tt := range tests {
		if got := instanceDigest(t, tt.o); got != tt.want {
			t.Errorf("seed %d, %d groups, %d projects: digest %s, want %s", tt.o.Seed, tt.o.Groups, tt.o.Projects, got, tt.want)
		}
	}
}
