package s3sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/gl2gh/discovery-agent/internal/export"
)

// multipart uploads body as the object key in parts, several at once. Readers see
// the object only when CompleteMultipartUpload succeeds; a failed upload is aborted
// (the bucket's lifecycle rule removes any that an abort missed after a day).
func (s *Sink) multipart(ctx context.Context, key, contentType string, body *io.SectionReader) (err error) {
	size := body.Size()
	part := max(int64(PartSize), (size+maxParts-1)/maxParts)
	if part > maxPartSize {
		return fmt.Errorf("put s3://%s/%s: %d bytes: %w", s.bucket, key, size, ErrTooLarge)
	}
	in := &s3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(key), ServerSideEncryption: types.ServerSideEncryptionAes256}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	up, err := s.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: start multipart upload: %w", s.bucket, key, err)
	}
	defer func() {
		if err != nil {
			_, aerr := s.client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{
				Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: up.UploadId})
			if aerr != nil {
				err = errors.Join(err, fmt.Errorf("abort multipart upload: %w", aerr))
			}
		}
	}()
	var (
		mu    sync.Mutex
		parts []types.CompletedPart
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(partConcurrency)
	for n, off := int32(1), int64(0); off < size; n, off = n+1, off+part {
		g.Go(func() error {
			length := min(part, size-off)
			out, err := s.client.UploadPart(gctx, &s3.UploadPartInput{
				Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: up.UploadId, PartNumber: aws.Int32(n),
				Body: io.NewSectionReader(body, off, length), ContentLength: aws.Int64(length),
			})
			if err != nil {
				return fmt.Errorf("part %d: %w", n, err)
			}
			mu.Lock()
			parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", s.bucket, key, err)
	}
	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
	if _, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		return fmt.Errorf("put s3://%s/%s: complete multipart upload: %w", s.bucket, key, err)
	}
	return nil
}

// Copy copies the object src to dst inside the bucket (both names relative to the
// prefix), on S3's side: the exporter writes latest/ this way instead of uploading
// every file a second time. It implements export.Copier.
func (s *Sink) Copy(ctx context.Context, src, dst string) error {
	if err := export.CheckName(dst); err != nil {
		return err
	}
	from, to := s.prefix+src, s.prefix+dst
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(from)})
	if err != nil {
		return fmt.Errorf("copy s3://%s/%s: %w", s.bucket, from, err)
	}
	if aws.ToInt64(head.ContentLength) > maxCopySize {
		return fmt.Errorf("copy s3://%s/%s: %d bytes: %w", s.bucket, from, aws.ToInt64(head.ContentLength), export.ErrCopyUnsupported)
	}
	if _, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(to), CopySource: aws.String(s.bucket + "/" + escapeKey(from)),
		ServerSideEncryption: types.ServerSideEncryptionAes256,
	}); err != nil {
		return fmt.Errorf("copy s3://%s/%s to %s: %w", s.bucket, from, to, err)
	}
	return nil
}

// escapeKey URL-encodes each segment of an object key, as CopySource wants it.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}
