package actions

import (
	"context"
	"time"

	"github.com/rulesd/rulesd/internal/state"
)

// Reconcile settles intents left unfinished by a crash (SPEC 4.6): read each
// object's field; equal to the target -> Applied; equal to Before and the
// intent is younger than maxAge -> re-send the same absolute value (Resent)
// and report that outcome; anything else -> Superseded (to be recorded as
// failed; Reason "superseded: …": a person changed it). Results are in the
// order of intents.
//
// An intent whose object cannot be read is not applied and not permanent: its
// Reason says so, and the caller should leave it unfinished for a later try.
func (x *Executor) Reconcile(ctx context.Context, intents []state.Intent, maxAge time.Duration, now time.Time) []Result {
	res := make([]Result, len(intents))
	items := make([]*item, len(intents))
	var readable []*item
	var created []time.Time // of the readable items
	for i := range intents {
		in := &intents[i]
		w := Write{
			IntentID:  in.ID,
			AccountID: in.AccountID,
			ObjectID:  in.ObjectID,
			Field:     in.Field,
			Before:    in.Before,
			Target:    in.Target,
		}
		if s, ok := in.Target.Status(); ok && in.Field == state.FieldStatus && s == "PAUSED" {
			w.Priority = true
		}
		res[i].Write = w
		it := &item{res: &res[i]}
		items[i] = it
		if reason := checkWrite(&w); reason != "" {
			it.res.Reason, it.res.Permanent = reason, true
			continue
		}
		readable = append(readable, it)
		created = append(created, in.Created)
	}
	r := &run{x: x}
	values, errs := r.read(ctx, readable)
	var again []*item
	for i, it := range readable {
		res := it.res
		if errs[i] != nil {
			o := classify(errs[i])
			it.api = o.api
			res.Auth = o.auth
			res.Unknown = true
			res.Reason = "could not read the object to reconcile the unfinished write (" + o.what + "); it stays unfinished"
			continue
		}
		it.read, res.Observed = true, values[i]
		switch {
		case same(res.Field, values[i], res.Target):
			res.Applied = true
		case same(res.Field, values[i], res.Before) && now.Sub(created[i]) < maxAge:
			again = append(again, it)
		case same(res.Field, values[i], res.Before):
			res.Superseded, res.Permanent = true, true
			res.Reason = "superseded: the unfinished write was never applied and is older than " +
				maxAge.String() + ", too old to send again (the " + fieldWord(res.Field) + " still holds " + res.Before.String() + ")"
		default:
			superseded(res, values[i])
		}
	}
	r.resend(ctx, again)
	for _, it := range items {
		x.logResult("reconcile", it)
	}
	return res
}
