package fakegraph

import (
	"net/url"
	"time"
)

// RequestRecord is one logged API call (HTTP request or batch item).
type RequestRecord struct {
	Time     time.Time
	Method   string
	Path     string
	Template string     // e.g. "GET /{ver}/act_{id}/insights", "POST /{ver}/{adset_id}"
	Params   url.Values // query and form values; access_token and appsecret_proof redacted
	Account  string     // the account touched, "act_<digits>", if any
	Status   int        // HTTP status; 0 when the connection was dropped before answering
	Code     int        // Graph error code, 0 on success
	Subcode  int
	Batch    bool   // an item of a batch request
	Fault    string // injected fault that acted, if any ("drop", "noop", "throttled", …)
}

// WriteRecord is one applied change to an object field.
type WriteRecord struct {
	Time     time.Time // server clock
	ObjectID string
	Account  string
	Field    string // status, daily_budget, lifetime_budget, bid_amount, name, bid_strategy
	Old, New string // API representation (budgets and bids in minor units)
}

// Redacted replaces secrets in logged parameters.
const Redacted = "REDACTED"

func (s *Server) baseRecord(r *request) RequestRecord {
	p := make(url.Values, len(r.params))
	for k, v := range r.params {
		if k == "access_token" || k == "appsecret_proof" {
			v = []string{Redacted}
		}
		p[k] = v
	}
	return RequestRecord{Time: s.now(), Method: r.method, Path: r.path, Params: p, Batch: r.batch}
}

func (s *Server) logRequest(rec RequestRecord, status int, e *APIError, fault string) {
	rec.Status, rec.Fault = status, fault
	if e != nil {
		rec.Code, rec.Subcode = e.Code, e.Subcode
	}
	if rec.Template == "" {
		rec.Template = rec.Method + " " + rec.Path
	}
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if len(s.reqLog) >= s.opts.MaxLog {
		n := copy(s.reqLog, s.reqLog[len(s.reqLog)/2:])
		s.reqLog = s.reqLog[:n]
	}
	s.reqLog = append(s.reqLog, rec)
	s.counters[rec.Template]++
}

func (s *Server) logWrite(w WriteRecord) {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	s.writeLog = append(s.writeLog, w)
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []RequestRecord {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return append([]RequestRecord(nil), s.reqLog...)
}

// Writes returns a copy of the applied-write log, oldest first.
func (s *Server) Writes() []WriteRecord {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return append([]WriteRecord(nil), s.writeLog...)
}

// Counters returns the number of requests per path template, e.g.
// {"GET /{ver}/act_{id}/insights": 4, "POST /{ver}/": 1}.
func (s *Server) Counters() map[string]int {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	out := make(map[string]int, len(s.counters))
	for k, v := range s.counters {
		out[k] = v
	}
	return out
}

// ResetLog clears the request log, the write log and the counters.
func (s *Server) ResetLog() {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	s.reqLog, s.writeLog = nil, nil
	clear(s.counters)
}
