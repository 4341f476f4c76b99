// Package s3sink stores export files in S3: the serverless exporter writes the same
// files as local mode to s3://<bucket>/<prefix>runs/<run-id>/… and <prefix>latest/….
package s3sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/gl2gh/discovery-agent/internal/export"
)

// Upload sizes. A file up to MultipartThreshold goes in one PutObject; a larger one
// in parts of at least PartSize, up to partConcurrency at once, each streamed from its
// section of the file: memory holds no part, and a 2 GB export uploads at several
// times one stream's speed. S3 allows 10,000 parts of at most 5 GiB.
const (
	MultipartThreshold = 64 << 20
	PartSize           = 16 << 20
	partConcurrency    = 4
	maxParts           = 10_000
	maxPartSize        = 5 << 30
	// maxCopySize is the largest object one CopyObject may copy.
	maxCopySize = 5 << 30
)

// ErrTooLarge is returned for a body over S3's object size limit.
var ErrTooLarge = errors.New("export file larger than S3 allows (10,000 parts of 5 GiB)")

// Sink writes export files to one bucket under a key prefix. It implements export.Sink
// and is safe for concurrent use.
type Sink struct {
	client *s3.Client
	bucket string
	prefix string
}

// New returns a sink writing name to s3://bucket/<prefix><name>. prefix is used as
// given: end it with "/" to make it a folder.
func New(client *s3.Client, bucket, prefix string) *Sink {
	return &Sink{client: client, bucket: bucket, prefix: prefix}
}

// Put stores body as the object prefix+name, encrypted with SSE-S3 (AES256). S3
// replaces an object as a whole, so readers see the old file or the new one. A body
// that cannot seek is first spooled to a temporary file, because PutObject needs the
// length up front; a seekable body (the exporter's files) is sent from its current
// offset as is. Neither is held in memory.
func (s *Sink) Put(ctx context.Context, name, contentType string, body io.Reader) (err error) {
	if err := export.CheckName(name); err != nil {
		return err
	}
	key := s.prefix + name
	rs, size, cleanup, err := seekable(ctx, body)
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", s.bucket, key, err)
	}
	defer func() {
		if cerr := cleanup(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("put s3://%s/%s: remove spool: %w", s.bucket, key, cerr))
		}
	}()
	if ra, ok := rs.(io.ReaderAt); ok && size > MultipartThreshold {
		off, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("put s3://%s/%s: %w", s.bucket, key, err)
		}
		return s.multipart(ctx, key, contentType, io.NewSectionReader(ra, off, size))
	}
	if size > MultipartThreshold {
		// Not a file: spool it, then upload it in parts.
		f, n, clean, err := spool(ctx, rs)
		if err != nil {
			return fmt.Errorf("put s3://%s/%s: %w", s.bucket, key, err)
		}
		defer func() { err = errors.Join(err, clean()) }()
		return s.multipart(ctx, key, contentType, io.NewSectionReader(f, 0, n))
	}
	in := &s3.PutObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(key),
		Body:                 rs,
		ContentLength:        aws.Int64(size),
		ServerSideEncryption: types.ServerSideEncryptionAes256,
	}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", s.bucket, key, err)
	}
	return nil
}

// seekable returns body as a ReadSeeker with its remaining length, spooling it to a
// temporary file when it cannot seek. cleanup removes the spool.
func seekable(ctx context.Context, body io.Reader) (rs io.ReadSeeker, size int64, cleanup func() error, err error) {
	// A ReadSeeker that cannot seek (a pipe behind *os.File) fails the first Seek and
	// is read as a stream.
	if rs, ok := body.(io.ReadSeeker); ok {
		if cur, err := rs.Seek(0, io.SeekCurrent); err == nil {
			end, err := rs.Seek(0, io.SeekEnd)
			if err == nil {
				_, err = rs.Seek(cur, io.SeekStart)
			}
			if err != nil {
				return nil, 0, nil, fmt.Errorf("measure body: %w", err)
			}
			return rs, end - cur, func() error { return nil }, nil
		}
	}
	return spool(ctx, body)
}

// spool copies body to a temporary file, positioned at its start.
func spool(ctx context.Context, body io.Reader) (f *os.File, size int64, cleanup func() error, err error) {
	f, err = os.CreateTemp("", "s3sink-*")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("spool: %w", err)
	}
	cleanup = func() error { return errors.Join(f.Close(), os.Remove(f.Name())) }
	n, err := io.Copy(f, ctxReader{ctx, body})
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return nil, 0, nil, errors.Join(fmt.Errorf("spool: %w", err), cleanup())
	}
	return f, n, cleanup, nil
}

// ctxReader stops a copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Get returns the object prefix+name, for tests and harnesses: it reads it whole.
// A missing object's error wraps *types.NoSuchKey.
func (s *Sink) Get(ctx context.Context, name string) ([]byte, error) {
	key := s.prefix + name
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", s.bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", s.bucket, key, err)
	}
	return b, nil
}

// List returns the names (without the sink's prefix) of the objects under prefix, in
// key order, for tests and harnesses.
func (s *Sink) List(ctx context.Context, prefix string) ([]string, error) {
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	var names []string
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.bucket, s.prefix+prefix, err)
		}
		for _, o := range page.Contents {
			names = append(names, strings.TrimPrefix(aws.ToString(o.Key), s.prefix))
		}
	}
	return names, nil
}
