package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// streamBatch is how many records Groups and Projects decode per read transaction. The
// callback runs outside any transaction, so it may write to the store.
const streamBatch = 256

// PutGroup upserts a group keyed by run and group ID.
func (s *Store) PutGroup(ctx context.Context, runID string, g inventory.Group) error {
	if err := s.put(ctx, bucketGroups, runID, g.ID, g); err != nil {
		return fmt.Errorf("put group %d: %w", g.ID, err)
	}
	return nil
}

// PutProject upserts a project keyed by run and project ID.
func (s *Store) PutProject(ctx context.Context, runID string, p inventory.Project) error {
	if err := s.put(ctx, bucketProjects, runID, p.ID, p); err != nil {
		return fmt.Errorf("put project %d: %w", p.ID, err)
	}
	return nil
}

// Groups streams the run's groups in ascending ID order until fn returns an error.
func (s *Store) Groups(ctx context.Context, runID string, fn func(inventory.Group) error) error {
	if err := stream(ctx, s.db, bucketGroups, runID, fn); err != nil {
		return fmt.Errorf("groups of run %s: %w", runID, err)
	}
	return nil
}

// Projects streams the run's projects in ascending ID order until fn returns an error.
func (s *Store) Projects(ctx context.Context, runID string, fn func(inventory.Project) error) error {
	if err := stream(ctx, s.db, bucketProjects, runID, fn); err != nil {
		return fmt.Errorf("projects of run %s: %w", runID, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, bucket []byte, runID string, id int64, rec any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	prefix, err := runPrefix(runID)
	if err != nil {
		return err
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	k := idKey(prefix, id)
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put(k, v)
	})
}

// stream decodes the run's records in batches, resuming each batch after the last key
// of the previous one, and calls fn between transactions.
func stream[T any](ctx context.Context, db *bolt.DB, bucket []byte, runID string, fn func(T) error) error {
	prefix, err := runPrefix(runID)
	if err != nil {
		return err
	}
	var after []byte // last key of the previous batch, nil before the first
	batch := make([]T, 0, streamBatch)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch = batch[:0]
		err := db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			from := prefix
			if after != nil {
				from = after
			}
			k, v := c.Seek(from)
			if after != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
			var last []byte
			for ; k != nil && bytes.HasPrefix(k, prefix) && len(batch) < streamBatch; k, v = c.Next() {
				var rec T
				if err := json.Unmarshal(v, &rec); err != nil {
					return fmt.Errorf("decode record %x: %w", k, err)
				}
				batch = append(batch, rec)
				last = k
			}
			after = bytes.Clone(last) // k is only valid inside the transaction
			return nil
		})
		if err != nil {
			return err
		}
		for _, rec := range batch {
			if err := fn(rec); err != nil {
				return err
			}
		}
		if len(batch) < streamBatch {
			return nil
		}
	}
}

// GetProject returns one project of a run (incremental runs carry over profiles of the previous run).
func (s *Store) GetProject(ctx context.Context, runID string, id int64) (inventory.Project, bool, error) {
	if err := ctx.Err(); err != nil {
		return inventory.Project{}, false, err
	}
	prefix, err := runPrefix(runID)
	if err != nil {
		return inventory.Project{}, false, err
	}
	var p inventory.Project
	var ok bool
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketProjects).Get(idKey(prefix, id))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &p)
	})
	if err != nil {
		return inventory.Project{}, false, fmt.Errorf("get project %d of run %s: %w", id, runID, err)
	}
	return p, ok, nil
}
