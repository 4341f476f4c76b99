package dynamostore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/dynamostore"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/mototest"
)

func benchStore(b *testing.B) *dynamostore.Store {
	b.Helper()
	srv := mototest.Shared(b, mototest.Serial())
	table := mototest.Name("store")
	db := srv.DynamoDB()
	if err := mototest.CreateTables(context.Background(), db, table, mototest.Name("budget")); err != nil {
		b.Fatal(err)
	}
	return dynamostore.New(db, table, dynamostore.Options{})
}

// BenchmarkProjects streams 1,000 projects of about 2 KB: the exporter's read. Memory
// per op stays that of one Query page, not of the run.
func BenchmarkProjects(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	const n = 1000
	pad := strings.Repeat("x", 2000)
	for i := range n {
		if err := s.PutProject(ctx, "r", inventory.Project{ID: int64(i + 1), Name: pad}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		count := 0
		if err := s.Projects(ctx, "r", func(inventory.Project) error { count++; return nil }); err != nil {
			b.Fatal(err)
		}
		if count != n {
			b.Fatalf("streamed %d projects, want %d", count, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/project")
}

// BenchmarkPendingDone is one message's bookkeeping: AddPending then Done.
func BenchmarkPendingDone(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	if err := s.CreateRun(ctx, inventory.Run{ID: "r", StartedAt: t0}); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		k := "group:" + strconv.Itoa(i) + ":1"
		i++
		if err := s.AddPending(ctx, "r", k); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.Done(ctx, "r", k); err != nil {
			b.Fatal(err)
		}
	}
}
