package lambdaapp

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
)

// tokenHeader is where the GitLab client sends the token.
const tokenHeader = "Private-Token"

// rotatingToken lets a warm function survive a token rotation: the token is read from
// Secrets Manager once per cold start, so after `put-secret-value` GitLab answers 401
// to the old one. On a 401 it reads the secret again, once per token value, and when
// the secret holds a new token it repeats the request with it and uses it from then
// on. If the secret still holds the rejected token, the 401 stands and the run fails
// as before. It sits below the GitLab client's transport, which keeps the token to the
// configured origin.
type rotatingToken struct {
	next http.RoundTripper
	read func(context.Context) (string, error)
	log  *slog.Logger

	mu      sync.Mutex
	current string // the token requests carry
	checked string // a token the secret was re-read for and still held
	rereads atomic.Int64
}

func (t *rotatingToken) token() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.current
}

// tokens are what the client's errors must not show beyond the token it was built
// with: the one requests carry now.
func (t *rotatingToken) tokens() []string { return []string{t.token()} }

func (t *rotatingToken) RoundTrip(req *http.Request) (*http.Response, error) {
	sent := req.Header.Get(tokenHeader)
	if sent == "" {
		return t.next.RoundTrip(req)
	}
	cur := t.token()
	if cur != sent { // a client built before the rotation
		req = withToken(req, cur)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	fresh, ok := t.reread(req.Context(), cur)
	if !ok || (req.Body != nil && req.GetBody == nil) {
		return resp, nil
	}
	retry := withToken(req, fresh)
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return t.next.RoundTrip(retry)
}

// reread returns a token other than used, reading the secret if no request did since
// used was rejected; ok false when the secret holds used still (or cannot be read).
func (t *rotatingToken) reread(ctx context.Context, used string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.current != used {
		return t.current, true // another request found the new token
	}
	if t.checked == used {
		return "", false
	}
	t.checked = used
	t.rereads.Add(1)
	tok, err := t.read(ctx)
	if err != nil {
		t.log.Warn("GitLab rejected the token (401); reading the secret again failed", "err", err)
		return "", false
	}
	if tok == used {
		t.log.Warn("GitLab rejected the token (401) and the secret holds the same token")
		return "", false
	}
	t.current = tok
	t.log.Info("GitLab rejected the token (401); the secret holds a new one (rotated): using it")
	return tok, true
}

func withToken(req *http.Request, token string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set(tokenHeader, token)
	return r
}
