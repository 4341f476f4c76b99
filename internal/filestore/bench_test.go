package filestore

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// benchProject is a fully profiled project, about the size a real scan stores.
func benchProject(id int64) inventory.Project {
	n := func(v int64) *int64 { return &v }
	ts := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	return inventory.Project{
		ID:                id,
		PathWithNamespace: fmt.Sprintf("acme/platform/services/service-%d", id),
		Name:              fmt.Sprintf("service-%d", id),
		GroupID:           42,
		GroupFullPath:     "acme/platform/services",
		Visibility:        "internal",
		DefaultBranch:     "main",
		CreatedAt:         ts,
		LastActivityAt:    ts.Add(300 * 24 * time.Hour),
		WebURL:            fmt.Sprintf("https://gitlab.example.com/acme/platform/services/service-%d", id),
		Statistics: &inventory.Statistics{RepositorySize: 123456789, LFSObjectsSize: 2345678, WikiSize: 34567,
			PackagesSize: 456789, ContainerRegistrySize: 567890123, JobArtifactsSize: 67890123,
			SnippetsSize: 789, UploadsSize: 890123, StorageSize: 901234567, CommitCount: 12345},
		Counts: inventory.Counts{Branches: n(57), Tags: n(230), MergeRequests: n(10000), OpenMergeRequests: n(12),
			Issues: n(842), OpenIssues: n(97), Pipelines: n(10000), Releases: n(41), Webhooks: n(3),
			ProtectedBranches: n(2), CIVariables: n(18), LowerBounds: []string{"merge_requests", "pipelines"}},
		Features: inventory.Features{HasCI: new(true), CI: &inventory.CI{Jobs: 23, Stages: 5, Includes: 2,
			Constructs: []string{"extends", "include", "needs", "rules", "services"}, Complexity: 61},
			UsesLFS: new(true), HasCodeowners: new(true), WikiEnabled: true, RegistryInUse: new(true),
			PackageTypes: []string{"maven", "npm"}, IssuesEnabled: true, MREnabled: true, JobsEnabled: true,
			RegistryEnabled: true},
		Readiness: &inventory.Readiness{Category: inventory.NeedsAttention, Score: 64, SizeClass: "large",
			Findings: []inventory.Finding{
				{Code: "lfs_not_migrated", Severity: "warning", Message: "LFS objects (2.2 MiB) are not migrated",
					Remediation: "Push LFS objects to GitHub after the migration"},
				{Code: "ci_needs_conversion", Severity: "warning", Message: "GitLab CI with 23 jobs must be converted",
					Remediation: "Convert with GitHub Actions Importer"},
			}},
		ScanStatus: inventory.StatusPartial,
		Errors:     []inventory.ScanError{{Step: "hooks", Status: 403, Message: "403 Forbidden"}},
	}
}

// BenchmarkPutProject measures one durable project upsert (one fsynced transaction)
// and the space a project takes: B/project is the database's used pages per project,
// file-B/project the file on disk (bbolt grows it ahead of need).
func BenchmarkPutProject(b *testing.B) {
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			s, path := openTemp(b)
			ctx := context.Background()
			p := benchProject(1)
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			if mode == "serial" {
				for i := range b.N {
					p.ID = int64(i + 1)
					if err := s.PutProject(ctx, "run-1", p); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					p := benchProject(1)
					for pb.Next() {
						p.ID = next.Add(1)
						if err := s.PutProject(ctx, "run-1", p); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.StopTimer()
			var used int64
			if err := s.db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
				b.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(used)/float64(b.N), "B/project")
			b.ReportMetric(float64(fi.Size())/float64(b.N), "file-B/project")
		})
	}
}

// BenchmarkProjectsStream measures reading a run's projects back, as the exporter does.
func BenchmarkProjectsStream(b *testing.B) {
	s, _ := openTemp(b)
	ctx := context.Background()
	const n = 2000
	for i := range n {
		if err := s.PutProject(ctx, "run-1", benchProject(int64(i+1))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		count := 0
		if err := s.Projects(ctx, "run-1", func(inventory.Project) error { count++; return nil }); err != nil {
			b.Fatal(err)
		}
		if count != n {
			b.Fatalf("streamed %d, want %d", count, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/project")
}

// BenchmarkQueueRoundTrip measures Send, Receive and Ack of one message.
func BenchmarkQueueRoundTrip(b *testing.B) {
	s, _ := openTemp(b)
	q := s.Queue()
	ctx := context.Background()
	b.ReportAllocs()
	for i := range b.N {
		if err := q.Send(ctx, groupMsg("run-1", int64(i+1))); err != nil {
			b.Fatal(err)
		}
		ds, err := q.Receive(ctx, 1)
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Ack(ctx, ds[0]); err != nil {
			b.Fatal(err)
		}
	}
}
