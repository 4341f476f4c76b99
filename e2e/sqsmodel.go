//go:build unix

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// sqsModel is what the proxy in front of moto adds to its SQS, as AWS's SQS does it:
//
//   - A SendMessage or SendMessageBatch request with an X-Amzn-Trace-Id header gives
//     its messages that trace as their AWSTraceHeader system attribute (moto keeps
//     none for batches), which the event source reads back.
//   - With a retention set, the scan queue reports it as MessageRetentionPeriod (moto
//     would leave expired messages in flight forever); the harness's event source
//     deletes older messages unseen.
type sqsModel struct {
	scanURL   string
	retention time.Duration

	traces      sync.Map // message ID -> AWSTraceHeader
	tracedSends atomic.Int64
}

type ctxKey int

const reportRetention ctxKey = iota

// request prepares r before it reaches moto; op is its operation.
func (m *sqsModel) request(r *http.Request, op string) *http.Request {
	if op != "sqs.GetQueueAttributes" || m.retention <= 0 || r.Body == nil {
		return r
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in struct{ QueueUrl string }
	if err == nil && json.Unmarshal(body, &in) == nil && in.QueueUrl == m.scanURL {
		return r.WithContext(context.WithValue(r.Context(), reportRetention, true))
	}
	return r
}

// response adjusts moto's answer to a request request prepared.
func (m *sqsModel) response(resp *http.Response) error {
	req := resp.Request
	op := operation(req)
	// The Go SDK percent-encodes the header (Lineage's '|' is %7C).
	trace, err := url.PathUnescape(req.Header.Get("X-Amzn-Trace-Id"))
	if err != nil {
		trace = req.Header.Get("X-Amzn-Trace-Id")
	}
	retention, _ := req.Context().Value(reportRetention).(bool)
	if resp.StatusCode != http.StatusOK || (!retention && (trace == "" || (op != "sqs.SendMessage" && op != "sqs.SendMessageBatch"))) {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	switch {
	case retention:
		var out map[string]map[string]string
		if json.Unmarshal(body, &out) == nil {
			if attrs := out["Attributes"]; attrs != nil {
				if _, ok := attrs["MessageRetentionPeriod"]; ok {
					attrs["MessageRetentionPeriod"] = strconv.Itoa(int(m.retention / time.Second))
					if b, err := json.Marshal(out); err == nil {
						body = b
					}
				}
			}
		}
	case op == "sqs.SendMessage":
		var out struct{ MessageId string }
		if json.Unmarshal(body, &out) == nil && out.MessageId != "" {
			m.traces.Store(out.MessageId, trace)
			m.tracedSends.Add(1)
		}
	default:
		var out struct{ Successful []struct{ MessageId string } }
		if json.Unmarshal(body, &out) == nil {
			for _, s := range out.Successful {
				m.traces.Store(s.MessageId, trace)
			}
			m.tracedSends.Add(1)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// trace is the AWSTraceHeader of the message with id, "" when it was sent untraced.
func (m *sqsModel) trace(id string) string {
	v, _ := m.traces.Load(id)
	s, _ := v.(string)
	return s
}
