// Package config loads rulesd.yaml: the Graph API settings, the ad accounts with their
// labels, variables and safety caps, notifiers, state and logging.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rulesd/rulesd/internal/diag"
	"github.com/rulesd/rulesd/internal/yamlx"
)

// Config is rulesd.yaml, with defaults applied.
type Config struct {
	Pos       diag.Pos     `yaml:"-" kind:"the config"`
	Graph     Graph        `yaml:"graph"`
	Accounts  []Account    `yaml:"accounts"`
	RuleFiles []string     `yaml:"rule_files"`
	Schedule  yamlx.Scalar `yaml:"schedule"`
	Timezone  yamlx.Scalar `yaml:"timezone"`
	DryRun    bool         `yaml:"dry_run"`
	Listen    string       `yaml:"listen"`
	State     State        `yaml:"state"`
	Metrics   Metrics      `yaml:"metrics"`
	Safety    Safety       `yaml:"safety"`
	Notifiers []Notifier   `yaml:"notifiers"`
	Log       Log          `yaml:"log"`

	// Path is the file the config was read from; relative paths in it (rule files,
	// secrets) are relative to its directory.
	Path string `yaml:"-"`
}

// Graph holds the Marketing API settings.
type Graph struct {
	Pos             diag.Pos `yaml:"-" kind:"graph"`
	BaseURL         string   `yaml:"base_url"`
	APIVersion      string   `yaml:"api_version"`
	AccessTokenFile string   `yaml:"access_token_file"`
	AppSecretFile   string   `yaml:"app_secret_file"`
	Timeout         Duration `yaml:"timeout"`
	MaxInFlight     int      `yaml:"max_in_flight"`
	// AsyncAboveObjects switches insights reads to async jobs for accounts with more
	// objects at a level than this.
	AsyncAboveObjects int `yaml:"async_above_objects"`
}

// Account is one ad account; in YAML either a bare id or a mapping.
type Account struct {
	Pos             diag.Pos           `yaml:"-" kind:"account"`
	ID              string             `yaml:"id"`
	Name            string             `yaml:"name"`
	Labels          map[string]string  `yaml:"labels"`
	Vars            map[string]float64 `yaml:"vars"`
	Safety          Safety             `yaml:"safety"`
	AccessTokenFile string             `yaml:"access_token_file"`
}

// DecodeYAML implements yamlx.NodeDecoder: a bare "act_123" is an account with only
// an id.
func (a *Account) DecodeYAML(d *yamlx.Decoder, n *yaml.Node, key string) {
	if n.Kind == yaml.ScalarNode {
		a.Pos, a.ID = d.Pos(n), n.Value
		return
	}
	type plain Account // without DecodeYAML, so the generic decoder handles it
	d.DecodeField(n, (*plain)(a), key)
}

// State selects the state store.
type State struct {
	Pos       diag.Pos `yaml:"-" kind:"state"`
	Driver    string   `yaml:"driver"`
	DSN       string   `yaml:"dsn"`
	Retention Duration `yaml:"retention"`
}

// Metrics configures how insights become metrics.
type Metrics struct {
	Pos         diag.Pos            `yaml:"-" kind:"metrics"`
	ActionTypes map[string][]string `yaml:"action_types"`
}

// Safety holds the money guards of SPEC section 4; zero values mean "not set" and are
// filled from the global safety block, then from the defaults.
type Safety struct {
	Pos                        diag.Pos `yaml:"-" kind:"safety"`
	MaxActionsPerRun           int      `yaml:"max_actions_per_run"`
	MaxBudgetIncreasePctPerDay float64  `yaml:"max_budget_increase_pct_per_day"`
	ManualHold                 Duration `yaml:"manual_hold"`
	MaxDailyBudget             float64  `yaml:"max_daily_budget"`
	MaxLifetimeBudget          float64  `yaml:"max_lifetime_budget"`
}

// Notifier is a destination for notifications.
type Notifier struct {
	Pos            diag.Pos     `yaml:"-" kind:"notifier"`
	Name           yamlx.Scalar `yaml:"name,required"`
	Type           yamlx.Scalar `yaml:"type,required"`
	URL            string       `yaml:"url"`
	URLFile        string       `yaml:"url_file"`
	WebhookURLFile string       `yaml:"webhook_url_file"`
}

// Log configures logging.
type Log struct {
	Pos    diag.Pos `yaml:"-" kind:"log"`
	Level  string   `yaml:"level"`
	Format string   `yaml:"format"`
}

// Defaults of SPEC section 5.
const (
	DefaultBaseURL           = "https://graph.facebook.com"
	DefaultAPIVersion        = "v27.0"
	DefaultSchedule          = "*/30 * * * *"
	DefaultListen            = ":8080"
	DefaultMaxInFlight       = 8
	DefaultTimeout           = 30 * time.Second
	DefaultAsyncAboveObjects = 5000
	DefaultRetention         = 90 * 24 * time.Hour
	DefaultMaxActionsPerRun  = 50
	DefaultMaxIncreasePct    = 50
	DefaultManualHold        = 24 * time.Hour
)

// DefaultActionTypes are the action types counted as purchases, leads and installs,
// in priority order: the first one present in a row counts, never their sum, since
// Meta reports one purchase under several overlapping types.
var DefaultActionTypes = map[string][]string{
	"purchase": {"purchase", "omni_purchase", "offsite_conversion.fb_pixel_purchase"},
	"lead":     {"lead", "onsite_conversion.lead_grouped", "offsite_conversion.fb_pixel_lead"},
	"install":  {"mobile_app_install", "omni_app_install"},
}

var accountID = regexp.MustCompile(`^act_[0-9]+$`)

// Load reads and validates a config file. All problems are returned, each with its
// position; the config is nil when any is an error.
func Load(path string) (*Config, diag.List) {
	src, err := os.ReadFile(path)
	if err != nil {
		var l diag.List
		l.Errorf(diag.Pos{File: path}, "read config: %v", err)
		return nil, l
	}
	return Parse(path, src)
}

// Parse validates a config given as text; path names it in messages.
func Parse(path string, src []byte) (*Config, diag.List) {
	var l diag.List
	root := yamlx.Parse(path, src, &l)
	if root == nil {
		return nil, l
	}
	c := &Config{Path: path}
	d := &yamlx.Decoder{File: path, Diags: &l, Src: src}
	d.Decode(root, c)
	c.validate(&l)
	c.applyDefaults()
	if l.HasErrors() {
		return nil, l
	}
	return c, l
}

// Default returns the config used when none is given: defaults only, no accounts.
func Default() *Config {
	c := &Config{}
	c.applyDefaults()
	return c
}

func (c *Config) validate(l *diag.List) {
	seen := map[string]bool{}
	for _, a := range c.Accounts {
		switch {
		case !accountID.MatchString(a.ID):
			l.Errorf(a.Pos, "account id %q must look like act_1234567890", a.ID)
		case seen[a.ID]:
			l.Errorf(a.Pos, "account %s is listed twice", a.ID)
		}
		seen[a.ID] = true
		a.Safety.validate(l)
	}
	c.Safety.validate(l)
	if c.Timezone.Value != "" {
		if _, err := time.LoadLocation(c.Timezone.Value); err != nil {
			l.Errorf(c.Timezone.Pos, "unknown time zone %q (use an IANA name such as Europe/Berlin)", c.Timezone.Value)
		}
	}
	if c.Graph.MaxInFlight < 0 {
		l.Errorf(c.Graph.Pos, "graph.max_in_flight must be positive")
	}
	switch c.State.Driver {
	case "", "sqlite", "postgres":
	default:
		l.Errorf(c.State.Pos, "state.driver must be sqlite or postgres, not %q", c.State.Driver)
	}
	switch c.Log.Format {
	case "", "json", "console":
	default:
		l.Errorf(c.Log.Pos, "log.format must be json or console, not %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		l.Errorf(c.Log.Pos, "log.level must be debug, info, warn or error, not %q", c.Log.Level)
	}
	for _, kind := range mapKeys(c.Metrics.ActionTypes) {
		if _, ok := DefaultActionTypes[kind]; !ok {
			l.Errorf(c.Metrics.Pos, "metrics.action_types: unknown kind %q (purchase, lead or install)%s",
				kind, diag.DidYouMean(kind, []string{"purchase", "lead", "install"}))
			continue
		}
		// An empty list would make every object's count 0: "purchases == 0" would
		// then match everything.
		types := c.Metrics.ActionTypes[kind]
		if len(types) == 0 {
			l.Errorf(c.Metrics.Pos, "metrics.action_types.%s must list at least one action type (default: %s)", kind, strings.Join(DefaultActionTypes[kind], ", "))
		}
		for _, typ := range types {
			if strings.TrimSpace(typ) == "" {
				l.Errorf(c.Metrics.Pos, "metrics.action_types.%s lists an empty action type", kind)
			}
		}
	}
	names := map[string]bool{}
	for _, n := range c.Notifiers {
		if names[n.Name.Value] {
			l.Errorf(n.Name.Pos, "notifier %q is defined twice", n.Name.Value)
		}
		names[n.Name.Value] = true
		switch n.Type.Value {
		case "slack":
			if n.WebhookURLFile == "" && n.URLFile == "" {
				l.Errorf(n.Pos, "slack notifier %q needs webhook_url_file (webhook URLs are secrets: keep them out of the config)", n.Name.Value)
			}
		case "webhook":
			if n.URL == "" && n.URLFile == "" {
				l.Errorf(n.Pos, "webhook notifier %q needs url or url_file", n.Name.Value)
			}
		case "":
		default:
			l.Errorf(n.Type.Pos, "unknown notifier type %q (slack or webhook)%s", n.Type.Value,
				diag.DidYouMean(n.Type.Value, []string{"slack", "webhook"}))
		}
	}
}

func (s Safety) validate(l *diag.List) {
	if s.MaxActionsPerRun < 0 || s.MaxBudgetIncreasePctPerDay < 0 || s.MaxDailyBudget < 0 || s.MaxLifetimeBudget < 0 {
		l.Errorf(s.Pos, "safety limits must not be negative")
	}
}

func (c *Config) applyDefaults() {
	if c.Graph.BaseURL == "" {
		c.Graph.BaseURL = DefaultBaseURL
	}
	if c.Graph.APIVersion == "" {
		c.Graph.APIVersion = DefaultAPIVersion
	}
	if c.Graph.Timeout == 0 {
		c.Graph.Timeout = Duration(DefaultTimeout)
	}
	if c.Graph.MaxInFlight == 0 {
		c.Graph.MaxInFlight = DefaultMaxInFlight
	}
	if c.Graph.AsyncAboveObjects == 0 {
		c.Graph.AsyncAboveObjects = DefaultAsyncAboveObjects
	}
	if c.Schedule.Value == "" {
		c.Schedule.Value = DefaultSchedule
	}
	if c.Timezone.Value == "" {
		c.Timezone.Value = "UTC"
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.State.Driver == "" {
		c.State.Driver = "sqlite"
	}
	if c.State.DSN == "" {
		c.State.DSN = "rulesd.db"
	}
	if c.State.Retention == 0 {
		c.State.Retention = Duration(DefaultRetention)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Safety.MaxActionsPerRun == 0 {
		c.Safety.MaxActionsPerRun = DefaultMaxActionsPerRun
	}
	if c.Safety.MaxBudgetIncreasePctPerDay == 0 {
		c.Safety.MaxBudgetIncreasePctPerDay = DefaultMaxIncreasePct
	}
	if c.Safety.ManualHold == 0 {
		c.Safety.ManualHold = Duration(DefaultManualHold)
	}
	at := map[string][]string{}
	for k, v := range DefaultActionTypes {
		at[k] = v
	}
	for k, v := range c.Metrics.ActionTypes {
		at[k] = v
	}
	c.Metrics.ActionTypes = at
	for i := range c.Accounts {
		c.Accounts[i].Safety = c.Accounts[i].Safety.inherit(c.Safety)
	}
}

func (s Safety) inherit(global Safety) Safety {
	if s.MaxActionsPerRun == 0 {
		s.MaxActionsPerRun = global.MaxActionsPerRun
	}
	if s.MaxBudgetIncreasePctPerDay == 0 {
		s.MaxBudgetIncreasePctPerDay = global.MaxBudgetIncreasePctPerDay
	}
	if s.ManualHold == 0 {
		s.ManualHold = global.ManualHold
	}
	if s.MaxDailyBudget == 0 {
		s.MaxDailyBudget = global.MaxDailyBudget
	}
	if s.MaxLifetimeBudget == 0 {
		s.MaxLifetimeBudget = global.MaxLifetimeBudget
	}
	return s
}

// Account returns the account with the given id.
func (c *Config) Account(id string) (*Account, bool) {
	for i := range c.Accounts {
		if c.Accounts[i].ID == id {
			return &c.Accounts[i], true
		}
	}
	return nil, false
}

// AccountIDs lists the configured account ids.
func (c *Config) AccountIDs() []string {
	ids := make([]string, len(c.Accounts))
	for i, a := range c.Accounts {
		ids[i] = a.ID
	}
	return ids
}

// VarNames lists every account variable name used by any account, sorted.
func (c *Config) VarNames() []string {
	return c.keys(func(a Account) []string { return mapKeys(a.Vars) })
}

// LabelNames lists every account label name used by any account, sorted.
func (c *Config) LabelNames() []string {
	return c.keys(func(a Account) []string { return mapKeys(a.Labels) })
}

func (c *Config) keys(of func(Account) []string) []string {
	set := map[string]bool{}
	for _, a := range c.Accounts {
		for _, k := range of(a) {
			set[k] = true
		}
	}
	return mapKeys(set)
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// HasNotifier reports whether a notifier of that name is configured.
func (c *Config) HasNotifier(name string) bool {
	for _, n := range c.Notifiers {
		if n.Name.Value == name {
			return true
		}
	}
	return false
}

// NotifierNames lists the configured notifier names.
func (c *Config) NotifierNames() []string {
	out := make([]string, len(c.Notifiers))
	for i, n := range c.Notifiers {
		out[i] = n.Name.Value
	}
	return out
}

// Resolve returns p relative to the config file's directory, unless absolute.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// RuleFilePaths expands rule_files globs relative to the config file.
func (c *Config) RuleFilePaths() ([]string, error) {
	var out []string
	for _, pattern := range c.RuleFiles {
		matches, err := filepath.Glob(c.Resolve(pattern))
		if err != nil {
			return nil, fmt.Errorf("rule_files %q: %w", pattern, err)
		}
		sort.Strings(matches)
		out = append(out, matches...)
	}
	return out, nil
}
