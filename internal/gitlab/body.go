package gitlab

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Caps on what the client reads of one response body, counted after decompression (the
// Go transport inflates gzip before the caps see a byte, so a gzip bomb stops at the cap
// too). Bodies are streamed through the cap, never read whole first.
const (
	// MaxBodySize bounds a JSON answer; a page of 100 projects with statistics is
	// about half a MiB. A larger body fails the request with ErrTooLarge.
	MaxBodySize = 32 << 20
	// MaxFileSize bounds a raw repository file (.gitlab-ci.yml, .gitattributes): RawFile
	// returns at most this much, truncating longer files, and reads at most one byte
	// more to know.
	MaxFileSize = 1 << 20
	// MaxErrorBodySize bounds what is read of a non-2xx answer: only its message is
	// kept, and that is cut to MaxErrorLen.
	MaxErrorBodySize = 4 << 10
)

// ErrTooLarge is a response body beyond MaxBodySize.
var ErrTooLarge = errors.New("response body too large")

// capBody wraps resp.Body so that no more than its class allows is ever read.
func capBody(resp *http.Response, endpoint string) io.ReadCloser {
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return &cappedBody{ReadCloser: resp.Body, left: MaxErrorBodySize} // truncated
	case endpoint == rawFileClass:
		return &cappedBody{ReadCloser: resp.Body, left: MaxFileSize + 1} // truncated by RawFile
	}
	b := &cappedBody{ReadCloser: resp.Body, left: MaxBodySize + 1, fail: true}
	if resp.ContentLength > MaxBodySize {
		b.left = 0 // announced too large: not a byte is read
	}
	return b
}

// cappedBody reads at most left bytes. Past them it reports EOF (a truncated body) or,
// with fail, ErrTooLarge; in both cases the rest of the stream is never read.
type cappedBody struct {
	io.ReadCloser
	left int64
	fail bool
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		if b.fail {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxBodySize)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left <= 0 && b.fail && err == nil {
		// The byte past the cap arrived: fail now rather than on the next Read.
		return n, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxBodySize)
	}
	return n, err
}
