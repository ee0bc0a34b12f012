package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"
)

// MaxBatchOps is the API's limit of operations per batch request (graph-api 8).
const MaxBatchOps = 50

// BatchOp is one operation of a batch request.
type BatchOp struct {
	// Method is "GET" (the default when empty), "POST" or "DELETE".
	Method string
	// Request is the operation's account, path and parameters. Priority and
	// Idempotent apply as for single requests.
	Request
}

// BatchResult is the answer to one BatchOp, in the order of the ops.
type BatchResult struct {
	// Code is the operation's HTTP status; 0 when there was no answer.
	Code int
	// Header holds the operation's own headers (usage headers arrive here).
	Header http.Header
	// Body is the operation's body, decoded from the JSON string it arrives as.
	Body []byte
	// Err is nil on success. Otherwise: an *Error for a refused operation;
	// an error matching ErrAnswerLost when the API answered null for it
	// ("not processed", though a write may still have been applied — read it
	// back) or the whole call's answer was lost; an error matching ErrNotSent
	// when an earlier chunk failed and this operation was never sent.
	Err error
}

type wireOp struct {
	Method      string `json:"method"`
	RelativeURL string `json:"relative_url"`
	Body        string `json:"body,omitempty"`
}

type wireItem struct {
	Code    int `json:"code"`
	Headers []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"headers"`
	Body json.RawMessage `json:"body"`
}

// Batch sends ops as batch requests of at most MaxBatchOps operations each
// (one HTTP call per chunk, in order) and returns one result per op. The
// error is the first chunk-level failure (the results then say which ops
// were affected); per-operation failures are only in the results.
// Null items are not resent: for writes the caller must read the objects back.
func (c *Client) Batch(ctx context.Context, ops []BatchOp) ([]BatchResult, error) {
	res := make([]BatchResult, len(ops))
	var first error
	for lo := 0; lo < len(ops); lo += MaxBatchOps {
		hi := min(lo+MaxBatchOps, len(ops))
		if first != nil {
			for i := lo; i < hi; i++ {
				res[i].Err = fmt.Errorf("graph: batch operation %d (%s): %w", i, EndpointTemplate(ops[i].Path), ErrNotSent)
			}
			continue
		}
		if err := c.batchChunk(ctx, ops[lo:hi], res[lo:hi]); err != nil {
			first = err
		}
	}
	return res, first
}

func (op *BatchOp) method() string {
	if op.Method == "" {
		return http.MethodGet
	}
	return strings.ToUpper(op.Method)
}

func (c *Client) batchChunk(ctx context.Context, ops []BatchOp, res []BatchResult) error {
	wire := make([]wireOp, len(ops))
	cl := &call{method: http.MethodPost, endpoint: "/", safe: true, priority: true}
	seen := map[string]bool{}
	for i := range ops {
		op := &ops[i]
		m := op.method()
		rel := strings.TrimLeft(op.Path, "/")
		if c.version != "" {
			rel = c.version + "/" + rel
		}
		q := url.Values{}
		for k, v := range op.Params {
			if k != "access_token" && k != "appsecret_proof" {
				q[k] = v
			}
		}
		w := wireOp{Method: m, RelativeURL: rel}
		if m == http.MethodPost {
			w.Body = q.Encode()
		} else if len(q) > 0 {
			w.RelativeURL += "?" + q.Encode()
		}
		wire[i] = w
		if m != http.MethodGet {
			cl.write = true
			cl.safe = cl.safe && op.Idempotent
			cl.priority = cl.priority && op.Priority
		}
		acct := op.Account
		if acct == "" {
			acct = accountOf(op.Path)
		}
		if acct != "" && !seen[acct] {
			seen[acct] = true
			cl.accounts = append(cl.accounts, acct)
		}
	}
	if !cl.write {
		cl.priority = false
	}
	if len(cl.accounts) == 1 {
		cl.account = cl.accounts[0]
	}
	batchJSON, err := json.Marshal(wire)
	if err != nil {
		return fmt.Errorf("graph: encoding batch: %w", err)
	}
	u := *c.base
	u.Path = strings.TrimRight(c.base.Path, "/") + "/"
	cl.target = &u
	cl.form = url.Values{"batch": {string(batchJSON)}, "include_headers": {"true"}}

	body, _, err := c.do(ctx, cl)
	if err != nil {
		for i := range res {
			res[i].Err = err
		}
		return err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		e := &Error{Method: cl.method, Endpoint: cl.endpoint, Account: cl.account, HTTPStatus: 200,
			Message: "batch answer is not a JSON array" + snippet(body, c.secrets...), kind: KindBadResponse}
		var out error = e
		if !cl.safe {
			out = answerLost(e)
		}
		for i := range res {
			res[i].Err = out
		}
		return out
	}
	for i := range ops {
		res[i] = c.batchItem(&ops[i], i, items)
	}
	return nil
}

// batchItem decodes the answer to ops[i] from the batch answer's items.
func (c *Client) batchItem(op *BatchOp, i int, items []json.RawMessage) BatchResult {
	m := op.method()
	acct := op.Account
	if acct == "" {
		acct = accountOf(op.Path)
	}
	icl := &call{method: m, endpoint: EndpointTemplate(op.Path), account: acct, write: m != http.MethodGet}
	icl.safe = !icl.write || op.Idempotent
	var it wireItem
	if i >= len(items) || string(items[i]) == "null" || json.Unmarshal(items[i], &it) != nil {
		te := &TransportError{Method: m, Endpoint: icl.endpoint, Account: acct,
			Err: fmt.Errorf("batch operation %d not processed (null answer)", i)}
		return BatchResult{Err: answerLost(te)}
	}
	r := BatchResult{Code: it.Code, Header: http.Header{}}
	for _, h := range it.Headers {
		r.Header.Add(h.Name, h.Value)
	}
	if len(it.Body) > 0 && it.Body[0] == '"' {
		var s string
		if json.Unmarshal(it.Body, &s) == nil {
			r.Body = []byte(s)
		}
	} else if string(it.Body) != "null" {
		r.Body = it.Body
	}
	usage := parseUsage(r.Header, acct)
	c.gov.observe(&usage)
	c.m.observeUsage(&usage)

	ex := exchange{status: it.Code, header: r.Header, body: r.Body, sent: true}
	gerr, _ := c.interpret(icl, &ex)
	if gerr == nil {
		return r
	}
	switch kind := gerr.Kind(); {
	case kind == KindAuth:
		c.m.auth(c.tokenName, false)
		c.log.Error("graph authentication failed", zap.Object("graph_error", gerr), zap.String("token", c.tokenName))
	case kind == KindThrottled && gerr.ThrottleScope() != ScopeObject:
		a := acct
		if gerr.ThrottleScope() == ScopeApp {
			a = ""
		}
		c.m.throttle(a)
		wait := c.gov.throttled(gerr, a, throttleHint(r.Header, a))
		c.log.Warn("graph batch operation throttled", zap.Object("graph_error", gerr), zap.Duration("wait", wait))
	case (kind == KindTransient || kind == KindBadResponse && it.Code < 300) && !icl.safe:
		r.Err = answerLost(gerr)
		return r
	}
	r.Err = gerr
	return r
}
