package dynamostore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
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

func TestRunLifecycle(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()

	if id := activeID(t, s); id != "" {
		t.Fatalf("empty table has active run %s", id)
	}
	r1 := newRun("r1", t0)
	mustCreate(t, s, r1)
	got, err := s.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "r1" || got.Status != inventory.RunRunning || !got.StartedAt.Equal(t0) ||
		got.GitLabURL != r1.GitLabURL || strings.Join(got.RootGroups, ",") != "acme,beta" || !got.FinishedAt.IsZero() {
		t.Fatalf("GetRun = %+v, want %+v running", got, r1)
	}
	if id := activeID(t, s); id != "r1:running" {
		t.Fatalf("active = %q, want r1:running", id)
	}

	for _, id := range []string{"r2", "r1"} {
		if err := s.CreateRun(ctx, newRun(id, t0.Add(time.Minute))); !errors.Is(err, discovery.ErrRunActive) {
			t.Fatalf("CreateRun(%s) while r1 runs = %v, want ErrRunActive", id, err)
		}
	}

	mustUpdate(t, s, r1, inventory.RunExporting)
	if id := activeID(t, s); id != "r1:exporting" {
		t.Fatalf("active = %q, want r1:exporting", id)
	}
	if err := s.CreateRun(ctx, newRun("r2", t0.Add(time.Minute))); !errors.Is(err, discovery.ErrRunActive) {
		t.Fatalf("CreateRun while r1 exports = %v, want ErrRunActive", err)
	}

	r1 = mustUpdate(t, s, r1, inventory.RunSucceeded)
	mustUpdate(t, s, r1, inventory.RunSucceeded) // idempotent: the lock is gone already
	if id := activeID(t, s); id != "" {
		t.Fatalf("active = %q after r1 succeeded, want none", id)
	}
	got, err = s.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != inventory.RunSucceeded || !got.FinishedAt.Equal(r1.FinishedAt) {
		t.Fatalf("GetRun = %+v, want succeeded at %v", got, r1.FinishedAt)
	}
	if err := s.CreateRun(ctx, newRun("r1", t0.Add(2*time.Minute))); err == nil || errors.Is(err, discovery.ErrRunActive) {
		t.Fatalf("re-creating finished r1 = %v, want an 'already exists' error", err)
	}

	// A failed run keeps its reason; an update without one clears it.
	r2 := newRun("r2", t0.Add(time.Minute))
	mustCreate(t, s, r2)
	r2.Reason = "GitLab rejected the token (401)"
	r2 = mustUpdate(t, s, r2, inventory.RunFailed)
	if got, _ := s.GetRun(ctx, "r2"); got.Reason != r2.Reason || got.Status != inventory.RunFailed {
		t.Fatalf("GetRun(r2) = %+v, want failed with reason", got)
	}
	r2.Reason = ""
	mustUpdate(t, s, r2, inventory.RunFailed)
	if got, _ := s.GetRun(ctx, "r2"); got.Reason != "" {
		t.Fatalf("reason %q survived an update without one", got.Reason)
	}
}

func TestRunNotFound(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"GetRun", func() error { _, err := s.GetRun(ctx, "nope"); return err }},
		{"UpdateRun", func() error { return s.UpdateRun(ctx, inventory.Run{ID: "nope", Status: inventory.RunFailed}) }},
		{"PreviousRun", func() error { _, _, err := s.PreviousRun(ctx, "nope"); return err }},
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

func TestPreviousRun(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	// a starts on a whole second and b half a second later: RFC 3339 with trimmed
	// fractions would sort b ("…00.5Z") before a ("…00Z").
	runs := []struct {
		id      string
		started time.Time
		status  string
	}{
		{"a", t0, inventory.RunSucceeded},
		{"b", t0.Add(500 * time.Millisecond), inventory.RunSucceeded},
		{"c", t0.Add(time.Second), inventory.RunFailed},
		{"d", t0.Add(2 * time.Second), inventory.RunRunning},
	}
	for _, r := range runs {
		run := newRun(r.id, r.started)
		mustCreate(t, s, run)
		if r.status != inventory.RunRunning {
			mustUpdate(t, s, run, r.status)
		}
	}
	tests := []struct{ of, want string }{
		{"a", ""},
		{"b", "a"},
		{"c", "b"},
		{"d", "b"}, // c failed
	}
	for _, tt := range tests {
		prev, ok, err := s.PreviousRun(ctx, tt.of)
		if err != nil {
			t.Fatal(err)
		}
		if got := map[bool]string{true: prev.ID}[ok]; got != tt.want {
			t.Errorf("PreviousRun(%s) = %q, want %q", tt.of, got, tt.want)
		}
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

func TestPendingDone(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	mustCreate(t, s, newRun("r", t0))

	type result struct {
		remaining int64
		first     bool
	}
	steps := []struct {
		name    string
		add     []string
		done    string
		want    result // for done
		pending int64
	}{
		{name: "add with a duplicate in the call", add: []string{"a", "b", "a"}, pending: 2},
		{name: "add again", add: []string{"b"}, pending: 2},
		{name: "done a", done: "a", want: result{1, true}, pending: 1},
		{name: "done a again", done: "a", want: result{1, false}, pending: 1},
		{name: "add a after done", add: []string{"a"}, pending: 1},
		{name: "done c never added", done: "c", want: result{1, true}, pending: 1},
		{name: "add c after done", add: []string{"c"}, pending: 1},
		{name: "done b, the last", done: "b", want: result{0, true}, pending: 0},
		{name: "done b again", done: "b", want: result{0, false}, pending: 0},
	}
	for _, st := range steps {
		if st.add != nil {
			if err := s.AddPending(ctx, "r", st.add...); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		} else {
			remaining, first, err := s.Done(ctx, "r", st.done)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got := (result{remaining, first}); got != st.want {
				t.Fatalf("%s: Done = %+v, want %+v", st.name, got, st.want)
			}
		}
		if n, err := s.Pending(ctx, "r"); err != nil || n != st.pending {
			t.Fatalf("%s: Pending = %d, %v; want %d", st.name, n, err, st.pending)
		}
	}
	for k, want := range map[string]bool{"a": true, "b": true, "c": true, "d": false} {
		if got, err := s.IsDone(ctx, "r", k); err != nil || got != want {
			t.Errorf("IsDone(%s) = %v, %v; want %v", k, got, err, want)
		}
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

// TestConcurrentPendingDone has 20 workers add and finish keys at once, some keys
// shared (a message sent twice), while a watcher checks the count never goes negative.
func TestConcurrentPendingDone(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	mustCreate(t, s, newRun("r", t0))
	const workers, perWorker = 20, 5

	stop := make(chan struct{})
	var negative atomic.Int64
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := s.Pending(ctx, "r")
			if err != nil {
				t.Error(err)
				return
			}
			if n < 0 {
				negative.Store(n)
			}
		}
	})

	var (
		wg         sync.WaitGroup
		firsts     atomic.Int64
		errMu      sync.Mutex
		workerErrs []error
	)
	fail := func(err error) {
		errMu.Lock()
		workerErrs = append(workerErrs, err)
		errMu.Unlock()
	}
	for w := range workers {
		wg.Go(func() {
			// Worker w owns keys w*perWorker…; it also sends its neighbour's first key.
			keys := []string{fmt.Sprintf("k%d", ((w+1)%workers)*perWorker)}
			for i := range perWorker {
				keys = append(keys, fmt.Sprintf("k%d", w*perWorker+i))
			}
			if err := s.AddPending(ctx, "r", keys...); err != nil {
				fail(err)
				return
			}
			for _, k := range keys[1:] {
				_, first, err := s.Done(ctx, "r", k)
				if err != nil {
					fail(err)
					return
				}
				if first {
					firsts.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	for _, err := range workerErrs {
		t.Fatal(err)
	}
	if n := negative.Load(); n < 0 {
		t.Fatalf("pending went negative: %d", n)
	}
	if n, err := s.Pending(ctx, "r"); err != nil || n != 0 {
		t.Fatalf("final Pending = %d, %v; want 0", n, err)
	}
	if f := firsts.Load(); f != workers*perWorker {
		t.Fatalf("%d first Dones, want %d", f, workers*perWorker)
	}
}

func TestCheckpoint(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	steps := []struct {
		key  string
		save *int
		want int
	}{
		{key: "group:1:1", want: 0},
		{key: "group:1:1", save: ptr(3), want: 3},
		{key: "group:1:1", save: ptr(7), want: 7},
		{key: "group:2:1", want: 0},
		{key: "group:1:1", save: ptr(math.MaxInt32), want: math.MaxInt32}, // the worker's "listing done"
	}
	for i, st := range steps {
		if st.save != nil {
			if err := s.SaveCheckpoint(ctx, "r", st.key, *st.save); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.Checkpoint(ctx, "r", st.key); err != nil || got != st.want {
			t.Fatalf("step %d: Checkpoint(%s) = %d, %v; want %d", i, st.key, got, err, st.want)
		}
	}
	if err := s.SaveCheckpoint(ctx, "r", "group:1:1", -1); err == nil {
		t.Fatal("SaveCheckpoint accepted a negative page")
	}
	if got, err := s.Checkpoint(ctx, "r", "group:1:1"); err != nil || got != math.MaxInt32 {
		t.Fatalf("a refused checkpoint changed the page to %d, %v", got, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestAPICalls(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	mustCreate(t, s, newRun("r", t0))
	want := int64(0)
	for _, n := range []int64{0, 5, 0, 7, 1000} {
		if err := s.AddAPICalls(ctx, "r", n); err != nil {
			t.Fatal(err)
		}
		want += n
		if got, err := s.APICalls(ctx, "r"); err != nil || got != want {
			t.Fatalf("APICalls = %d, %v; want %d", got, err, want)
		}
	}
}

func TestRecords(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	ids := []int64{100, 9, 1 << 40, 10, 1}
	for _, id := range ids {
		if err := s.PutGroup(ctx, "r", inventory.Group{ID: id, FullPath: "g" + strconv.FormatInt(id, 10), ScanStatus: inventory.StatusPartial}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutProject(ctx, "r", inventory.Project{ID: id, Name: "p", ScanStatus: inventory.StatusComplete}); err != nil {
			t.Fatal(err)
		}
	}
	// A redelivered message writes the same key again: the record is replaced.
	if err := s.PutGroup(ctx, "r", inventory.Group{ID: 10, FullPath: "g10", ScanStatus: inventory.StatusComplete}); err != nil {
		t.Fatal(err)
	}
	// Another run's records stay out.
	if err := s.PutGroup(ctx, "r2", inventory.Group{ID: 5, FullPath: "other"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutProject(ctx, "r", inventory.Project{ID: 0}); err == nil {
		t.Fatal("PutProject accepted ID 0")
	}

	var groups []string
	if err := s.Groups(ctx, "r", func(g inventory.Group) error {
		groups = append(groups, fmt.Sprintf("%d:%s", g.ID, g.ScanStatus))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := "1:partial 9:partial 10:complete 100:partial 1099511627776:partial"
	if got := strings.Join(groups, " "); got != want {
		t.Fatalf("Groups = %s, want %s", got, want)
	}
	var projects []int64
	if err := s.Projects(ctx, "r", func(p inventory.Project) error {
		projects = append(projects, p.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(projects); got != "[1 9 10 100 1099511627776]" {
		t.Fatalf("Projects = %s", got)
	}

	stop := errors.New("stop")
	calls := 0
	err := s.Projects(ctx, "r", func(inventory.Project) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Projects with a failing callback = %v after %d calls, want stop after 1", err, calls)
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

func TestGetProject(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	mustCreate(t, s, newRun("get", t0))
	want := inventory.Project{ID: 42, PathWithNamespace: "g/p", ScanStatus: inventory.StatusComplete, LastActivityAt: t0, Errors: []inventory.ScanError{}}
	if err := s.PutProject(ctx, "get", want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.GetProject(ctx, "get", 42)
	if err != nil || !ok || got.PathWithNamespace != "g/p" || !got.LastActivityAt.Equal(t0) {
		t.Fatalf("GetProject(42) = %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := s.GetProject(ctx, "get", 43); err != nil || ok {
		t.Fatalf("GetProject(43) = %v, %v; want absent", ok, err)
	}
}
