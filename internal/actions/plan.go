// Package actions turns a rule's action on one object into an absolute change, and
// executes changes against the Marketing API.
//
// Every change becomes an absolute target in the currency's minor units before
// anything is sent (daily_budget = 6000, never "+20%"), so a retry re-sends the same
// value and a cap can never be overshot by rounding (SPEC 3.3 and 4).
package actions

import (
	"fmt"
	"math"

	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/money"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// Results of planning; the engine adds the guards' results (cooldown, pacing, ...).
const (
	ResultApply  = ""             // the change should be made
	ResultNoop   = "skipped_noop" // the object already has the target value
	ResultFailed = "failed"       // the change cannot be computed or is not allowed
)

// API fields a change writes.
const (
	FieldStatus         = "status"
	FieldDailyBudget    = "daily_budget"
	FieldLifetimeBudget = "lifetime_budget"
	FieldBidAmount      = "bid_amount"
)

// Change is one planned write: a field of an object from Before to After. Money
// fields are in minor units, status fields in Status*.
type Change struct {
	Kind      rules.ActionKind
	Field     string // "" for notify
	Before    int64
	After     int64
	BeforeStr string // status before (pause, unpause)
	AfterStr  string // status after
	// CappedBy names the limit that clipped After: "min", "max",
	// "max_daily_budget", "max_lifetime_budget", "max_budget_increase_pct_per_day",
	// "direction".
	CappedBy string
	Result   string
	// Reason explains a failed or no-op result.
	Reason string
	// Permanent marks a failure that retrying cannot fix; it starts the cooldown.
	Permanent bool
}

// IsMoney reports whether the change writes a budget or bid.
func (c *Change) IsMoney() bool { return c.Field != FieldStatus && c.Field != "" }

// Increase reports whether the change raises a budget or bid (or unpauses).
func (c *Change) Increase() bool {
	if c.Field == FieldStatus {
		return c.AfterStr == "ACTIVE"
	}
	return c.After > c.Before
}

// Limits are the account's money guards, in the account's major units; 0 means none.
type Limits struct {
	MaxDailyBudget    float64
	MaxLifetimeBudget float64
	// MaxIncreasePctPerDay caps budget growth over 24h, measured from DayBase.
	MaxIncreasePctPerDay float64
	// DayBase is the before value of the earliest rulesd budget change to the object
	// in the last 24h, in minor units; 0 means none, and the current value is used.
	DayBase int64
}

// Plan computes the change a rule's action makes to an object, without guards that
// need history (cooldown, pacing, flapping): those are the engine's.
func Plan(r *rules.Rule, o *insights.Object, row *rules.Row, currency string, lim Limits) Change {
	a := &r.Action
	c := Change{Kind: a.Kind}
	switch a.Kind {
	case rules.Notify:
		return c
	case rules.Pause, rules.Unpause:
		c.Field, c.BeforeStr, c.AfterStr = FieldStatus, o.Status, "PAUSED"
		if a.Kind == rules.Unpause {
			c.AfterStr = "ACTIVE"
		}
		if c.BeforeStr == c.AfterStr {
			c.Result, c.Reason = ResultNoop, "status is already "+c.AfterStr
		}
		return c
	case rules.SetBudget, rules.ChangeBudget:
		if !budgetField(&c, r, o) {
			return c
		}
	case rules.SetBid, rules.ChangeBid:
		c.Field, c.Before = FieldBidAmount, o.BidAmount
		if o.BidAmount <= 0 {
			return failed(c, fmt.Sprintf("the ad set has no bid amount (bid strategy %s)", orUnknown(o.BidStrategy)), true)
		}
	}
	cur := c.Before
	var target int64
	if a.Amount != nil {
		v := a.Amount.Eval(row)
		if math.IsNaN(v) || v < 0 {
			return failed(c, fmt.Sprintf("amount %q could not be computed for this object (a value it uses is missing)", a.Amount.Src), false)
		}
		target = money.ToMinor(v, currency, money.Nearest)
	} else {
		// A relative change rounds toward the current value, so no cap is ever
		// exceeded by rounding.
		if a.By.Percent {
			exact := float64(cur) * (1 + a.By.Delta/100)
			target = roundToward(exact, cur)
		} else {
			delta := money.ToMinor(math.Abs(a.By.Delta), currency, money.Down)
			if a.By.Delta < 0 {
				delta = -delta
			}
			target = cur + delta
		}
	}
	if a.Min != nil {
		v := a.Min.Eval(row)
		if math.IsNaN(v) {
			return failed(c, fmt.Sprintf("min %q could not be computed for this object", a.Min.Src), false)
		}
		if m := money.ToMinor(v, currency, money.Up); target < m {
			target, c.CappedBy = m, "min"
		}
	}
	if a.Max != nil {
		v := a.Max.Eval(row)
		if math.IsNaN(v) {
			return failed(c, fmt.Sprintf("max %q could not be computed for this object", a.Max.Src), false)
		}
		if m := money.ToMinor(v, currency, money.Down); target > m {
			target, c.CappedBy = m, "max"
		}
	}
	if c.Field == FieldDailyBudget && lim.MaxDailyBudget > 0 {
		if m := money.ToMinor(lim.MaxDailyBudget, currency, money.Down); target > m {
			target, c.CappedBy = m, "max_daily_budget"
		}
	}
	if c.Field == FieldLifetimeBudget && lim.MaxLifetimeBudget > 0 {
		if m := money.ToMinor(lim.MaxLifetimeBudget, currency, money.Down); target > m {
			target, c.CappedBy = m, "max_lifetime_budget"
		}
	}
	if c.Field != FieldBidAmount && lim.MaxIncreasePctPerDay > 0 && target > cur {
		base := lim.DayBase
		if base <= 0 {
			base = cur
		}
		m := int64(math.Floor(float64(base) * (1 + lim.MaxIncreasePctPerDay/100)))
		if m < cur {
			m = cur
		}
		if target > m {
			target, c.CappedBy = m, "max_budget_increase_pct_per_day"
		}
	}
	// Never against the direction of `by`: a max below the current value must not
	// turn an increase into a decrease.
	if a.By != nil && ((a.By.Delta > 0 && target < cur) || (a.By.Delta < 0 && target > cur)) {
		target, c.CappedBy = cur, "direction"
	}
	if target <= 0 {
		return failed(c, "the result would be a budget or bid of 0; use pause instead", true)
	}
	c.After = target
	if c.After == c.Before {
		c.Result = ResultNoop
		c.Reason = "the target equals the current value"
		if c.CappedBy != "" {
			c.Reason += " (capped by " + c.CappedBy + ")"
		}
	}
	return c
}

func budgetField(c *Change, r *rules.Rule, o *insights.Object) bool {
	if r.Level == rules.LevelAdSet && o.CampaignBudget {
		*c = failed(*c, "this ad set's budget is on its campaign (Advantage campaign budget): target the campaign instead", true)
		return false
	}
	daily, lifetime := o.DailyBudget > 0, o.LifetimeBudget > 0
	switch want := r.Action.Budget; {
	case want == "daily" && !daily:
		*c = failed(*c, "the object has no daily budget; rulesd never switches the budget type", true)
		return false
	case want == "lifetime" && !lifetime:
		*c = failed(*c, "the object has no lifetime budget; rulesd never switches the budget type", true)
		return false
	case want == "daily" || (want == "" && daily):
		c.Field, c.Before = FieldDailyBudget, o.DailyBudget
	case want == "lifetime" || (want == "" && lifetime):
		c.Field, c.Before = FieldLifetimeBudget, o.LifetimeBudget
	default:
		reason := "the object has no budget of its own"
		if r.Level == rules.LevelCampaign {
			reason = "the campaign has no budget: its budget is on its ad sets"
		}
		*c = failed(*c, reason, true)
		return false
	}
	return true
}

func roundToward(exact float64, cur int64) int64 {
	exact = math.Round(exact*1e6) / 1e6 // 1999.9999999 is 2000
	if exact >= float64(cur) {
		return int64(math.Floor(exact))
	}
	return int64(math.Ceil(exact))
}

func failed(c Change, reason string, permanent bool) Change {
	c.Result, c.Reason, c.Permanent = ResultFailed, reason, permanent
	return c
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// FieldValue is an object's current value of a field, as the state store keeps it:
// a status, or money in minor units.
func FieldValue(o *insights.Object, field string) state.Value {
	switch field {
	case FieldStatus:
		return state.Status(o.Status)
	case FieldDailyBudget:
		return state.Amount(o.DailyBudget)
	case FieldLifetimeBudget:
		return state.Amount(o.LifetimeBudget)
	case FieldBidAmount:
		return state.Amount(o.BidAmount)
	}
	return state.Value{}
}
