package notify

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRetryable(t *testing.T) {
	for code, want := range map[int]bool{
		200: false, 301: false, 400: false, 401: false, 403: false, 404: false, 410: false,
		408: true, 429: true, 500: true, 502: true, 503: true, 504: true,
	} {
		if got := Retryable(code); got != want {
			t.Errorf("Retryable(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":           0,
		"7":          7 * time.Second,
		" 12 ":       12 * time.Second,
		"0":          0,
		"-3":         0,
		"soon":       0,
		"9999999999": 24 * time.Hour,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestStatusErrorAndRetryAfter(t *testing.T) {
	err := fmt.Errorf("slack: %w", &StatusError{StatusCode: 429, RetryAfter: 3 * time.Second, Body: "rate_limited"})
	if d, ok := RetryAfter(err); !ok || d != 3*time.Second {
		t.Errorf("RetryAfter = %v, %v", d, ok)
	}
	if _, ok := RetryAfter(errors.New("x")); ok {
		t.Error("RetryAfter of a plain error")
	}
	want := "slack: unexpected status 429 Too Many Requests: rate_limited (retry after 3s)"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefg…"},
		{"ééééé", 6, "é…"},
		{"abc", 1, "…"},
	} {
		got := truncate(c.in, c.n)
		if got != c.want || !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	if got := oneLine([]byte("a\n  b\tc\xff"), 100); got != "a b c?" {
		t.Errorf("oneLine = %q", got)
	}
}
