// Package filestore is the embedded backend of local mode: run state, results and a
// durable work queue in one bbolt file, so a local discovery survives a restart.
package filestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/gl2gh/discovery-agent/internal/discovery"
)

// ErrLocked is returned by Open when another process holds the database file.
var ErrLocked = errors.New("data dir locked by another process")

// ErrClosed is returned by queue operations after the store is closed.
var ErrClosed = errors.New("filestore closed")

// lockTimeout bounds how long Open waits for the file lock: long enough to ride out a
// predecessor that is just exiting, short enough to fail clearly when one is running.
const lockTimeout = time.Second

// Bucket names. Every per-run key starts with runPrefix(runID), so one run's records are
// contiguous and a cursor can stream them in order.
var (
	bucketRuns        = []byte("runs")         // runID -> JSON inventory.Run
	bucketGroups      = []byte("groups")       // run + id -> JSON inventory.Group
	bucketProjects    = []byte("projects")     // run + id -> JSON inventory.Project
	bucketPending     = []byte("pending")      // run + key -> present (keys ever added)
	bucketDone        = []byte("done")         // run + key -> present (keys marked done)
	bucketCheckpoints = []byte("checkpoints")  // run + key -> uint64 page
	bucketCounters    = []byte("counters")     // run + name -> int64
	bucketQueue       = []byte("queue")        // seq -> queued message
	bucketQueueKeys   = []byte("queue_keys")   // run + message key -> seq (deduplication)
	bucketDeadLetters = []byte("dead_letters") // seq -> JSON DeadLetter
	bucketHealth      = []byte("health")       // "ping" -> time of the last readiness write

	allBuckets = [][]byte{bucketRuns, bucketGroups, bucketProjects, bucketPending, bucketDone,
		bucketCheckpoints, bucketCounters, bucketQueue, bucketQueueKeys, bucketDeadLetters, bucketHealth}
)

// Counter names.
const (
	counterPending  = "pending"
	counterAPICalls = "api_calls"
)

// Store implements discovery.Store on a bbolt file. It is safe for concurrent use.
type Store struct {
	db    *bolt.DB
	queue *Queue
}

// Open opens (creating if needed) the database file at path and its parent directories.
// A file held by another process fails after a second with an error wrapping ErrLocked.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: lockTimeout,
		// The hashmap freelist stays fast when a long run has churned many pages.
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	var queued int
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		queued = tx.Bucket(bucketQueue).Stats().KeyN
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open store %s: %w", path, err), db.Close())
	}
	s := &Store{db: db}
	s.queue = newQueue(db, queued)
	return s, nil
}

// Close wakes blocked receivers and closes the database.
func (s *Store) Close() error {
	s.queue.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Queue returns the store's durable work queue.
func (s *Store) Queue() *Queue { return s.queue }

var _ discovery.Queue = (*Queue)(nil)

// runPrefix is the length-prefixed run ID that starts every per-run key. The length
// prefix keeps run "a" from matching the keys of run "ab".
func runPrefix(runID string) ([]byte, error) {
	if runID == "" {
		return nil, errors.New("empty run ID")
	}
	if len(runID) > 1024 {
		return nil, fmt.Errorf("run ID of %d bytes is too long", len(runID))
	}
	b := make([]byte, 2, 2+len(runID)+8)
	binary.BigEndian.PutUint16(b, uint16(len(runID)))
	return append(b, runID...), nil
}

// runKey is runPrefix(runID) followed by key.
func runKey(runID, key string) ([]byte, error) {
	if key == "" {
		return nil, errors.New("empty key")
	}
	p, err := runPrefix(runID)
	if err != nil {
		return nil, err
	}
	return append(p, key...), nil
}

// splitRunKey is the inverse of runKey.
func splitRunKey(k []byte) (runID, key string) {
	if len(k) < 2 {
		return "", ""
	}
	n := int(binary.BigEndian.Uint16(k))
	if len(k) < 2+n {
		return "", ""
	}
	return string(k[2 : 2+n]), string(k[2+n:])
}

// idKey appends an ID that sorts bytewise in numeric order (sign bit flipped, big-endian).
func idKey(prefix []byte, id int64) []byte {
	return binary.BigEndian.AppendUint64(prefix, uint64(id)^(1<<63))
}

func getInt64(b *bolt.Bucket, key []byte) int64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func putInt64(b *bolt.Bucket, key []byte, n int64) error {
	return b.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// Ping proves the store is writable: it commits a write transaction (readiness checks).
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHealth).Put([]byte("ping"), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	})
	if err != nil {
		return fmt.Errorf("store not writable: %w", err)
	}
	return nil
}
