//go:build unix

package e2e

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// runtimeAPI stands between the function's runtime and the emulator's Runtime API,
// adding what Lambda's Runtime API sends and the emulator leaves out: the
// invocation's trace header (Lambda-Runtime-Trace-Id on /runtime/invocation/next),
// from which aws-lambda-go sets _X_AMZN_TRACE_ID and the Go SDK v2 propagates it on
// every AWS request (X-Amzn-Trace-Id; SQS keeps it as AWSTraceHeader). Lambda's
// recursive loop detection counts chains with it.
type runtimeAPI struct {
	srv  *http.Server
	addr string

	mu     sync.Mutex
	target string // the emulator's Runtime API address
	trace  string // the trace of the invocation under way
}

func startRuntimeAPI() (*runtimeAPI, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runtime API proxy: %w", err)
	}
	p := &runtimeAPI{addr: l.Addr().String()}
	rp := &httputil.ReverseProxy{
		// A killed runtime's long poll on /next ends in an error: no news.
		ErrorLog: log.New(io.Discard, "", 0),
		Rewrite: func(r *httputil.ProxyRequest) {
			p.mu.Lock()
			target := p.target
			p.mu.Unlock()
			r.SetURL(&url.URL{Scheme: "http", Host: target})
		},
		ModifyResponse: func(resp *http.Response) error {
			if strings.HasSuffix(resp.Request.URL.Path, "/runtime/invocation/next") && resp.Header.Get("Lambda-Runtime-Trace-Id") == "" {
				p.mu.Lock()
				trace := p.trace
				p.mu.Unlock()
				if trace != "" {
					resp.Header.Set("Lambda-Runtime-Trace-Id", trace)
				}
			}
			return nil
		},
	}
	p.srv = &http.Server{Handler: rp}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

func (p *runtimeAPI) setTarget(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = addr
}

func (p *runtimeAPI) setTrace(trace string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trace = trace
}

func (p *runtimeAPI) close() { _ = p.srv.Close() }

// wrapBootstrap writes an executable into dir that runs bootstrap against the
// proxy's Runtime API instead of the emulator's (which sets AWS_LAMBDA_RUNTIME_API).
func (p *runtimeAPI) wrapBootstrap(dir, bootstrap string) (string, error) {
	path := filepath.Join(dir, "bootstrap")
	script := fmt.Sprintf("#!/bin/sh\nAWS_LAMBDA_RUNTIME_API=%s exec '%s' \"$@\"\n", p.addr, strings.ReplaceAll(bootstrap, "'", `'\''`))
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		return "", fmt.Errorf("wrap %s: %w", bootstrap, err)
	}
	return path, nil
}
