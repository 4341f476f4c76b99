package gitlabsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// call is one API request in flight.
type call struct {
	s     *Server
	w     http.ResponseWriter
	r     *http.Request
	route route
	fs    *faultState
	query url.Values

	key       uint64 // request identity for fault draws
	n         uint32 // times this request was seen before
	malformed bool   // garble this answer's JSON body

	status    int
	throttled bool
	fault     bool
	op        string // GraphQL operation name, for the stats
}

func (c *call) q() url.Values {
	if c.query == nil {
		c.query = c.r.URL.Query()
	}
	return c.query
}

func (c *call) flag(name string) bool {
	v, _ := strconv.ParseBool(c.q().Get(name))
	return v
}

func (c *call) write(status int, contentType string, body []byte) {
	c.status = status
	h := c.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	c.w.WriteHeader(status)
	_, _ = c.w.Write(body) // the client went away: nothing left to tell it
}

// json writes v; a malformed-body fault garbles a 200 answer.
func (c *call) json(status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		c.error(http.StatusInternalServerError, "message", "500 Internal Server Error: "+err.Error())
		return
	}
	if c.malformed && status == http.StatusOK {
		c.fault = true
		body = garble(body, hash2(c.key, uint64(c.n)))
	}
	c.write(status, "application/json", body)
}

// garble truncates a JSON body or puts a proxy's HTML page in front of it: either way
// no JSON decoder accepts it.
func garble(body []byte, h uint64) []byte {
	if h%2 == 0 && len(body) > 1 {
		return body[:1+int(h>>1)%(len(body)-1)]
	}
	return append([]byte("<!DOCTYPE html><html><body>upstream sent an invalid response</body></html>\n"), body...)
}

// error writes GitLab's JSON error body: {"message": "..."} or {"error": "..."}.
func (c *call) error(status int, key, msg string) {
	body, _ := json.Marshal(map[string]string{key: msg}) // a map of strings always marshals
	c.write(status, "application/json", body)
}

// html writes the kind of page a proxy answers with.
func (c *call) html(status int, title string) {
	c.write(status, "text/html; charset=utf-8", []byte("<html>\n<head><title>"+title+"</title></head>\n<body>\n<center><h1>"+title+"</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n"))
}

// throttle answers 429 like GitLab's Rack::Attack throttle: plain text, Retry-After
// and RateLimit-ResetTime besides the headers admit wrote.
func (c *call) throttle(retryAfter time.Duration, reset time.Time) {
	c.refuse(retryAfter, reset, !c.s.hideHeaders, "text/plain; charset=utf-8", []byte("Retry later\n"))
}

// endpointLimitBody is what GitLab's application rate limiter answers in the API.
var endpointLimitBody = []byte(`{"message":{"error":"This endpoint has been requested too many times. Try again later."}}`)

// throttleEndpoint answers 429 for a class's own limit like GitLab's application
// rate limiter: a JSON body and, when the limits are quiet (as GitLab.com documents
// for the Projects, Groups and Users APIs), no rate-limit header at all and a
// Retry-After of the limit's interval, as GitLab's too_many_requests! sets it.
func (c *call) throttleEndpoint(st limitState, now time.Time) {
	if c.s.quietClassLimits {
		c.refuse(st.window, st.reset, false, "application/json", endpointLimitBody)
		return
	}
	c.refuse(st.retryAfter(now), st.reset, !c.s.hideHeaders, "application/json", endpointLimitBody)
}

// refuse writes a 429. Retry-After is an HTTP header, not a rate-limit one: it stays
// when the rate-limit headers are hidden, and only NoHeaders429 drops it.
func (c *call) refuse(retryAfter time.Duration, reset time.Time, announce bool, contentType string, body []byte) {
	c.throttled = true
	h := c.w.Header()
	if c.fs.NoHeaders429 || !announce {
		dropRateLimitHeaders(h)
	}
	if !c.fs.NoHeaders429 {
		secs := int64(retryAfter / time.Second)
		if retryAfter%time.Second != 0 {
			secs++
		}
		h.Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		if announce {
			h.Set("RateLimit-ResetTime", reset.UTC().Format(http.TimeFormat))
		}
	}
	c.write(http.StatusTooManyRequests, contentType, body)
}

// maxTotal is where GitLab stops counting: above it X-Total, X-Total-Pages and the
// last link are left out.
const maxTotal = 10000

// pageParams reads page and per_page as GitLab does: defaults 1 and 20, per_page at most 100.
func (c *call) pageParams() (page, perPage int64) {
	page, _ = strconv.ParseInt(c.q().Get("page"), 10, 64)
	perPage, _ = strconv.ParseInt(c.q().Get("per_page"), 10, 64)
	if page < 1 {
		page = 1
	}
	if perPage < 1 {
		perPage = 20
	}
	return page, min(perPage, 100)
}

// paginate writes the offset-pagination headers for a list of total items and
// returns the index range of the requested page.
func (c *call) paginate(total int64) (start, end int64) {
	page, perPage := c.pageParams()
	start = min((page-1)*perPage, total)
	end = min(start+perPage, total)
	pages := max((total+perPage-1)/perPage, 1)
	h := c.w.Header()
	h.Set("X-Page", strconv.FormatInt(page, 10))
	h.Set("X-Per-Page", strconv.FormatInt(perPage, 10))
	next, prev := "", ""
	if page < pages {
		next = strconv.FormatInt(page+1, 10)
	}
	if page > 1 {
		prev = strconv.FormatInt(min(page-1, pages), 10)
	}
	h.Set("X-Next-Page", next)
	h.Set("X-Prev-Page", prev)
	links := make([]string, 0, 4)
	if prev != "" {
		links = append(links, c.link(map[string]string{"page": prev, "per_page": strconv.FormatInt(perPage, 10)}, "prev"))
	}
	if next != "" {
		links = append(links, c.link(map[string]string{"page": next, "per_page": strconv.FormatInt(perPage, 10)}, "next"))
	}
	links = append(links, c.link(map[string]string{"page": "1", "per_page": strconv.FormatInt(perPage, 10)}, "first"))
	if total <= maxTotal {
		h.Set("X-Total", strconv.FormatInt(total, 10))
		h.Set("X-Total-Pages", strconv.FormatInt(pages, 10))
		links = append(links, c.link(map[string]string{"page": strconv.FormatInt(pages, 10), "per_page": strconv.FormatInt(perPage, 10)}, "last"))
	}
	h.Set("Link", strings.Join(links, ", "))
	return start, end
}

// link renders one Link header entry: this request's URL with params replaced.
func (c *call) link(params map[string]string, rel string) string {
	q := c.r.URL.Query()
	for k, v := range params {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf("<%s://%s%s?%s>; rel=%q", scheme, c.r.Host, c.r.URL.EscapedPath(), q.Encode(), rel)
}
