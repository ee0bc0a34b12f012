package graph

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Usage header names (graph-api 6.1).
const (
	hdrAppUsage       = "X-App-Usage"
	hdrAccountUsage   = "X-Ad-Account-Usage"
	hdrBUCUsage       = "X-Business-Use-Case-Usage"
	hdrInsightsThrott = "X-FB-Ads-Insights-Throttle"
)

// usageValue is one percentage read from a usage header.
type usageValue struct {
	scope   string // "app" or "account"
	account string // "act_…" for scope account, "" for app
	kind    string // e.g. "call_count", "acc_id_util_pct", "ads_management_total_time"
	pct     float64
}

// usageReport is everything one response's usage headers said.
type usageReport struct {
	values []usageValue
	// reset is the time until an account's usage score resets, by account
	// (reset_time_duration, in SECONDS).
	reset map[string]time.Duration
	// regain is how long an account is blocked, by account
	// (estimated_time_to_regain_access, in MINUTES; 0 = not blocked).
	regain map[string]time.Duration
}

func (r *usageReport) empty() bool {
	return len(r.values) == 0 && len(r.reset) == 0 && len(r.regain) == 0
}

// parseUsage reads the usage headers of h leniently: malformed or missing
// headers contribute nothing (a missing header is not 0%). account is the ad
// account the request was about; X-Ad-Account-Usage and the account part of
// X-FB-Ads-Insights-Throttle are attributed to it.
func parseUsage(h http.Header, account string) usageReport {
	var r usageReport
	if v := h.Get(hdrAppUsage); v != "" {
		if m := decodeObject(v); m != nil {
			for _, k := range []string{"call_count", "total_cputime", "total_time"} {
				if p, ok := number(m[k]); ok {
					r.values = append(r.values, usageValue{"app", "", k, p})
				}
			}
		}
	}
	if v := h.Get(hdrAccountUsage); v != "" && account != "" {
		if m := decodeObject(v); m != nil {
			if p, ok := number(m["acc_id_util_pct"]); ok {
				r.values = append(r.values, usageValue{"account", account, "acc_id_util_pct", p})
			}
			if s, ok := number(m["reset_time_duration"]); ok && s > 0 {
				r.setReset(account, seconds(s))
			}
		}
	}
	if v := h.Get(hdrInsightsThrott); v != "" {
		if m := decodeObject(v); m != nil {
			if p, ok := number(m["app_id_util_pct"]); ok {
				r.values = append(r.values, usageValue{"app", "", "insights_app_id_util_pct", p})
			}
			if p, ok := number(m["acc_id_util_pct"]); ok && account != "" {
				r.values = append(r.values, usageValue{"account", account, "insights_acc_id_util_pct", p})
			}
		}
	}
	if v := h.Get(hdrBUCUsage); v != "" {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(v), &m) == nil {
			for id, raw := range m {
				acct := id
				if !strings.HasPrefix(acct, "act_") {
					acct = "act_" + id
				}
				var entries []map[string]any
				if json.Unmarshal(raw, &entries) != nil {
					// Lenient: a single object instead of a list.
					var one map[string]any
					if json.Unmarshal(raw, &one) != nil {
						continue
					}
					entries = []map[string]any{one}
				}
				for _, e := range entries {
					typ, _ := e["type"].(string)
					typ = sanitizeKind(typ)
					for _, k := range []string{"call_count", "total_cputime", "total_time"} {
						if p, ok := number(e[k]); ok {
							r.values = append(r.values, usageValue{"account", acct, typ + "_" + k, p})
						}
					}
					if mins, ok := number(e["estimated_time_to_regain_access"]); ok && mins > 0 {
						d := seconds(mins * 60)
						if r.regain == nil {
							r.regain = map[string]time.Duration{}
						}
						if d > r.regain[acct] {
							r.regain[acct] = d
						}
					}
				}
			}
		}
	}
	return r
}

func (r *usageReport) setReset(acct string, d time.Duration) {
	if r.reset == nil {
		r.reset = map[string]time.Duration{}
	}
	if d > r.reset[acct] {
		r.reset[acct] = d
	}
}

// sanitizeKind keeps BUC type names label-safe and bounded in length.
func sanitizeKind(s string) string {
	if s == "" {
		return "unknown"
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

func seconds(s float64) time.Duration {
	if s > 86400*7 {
		s = 86400 * 7 // a nonsense value must not block an account for years
	}
	return time.Duration(s * float64(time.Second))
}

func decodeObject(s string) map[string]any {
	var m map[string]any
	if json.Unmarshal([]byte(s), &m) != nil {
		return nil
	}
	return m
}

// number accepts a JSON number or a numeric string.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return 0, false
}

// GovernorPolicy sets how usage percentages turn into waits (SPEC 12).
// Zero fields take the defaults in brackets.
type GovernorPolicy struct {
	// SlowAt is the usage % from which requests are delayed [75].
	SlowAt float64
	// StopAt is the usage % at which reads and ordinary writes stop [90].
	StopAt float64
	// PriorityStopAt is the usage % at which Priority writes stop [95].
	PriorityStopAt float64
	// MaxSlowDelay is the delay just below StopAt; it grows linearly from 0 at SlowAt [5s].
	MaxSlowDelay time.Duration
	// UsageTTL is how long a reported percentage is trusted when no newer
	// header arrives; Meta's usage score decays over 300 s [5m].
	UsageTTL time.Duration
	// StopFallback is how long requests stop at StopAt when no reset time is
	// known; then one request probes the current usage [60s].
	StopFallback time.Duration
	// ThrottleFallback is the first wait after a throttle error whose headers
	// give no time; it doubles with each consecutive throttle [60s] ...
	ThrottleFallback time.Duration
	// ThrottleFallbackMax caps that doubling [300s].
	ThrottleFallbackMax time.Duration
}

func (p *GovernorPolicy) defaults() {
	if p.SlowAt <= 0 {
		p.SlowAt = 75
	}
	if p.StopAt <= 0 {
		p.StopAt = 90
	}
	if p.PriorityStopAt <= 0 {
		p.PriorityStopAt = 95
	}
	if p.MaxSlowDelay <= 0 {
		p.MaxSlowDelay = 5 * time.Second
	}
	if p.UsageTTL <= 0 {
		p.UsageTTL = 5 * time.Minute
	}
	if p.StopFallback <= 0 {
		p.StopFallback = 60 * time.Second
	}
	if p.ThrottleFallback <= 0 {
		p.ThrottleFallback = 60 * time.Second
	}
	if p.ThrottleFallbackMax <= 0 {
		p.ThrottleFallbackMax = 300 * time.Second
	}
}

// sample is the last value of one usage kind and when it was seen.
type sample struct {
	pct float64
	at  time.Time
}

// quota is the governor's view of one ad account, or of the app.
type quota struct {
	kinds        map[string]sample
	resetAt      time.Time // usage score resets to 0 (from headers)
	blockedUntil time.Time // throttled: send nothing before this
	lastThrottle *Error    // the error that set blockedUntil
	strikes      int       // consecutive throttles without headers, for backoff
}

// governor paces requests per ad account from the usage headers and
// throttle errors. App-wide usage and app-wide throttles apply to every account.
type governor struct {
	pol  GovernorPolicy
	now  func() time.Time
	jit  func() float64
	mu   sync.Mutex
	app  quota
	accs map[string]*quota
}

func newGovernor(pol GovernorPolicy, now func() time.Time, jitter func() float64) *governor {
	pol.defaults()
	return &governor{pol: pol, now: now, jit: jitter, accs: map[string]*quota{}}
}

func (g *governor) acct(a string) *quota {
	q := g.accs[a]
	if q == nil {
		q = &quota{}
		g.accs[a] = q
	}
	return q
}

// observe records a usage report. Kinds missing from it keep their last value.
func (g *governor) observe(r *usageReport) {
	if r.empty() {
		return
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, v := range r.values {
		q := &g.app
		if v.scope == "account" {
			q = g.acct(v.account)
		}
		if q.kinds == nil {
			q.kinds = map[string]sample{}
		}
		q.kinds[v.kind] = sample{v.pct, now}
	}
	for a, d := range r.reset {
		g.acct(a).resetAt = now.Add(d)
	}
	for a, d := range r.regain {
		if t := now.Add(d); t.After(g.acct(a).resetAt) {
			g.acct(a).resetAt = t
		}
	}
}

// throttled records a throttle error for account (or the app) and returns how
// long requests must now wait. hdr is the wait the response's headers named
// for that account (0 = none).
func (g *governor) throttled(e *Error, account string, hdr time.Duration) time.Duration {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	q := &g.app
	if e.ThrottleScope() == ScopeAccount && account != "" {
		q = g.acct(account)
	}
	wait := hdr
	if wait <= 0 {
		// No time given: 60 s, doubling per consecutive throttle, with
		// jitter so that accounts do not all come back at the same instant.
		wait = g.pol.ThrottleFallback << min(q.strikes, 8)
		wait = min(wait, g.pol.ThrottleFallbackMax)
		wait += time.Duration(float64(wait) * 0.1 * g.jit())
		q.strikes++
	}
	if until := now.Add(wait); until.After(q.blockedUntil) {
		q.blockedUntil = until
	}
	q.lastThrottle = e
	return q.blockedUntil.Sub(now)
}

// succeeded resets the throttle backoff of account and of the app.
func (g *governor) succeeded(account string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.app.strikes = 0
	if q := g.accs[account]; q != nil {
		q.strikes = 0
	}
}

// gate is the governor's answer for one request about to be sent.
type gate struct {
	wait  time.Duration
	block bool    // a stop (throttle or usage >= StopAt), not a mere slow-down
	usage float64 // the usage % that decided it
	cause *Error  // the throttle error behind a throttle block, if any
}

// check says how long a request for account must wait before it is sent.
func (g *governor) check(account string, priority bool) gate {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var q *quota
	if account != "" {
		q = g.accs[account]
	}
	// Throttle blocks first: the API told us to stay away.
	until, cause := g.app.blockedUntil, g.app.lastThrottle
	if q != nil && q.blockedUntil.After(until) {
		until, cause = q.blockedUntil, q.lastThrottle
	}
	if until.After(now) {
		return gate{wait: until.Sub(now), block: true, cause: cause}
	}
	// Usage: the highest fresh percentage of the app and the account.
	u, at := g.app.max(now, g.pol.UsageTTL)
	var resetAt time.Time
	if q != nil {
		if au, aat := q.max(now, g.pol.UsageTTL); au > u {
			u, at = au, aat
		}
		resetAt = q.resetAt
	}
	stop := g.pol.StopAt
	if priority {
		stop = g.pol.PriorityStopAt
	}
	if u >= stop {
		end := at.Add(g.pol.StopFallback)
		if resetAt.After(at) {
			end = resetAt // the API said when the score resets
		}
		if end.After(now) {
			return gate{wait: end.Sub(now), block: true, usage: u}
		}
		// The stop has run its course without news: let a request through
		// (slowly) to learn the current usage.
		return gate{wait: g.pol.MaxSlowDelay, usage: u}
	}
	if u >= g.pol.SlowAt && !priority {
		f := (u - g.pol.SlowAt) / (stop - g.pol.SlowAt)
		return gate{wait: time.Duration(f * float64(g.pol.MaxSlowDelay)), usage: u}
	}
	return gate{usage: u}
}

// max returns the highest percentage observed within ttl, and when.
// Percentages observed before a reset time that has passed no longer count:
// the API said the score would be back to 0 by then.
func (q *quota) max(now time.Time, ttl time.Duration) (float64, time.Time) {
	var u float64
	var at time.Time
	reset := !q.resetAt.IsZero() && !now.Before(q.resetAt)
	for _, s := range q.kinds {
		if reset && s.at.Before(q.resetAt) {
			continue
		}
		if now.Sub(s.at) < ttl && s.pct > u {
			u, at = s.pct, s.at
		}
	}
	return u, at
}

// Usage is the client's current view of one ad account's rate-limit state,
// for status pages.
type Usage struct {
	// Percent is the highest usage percentage reported for the account or the
	// app within the governor's UsageTTL (may exceed 100).
	Percent float64
	// BlockedUntil is when a throttle on the account (or the app) ends; zero
	// when not throttled.
	BlockedUntil time.Time
}

// Usage reports the governor's view of account ("" for the app alone).
func (c *Client) Usage(account string) Usage {
	g := c.gov
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	u, _ := g.app.max(now, g.pol.UsageTTL)
	until := g.app.blockedUntil
	if q := g.accs[account]; q != nil && account != "" {
		if au, _ := q.max(now, g.pol.UsageTTL); au > u {
			u = au
		}
		if q.blockedUntil.After(until) {
			until = q.blockedUntil
		}
	}
	if !until.After(now) {
		until = time.Time{}
	}
	return Usage{Percent: u, BlockedUntil: until}
}
