package filestore

import (
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// present is the value of a pending or done marker. It must not be empty: in the
// transaction that put it, a key stored with a nil value reads back nil, as if absent,
// so a key given twice in one AddPending was counted twice. (Markers committed empty
// by earlier versions read back as empty, non-nil slices, so old files still work.)
var present = []byte{1}

// AddPending counts keys as pending work of the run; a key added before, or already
// done, is not counted again.
func (s *Store) AddPending(ctx context.Context, runID string, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	counter, err := runKey(runID, counterPending)
	if err != nil {
		return fmt.Errorf("add pending: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		pending, done, counters := tx.Bucket(bucketPending), tx.Bucket(bucketDone), tx.Bucket(bucketCounters)
		n := getInt64(counters, counter)
		for _, key := range keys {
			k, err := runKey(runID, key)
			if err != nil {
				return err
			}
			if pending.Get(k) != nil {
				continue
			}
			if err := pending.Put(k, present); err != nil {
				return err
			}
			if done.Get(k) == nil {
				n++
			}
		}
		return putInt64(counters, counter, n)
	})
	if err != nil {
		return fmt.Errorf("add pending to run %s: %w", runID, err)
	}
	return nil
}

// Done marks key finished. Only the first call for a key reports first and, if the key
// was added, decrements the pending count.
func (s *Store) Done(ctx context.Context, runID, key string) (remaining int64, first bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	k, err := runKey(runID, key)
	if err != nil {
		return 0, false, fmt.Errorf("done: %w", err)
	}
	counter, err := runKey(runID, counterPending)
	if err != nil {
		return 0, false, fmt.Errorf("done: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		pending, done, counters := tx.Bucket(bucketPending), tx.Bucket(bucketDone), tx.Bucket(bucketCounters)
		remaining = getInt64(counters, counter)
		first = done.Get(k) == nil
		if !first {
			return nil
		}
		if err := done.Put(k, present); err != nil {
			return err
		}
		if pending.Get(k) != nil && remaining > 0 {
			remaining--
		}
		return putInt64(counters, counter, remaining)
	})
	if err != nil {
		return 0, false, fmt.Errorf("mark %s done in run %s: %w", key, runID, err)
	}
	return remaining, first, nil
}

// IsDone reports whether key was marked finished.
func (s *Store) IsDone(ctx context.Context, runID, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	k, err := runKey(runID, key)
	if err != nil {
		return false, fmt.Errorf("is done: %w", err)
	}
	var done bool
	err = s.db.View(func(tx *bolt.Tx) error {
		done = tx.Bucket(bucketDone).Get(k) != nil
		return nil
	})
	return done, err
}

// Pending returns the run's pending count.
func (s *Store) Pending(ctx context.Context, runID string) (int64, error) {
	return s.counter(ctx, runID, counterPending)
}

// Checkpoint returns the next project page to scan for a message key, 0 when none.
func (s *Store) Checkpoint(ctx context.Context, runID, key string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	k, err := runKey(runID, key)
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	var page int
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketCheckpoints).Get(k); len(v) == 8 {
			page = int(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return page, err
}

// SaveCheckpoint records the next project page for a message key.
func (s *Store) SaveCheckpoint(ctx context.Context, runID, key string, page int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if page < 0 {
		return fmt.Errorf("save checkpoint %s: negative page %d", key, page)
	}
	k, err := runKey(runID, key)
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCheckpoints).Put(k, binary.BigEndian.AppendUint64(nil, uint64(page)))
	})
	if err != nil {
		return fmt.Errorf("save checkpoint %s of run %s: %w", key, runID, err)
	}
	return nil
}

// AddAPICalls adds n to the run's API call counter.
func (s *Store) AddAPICalls(ctx context.Context, runID string, n int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, err := runKey(runID, counterAPICalls)
	if err != nil {
		return fmt.Errorf("add api calls: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		return putInt64(b, k, getInt64(b, k)+n)
	})
	if err != nil {
		return fmt.Errorf("add api calls to run %s: %w", runID, err)
	}
	return nil
}

// APICalls returns the run's API call counter.
func (s *Store) APICalls(ctx context.Context, runID string) (int64, error) {
	return s.counter(ctx, runID, counterAPICalls)
}

func (s *Store) counter(ctx context.Context, runID, name string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	k, err := runKey(runID, name)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	var n int64
	err = s.db.View(func(tx *bolt.Tx) error {
		n = getInt64(tx.Bucket(bucketCounters), k)
		return nil
	})
	return n, err
}
