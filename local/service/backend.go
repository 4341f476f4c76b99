package service

import (
	"context"

	"github.com/gl2gh/discovery-agent/internal/filestore"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/local/runner"
)

// Backend is what the service runs discovery on: the local runner (embedded store and
// queue, BACKEND=local) or AWS services with the Lambda handlers in-process
// (BACKEND=aws, local/awsagent).
type Backend interface {
	// Start starts a run unless one is active (then it returns that run, started false).
	Start(ctx context.Context) (run inventory.Run, started bool, err error)
	// Work processes queued messages until ctx is done.
	Work(ctx context.Context)
	// ActiveRun and LastSucceeded read the runs in the store.
	ActiveRun(ctx context.Context) (inventory.Run, bool, error)
	LastSucceeded(ctx context.Context) (inventory.Run, bool, error)
	// Track points the progress counters at a run being resumed.
	Track(runID string)
	// OnRunFinished sets the function called when a run ends, succeeded or failed.
	OnRunFinished(func(inventory.Run))
	// CheckStore proves the store writable; CheckGitLab that GitLab takes the token.
	CheckStore(ctx context.Context) error
	CheckGitLab(ctx context.Context) error
	// Snapshot is the current run's progress.
	Snapshot() runner.Snapshot
	// Gauges reads the state gauges: budget tokens available now, dead letters.
	Gauges(ctx context.Context) (budgetTokens float64, deadLetters int, err error)
}

// DeadLetterQueue is implemented by backends whose dead letters the service manages
// itself (local mode; on AWS they are SQS dead-letter queues).
type DeadLetterQueue interface {
	DeadLetters(ctx context.Context) ([]filestore.DeadLetter, error)
	RedriveDeadLetters(ctx context.Context) (int, error)
	PurgeDeadLetters(ctx context.Context) (int, error)
}
