package gitlab

import "testing"

func TestForkParent(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"id":1}`, ""},
		{`{"id":1,"forked_from_project":null}`, ""},
		{`{"id":1,"forked_from_project":{"id":2,"path_with_namespace":"up/app"}}`, "up/app"},
		{`{"id":1,"forked_from_project":{"id":2}}`, ""},
		{`{"id":1,"forked_from_project":"odd"}`, ""},
	}
	for _, tt := range tests {
		p := decodeProject([]byte(tt.body), redactor{})
		if got := p.ForkParent(); got != tt.want {
			t.Errorf("%s: ForkParent() = %q, want %q", tt.body, got, tt.want)
		}
	}
}
