// Package work defines the messages that carry a discovery run between the scheduler,
// the workers and the exporter, whatever queue carries them (in-process or SQS).
package work

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Message kinds.
const (
	KindGroup  = "group"  // scan one group: its subgroups and one or more pages of its projects
	KindExport = "export" // every group of the run is done: write the exports
	// KindPersonal walks the projects of personal (user) namespaces, which no group
	// holds, from the project list in ID order (INCLUDE_PERSONAL_PROJECTS).
	KindPersonal = "personal"
)

// ErrMalformed marks a message that can never be processed; it belongs in the DLQ.
var ErrMalformed = errors.New("malformed message")

// Bounds on a message. MaxMessageSize is SQS's largest message body; the field
// bounds keep any valid message's encoding well under it (a full path is at most 20
// levels of 255 characters in GitLab).
const (
	MaxMessageSize = 256 << 10
	maxRunID       = 256
	maxGroupPath   = 8 << 10
)

// Message is one unit of work. It is small and self-describing so that it can be
// redelivered, retried and inspected in a DLQ.
type Message struct {
	Kind  string `json:"kind"`
	RunID string `json:"run_id"`
	// Group identifies the group by numeric ID (preferred) or full path (root groups
	// named by path in configuration).
	GroupID   int64  `json:"group_id,omitempty"`
	GroupPath string `json:"group_path,omitempty"`
	ParentID  int64  `json:"parent_id,omitempty"`
	// Page is the first page of the group's project list this message handles; a
	// continuation message (a group too big for one invocation) starts past 1.
	Page int `json:"page,omitempty"`
	// Subgroups carries the group's direct subgroup count to continuation messages,
	// which do not list subgroups again, and to descendants queued by their root.
	Subgroups int `json:"subgroups,omitempty"`
	// Listed: the root above listed every descendant group and queued them all, this
	// group's subgroups included; it lists none.
	Listed bool `json:"listed,omitempty"`
	// After is the project ID a personal-projects message continues after.
	After int64 `json:"after,omitempty"`
	// Hops counts the messages between this one and the scheduler's: a continuation or
	// a subgroup message carries its parent's Hops+1. Workers refuse past MaxHops.
	Hops int `json:"hops,omitempty"`
	// Resume counts how often this page was continued part-way: a page the deadline
	// stopped after some of its projects were stored continues in a message for the
	// same page (its stored projects skipped), which needs a key of its own.
	Resume int `json:"resume,omitempty"`
}

// MaxHops bounds a chain of messages that workers queue for each other. The worker
// function sets RecursiveLoop: Allow, since Lambda's own loop detection stops any
// chain after about 16 invocations and a big group is a chain of thousands of
// continuations; with that guard off, this cap is what stops a bug that re-queues
// work forever. 10,000 is a group of 1,000,000 projects at one page (100 projects)
// per invocation, far more than any real chain: one invocation takes many pages.
const MaxHops = 10_000

// Key is the message's identity within its run: a message sent twice has one key, so
// the pending-work bookkeeping counts it once.
func (m Message) Key() string {
	switch m.Kind {
	case KindExport:
		return "export"
	case KindPersonal:
		return "personal:" + strconv.FormatInt(m.After, 10) + m.resumeKey()
	default:
		g := m.GroupPath
		if m.GroupID != 0 {
			g = strconv.FormatInt(m.GroupID, 10)
		}
		return "group:" + g + ":" + strconv.Itoa(max(m.Page, 1)) + m.resumeKey()
	}
}

func (m Message) resumeKey() string {
	if m.Resume <= 0 {
		return ""
	}
	return ":r" + strconv.Itoa(m.Resume)
}

// Validate reports why a message cannot be processed.
func (m Message) Validate() error {
	switch {
	case m.RunID == "":
		return fmt.Errorf("%w: no run_id", ErrMalformed)
	case len(m.RunID) > maxRunID:
		return fmt.Errorf("%w: run_id of %d bytes, more than %d", ErrMalformed, len(m.RunID), maxRunID)
	case len(m.GroupPath) > maxGroupPath:
		return fmt.Errorf("%w: group_path of %d bytes, more than %d", ErrMalformed, len(m.GroupPath), maxGroupPath)
	case m.Hops < 0:
		return fmt.Errorf("%w: negative hops %d", ErrMalformed, m.Hops)
	case m.Resume < 0:
		return fmt.Errorf("%w: negative resume %d", ErrMalformed, m.Resume)
	case m.Kind == KindExport:
		return nil
	case m.Kind == KindPersonal:
		if m.After < 0 {
			return fmt.Errorf("%w: negative after %d", ErrMalformed, m.After)
		}
		return nil
	case m.Kind != KindGroup:
		return fmt.Errorf("%w: unknown kind %q", ErrMalformed, m.Kind)
	case m.GroupID <= 0 && m.GroupPath == "":
		return fmt.Errorf("%w: group message without group_id or group_path", ErrMalformed)
	case m.Page < 0:
		return fmt.Errorf("%w: negative page %d", ErrMalformed, m.Page)
	}
	return nil
}

// Encode returns the message as JSON.
func (m Message) Encode() []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // only plain fields: cannot fail
	}
	return b
}

// Decode parses and validates a message body: one JSON object of at most
// MaxMessageSize bytes with only Message's fields, each of its type.
func Decode(body []byte) (Message, error) {
	if len(body) > MaxMessageSize {
		return Message{}, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(body), MaxMessageSize)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var m Message
	if err := dec.Decode(&m); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.Is(err, io.EOF) {
			return Message{}, fmt.Errorf("%w: empty body", ErrMalformed)
		}
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return Message{}, fmt.Errorf("%w: field %s is a JSON %s, want %s", ErrMalformed, typeErr.Field, typeErr.Value, typeErr.Type)
		}
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Message{}, fmt.Errorf("%w: data after the message object", ErrMalformed)
	}
	if err := m.Validate(); err != nil {
		return Message{}, err
	}
	return m, nil
}
