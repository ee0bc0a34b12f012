package fakegraph

import (
	"math"
	"net/http"
	"time"
)

// UsageOptions configures the rate-limit model: per ad account, two scores (ads_management
// and ads_insights) made of points that expire after Window on the server's clock. A call is
// refused while its score is at or above the budget; refused calls cost nothing, so an
// account recovers as the clock advances.
type UsageOptions struct {
	Window           time.Duration // default 5 minutes
	ManagementBudget float64       // points per Window for object reads and writes; default 9000
	InsightsBudget   float64       // points per Window for insights calls; default 9000
	ReadPoints       float64       // default 1
	WritePoints      float64       // default 3
	// ManagementCode is the error for an exhausted management budget: 80004 (default, subcode
	// 2446079), 17 (subcode 2446079) or 613 (subcode 1487742).
	ManagementCode int
	// AppBudget, when > 0, is an app-wide score over all accounts; past it every call gets code 4.
	AppBudget float64
	// Tier is reported as ads_api_access_tier; default standard_access.
	Tier string
}

func (u UsageOptions) withDefaults() UsageOptions {
	if u.Window <= 0 {
		u.Window = 5 * time.Minute
	}
	if u.ManagementBudget <= 0 {
		u.ManagementBudget = 9000
	}
	if u.InsightsBudget <= 0 {
		u.InsightsBudget = 9000
	}
	if u.ReadPoints <= 0 {
		u.ReadPoints = 1
	}
	if u.WritePoints <= 0 {
		u.WritePoints = 3
	}
	if u.ManagementCode == 0 {
		u.ManagementCode = 80004
	}
	if u.Tier == "" {
		u.Tier = "standard_access"
	}
	return u
}

// scoreWin is a decaying score: points with timestamps, summed over a window.
type scoreWin struct {
	events []scoreEvent
	sum    float64
}

type scoreEvent struct {
	t   time.Time
	pts float64
}

func (w *scoreWin) prune(now time.Time, window time.Duration) {
	cut := now.Add(-window)
	i := 0
	for i < len(w.events) && !w.events[i].t.After(cut) {
		w.sum -= w.events[i].pts
		i++
	}
	if i > 0 {
		w.events = append(w.events[:0], w.events[i:]...)
		if len(w.events) == 0 {
			w.sum = 0 // no float drift once empty
		}
	}
}

func (w *scoreWin) add(now time.Time, pts float64) {
	// Coalesce calls within a second to keep the list short under load.
	if n := len(w.events); n > 0 && now.Sub(w.events[n-1].t) < time.Second && !now.Before(w.events[n-1].t) {
		w.events[n-1].pts += pts
	} else {
		w.events = append(w.events, scoreEvent{now, pts})
	}
	w.sum += pts
}

// regain is how long until the score falls below budget.
func (w *scoreWin) regain(now time.Time, window time.Duration, budget float64) time.Duration {
	sum := w.sum
	for _, e := range w.events {
		if sum < budget {
			break
		}
		sum -= e.pts
		if sum < budget {
			return e.t.Add(window).Sub(now)
		}
	}
	return 0
}

// reset is how long until the score is back to zero.
func (w *scoreWin) reset(now time.Time, window time.Duration) time.Duration {
	if len(w.events) == 0 {
		return 0
	}
	return w.events[len(w.events)-1].t.Add(window).Sub(now)
}

type acctUsage struct {
	mgmt, ins scoreWin
}

// Usage is an account's current usage, as the headers report it.
type Usage struct {
	Management float64 // percent of ManagementBudget (can exceed 100)
	Insights   float64 // percent of InsightsBudget
	App        float64 // percent of the app budget
	// Throttled is true while calls on the account are refused (budget or ThrottleAccount).
	Throttled bool
}

// Usage reports an account's current usage.
func (s *Server) Usage(accountID string) Usage {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	now := s.now()
	id := accountKey(accountID)
	u := s.acctUsageLocked(id, now)
	o := s.opts.Usage
	out := Usage{
		Management: u.mgmt.sum / o.ManagementBudget * 100,
		Insights:   u.ins.sum / o.InsightsBudget * 100,
		App:        s.app.sum / s.appBudget() * 100,
	}
	out.Throttled = now.Before(s.throttled[id]) || u.mgmt.sum >= o.ManagementBudget || u.ins.sum >= o.InsightsBudget
	return out
}

func (s *Server) appBudget() float64 {
	if s.opts.Usage.AppBudget > 0 {
		return s.opts.Usage.AppBudget
	}
	return 1e6 // reporting only
}

func (s *Server) acctUsageLocked(id string, now time.Time) *acctUsage {
	u := s.usage[id]
	if u == nil {
		u = &acctUsage{}
		s.usage[id] = u
	}
	w := s.opts.Usage.Window
	u.mgmt.prune(now, w)
	u.ins.prune(now, w)
	s.app.prune(now, w)
	return u
}

// throttle decides whether a call on the account is refused, and with which error.
func (s *Server) throttle(a *account, insights bool) *APIError {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	now := s.now()
	o := s.opts.Usage
	u := s.acctUsageLocked(a.id, now)
	if o.AppBudget > 0 && s.app.sum >= o.AppBudget {
		return NewAPIError(4, 0)
	}
	if until := s.throttled[a.id]; now.Before(until) {
		return s.throttleErr(insights)
	}
	if insights && u.ins.sum >= o.InsightsBudget {
		return s.throttleErr(true)
	}
	if !insights && u.mgmt.sum >= o.ManagementBudget {
		return s.throttleErr(false)
	}
	return nil
}

func (s *Server) throttleErr(insights bool) *APIError {
	if insights {
		return NewAPIError(80000, 2446079)
	}
	switch s.opts.Usage.ManagementCode {
	case 17:
		return NewAPIError(17, 2446079)
	case 613:
		return NewAPIError(613, 1487742)
	}
	return NewAPIError(80004, 2446079)
}

func (s *Server) charge(a *account, insights, write bool) {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	now := s.now()
	o := s.opts.Usage
	u := s.acctUsageLocked(a.id, now)
	pts := o.ReadPoints
	if write {
		pts = o.WritePoints
	}
	if insights {
		u.ins.add(now, pts)
	} else {
		u.mgmt.add(now, pts)
	}
	s.app.add(now, pts)
}

func pct(sum, budget float64) int { return int(math.Round(sum / budget * 100)) }

func minutesCeil(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Minutes()))
}

// usageHeaders renders the usage headers for a call on the account (nil: app only).
func (s *Server) usageHeaders(a *account, insights bool) http.Header {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	now := s.now()
	o := s.opts.Usage
	h := http.Header{}
	appPct := pct(s.app.sum, s.appBudget())
	h.Set("X-App-Usage", string(encode(jobj{{"call_count", appPct}, {"total_cputime", appPct / 2}, {"total_time", appPct * 3 / 4}})))
	if a == nil {
		return h
	}
	u := s.acctUsageLocked(a.id, now)
	forced := s.throttled[a.id].Sub(now)
	entry := func(typ string, w *scoreWin, budget float64) jobj {
		p := pct(w.sum, budget)
		regain := w.regain(now, o.Window, budget)
		if forced > 0 {
			p = max(p, 100)
			regain = max(regain, forced)
		}
		return jobj{{"type", typ}, {"call_count", p}, {"total_cputime", p / 2}, {"total_time", p * 3 / 4},
			{"estimated_time_to_regain_access", minutesCeil(regain)}, {"ads_api_access_tier", o.Tier}}
	}
	h.Set("X-Business-Use-Case-Usage", string(encode(jobj{{a.num, []jobj{
		entry("ads_management", &u.mgmt, o.ManagementBudget),
		entry("ads_insights", &u.ins, o.InsightsBudget),
	}}})))
	accPct := roundTo(u.mgmt.sum/o.ManagementBudget*100, 2)
	h.Set("X-Ad-Account-Usage", string(encode(jobj{{"acc_id_util_pct", accPct},
		{"reset_time_duration", int(u.mgmt.reset(now, o.Window).Seconds())}, {"ads_api_access_tier", o.Tier}})))
	if insights {
		h.Set("X-FB-Ads-Insights-Throttle", string(encode(jobj{{"app_id_util_pct", roundTo(s.app.sum/s.appBudget()*100, 2)},
			{"acc_id_util_pct", roundTo(u.ins.sum/o.InsightsBudget*100, 2)}, {"ads_api_access_tier", o.Tier}})))
	}
	return h
}

// ThrottleAccount makes every call on the account fail with its throttling error (80000 for
// insights, the management code otherwise) for d on the server's clock; d <= 0 lifts it.
func (s *Server) ThrottleAccount(accountID string, d time.Duration) {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	id := accountKey(accountID)
	if d <= 0 {
		delete(s.throttled, id)
		return
	}
	s.throttled[id] = s.now().Add(d)
}
