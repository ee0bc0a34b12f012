package fakegraph

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// budgetChangesPerHour is Meta's limit on budget edits per ad set or campaign (graph-api 1.7).
const budgetChangesPerHour = 4

var bidStrategies = map[string]bool{
	"LOWEST_COST_WITHOUT_CAP": true, "LOWEST_COST_WITH_BID_CAP": true, "COST_CAP": true, "LOWEST_COST_WITH_MIN_ROAS": true,
}

func parseMinor(p url.Values, key string) (int64, bool, *APIError) {
	v, ok := p[key]
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64)
	if err != nil || n < 0 {
		e := errParam("Param %s must be a non-negative integer", key)
		e.BlameFields = []string{key}
		return 0, false, e
	}
	return n, true, nil
}

// formatMoney renders a minor-unit amount for error messages ("$1.00", "100 JPY").
func formatMoney(minor int64, currency string) string {
	if offsetOne[currency] {
		return fmt.Sprintf("%d %s", minor, currency)
	}
	if currency == "USD" {
		return fmt.Sprintf("$%d.%02d", minor/100, minor%100)
	}
	return fmt.Sprintf("%d.%02d %s", minor/100, minor%100, currency)
}

// update applies POST /{id}. With noop the write is validated and answered but not applied.
func (s *Server) update(o *object, p url.Values, noop bool) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	e, apply := s.validateUpdate(o, p, now)
	if e != nil {
		return s.errorResp(e, nil)
	}
	if noop || strings.Contains(p.Get("execution_options"), "validate_only") {
		return s.ok(jobj{{"success", true}}, nil)
	}
	for _, ch := range apply {
		ch.apply()
		s.logWrite(WriteRecord{Time: now, ObjectID: o.id, Account: o.acct.id, Field: ch.field, Old: ch.old, New: ch.new})
	}
	if len(apply) > 0 {
		o.updated = now
	}
	return s.ok(jobj{{"success", true}}, nil)
}

type change struct {
	field, old, new string
	apply           func()
}

// validateUpdate checks a write against Meta's rules and returns the changes to make.
func (s *Server) validateUpdate(o *object, p url.Values, now time.Time) (*APIError, []change) {
	status, hasStatus := p.Get("status"), p.Has("status")
	daily, hasDaily, e := parseMinor(p, "daily_budget")
	if e != nil {
		return e, nil
	}
	lifetime, hasLifetime, e := parseMinor(p, "lifetime_budget")
	if e != nil {
		return e, nil
	}
	bid, hasBid, e := parseMinor(p, "bid_amount")
	if e != nil {
		return e, nil
	}
	name, hasName := p.Get("name"), p.Has("name")
	strategy, hasStrategy := p.Get("bid_strategy"), p.Has("bid_strategy")

	if hasStatus && !validStatus(status) {
		e := errParam("Param status must be one of {ACTIVE, PAUSED, DELETED, ARCHIVED}")
		e.BlameFields = []string{"status"}
		return e, nil
	}
	// Archived objects: only name, and status only to DELETED; deleted objects: only name.
	switch o.status {
	case StatusDeleted:
		if hasStatus || hasDaily || hasLifetime || hasBid || hasStrategy {
			sub := map[Kind]int{KindCampaign: 1487566, KindAdSet: 1487056}[o.kind]
			return &APIError{Message: "Invalid parameter", Code: 100, Subcode: sub,
				UserTitle: "Object Deleted", UserMsg: fmt.Sprintf("This %s has been deleted, so it can't be edited.", o.kind)}, nil
		}
	case StatusArchived:
		if (hasStatus && status != StatusDeleted && status != StatusArchived) || hasDaily || hasLifetime || hasBid || hasStrategy {
			sub := map[Kind]int{KindAd: 1885088}[o.kind]
			return &APIError{Message: "Invalid parameter", Code: 100, Subcode: sub,
				UserTitle: "Object Archived", UserMsg: fmt.Sprintf("This %s is archived: only its name can be edited, and it can only be deleted.", o.kind)}, nil
		}
	}
	var out []change
	if hasName && name != o.name {
		old := o.name
		out = append(out, change{"name", old, name, func() { o.name = name }})
	}
	if hasStatus && status != o.status {
		old := o.status
		out = append(out, change{"status", old, status, func() { o.setStatus(status, now) }})
	}
	if hasBid {
		if o.kind != KindAdSet {
			return errParam("Param bid_amount is only supported on ad sets by the simulated API"), nil
		}
		if bid < 1 {
			e := errParam("Param bid_amount must be at least 1")
			e.BlameFields = []string{"bid_amount"}
			return e, nil
		}
		if bid != o.bid {
			old := o.bid
			out = append(out, change{"bid_amount", count(old), count(bid), func() { o.bid = bid }})
		}
	}
	if hasStrategy {
		if o.kind == KindAd || !bidStrategies[strategy] {
			return errParam("Param bid_strategy must be one of {LOWEST_COST_WITHOUT_CAP, LOWEST_COST_WITH_BID_CAP, COST_CAP, LOWEST_COST_WITH_MIN_ROAS}"), nil
		}
		if strategy != o.bidStrategy {
			old := o.bidStrategy
			out = append(out, change{"bid_strategy", old, strategy, func() { o.bidStrategy = strategy }})
		}
	}
	if !hasDaily && !hasLifetime {
		return nil, out
	}
	if o.kind == KindAd {
		return errParam("Tried accessing nonexisting field (daily_budget) on node type (Adgroup)"), nil
	}
	if o.isCBO() != (o.kind == KindCampaign) {
		// Section 1.7: budget on an ad set of a CBO campaign, or on a campaign without CBO.
		return NewAPIError(100, 1885621), nil
	}
	if hasDaily && hasLifetime && daily > 0 && lifetime > 0 {
		return errParam("Only one of daily_budget and lifetime_budget can be set"), nil
	}
	if (hasDaily && daily > 0 && o.lifetime > 0) || (hasLifetime && lifetime > 0 && o.daily > 0) {
		return errParam("You can't switch between a daily and a lifetime budget"), nil
	}
	field, value, old := "daily_budget", daily, o.daily
	if hasLifetime && (!hasDaily || lifetime > 0) {
		field, value, old = "lifetime_budget", lifetime, o.lifetime
	}
	if value == old {
		return nil, out // writing the current budget is not a change
	}
	if floor := s.minDailyBudget(o.acct.currency); value < floor {
		e := NewAPIError(100, 1885272)
		e.UserMsg = fmt.Sprintf("The budget for this %s must be at least %s per day.", map[Kind]string{KindAdSet: "ad set", KindCampaign: "campaign"}[o.kind], formatMoney(floor, o.acct.currency))
		e.BlameFields = []string{field}
		return e, nil
	}
	if s.opts.EnforceSpendFloor && value < old {
		spent := (o.daily - s.budgetRemaining(o, now))
		if o.lifetime > 0 {
			spent = o.lifetime - s.budgetRemaining(o, now)
		}
		if float64(value) < 1.1*float64(spent) {
			return &APIError{Message: "Invalid parameter", Code: 100, Subcode: 1885650, UserTitle: "Budget Too Low",
				UserMsg: "Your budget must be at least 10% higher than the amount already spent.", BlameFields: []string{field}}, nil
		}
	}
	if now.Before(o.budgetLockedUntil) {
		return NewAPIError(613, 1487632), nil
	}
	recent := o.budgetChanges[:0]
	for _, t := range o.budgetChanges {
		if now.Sub(t) < time.Hour {
			recent = append(recent, t)
		}
	}
	o.budgetChanges = recent
	if len(recent) >= budgetChangesPerHour {
		o.budgetLockedUntil = now.Add(time.Hour)
		return NewAPIError(613, 1487632), nil
	}
	out = append(out, change{field, count(old), count(value), func() {
		o.budgetChanges = append(o.budgetChanges, now)
		if field == "daily_budget" {
			o.daily = value
		} else {
			o.lifetime = value
		}
	}})
	return nil, out
}
