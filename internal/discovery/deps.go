package discovery

import (
	"context"
	"errors"

	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// Errors a Store returns; implementations wrap them.
var (
	ErrNotFound  = errors.New("not found")
	ErrRunActive = errors.New("a run is already active")
)

// Store persists run state and results. Every write is idempotent: processing a message
// twice leaves the same records. The file store (local mode) and DynamoDB implement it.
type Store interface {
	// CreateRun records a new run in status running. It fails with ErrRunActive when
	// another run is running or exporting.
	CreateRun(ctx context.Context, run inventory.Run) error
	// GetRun returns a run by ID, or ErrNotFound.
	GetRun(ctx context.Context, runID string) (inventory.Run, error)
	// ActiveRun returns the run that is running or exporting, if any.
	ActiveRun(ctx context.Context) (inventory.Run, bool, error)
	// PreviousRun returns the newest succeeded run started before the given one, if any.
	PreviousRun(ctx context.Context, runID string) (inventory.Run, bool, error)
	// UpdateRun overwrites the run's status, finish time, reason and failed counts.
	UpdateRun(ctx context.Context, run inventory.Run) error

	// AddPending counts the keys as pending work of the run. A key already added is
	// not counted again, so a message sent twice is one piece of work.
	AddPending(ctx context.Context, runID string, keys ...string) error
	// Done marks key finished. Only the first call for a key decrements the pending
	// count; first reports whether this call was it. remaining is the pending count
	// after, except that a store may report 1 for 0 to a call that did not bring the
	// count to zero (a key never added), so that one call alone sees it reach zero.
	Done(ctx context.Context, runID, key string) (remaining int64, first bool, err error)
	// IsDone reports whether key was marked finished.
	IsDone(ctx context.Context, runID, key string) (bool, error)
	// Pending returns the run's pending count.
	Pending(ctx context.Context, runID string) (int64, error)

	// Checkpoint returns the next project page to scan for a message key, 0 when none.
	Checkpoint(ctx context.Context, runID, key string) (int, error)
	// SaveCheckpoint records the next project page for a message key.
	SaveCheckpoint(ctx context.Context, runID, key string, page int) error

	// PutGroup and PutProject upsert a record keyed by run and ID.
	PutGroup(ctx context.Context, runID string, g inventory.Group) error
	PutProject(ctx context.Context, runID string, p inventory.Project) error
	// GetProject returns one project record of a run; ok is false when there is none.
	// Incremental runs read the previous run's profiles, and a redelivered page skips
	// the projects it stored already.
	GetProject(ctx context.Context, runID string, id int64) (p inventory.Project, ok bool, err error)
	// AddAPICalls adds n to the run's API call counter; APICalls reads it.
	AddAPICalls(ctx context.Context, runID string, n int64) error
	APICalls(ctx context.Context, runID string) (int64, error)

	// Groups and Projects stream the run's records in ascending ID order.
	Groups(ctx context.Context, runID string, fn func(inventory.Group) error) error
	Projects(ctx context.Context, runID string, fn func(inventory.Project) error) error
}

// Queue carries work messages. Receiving is the runtime's job (the local runner's loop
// or Lambda's SQS event source), so only sending is part of the contract.
type Queue interface {
	Send(ctx context.Context, msgs ...work.Message) error
}

// Recorder receives discovery progress (Prometheus in local mode, EMF in Lambda).
type Recorder interface {
	GroupDone(status string)
	ProjectDone(status, readiness string)
	ScanError(kind, step string) // kind: forbidden, not_found, budget, server, timeout, malformed, other
	QueueDepth(n int64)
}
