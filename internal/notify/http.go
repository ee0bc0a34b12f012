package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// HTTPOptions configures the HTTP notifiers.
type HTTPOptions struct {
	// Client sends the requests. Nil means a client that does not follow
	// redirects (a redirect could carry the payload to another host; a
	// webhook that moved should be reconfigured, not followed silently).
	// The per-send deadline comes from the context, see Options.Timeout.
	Client *http.Client
	// Version is the rulesd version in the User-Agent header
	// "rulesd/<version>"; empty means "dev".
	Version string
	// Now returns the current time, used to read a Retry-After date; nil
	// means time.Now.
	Now func() time.Time
}

func (o HTTPOptions) withDefaults() HTTPOptions {
	if o.Client == nil {
		o.Client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// userAgent is the User-Agent header of every notification request.
func (o HTTPOptions) userAgent() string { return "rulesd/" + o.Version }

// StatusError is a non-2xx answer of a notification endpoint. Its text holds
// the status and the start of the body (which helps: Slack answers
// "invalid_payload", "channel_is_archived", …), never the URL.
type StatusError struct {
	// StatusCode is the HTTP status code.
	StatusCode int
	// RetryAfter is the wait the server asked for in a Retry-After header
	// (429 or 503); 0 when it asked for none.
	RetryAfter time.Duration
	// Body is the start of the response body, on one line.
	Body string
}

// Error describes the answer.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("unexpected status %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		s += ": " + e.Body
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// RetryAfter returns the wait a server asked for through a *StatusError in
// err's chain, and whether it asked.
func RetryAfter(err error) (time.Duration, bool) {
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter, true
	}
	return 0, false
}

// Retryable sorts an HTTP status code the way every notifier here does:
// 429 (rate limited), 408 (request timeout) and 5xx are worth retrying, the
// server may answer later; any other 4xx (and an unexpected 1xx or 3xx) means
// the request itself is wrong — a bad payload, a revoked or archived
// webhook — and sending it again cannot help.
func Retryable(statusCode int) bool {
	switch {
	case statusCode == http.StatusTooManyRequests, statusCode == http.StatusRequestTimeout:
		return true
	case statusCode >= 500:
		return true
	default:
		return false
	}
}

// maxErrorBody is how much of an error answer's body goes into the error.
const maxErrorBody = 200

// maxDrain is how much of an answer is read to let the connection be reused.
const maxDrain = 64 << 10

// post sends body to the secret URL and sorts the outcome into
// (retryable, err). Every error it returns is redacted of the URL.
func post(ctx context.Context, o HTTPOptions, u Secret, contentType string, body []byte) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.Reveal(), bytes.NewReader(body))
	if err != nil {
		// NewRequest errors quote the URL; Build validated it, so this is a
		// programming error, but it must still not leak.
		return false, RedactError(fmt.Errorf("building request: %w", err), u)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", o.userAgent())
	resp, err := o.Client.Do(req)
	if err != nil {
		// Network errors, timeouts and refused connections may pass: retry.
		// The dispatcher stops retrying once its own context is done.
		return true, RedactError(err, u)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		return false, nil
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxDrain))
	se := &StatusError{
		StatusCode: resp.StatusCode,
		Body:       oneLine(data, maxErrorBody),
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		se.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), o.Now())
	}
	return Retryable(resp.StatusCode), RedactError(se, u)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// An unreadable or past value yields 0 (the caller's backoff applies).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		// Cap absurd values before they overflow a Duration.
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// oneLine returns the start of b as printable text on one line, at most n
// bytes, with a "…" when cut.
func oneLine(b []byte, n int) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Join(strings.Fields(s), " ")
	return truncate(s, n)
}

// truncate cuts s to at most n bytes on a rune boundary, ending in "…"
// when it was cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	cut := n - len(ell)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}
