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

// redactor removes tokens from texts: as sent, and in their URL-escaped forms, since an
// echoing proxy may quote the request line. It knows the client's token and, through
// more, the tokens a transport below the client may send instead (a rotated one).
type redactor struct {
	forms []string
	more  func() []string
}

func newRedactor(token string, more func() []string) redactor {
	return redactor{forms: longestFirst(tokenForms(nil, token)), more: more}
}

// longestFirst sorts forms so that a token containing another is redacted whole.
func longestFirst(forms []string) []string {
	slices.SortStableFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return forms
}

// tokenForms appends to forms the forms of token not in it yet.
func tokenForms(forms []string, token string) []string {
	for _, s := range []string{token, url.QueryEscape(token), url.PathEscape(token)} {
		if s != "" && !slices.Contains(forms, s) {
			forms = append(forms, s)
		}
	}
	return forms
}

// clean returns s without the tokens, cut to MaxErrorLen bytes at a rune boundary.
// Redaction comes first, so a cut never leaves a token's prefix that redaction missed.
func (r redactor) clean(s string) string {
	forms := r.forms
	if r.more != nil {
		forms = slices.Clone(forms)
		for _, t := range r.more() {
			forms = tokenForms(forms, t)
		}
		longestFirst(forms)
	}
	for _, t := range forms {
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
