package s3sink_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/mototest"
	"github.com/gl2gh/discovery-agent/internal/s3sink"
)

var _ export.Sink = (*s3sink.Sink)(nil)

func TestMain(m *testing.M) { mototest.Main(m) }

func newSink(t *testing.T, prefix string) (*s3sink.Sink, *s3.Client, string) {
	t.Helper()
	client := mototest.Shared(t).S3()
	bucket := mototest.Name("exports")
	if err := mototest.CreateBucket(context.Background(), client, bucket); err != nil {
		t.Fatal(err)
	}
	return s3sink.New(client, bucket, prefix), client, bucket
}

// stream hides every method but Read, so the sink must spool.
type stream struct{ r io.Reader }

func (s stream) Read(p []byte) (int, error) { return s.r.Read(p) }

func TestPut(t *testing.T) {
	sink, client, bucket := newSink(t, "discovery/")
	ctx := context.Background()
	big := bytes.Repeat([]byte("project,row\n"), 700_000) // 8.4 MB

	file := filepath.Join(t.TempDir(), "projects.csv")
	if err := os.WriteFile(file, big, 0o600); err != nil {
		t.Fatal(err)
	}
	spool := t.TempDir()
	t.Setenv("TMPDIR", spool) // where the sink spools streams
	tests := []struct {
		name        string
		body        func(t *testing.T) io.Reader
		contentType string
		want        []byte
	}{
		{"seekable", func(*testing.T) io.Reader { return bytes.NewReader([]byte(`{"run_id":"r1"}`)) }, "application/json", []byte(`{"run_id":"r1"}`)},
		{"file, as the exporter passes", func(t *testing.T) io.Reader {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}, "text/csv", big},
		{"seekable from an offset", func(t *testing.T) io.Reader {
			r := bytes.NewReader([]byte("skip:keep"))
			if _, err := r.Seek(5, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			return r
		}, "text/plain", []byte("keep")},
		{"stream, spooled", func(*testing.T) io.Reader { return stream{bytes.NewReader(big)} }, "text/csv", big},
		{"pipe, spooled", func(*testing.T) io.Reader {
			pr, pw := io.Pipe()
			go func() {
				for chunk := range slices.Chunk(big, 64<<10) {
					if _, err := pw.Write(chunk); err != nil {
						return
					}
				}
				pw.Close()
			}()
			return pr
		}, "text/csv", big},
		{"empty", func(*testing.T) io.Reader { return stream{strings.NewReader("")} }, "", []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "runs/r1/" + strings.ReplaceAll(tt.name, " ", "-")
			if err := sink.Put(ctx, name, tt.contentType, tt.body(t)); err != nil {
				t.Fatal(err)
			}
			got, err := sink.Get(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("stored %d bytes, want %d", len(got), len(tt.want))
			}
			head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("discovery/" + name)})
			if err != nil {
				t.Fatalf("the object is not at prefix+name: %v", err)
			}
			if head.ServerSideEncryption != types.ServerSideEncryptionAes256 {
				t.Errorf("encryption = %q, want AES256", head.ServerSideEncryption)
			}
			if tt.contentType != "" && aws.ToString(head.ContentType) != tt.contentType {
				t.Errorf("content type = %q, want %q", aws.ToString(head.ContentType), tt.contentType)
			}
			if aws.ToInt64(head.ContentLength) != int64(len(tt.want)) {
				t.Errorf("content length = %d, want %d", aws.ToInt64(head.ContentLength), len(tt.want))
			}
		})
	}

	if left, err := os.ReadDir(spool); err != nil || len(left) > 0 {
		t.Fatalf("spool files left behind: %v, %v", left, err)
	}

	// A second Put replaces the object.
	if err := sink.Put(ctx, "latest/summary.json", "application/json", strings.NewReader("old")); err != nil {
		t.Fatal(err)
	}
	if err := sink.Put(ctx, "latest/summary.json", "application/json", strings.NewReader("new")); err != nil {
		t.Fatal(err)
	}
	if got, err := sink.Get(ctx, "latest/summary.json"); err != nil || string(got) != "new" {
		t.Fatalf("after replacing: %q, %v", got, err)
	}
}

func TestPutFailures(t *testing.T) {
	sink, _, _ := newSink(t, "p/")
	spool := t.TempDir()
	t.Setenv("TMPDIR", spool)
	boom := errors.New("disk on fire")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		file    string
		body    io.Reader
		wantErr error // nil: any error
	}{
		{"empty name", context.Background(), "", strings.NewReader("x"), nil},
		{"absolute", context.Background(), "/etc/passwd", strings.NewReader("x"), nil},
		{"climbs out", context.Background(), "runs/../../x", strings.NewReader("x"), nil},
		{"folder", context.Background(), "runs/", strings.NewReader("x"), nil},
		{"body fails", context.Background(), "runs/r1/bad.csv", stream{io.MultiReader(strings.NewReader("partial"), iotestErr{boom})}, boom},
		{"canceled", canceled, "runs/r1/late.csv", stream{strings.NewReader("x")}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sink.Put(tt.ctx, tt.file, "text/plain", tt.body)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("Put = %v, want an error (%v)", err, tt.wantErr)
			}
		})
	}
	// Nothing half-written remains.
	if left, err := os.ReadDir(spool); err != nil || len(left) > 0 {
		t.Fatalf("spool files left behind: %v, %v", left, err)
	}
	names, err := sink.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Fatalf("failed Puts left objects %v", names)
	}
	var missing *types.NoSuchKey
	if _, err := sink.Get(context.Background(), "runs/r1/bad.csv"); !errors.As(err, &missing) {
		t.Fatalf("Get of a failed Put = %v, want NoSuchKey", err)
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

func TestList(t *testing.T) {
	sink, client, bucket := newSink(t, "exports/")
	ctx := context.Background()
	names := []string{"runs/r2/projects.csv", "latest/summary.json", "runs/r1/projects.csv", "runs/r1/summary.json"}
	for _, n := range names {
		if err := sink.Put(ctx, n, "text/plain", strings.NewReader(n)); err != nil {
			t.Fatal(err)
		}
	}
	// An object outside the sink's prefix is not the sink's.
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("other/runs/r1/x"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"latest/summary.json", "runs/r1/projects.csv", "runs/r1/summary.json", "runs/r2/projects.csv"}},
		{"runs/r1/", []string{"runs/r1/projects.csv", "runs/r1/summary.json"}},
		{"nothing/", nil},
	}
	for _, tt := range tests {
		got, err := sink.List(ctx, tt.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) = %v, want %v", tt.prefix, got, tt.want)
		}
	}
}

func TestMissingBucket(t *testing.T) {
	sink := s3sink.New(mototest.Shared(t).S3(), mototest.Name("absent"), "")
	err := sink.Put(context.Background(), "summary.json", "application/json", strings.NewReader("{}"))
	var nsb *types.NoSuchBucket
	if err == nil || (!errors.As(err, &nsb) && !strings.Contains(err.Error(), "NoSuchBucket")) {
		t.Fatalf("Put to a missing bucket = %v, want NoSuchBucket", err)
	}
}

// TestMultipartAndCopy: a file over MultipartThreshold arrives whole through a
// multipart upload (from a file and from a stream, with parts of PartSize), encrypted
// and typed; Copy puts a server-side copy under another name.
func TestMultipartAndCopy(t *testing.T) {
	sink, client, bucket := newSink(t, "discovery/")
	ctx := context.Background()
	big := make([]byte, s3sink.MultipartThreshold+s3sink.PartSize/2+123)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	file := filepath.Join(t.TempDir(), "projects.jsonl")
	if err := os.WriteFile(file, big, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, body := range map[string]io.Reader{"runs/r1/projects.jsonl": f, "runs/r1/streamed.jsonl": stream{bytes.NewReader(big)}} {
		if err := sink.Put(ctx, name, "application/x-ndjson", body); err != nil {
			t.Fatal(err)
		}
		got, err := sink.Get(ctx, name)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("%s: stored %d bytes (%v), want the %d put", name, len(got), err, len(big))
		}
		head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("discovery/" + name), PartNumber: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(head.PartsCount) != 5 || head.ServerSideEncryption != types.ServerSideEncryptionAes256 {
			t.Errorf("%s: %d parts, encryption %q; want 5 parts of 16 MiB, AES256", name, aws.ToInt32(head.PartsCount), head.ServerSideEncryption)
		}
	}
	if err := sink.Copy(ctx, "runs/r1/projects.jsonl", "latest/projects.jsonl"); err != nil {
		t.Fatal(err)
	}
	if got, err := sink.Get(ctx, "latest/projects.jsonl"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("copy: %d bytes, %v", len(got), err)
	}
	if err := sink.Copy(ctx, "runs/r1/missing.csv", "latest/missing.csv"); err == nil {
		t.Error("copying a missing object succeeded")
	}
}
