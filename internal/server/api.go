package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/state"
)

// Limits of GET /api/v1/actions.
const (
	// DefaultActionsLimit is the number of records returned when limit is not given.
	DefaultActionsLimit = 100
	// MaxActionsLimit is the largest limit accepted.
	MaxActionsLimit = 1000
)

// Action is one audit record as GET /api/v1/actions returns it, with the field names
// of SPEC 7.
//
// Before and After are JSON strings for statuses ("ACTIVE", "PAUSED"), JSON integers in
// the account currency's minor units for budgets and bids (5000 is 50.00 USD; 5000 JPY
// is ¥5000: Meta's offset table, internal/money), and null when the action writes
// nothing (notify) or the value is unknown. The store keeps no currency, so the API
// does not convert; the status page does, with the Source's currencies.
//
// Every field is always present; labels and values are {} when empty. DryRun is an
// addition to SPEC 7's list: a dry run's skips have a result like any other.
type Action struct {
	ID         int64                   `json:"id"`
	Time       string                  `json:"time"` // RFC 3339, UTC, with fractional seconds
	RunID      string                  `json:"run_id"`
	Group      string                  `json:"group"`
	Rule       string                  `json:"rule"`
	AccountID  string                  `json:"account_id"`
	Level      string                  `json:"level"`
	ObjectID   string                  `json:"object_id"`
	ObjectName string                  `json:"object_name"`
	Kind       string                  `json:"kind"`
	Field      string                  `json:"field"`
	Before     any                     `json:"before"`
	After      any                     `json:"after"`
	Result     string                  `json:"result"`
	CappedBy   string                  `json:"capped_by"`
	Error      string                  `json:"error"`
	Labels     map[string]string       `json:"labels"`
	Values     map[string]state.Scalar `json:"values"`
	DryRun     bool                    `json:"dry_run"`
}

// ActionFromRecord converts an audit record to its API form.
func ActionFromRecord(r state.AuditRecord) Action {
	labels, values := r.Labels, r.Values
	if labels == nil {
		labels = map[string]string{}
	}
	if values == nil {
		values = map[string]state.Scalar{}
	}
	return Action{
		ID: r.ID, Time: r.Time.UTC().Format(time.RFC3339Nano), RunID: r.RunID, Group: r.Group,
		Rule: r.Rule, AccountID: r.AccountID, Level: r.Level, ObjectID: r.ObjectID,
		ObjectName: r.ObjectName, Kind: r.Kind, Field: r.Field, Before: valueJSON(r.Before),
		After: valueJSON(r.After), Result: r.Result, CappedBy: r.CappedBy, Error: r.Error,
		Labels: labels, Values: values, DryRun: r.DryRun,
	}
}

// valueJSON renders a state.Value as the API shows it: string, integer or null.
func valueJSON(v state.Value) any {
	if n, ok := v.Amount(); ok {
		return n
	}
	if s, ok := v.Status(); ok {
		return s
	}
	return nil
}

// ActionsResponse is the body of GET /api/v1/actions.
type ActionsResponse struct {
	Actions []Action `json:"actions"`
}

// KillSwitchResponse is the body of POST /api/v1/pause and /api/v1/resume: what the
// request did and every kill switch engaged afterwards.
type KillSwitchResponse struct {
	// Scope is the scope the request engaged or released ("all", "group G", …).
	Scope string `json:"scope"`
	// Released is set by resume: false when that exact scope was not engaged.
	Released *bool `json:"released,omitempty"`
	// Engaged lists every kill switch engaged now; writes may go on where none applies.
	Engaged []KillSwitchView `json:"engaged"`
}

// ErrorResponse is the body of every JSON error.
type ErrorResponse struct {
	Error string `json:"error"`
}

func (s *Server) apiRules(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.status(r.Context()))
}

// status collects the Status from the Source and fills what the server knows itself.
func (s *Server) status(ctx context.Context) Status {
	var st Status
	if s.opts.Source != nil {
		st = s.opts.Source.Status(ctx)
	}
	if st.Now.IsZero() {
		st.Now = s.opts.Now()
	}
	st.Now = st.Now.UTC()
	if s.opts.Ready != nil || s.opts.Source == nil {
		st.Ready = s.ready(ctx) == nil
	}
	if s.opts.Kill != nil {
		ks, err := s.opts.Kill.ListKillSwitches(ctx)
		if err != nil {
			s.log.Error("list kill switches", zap.Error(err))
		} else {
			st.KillSwitches = killViews(ks)
		}
	}
	if st.KillSwitches == nil {
		st.KillSwitches = []KillSwitchView{}
	}
	if st.Groups == nil {
		st.Groups = []GroupView{}
	}
	return st
}

// actionsParams are the accepted parameters of GET /api/v1/actions.
var actionsParams = []string{"rule", "object", "since", "limit", "group", "account", "result"}

func (s *Server) apiActions(w http.ResponseWriter, r *http.Request) {
	q, err := parseActionsQuery(r.URL.Query(), s.opts.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.opts.Audit == nil {
		writeError(w, http.StatusServiceUnavailable, "no audit log")
		return
	}
	recs, err := s.opts.Audit.QueryAudit(r.Context(), q)
	if err != nil {
		s.log.Error("query audit", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "query audit log: "+err.Error())
		return
	}
	out := ActionsResponse{Actions: make([]Action, 0, len(recs))}
	for _, rec := range recs {
		out.Actions = append(out.Actions, ActionFromRecord(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

// parseActionsQuery turns the parameters of GET /api/v1/actions into an audit query:
//
//	rule    rule name, or GROUP/RULE
//	object  object id
//	group, account, result  exact matches (extensions of SPEC 7)
//	since   RFC 3339 time, or a Go duration (24h, 90m) meaning now minus it
//	limit   1..MaxActionsLimit, default DefaultActionsLimit
//
// Unknown parameters are an error, so that a typo does not silently return everything.
func parseActionsQuery(v url.Values, now time.Time) (state.AuditQuery, error) {
	q := state.AuditQuery{Limit: DefaultActionsLimit}
	if err := checkParams(v, actionsParams); err != nil {
		return q, err
	}
	q.Rule = v.Get("rule")
	if g, r, ok := strings.Cut(q.Rule, "/"); ok {
		if g == "" || r == "" {
			return q, fmt.Errorf("rule %q: want RULE or GROUP/RULE", q.Rule)
		}
		q.Group, q.Rule = g, r
	}
	if g := v.Get("group"); g != "" {
		if q.Group != "" && q.Group != g {
			return q, fmt.Errorf("group %q contradicts rule %q", g, v.Get("rule"))
		}
		q.Group = g
	}
	q.ObjectID = v.Get("object")
	q.AccountID = v.Get("account")
	q.Result = v.Get("result")
	if s := v.Get("since"); s != "" {
		t, err := parseSince(s, now)
		if err != nil {
			return q, err
		}
		q.Since = t
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxActionsLimit {
			return q, fmt.Errorf("limit %q: want an integer from 1 to %d", s, MaxActionsLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// parseSince accepts an RFC 3339 time or a positive duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("since %q: want an RFC 3339 time (2026-11-20T10:00:00Z) or a positive duration (24h)", s)
	}
	return now.Add(-d).UTC(), nil
}

// checkParams rejects parameters not in allowed, and parameters given twice.
func checkParams(v url.Values, allowed []string) error {
	var unknown []string
	for k, vals := range v {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
			continue
		}
		if len(vals) > 1 {
			return fmt.Errorf("parameter %q given %d times", k, len(vals))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown parameter %s (accepted: %s)", strings.Join(unknown, ", "), strings.Join(allowed, ", "))
	}
	return nil
}

// killParams are the accepted parameters of POST /api/v1/pause and /api/v1/resume.
var killParams = []string{"account", "group", "reason"}

// killScope reads the scope of a pause or resume request from the query string (or a
// form body). Unknown parameters are rejected: a misspelt ?acount= on resume would
// otherwise release the "all" switch.
func killScope(r *http.Request) (state.KillScope, string, error) {
	if err := r.ParseForm(); err != nil {
		return state.KillScope{}, "", fmt.Errorf("parse request: %w", err)
	}
	if err := checkParams(r.Form, killParams); err != nil {
		return state.KillScope{}, "", err
	}
	scope := state.KillScope{Group: r.Form.Get("group"), AccountID: r.Form.Get("account")}
	return scope, r.Form.Get("reason"), nil
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	if s.opts.Kill == nil {
		writeError(w, http.StatusServiceUnavailable, "no kill switch store")
		return
	}
	scope, reason, err := killScope(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	by := "api " + r.RemoteAddr
	k := state.KillSwitch{Scope: scope, Reason: reason, By: by, EngagedAt: s.opts.Now().UTC()}
	if err := s.opts.Kill.EngageKillSwitch(r.Context(), k); err != nil {
		s.log.Error("engage kill switch", zap.String("scope", scope.String()), zap.Error(err))
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.log.Warn("kill switch engaged: writes stop", zap.String("scope", scope.String()),
		zap.String("reason", reason), zap.String("by", by))
	s.killChanged()
	s.writeKillSwitches(w, r, KillSwitchResponse{Scope: scope.String()})
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	if s.opts.Kill == nil {
		writeError(w, http.StatusServiceUnavailable, "no kill switch store")
		return
	}
	scope, _, err := killScope(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	released, err := s.opts.Kill.ReleaseKillSwitch(r.Context(), scope)
	if err != nil {
		s.log.Error("release kill switch", zap.String("scope", scope.String()), zap.Error(err))
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.log.Warn("kill switch released", zap.String("scope", scope.String()), zap.Bool("was_engaged", released),
		zap.String("by", "api "+r.RemoteAddr))
	if released {
		s.killChanged()
	}
	s.writeKillSwitches(w, r, KillSwitchResponse{Scope: scope.String(), Released: &released})
}

func (s *Server) killChanged() {
	if s.opts.OnKillSwitch != nil {
		s.opts.OnKillSwitch()
	}
}

// writeKillSwitches completes resp with the switches engaged now and writes it.
func (s *Server) writeKillSwitches(w http.ResponseWriter, r *http.Request, resp KillSwitchResponse) {
	ks, err := s.opts.Kill.ListKillSwitches(r.Context())
	if err != nil {
		s.log.Error("list kill switches", zap.Error(err))
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	resp.Engaged = killViews(ks)
	writeJSON(w, http.StatusOK, resp)
}

// killViews converts stored kill switches to their view.
func killViews(ks []state.KillSwitch) []KillSwitchView {
	out := make([]KillSwitchView, 0, len(ks))
	for _, k := range ks {
		out = append(out, KillSwitchView{
			Scope: k.Scope.String(), Group: k.Scope.Group, AccountID: k.Scope.AccountID,
			Reason: k.Reason, By: k.By, EngagedAt: k.EngagedAt.UTC(),
		})
	}
	return out
}

// writeJSON writes v as indented JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorResponse{Error: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// writeError writes {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: msg})
}
