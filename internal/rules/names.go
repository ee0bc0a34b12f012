package rules

import "time"

// Level is the kind of object a rule evaluates.
type Level uint8

// The levels of the ad hierarchy, top down.
const (
	LevelCampaign Level = iota
	LevelAdSet
	LevelAd
)

// Levels lists every level, top down.
var Levels = []Level{LevelCampaign, LevelAdSet, LevelAd}

var levelNames = [...]string{"campaign", "adset", "ad"}

func (l Level) String() string { return levelNames[l] }

// ParseLevel reads "campaign", "adset" or "ad".
func ParseLevel(s string) (Level, bool) {
	for i, n := range levelNames {
		if n == s {
			return Level(i), true
		}
	}
	return 0, false
}

// Window is a date range relative to the run's scheduled time.
type Window uint8

// The windows of SPEC section 3.1.
const (
	Today Window = iota
	Yesterday
	Last3d
	Last7d
	Last14d
	Last28d
	Last30d
	Lifetime
	numWindows
)

// Windows lists every window.
var Windows = []Window{Today, Yesterday, Last3d, Last7d, Last14d, Last28d, Last30d, Lifetime}

var windowNames = [...]string{"today", "yesterday", "last_3d", "last_7d", "last_14d", "last_28d", "last_30d", "lifetime"}

func (w Window) String() string { return windowNames[w] }

// ParseWindow reads a window name.
func ParseWindow(s string) (Window, bool) {
	for i, n := range windowNames {
		if n == s {
			return Window(i), true
		}
	}
	return 0, false
}

// DateRange returns the inclusive dates (YYYY-MM-DD) of w for a run scheduled at t in
// loc, with the Insights API's meaning: last_Nd is the N full days ending yesterday.
// Lifetime has no range: ok is false and the caller asks for date_preset=maximum.
func (w Window) DateRange(t time.Time, loc *time.Location) (since, until string, ok bool) {
	// The calendar date in loc, then plain date arithmetic in UTC: midnight does not
	// exist in loc on a day whose DST change is at 00:00 (America/Santiago,
	// America/Havana, ...), and time.Date would then return 23:00 of the day before.
	y, m, d := t.In(loc).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	const layout = "2006-01-02"
	span := func(days int) (string, string, bool) {
		return today.AddDate(0, 0, -days).Format(layout), today.AddDate(0, 0, -1).Format(layout), true
	}
	switch w {
	case Today:
		return today.Format(layout), today.Format(layout), true
	case Yesterday:
		return span(1)
	case Last3d:
		return span(3)
	case Last7d:
		return span(7)
	case Last14d:
		return span(14)
	case Last28d:
		return span(28)
	case Last30d:
		return span(30)
	}
	return "", "", false
}

// Metric is a base metric, read from the Insights API.
type Metric uint8

// The base metrics of SPEC section 3.1.
const (
	Spend Metric = iota
	Impressions
	Reach
	Clicks
	LinkClicks
	Purchases
	PurchaseValue
	Leads
	Installs
	numMetrics
)

// Metrics lists every base metric.
var Metrics = []Metric{Spend, Impressions, Reach, Clicks, LinkClicks, Purchases, PurchaseValue, Leads, Installs}

var metricNames = [...]string{"spend", "impressions", "reach", "clicks", "link_clicks", "purchases", "purchase_value", "leads", "installs"}

func (m Metric) String() string { return metricNames[m] }

// APIField is the Insights API field the metric is read from.
func (m Metric) APIField() string {
	switch m {
	case LinkClicks:
		return "inline_link_clicks"
	case Purchases, Leads, Installs:
		return "actions"
	case PurchaseValue:
		return "action_values"
	}
	return m.String()
}

// derived metrics: computed from base metrics, so they cost no API field and agree
// with each other.
type derived struct {
	name       string
	num, denom Metric
	scale      float64
}

var derivedMetrics = []derived{
	{name: "ctr", num: Clicks, denom: Impressions, scale: 100},
	{name: "link_ctr", num: LinkClicks, denom: Impressions, scale: 100},
	{name: "cpc", num: Spend, denom: Clicks, scale: 1},
	{name: "cost_per_link_click", num: Spend, denom: LinkClicks, scale: 1},
	{name: "cpm", num: Spend, denom: Impressions, scale: 1000},
	{name: "frequency", num: Impressions, denom: Reach, scale: 1},
	{name: "cpa", num: Spend, denom: Purchases, scale: 1},
	{name: "roas", num: PurchaseValue, denom: Spend, scale: 1},
	{name: "cpl", num: Spend, denom: Leads, scale: 1},
	{name: "cpi", num: Spend, denom: Installs, scale: 1},
}

func derivedByName(name string) (derived, bool) {
	for _, d := range derivedMetrics {
		if d.name == name {
			return d, true
		}
	}
	return derived{}, false
}

// ActionKind is what a rule does to a matched object.
type ActionKind uint8

// The actions of SPEC section 3.3.
const (
	Pause ActionKind = iota
	Unpause
	SetBudget
	ChangeBudget
	SetBid
	ChangeBid
	Notify
)

var actionNames = [...]string{"pause", "unpause", "set_budget", "change_budget", "set_bid", "change_bid", "notify"}

func (k ActionKind) String() string { return actionNames[k] }

// ParseActionKind reads an action kind.
func ParseActionKind(s string) (ActionKind, bool) {
	for i, n := range actionNames {
		if n == s {
			return ActionKind(i), true
		}
	}
	return 0, false
}

// Levels returns the levels the action applies to.
func (k ActionKind) Levels() []Level {
	switch k {
	case SetBudget, ChangeBudget:
		return []Level{LevelCampaign, LevelAdSet}
	case SetBid, ChangeBid:
		return []Level{LevelAdSet}
	}
	return Levels
}

// Field is the object field the action writes: "status", "budget", "bid" or "" for
// notify.
func (k ActionKind) Field() string {
	switch k {
	case Pause, Unpause:
		return "status"
	case SetBudget, ChangeBudget:
		return "budget"
	case SetBid, ChangeBid:
		return "bid"
	}
	return ""
}

// DefaultCooldown is the cooldown of SPEC section 4 item 2 for the action kind.
func (k ActionKind) DefaultCooldown() time.Duration {
	switch k {
	case Pause, Unpause:
		return time.Hour
	}
	return 24 * time.Hour
}

func allowedAt(k ActionKind, l Level) bool {
	for _, x := range k.Levels() {
		if x == l {
			return true
		}
	}
	return false
}

func levelList(ls []Level) string {
	s := ""
	for i, l := range ls {
		if i > 0 {
			s += ", "
		}
		s += l.String()
	}
	return s
}
