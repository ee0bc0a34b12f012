package actions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/graph"
	"github.com/rulesd/rulesd/internal/state"
)

// outcome is what an error means for a write.
type outcome struct {
	reason    string // for a write: what happened and what follows
	what      string // the failure alone, e.g. "Meta had a temporary problem (code 2)"
	permanent bool
	locked    bool
	auth      bool
	api       *graph.Error
}

// classify maps an error from the Graph to a marketer-readable reason and the
// flags of Result. Reasons quote Meta's code and subcode and, where it helps,
// Meta's own message with any URL removed; never a token or URL.
func classify(err error) outcome {
	retry := func(what string) outcome {
		return outcome{what: what, reason: "not applied: " + what + "; a later run retries"}
	}
	if errors.Is(err, errTokenFailed) {
		return outcome{what: "the access token failed", reason: errTokenFailed.Error()}
	}
	if errors.Is(err, graph.ErrNotSent) {
		return outcome{what: "an earlier part of the batch request failed",
			reason: "not sent: an earlier part of the batch request failed; a later run retries"}
	}
	lost := errors.Is(err, graph.ErrAnswerLost)
	e, ok := graph.AsError(err)
	if !ok {
		switch kind := graph.KindOf(err); {
		case kind == graph.KindCanceled && lost:
			return outcome{what: "rulesd stopped before Meta answered", reason: "rulesd stopped before Meta answered"}
		case kind == graph.KindCanceled:
			return outcome{what: "rulesd stopped", reason: "not sent: rulesd stopped"}
		case lost:
			w := "the answer from Meta was lost (connection dropped or timed out)"
			return outcome{what: w, reason: w}
		default:
			return outcome{what: "could not reach Meta", reason: "not sent: could not reach Meta; a later run retries"}
		}
	}
	code := codeText(e)
	var o outcome
	switch kind := e.Kind(); {
	case lost:
		o.what = "the answer from Meta was lost (" + code + ")"
		o.reason = o.what
	case e.IsBudgetLocked():
		o.locked, o.permanent = true, true
		o.what = "Meta locked this budget for an hour: it was changed too often (" + code + ")"
		o.reason = o.what
	case e.IsBudgetTooLow():
		o.permanent = true
		what := "the budget is below the minimum for this currency"
		if e.Subcode == 1885650 {
			what = "the budget must be at least 10% above what was already spent"
		}
		o.what = "Meta refused: " + what + " (" + code + ")"
		o.reason = o.what + detail(e.UserMsg)
	case e.IsCampaignBudgetConflict():
		o.permanent = true
		o.what = "Meta refused: this ad set's budget is on its campaign (Advantage campaign budget; for a campaign: its budget is on its ad sets) (" + code + ")"
		o.reason = o.what
	case kind == graph.KindAuth:
		o.auth = true
		why := e.AuthReason()
		if why == "" {
			why = "authentication failed"
		}
		o.what = "Meta refused the access token: " + why + " (" + code + ")"
		o.reason = o.what + "; writes with this token stop until it is replaced"
	case kind == graph.KindPermission:
		o.permanent = true
		o.what = "Meta refused: the access token lacks permission for this change (" + code + ")"
		o.reason = o.what + detail(message(e))
	case kind == graph.KindThrottled:
		o = retry("Meta is rate-limiting requests (" + code + ")")
	case kind == graph.KindTransient:
		o = retry("Meta had a temporary problem (" + code + ")")
	case kind == graph.KindBadResponse:
		o = retry("Meta's answer could not be understood (" + code + ")")
	case kind == graph.KindCanceled:
		o.what, o.reason = "rulesd stopped", "not sent: rulesd stopped"
	default: // invalid request and unknown codes: the same request would fail again
		o.permanent = true
		o.what = "Meta refused (" + code + ")" + detail(message(e))
		o.reason = "Meta refused the change (" + code + ")" + detail(message(e))
	}
	o.api = e
	return o
}

// codeText renders "code 100/1885272", "code 190" or, for errors without a
// Graph code, "HTTP 502".
func codeText(e *graph.Error) string {
	switch {
	case e.Code != 0 && e.Subcode != 0:
		return "code " + strconv.Itoa(e.Code) + "/" + strconv.Itoa(e.Subcode)
	case e.Code != 0:
		return "code " + strconv.Itoa(e.Code)
	case e.HTTPStatus != 0:
		return "HTTP " + strconv.Itoa(e.HTTPStatus)
	}
	return e.Kind().String()
}

// message is Meta's explanation: the user-facing text when there is one.
func message(e *graph.Error) string {
	if e.UserMsg != "" {
		if e.UserTitle != "" && !strings.Contains(e.UserMsg, e.UserTitle) {
			return e.UserTitle + ": " + e.UserMsg
		}
		return e.UserMsg
	}
	return e.Message
}

var (
	urlRE     = regexp.MustCompile(`(?i)\b(?:https?|wss?|ftp)://\S*`)
	codeRE    = regexp.MustCompile(`^\(#-?\d+\)\s*`)
	spaceRE   = regexp.MustCompile(`\s+`)
	refPhrase = regexp.MustCompile(`(?i)\s*(?:for more info, please refer to|please read the graph api documentation at)\s*[.:]?\s*$`)
)

// detail returns ": " + a cleaned-up message, or "" when there is nothing to say.
func detail(msg string) string {
	msg = cleanMessage(msg)
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// cleanMessage strips URLs (which may carry tokens), the "(#100)" prefix and
// excess space from a message Meta sent, and bounds its length.
func cleanMessage(s string) string {
	s = urlRE.ReplaceAllString(s, "")
	s = spaceRE.ReplaceAllString(s, " ")
	s = strings.TrimSpace(codeRE.ReplaceAllString(strings.TrimSpace(s), ""))
	s = strings.TrimSpace(refPhrase.ReplaceAllString(s, ""))
	s = strings.TrimRight(s, " ,;:")
	const maxLen = 240
	if len(s) > maxLen {
		s = s[:maxLen]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

// fieldWord names a field in reasons.
func fieldWord(field string) string {
	switch field {
	case state.FieldDailyBudget, state.FieldLifetimeBudget:
		return "budget"
	case state.FieldBidAmount:
		return "bid"
	case state.FieldStatus:
		return "status"
	}
	return field
}

// same compares two values of field. A budget or bid of 0 is unset, like an
// absent one (graph-api 13.6).
func same(field string, a, b state.Value) bool {
	if field != state.FieldStatus {
		a, b = unsetZero(a), unsetZero(b)
	}
	return a == b
}

func unsetZero(v state.Value) state.Value {
	if n, ok := v.Amount(); ok && n == 0 {
		return state.Value{}
	}
	return v
}

// decodeField reads field from an object's JSON: status as a string; budgets as
// minor-unit numeric strings (absent or "0" is unset); bid_amount as a number
// or a string.
func decodeField(body []byte, field string) (state.Value, error) {
	var obj map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&obj); err != nil || obj == nil {
		return state.Value{}, errors.New("the object read back is not a JSON object")
	}
	raw, ok := obj[field]
	raw = bytes.TrimSpace(raw)
	if !ok || len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return state.Value{}, nil
	}
	if field == state.FieldStatus {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return state.Value{}, fmt.Errorf("the %s read back is not a string", field)
		}
		return state.Status(s), nil
	}
	var text string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return state.Value{}, fmt.Errorf("the %s read back is not a number", field)
		}
	} else {
		text = string(raw)
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return state.Value{}, nil
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		// A whole number written as 6000.0 or 6e3.
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != float64(int64(f)) {
			return state.Value{}, fmt.Errorf("the %s read back (%.40q) is not a whole number of minor units", field, text)
		}
		n = int64(f)
	}
	if n == 0 {
		return state.Value{}, nil
	}
	return state.Amount(n), nil
}

// logResult writes the one line per write (or reconciled intent) SPEC 8.1 asks
// for. It never holds the token: reasons are built from codes and cleaned
// messages, and Meta's errors carry only what the graph package let through.
func (x *Executor) logResult(msg string, it *item) {
	res := it.res
	fields := make([]zap.Field, 0, 16)
	fields = append(fields,
		zap.String("account", res.AccountID),
		zap.String("object_id", res.ObjectID),
		zap.String("field", res.Field),
		zap.Stringer("before", res.Before),
		zap.Stringer("target", res.Target),
		zap.Bool("applied", res.Applied),
	)
	if res.IntentID != 0 {
		fields = append(fields, zap.Int64("intent_id", res.IntentID))
	}
	if it.read {
		fields = append(fields, zap.Stringer("observed", res.Observed))
	}
	if it.unverified {
		fields = append(fields, zap.Bool("unverified", true))
	}
	if res.Reason != "" {
		fields = append(fields, zap.String("reason", res.Reason))
	}
	for _, f := range []struct {
		name string
		on   bool
	}{{"resent", res.Resent}, {"superseded", res.Superseded}, {"permanent", res.Permanent}, {"locked", res.Locked}, {"auth", res.Auth}, {"priority", res.Priority}} {
		if f.on {
			fields = append(fields, zap.Bool(f.name, true))
		}
	}
	if e := it.api; e != nil {
		fields = append(fields, zap.Int("code", e.Code))
		if e.Subcode != 0 {
			fields = append(fields, zap.Int("error_subcode", e.Subcode))
		}
		if e.FBTraceID != "" {
			fields = append(fields, zap.String("fbtrace_id", e.FBTraceID))
		}
	}
	x.log.Info(msg, fields...)
}
