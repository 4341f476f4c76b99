package filestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gl2gh/discovery-agent/internal/work"
)

// DefaultMaxReceives is how many failed deliveries (Nacks) a message gets before it is
// dead-lettered.
const DefaultMaxReceives = 5

// DefaultMaxInterrupted is how many deliveries of a message may be cut off (the process
// stopped before it acked, nacked or released it) before the message is dead-lettered.
// An operator's kill -9 or restart is no failure of the message, so the ceiling is far
// above what interruptions reach; it exists to end crash loops (a message that kills
// its process every time).
const DefaultMaxInterrupted = 100

// Delivery is one received message. Ack, Nack or Release it with the queue it came from.
type Delivery struct {
	Msg work.Message
	// Receives counts the deliveries that count: the failed ones (nacked) so far, and
	// this one. The delivery with Receives == MaxReceives is the message's last chance.
	Receives int
	// Interrupted counts earlier deliveries cut off by a process that stopped.
	Interrupted int
	id          []byte
}

// DeadLetter is a message the queue gave up on.
type DeadLetter struct {
	RunID    string       `json:"run_id,omitempty"` // empty when the record was unreadable
	Key      string       `json:"key,omitempty"`    // the message key it was queued under
	Msg      work.Message `json:"msg,omitzero"`     // zero when Body could not be decoded
	Body     []byte       `json:"body"`
	Reason   string       `json:"reason"`
	Receives int          `json:"receives"` // failed deliveries
	// Interrupted counts deliveries cut off by a process that stopped.
	Interrupted int       `json:"interrupted,omitempty"`
	At          time.Time `json:"at"`
}

// Queue is a durable at-least-once work queue in the store's file. Messages are keyed
// by run and work.Message.Key, so sending a key that is still queued is a no-op.
//
// Visibility is kept in memory: messages are appended under increasing sequence
// numbers, a receiver takes the oldest ones past cursor (the highest sequence this
// process delivered), and Nack re-appends a message past the cursor. So everything at or
// below cursor is in flight, everything above is visible, and after a restart (cursor
// 0) every unacknowledged message is delivered again.
//
// Only a Nack counts towards MaxReceives. A delivery leases its record (a flag in the
// file); a lease found by the next process's receive was cut off, and counts towards
// MaxInterrupted instead, so restarts and kill -9 never dead-letter healthy work.
type Queue struct {
	db *bolt.DB

	// mu serialises the queue's transactions with cursor; it is always taken before a
	// bolt write transaction starts, never inside one.
	mu             sync.Mutex
	cursor         uint64
	maxReceives    int
	maxInterrupted int
	wake           chan struct{} // closed and replaced when messages become visible

	n         atomic.Int64 // queued + in flight
	closed    chan struct{}
	closeOnce sync.Once
}

func newQueue(db *bolt.DB, queued int) *Queue {
	q := &Queue{
		db:             db,
		maxReceives:    DefaultMaxReceives,
		maxInterrupted: DefaultMaxInterrupted,
		wake:           make(chan struct{}),
		closed:         make(chan struct{}),
	}
	q.n.Store(int64(queued))
	return q
}

// SetMaxReceives sets how many failed deliveries a message gets before it is
// dead-lettered (at least 1).
func (q *Queue) SetMaxReceives(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.maxReceives = max(n, 1)
}

// SetMaxInterrupted sets how many cut-off deliveries a message gets before it is
// dead-lettered (at least 1, at most maxCount).
func (q *Queue) SetMaxInterrupted(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.maxInterrupted = min(max(n, 1), maxCount)
}

// Len returns the number of messages queued or in flight.
func (q *Queue) Len() int { return int(q.n.Load()) }

// Send queues messages in one transaction. A message whose key is still queued is
// dropped as a duplicate; one whose key is in flight is queued again, so that work the
// sender asks for after a delivery started is not lost when that delivery is acked.
func (q *Queue) Send(ctx context.Context, msgs ...work.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	type item struct{ key, body []byte }
	items := make([]item, 0, len(msgs))
	for _, m := range msgs {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("send %s: %w", m.Key(), err)
		}
		k, err := runKey(m.RunID, m.Key())
		if err != nil {
			return fmt.Errorf("send %s: %w", m.Key(), err)
		}
		items = append(items, item{k, m.Encode()})
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	if q.isClosed() {
		return fmt.Errorf("send: %w", ErrClosed)
	}
	var added, appended int64
	err := q.db.Update(func(tx *bolt.Tx) error {
		b, keys := tx.Bucket(bucketQueue), tx.Bucket(bucketQueueKeys)
		for _, it := range items {
			if seq := keys.Get(it.key); seq != nil && b.Get(seq) != nil {
				if binary.BigEndian.Uint64(seq) > q.cursor {
					continue // still queued
				}
				if err := b.Delete(seq); err != nil {
					return err
				}
				added--
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			sk := seqKey(seq)
			if err := b.Put(sk, record{key: it.key, body: it.body}.encode()); err != nil {
				return err
			}
			if err := keys.Put(it.key, sk); err != nil {
				return err
			}
			added++
			appended++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("send %d messages: %w", len(msgs), err)
	}
	q.n.Add(added)
	if appended > 0 {
		q.broadcast()
	}
	return nil
}

// Receive returns up to limit visible messages, oldest first, blocking until there is
// at least one, ctx is done or the store is closed. Each returned message is invisible
// to other receivers until it is acked, nacked or released. A message that cannot be
// decoded, or whose deliveries were cut off MaxInterrupted times (a crash loop), goes to
// the dead-letter bucket instead.
func (q *Queue) Receive(ctx context.Context, limit int) ([]Delivery, error) {
	limit = max(limit, 1)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if q.isClosed() {
			return nil, fmt.Errorf("receive: %w", ErrClosed)
		}
		q.mu.Lock()
		wake := q.wake // taken before looking, so a Send after the look still wakes us
		ds, err := q.take(limit)
		q.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("receive: %w", err)
		}
		if len(ds) > 0 {
			return ds, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.closed:
			return nil, fmt.Errorf("receive: %w", ErrClosed)
		case <-wake:
		}
	}
}

// take delivers up to limit messages past the cursor; q.mu must be held.
func (q *Queue) take(limit int) ([]Delivery, error) {
	type dead struct {
		seq, key []byte
		letter   DeadLetter
	}
	var (
		out    []Delivery
		dls    []dead
		cursor uint64
	)
	err := q.db.Update(func(tx *bolt.Tx) error {
		out, dls, cursor = nil, nil, q.cursor
		b := tx.Bucket(bucketQueue)
		type update struct{ k, v []byte }
		var updates []update
		c := b.Cursor()
		for k, v := c.Seek(seqKey(cursor + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			cursor = binary.BigEndian.Uint64(k)
			sk := bytes.Clone(k)
			rec, err := decodeRecord(v)
			if err != nil {
				dls = append(dls, dead{sk, nil, DeadLetter{Body: bytes.Clone(v), Reason: "unreadable queue record: " + err.Error()}})
				continue
			}
			msg, err := work.Decode(rec.body)
			if err != nil {
				dls = append(dls, dead{sk, bytes.Clone(rec.key), DeadLetter{Body: bytes.Clone(rec.body), Reason: err.Error(), Receives: rec.failed}})
				continue
			}
			if rec.leased { // a process took it and stopped before it finished
				rec.interrupted = min(rec.interrupted+1, maxCount)
			}
			if reason := q.exhausted(rec); reason != "" {
				dls = append(dls, dead{sk, bytes.Clone(rec.key), DeadLetter{Msg: msg, Body: bytes.Clone(rec.body),
					Reason: reason, Receives: rec.failed, Interrupted: rec.interrupted}})
				continue
			}
			rec.leased = true
			updates = append(updates, update{sk, rec.encode()})
			out = append(out, Delivery{Msg: msg, Receives: rec.failed + 1, Interrupted: rec.interrupted, id: sk})
		}
		// Written after the scan: a bolt cursor must not see its bucket change under it.
		for _, u := range updates {
			if err := b.Put(u.k, u.v); err != nil {
				return err
			}
		}
		for i := range dls {
			if err := deadLetter(tx, dls[i].seq, dls[i].key, &dls[i].letter); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	q.cursor = cursor
	q.n.Add(-int64(len(dls)))
	for _, d := range dls {
		logDeadLetter(d.letter)
	}
	return out, nil
}

// exhausted says why rec may not be delivered again, or "" when it may. The failed
// count only reaches MaxReceives here when the ceiling was lowered since, or the record
// predates interruptions being told apart from failures.
func (q *Queue) exhausted(rec record) string {
	switch {
	case rec.failed >= q.maxReceives:
		return fmt.Sprintf("failed %d deliveries", rec.failed)
	case rec.interrupted >= q.maxInterrupted:
		return fmt.Sprintf("%d deliveries cut off without ack or nack (does handling it crash the process?)", rec.interrupted)
	}
	return ""
}

// Ack deletes a delivered message. Acking twice, or a message that was sent again
// while in flight, is a no-op.
func (q *Queue) Ack(ctx context.Context, d Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(d.id) != 8 {
		return errors.New("ack: not a delivery of this queue")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var removed bool
	err := q.db.Update(func(tx *bolt.Tx) error {
		removed = false
		b := tx.Bucket(bucketQueue)
		v := b.Get(d.id)
		if v == nil {
			return nil
		}
		if rec, err := decodeRecord(v); err == nil {
			if err := unindex(tx, rec.key, d.id); err != nil {
				return err
			}
		}
		removed = true
		return b.Delete(d.id)
	})
	if err != nil {
		return fmt.Errorf("ack %s: %w", d.Msg.Key(), err)
	}
	if removed {
		q.n.Add(-1)
	}
	return nil
}

// Nack records a failed delivery and makes the message visible again, behind the
// messages already queued. The MaxReceives-th failure dead-letters it with reason.
func (q *Queue) Nack(ctx context.Context, d Delivery, reason string) error {
	return q.requeue(ctx, "nack", d, reason, true)
}

// Release makes a delivered message visible again without counting a failure: its
// handling was interrupted (shutdown), not failed.
func (q *Queue) Release(ctx context.Context, d Delivery) error {
	return q.requeue(ctx, "release", d, "", false)
}

// requeue re-appends a delivered message past the cursor, counting a failure when
// failed is set.
func (q *Queue) requeue(ctx context.Context, op string, d Delivery, reason string, failed bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(d.id) != 8 {
		return fmt.Errorf("%s: not a delivery of this queue", op)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var (
		requeued bool
		letter   *DeadLetter
	)
	err := q.db.Update(func(tx *bolt.Tx) error {
		requeued, letter = false, nil
		b := tx.Bucket(bucketQueue)
		v := b.Get(d.id)
		if v == nil {
			return nil // acked, or sent again while in flight
		}
		rec, err := decodeRecord(v)
		if err != nil {
			letter = &DeadLetter{Body: bytes.Clone(v), Reason: "unreadable queue record: " + err.Error()}
			return deadLetter(tx, d.id, nil, letter)
		}
		rec.leased = false
		if failed {
			rec.failed = min(rec.failed+1, maxCount)
			if rec.failed >= q.maxReceives {
				letter = &DeadLetter{Msg: d.Msg, Body: bytes.Clone(rec.body), Reason: reason, Receives: rec.failed, Interrupted: rec.interrupted}
				return deadLetter(tx, d.id, rec.key, letter)
			}
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		sk := seqKey(seq)
		if err := b.Put(sk, rec.encode()); err != nil {
			return err
		}
		if err := tx.Bucket(bucketQueueKeys).Put(bytes.Clone(rec.key), sk); err != nil {
			return err
		}
		requeued = true
		return b.Delete(d.id)
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, d.Msg.Key(), err)
	}
	switch {
	case requeued:
		q.broadcast()
	case letter != nil:
		q.n.Add(-1)
		logDeadLetter(*letter)
	}
	return nil
}

// RunLen returns how many messages of a run are queued or in flight.
func (q *Queue) RunLen(ctx context.Context, runID string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	prefix, err := runPrefix(runID)
	if err != nil {
		return 0, fmt.Errorf("queue length of run %q: %w", runID, err)
	}
	n := 0
	err = q.db.View(func(tx *bolt.Tx) error {
		// Every queued record has its key indexed, once: Send and Nack replace a key's
		// record, Ack and dead-lettering drop both.
		c := tx.Bucket(bucketQueueKeys).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("queue length of run %s: %w", runID, err)
	}
	return n, nil
}

// DeadLetters returns the dead-lettered messages, oldest first.
func (q *Queue) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []DeadLetter
	err := q.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeadLetters).ForEach(func(k, v []byte) error {
			var dl DeadLetter
			if err := json.Unmarshal(v, &dl); err != nil {
				return fmt.Errorf("decode dead letter %x: %w", k, err)
			}
			out = append(out, dl)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	return out, nil
}

// broadcast wakes every blocked receiver; q.mu must be held.
func (q *Queue) broadcast() {
	close(q.wake)
	q.wake = make(chan struct{})
}

func (q *Queue) close() { q.closeOnce.Do(func() { close(q.closed) }) }

func (q *Queue) isClosed() bool {
	select {
	case <-q.closed:
		return true
	default:
		return false
	}
}

// deadLetter moves the record at seq to the dead-letter bucket.
func deadLetter(tx *bolt.Tx, seq, key []byte, dl *DeadLetter) error {
	dl.At = time.Now().UTC()
	if key != nil {
		dl.RunID, dl.Key = splitRunKey(key)
	}
	v, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	dlq := tx.Bucket(bucketDeadLetters)
	n, err := dlq.NextSequence()
	if err != nil {
		return err
	}
	if err := dlq.Put(seqKey(n), v); err != nil {
		return err
	}
	if key != nil {
		if err := unindex(tx, key, seq); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketQueue).Delete(seq)
}

// unindex forgets key's deduplication entry if it still points at seq.
func unindex(tx *bolt.Tx, key, seq []byte) error {
	keys := tx.Bucket(bucketQueueKeys)
	if bytes.Equal(keys.Get(key), seq) {
		return keys.Delete(bytes.Clone(key))
	}
	return nil
}

func logDeadLetter(dl DeadLetter) {
	slog.Warn("message dead-lettered", "run_id", dl.RunID, "key", dl.Key,
		"receives", dl.Receives, "interrupted", dl.Interrupted, "reason", dl.Reason)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// record is a queued message: delivery counters, deduplication key and body.
// Layout: uint32 counters | uint16 len(key) | key | body, the counters being
// leased (bit 31) | interrupted (bits 16-30) | failed (bits 0-15). Records written
// before interruptions were told apart held their one receive count where failed is.
type record struct {
	failed      int  // deliveries that ended in a Nack
	interrupted int  // deliveries cut off: still leased when their process stopped
	leased      bool // delivered and not yet acked, nacked or released
	key         []byte
	body        []byte
}

// maxCount is the ceiling of either counter, what its bits hold (failed has 16; both
// stay below 15 bits' worth so they never spill).
const maxCount = 1<<15 - 1

func (r record) encode() []byte {
	c := uint32(min(r.failed, maxCount)) | uint32(min(r.interrupted, maxCount))<<16
	if r.leased {
		c |= 1 << 31
	}
	v := make([]byte, 0, 6+len(r.key)+len(r.body))
	v = binary.BigEndian.AppendUint32(v, c)
	v = binary.BigEndian.AppendUint16(v, uint16(len(r.key)))
	v = append(v, r.key...)
	return append(v, r.body...)
}

func decodeRecord(v []byte) (record, error) {
	if len(v) < 6 {
		return record{}, fmt.Errorf("record of %d bytes is too short", len(v))
	}
	kl := int(binary.BigEndian.Uint16(v[4:]))
	if len(v) < 6+kl {
		return record{}, fmt.Errorf("record of %d bytes cannot hold a %d-byte key", len(v), kl)
	}
	c := binary.BigEndian.Uint32(v)
	return record{
		failed: int(c & 0xffff), interrupted: int(c >> 16 & 0x7fff), leased: c&(1<<31) != 0,
		key: v[6 : 6+kl], body: v[6+kl:],
	}, nil
}

// RedriveDeadLetters queues every dead letter that holds a valid message again, with a
// fresh receive count, and removes it from the dead-letter bucket. Bodies that never
// decoded stay for PurgeDeadLetters. It returns how many were queued.
func (q *Queue) RedriveDeadLetters(ctx context.Context) (int, error) {
	return q.dropDeadLetters(ctx, func(dl DeadLetter) (bool, error) {
		if dl.Msg.Validate() != nil {
			return false, nil
		}
		return true, q.Send(ctx, dl.Msg)
	})
}

// PurgeDeadLetters deletes every dead letter and returns how many there were.
func (q *Queue) PurgeDeadLetters(ctx context.Context) (int, error) {
	return q.dropDeadLetters(ctx, func(DeadLetter) (bool, error) { return true, nil })
}

// dropDeadLetters deletes the dead letters for which take returns true, one by one, so
// a failure part-way loses nothing.
func (q *Queue) dropDeadLetters(ctx context.Context, take func(DeadLetter) (bool, error)) (int, error) {
	type entry struct {
		k  []byte
		dl DeadLetter
	}
	var all []entry
	err := q.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeadLetters).ForEach(func(k, v []byte) error {
			e := entry{k: append([]byte(nil), k...)}
			if err := json.Unmarshal(v, &e.dl); err != nil {
				e.dl = DeadLetter{Body: append([]byte(nil), v...), Reason: "undecodable dead letter"}
			}
			all = append(all, e)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("dead letters: %w", err)
	}
	n := 0
	for _, e := range all {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		ok, err := take(e.dl)
		if err != nil {
			return n, fmt.Errorf("dead letter %s: %w", e.dl.Key, err)
		}
		if !ok {
			continue
		}
		if err := q.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDeadLetters).Delete(e.k) }); err != nil {
			return n, fmt.Errorf("remove dead letter %s: %w", e.dl.Key, err)
		}
		n++
	}
	return n, nil
}
