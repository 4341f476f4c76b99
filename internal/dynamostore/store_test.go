package dynamostore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/dynamostore"
	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/mototest"
	"github.com/gl2gh/discovery-agent/internal/storetest"
)

var (
	_ discovery.Store = (*dynamostore.Store)(nil)
	_ export.Source   = (*dynamostore.Store)(nil)
)

func TestMain(m *testing.M) { mototest.Main(m) }

// newStore returns a store on a fresh table of the package's moto server, and a raw
// client on the same table.
func newStore(t *testing.T, opts dynamostore.Options, optFns ...func(*dynamodb.Options)) (*dynamostore.Store, *dynamodb.Client, string) {
	t.Helper()
	// Serial: the counters' guarantees rest on DynamoDB's isolated transactions, which
	// threaded moto does not give.
	srv := mototest.Shared(t, mototest.Serial())
	db := srv.DynamoDB(optFns...)
	table := mototest.Name("store")
	if err := mototest.CreateTables(context.Background(), db, table, mototest.Name("budget")); err != nil {
		t.Fatal(err)
	}
	return dynamostore.New(db, table, opts), db, table
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newRun(id string, started time.Time) inventory.Run {
	return inventory.Run{ID: id, GitLabURL: "https://gitlab.example", RootGroups: []string{"acme", "beta"}, StartedAt: started}
}

func mustCreate(t *testing.T, s *dynamostore.Store, run inventory.Run) {
	t.Helper()
	if err := s.CreateRun(context.Background(), run); err != nil {
		t.Fatalf("CreateRun(%s): %v", run.ID, err)
	}
}

func mustUpdate(t *testing.T, s *dynamostore.Store, run inventory.Run, status string) inventory.Run {
	t.Helper()
	run.Status = status
	if status == inventory.RunSucceeded || status == inventory.RunFailed {
		run.FinishedAt = run.StartedAt.Add(time.Hour)
	}
	if err := s.UpdateRun(context.Background(), run); err != nil {
		t.Fatalf("UpdateRun(%s, %s): %v", run.ID, status, err)
	}
	return run
}

func activeID(t *testing.T, s *dynamostore.Store) string {
	t.Helper()
	run, ok, err := s.ActiveRun(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	return run.ID + ":" + run.Status
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) discovery.Store {
		s, _, _ := newStore(t, dynamostore.Options{})
		return s
	})
}

// TestRecordIDsMustBePositive: IDs are sort keys, so 0 and negative IDs are refused.
func TestRecordIDsMustBePositive(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	for _, id := range []int64{0, -1} {
		if err := s.PutProject(ctx, "r", inventory.Project{ID: id}); err == nil {
			t.Errorf("PutProject accepted ID %d", id)
		}
		if err := s.PutGroup(ctx, "r", inventory.Group{ID: id}); err == nil {
			t.Errorf("PutGroup accepted ID %d", id)
		}
	}
}

// TestCountersNeedTheRun: the counters live on the run's item, so calls on a run that
// does not exist fail with ErrNotFound (the file store, keyed by run, does not check).
func TestCountersNeedTheRun(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"AddPending", func() error { return s.AddPending(ctx, "nope", "k") }},
		{"Done", func() error { _, _, err := s.Done(ctx, "nope", "k"); return err }},
		{"Pending", func() error { _, err := s.Pending(ctx, "nope"); return err }},
		{"AddAPICalls", func() error { return s.AddAPICalls(ctx, "nope", 1) }},
		{"APICalls", func() error { _, err := s.APICalls(ctx, "nope"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, discovery.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		})
	}
	// Nothing above may have created the run item as a side effect.
	if _, err := s.GetRun(ctx, "nope"); !errors.Is(err, discovery.ErrNotFound) {
		t.Fatalf("GetRun after the calls = %v, want ErrNotFound", err)
	}
}

func TestStaleLock(t *testing.T) {
	s, db, table := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	mustCreate(t, s, newRun("gone", t0))
	// TTL removed the run's item but the lock (which has no TTL) stayed.
	if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(table),
		Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "RUN#gone"}, "sk": &types.AttributeValueMemberS{Value: "META"}},
	}); err != nil {
		t.Fatal(err)
	}
	if id := activeID(t, s); id != "" {
		t.Fatalf("active = %q, want none: its run is gone", id)
	}
	mustCreate(t, s, newRun("next", t0.Add(time.Hour)))
	if id := activeID(t, s); id != "next:running" {
		t.Fatalf("active = %q, want next:running", id)
	}
}

func TestAddPendingManyKeys(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	mustCreate(t, s, newRun("r", t0))
	// 130 keys take three transactions; some are pending or done already, and those
	// sit in different transactions.
	if err := s.AddPending(ctx, "r", "group:7:1", "group:100:1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Done(ctx, "r", "group:100:1"); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := range 130 {
		keys = append(keys, "group:"+strconv.Itoa(i)+":1")
	}
	if err := s.AddPending(ctx, "r", keys...); err != nil {
		t.Fatal(err)
	}
	// 130 keys: group:7 was pending already (counted once), group:100 done (not counted).
	if n, err := s.Pending(ctx, "r"); err != nil || n != 129 {
		t.Fatalf("Pending = %d, %v; want 129", n, err)
	}
	if err := s.AddPending(ctx, "r", strings.Repeat("x", 2000)); err == nil {
		t.Fatal("AddPending accepted a key longer than a DynamoDB sort key")
	}
}

// countQueries returns a client option counting Query calls.
func countQueries(n *atomic.Int64) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("countQueries",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if _, ok := in.Parameters.(*dynamodb.QueryInput); ok {
						n.Add(1)
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.After)
		})
	}
}

// TestProjectsPaginate writes more than 1 MB of projects, so that Query must page, and
// checks every project comes back once, in order.
func TestProjectsPaginate(t *testing.T) {
	var queries atomic.Int64
	s, _, _ := newStore(t, dynamostore.Options{}, countQueries(&queries))
	ctx := context.Background()
	const n = 600
	pad := strings.Repeat("x", 2000)
	ids := rand.Perm(n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for _, i := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			p := inventory.Project{ID: int64(i + 1), Name: pad, PathWithNamespace: "acme/p" + strconv.Itoa(i+1)}
			if err := s.PutProject(ctx, "big", p); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	next := int64(1)
	if err := s.Projects(ctx, "big", func(p inventory.Project) error {
		if p.ID != next || p.Name != pad {
			return fmt.Errorf("got project %d (name %d bytes), want %d", p.ID, len(p.Name), next)
		}
		next++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if next != n+1 {
		t.Fatalf("streamed %d projects, want %d", next-1, n)
	}
	if q := queries.Load(); q < 2 {
		t.Fatalf("%d Query calls for %d KB of projects: pagination not exercised", q, n*2)
	}
}

func TestTTL(t *testing.T) {
	now := t0
	s, db, table := newStore(t, dynamostore.Options{TTL: 48 * time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	run := newRun("r", t0)
	mustCreate(t, s, run)
	if err := s.AddPending(ctx, "r", "k"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Done(ctx, "r", "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "r", "k", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGroup(ctx, "r", inventory.Group{ID: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutProject(ctx, "r", inventory.Project{ID: 1}); err != nil {
		t.Fatal(err)
	}
	out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.FormatInt(t0.Add(48*time.Hour).Unix(), 10)
	seen := map[string]bool{}
	for _, item := range out.Items {
		pk := item["pk"].(*types.AttributeValueMemberS).Value
		sk := item["sk"].(*types.AttributeValueMemberS).Value
		kind := strings.SplitN(sk, "#", 2)[0]
		if pk == "RUNS" {
			kind = "RUNS"
		}
		seen[kind] = true
		exp, ok := item["expires_at"].(*types.AttributeValueMemberN)
		switch {
		case pk == "ACTIVE":
			if ok {
				t.Errorf("the active-run lock has expires_at %s: it must not expire", exp.Value)
			}
		case !ok || exp.Value != want:
			t.Errorf("%s/%s: expires_at = %v, want %s", pk, sk, item["expires_at"], want)
		}
	}
	for _, kind := range []string{"META", "PENDING", "DONE", "CKPT", "GROUP", "PROJECT", "RUNS", "RUN"} {
		if !seen[kind] {
			t.Errorf("no %s item in the table", kind)
		}
	}
}

// TestParallelReadsKeepOrder: parallel segment reads yield every record once, in ID
// order, however sparse the IDs; an error from the callback stops the read.
func TestParallelReadsKeepOrder(t *testing.T) {
	s, db, table := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	var want []int64
	for i := range 300 {
		id := int64(i*i + 7) // sparse, uneven
		want = append(want, id)
		if err := s.PutProject(ctx, "r", inventory.Project{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, par := range []int{1, 3, 8} {
		ps := dynamostore.New(db, table, dynamostore.Options{ReadParallelism: par})
		var got []int64
		if err := ps.Projects(ctx, "r", func(p inventory.Project) error { got = append(got, p.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("parallelism %d: %d records, first %v; want %d in order", par, len(got), got[:min(5, len(got))], len(want))
		}
		stop := errors.New("stop")
		n := 0
		err := ps.Projects(ctx, "r", func(inventory.Project) error {
			if n++; n == 50 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 50 {
			t.Errorf("parallelism %d: error %v after %d records; want stop after 50", par, err, n)
		}
	}
	empty := dynamostore.New(db, table, dynamostore.Options{ReadParallelism: 4})
	if err := empty.Projects(ctx, "none", func(inventory.Project) error { return errors.New("a record of no run") }); err != nil {
		t.Error(err)
	}
}

// TestClaimLapses: a claim holds the key against other owners until it lapses or its
// owner releases it; a release by another owner does nothing.
func TestClaimLapses(t *testing.T) {
	now := t0
	s, _, _ := newStore(t, dynamostore.Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	claim := func(owner string, until time.Time) (dynamostore.Claim, bool) {
		t.Helper()
		held, ok, err := s.Claim(ctx, "r", "group:1:1", dynamostore.Claim{Owner: owner, MessageID: "m-" + owner, Until: until})
		if err != nil {
			t.Fatal(err)
		}
		return held, ok
	}
	if _, ok := claim("a", now.Add(time.Minute)); !ok {
		t.Fatal("first claim refused")
	}
	if held, ok := claim("b", now.Add(time.Minute)); ok || held.MessageID != "m-a" || !held.Until.Equal(now.Add(time.Minute)) {
		t.Fatalf("second claim: %v, %+v; want refused, held by a", ok, held)
	}
	if err := s.Release(ctx, "r", "group:1:1", "b"); err != nil {
		t.Fatal(err)
	}
	if _, ok := claim("b", now.Add(time.Minute)); ok {
		t.Fatal("another owner's release freed the claim")
	}
	now = now.Add(2 * time.Minute) // a's handler was killed: its claim lapsed
	if _, ok := claim("b", now.Add(time.Minute)); !ok {
		t.Fatal("a lapsed claim still holds")
	}
	if err := s.Release(ctx, "r", "group:1:1", "b"); err != nil {
		t.Fatal(err)
	}
	if _, ok := claim("c", now.Add(time.Minute)); !ok {
		t.Fatal("a released claim still holds")
	}
}
