package dynamostore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

func indexSK(run inventory.Run) string {
	return run.StartedAt.UTC().Format(startedLayout) + "#" + run.ID
}

func finished(status string) bool {
	return status == inventory.RunSucceeded || status == inventory.RunFailed
}

// CreateRun records a new run in status running and takes the active-run lock. It
// fails with an error wrapping discovery.ErrRunActive when another run is running or
// exporting, and refuses to overwrite an existing run with the same ID.
func (s *Store) CreateRun(ctx context.Context, run inventory.Run) error {
	if run.ID == "" {
		return errors.New("create run: empty run ID")
	}
	run.Status = inventory.RunRunning
	data, err := json.Marshal(run)
	if err != nil {
		return fmt.Errorf("create run %s: encode: %w", run.ID, err)
	}
	for attempt := 0; ; attempt++ {
		err := s.createRun(ctx, run, data)
		if err == nil {
			return nil
		}
		codes, canceled := cancelReasons(err)
		switch {
		case canceled && len(codes) == 3 && codes[0] == reasonCondition:
			active, holder, ok, aerr := s.lockHolder(ctx)
			if aerr != nil {
				return fmt.Errorf("create run %s: %w (reading it: %w)", run.ID, discovery.ErrRunActive, aerr)
			}
			if ok {
				return fmt.Errorf("create run %s: run %s is %s: %w", run.ID, active.ID, active.Status, discovery.ErrRunActive)
			}
			// The lock names a run that ended or expired without releasing it.
			if attempt > 0 {
				return fmt.Errorf("create run %s: %w (lock held by vanished run %s)", run.ID, discovery.ErrRunActive, holder)
			}
			if err := s.releaseStaleLock(ctx, holder); err != nil {
				return fmt.Errorf("create run %s: %w", run.ID, err)
			}
		case canceled && len(codes) == 3 && codes[1] == reasonCondition:
			return fmt.Errorf("create run %s: a run with this ID already exists", run.ID)
		default:
			return fmt.Errorf("create run %s: %w", run.ID, err)
		}
	}
}

func (s *Store) createRun(ctx context.Context, run inventory.Run, data []byte) error {
	exp := s.expires()
	return s.transact(ctx, []types.TransactWriteItem{
		{Put: &types.Put{
			TableName: aws.String(s.table),
			Item: map[string]types.AttributeValue{
				attrPK: str(pkActive), attrSK: str(skActive),
				attrRunID: str(run.ID), attrStatus: str(run.Status),
			},
			ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #status IN (:succeeded, :failed)"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#status": attrStatus},
			ExpressionAttributeValues: map[string]types.AttributeValue{":succeeded": str(inventory.RunSucceeded), ":failed": str(inventory.RunFailed)},
		}},
		{Put: &types.Put{
			TableName: aws.String(s.table),
			Item: map[string]types.AttributeValue{
				attrPK: str(runPK(run.ID)), attrSK: str(skMeta),
				attrData: str(string(data)), attrStatus: str(run.Status),
				attrPending: num(0), attrAPICalls: num(0), attrExpires: exp,
			},
			ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
			ExpressionAttributeNames: map[string]string{"#pk": attrPK},
		}},
		{Put: &types.Put{
			TableName: aws.String(s.table),
			Item: map[string]types.AttributeValue{
				attrPK: str(pkRuns), attrSK: str(indexSK(run)), attrRunID: str(run.ID), attrExpires: exp,
			},
		}},
	})
}

// releaseStaleLock deletes the lock if it still names holder.
func (s *Store) releaseStaleLock(ctx context.Context, holder string) error {
	if holder == "" {
		return nil // no lock any more
	}
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(pkActive, skActive),
		ConditionExpression:       aws.String("#run = :run"),
		ExpressionAttributeNames:  map[string]string{"#run": attrRunID},
		ExpressionAttributeValues: map[string]types.AttributeValue{":run": str(holder)},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) { // a refused condition: another run took it meanwhile
		return fmt.Errorf("release stale lock of run %s: %w", holder, err)
	}
	return nil
}

// GetRun returns a run by ID, or an error wrapping discovery.ErrNotFound.
func (s *Store) GetRun(ctx context.Context, runID string) (inventory.Run, error) {
	item, err := s.get(ctx, runPK(runID), skMeta, attrData, attrStatus, attrFinished, attrReason, attrFailedGroups, attrFailedProjects)
	if err != nil {
		return inventory.Run{}, fmt.Errorf("get run %s: %w", runID, err)
	}
	if item == nil {
		return inventory.Run{}, fmt.Errorf("run %q: %w", runID, discovery.ErrNotFound)
	}
	var run inventory.Run
	if err := json.Unmarshal([]byte(strAttr(item, attrData)), &run); err != nil {
		return inventory.Run{}, fmt.Errorf("decode run %s: %w", runID, err)
	}
	// data holds the run as created; these change afterwards.
	run.Status = strAttr(item, attrStatus)
	run.Reason = strAttr(item, attrReason)
	fg, err := numAttr(item, attrFailedGroups)
	if err != nil {
		return inventory.Run{}, fmt.Errorf("decode run %s: %w", runID, err)
	}
	fp, err := numAttr(item, attrFailedProjects)
	if err != nil {
		return inventory.Run{}, fmt.Errorf("decode run %s: %w", runID, err)
	}
	run.FailedGroups, run.FailedProjects = int(fg), int(fp)
	run.FinishedAt = time.Time{}
	if f := strAttr(item, attrFinished); f != "" {
		if run.FinishedAt, err = time.Parse(time.RFC3339Nano, f); err != nil {
			return inventory.Run{}, fmt.Errorf("decode run %s: finish time: %w", runID, err)
		}
	}
	return run, nil
}

// ActiveRun returns the run that is running or exporting, if any.
func (s *Store) ActiveRun(ctx context.Context) (inventory.Run, bool, error) {
	run, _, ok, err := s.lockHolder(ctx)
	if err != nil {
		return inventory.Run{}, false, fmt.Errorf("active run: %w", err)
	}
	return run, ok, nil
}

// lockHolder reads the active-run lock: the run it names (holder, "" without a lock)
// and whether that run is still running or exporting.
func (s *Store) lockHolder(ctx context.Context) (run inventory.Run, holder string, active bool, err error) {
	lock, err := s.get(ctx, pkActive, skActive)
	if err != nil || lock == nil {
		return inventory.Run{}, "", false, err
	}
	holder = strAttr(lock, attrRunID)
	if finished(strAttr(lock, attrStatus)) {
		return inventory.Run{}, holder, false, nil
	}
	run, err = s.GetRun(ctx, holder)
	if errors.Is(err, discovery.ErrNotFound) {
		return inventory.Run{}, holder, false, nil // expired (TTL) under a lock nobody released
	}
	if err != nil {
		return inventory.Run{}, holder, false, err
	}
	return run, holder, !finished(run.Status), nil
}

// PreviousRun returns the newest succeeded run started before runID, if any. It walks
// the run index backwards from runID and reads each run until one succeeded.
func (s *Store) PreviousRun(ctx context.Context, runID string) (inventory.Run, bool, error) {
	cur, err := s.GetRun(ctx, runID)
	if err != nil {
		return inventory.Run{}, false, fmt.Errorf("previous run of %s: %w", runID, err)
	}
	run, ok, err := s.newestSucceeded(ctx, indexSK(cur), func(r inventory.Run) bool { return r.StartedAt.Before(cur.StartedAt) })
	if err != nil {
		return inventory.Run{}, false, fmt.Errorf("previous run of %s: %w", runID, err)
	}
	return run, ok, nil
}

// LastSucceeded returns the newest succeeded run, if any (the service restores its
// last-success metric from it at start-up). It walks the run index from the newest run
// backwards until one succeeded.
func (s *Store) LastSucceeded(ctx context.Context) (inventory.Run, bool, error) {
	run, ok, err := s.newestSucceeded(ctx, "", nil)
	if err != nil {
		return inventory.Run{}, false, fmt.Errorf("last succeeded run: %w", err)
	}
	return run, ok, nil
}

// newestSucceeded queries the run index in descending order, below the index key
// before ("" = from the newest), and returns the first run that succeeded and that
// accept (nil = any) takes.
func (s *Store) newestSucceeded(ctx context.Context, before string, accept func(inventory.Run) bool) (inventory.Run, bool, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pkRuns)},
		ScanIndexForward:          aws.Bool(false),
		ConsistentRead:            aws.Bool(true),
	}
	if before != "" {
		in.KeyConditionExpression = aws.String("#pk = :pk AND #sk < :sk")
		in.ExpressionAttributeNames["#sk"] = attrSK
		in.ExpressionAttributeValues[":sk"] = str(before)
	}
	pages := dynamodb.NewQueryPaginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return inventory.Run{}, false, fmt.Errorf("query run index: %w", err)
		}
		for _, item := range page.Items {
			run, err := s.GetRun(ctx, strAttr(item, attrRunID))
			if errors.Is(err, discovery.ErrNotFound) {
				continue // expired before its index entry
			}
			if err != nil {
				return inventory.Run{}, false, err
			}
			if run.Status == inventory.RunSucceeded && (accept == nil || accept(run)) {
				return run, true, nil
			}
		}
	}
	return inventory.Run{}, false, nil
}

// UpdateRun overwrites the run's status, finish time and reason, and moves the
// active-run lock with it: a finished run releases it.
func (s *Store) UpdateRun(ctx context.Context, run inventory.Run) error {
	update := s.runUpdate(run)
	lock := types.TransactWriteItem{}
	cond := aws.String("#run = :run")
	lockNames := map[string]string{"#run": attrRunID}
	if finished(run.Status) {
		lock.Delete = &types.Delete{
			TableName: aws.String(s.table), Key: key(pkActive, skActive),
			ConditionExpression:       cond,
			ExpressionAttributeNames:  lockNames,
			ExpressionAttributeValues: map[string]types.AttributeValue{":run": str(run.ID)},
		}
	} else {
		lockNames["#status"] = attrStatus
		lock.Update = &types.Update{
			TableName: aws.String(s.table), Key: key(pkActive, skActive),
			UpdateExpression:          aws.String("SET #status = :status"),
			ConditionExpression:       cond,
			ExpressionAttributeNames:  lockNames,
			ExpressionAttributeValues: map[string]types.AttributeValue{":run": str(run.ID), ":status": str(run.Status)},
		}
	}
	err := s.transact(ctx, []types.TransactWriteItem{{Update: update}, lock})
	if err == nil {
		return nil
	}
	codes, canceled := cancelReasons(err)
	switch {
	case canceled && len(codes) == 2 && codes[0] == reasonCondition:
		return fmt.Errorf("update run: run %q: %w", run.ID, discovery.ErrNotFound)
	case canceled && len(codes) == 2 && codes[1] == reasonCondition && codes[0] == reasonNone:
		// The lock is not this run's (already released, or another run's): the run
		// item alone changes.
		_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: update.TableName, Key: update.Key,
			UpdateExpression:          update.UpdateExpression,
			ConditionExpression:       update.ConditionExpression,
			ExpressionAttributeNames:  update.ExpressionAttributeNames,
			ExpressionAttributeValues: update.ExpressionAttributeValues,
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return fmt.Errorf("update run: run %q: %w", run.ID, discovery.ErrNotFound)
		}
	}
	if err != nil {
		return fmt.Errorf("update run %s: %w", run.ID, err)
	}
	return nil
}

// runUpdate sets the run item's mutable fields, removing the empty ones.
func (s *Store) runUpdate(run inventory.Run) *types.Update {
	names := map[string]string{"#pk": attrPK, "#status": attrStatus, "#finished": attrFinished, "#reason": attrReason, "#exp": attrExpires,
		"#fg": attrFailedGroups, "#fp": attrFailedProjects}
	values := map[string]types.AttributeValue{":status": str(run.Status), ":exp": s.expires(),
		":fg": num(int64(run.FailedGroups)), ":fp": num(int64(run.FailedProjects))}
	set, remove := "SET #status = :status, #exp = :exp, #fg = :fg, #fp = :fp", ""
	if run.FinishedAt.IsZero() {
		remove = appendList(remove, "#finished")
	} else {
		set += ", #finished = :finished"
		values[":finished"] = str(run.FinishedAt.UTC().Format(time.RFC3339Nano))
	}
	if run.Reason == "" {
		remove = appendList(remove, "#reason")
	} else {
		set += ", #reason = :reason"
		values[":reason"] = str(run.Reason)
	}
	expr := set
	if remove != "" {
		expr += " REMOVE " + remove
	}
	return &types.Update{
		TableName:                 aws.String(s.table),
		Key:                       key(runPK(run.ID), skMeta),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
}

func appendList(list, item string) string {
	if list == "" {
		return item
	}
	return list + ", " + item
}
