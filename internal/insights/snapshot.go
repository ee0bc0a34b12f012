// Package insights reads what rules need from the Marketing API for one ad account:
// the account's currency and time zone, the objects at the rules' levels with their
// parents' attributes, and insights for each window the rules use, with only the
// fields the rules' static analysis lists. The result is a Snapshot of dense rows,
// ready for evaluation.
package insights

import (
	"time"

	"github.com/rulesd/rulesd/internal/rules"
)

// Account is an ad account as the API describes it.
type Account struct {
	ID       string
	Name     string
	Currency string
	Timezone string
	Location *time.Location
}

// Object is a campaign, ad set or ad as read from the API. Money is in minor units;
// 0 means unset ("0" or an absent key in the API).
type Object struct {
	ID               string
	Name             string
	Status           string
	EffectiveStatus  string
	CampaignID       string
	AdSetID          string
	Objective        string
	OptimizationGoal string
	BidStrategy      string
	DailyBudget      int64
	LifetimeBudget   int64
	BudgetRemaining  int64
	BidAmount        int64
	// CampaignBudget is set on ad sets (and campaigns) whose budget is on the campaign.
	CampaignBudget bool
	Created        time.Time
}

// Table is the objects of one level with their evaluation rows, index for index.
type Table struct {
	Level   rules.Level
	Objects []Object
	Rows    []rules.Row
	byID    map[string]int
}

// Index returns the position of the object with the given id.
func (t *Table) Index(id string) (int, bool) {
	i, ok := t.byID[id]
	return i, ok
}

func newTable(level rules.Level, objs []Object) *Table {
	t := &Table{Level: level, Objects: objs, byID: make(map[string]int, len(objs))}
	for i := range objs {
		t.byID[objs[i].ID] = i
	}
	return t
}

// Snapshot is everything the rules of one run read for one account.
type Snapshot struct {
	Account Account
	// At is the run's scheduled time; windows, hour and weekday derive from it in the
	// account's time zone.
	At time.Time
	// Tables holds the levels rules evaluate at.
	Tables map[rules.Level]*Table
	// Requests counts the Graph API calls the read made (pages included).
	Requests int
}
