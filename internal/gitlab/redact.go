package gitlab

import (
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxErrorLen bounds the text of an error message the client returns (an error body's
// message, a transport or decoding error): errors end up in the store, the exports,
// health answers and logs, so they are kept short.
const MaxErrorLen = 300

const redacted = "[REDACTED]"

// redactor removes a token from texts: as sent, and in its URL-escaped forms, since an
// echoing proxy may quote the request line.
type redactor []string

func newRedactor(token string) redactor {
	var r redactor
	for _, s := range []string{token, url.QueryEscape(token), url.PathEscape(token)} {
		if s != "" && !slices.Contains(r, s) {
			r = append(r, s)
		}
	}
	return r
}

// clean returns s without the token, cut to MaxErrorLen bytes at a rune boundary.
// Redaction comes first, so a cut never leaves a token's prefix that redaction missed.
func (r redactor) clean(s string) string {
	for _, t := range r {
		s = strings.ReplaceAll(s, t, redacted)
	}
	return cut(s, MaxErrorLen)
}

// cut shortens s to at most n bytes, ending in "…" when it cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "…"
	i := n - len(more)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + more
}

// cleanError is an error whose text was redacted and cut, wrapping the original so that
// errors.Is and errors.As still classify it (timeouts, budget, context).
type cleanError struct {
	msg string
	err error
}

func (e *cleanError) Error() string { return e.msg }
func (e *cleanError) Unwrap() error { return e.err }
