package service

import (
	"crypto/sha256"
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// minAdminToken is ADMIN_TOKEN's shortest length: a bearer token is a password that a
// client may try as often as it likes.
const minAdminToken = 16

// guard admits the requests that may change state (POST /runs, the dead-letter
// redrive and purge), in this order:
//
//  1. Browsers' cross-origin requests are refused (403): a page on another site must
//     not start runs or drop dead letters through its visitor's browser.
//  2. With ADMIN_TOKEN set, the request must carry "Authorization: Bearer <token>"
//     (401 otherwise), from any address. Without it, only loopback clients are served
//     (403 naming ADMIN_TOKEN), and only when they name a loopback host and come
//     through no proxy: a reverse proxy on the host makes every client loopback, and
//     a DNS name rebound to 127.0.0.1 makes a web page one.
//  3. A body must be JSON (415 otherwise): browsers send text/plain and forms to any
//     site without asking it first, JSON only after a preflight the agent never
//     grants. A request without a body needs no Content-Type.
type guard struct {
	tokenSum [sha256.Size]byte // of ADMIN_TOKEN; compared, never the token itself
	hasToken bool
	csrf     *http.CrossOriginProtection
}

func newGuard(adminToken string) *guard {
	g := &guard{csrf: http.NewCrossOriginProtection()}
	if adminToken != "" {
		g.tokenSum, g.hasToken = sha256.Sum256([]byte(adminToken)), true
	}
	return g
}

// wrap admits requests to h as the type says.
func (g *guard) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if code, reason := g.check(r); code != 0 {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="discovery-agent"`)
			}
			writeJSON(w, code, map[string]any{"error": reason})
			return
		}
		h(w, r)
	}
}

// check returns the status and one-line reason refusing r, or 0.
func (g *guard) check(r *http.Request) (int, string) {
	if err := g.csrf.Check(r); err != nil {
		return http.StatusForbidden, "cross-origin request refused: state-changing endpoints are not for web pages"
	}
	if g.hasToken {
		if !g.bearerOK(r) {
			return http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer $ADMIN_TOKEN"
		}
	} else if !localClient(r) {
		return http.StatusForbidden, "ADMIN_TOKEN is not set: state-changing endpoints answer only loopback clients without a proxy; set ADMIN_TOKEN to allow others"
	}
	if !jsonOrEmpty(r) {
		return http.StatusUnsupportedMediaType, "a request body must be Content-Type: application/json (or send none)"
	}
	return 0, ""
}

// bearerOK compares the request's bearer token with ADMIN_TOKEN in constant time: the
// hashes have the same length whatever the client sends, so timing tells it nothing.
func (g *guard) bearerOK(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(sum[:], g.tokenSum[:]) == 1
}

// proxyHeaders are set by reverse proxies; a request carrying one came through one.
var proxyHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip"}

// localClient reports whether r comes from this host's loopback, for a loopback name,
// directly.
func localClient(r *http.Request) bool {
	for _, h := range proxyHeaders {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	return isLoopback(hostOf(r.RemoteAddr)) && isLoopback(hostOf(r.Host))
}

// hostOf returns the host of "host:port", or hostport when it has no port.
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// jsonOrEmpty reports whether r has no body and no Content-Type, or a JSON one.
func jsonOrEmpty(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return r.ContentLength == 0
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}
