package fakegraph

import (
	"strings"
	"time"
)

// FaultKind says what an injected fault does to a request.
type FaultKind int

// Fault kinds.
const (
	// FaultError answers with Fault.Err (and does nothing else).
	FaultError FaultKind = iota
	// FaultDrop closes the connection without an answer; nothing is applied. In a batch the
	// item's answer is null.
	FaultDrop
	// FaultDropAfterApply processes the request (a write is applied) and then closes the
	// connection: the answer is lost. In a batch the item's answer is null.
	FaultDropAfterApply
	// FaultNoop makes a valid write answer {"success":true} without changing anything
	// (graph-api 13.13). Reads are unaffected.
	FaultNoop
	// FaultMalformed processes the request and then sends a truncated JSON body.
	FaultMalformed
	// Fault5xx answers HTTP 502 with an HTML body; nothing is applied.
	Fault5xx
	// FaultDelay only waits Fault.Delay, then serves the request normally.
	FaultDelay
)

// String names the kind as it appears in RequestRecord.Fault.
func (k FaultKind) String() string {
	switch k {
	case FaultError:
		return "error"
	case FaultDrop:
		return "drop"
	case FaultDropAfterApply:
		return "drop_after_apply"
	case FaultNoop:
		return "noop"
	case FaultMalformed:
		return "malformed"
	case Fault5xx:
		return "5xx"
	case FaultDelay:
		return "delay"
	}
	return "unknown"
}

// Fault is one injected misbehaviour.
type Fault struct {
	Kind  FaultKind
	Err   *APIError     // for FaultError
	Delay time.Duration // waited before the fault acts (any kind)
}

// ErrorFault is a FaultError with Graph's canonical body for code/subcode, e.g.
// ErrorFault(190, 463), ErrorFault(613, 1487632), ErrorFault(1, 0) (is_transient).
func ErrorFault(code, subcode int) Fault {
	return Fault{Kind: FaultError, Err: NewAPIError(code, subcode)}
}

// FaultRule scripts a fault for the next matching requests (batch items included).
type FaultRule struct {
	Method  string // "GET", "POST", "DELETE"; empty matches any
	Path    string // substring of the path after the version, e.g. "/insights", "act_1/ads", "101"; empty matches any
	Account string // "act_<digits>"; empty matches any
	Times   int    // how many requests it hits: 0 means 1, negative means forever
	Fault   Fault
}

// FaultRates are probabilities per HTTP request (not per batch item), drawn from the seeded
// random source: connection dropped before processing, HTTP 502, truncated body.
type FaultRates struct {
	Drop      float64
	Status5xx float64
	Malformed float64
}

// Inject queues a scripted fault; rules are tried in the order they were added.
func (s *Server) Inject(rule FaultRule) {
	if rule.Times == 0 {
		rule.Times = 1
	}
	if rule.Account != "" {
		rule.Account = accountKey(rule.Account)
	}
	s.ctl.Lock()
	defer s.ctl.Unlock()
	s.rules = append(s.rules, &rule)
}

// PendingFaults is the number of scripted fault rules not yet used up.
func (s *Server) PendingFaults() int {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return len(s.rules)
}

// SetFaultRates sets the random fault rates.
func (s *Server) SetFaultRates(r FaultRates) {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	s.rates = r
}

// SetLatency delays every HTTP request (a batch once) by d, in real time.
func (s *Server) SetLatency(d time.Duration) {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	s.latency = d
}

// ClearFaults removes scripted faults, rates, latency and account throttles.
func (s *Server) ClearFaults() {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	s.rules, s.rates, s.latency = nil, FaultRates{}, 0
	clear(s.throttled)
}

func stripVersion(path string) string {
	p := strings.TrimPrefix(path, "/")
	if i := strings.IndexByte(p, '/'); i > 0 {
		if _, ok := isVersion(p[:i]); ok {
			return p[i:]
		}
	} else if _, ok := isVersion(p); ok {
		return "/"
	}
	return "/" + p
}

func (s *Server) takeFault(r *request, acct string) *Fault {
	path := stripVersion(r.path)
	s.ctl.Lock()
	defer s.ctl.Unlock()
	for i, rule := range s.rules {
		if (rule.Method != "" && !strings.EqualFold(rule.Method, r.method)) ||
			(rule.Account != "" && rule.Account != acct) ||
			(rule.Path != "" && !strings.Contains(path, rule.Path)) {
			continue
		}
		f := rule.Fault
		if rule.Times > 0 {
			rule.Times--
			if rule.Times == 0 {
				s.rules = append(s.rules[:i], s.rules[i+1:]...)
			}
		}
		return &f
	}
	return nil
}
