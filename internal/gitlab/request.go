package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	gogitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/gl2gh/discovery-agent/internal/backoff"
)

// decoder is a response type that decodes itself (a list decoded element by element).
type decoder interface {
	decodeJSON(data []byte, r redactor) error
}

// get sends one GET (retried by the transport) and decodes JSON into v when v is not
// nil (*[]byte takes the raw body; a decoder decodes itself). A body that does not
// decode is retried too: GitLab behind a proxy sometimes truncates. Every error it
// returns is redacted of the token and cut to MaxErrorLen.
func (c *Client) get(ctx context.Context, path string, q url.Values, v any) (*gogitlab.Response, error) {
	endpoint := EndpointClass("/api/v4/" + path)
	var resp *gogitlab.Response
	err := c.retryMalformed(ctx, "GET "+endpoint, func() (err error) {
		resp, err = c.try(ctx, endpoint, path, q, v)
		return err
	})
	return resp, err
}

// retryMalformed runs try again, up to the client's retries with its backoff, while
// the answer's body does not decode (errDecode); what names the request in the error.
func (c *Client) retryMalformed(ctx context.Context, what string, try func() error) error {
	for attempt := 0; ; attempt++ {
		err := try()
		if !errors.Is(err, errDecode) {
			return err
		}
		if attempt >= c.maxRetries || ctx.Err() != nil {
			return c.clean(fmt.Errorf("%s: %w after %d attempts: %w", what, ErrMalformed, attempt+1, errors.Unwrap(err)))
		}
		if c.t.observer != nil {
			c.t.observer.Retry("malformed")
		}
		if err := backoff.Sleep(ctx, c.t.backoff(attempt)); err != nil {
			return c.clean(err)
		}
	}
}

// errDecode marks a body that did not decode; try wraps the decoding error in it.
var errDecode = errors.New("decode")

type decodeError struct{ err error }

func (e *decodeError) Error() string        { return e.err.Error() }
func (e *decodeError) Unwrap() error        { return e.err }
func (e *decodeError) Is(target error) bool { return target == errDecode }

// try is one request of get, with a panic anywhere in it (the library's response
// parsing included) turned into an error wrapping ErrPanic.
func (c *Client) try(ctx context.Context, endpoint, path string, q url.Values, v any) (resp *gogitlab.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, c.clean(fmt.Errorf("GET %s: %w: %v", endpoint, ErrPanic, r))
		}
	}()
	req, err := c.gl.NewRequest(http.MethodGet, path, nil, []gogitlab.RequestOptionFunc{gogitlab.WithContext(ctx)})
	if err != nil {
		return nil, c.clean(fmt.Errorf("build request %s: %w", endpoint, err))
	}
	req.URL.RawQuery = q.Encode()
	var buf bytes.Buffer
	resp, err = c.gl.Do(req, &buf)
	if err != nil {
		var er *gogitlab.ErrorResponse
		if errors.As(err, &er) && er.Response != nil {
			return resp, &APIError{Endpoint: endpoint, Status: er.Response.StatusCode, Message: c.redact.clean(er.Message)}
		}
		if errors.Is(err, gogitlab.ErrNotFound) { // the library's own sentinel for 404
			return resp, &APIError{Endpoint: endpoint, Status: http.StatusNotFound}
		}
		var ue *url.Error
		if errors.As(err, &ue) && errors.Is(ue.Err, ErrRedirect) {
			err = ue.Err // the target is named in it; the URL around it may be long
		}
		return resp, c.clean(fmt.Errorf("GET %s: %w", endpoint, err))
	}
	switch v := v.(type) {
	case nil:
	case *[]byte:
		*v = buf.Bytes()
	case decoder:
		err = v.decodeJSON(buf.Bytes(), c.redact)
	default:
		err = json.Unmarshal(buf.Bytes(), v)
	}
	if err != nil {
		return resp, &decodeError{err}
	}
	return resp, nil
}

// clean returns err with its text redacted of the token and cut to MaxErrorLen.
func (c *Client) clean(err error) error {
	if err == nil {
		return nil
	}
	return &cleanError{msg: c.redact.clean(err.Error()), err: err}
}
