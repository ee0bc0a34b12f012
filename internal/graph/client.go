// Package graph is rulesd's Marketing API (Graph API) client.
//
// It exists so that the rest of rulesd never has to think about what makes
// the Marketing API hard to use safely: paging by absolute URLs that carry
// the access token, error envelopes whose meaning lies in code and subcode,
// rate limits announced in headers and enforced per ad account, and writes
// whose answer can be lost. The client
//
//   - pages by following paging.next verbatim, with the token replaced by its
//     own, finding "next" with a top-level scan so the caller can decode the
//     large "data" array itself with a fast decoder;
//   - classifies errors (Kind, ThrottleScope and helpers such as
//     IsBudgetLocked) and retries what is safe to retry: reads on transient
//     failures, and any request the API explicitly throttled;
//   - never retries a write whose answer was lost, but returns ErrAnswerLost
//     so the caller reads the object back (SPEC 4.10);
//   - paces requests per ad account from the usage headers (slow from 75%,
//     stop at 90%, priority writes up to 95%) and waits out throttles for the
//     account concerned only, or for all accounts on app-wide limits;
//   - keeps the token out of logs, errors and metrics: errors name endpoint
//     templates ("/act_{id}/insights"), never URLs.
package graph

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// maxBody bounds a response body; an insights page is a few MB at most.
const maxBody = 512 << 20

// RetryPolicy sets how transient failures are retried. Zero fields take the
// defaults in brackets.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts including the first [4].
	MaxAttempts int
	// BaseBackoff is the wait before the first retry; it doubles per retry [1s].
	BaseBackoff time.Duration
	// MaxBackoff caps the wait between retries [30s].
	MaxBackoff time.Duration
}

// Options configures a Client. BaseURL and Token are required.
type Options struct {
	// BaseURL is the API root, e.g. "https://graph.facebook.com" (tests: a fake).
	BaseURL string
	// APIVersion is the path prefix, e.g. "v27.0".
	APIVersion string
	// Token is the access token, sent as access_token on every request.
	Token Secret
	// TokenName names the token in metrics (the token file's base name); never the token.
	TokenName string
	// AppSecret, when set, adds appsecret_proof = hex(HMAC-SHA256(AppSecret, Token)).
	AppSecret Secret
	// HTTPClient sends the requests [a client that does not follow redirects].
	HTTPClient *http.Client
	// Timeout bounds each attempt of a request [30s].
	Timeout time.Duration
	// MaxInFlight bounds the requests in flight at once across the client [8].
	MaxInFlight int
	// Retry is the policy for transient failures.
	Retry RetryPolicy
	// MaxThrottleWait bounds the total time one call waits for throttles and
	// usage stops before it returns the throttled error (so the caller can
	// report that account and move on) [5m]. Negative: never wait.
	MaxThrottleWait time.Duration
	// Governor sets the usage thresholds.
	Governor GovernorPolicy
	// Logger receives debug lines per request and warnings on retries and
	// throttles [zap.NewNop()].
	Logger *zap.Logger
	// Registerer, when set, receives the rulesd_graph_* metrics.
	Registerer prometheus.Registerer
	// Now returns the current time [time.Now]. Tests inject a fake clock.
	Now func() time.Time
	// Sleep waits for d or until ctx is done, returning ctx.Err() then
	// [a timer]. Tests inject one that advances a fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a random number in [0,1) for backoff jitter [math/rand/v2].
	Jitter func() float64
	// UserAgent is sent with every request ["rulesd"].
	UserAgent string
}

// Client is a Marketing API client. It is safe for concurrent use.
type Client struct {
	base            *url.URL
	version         string
	token           string
	tokenName       string
	proof           string
	secrets         []string // strings scrubbed from any text the server sends back
	hc              *http.Client
	timeout         time.Duration
	sem             chan struct{}
	retry           RetryPolicy
	maxThrottleWait time.Duration
	log             *zap.Logger
	m               *metrics
	gov             *governor
	now             func() time.Time
	sleep           func(context.Context, time.Duration) error
	jitter          func() float64
	userAgent       string
}

// New validates opts and returns a Client.
func New(opts Options) (*Client, error) {
	if opts.BaseURL == "" {
		return nil, errors.New("graph: BaseURL is required")
	}
	base, err := url.Parse(strings.TrimRight(opts.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("graph: BaseURL must be an absolute http(s) URL")
	}
	if base.RawQuery != "" || base.User != nil {
		return nil, errors.New("graph: BaseURL must not carry a query or user info")
	}
	if opts.Token.IsZero() {
		return nil, errors.New("graph: Token is required")
	}
	c := &Client{
		base:            base,
		version:         strings.Trim(opts.APIVersion, "/"),
		token:           opts.Token.Reveal(),
		tokenName:       opts.TokenName,
		hc:              opts.HTTPClient,
		timeout:         opts.Timeout,
		retry:           opts.Retry,
		maxThrottleWait: opts.MaxThrottleWait,
		log:             opts.Logger,
		now:             opts.Now,
		sleep:           opts.Sleep,
		jitter:          opts.Jitter,
		userAgent:       opts.UserAgent,
	}
	if !opts.AppSecret.IsZero() {
		c.proof = AppSecretProof(opts.AppSecret, opts.Token)
	}
	c.secrets = []string{c.token}
	if esc := url.QueryEscape(c.token); esc != c.token {
		c.secrets = append(c.secrets, esc)
	}
	if c.proof != "" {
		c.secrets = append(c.secrets, c.proof)
	}
	if c.hc == nil {
		// Graph does not redirect; following one would carry the token elsewhere.
		c.hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	n := opts.MaxInFlight
	if n <= 0 {
		n = 8
	}
	c.sem = make(chan struct{}, n)
	if c.retry.MaxAttempts <= 0 {
		c.retry.MaxAttempts = 4
	}
	if c.retry.BaseBackoff <= 0 {
		c.retry.BaseBackoff = time.Second
	}
	if c.retry.MaxBackoff <= 0 {
		c.retry.MaxBackoff = 30 * time.Second
	}
	if c.maxThrottleWait == 0 {
		c.maxThrottleWait = 5 * time.Minute
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.jitter == nil {
		c.jitter = rand.Float64
	}
	if c.userAgent == "" {
		c.userAgent = "rulesd"
	}
	if c.tokenName == "" {
		c.tokenName = "default"
	}
	c.m, err = newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("graph: registering metrics: %w", err)
	}
	c.gov = newGovernor(opts.Governor, c.now, c.jitter)
	return c, nil
}

// AppSecretProof returns hex(HMAC-SHA256(key = appSecret, message = token)),
// the appsecret_proof parameter (graph-api 9.1).
func AppSecretProof(appSecret, token Secret) string {
	h := hmac.New(sha256.New, []byte(appSecret.Reveal()))
	h.Write([]byte(token.Reveal()))
	return hex.EncodeToString(h.Sum(nil))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Request describes one Graph call.
type Request struct {
	// Account is the ad account ("act_123") the call is about: it selects the
	// governor's per-account state and is named in errors. Empty for
	// app-level calls; inferred from Path when Path starts with "act_".
	Account string
	// Path is the node or edge below the version, e.g. "act_123/insights" or "123456".
	Path string
	// Params are the query (GET, DELETE) or form (POST) parameters; encode
	// lists, maps and bools with EncodeValue or Params. access_token and
	// appsecret_proof are added by the client.
	Params url.Values
	// Priority lets a write (e.g. a pause) go on up to the governor's
	// PriorityStopAt usage instead of stopping at StopAt, without slow-down.
	Priority bool
	// Idempotent declares a write safe to resend when its answer is lost; the
	// client then retries it like a read. Leave false for rulesd's writes,
	// which are read back instead (SPEC 4.10).
	Idempotent bool
}

// call is one request on its way, possibly across several attempts.
type call struct {
	method   string
	endpoint string
	account  string
	accounts []string // governor keys to check before sending
	target   *url.URL // URL without access_token/appsecret_proof for GET/DELETE; POST target
	form     url.Values
	write    bool
	safe     bool // may be resent after a lost answer
	priority bool
}

func (c *Client) newCall(method string, r Request) *call {
	acct := r.Account
	if acct == "" {
		acct = accountOf(r.Path)
	}
	path := strings.TrimLeft(r.Path, "/")
	u := *c.base
	u.Path = strings.TrimRight(c.base.Path, "/") + "/"
	if c.version != "" {
		u.Path += c.version + "/"
	}
	u.Path += path
	cl := &call{
		method:   method,
		endpoint: EndpointTemplate(r.Path),
		account:  acct,
		target:   &u,
		write:    method != http.MethodGet,
		priority: r.Priority && method != http.MethodGet,
	}
	cl.safe = !cl.write || r.Idempotent
	if acct != "" {
		cl.accounts = []string{acct}
	}
	if method == http.MethodPost {
		cl.form = url.Values{}
		for k, v := range r.Params {
			cl.form[k] = v
		}
	} else {
		q := url.Values{}
		for k, v := range r.Params {
			q[k] = v
		}
		q.Del("access_token")
		q.Del("appsecret_proof")
		u.RawQuery = q.Encode()
	}
	return cl
}

// Get reads one node or one page of an edge and returns the raw JSON body.
func (c *Client) Get(ctx context.Context, r Request) ([]byte, error) {
	body, _, err := c.do(ctx, c.newCall(http.MethodGet, r))
	return body, err
}

// Post sends a write with form-encoded parameters and returns the raw body
// (usually {"success": true} or {"id": "…"}). A write whose answer is lost is
// not retried: the error matches ErrAnswerLost.
func (c *Client) Post(ctx context.Context, r Request) ([]byte, error) {
	body, _, err := c.do(ctx, c.newCall(http.MethodPost, r))
	return body, err
}

// Delete sends a DELETE (e.g. of an ad rule) with the parameters in the query.
// Like Post, it is not retried when its answer is lost.
func (c *Client) Delete(ctx context.Context, r Request) ([]byte, error) {
	body, _, err := c.do(ctx, c.newCall(http.MethodDelete, r))
	return body, err
}

// Pages reads an edge page by page, calling fn with each page's raw body in
// order, following paging.next until it is absent (a short or empty page does
// not end the list; a missing next does). The client does not reuse body, so
// fn may keep it. An error from fn stops paging and is returned as is. Each
// page is retried, throttled and governed like a Get.
func (c *Client) Pages(ctx context.Context, r Request, fn func(body []byte) error) error {
	cl := c.newCall(http.MethodGet, r)
	prev := ""
	for page := 1; ; page++ {
		body, top, err := c.do(ctx, cl)
		if err != nil {
			return err
		}
		if err := fn(body); err != nil {
			return err
		}
		next, err := unquote(top.next)
		if err != nil {
			return fmt.Errorf("graph: GET %s: page %d: undecodable paging.next", cl.endpoint, page)
		}
		if next == "" {
			return nil
		}
		if next == prev {
			return fmt.Errorf("graph: GET %s: page %d: paging.next repeats the previous page", cl.endpoint, page)
		}
		prev = next
		u, err := c.follow(next)
		if err != nil {
			return fmt.Errorf("graph: GET %s: page %d: %w", cl.endpoint, page, err)
		}
		ncl := *cl
		ncl.target = u
		cl = &ncl
	}
}

// follow turns a paging.next URL into the next request's target: the URL is
// kept verbatim except that its access_token and appsecret_proof are removed
// (ours are added when sending) and its scheme and host are pinned to
// BaseURL, so the token is never sent to a host other than the configured one.
func (c *Client) follow(next string) (*url.URL, error) {
	u, err := url.Parse(next)
	if err != nil {
		return nil, errors.New("paging.next is not a URL")
	}
	if u.Scheme != c.base.Scheme || u.Host != c.base.Host {
		if u.Host != "" && u.Host != c.base.Host {
			c.log.Debug("paging.next names another host; using BaseURL's")
		}
		u.Scheme, u.Host, u.User = c.base.Scheme, c.base.Host, nil
	}
	u.RawQuery = dropParams(u.RawQuery, "access_token", "appsecret_proof")
	u.Fragment = ""
	return u, nil
}

// dropParams removes keys from a raw query without re-encoding the rest.
func dropParams(raw string, keys ...string) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	out := parts[:0]
outer:
	for _, p := range parts {
		if p == "" {
			continue
		}
		name := p
		if i := strings.IndexByte(p, '='); i >= 0 {
			name = p[:i]
		}
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		for _, k := range keys {
			if name == k {
				continue outer
			}
		}
		out = append(out, p)
	}
	return strings.Join(out, "&")
}

// authQuery returns the access_token (and appsecret_proof) parameters.
func (c *Client) authQuery() string {
	s := "access_token=" + url.QueryEscape(c.token)
	if c.proof != "" {
		s += "&appsecret_proof=" + c.proof
	}
	return s
}

// exchange is the outcome of one HTTP attempt.
type exchange struct {
	status int
	header http.Header
	body   []byte
	err    error // transport error, *url.Error already stripped
	sent   bool  // the request may have reached the server
}

// send performs one HTTP attempt under the in-flight bound and the per-attempt timeout.
func (c *Client) send(ctx context.Context, cl *call) exchange {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return exchange{err: ctx.Err()}
	}
	defer func() { <-c.sem }()

	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	var req *http.Request
	var err error
	if cl.method == http.MethodPost {
		u := *cl.target
		u.RawQuery = dropParams(u.RawQuery, "access_token", "appsecret_proof")
		form := cl.form.Encode()
		if form != "" {
			form += "&"
		}
		form += c.authQuery()
		req, err = http.NewRequestWithContext(actx, cl.method, u.String(), strings.NewReader(form))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		u := *cl.target
		if u.RawQuery != "" {
			u.RawQuery += "&"
		}
		u.RawQuery += c.authQuery()
		req, err = http.NewRequestWithContext(actx, cl.method, u.String(), nil)
	}
	if err != nil {
		return exchange{err: errors.New("cannot build request: " + stripURL(err).Error())}
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")

	resp, err := c.hc.Do(req)
	if err != nil {
		err = stripURL(err)
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s: %w", c.timeout, err)
		}
		return exchange{err: err, sent: !isDialError(err)}
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if resp.ContentLength > 0 && resp.ContentLength < maxBody {
		buf.Grow(int(resp.ContentLength) + bytes.MinRead)
	}
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxBody+1))
	ex := exchange{status: resp.StatusCode, header: resp.Header, body: buf.Bytes(), sent: true}
	if err != nil {
		err = stripURL(err)
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("answer not complete within %s: %w", c.timeout, err)
		}
		ex.err = fmt.Errorf("reading the answer: %w", err)
	} else if buf.Len() > maxBody {
		ex.err = fmt.Errorf("answer larger than %d bytes", maxBody)
	}
	return ex
}

// isDialError reports a failure before the request could reach the server,
// which makes even a write safe to resend.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect") {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// do runs a call to completion: governor waits, attempts, retries, throttle
// waits. It returns the body and its top-level scan on success.
func (c *Client) do(ctx context.Context, cl *call) ([]byte, topLevel, error) {
	var waited time.Duration // throttle and usage-stop waiting so far
	var lastThrottle *Error
	attempt := 0
	for {
		if err := c.await(ctx, cl, &waited, lastThrottle); err != nil {
			return nil, topLevel{}, err
		}
		attempt++
		start := time.Now() // a measurement, not a wait: real time even under a fake clock
		ex := c.send(ctx, cl)
		dur := time.Since(start)

		code := "error"
		if ex.status != 0 {
			code = strconv.Itoa(ex.status)
		}
		if ex.sent || ex.status != 0 || ctx.Err() == nil {
			c.m.request(cl.endpoint, code, dur.Seconds())
		}
		c.log.Debug("graph request",
			zap.String("method", cl.method), zap.String("endpoint", cl.endpoint),
			zap.String("account", cl.account), zap.String("code", code),
			zap.Duration("duration", dur), zap.Int("attempt", attempt))

		if ex.header != nil {
			for _, a := range c.usageAccounts(cl) {
				r := parseUsage(ex.header, a)
				c.gov.observe(&r)
				c.m.observeUsage(&r)
			}
		}

		// No (complete) answer.
		if ex.err != nil {
			if ctx.Err() != nil {
				return nil, topLevel{}, c.canceled(ctx, cl, ex.sent)
			}
			te := &TransportError{Method: cl.method, Endpoint: cl.endpoint, Account: cl.account, Err: ex.err}
			if ex.sent && !cl.safe {
				c.log.Warn("graph write answer lost; not retried",
					zap.String("method", cl.method), zap.String("endpoint", cl.endpoint),
					zap.String("account", cl.account), zap.Error(te))
				return nil, topLevel{}, answerLost(te)
			}
			if err := c.backoff(ctx, cl, attempt, te); err != nil {
				return nil, topLevel{}, err
			}
			continue
		}

		gerr, top := c.interpret(cl, &ex)
		if gerr == nil {
			c.gov.succeeded(cl.account)
			c.m.auth(c.tokenName, true)
			return ex.body, top, nil
		}

		switch kind := gerr.Kind(); {
		case kind == KindAuth:
			c.m.auth(c.tokenName, false)
			c.log.Error("graph authentication failed", zap.Object("graph_error", gerr), zap.String("token", c.tokenName))
			return nil, topLevel{}, gerr

		case kind == KindThrottled && gerr.ThrottleScope() != ScopeObject:
			scope := gerr.ThrottleScope()
			acct := cl.account
			if scope == ScopeApp {
				acct = ""
			}
			c.m.throttle(acct)
			wait := c.gov.throttled(gerr, acct, throttleHint(ex.header, acct))
			if scope == ScopeAccount && len(cl.accounts) > 1 {
				// A batch spanning accounts: the API did not say which one,
				// so hold them all rather than the whole app.
				for _, a := range cl.accounts {
					wait = max(wait, c.gov.throttled(gerr, a, throttleHint(ex.header, a)))
				}
			}
			c.log.Warn("graph throttled",
				zap.Object("graph_error", gerr), zap.String("scope", scope.String()),
				zap.Duration("wait", wait))
			lastThrottle = gerr
			continue // await waits, or returns gerr past MaxThrottleWait

		case (kind == KindTransient || kind == KindBadResponse && ex.status < 300) && !gerr.IsInsightsTimeout():
			if !cl.safe {
				c.log.Warn("graph write failed with an unclear outcome; not retried", zap.Object("graph_error", gerr))
				return nil, topLevel{}, answerLost(gerr)
			}
			if err := c.backoff(ctx, cl, attempt, gerr); err != nil {
				return nil, topLevel{}, err
			}
			continue
		}
		c.log.Warn("graph request failed", zap.String("method", cl.method), zap.Object("graph_error", gerr))
		return nil, topLevel{}, gerr
	}
}

// usageAccounts lists the accounts a response's usage headers are attributed to.
func (c *Client) usageAccounts(cl *call) []string {
	if len(cl.accounts) <= 1 {
		return []string{cl.account}
	}
	// A batch spanning accounts: X-Ad-Account-Usage cannot be attributed;
	// the app headers and the keyed BUC header still can.
	return []string{""}
}

// throttleHint is the wait a throttled response's headers name for acct:
// estimated_time_to_regain_access (minutes) first, then reset_time_duration (seconds).
func throttleHint(h http.Header, acct string) time.Duration {
	if h == nil {
		return 0
	}
	r := parseUsage(h, acct)
	if acct == "" {
		var d time.Duration
		for _, v := range r.regain {
			d = max(d, v)
		}
		return d
	}
	if d := r.regain[acct]; d > 0 {
		return d
	}
	return r.reset[acct]
}

// interpret turns a complete answer into success (nil) or an *Error.
func (c *Client) interpret(cl *call, ex *exchange) (*Error, topLevel) {
	fill := func(e *Error) *Error {
		e.Method, e.Endpoint, e.Account, e.HTTPStatus = cl.method, cl.endpoint, cl.account, ex.status
		e.Message = sanitize(e.Message, c.secrets...)
		e.UserTitle = sanitize(e.UserTitle, c.secrets...)
		e.UserMsg = sanitize(e.UserMsg, c.secrets...)
		for _, sec := range c.secrets {
			if e.ErrorData != nil && bytes.Contains(e.ErrorData, []byte(sec)) {
				e.ErrorData = nil
			}
		}
		return e
	}
	if ex.status >= 200 && ex.status < 300 {
		top, err := scanTop(ex.body)
		if err != nil {
			kind := KindBadResponse
			msg := "malformed JSON in the answer (" + err.Error() + ")"
			if bytes.Contains(ex.body, []byte("Service Unavailable")) {
				kind, msg = KindTransient, "Service Unavailable (in a 200 answer)"
			}
			return fill(&Error{Message: msg + snippet(ex.body, c.secrets...), kind: kind}), top
		}
		if top.errVal != nil {
			if e, ok := decodeEnvelope(ex.body); ok {
				return fill(e), top
			}
		}
		return nil, top
	}
	if e, ok := decodeEnvelope(ex.body); ok {
		return fill(e), topLevel{}
	}
	e := &Error{Message: "HTTP " + strconv.Itoa(ex.status) + " without a Graph error" + snippet(ex.body, c.secrets...)}
	switch {
	case ex.status >= 500:
		e.kind = KindTransient
	case ex.status == http.StatusTooManyRequests:
		e.kind, e.scope = KindThrottled, ScopeAccount
		if cl.account == "" {
			e.scope = ScopeApp
		}
	default:
		e.kind = KindBadResponse
	}
	return fill(e), topLevel{}
}

// snippet quotes the start of a body that is not what the API promises, so
// an HTML error page or a proxy message is recognisable in the error.
// Secrets are scrubbed before cutting, so that no part of one survives.
func snippet(b []byte, secrets ...string) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ": empty body"
	}
	n := 120
	for _, s := range secrets {
		n += len(s)
	}
	s := string(b[:min(len(b), 2*n)])
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return ": body starts " + strconv.Quote(s)
}

// canceled builds the error for a context that ended during a call.
func (c *Client) canceled(ctx context.Context, cl *call, sent bool) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, err) {
		err = fmt.Errorf("%w (%v)", err, cause)
	}
	te := &TransportError{Method: cl.method, Endpoint: cl.endpoint, Account: cl.account, Err: err, canceled: true}
	if sent && !cl.safe {
		return answerLost(te)
	}
	return te
}

// backoff waits before retry number attempt, or returns cause when the
// attempts are used up.
func (c *Client) backoff(ctx context.Context, cl *call, attempt int, cause error) error {
	if attempt >= c.retry.MaxAttempts {
		return cause
	}
	d := c.retry.BaseBackoff << min(attempt-1, 20)
	if d > c.retry.MaxBackoff || d <= 0 {
		d = c.retry.MaxBackoff
	}
	// "Equal jitter": half fixed, half random, so retries of many callers spread out.
	d = d/2 + time.Duration(c.jitter()*float64(d/2))
	c.log.Warn("graph request retried",
		zap.String("method", cl.method), zap.String("endpoint", cl.endpoint),
		zap.String("account", cl.account), zap.Int("attempt", attempt),
		zap.Duration("backoff", d), zap.Error(cause))
	if err := c.sleep(ctx, d); err != nil {
		return c.canceled(ctx, cl, false)
	}
	return nil
}

// await holds a call until the governor lets it go for all its accounts. It
// fails with the throttle error when the wait would exceed MaxThrottleWait.
func (c *Client) await(ctx context.Context, cl *call, waited *time.Duration, last *Error) error {
	accts := cl.accounts
	if len(accts) == 0 {
		accts = []string{""}
	}
	for _, a := range accts {
		slowed := false
		for {
			if err := ctx.Err(); err != nil {
				return c.canceled(ctx, cl, false)
			}
			g := c.gov.check(a, cl.priority)
			if g.wait <= 0 || (!g.block && slowed) {
				break
			}
			if g.block {
				if c.maxThrottleWait < 0 || *waited+g.wait > c.maxThrottleWait {
					return c.throttledErr(cl, a, g, last)
				}
				c.log.Warn("graph request waits for the rate limit",
					zap.String("endpoint", cl.endpoint), zap.String("account", a),
					zap.Duration("wait", g.wait), zap.Float64("usage_pct", g.usage))
				*waited += g.wait
			} else {
				slowed = true
				c.log.Debug("graph request slowed by usage",
					zap.String("endpoint", cl.endpoint), zap.String("account", a),
					zap.Duration("delay", g.wait), zap.Float64("usage_pct", g.usage))
			}
			if err := c.sleep(ctx, g.wait); err != nil {
				return c.canceled(ctx, cl, false)
			}
		}
	}
	return nil
}

// throttledErr is returned when a call would wait longer than MaxThrottleWait.
func (c *Client) throttledErr(cl *call, acct string, g gate, last *Error) error {
	if last != nil {
		return last
	}
	e := &Error{Method: cl.method, Endpoint: cl.endpoint, Account: cl.account, kind: KindThrottled, scope: ScopeAccount}
	if acct == "" {
		e.scope = ScopeApp
	}
	if g.cause != nil {
		e.Code, e.Subcode, e.FBTraceID, e.scope = g.cause.Code, g.cause.Subcode, g.cause.FBTraceID, g.cause.ThrottleScope()
		e.Message = fmt.Sprintf("still throttled for %s (%s)", g.wait.Round(time.Second), g.cause.Message)
	} else {
		e.Message = fmt.Sprintf("rate-limit usage at %.0f%%: requests stop for %s", g.usage, g.wait.Round(time.Second))
	}
	return e
}
