package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// WebhookSchemaVersion is the "version" field of every webhook payload. It
// changes only when a field changes meaning or disappears; new fields may be
// added within a version.
const WebhookSchemaVersion = "1"

// Webhook posts digests as JSON (see the package documentation for the
// schema) to any HTTP endpoint.
type Webhook struct {
	url  Secret
	opts HTTPOptions
}

// NewWebhook returns a notifier that posts to u.
func NewWebhook(u Secret, opts HTTPOptions) *Webhook {
	return &Webhook{url: u, opts: opts.withDefaults()}
}

// Notify posts d as one JSON document. Errors never contain the URL.
func (w *Webhook) Notify(ctx context.Context, d Digest) (bool, error) {
	body, err := MarshalDigest(d)
	if err != nil {
		return false, fmt.Errorf("webhook: %w", err)
	}
	retry, err := post(ctx, w.opts, w.url, "application/json", body)
	if err != nil {
		return retry, fmt.Errorf("webhook: %w", err)
	}
	return false, nil
}

// MarshalDigest encodes d in the webhook schema. Missing values (NaN, ±Inf)
// become null, which JSON can carry and encoding/json would otherwise refuse.
func MarshalDigest(d Digest) ([]byte, error) {
	d.normalize()
	p := webhookPayload{
		Version:  WebhookSchemaVersion,
		Kind:     string(d.kind()),
		Time:     d.Time.UTC(),
		RunID:    d.RunID,
		Group:    d.Group,
		Rule:     d.Rule,
		Reason:   d.Reason,
		Accounts: make([]webhookAccount, len(d.Accounts)),
		Counts:   d.Counts,
		Total:    d.Total(),
		Omitted:  d.Omitted,
		Events:   make([]webhookEvent, len(d.Events)),
	}
	if p.Counts == nil {
		p.Counts = map[string]int{}
	}
	for i, a := range d.Accounts {
		p.Accounts[i] = webhookAccount(a)
	}
	for i, e := range d.Events {
		values := make(map[string]any, len(e.Values))
		for k, v := range e.Values {
			values[k] = jsonValue(v)
		}
		labels := e.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		p.Events[i] = webhookEvent{
			Time:        e.Time.UTC(),
			RunID:       e.RunID,
			Group:       e.Group,
			Rule:        e.Rule,
			AccountID:   e.AccountID,
			AccountName: e.AccountName,
			Level:       e.Level,
			ObjectID:    e.ObjectID,
			ObjectName:  e.ObjectName,
			Kind:        e.Kind,
			Field:       e.Field,
			Before:      jsonValue(e.Before),
			After:       jsonValue(e.After),
			Result:      e.Result,
			CappedBy:    e.CappedBy,
			Error:       e.Error,
			Labels:      labels,
			Values:      values,
			Message:     e.Message,
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding digest: %w", err)
	}
	return b, nil
}

// jsonValue maps a value the rule saw to something encoding/json accepts:
// missing numbers (NaN) and infinities become null.
func jsonValue(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil
		}
	}
	return v
}

// The wire types are separate from Event and Digest so that the schema is
// written down in one place and cannot change by renaming a Go field.
// Every field is always present (no omitempty) so receivers need no
// defaults.
type webhookPayload struct {
	Version  string           `json:"version"`
	Kind     string           `json:"kind"`
	Time     time.Time        `json:"time"`
	RunID    string           `json:"run_id"`
	Group    string           `json:"group"`
	Rule     string           `json:"rule"`
	Reason   string           `json:"reason"`
	Accounts []webhookAccount `json:"accounts"`
	Counts   map[string]int   `json:"counts"`
	Total    int              `json:"total"`
	Omitted  int              `json:"omitted"`
	Events   []webhookEvent   `json:"events"`
}

type webhookAccount struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type webhookEvent struct {
	Time        time.Time         `json:"time"`
	RunID       string            `json:"run_id"`
	Group       string            `json:"group"`
	Rule        string            `json:"rule"`
	AccountID   string            `json:"account_id"`
	AccountName string            `json:"account_name"`
	Level       string            `json:"level"`
	ObjectID    string            `json:"object_id"`
	ObjectName  string            `json:"object_name"`
	Kind        string            `json:"kind"`
	Field       string            `json:"field"`
	Before      any               `json:"before"`
	After       any               `json:"after"`
	Result      string            `json:"result"`
	CappedBy    string            `json:"capped_by"`
	Error       string            `json:"error"`
	Labels      map[string]string `json:"labels"`
	Values      map[string]any    `json:"values"`
	Message     string            `json:"message"`
}
