package gitlab

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestOwners: every page is read; only active Maintainers and Owners count, once each.
func TestOwners(t *testing.T) {
	pages := [][]string{
		{`{"id":1,"username":"ann","state":"active","access_level":50}`, `{"id":2,"username":"bob","state":"active","access_level":30}`},
		{`{"id":3,"username":"cy","state":"blocked","access_level":40}`, `{"id":4,"username":"al","state":"active","access_level":40}`,
			`{"id":5,"username":"di","state":"deactivated","access_level":50}`,
			`{"id":6,"username":"ed","state":"active","access_level":50,"membership_state":"awaiting"}`,
			`{"id":7,"username":"fay","state":"active","access_level":40,"membership_state":"active"}`},
	}
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v4/projects/9/members/all" || r.URL.Query().Get("per_page") != "100" {
			t.Errorf("request %s", r.URL)
		}
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if page < len(pages) {
			w.Header().Set("X-Next-Page", strconv.Itoa(page+1))
		}
		w.Header().Set("X-Total", "5")
		fmt.Fprintf(w, "[%s]", strings.Join(pages[page-1], ","))
	}, 0)
	got, err := c.Owners(t.Context(), 9)
	if err != nil || !slices.Equal(got, []string{"al", "ann", "fay"}) {
		t.Fatalf("Owners = %v, %v; want [al ann fay]", got, err)
	}
}

// TestOwnersTooManyMembers: past the page bound the owners are an error, not a
// shortened list.
func TestOwnersTooManyMembers(t *testing.T) {
	calls := 0
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		calls++
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		w.Header().Set("X-Next-Page", strconv.Itoa(page+1))
		fmt.Fprint(w, `[{"id":1,"username":"ann","state":"active","access_level":50}]`)
	}, 0)
	got, err := c.Owners(t.Context(), 9)
	if !errors.Is(err, ErrTooManyMembers) || got != nil {
		t.Fatalf("Owners = %v, %v; want ErrTooManyMembers", got, err)
	}
	if calls != maxMemberPages {
		t.Errorf("%d requests, want %d", calls, maxMemberPages)
	}
}
