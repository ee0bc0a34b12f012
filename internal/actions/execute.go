package actions

import (
	"context"
	"errors"
	"net/url"
	"strconv"

	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/graph"
	"github.com/rulesd/rulesd/internal/state"
)

// Graph is the part of the client the executor uses.
type Graph interface {
	Batch(ctx context.Context, ops []graph.BatchOp) ([]graph.BatchResult, error)
}

// Write is one absolute change to send; its intent is already stored.
type Write struct {
	IntentID  int64
	AccountID string
	ObjectID  string
	Field     string      // state.FieldStatus, FieldDailyBudget, FieldLifetimeBudget, FieldBidAmount
	Before    state.Value // what the object held when the change was planned
	Target    state.Value // the absolute value to write (minor units or a status)
	Priority  bool        // a pause: may go on at higher API usage (graph.Request.Priority)
}

// Result is what came of one Write.
type Result struct {
	Write
	// Applied: the object now holds Target (confirmed by the API answer, or read back).
	Applied bool
	// Observed is the value read back, when one was read (absent otherwise, and for
	// an unset budget or bid).
	Observed state.Value
	// Reason explains, for the audit log and for a marketer, why the write was not
	// applied. It never holds a token or a URL.
	Reason string
	// Permanent: retrying cannot help (starts the cooldown). Set for refusals that
	// the same request would meet again, and for Superseded.
	Permanent bool
	// Locked: Meta locked this budget for an hour (613/1487632).
	Locked bool
	// Auth: the token failed authentication (190, 102): stop all writes for it.
	// Set on the writes Meta refused for it; the writes of the same call that
	// were then not sent carry only the reason "not sent: the access token failed".
	Auth bool
	// Superseded: someone else changed the field meanwhile (SPEC 4.6, 4.11).
	Superseded bool
	// Resent: the read-back showed Before, so the same absolute value was sent again.
	Resent bool
	// Unknown: whether the write was applied could not be found out (the answer was
	// lost and the object could not be read back): leave its intent unfinished, for
	// reconciliation to settle.
	Unknown bool
}

// Executor sends planned absolute writes to the Marketing API and settles
// their outcome: batched POSTs, read-back of lost answers and of budget and
// bid writes (SPEC 4.10), one re-send of the same absolute value when the
// object still holds the value before, and reconciliation of intents left
// unfinished by a crash (SPEC 4.6). It is safe for concurrent use.
type Executor struct {
	g   Graph
	log *zap.Logger
}

// NewExecutor returns an Executor writing through g and logging one line per
// write to logger (nil: no logging).
func NewExecutor(g Graph, logger *zap.Logger) *Executor {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Executor{g: g, log: logger}
}

// item is the executor's working state for one write.
type item struct {
	res *Result
	// answered: Meta answered the last POST of this write with success.
	answered bool
	// api is the last error Meta answered for this write (logged with its
	// code, subcode and fbtrace_id).
	api *graph.Error
	// read: the object was read back (Observed is meaningful).
	read bool
	// unverified: Meta confirmed the write but reading it back failed.
	unverified bool
}

// run is the state of one Apply or Reconcile call.
type run struct {
	x *Executor
	// authFailed: Meta refused the token during this call; no more writes are
	// sent and nothing more is read with it.
	authFailed bool
}

// errTokenFailed marks an operation not sent because the token failed earlier
// in the same call.
var errTokenFailed = errors.New("not sent: the access token failed")

// Apply sends writes batched (≤ 50 per request, via g.Batch which splits), one
// POST op per write: relative_url the object id, body "status=PAUSED" or
// "daily_budget=6000" (form encoded). Results in the order of writes.
//
// The executor cuts the writes into requests of graph.MaxBatchOps itself, so
// that after an authentication failure (190, 102) the writes of the later
// requests are not sent ("not sent: the access token failed"); the ones in
// the same request as the refused write were already on their way.
// Pauses (Priority) are sent in their own batch requests, before the other
// writes, so that they keep the priority the client gives them at high usage.
// A write whose answer is lost is read back: it holds Target → Applied; it
// holds Before → re-sent once with the same value and read back again;
// anything else → Superseded. A budget or bid write answered with success is
// read back too (graph-api 13.13); when only that verification read fails, the
// write counts as applied (Meta confirmed it) and the log line says unverified.
// A lost answer whose read-back fails leaves the outcome unknown: not applied,
// not permanent, and the Reason says the intent needs reconciling.
func (x *Executor) Apply(ctx context.Context, writes []Write) []Result {
	res := make([]Result, len(writes))
	items := make([]*item, len(writes))
	var send []*item
	for i, w := range writes {
		res[i].Write = w
		it := &item{res: &res[i]}
		items[i] = it
		if reason := checkWrite(&w); reason != "" {
			it.res.Reason, it.res.Permanent = reason, true
			continue
		}
		send = append(send, it)
	}
	r := &run{x: x}
	check := r.post(ctx, send, false)
	r.settle(ctx, check, true)
	for _, it := range items {
		x.logResult("write", it)
	}
	return res
}

// checkWrite returns why w cannot be sent at all, or "".
func checkWrite(w *Write) string {
	if w.ObjectID == "" {
		return "rulesd error: the write names no object"
	}
	if _, err := strconv.ParseUint(w.ObjectID, 10, 64); err != nil {
		return "rulesd error: " + strconv.Quote(w.ObjectID) + " is not an object id"
	}
	if _, ok := formValue(w.Field, w.Target); !ok {
		return "rulesd error: cannot write " + w.Target.String() + " to field " + strconv.Quote(w.Field)
	}
	return ""
}

// formValue renders target as the form value of field.
func formValue(field string, target state.Value) (string, bool) {
	switch field {
	case state.FieldStatus:
		s, ok := target.Status()
		return s, ok && s != ""
	case state.FieldDailyBudget, state.FieldLifetimeBudget, state.FieldBidAmount:
		n, ok := target.Amount()
		return strconv.FormatInt(n, 10), ok && n > 0
	}
	return "", false
}

// post sends one POST per item and returns the items to read back: those
// whose answer was lost, budget and bid writes answered with success, and,
// with verifyAll, status writes answered with success too. The others are
// settled here: a status write answered with success is Applied, a refusal
// is described.
func (r *run) post(ctx context.Context, items []*item, verifyAll bool) []*item {
	if len(items) == 0 {
		return nil
	}
	var prio, rest []*item
	for _, it := range items {
		if it.res.Priority {
			prio = append(prio, it)
		} else {
			rest = append(rest, it)
		}
	}
	var check []*item
	for _, group := range [][]*item{prio, rest} {
		ops := make([]graph.BatchOp, len(group))
		for i, it := range group {
			w := &it.res.Write
			v, _ := formValue(w.Field, w.Target)
			ops[i] = graph.BatchOp{Method: "POST", Request: graph.Request{
				Account:  w.AccountID,
				Path:     w.ObjectID,
				Params:   url.Values{w.Field: {v}},
				Priority: w.Priority,
			}}
		}
		results := r.batch(ctx, ops)
		for i, it := range group {
			err := results[i].Err
			it.answered = false
			switch {
			case err == nil:
				it.answered = true
				if it.res.Field == state.FieldStatus && !verifyAll {
					it.res.Applied = true
					continue
				}
				check = append(check, it)
			case errors.Is(err, graph.ErrAnswerLost):
				it.api, _ = graph.AsError(err)
				check = append(check, it)
			default:
				r.refused(it, err)
			}
		}
	}
	return check
}

// refused fills in the result of a write that was refused or not sent.
func (r *run) refused(it *item, err error) {
	o := classify(err)
	it.api = o.api
	res := it.res
	res.Applied = false
	res.Reason, res.Permanent, res.Locked, res.Auth = o.reason, o.permanent, o.locked, o.auth
}

// batch sends ops through the Graph in requests of at most graph.MaxBatchOps
// and returns one result per op. Once the token failed, the remaining ops are
// not sent.
func (r *run) batch(ctx context.Context, ops []graph.BatchOp) []graph.BatchResult {
	out := make([]graph.BatchResult, len(ops))
	for lo := 0; lo < len(ops); lo += graph.MaxBatchOps {
		hi := min(lo+graph.MaxBatchOps, len(ops))
		if r.authFailed {
			for i := lo; i < hi; i++ {
				out[i].Err = errTokenFailed
			}
			continue
		}
		// The per-op results say everything; the call's error only repeats
		// the first chunk-level failure.
		res, _ := r.x.g.Batch(ctx, ops[lo:hi])
		for i := lo; i < hi; i++ {
			if j := i - lo; j < len(res) {
				out[i] = res[j]
			} else {
				// A Graph that answered fewer results than ops (whatever its
				// error says): the outcome of the missing ones is unknown.
				out[i].Err = missingAnswer
			}
			if out[i].Err != nil && graph.KindOf(out[i].Err) == graph.KindAuth {
				r.authFailed = true
			}
		}
	}
	return out
}

// missingAnswer stands for a result the Graph did not return.
var missingAnswer error = &missingError{}

type missingError struct{}

func (*missingError) Error() string { return "no answer for this operation" }
func (*missingError) Unwrap() error { return graph.ErrAnswerLost }

// settle reads items back and decides: Target → Applied; Before → (after a lost
// answer and with resend) re-sent once and read back again, or not applied;
// anything else → Superseded.
func (r *run) settle(ctx context.Context, items []*item, resend bool) {
	if len(items) == 0 {
		return
	}
	values, errs := r.read(ctx, items)
	var again []*item
	for i, it := range items {
		res := it.res
		if errs[i] != nil {
			r.readFailed(it, errs[i])
			continue
		}
		it.read, res.Observed = true, values[i]
		switch {
		case same(res.Field, values[i], res.Target):
			res.Applied, res.Reason = true, ""
		case same(res.Field, values[i], res.Before):
			switch {
			case it.answered:
				res.Reason = "Meta answered success but the " + fieldWord(res.Field) + " did not change"
			case resend && r.authFailed:
				res.Reason = "not sent again: the access token failed (the answer to the write was lost and the object still holds " + res.Before.String() + ")"
			case resend:
				again = append(again, it)
			default:
				res.Reason = "not applied: the write was re-sent once, its answer was lost again and the object still holds " + res.Before.String()
			}
		default:
			superseded(res, values[i])
		}
	}
	r.resend(ctx, again)
}

// resend sends the same absolute value again, once, and reads the objects back.
func (r *run) resend(ctx context.Context, items []*item) {
	if len(items) == 0 {
		return
	}
	for _, it := range items {
		it.res.Resent = true
	}
	check := r.post(ctx, items, true)
	r.settle(ctx, check, false)
}

func superseded(res *Result, observed state.Value) {
	res.Applied = false
	res.Superseded, res.Permanent = true, true
	res.Reason = "superseded: the " + fieldWord(res.Field) + " is now " + observed.String() +
		", neither " + res.Before.String() + " (before) nor " + res.Target.String() + " (target): someone changed it"
}

// readFailed settles an item whose read-back failed.
func (r *run) readFailed(it *item, err error) {
	res := it.res
	if it.answered {
		// Meta confirmed the write; the verification alone failed. Success
		// is far likelier than a silent no-op, so it counts as applied.
		res.Applied, res.Reason, it.unverified = true, "", true
		r.x.log.Warn("write confirmed by Meta but not read back",
			zap.String("object_id", res.ObjectID), zap.String("field", res.Field), zap.String("error", classify(err).what))
		return
	}
	o := classify(err)
	if o.api != nil {
		it.api = o.api
	}
	res.Applied, res.Permanent = false, false
	res.Auth = res.Auth || o.auth
	lead := "the answer to the write was lost"
	if res.Resent {
		lead = "the answer to the re-sent write was lost"
	}
	res.Unknown = true
	res.Reason = lead + " and reading the object back failed (" + o.what + "): whether it was applied is unknown until the intent is reconciled"
}

// read reads the field of each item's object, in batches of GET ops.
func (r *run) read(ctx context.Context, items []*item) ([]state.Value, []error) {
	values := make([]state.Value, len(items))
	errs := make([]error, len(items))
	ops := make([]graph.BatchOp, len(items))
	for i, it := range items {
		ops[i] = graph.BatchOp{Method: "GET", Request: graph.Request{
			Account: it.res.AccountID,
			Path:    it.res.ObjectID,
			Params:  url.Values{"fields": {it.res.Field}},
		}}
	}
	results := r.batch(ctx, ops)
	for i, it := range items {
		if err := results[i].Err; err != nil {
			errs[i] = err
			continue
		}
		values[i], errs[i] = decodeField(results[i].Body, it.res.Field)
	}
	return values, errs
}
