package fakegraph

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "time/tzdata" // account time zones must resolve in minimal images too
)

// DefaultToken is the access token accepted when Options.Tokens is empty.
const DefaultToken = "fake-token"

// Options configures a Server. The zero value is usable.
type Options struct {
	// Tokens are the valid access tokens; empty means just DefaultToken.
	Tokens []string
	// AccountTokens restricts accounts to some tokens: an account listed here answers any other
	// valid token with a 200 permission error. Keys are "act_<digits>".
	AccountTokens map[string][]string
	// AppSecret, when set, makes appsecret_proof = hex(HMAC-SHA256(AppSecret, token)) mandatory.
	AppSecret string
	// Now is the server's clock (insights dates, usage decay, budget-change windows, created_time).
	// Default time.Now.
	Now func() time.Time
	// MinVersion rejects /v{N}.0 paths with N below it (code 2635); 0 accepts any version.
	MinVersion int
	// Seed drives fault rates and fbtrace ids (and Generate's metrics noise via its own seed).
	Seed int64
	// Usage configures the rate-limit model.
	Usage UsageOptions
	// DefaultLimit (25) and MaxLimit (5000) bound the `limit` parameter on edges and insights.
	DefaultLimit, MaxLimit int
	// MinDailyBudget overrides the minimum daily budget per currency, in minor units.
	MinDailyBudget map[string]int64
	// EnforceSpendFloor refuses lowering a budget below 1.1 x what was spent (today for a daily
	// budget, lifetime for a lifetime budget) with 100/1885650.
	EnforceSpendFloor bool
	// SyncRowLimit, when > 0, makes synchronous insights with more rows than this fail with
	// 100/1504018 (the "too much data, use async" timeout).
	SyncRowLimit int
	// MaxLog bounds the request log (oldest dropped); default 100000.
	MaxLog int
}

// Server is a simulated Marketing API. It is an http.Handler and safe for concurrent use.
type Server struct {
	opts   Options
	tokens map[string]bool

	// mu guards the data model and async jobs.
	mu        sync.RWMutex
	accounts  map[string]*account
	acctOrder []*account
	objects   map[string]*object
	nextID    uint64
	nextAcct  uint64
	jobs      map[string]*job
	nextJob   uint64
	asyncDef  AsyncBehavior
	asyncNext []AsyncBehavior

	// ctl guards faults, usage and logs.
	ctl       sync.Mutex
	rng       *rand.Rand
	latency   time.Duration
	rates     FaultRates
	rules     []*FaultRule
	throttled map[string]time.Time
	usage     map[string]*acctUsage
	app       scoreWin
	reqLog    []RequestRecord
	writeLog  []WriteRecord
	counters  map[string]int
}

// New returns an empty server; add data with the Add* builders or Generate.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DefaultLimit <= 0 {
		opts.DefaultLimit = 25
	}
	if opts.MaxLimit <= 0 {
		opts.MaxLimit = 5000
	}
	if opts.MaxLog <= 0 {
		opts.MaxLog = 100000
	}
	opts.Usage = opts.Usage.withDefaults()
	s := &Server{
		opts:      opts,
		tokens:    map[string]bool{},
		accounts:  map[string]*account{},
		objects:   map[string]*object{},
		jobs:      map[string]*job{},
		nextID:    120210000000000000,
		nextAcct:  100000000000000,
		nextJob:   6040000000000000,
		asyncDef:  DefaultAsync,
		rng:       rand.New(rand.NewSource(opts.Seed)),
		throttled: map[string]time.Time{},
		usage:     map[string]*acctUsage{},
		counters:  map[string]int{},
	}
	for _, t := range opts.Tokens {
		s.tokens[t] = true
	}
	if len(s.tokens) == 0 {
		s.tokens[DefaultToken] = true
	}
	return s
}

func (s *Server) now() time.Time { return s.opts.Now() }

// AppSecretProof computes the appsecret_proof a client must send for token.
func AppSecretProof(secret, token string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

// request is one API call, from HTTP or from a batch item.
type request struct {
	method string
	path   string // as sent, e.g. /v25.0/act_1/insights
	params url.Values
	host   string
	scheme string
	bearer string
	batch  bool
}

func (r *request) token() string {
	if t := r.params.Get("access_token"); t != "" {
		return t
	}
	return r.bearer
}

// response is what handle produces; ServeHTTP or the batch handler writes it out.
type response struct {
	status    int
	header    http.Header
	body      []byte
	drop      bool // close the connection without answering
	malformed bool // truncate the body
	err       *APIError
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	s.ctl.Lock()
	lat := s.latency
	roll := s.rng.Float64()
	rates := s.rates
	s.ctl.Unlock()
	if lat > 0 && !sleepCtx(hr.Context(), lat) {
		return
	}
	if err := hr.ParseForm(); err != nil {
		s.write(w, s.errorResp(errParam("could not parse the request: %v", err), nil))
		return
	}
	req := &request{method: hr.Method, path: hr.URL.Path, params: hr.Form, host: hr.Host, scheme: "http"}
	if hr.TLS != nil {
		req.scheme = "https"
	}
	if a := hr.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		req.bearer = strings.TrimPrefix(a, "Bearer ")
	}
	// Random faults: one roll split into bands, so the rates add up deterministically per seed.
	switch {
	case roll < rates.Drop:
		s.logRequest(s.baseRecord(req), 0, nil, "drop")
		dropConn(w)
		return
	case roll < rates.Drop+rates.Status5xx:
		s.logRequest(s.baseRecord(req), http.StatusBadGateway, nil, "5xx")
		s.write(w, badGateway())
		return
	}
	resp := s.handle(req)
	if roll >= rates.Drop+rates.Status5xx && roll < rates.Drop+rates.Status5xx+rates.Malformed {
		resp.malformed = true
	}
	if resp.drop {
		dropConn(w)
		return
	}
	s.write(w, resp)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) write(w http.ResponseWriter, resp *response) {
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json; charset=UTF-8")
	}
	body := resp.body
	if resp.malformed && len(body) > 1 {
		body = body[:len(body)/2]
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(body)
}

// dropConn closes the connection without an answer, like a network failure.
func dropConn(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// Not hijackable (HTTP/2, recorders): abort the handler, which resets the stream.
	panic(http.ErrAbortHandler)
}

func badGateway() *response {
	return &response{status: http.StatusBadGateway, header: http.Header{"Content-Type": {"text/html; charset=utf-8"}},
		body: []byte("<html><body><h1>502 Bad Gateway</h1>The server returned an invalid or incomplete response.</body></html>")}
}

func (s *Server) traceID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	s.ctl.Lock()
	n := s.rng.Uint64()
	s.ctl.Unlock()
	b := make([]byte, 11)
	for i := range b {
		b[i] = alphabet[n%64]
		n /= 64
	}
	return string(b)
}

func (s *Server) errorResp(e *APIError, h http.Header) *response {
	if h == nil {
		h = http.Header{}
	}
	trace := s.traceID()
	h.Set("WWW-Authenticate", `OAuth "Facebook Platform" "`+errorKind(e)+`" "`+strings.ReplaceAll(e.Message, `"`, `'`)+`"`)
	h.Set("X-FB-Trace-ID", trace)
	return &response{status: e.status(), header: h, body: encode(e.body(trace)), err: e}
}

func errorKind(e *APIError) string {
	if e.Code == 190 || e.Code == 104 {
		return "invalid_token"
	}
	return "invalid_request"
}

func (s *Server) ok(v any, h http.Header) *response {
	if h == nil {
		h = http.Header{}
	}
	return &response{status: http.StatusOK, header: h, body: encode(v)}
}

// node is what the first path segment names.
type node struct {
	acct *account
	obj  *object
	job  *job
}

func (n node) typeName() string {
	switch {
	case n.job != nil:
		return "AdReportRun"
	case n.obj == nil:
		return "AdAccount"
	case n.obj.kind == KindCampaign:
		return "AdCampaignGroup"
	case n.obj.kind == KindAdSet:
		return "AdCampaign"
	}
	return "Adgroup"
}

func (n node) template() string {
	switch {
	case n.job != nil:
		return "{report_run_id}"
	case n.obj == nil:
		return "act_{id}"
	}
	return "{" + string(n.obj.kind) + "_id}"
}

func isVersion(seg string) (int, bool) {
	if len(seg) < 4 || seg[0] != 'v' || !strings.HasSuffix(seg, ".0") {
		return 0, false
	}
	n, err := strconv.Atoi(seg[1 : len(seg)-2])
	return n, err == nil
}

func (s *Server) handle(r *request) *response {
	rec := s.baseRecord(r)
	resp, fault := s.route(r, &rec)
	s.logRequest(rec, resp.status, resp.err, fault)
	return resp
}

func (s *Server) route(r *request, rec *RequestRecord) (*response, string) {
	segs := strings.Split(strings.Trim(r.path, "/"), "/")
	if segs[0] == "" {
		segs = segs[:0]
	}
	tmpl := r.method + " "
	if len(segs) > 0 {
		if v, ok := isVersion(segs[0]); ok {
			tmpl += "/{ver}"
			segs = segs[1:]
			if s.opts.MinVersion > 0 && v < s.opts.MinVersion {
				rec.Template = tmpl
				return s.errorResp(NewAPIError(2635, 0), nil), ""
			}
		}
	}
	if e := s.auth(r); e != nil {
		rec.Template = tmpl + "/" + strings.Join(segs, "/")
		return s.errorResp(e, nil), ""
	}
	if len(segs) == 0 {
		rec.Template = tmpl + "/"
		if r.method == http.MethodPost && r.params.Has("batch") && !r.batch {
			return s.batch(r), ""
		}
		return s.errorResp(errParam("Unsupported %s request to the root", strings.ToLower(r.method)), nil), ""
	}
	s.mu.RLock()
	n, found := s.resolve(segs[0])
	s.mu.RUnlock()
	if !found {
		rec.Template = tmpl + "/{unknown_id}"
		return s.errorResp(errNoObject(strings.ToLower(r.method), segs[0]), nil), ""
	}
	edge := ""
	if len(segs) > 1 {
		edge = segs[1]
	}
	tmpl += "/" + n.template()
	if edge != "" {
		tmpl += "/" + edge
	}
	rec.Template, rec.Account = tmpl, n.acct.id
	if len(segs) > 2 {
		return s.errorResp(errParam("Unknown path components: /%s", strings.Join(segs[2:], "/")), nil), ""
	}
	if !s.permitted(r.token(), n.acct) {
		return s.errorResp(NewAPIError(200, 0), s.usageHeaders(n.acct, false)), ""
	}
	insights := edge == "insights" || n.job != nil
	write := (r.method == http.MethodPost || r.method == http.MethodDelete) && !insights

	var f *Fault
	if f = s.takeFault(r, n.acct.id); f != nil {
		if f.Delay > 0 {
			time.Sleep(f.Delay)
		}
		switch f.Kind {
		case FaultError:
			return s.errorResp(f.Err, s.usageHeaders(n.acct, insights)), f.Kind.String()
		case FaultDrop:
			return &response{drop: true}, f.Kind.String()
		case Fault5xx:
			return badGateway(), f.Kind.String()
		}
	}
	if e := s.throttle(n.acct, insights); e != nil {
		return s.errorResp(e, s.usageHeaders(n.acct, insights)), "throttled"
	}
	s.charge(n.acct, insights, write)

	noop := f != nil && f.Kind == FaultNoop
	resp := s.dispatch(r, n, edge, noop)
	for k, v := range s.usageHeaders(n.acct, insights) {
		resp.header[k] = v
	}
	fault := ""
	if f != nil {
		fault = f.Kind.String()
		switch f.Kind {
		case FaultDropAfterApply:
			resp.drop = true
		case FaultMalformed:
			resp.malformed = true
		}
	}
	return resp, fault
}

// resolve finds the node named by a path segment; callers hold mu.
func (s *Server) resolve(id string) (node, bool) {
	if strings.HasPrefix(id, "act_") {
		a := s.accounts[id]
		return node{acct: a}, a != nil
	}
	if o := s.objects[id]; o != nil {
		return node{acct: o.acct, obj: o}, true
	}
	if j := s.jobs[id]; j != nil && s.now().Before(j.created.Add(30*24*time.Hour)) {
		return node{acct: j.acct, job: j}, true
	}
	return node{}, false
}

func (s *Server) auth(r *request) *APIError {
	t := r.token()
	if t == "" {
		return NewAPIError(104, 0)
	}
	if !s.tokens[t] {
		return NewAPIError(190, 0)
	}
	if s.opts.AppSecret == "" {
		return nil
	}
	p := r.params.Get("appsecret_proof")
	if p == "" {
		return &APIError{Message: "API calls from the server require an appsecret_proof argument", Type: "GraphMethodException", Code: 100}
	}
	if !hmac.Equal([]byte(p), []byte(AppSecretProof(s.opts.AppSecret, t))) {
		return &APIError{Message: "Invalid appsecret_proof provided in the API argument", Type: "GraphMethodException", Code: 100}
	}
	return nil
}

func (s *Server) permitted(token string, a *account) bool {
	allowed, restricted := s.opts.AccountTokens[a.id]
	if !restricted {
		return true
	}
	for _, t := range allowed {
		if t == token {
			return true
		}
	}
	return false
}

func (s *Server) dispatch(r *request, n node, edge string, noop bool) *response {
	get, post := r.method == http.MethodGet, r.method == http.MethodPost
	switch {
	case n.job != nil && edge == "" && get:
		return s.getJob(n.job)
	case n.job != nil && edge == "insights" && get:
		return s.jobResults(r, n.job)
	case edge == "" && get:
		if n.obj == nil {
			return s.getAccount(r, n.acct)
		}
		return s.getObject(r, n.obj)
	case edge == "" && n.obj != nil && (post || r.method == http.MethodDelete):
		params := r.params
		if r.method == http.MethodDelete {
			params = url.Values{"status": {StatusDeleted}}
		}
		return s.update(n.obj, params, noop)
	case edge == "insights" && get && n.job == nil:
		return s.syncInsights(r, n)
	case edge == "insights" && post && n.job == nil:
		return s.asyncInsights(r, n)
	case (edge == "campaigns" || edge == "adsets" || edge == "ads") && get:
		return s.listEdge(r, n, edge)
	}
	if edge != "" {
		return s.errorResp(errParam("Tried accessing nonexisting field (%s) on node type (%s)", edge, n.typeName()), nil)
	}
	return s.errorResp(errParam("Unsupported %s request on node type (%s)", strings.ToLower(r.method), n.typeName()), nil)
}

// pageURL builds an absolute paging link on the request's own host, access_token first.
func pageURL(r *request, key, cursor string) string {
	q := url.Values{}
	for k, v := range r.params {
		switch k {
		case "access_token", "after", "before", "batch":
			continue
		}
		q[k] = v
	}
	var b strings.Builder
	b.WriteString(r.scheme)
	b.WriteString("://")
	b.WriteString(r.host)
	if !strings.HasPrefix(r.path, "/") {
		b.WriteByte('/')
	}
	b.WriteString(r.path)
	b.WriteString("?access_token=")
	b.WriteString(url.QueryEscape(r.token()))
	if enc := q.Encode(); enc != "" {
		b.WriteByte('&')
		b.WriteString(enc)
	}
	b.WriteByte('&')
	b.WriteString(key)
	b.WriteByte('=')
	b.WriteString(url.QueryEscape(cursor))
	return b.String()
}

func (s *Server) limitParam(r *request) (int, *APIError) {
	v := r.params.Get("limit")
	if v == "" {
		return s.opts.DefaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errParam("Param limit must be a non-negative integer")
	}
	if n == 0 {
		n = s.opts.DefaultLimit
	}
	if n > s.opts.MaxLimit {
		n = s.opts.MaxLimit
	}
	return n, nil
}

func fmtTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02T15:04:05-0700")
}
