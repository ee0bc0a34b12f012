package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// DefaultSlackMaxEvents is how many events a Slack message lists before it
// says "and N more": a readable message, far below Slack's limit of 50
// blocks.
const DefaultSlackMaxEvents = 20

// SlackOptions configures a Slack notifier.
type SlackOptions struct {
	// HTTPOptions are the client, version and clock.
	HTTPOptions
	// MaxEvents is how many events are listed; 0 means DefaultSlackMaxEvents.
	MaxEvents int
}

// Slack posts digests to a Slack incoming webhook as one Block Kit message,
// with a plain-text fallback for notifications and clients without blocks.
type Slack struct {
	url  Secret
	opts SlackOptions
}

// NewSlack returns a notifier for the incoming-webhook URL u.
func NewSlack(u Secret, opts SlackOptions) *Slack {
	opts.HTTPOptions = opts.HTTPOptions.withDefaults()
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultSlackMaxEvents
	}
	return &Slack{url: u, opts: opts}
}

// Notify posts d as one message. Errors never contain the webhook URL.
func (s *Slack) Notify(ctx context.Context, d Digest) (bool, error) {
	d.normalize()
	body, err := json.Marshal(s.message(d))
	if err != nil {
		return false, fmt.Errorf("slack: encoding message: %w", err)
	}
	retry, err := post(ctx, s.opts.HTTPOptions, s.url, "application/json", body)
	if err != nil {
		return retry, fmt.Errorf("slack: %w", err)
	}
	return false, nil
}

// slackMessage is the incoming-webhook payload.
// https://api.slack.com/messaging/webhooks
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// Slack's limits: a header's text is at most 150 characters, a section's
// 3000. Lines are cut well below so that a long object name or message never
// makes Slack reject the whole digest.
const (
	slackHeaderMax  = 150
	slackSectionMax = 2900
	slackMessageMax = 500
)

func mrkdwn(s string) *slackText { return &slackText{Type: "mrkdwn", Text: s} }

// message builds the Block Kit message of d.
func (s *Slack) message(d Digest) slackMessage {
	title := slackTitle(d)
	summary := slackSummary(d)
	blocks := []slackBlock{
		{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(title, slackHeaderMax), Emoji: true}},
		{Type: "section", Text: mrkdwn(truncate(summary, slackSectionMax))},
	}
	multiAccount := len(d.Accounts) != 1
	shown := d.Events
	if len(shown) > s.opts.MaxEvents {
		shown = shown[:s.opts.MaxEvents]
	}
	for _, e := range shown {
		blocks = append(blocks, slackBlock{Type: "section", Text: mrkdwn(truncate(slackEvent(e, multiAccount), slackSectionMax))})
	}
	if more := d.Total() - len(shown); more > 0 {
		blocks = append(blocks, slackBlock{Type: "section", Text: mrkdwn(fmt.Sprintf("_… and %d more (see the audit log)_", more))})
	}
	ctx := fmt.Sprintf("%s · %s", d.Time.UTC().Format(time.RFC3339), s.opts.userAgent())
	if d.RunID != "" {
		ctx = "run " + slackEscape(d.RunID) + " · " + ctx
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: ctx}}})
	return slackMessage{Text: truncate(title+" — "+countsText(d.Counts), slackSectionMax), Blocks: blocks}
}

// slackTitle is the header line: what happened, where.
func slackTitle(d Digest) string {
	where := d.Group
	if d.Rule != "" {
		where += "/" + d.Rule
	}
	switch d.kind() {
	case KindGuardTripped:
		return ":rotating_light: Blast-radius guard tripped: " + where
	case KindFlappingBlocked:
		return ":warning: Flapping blocked: " + where
	case KindAuthFailure:
		return ":no_entry: Authentication failed: writes stopped"
	default:
		t := fmt.Sprintf("rulesd %s: %d %s", where, d.Total(), plural(d.Total(), "decision", "decisions"))
		if d.Counts["dry_run"] == d.Total() && d.Total() > 0 {
			t += " (dry run)"
		}
		return t
	}
}

// slackSummary is the first section: accounts, reason and counts by result.
func slackSummary(d Digest) string {
	var b strings.Builder
	if len(d.Accounts) > 0 {
		names := make([]string, len(d.Accounts))
		for i, a := range d.Accounts {
			names[i] = accountText(a.ID, a.Name)
		}
		fmt.Fprintf(&b, "*%s:* %s\n", plural(len(names), "Account", "Accounts"), strings.Join(names, ", "))
	}
	if d.Reason != "" {
		b.WriteString(slackEscape(d.Reason) + "\n")
	}
	if c := countsText(d.Counts); c != "" {
		b.WriteString(c)
	}
	s := strings.TrimRight(b.String(), "\n")
	if s == "" {
		s = "_no events_"
	}
	return s
}

// countsText renders counts by result: "applied: 3 · failed: 1".
func countsText(counts map[string]int) string {
	parts := make([]string, 0, len(counts))
	for _, k := range sortedResults(counts) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, counts[k]))
	}
	return strings.Join(parts, " · ")
}

// slackEvent renders one event, e.g.
//
//	*pause* ad *UGC video* (`101`): ACTIVE → PAUSED · *applied*
//	rule pause-spend-without-purchase
func slackEvent(e Event, withAccount bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s* %s *%s* (`%s`)", slackEscape(e.Kind), slackEscape(e.Level),
		slackEscape(truncate(e.ObjectName, 200)), slackEscape(e.ObjectID))
	if e.Field != "" || e.Before != nil || e.After != nil {
		fmt.Fprintf(&b, ": %s → %s", slackEscape(valueText(e.Before)), slackEscape(valueText(e.After)))
		if e.Field != "" && e.Field != "status" {
			fmt.Fprintf(&b, " (%s)", slackEscape(e.Field))
		}
	}
	fmt.Fprintf(&b, " · *%s*", slackEscape(e.Result))
	if e.CappedBy != "" {
		fmt.Fprintf(&b, " (capped by %s)", slackEscape(e.CappedBy))
	}
	b.WriteString("\nrule " + slackEscape(e.Rule))
	if withAccount {
		b.WriteString(" · " + accountText(e.AccountID, e.AccountName))
	}
	if e.Error != "" {
		b.WriteString("\n:x: " + slackEscape(truncate(e.Error, slackMessageMax)))
	}
	if e.Message != "" {
		for _, line := range strings.Split(truncate(e.Message, slackMessageMax), "\n") {
			b.WriteString("\n>" + slackEscape(line))
		}
	}
	return b.String()
}

// accountText renders "Acme US (`act_1`)", or the id alone.
func accountText(id, name string) string {
	if name == "" {
		return "`" + slackEscape(id) + "`"
	}
	return slackEscape(name) + " (`" + slackEscape(id) + "`)"
}

// valueText renders a before/after value: numbers without exponent, nil and
// NaN (missing) as "—".
func valueText(v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "—"
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return valueText(float64(x))
	default:
		return fmt.Sprint(x)
	}
}

// slackEscape escapes the three characters Slack's mrkdwn treats as control
// characters, so an object name like "<!channel>" cannot ping a channel.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
