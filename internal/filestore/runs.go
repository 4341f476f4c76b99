package filestore

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// CreateRun records a new run in status running. It fails with an error wrapping
// discovery.ErrRunActive when a run is running or exporting, and refuses to overwrite
// a finished run with the same ID.
func (s *Store) CreateRun(ctx context.Context, run inventory.Run) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if run.ID == "" {
		return fmt.Errorf("create run: empty run ID")
	}
	run.Status = inventory.RunRunning
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		active, ok, err := activeRun(b)
		if err != nil {
			return fmt.Errorf("create run %s: %w", run.ID, err)
		}
		if ok {
			return fmt.Errorf("create run %s: run %s is %s: %w", run.ID, active.ID, active.Status, discovery.ErrRunActive)
		}
		if b.Get([]byte(run.ID)) != nil {
			return fmt.Errorf("create run %s: a run with this ID already exists", run.ID)
		}
		return putRun(b, run)
	})
}

// GetRun returns a run by ID; a missing run wraps discovery.ErrNotFound.
func (s *Store) GetRun(ctx context.Context, runID string) (inventory.Run, error) {
	if err := ctx.Err(); err != nil {
		return inventory.Run{}, err
	}
	var run inventory.Run
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		run, err = getRun(tx.Bucket(bucketRuns), runID)
		return err
	})
	return run, err
}

// ActiveRun returns the run that is running or exporting, if any.
func (s *Store) ActiveRun(ctx context.Context) (inventory.Run, bool, error) {
	if err := ctx.Err(); err != nil {
		return inventory.Run{}, false, err
	}
	var (
		run inventory.Run
		ok  bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		run, ok, err = activeRun(tx.Bucket(bucketRuns))
		return err
	})
	if err != nil {
		return inventory.Run{}, false, fmt.Errorf("active run: %w", err)
	}
	return run, ok, nil
}

// PreviousRun returns the newest succeeded run started before runID, if any.
func (s *Store) PreviousRun(ctx context.Context, runID string) (inventory.Run, bool, error) {
	if err := ctx.Err(); err != nil {
		return inventory.Run{}, false, err
	}
	var (
		prev inventory.Run
		ok   bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		cur, err := getRun(b, runID)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var r inventory.Run
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode run %s: %w", k, err)
			}
			if r.Status == inventory.RunSucceeded && r.StartedAt.Before(cur.StartedAt) &&
				(!ok || r.StartedAt.After(prev.StartedAt)) {
				prev, ok = r, true
			}
			return nil
		})
	})
	if err != nil {
		return inventory.Run{}, false, fmt.Errorf("previous run of %s: %w", runID, err)
	}
	return prev, ok, nil
}

// UpdateRun overwrites the run's status, finish time, reason and failure counts.
func (s *Store) UpdateRun(ctx context.Context, run inventory.Run) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		cur, err := getRun(b, run.ID)
		if err != nil {
			return fmt.Errorf("update run: %w", err)
		}
		cur.Status, cur.FinishedAt, cur.Reason = run.Status, run.FinishedAt, run.Reason
		cur.FailedGroups, cur.FailedProjects = run.FailedGroups, run.FailedProjects
		return putRun(b, cur)
	})
}

func getRun(b *bolt.Bucket, runID string) (inventory.Run, error) {
	v := b.Get([]byte(runID))
	if v == nil {
		return inventory.Run{}, fmt.Errorf("run %q: %w", runID, discovery.ErrNotFound)
	}
	var r inventory.Run
	if err := json.Unmarshal(v, &r); err != nil {
		return inventory.Run{}, fmt.Errorf("decode run %q: %w", runID, err)
	}
	return r, nil
}

func putRun(b *bolt.Bucket, run inventory.Run) error {
	v, err := json.Marshal(run)
	if err != nil {
		return fmt.Errorf("encode run %s: %w", run.ID, err)
	}
	if err := b.Put([]byte(run.ID), v); err != nil {
		return fmt.Errorf("put run %s: %w", run.ID, err)
	}
	return nil
}

// activeRun scans every run: there are few, and one scan keeps CreateRun's check and
// insert in one transaction.
func activeRun(b *bolt.Bucket) (inventory.Run, bool, error) {
	var (
		active inventory.Run
		ok     bool
	)
	err := b.ForEach(func(k, v []byte) error {
		var r inventory.Run
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode run %s: %w", k, err)
		}
		if (r.Status == inventory.RunRunning || r.Status == inventory.RunExporting) &&
			(!ok || r.StartedAt.After(active.StartedAt)) {
			active, ok = r, true
		}
		return nil
	})
	return active, ok, err
}

// LastSucceeded returns the newest succeeded run, if any (service start-up restores the
// last-success metric from it).
func (s *Store) LastSucceeded(ctx context.Context) (inventory.Run, bool, error) {
	if err := ctx.Err(); err != nil {
		return inventory.Run{}, false, err
	}
	var (
		last inventory.Run
		ok   bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
			var r inventory.Run
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode run %s: %w", k, err)
			}
			if r.Status == inventory.RunSucceeded && (!ok || r.StartedAt.After(last.StartedAt)) {
				last, ok = r, true
			}
			return nil
		})
	})
	if err != nil {
		return inventory.Run{}, false, fmt.Errorf("last succeeded run: %w", err)
	}
	return last, ok, nil
}
