package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/gl2gh/discovery-agent/internal/dynamostore"
	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/mototest"
	"github.com/gl2gh/discovery-agent/internal/s3sink"
)

// TestExportScale measures the exporter at EXPORT_SCALE_PROJECTS projects (e.g.
// 100000) on moto: DynamoDB as the store, S3 as the sink, the real export.Write. It
// takes minutes, so it runs only when asked; docs/DEPLOY.md ("Exporter at scale")
// quotes its figures. It logs the read time (sequential and parallel), the whole
// export's time, the bytes written, the peak heap and the peak of the temporary
// directory.
func TestExportScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EXPORT_SCALE_PROJECTS"))
	if n <= 0 {
		t.Skip("set EXPORT_SCALE_PROJECTS=100000 to measure the exporter at scale")
	}
	ctx := context.Background()
	moto, err := mototest.StartProcess(ctx)
	if err != nil {
		skipOrFail(t, err)
	}
	defer moto.Stop()
	db := moto.DynamoDB()
	table, bucket := mototest.Name("store"), mototest.Name("exports")
	if err := mototest.CreateTables(ctx, db, table, mototest.Name("budget")); err != nil {
		t.Fatal(err)
	}
	s3c := moto.S3(func(o *s3.Options) { o.UsePathStyle = true })
	if err := mototest.CreateBucket(ctx, s3c, bucket); err != nil {
		t.Fatal(err)
	}
	// The export without the store: the same records generated in order, written and
	// uploaded to S3 on moto. This is the exporter's own cost.
	measureWrite(ctx, t, "generated records", generated{n: n}, s3sink.New(s3c, bucket, "gen/"), n, s3c, bucket, "gen/")
	// And without S3: the writing alone.
	measureWrite(ctx, t, "generated records, to a sink that discards", generated{n: n}, discard{}, n, nil, "", "")

	// The store's reads on moto. moto's Query reads the whole partition per call, so
	// its time grows with the square of the run; past 20,000 projects it takes hours
	// and says nothing of DynamoDB's: EXPORT_SCALE_FULL=1 asks for it anyway.
	full := os.Getenv("EXPORT_SCALE_FULL") == "1"
	if n > 20_000 && !full {
		t.Logf("skipping the DynamoDB reads on moto past 20,000 projects (EXPORT_SCALE_FULL=1 runs them)")
		return
	}
	st := dynamostore.New(db, table, dynamostore.Options{})
	run := inventory.Run{ID: "scale-run", StartedAt: time.Now().UTC(), GitLabURL: "https://gitlab.example.com"}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	itemBytes := seedProjects(ctx, t, db, table, run.ID, n)
	t.Logf("seeded %d projects and %d groups, %.0f bytes per project item, in %s", n, n/20, float64(itemBytes)/float64(n), time.Since(start).Round(time.Second))

	for _, par := range []int{1, dynamostore.DefaultReadParallelism} {
		st := dynamostore.New(db, table, dynamostore.Options{ReadParallelism: par})
		start = time.Now()
		count := 0
		var last int64
		if err := st.Projects(ctx, run.ID, func(p inventory.Project) error {
			if p.ID <= last {
				return fmt.Errorf("project %d after %d: out of order", p.ID, last)
			}
			last = p.ID
			count++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if count != n {
			t.Fatalf("read %d projects, want %d", count, n)
		}
		d := time.Since(start)
		t.Logf("read %d projects with %d parallel readers: %s (%.3f ms per project)", n, par, d.Round(time.Millisecond), float64(d.Microseconds())/1000/float64(n))
	}

	if full || n <= 20_000 {
		measureWrite(ctx, t, "DynamoDB on moto", dynamostore.New(db, table, dynamostore.Options{ReadParallelism: dynamostore.DefaultReadParallelism}),
			s3sink.New(s3c, bucket, "full/"), n, s3c, bucket, "full/")
	}
}

// measureWrite runs export.Write of a run of n projects from src to sink and logs its
// time, the objects and the peaks of heap and temporary files.
func measureWrite(ctx context.Context, t *testing.T, what string, src export.Source, sink export.Sink, n int, s3c *s3.Client, bucket, prefix string) {
	t.Helper()
	run := inventory.Run{ID: "scale-run", StartedAt: time.Now().UTC(), GitLabURL: "https://gitlab.example.com"}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	runtime.GC()
	peakHeap, peakTmp := watch(tmp)
	start := time.Now()
	sum, err := export.Write(ctx, src, sink, run, nil)
	d := time.Since(start)
	heap, tmpBytes := peakHeap(), peakTmp()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Projects != n {
		t.Errorf("summary counts %d projects, want %d", sum.Projects, n)
	}
	var total int64
	for _, dir := range []string{export.RunPrefix(run.ID), export.LatestPrefix} {
		if s3c == nil {
			break
		}
		prefix := prefix + dir
		out, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out.Contents {
			total += aws.ToInt64(o.Size)
			t.Logf("  %s: %d bytes", aws.ToString(o.Key), aws.ToInt64(o.Size))
		}
	}
	t.Logf("export.Write of %d projects from %s: %s (%.3f ms per project); %d bytes in S3 (runs/ and latest/); peak heap %d MB; peak temporary files %d MB",
		n, what, d.Round(time.Millisecond), float64(d.Microseconds())/1000/float64(n), total, heap>>20, tmpBytes>>20)
}

// seedProjects writes n projects of about 2 KB and n/20 groups with BatchWriteItem,
// eight writers at once, and returns the bytes of the project items' data.
func seedProjects(ctx context.Context, t *testing.T, db *dynamodb.Client, table, runID string, n int) int64 {
	t.Helper()
	var g errgroup.Group
	g.SetLimit(8)
	var bytes atomic.Int64
	groups := max(n/20, 1)
	put := func(items []map[string]ddbtypes.AttributeValue) error {
		reqs := make([]ddbtypes.WriteRequest, len(items))
		for i, it := range items {
			reqs[i] = ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: it}}
		}
		in := map[string][]ddbtypes.WriteRequest{table: reqs}
		for len(in) > 0 {
			out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: in})
			if err != nil {
				return err
			}
			in = out.UnprocessedItems
		}
		return nil
	}
	item := func(sk, data string) map[string]ddbtypes.AttributeValue {
		return map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: "RUN#" + runID}, "sk": &ddbtypes.AttributeValueMemberS{Value: sk},
			"data": &ddbtypes.AttributeValueMemberS{Value: data},
		}
	}
	for start := 1; start <= n; start += 25 {
		g.Go(func() error {
			var items []map[string]ddbtypes.AttributeValue
			for id := start; id < min(start+25, n+1); id++ {
				b, err := jsonOf(scaleProject(int64(id), int64(id%groups+1)))
				if err != nil {
					return err
				}
				bytes.Add(int64(len(b)))
				items = append(items, item(fmt.Sprintf("PROJECT#%020d", id), string(b)))
			}
			return put(items)
		})
	}
	for start := 1; start <= groups; start += 25 {
		g.Go(func() error {
			var items []map[string]ddbtypes.AttributeValue
			for id := start; id < min(start+25, groups+1); id++ {
				b, err := jsonOf(inventory.Group{ID: int64(id), FullPath: fmt.Sprintf("estate/team-%d", id), Projects: 20, ScanStatus: inventory.StatusComplete})
				if err != nil {
					return err
				}
				items = append(items, item(fmt.Sprintf("GROUP#%020d", id), string(b)))
			}
			return put(items)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return bytes.Load()
}

// watch samples the heap in use and the size of dir every 20 ms until its results are
// read.
func watch(dir string) (peakHeap, peakDir func() uint64) {
	var mu sync.Mutex
	var heap, size uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			var s uint64
			_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if info, err := d.Info(); err == nil {
						s += uint64(info.Size())
					}
				}
				return nil
			})
			mu.Lock()
			heap, size = max(heap, ms.HeapInuse), max(size, s)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	finish := func() { once.Do(func() { close(stop); <-done }) }
	return func() uint64 { finish(); mu.Lock(); defer mu.Unlock(); return heap },
		func() uint64 { finish(); mu.Lock(); defer mu.Unlock(); return size }
}

func jsonOf(v any) ([]byte, error) { return json.Marshal(v) }

// scaleProject is a fully profiled project of about 2 KB of JSON, as the worker
// stores one.
func scaleProject(id, group int64) inventory.Project {
	i := func(v int64) *int64 { return &v }
	b := func(v bool) *bool { return &v }
	path := fmt.Sprintf("estate/team-%d/service-%d", group, id)
	return inventory.Project{
		ID: id, PathWithNamespace: path, Name: fmt.Sprintf("service-%d", id), GroupID: group,
		GroupFullPath: fmt.Sprintf("estate/team-%d", group), Visibility: "private", DefaultBranch: "main",
		CreatedAt: time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC), LastActivityAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		WebURL:     "https://gitlab.example.com/" + path,
		Statistics: &inventory.Statistics{RepositorySize: id * 1000, StorageSize: id * 1500, CommitCount: id % 5000},
		Counts: inventory.Counts{Branches: i(12), Tags: i(30), MergeRequests: i(400), OpenMergeRequests: i(3), Issues: i(120),
			OpenIssues: i(10), Pipelines: i(2000), Releases: i(5), Webhooks: i(1), ProtectedBranches: i(2), CIVariables: i(8), Environments: i(3)},
		Features: inventory.Features{HasCI: b(true), UsesLFS: b(false), HasSubmodules: b(false), HasCodeowners: b(true)},
		Readiness: &inventory.Readiness{Category: "needs_attention", Tier: "ci", Score: 40, SizeClass: "small", EffortHours: 4, Effort: "S",
			Path: "mirror", Findings: []inventory.Finding{
				{Code: "ci_pipeline", Severity: "warning", Tier: "ci", Message: "The project runs GitLab CI pipelines (.gitlab-ci.yml); they do not run on GitHub and need rewriting as GitHub Actions workflows.", Remediation: "Convert .gitlab-ci.yml with GitHub Actions Importer (gh actions-importer) and review the generated workflows before the cut-over."},
				{Code: "webhooks", Severity: "warning", Tier: "settings", Message: "The project has webhooks; they are not migrated and their receivers expect GitLab's payloads.", Remediation: "Recreate the webhooks on GitHub and update each receiver to GitHub's event payloads and signature header."},
				{Code: "ci_variables", Severity: "warning", Tier: "ci", Message: "The project defines CI/CD variables; their values are not migrated.", Remediation: "Recreate them as GitHub Actions secrets or variables."},
			}},
		ScanStatus: inventory.StatusComplete, NamespaceKind: "group", LastProfiledAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
	}
}

// generated is an export.Source of n scaleProjects and n/20 groups, made as they are
// read: nothing is held.
type generated struct{ n int }

func (g generated) Groups(_ context.Context, _ string, fn func(inventory.Group) error) error {
	for id := range int64(max(g.n/20, 1)) {
		if err := fn(inventory.Group{ID: id + 1, FullPath: fmt.Sprintf("estate/team-%d", id+1), Projects: 20, ScanStatus: inventory.StatusComplete}); err != nil {
			return err
		}
	}
	return nil
}

func (g generated) Projects(_ context.Context, _ string, fn func(inventory.Project) error) error {
	groups := int64(max(g.n/20, 1))
	for id := int64(1); id <= int64(g.n); id++ {
		if err := fn(scaleProject(id, id%groups+1)); err != nil {
			return err
		}
	}
	return nil
}

func (generated) APICalls(context.Context, string) (int64, error) { return 0, nil }

// discard is a sink that reads each file and keeps nothing.
type discard struct{}

func (discard) Put(_ context.Context, _, _ string, body io.Reader) error {
	_, err := io.Copy(io.Discard, body)
	return err
}
