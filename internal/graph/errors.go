package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap/zapcore"
)

// Kind classifies a failure by what the caller should do about it.
type Kind int

const (
	// KindOther is a failure that fits no other class; do not retry.
	KindOther Kind = iota
	// KindTransient is a temporary failure of the API or the network
	// (codes 1, 2, -2, is_transient, HTTP 5xx, timeouts, dropped connections).
	// The client already retried reads; a later run may succeed.
	KindTransient
	// KindThrottled is a rate limit (graph-api 6.2). ThrottleScope says whether
	// one ad account, the whole app, or a single object is limited.
	KindThrottled
	// KindAuth is an invalid or expired token (codes 190, 102): stop writing
	// with this token and alert.
	KindAuth
	// KindPermission is a missing permission (10, 200-299, 278, 294, ...).
	KindPermission
	// KindInvalidRequest is a request the API refused as invalid (100, ...).
	KindInvalidRequest
	// KindAnswerUnknown is a write whose answer was lost (timeout, dropped
	// connection, 5xx, a null batch item): it may or may not have been applied,
	// so the caller must read the object back (SPEC 4.10). Matches ErrAnswerLost.
	KindAnswerUnknown
	// KindBadResponse is an answer that is not the JSON the API promises
	// (truncated or malformed body, an HTML error page, a 4xx without envelope).
	KindBadResponse
	// KindCanceled is the caller's context being canceled or its deadline passing.
	KindCanceled
)

var kindNames = [...]string{"other", "transient", "throttled", "auth", "permission", "invalid_request", "answer_unknown", "bad_response", "canceled"}

// String returns the kind's lower-case name, suitable for logs.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Scope says what a throttle applies to.
type Scope int

const (
	// ScopeNone means the error is not a throttle.
	ScopeNone Scope = iota
	// ScopeAccount throttles one ad account (80000-80014, 17/2446079, 613/1487742, ...).
	ScopeAccount
	// ScopeApp throttles every account of the app (4, 17 without subcode, 341).
	ScopeApp
	// ScopeObject limits one object only (613/1487632: an ad set's budget
	// changed too often, locked for an hour). It pauses nothing else and is
	// never retried.
	ScopeObject
)

// String returns "none", "account", "app" or "object".
func (s Scope) String() string {
	switch s {
	case ScopeAccount:
		return "account"
	case ScopeApp:
		return "app"
	case ScopeObject:
		return "object"
	}
	return "none"
}

// ErrAnswerLost marks a write whose outcome is unknown: the request may have
// been applied. errors.Is(err, ErrAnswerLost) is the caller's signal to read
// the object back instead of retrying or assuming success.
var ErrAnswerLost = errors.New("answer lost: the write may or may not have been applied")

// ErrNotSent marks a batch operation that was never sent because an earlier
// chunk of the same Batch call failed; it certainly was not applied.
var ErrNotSent = errors.New("not sent")

// Error is a Graph API error envelope (graph-api 7.1) plus where it happened.
// Error strings carry the method, the endpoint template, the code, subcode and
// fbtrace_id, never the token or a URL.
type Error struct {
	// Method is the HTTP method of the failed request ("GET", "POST", "DELETE").
	Method string
	// Endpoint is the request's endpoint template, e.g. "/act_{id}/insights".
	Endpoint string
	// Account is the request's ad account ("act_123"), or "".
	Account string
	// HTTPStatus is the HTTP status of the answer (of the batch item for batch items).
	HTTPStatus int

	Message     string // "message"
	Type        string // "type", e.g. "OAuthException"
	Code        int    // "code"
	Subcode     int    // "error_subcode", 0 when absent
	UserTitle   string // "error_user_title"
	UserMsg     string // "error_user_msg"
	FBTraceID   string // "fbtrace_id"
	IsTransient bool   // "is_transient"
	// ErrorData is "error_data" normalised to a JSON object or array (the API
	// sends it as an object or as a JSON-encoded string); nil when absent.
	ErrorData json.RawMessage
	// BlameFieldSpecs lists the offending fields, from error_data or the top level.
	BlameFieldSpecs [][]string

	// kind overrides the code-based classification for errors the client
	// makes up itself (HTTP errors without envelope, governor refusals).
	kind Kind
	// scope overrides the code-based throttle scope together with kind.
	scope Scope
}

// envelope is the wire shape of an error answer.
type envelope struct {
	Error *wireError `json:"error"`
}

type wireError struct {
	Message         string          `json:"message"`
	Type            string          `json:"type"`
	Code            json.Number     `json:"code"`
	Subcode         json.Number     `json:"error_subcode"`
	UserTitle       string          `json:"error_user_title"`
	UserMsg         string          `json:"error_user_msg"`
	FBTraceID       string          `json:"fbtrace_id"`
	IsTransient     bool            `json:"is_transient"`
	ErrorData       json.RawMessage `json:"error_data"`
	BlameFieldSpecs [][]string      `json:"blame_field_specs"`
}

// decodeEnvelope decodes an error envelope from body. ok is false when body is
// not an envelope. Lenient on purpose: codes may arrive as numbers or numeric
// strings, error_data as an object or a string.
func decodeEnvelope(body []byte) (e *Error, ok bool) {
	var env envelope
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&env); err != nil || env.Error == nil {
		return nil, false
	}
	w := env.Error
	e = &Error{
		Message:     w.Message,
		Type:        w.Type,
		Code:        atoiNumber(w.Code),
		Subcode:     atoiNumber(w.Subcode),
		UserTitle:   w.UserTitle,
		UserMsg:     w.UserMsg,
		FBTraceID:   w.FBTraceID,
		IsTransient: w.IsTransient,
	}
	data := bytes.TrimSpace(w.ErrorData)
	if len(data) > 0 && data[0] == '"' {
		// error_data as a JSON-encoded string: decode twice.
		var s string
		if json.Unmarshal(data, &s) == nil {
			data = bytes.TrimSpace([]byte(s))
		}
	}
	if len(data) > 0 && !bytes.Equal(data, []byte("null")) && json.Valid(data) {
		e.ErrorData = json.RawMessage(data)
		var inner struct {
			Blame [][]string `json:"blame_field_specs"`
		}
		if data[0] == '{' && json.Unmarshal(data, &inner) == nil {
			e.BlameFieldSpecs = inner.Blame
		}
	}
	if len(w.BlameFieldSpecs) > 0 {
		e.BlameFieldSpecs = w.BlameFieldSpecs
	}
	return e, true
}

func atoiNumber(n json.Number) int {
	if n == "" {
		return 0
	}
	if i, err := strconv.Atoi(string(n)); err == nil {
		return i
	}
	if f, err := n.Float64(); err == nil {
		return int(f)
	}
	return 0
}

// Kind classifies the error (graph-api 6.2, 7.2).
func (e *Error) Kind() Kind {
	if e.kind != KindOther {
		return e.kind
	}
	switch c := e.Code; {
	case c == 190 || c == 102:
		return KindAuth
	case e.throttleScope() != ScopeNone:
		return KindThrottled
	case c == 2 && (e.Subcode == 1504041 || e.Subcode == 1504042):
		// "no data for these metrics" / "invalid custom metrics": retrying
		// cannot help although the code is the transient one.
		return KindInvalidRequest
	case c == 1 || c == 2 || c == -2 || c == 3910001 || e.IsTransient:
		return KindTransient
	case c == 10 || (c >= 200 && c <= 299) || c == 3 || c == 368 || c == 1404078 || c == 2859015:
		return KindPermission
	case (c >= 100 && c < 200) || c == 2500 || c == 2601 || c == 2635 || c == 3018 || c == -3:
		return KindInvalidRequest
	}
	return KindOther
}

// ThrottleScope reports what a throttle applies to; ScopeNone for other errors.
func (e *Error) ThrottleScope() Scope {
	if e.kind != KindOther {
		return e.scope
	}
	return e.throttleScope()
}

func (e *Error) throttleScope() Scope {
	switch c, s := e.Code, e.Subcode; {
	case c == 4, c == 341:
		return ScopeApp
	case c == 17 && s == 0:
		return ScopeApp
	case c == 17, c == 32:
		return ScopeAccount
	case c == 613 && s == 1487632:
		return ScopeObject
	case c == 613:
		return ScopeAccount
	case c >= 80000 && c <= 80014:
		return ScopeAccount
	}
	return ScopeNone
}

// IsBudgetLocked reports 613/1487632: the ad set's budget changed more than 4
// times in an hour and is locked for an hour. Do not retry.
func (e *Error) IsBudgetLocked() bool { return e.Code == 613 && e.Subcode == 1487632 }

// IsBudgetTooLow reports a budget below the minimum (100/1885272, 100/1885650,
// or the documented example code 1487901).
func (e *Error) IsBudgetTooLow() bool {
	return e.Subcode == 1885272 || e.Subcode == 1885650 || e.Subcode == 1487901 || e.Code == 1487901
}

// IsCampaignBudgetConflict reports an ad set budget write refused because the
// campaign holds the budget (1885621, or 4834002 per one source).
func (e *Error) IsCampaignBudgetConflict() bool {
	return e.Subcode == 1885621 || e.Subcode == 4834002 || e.Code == 4834002
}

// IsInsightsTimeout reports a synchronous insights query that timed out
// (100/1504018, 2/1504038): switch to an async job at once, do not retry.
func (e *Error) IsInsightsTimeout() bool {
	return (e.Code == 100 && e.Subcode == 1504018) || (e.Code == 2 && e.Subcode == 1504038)
}

// authReasons names the 190 subcodes (graph-api 7.2) in words an operator can act on.
var authReasons = map[int]string{
	458: "app not installed for the token's user",
	459: "token's user is checkpointed (must log in at facebook.com)",
	460: "token invalidated (password changed or session ended)",
	463: "access token expired",
	464: "token's user is unconfirmed",
	467: "access token invalid (user logged out or token revoked)",
	492: "invalid session (user lost their role)",
	493: "token's user has not used the app for 90 days",
}

// AuthReason returns a short operator-facing explanation of an auth error,
// e.g. "access token expired" for 190/463; "" for other errors.
func (e *Error) AuthReason() string {
	switch {
	case e.Code == 190:
		if r, ok := authReasons[e.Subcode]; ok {
			return r
		}
		return "access token invalid, expired or revoked"
	case e.Code == 102:
		return "session key invalid or expired"
	}
	return ""
}

// Error formats the error without the token or any URL.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("graph: ")
	if e.Method != "" {
		b.WriteString(e.Method)
		b.WriteByte(' ')
	}
	b.WriteString(e.Endpoint)
	if e.Account != "" {
		b.WriteString(" (")
		b.WriteString(e.Account)
		b.WriteByte(')')
	}
	b.WriteString(": ")
	if r := e.AuthReason(); r != "" {
		b.WriteString(r)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	if e.UserTitle != "" || e.UserMsg != "" {
		b.WriteString(" [")
		b.WriteString(e.UserTitle)
		if e.UserTitle != "" && e.UserMsg != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.UserMsg)
		b.WriteByte(']')
	}
	b.WriteString(" (")
	if e.Code != 0 || e.kind == KindOther {
		b.WriteString("code ")
		b.WriteString(strconv.Itoa(e.Code))
	} else {
		b.WriteString(e.Kind().String())
	}
	if e.Subcode != 0 {
		b.WriteString(", subcode ")
		b.WriteString(strconv.Itoa(e.Subcode))
	}
	if e.HTTPStatus != 0 {
		b.WriteString(", http ")
		b.WriteString(strconv.Itoa(e.HTTPStatus))
	}
	if e.FBTraceID != "" {
		b.WriteString(", fbtrace_id ")
		b.WriteString(e.FBTraceID)
	}
	b.WriteByte(')')
	return b.String()
}

// MarshalLogObject lets callers log an *Error with zap.Object and get the
// fields SPEC 8.1 asks for (code, error_subcode, fbtrace_id).
func (e *Error) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("endpoint", e.Endpoint)
	if e.Account != "" {
		enc.AddString("account", e.Account)
	}
	enc.AddInt("code", e.Code)
	if e.Subcode != 0 {
		enc.AddInt("error_subcode", e.Subcode)
	}
	if e.FBTraceID != "" {
		enc.AddString("fbtrace_id", e.FBTraceID)
	}
	if e.HTTPStatus != 0 {
		enc.AddInt("http_status", e.HTTPStatus)
	}
	enc.AddString("kind", e.Kind().String())
	enc.AddString("message", e.Message)
	return nil
}

// KindOf classifies any error returned by this package: *Error, lost answers,
// transport failures (KindTransient) and context cancellation.
func KindOf(err error) Kind {
	if err == nil {
		return KindOther
	}
	if errors.Is(err, ErrAnswerLost) {
		return KindAnswerUnknown
	}
	var ge *Error
	if errors.As(err, &ge) {
		return ge.Kind()
	}
	var te *TransportError
	if errors.As(err, &te) {
		if te.canceled {
			return KindCanceled
		}
		return KindTransient
	}
	if isContextErr(err) {
		return KindCanceled
	}
	return KindOther
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var ge *Error
	ok := errors.As(err, &ge)
	return ge, ok
}

// TransportError is a failure below the Graph protocol (connection refused or
// reset, timeout, truncated body). Its text names the method and endpoint
// template; the URL that Go's *url.Error would print (with the access token
// in its query) is stripped.
type TransportError struct {
	// Method is the HTTP method of the failed request.
	Method string
	// Endpoint is the request's endpoint template, e.g. "/act_{id}/insights".
	Endpoint string
	// Account is the request's ad account, or "".
	Account string
	// Err is the underlying cause with any *url.Error unwrapped.
	Err      error
	canceled bool
}

// Error formats the failure without any URL.
func (e *TransportError) Error() string {
	acct := ""
	if e.Account != "" {
		acct = " (" + e.Account + ")"
	}
	return "graph: " + e.Method + " " + e.Endpoint + acct + ": " + e.Err.Error()
}

// Unwrap returns the cause, so errors.Is(err, context.DeadlineExceeded) and
// errors.Is(err, io.ErrUnexpectedEOF) work.
func (e *TransportError) Unwrap() error { return e.Err }

// stripURL removes the *url.Error layers from err: their text carries the
// full request URL, and a GET URL carries the access token.
func stripURL(err error) error {
	for {
		var ue *url.Error
		if !errors.As(err, &ue) {
			return err
		}
		if ue.Err == nil {
			return errors.New(ue.Op + " failed")
		}
		// Keep whatever wrapped the *url.Error only if it is the *url.Error itself.
		err = ue.Err
	}
}

// sanitize removes secrets from text the server sent back (a careless proxy
// or fake may echo the request URL) and bounds its length.
func sanitize(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return truncate(s, 500)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// answerLost wraps a cause so that it matches ErrAnswerLost.
func answerLost(cause error) error {
	return &lostError{cause: cause}
}

type lostError struct{ cause error }

func (e *lostError) Error() string {
	return e.cause.Error() + " (" + ErrAnswerLost.Error() + "; read the object back)"
}

func (e *lostError) Unwrap() []error { return []error{ErrAnswerLost, e.cause} }
