package gitlab

import (
	"net/http"
	"net/url"
	"strings"
)

// sanitizeLinks rewrites the Link header into entries of the one shape client-go's
// parser handles, <uri>; rel="name", and drops every entry that is not well formed.
// client-go v1.46.0 indexes past a split on a Link entry whose second parameter has no
// "=" (populateLinkValues in gitlab.go): a hostile or broken server must not reach it.
func sanitizeLinks(h http.Header) {
	vals := h.Values("Link")
	if len(vals) == 0 {
		return
	}
	var out []string
	for _, v := range vals {
		out = append(out, parseLinks(v)...)
	}
	if len(out) == 0 {
		h.Del("Link")
		return
	}
	h.Set("Link", strings.Join(out, ", "))
}

// maxLinkEntries bounds the entries kept: GitLab sends at most first, prev, next, last.
const maxLinkEntries = 8

// parseLinks returns the well-formed entries of one Link header value (RFC 8288), each
// as <uri>; rel="name".
func parseLinks(v string) []string {
	var out []string
	for len(out) < maxLinkEntries {
		v = strings.TrimLeft(v, " \t,")
		if v == "" {
			break
		}
		var entry string
		entry, v = splitUnquoted(v, ',')
		uri, params, ok := strings.Cut(entry, ">")
		if !ok || !strings.HasPrefix(uri, "<") || !validLinkURI(uri[1:]) {
			continue
		}
		if rel := relParam(params); rel != "" {
			out = append(out, "<"+uri[1:]+`>; rel="`+rel+`"`)
		}
	}
	return out
}

// relParam returns the rel parameter of an entry's parameters (";rel=next; x=y"), ""
// when it is missing or not a single plain token.
func relParam(params string) string {
	params = strings.TrimSpace(params)
	for params != "" {
		if params[0] != ';' {
			return "" // text between the URI and the first parameter
		}
		var p string
		p, params = splitUnquoted(params[1:], ';')
		if params != "" {
			params = ";" + params
		}
		name, val, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "rel") {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		if !isToken(val) {
			return ""
		}
		return strings.ToLower(val)
	}
	return ""
}

// splitUnquoted splits s at the first sep outside a quoted string: before, and what
// follows the separator ("" when there is none).
func splitUnquoted(s string, sep byte) (before, after string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// validLinkURI accepts a URI that needs no quoting in a Link header: no separators
// client-go splits on, no spaces or controls, and one url.Parse accepts.
func validLinkURI(s string) bool {
	if s == "" || len(s) > 8<<10 || strings.ContainsAny(s, ",;<>\"\\") {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	_, err := url.Parse(s)
	return err == nil
}
