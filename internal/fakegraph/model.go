package fakegraph

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind is the level of an object in the ad hierarchy.
type Kind string

// Object levels, spelled as the Insights API spells its `level` parameter.
const (
	KindAccount  Kind = "account"
	KindCampaign Kind = "campaign"
	KindAdSet    Kind = "adset"
	KindAd       Kind = "ad"
)

// Configured statuses accepted by the API (graph-api 1.2-1.5).
const (
	StatusActive   = "ACTIVE"
	StatusPaused   = "PAUSED"
	StatusArchived = "ARCHIVED"
	StatusDeleted  = "DELETED"
)

// Account describes an ad account for AddAccount.
type Account struct {
	// ID is "act_<digits>" (or just the digits); empty assigns one.
	ID string
	// Name defaults to "Account <digits>".
	Name string
	// Currency is an ISO code; it decides the minor-unit offset (JPY, KRW… have offset 1). Default USD.
	Currency string
	// TimezoneName is an IANA zone; insights dates are computed in it. Default America/Los_Angeles.
	TimezoneName string
}

// Campaign describes a campaign for AddCampaign.
type Campaign struct {
	ID        string // digits; empty assigns one
	AccountID string // "act_<digits>"
	Name      string
	Objective string // default OUTCOME_SALES
	Status    string // default ACTIVE
	// DailyBudget or LifetimeBudget (minor units) non-zero makes this a campaign-budget (CBO) campaign.
	DailyBudget    int64
	LifetimeBudget int64
	BidStrategy    string // default LOWEST_COST_WITHOUT_CAP for CBO campaigns, empty otherwise
	BuyingType     string // default AUCTION
	CreatedTime    time.Time
}

// AdSet describes an ad set for AddAdSet.
type AdSet struct {
	ID         string
	CampaignID string
	Name       string
	Status     string // default ACTIVE
	// Budgets in minor units; must both be zero inside a CBO campaign.
	DailyBudget      int64
	LifetimeBudget   int64
	BidAmount        int64  // minor units; 0 = no bid cap
	BidStrategy      string // default LOWEST_COST_WITHOUT_CAP
	OptimizationGoal string // default OFFSITE_CONVERSIONS
	BillingEvent     string // default IMPRESSIONS
	CreatedTime      time.Time
}

// Ad describes an ad for AddAd.
type Ad struct {
	ID      string
	AdSetID string
	Name    string
	Status  string // default ACTIVE
	// ReviewStatus, when set (PENDING_REVIEW, DISAPPROVED, WITH_ISSUES…), replaces ACTIVE as the
	// effective_status of an otherwise active ad, and such an ad does not deliver.
	ReviewStatus string
	CreatedTime  time.Time
}

// ObjectState is a snapshot of a campaign, ad set or ad, for tests to inspect.
type ObjectState struct {
	ID               string
	Kind             Kind
	AccountID        string // "act_<digits>"
	CampaignID       string // own id for a campaign
	AdSetID          string // own id for an ad set; empty for a campaign
	Name             string
	Status           string
	EffectiveStatus  string
	Objective        string // of the campaign
	BidStrategy      string
	OptimizationGoal string
	DailyBudget      int64 // minor units, 0 when unset
	LifetimeBudget   int64
	BidAmount        int64
	CampaignBudget   bool // the campaign (itself or the parent) holds the budget
	// BudgetLockedUntil is set after the 5th budget change within an hour (613/1487632).
	BudgetLockedUntil time.Time
	CreatedTime       time.Time
	UpdatedTime       time.Time
}

type account struct {
	id       string // act_<digits>
	num      string // digits
	name     string
	currency string
	tzName   string
	loc      *time.Location
	// Sorted by id (numeric order) so cursors are stable.
	campaigns, adsets, ads []*object
}

type object struct {
	// Immutable after creation.
	kind     Kind
	id       string
	num      uint64
	acct     *account
	campaign *object // parent campaign (adset, ad)
	adset    *object // parent ad set (ad)
	created  time.Time

	// Mutable, guarded by Server.mu.
	name, status, review               string
	objective, bidStrategy, buyingType string
	optGoal, billingEvent              string
	daily, lifetime, bid               int64
	updated                            time.Time
	inactiveSince                      time.Time // when status last left ACTIVE
	budgetChanges                      []time.Time
	budgetLockedUntil                  time.Time
	gen                                *adProfile           // generated metrics (ads)
	days                               map[int32]DayMetrics // explicit metrics (ads)
}

func (o *object) isCBO() bool {
	c := o
	if o.kind != KindCampaign {
		c = o.campaign
	}
	return c.daily > 0 || c.lifetime > 0
}

// effectiveStatus follows graph-api 1.5: own status unless ACTIVE, then parents, then review.
func (o *object) effectiveStatus() string {
	if o.status != StatusActive {
		return o.status
	}
	if o.kind == KindAdSet || o.kind == KindAd {
		if o.campaign.status != StatusActive {
			return "CAMPAIGN_PAUSED"
		}
	}
	if o.kind == KindAd {
		if o.adset.status != StatusActive {
			return "ADSET_PAUSED"
		}
		if o.review != "" {
			return o.review
		}
	}
	return StatusActive
}

// deliveryStop reports when an ad stopped delivering, if it is not delivering now: the earliest
// time one of the inactive objects on its path left ACTIVE. An ad under review never delivered.
func (o *object) deliveryStop() (time.Time, bool) {
	if o.effectiveStatus() == StatusActive {
		return time.Time{}, false
	}
	var stop time.Time
	found := false
	consider := func(t time.Time) {
		if !found || t.Before(stop) {
			stop, found = t, true
		}
	}
	for _, p := range []*object{o, o.adset, o.campaign} {
		if p != nil && p.status != StatusActive {
			consider(p.inactiveSince)
		}
	}
	if o.review != "" {
		consider(o.created)
	}
	return stop, true
}

func (o *object) snapshot() ObjectState {
	st := ObjectState{
		ID: o.id, Kind: o.kind, AccountID: o.acct.id, Name: o.name, Status: o.status,
		EffectiveStatus: o.effectiveStatus(), BidStrategy: o.bidStrategy, OptimizationGoal: o.optGoal,
		DailyBudget: o.daily, LifetimeBudget: o.lifetime, BidAmount: o.bid, CampaignBudget: o.isCBO(),
		BudgetLockedUntil: o.budgetLockedUntil, CreatedTime: o.created, UpdatedTime: o.updated,
	}
	switch o.kind {
	case KindCampaign:
		st.CampaignID, st.Objective = o.id, o.objective
	case KindAdSet:
		st.CampaignID, st.AdSetID, st.Objective = o.campaign.id, o.id, o.campaign.objective
	case KindAd:
		st.CampaignID, st.AdSetID, st.Objective = o.campaign.id, o.adset.id, o.campaign.objective
	}
	return st
}

// idLess orders numeric ids numerically without parsing them.
func idLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func insertSorted(list []*object, o *object) []*object {
	i := sort.Search(len(list), func(i int) bool { return !idLess(list[i].id, o.id) })
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = o
	return list
}

func isDigits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validStatus(s string) bool {
	switch s {
	case StatusActive, StatusPaused, StatusArchived, StatusDeleted:
		return true
	}
	return false
}

// Must returns id, panicking on err; it shortens test set-up: fakegraph.Must(s.AddAd(…)).
func Must(id string, err error) string {
	if err != nil {
		panic(err)
	}
	return id
}

func accountKey(id string) string {
	if strings.HasPrefix(id, "act_") {
		return id
	}
	return "act_" + id
}

// AddAccount adds an ad account and returns its id ("act_<digits>").
func (s *Server) AddAccount(a Account) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addAccountLocked(a)
}

func (s *Server) addAccountLocked(a Account) (string, error) {
	if a.ID == "" {
		s.nextAcct++
		a.ID = "act_" + strconv.FormatUint(s.nextAcct, 10)
	}
	id := accountKey(a.ID)
	num := strings.TrimPrefix(id, "act_")
	if !isDigits(num) {
		return "", fmt.Errorf("fakegraph: account id %q is not act_<digits>", a.ID)
	}
	if _, ok := s.accounts[id]; ok {
		return "", fmt.Errorf("fakegraph: account %s already exists", id)
	}
	if a.Currency == "" {
		a.Currency = "USD"
	}
	if a.TimezoneName == "" {
		a.TimezoneName = "America/Los_Angeles"
	}
	loc, err := time.LoadLocation(a.TimezoneName)
	if err != nil {
		return "", fmt.Errorf("fakegraph: account %s: %w", id, err)
	}
	if a.Name == "" {
		a.Name = "Account " + num
	}
	acc := &account{id: id, num: num, name: a.Name, currency: strings.ToUpper(a.Currency), tzName: a.TimezoneName, loc: loc}
	s.accounts[id] = acc
	s.acctOrder = append(s.acctOrder, acc)
	return id, nil
}

func (s *Server) newObjectID(want string) (string, uint64, error) {
	if want == "" {
		for {
			s.nextID++
			want = strconv.FormatUint(s.nextID, 10)
			if _, taken := s.objects[want]; !taken {
				break
			}
		}
	}
	if !isDigits(want) {
		return "", 0, fmt.Errorf("fakegraph: object id %q is not numeric", want)
	}
	if _, taken := s.objects[want]; taken {
		return "", 0, fmt.Errorf("fakegraph: object id %s already exists", want)
	}
	n, _ := strconv.ParseUint(want, 10, 64)
	return want, n, nil
}

func (s *Server) createdOrNow(t time.Time) time.Time {
	if t.IsZero() {
		return s.now()
	}
	return t
}

func defaultStatus(st string) (string, error) {
	if st == "" {
		return StatusActive, nil
	}
	if !validStatus(st) {
		return "", fmt.Errorf("fakegraph: invalid status %q", st)
	}
	return st, nil
}

// AddCampaign adds a campaign and returns its id.
func (s *Server) AddCampaign(c Campaign) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.addCampaignLocked(c)
	if err != nil {
		return "", err
	}
	return o.id, nil
}

func (s *Server) addCampaignLocked(c Campaign) (*object, error) {
	acc := s.accounts[accountKey(c.AccountID)]
	if acc == nil {
		return nil, fmt.Errorf("fakegraph: campaign: unknown account %q", c.AccountID)
	}
	st, err := defaultStatus(c.Status)
	if err != nil {
		return nil, err
	}
	if c.DailyBudget < 0 || c.LifetimeBudget < 0 || (c.DailyBudget > 0 && c.LifetimeBudget > 0) {
		return nil, errors.New("fakegraph: campaign: set at most one of daily and lifetime budget")
	}
	id, num, err := s.newObjectID(c.ID)
	if err != nil {
		return nil, err
	}
	o := &object{kind: KindCampaign, id: id, num: num, acct: acc, created: s.createdOrNow(c.CreatedTime),
		name: c.Name, status: st, objective: c.Objective, bidStrategy: c.BidStrategy, buyingType: c.BuyingType,
		daily: c.DailyBudget, lifetime: c.LifetimeBudget}
	if o.name == "" {
		o.name = "Campaign " + id
	}
	if o.objective == "" {
		o.objective = "OUTCOME_SALES"
	}
	if o.buyingType == "" {
		o.buyingType = "AUCTION"
	}
	if o.bidStrategy == "" && o.isCBO() {
		o.bidStrategy = "LOWEST_COST_WITHOUT_CAP"
	}
	s.finishObject(o)
	acc.campaigns = insertSorted(acc.campaigns, o)
	return o, nil
}

func (s *Server) finishObject(o *object) {
	o.updated = o.created
	if o.status != StatusActive {
		o.inactiveSince = o.created
	}
	s.objects[o.id] = o
}

// AddAdSet adds an ad set and returns its id.
func (s *Server) AddAdSet(a AdSet) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.addAdSetLocked(a)
	if err != nil {
		return "", err
	}
	return o.id, nil
}

func (s *Server) addAdSetLocked(a AdSet) (*object, error) {
	c := s.objects[a.CampaignID]
	if c == nil || c.kind != KindCampaign {
		return nil, fmt.Errorf("fakegraph: ad set: unknown campaign %q", a.CampaignID)
	}
	st, err := defaultStatus(a.Status)
	if err != nil {
		return nil, err
	}
	if c.isCBO() && (a.DailyBudget != 0 || a.LifetimeBudget != 0) {
		return nil, fmt.Errorf("fakegraph: ad set: campaign %s holds the budget (CBO)", c.id)
	}
	if a.DailyBudget < 0 || a.LifetimeBudget < 0 || (a.DailyBudget > 0 && a.LifetimeBudget > 0) {
		return nil, errors.New("fakegraph: ad set: set at most one of daily and lifetime budget")
	}
	id, num, err := s.newObjectID(a.ID)
	if err != nil {
		return nil, err
	}
	o := &object{kind: KindAdSet, id: id, num: num, acct: c.acct, campaign: c, created: s.createdOrNow(a.CreatedTime),
		name: a.Name, status: st, daily: a.DailyBudget, lifetime: a.LifetimeBudget, bid: a.BidAmount,
		bidStrategy: a.BidStrategy, optGoal: a.OptimizationGoal, billingEvent: a.BillingEvent}
	if o.name == "" {
		o.name = "Ad set " + id
	}
	if o.bidStrategy == "" {
		o.bidStrategy = "LOWEST_COST_WITHOUT_CAP"
	}
	if o.optGoal == "" {
		o.optGoal = "OFFSITE_CONVERSIONS"
	}
	if o.billingEvent == "" {
		o.billingEvent = "IMPRESSIONS"
	}
	s.finishObject(o)
	c.acct.adsets = insertSorted(c.acct.adsets, o)
	return o, nil
}

// AddAd adds an ad and returns its id.
func (s *Server) AddAd(a Ad) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.addAdLocked(a)
	if err != nil {
		return "", err
	}
	return o.id, nil
}

func (s *Server) addAdLocked(a Ad) (*object, error) {
	as := s.objects[a.AdSetID]
	if as == nil || as.kind != KindAdSet {
		return nil, fmt.Errorf("fakegraph: ad: unknown ad set %q", a.AdSetID)
	}
	st, err := defaultStatus(a.Status)
	if err != nil {
		return nil, err
	}
	id, num, err := s.newObjectID(a.ID)
	if err != nil {
		return nil, err
	}
	o := &object{kind: KindAd, id: id, num: num, acct: as.acct, campaign: as.campaign, adset: as,
		created: s.createdOrNow(a.CreatedTime), name: a.Name, status: st, review: a.ReviewStatus}
	if o.name == "" {
		o.name = "Ad " + id
	}
	s.finishObject(o)
	as.acct.ads = insertSorted(as.acct.ads, o)
	return o, nil
}

// Object returns the current state of a campaign, ad set or ad.
func (s *Server) Object(id string) (ObjectState, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o := s.objects[id]
	if o == nil {
		return ObjectState{}, false
	}
	return o.snapshot(), true
}

// Objects lists the objects of one kind in an account, in id order, including DELETED ones.
func (s *Server) Objects(accountID string, kind Kind) []ObjectState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	acc := s.accounts[accountKey(accountID)]
	if acc == nil {
		return nil
	}
	var list []*object
	switch kind {
	case KindCampaign:
		list = acc.campaigns
	case KindAdSet:
		list = acc.adsets
	case KindAd:
		list = acc.ads
	}
	out := make([]ObjectState, len(list))
	for i, o := range list {
		out[i] = o.snapshot()
	}
	return out
}

// AccountIDs lists all account ids ("act_<digits>") in creation order.
func (s *Server) AccountIDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, len(s.acctOrder))
	for i, a := range s.acctOrder {
		out[i] = a.id
	}
	return out
}

// Account returns an account's settings.
func (s *Server) Account(id string) (Account, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.accounts[accountKey(id)]
	if a == nil {
		return Account{}, false
	}
	return Account{ID: a.id, Name: a.name, Currency: a.currency, TimezoneName: a.tzName}, true
}

func (s *Server) lookup(id string) (*object, error) {
	o := s.objects[id]
	if o == nil {
		return nil, fmt.Errorf("fakegraph: unknown object %q", id)
	}
	return o, nil
}

func (o *object) setStatus(st string, now time.Time) {
	if o.status == StatusActive && st != StatusActive {
		o.inactiveSince = now
	}
	o.status = st
	o.updated = now
}

// SetStatus sets an object's status directly (no API rules, no write log).
func (s *Server) SetStatus(id, status string) error {
	if !validStatus(status) {
		return fmt.Errorf("fakegraph: invalid status %q", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.lookup(id)
	if err != nil {
		return err
	}
	o.setStatus(status, s.now())
	return nil
}

// SetReviewStatus sets or clears (empty) an ad's review state, e.g. PENDING_REVIEW or DISAPPROVED.
func (s *Server) SetReviewStatus(adID, review string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.lookup(adID)
	if err != nil {
		return err
	}
	if o.kind != KindAd {
		return fmt.Errorf("fakegraph: %s is not an ad", adID)
	}
	o.review = review
	return nil
}

// SetBudget sets an ad set's or campaign's budgets (minor units) directly, bypassing API rules.
func (s *Server) SetBudget(id string, daily, lifetime int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.lookup(id)
	if err != nil {
		return err
	}
	if o.kind == KindAd {
		return fmt.Errorf("fakegraph: ad %s has no budget", id)
	}
	o.daily, o.lifetime, o.updated = daily, lifetime, s.now()
	return nil
}

// SetBid sets an ad set's bid_amount (minor units) directly.
func (s *Server) SetBid(id string, bid int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.lookup(id)
	if err != nil {
		return err
	}
	o.bid, o.updated = bid, s.now()
	return nil
}
