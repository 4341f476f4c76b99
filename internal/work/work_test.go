package work

import (
	"errors"
	"strings"
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
		{"hops keep the key", `{"kind":"group","run_id":"r","group_id":7,"page":3,"hops":12}`, "group:7:3", false},
		{"negative hops", `{"kind":"personal","run_id":"r","hops":-1}`, "", true},
		{"not JSON", `{"kind":`, "", true},
		{"long run id", `{"kind":"export","run_id":"` + strings.Repeat("r", maxRunID+1) + `"}`, "", true},
		{"long group path", `{"kind":"group","run_id":"r","group_path":"` + strings.Repeat("a", maxGroupPath+1) + `"}`, "", true},
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

// TestDecodeSaysWhy: a body that is not a message is rejected with the reason.
func TestDecodeSaysWhy(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"empty", ``, "empty body"},
		{"unknown field", `{"kind":"export","run_id":"r","grup_id":7}`, `unknown field "grup_id"`},
		{"string for a number", `{"kind":"group","run_id":"r","group_id":"7"}`, "field group_id is a JSON string, want int64"},
		{"number for a string", `{"kind":"export","run_id":7}`, "field run_id is a JSON number, want string"},
		{"overflow", `{"kind":"group","run_id":"r","group_id":1,"page":1e40}`, "field page is a JSON number 1e40, want int"},
		{"not an object", `["export"]`, "cannot unmarshal array"},
		{"two objects", `{"kind":"export","run_id":"r"}{"kind":"export","run_id":"s"}`, "data after the message"},
		{"over the size cap", `{"kind":"export","run_id":"r","group_path":"` + strings.Repeat("a", MaxMessageSize) + `"}`, "more than 262144"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.body))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode error = %v, want ErrMalformed saying %q", err, tt.want)
			}
		})
	}
}

// TestEncodeFitsAnyValidMessage: the largest valid message encodes under the cap,
// whatever its characters (JSON escapes "<" as six bytes).
func TestEncodeFitsAnyValidMessage(t *testing.T) {
	m := Message{Kind: KindGroup, RunID: strings.Repeat("<", maxRunID), GroupPath: strings.Repeat("\x00", maxGroupPath), GroupID: 1 << 62}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if n := len(m.Encode()); n > MaxMessageSize {
		t.Errorf("encoded %d bytes, more than %d", n, MaxMessageSize)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"kind":"group","run_id":"r","group_path":"a/b"}`,
		`{"kind":"group","run_id":"r","group_id":7,"page":3,"subgroups":2,"parent_id":1}`,
		`{"kind":"personal","run_id":"r","after":512}`,
		`{"kind":"export","run_id":"r"}`,
		`{"KIND":"export","run_id":"r"}`,
		`{"kind":"group","run_id":"r","group_path":"\u003c\ud800"}`,
		`{"kind":"group","run_id":"r","group_id":"7"}`,
		`{"kind":"export","run_id":"r","x":1}`,
		`null`, ``, `{"kind":"export","run_id":"r"} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v is not ErrMalformed", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid message %+v: %v", m, err)
		}
		enc := m.Encode()
		if len(enc) > MaxMessageSize {
			t.Fatalf("valid message encodes to %d bytes", len(enc))
		}
		again, err := Decode(enc)
		if err != nil || again != m {
			t.Fatalf("round trip of %+v: %+v, %v", m, again, err)
		}
		if again.Key() != m.Key() {
			t.Fatalf("key changed: %q, %q", m.Key(), again.Key())
		}
	})
}
