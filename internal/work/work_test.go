package work

import (
	"errors"
	"testing"
)

func TestKeyValidateDecode(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		key     string
		invalid bool
	}{
		{"root by path", `{"kind":"group","run_id":"r","group_path":"a/b"}`, "group:a/b:1", false},
		{"group by id", `{"kind":"group","run_id":"r","group_id":7,"group_path":"a"}`, "group:7:1", false},
		{"continuation", `{"kind":"group","run_id":"r","group_id":7,"page":3}`, "group:7:3", false},
		{"personal", `{"kind":"personal","run_id":"r"}`, "personal:0", false},
		{"personal continuation", `{"kind":"personal","run_id":"r","after":512}`, "personal:512", false},
		{"export", `{"kind":"export","run_id":"r"}`, "export", false},
		{"no run", `{"kind":"export"}`, "", true},
		{"unknown kind", `{"kind":"nope","run_id":"r"}`, "", true},
		{"group without group", `{"kind":"group","run_id":"r"}`, "", true},
		{"negative page", `{"kind":"group","run_id":"r","group_id":1,"page":-1}`, "", true},
		{"not JSON", `{"kind":`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.body))
			if tt.invalid {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Decode = %+v, %v; want ErrMalformed", m, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Key() != tt.key {
				t.Errorf("Key = %q, want %q", m.Key(), tt.key)
			}
			again, err := Decode(m.Encode())
			if err != nil || again != m {
				t.Errorf("round trip: %+v, %v", again, err)
			}
		})
	}
}
