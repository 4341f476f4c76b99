package dynamostore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gl2gh/discovery-agent/internal/dynamostore"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/mototest"
)

func TestLastSucceeded(t *testing.T) {
	s, _, _ := newStore(t, dynamostore.Options{})
	ctx := context.Background()
	// Each step adds a run and says which run is then the newest succeeded one.
	steps := []struct {
		id      string
		started time.Time
		status  string
		want    string
	}{
		{"", time.Time{}, "", ""}, // no runs at all
		{"a", t0, inventory.RunSucceeded, "a"},
		{"b", t0.Add(500 * time.Millisecond), inventory.RunSucceeded, "b"},
		{"c", t0.Add(time.Second), inventory.RunFailed, "b"},
		{"d", t0.Add(2 * time.Second), inventory.RunRunning, "b"},
	}
	for _, st := range steps {
		if st.id != "" {
			run := newRun(st.id, st.started)
			mustCreate(t, s, run)
			if st.status != inventory.RunRunning {
				mustUpdate(t, s, run, st.status)
			}
		}
		last, ok, err := s.LastSucceeded(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := map[bool]string{true: last.ID}[ok]; got != st.want {
			t.Fatalf("after run %q: LastSucceeded = %q, want %q", st.id, got, st.want)
		}
		if ok && (last.Status != inventory.RunSucceeded || last.FinishedAt.IsZero()) {
			t.Errorf("LastSucceeded = %+v; want its status and finish time", last)
		}
	}
}

func TestPing(t *testing.T) {
	now := t0
	s, db, table := newStore(t, dynamostore.Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	for range 2 { // a second ping overwrites the first
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "HEALTH"}, "sk": &types.AttributeValueMemberS{Value: "PING"}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	exp, ok := out.Item["expires_at"].(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("health item %v has no expires_at", out.Item)
	}
	// Written at t0+1m, it expires an hour later: not with the runs' 90 days.
	if want := strconv.FormatInt(t0.Add(time.Minute+time.Hour).Unix(), 10); exp.Value != want {
		t.Errorf("expires_at = %s, want %s", exp.Value, want)
	}

	missing := dynamostore.New(db, mototest.Name("missing"), dynamostore.Options{})
	if err := missing.Ping(ctx); err == nil {
		t.Error("Ping on a table that does not exist succeeded")
	}
}
