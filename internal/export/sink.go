package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Sink stores export files by relative name, e.g. "runs/<run-id>/projects.csv" or
// "latest/projects.csv". A Put replaces the named file as a whole: readers see the old
// file or the new one, never a mix.
type Sink interface {
	Put(ctx context.Context, name, contentType string, body io.Reader) error
}

// Copier is a Sink that can copy a file it holds to another name on its side (S3's
// CopyObject): Write fills latest/ with it instead of storing every file again. A copy
// it cannot make returns an error wrapping ErrCopyUnsupported, and Write stores the
// file instead.
type Copier interface {
	Copy(ctx context.Context, src, dst string) error
}

// ErrCopyUnsupported marks a copy the sink cannot make (too large for one request).
var ErrCopyUnsupported = errors.New("copy not supported for this file")

// DirSink stores export files under a directory. Each file is written to a temporary
// file in its destination directory, synced and renamed over the destination, so a
// reader never sees a partial file. Directories are created as needed.
type DirSink struct {
	Dir string
}

// Put writes body to Dir/name atomically. name must be a relative, slash-separated
// path that stays inside Dir.
func (s DirSink) Put(ctx context.Context, name, contentType string, body io.Reader) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := CheckName(name); err != nil {
		return err
	}
	dst := filepath.Join(s.Dir, filepath.FromSlash(name))
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := writeFile(tmp, ctxReader{ctx, body}); err != nil {
		return errors.Join(fmt.Errorf("put %s: %w", name, err), os.Remove(tmp.Name()))
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return errors.Join(fmt.Errorf("put %s: %w", name, err), os.Remove(tmp.Name()))
	}
	return nil
}

// writeFile copies r into f, makes it world-readable like any other output file, and
// syncs it so that the rename that follows cannot publish an empty file after a crash.
func writeFile(f *os.File, r io.Reader) error {
	_, err := io.Copy(f, r)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// CheckName enforces the names every Sink takes: a clean, relative, slash-separated
// file name that stays inside the sink ("runs/<id>/projects.csv").
func CheckName(name string) error {
	if name == "" || strings.HasSuffix(name, "/") || path.Clean(name) != name || !filepath.IsLocal(filepath.FromSlash(name)) {
		return fmt.Errorf("put %q: not a clean relative file name inside the sink", name)
	}
	return nil
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
