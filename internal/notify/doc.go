// Package notify tells people what rulesd did: one digest per run and
// notifier, sent to Slack incoming webhooks or to any HTTP endpoint as JSON.
//
// A run must never wait for, or fail because of, a notification: the money is
// moved by actions, and a slow chat service must not hold them up. So events
// are collected during a run (Dispatcher.StartRun, Run.Add) and handed to a
// Dispatcher at the end (Run.Finish), which queues without blocking, sends
// from a bounded pool of workers, retries what is worth retrying and drops —
// counting it in rulesd_notifications_total{notifier,result} — what it
// cannot queue. Special digests (guard tripped, flapping blocked, broken
// credentials) go through Dispatcher.Send.
//
// Webhook URLs are secrets: a Slack incoming-webhook URL is the credential.
// They are held as Secret, whose every printed form is "<redacted>", and every
// error is passed through RedactError, because Go's HTTP client quotes the
// full URL in its errors (`Post "https://hooks.slack.com/services/…": …`).
//
// The shape follows Alertmanager's notify package: a Notifier returns
// (retryable bool, err error); Retryable sorts HTTP status codes (429, 408
// and 5xx are retried, any other 4xx is not); RedactError strips URLs.
// Both integrations live in this package rather than in sub-packages because
// Build, which maps the config to notifiers, needs both and both need the
// Digest model; at about 200 lines each they read well as files.
//
// # Webhook schema (version "1")
//
// A webhook notifier POSTs one JSON object per digest with
// Content-Type: application/json and User-Agent: rulesd/<version>.
// Every field is always present; strings are "" and objects {} when empty.
//
//	{
//	  "version":  "1",                  // WebhookSchemaVersion
//	  "kind":     "run",                // run | guard_tripped | flapping_blocked | auth_failure
//	  "time":     "2026-11-20T10:00:05Z",
//	  "run_id":   "r-20261120T1000-stop-loss-act_1",
//	  "group":    "stop-loss",
//	  "rule":     "",                   // set for guard_tripped and flapping_blocked
//	  "reason":   "",                   // a sentence for the special kinds
//	  "accounts": [{"id": "act_1", "name": "Acme US"}],
//	  "counts":   {"applied": 2, "failed": 1},   // events by result, omitted ones included
//	  "total":    3,                    // events reported, omitted ones included
//	  "omitted":  0,                    // events beyond the per-digest limit, not listed
//	  "events": [{
//	    "time": "2026-11-20T10:00:04Z", "run_id": "…", "group": "stop-loss",
//	    "rule": "pause-spend-without-purchase",
//	    "account_id": "act_1", "account_name": "Acme US",
//	    "level": "ad", "object_id": "101", "object_name": "UGC video",
//	    "kind": "pause", "field": "status",
//	    "before": "ACTIVE", "after": "PAUSED",  // numbers in major units for money; null for notify
//	    "result": "applied", "capped_by": "", "error": "",
//	    "labels": {"owner": "growth"},
//	    "values": {"spend": 60, "purchases": 0, "cpa": null},  // null = missing
//	    "message": ""
//	  }]
//	}
//
// A receiver should answer 2xx. rulesd retries 408, 429 (after Retry-After)
// and 5xx, and network errors, with exponential backoff; it does not retry
// other answers and does not follow redirects.
package notify
