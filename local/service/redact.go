package service

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxAnswerText bounds the error text an answer carries: enough for a reason, too little
// for an echoed error page.
const maxAnswerText = 300

// redacted replaces a secret in an answer or a log line.
const redacted = "[REDACTED]"

// minSecret is the shortest value treated as a secret: shorter ones would blank out
// ordinary words (tests use short tokens; real ones are 20 characters or more).
const minSecret = 4

// redactor takes secrets out of the text the service shows: error messages of the
// GitLab and store checks can echo request headers, and with them the token.
type redactor struct{ secrets []string }

func newRedactor(secrets ...string) redactor {
	var r redactor
	for _, s := range secrets {
		if len(s) < minSecret {
			continue
		}
		r.secrets = append(r.secrets, s)
		// An echoed URL or form carries it escaped.
		if q := url.QueryEscape(s); q != s {
			r.secrets = append(r.secrets, q)
		}
	}
	return r
}

// text returns s without the secrets, cut to maxAnswerText bytes. It redacts before it
// cuts, so a cut never leaves a recognisable prefix of a secret behind.
func (r redactor) text(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return truncate(s, maxAnswerText)
}

// err is text of err's message; "" for nil.
func (r redactor) err(err error) string {
	if err == nil {
		return ""
	}
	return r.text(err.Error())
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "… (cut)"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
