package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const hook = "https://hooks.slack.com/services/T000/B000/" + secretToken

func TestSecretNeverPrinted(t *testing.T) {
	s := NewSecret(hook + "\n")
	if s.Reveal() != hook {
		t.Fatalf("Reveal = %q, want the trimmed value", s.Reveal())
	}
	// An unexported field is printed by fmt without calling String: the
	// pointer inside Secret is what keeps it from leaking there.
	holder := struct {
		name string
		url  Secret
	}{"growth", s}
	j, _ := json.Marshal(struct{ URL Secret }{s})
	printed := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q", s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", holder, holder, holder),
		fmt.Sprintf("%+v", &holder),
		string(j),
	}
	core, logs := observer.New(zapcore.DebugLevel)
	zap.New(core).Info("x", zap.Any("url", s), zap.Stringer("u", s), zap.Any("holder", holder))
	for _, e := range logs.All() {
		printed = append(printed, fmt.Sprint(e.ContextMap()))
	}
	for _, p := range printed {
		if strings.Contains(p, secretToken) {
			t.Errorf("secret printed: %s", p)
		}
	}

	var u Secret
	if err := u.UnmarshalText([]byte(" " + hook + " ")); err != nil || u.Reveal() != hook {
		t.Errorf("UnmarshalText: %v, %q", err, u.Reveal())
	}
	if !(Secret{}).IsZero() || (Secret{}).Reveal() != "" {
		t.Error("zero Secret should be empty")
	}
}

func TestRedactError(t *testing.T) {
	ue := &url.Error{Op: "Post", URL: hook, Err: context.DeadlineExceeded}
	cases := []struct {
		name    string
		err     error
		secrets []Secret
		isCause error
	}{
		{"url.Error", ue, nil, context.DeadlineExceeded},
		{"wrapped url.Error", fmt.Errorf("slack: %w", ue), nil, context.DeadlineExceeded},
		{"echoed path", errors.New("404: Cannot POST /services/T000/B000/" + secretToken), []Secret{NewSecret(hook)}, nil},
		{"query token", errors.New("bad token=" + secretToken), []Secret{NewSecret("https://x.example/hook?token=" + secretToken)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := RedactError(c.err, c.secrets...)
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				if strings.Contains(s, secretToken) {
					t.Errorf("secret in %q", s)
				}
			}
			if !strings.Contains(err.Error(), redacted) {
				t.Errorf("%q does not say what was removed", err)
			}
			if c.isCause != nil && !errors.Is(err, c.isCause) {
				t.Errorf("errors.Is(%v, %v) = false", err, c.isCause)
			}
			var got *url.Error
			if errors.As(err, &got) {
				t.Errorf("the *url.Error (and its URL) can still be reached: %v", got.URL)
			}
		})
	}
	if RedactError(nil) != nil {
		t.Error("RedactError(nil) != nil")
	}
	plain := errors.New("plain")
	if RedactError(plain) != plain {
		t.Error("an error without a URL should be returned as is")
	}
}

// TestConnectionRefusedIsRedacted sends to a closed port with a URL whose
// path and query carry the secret: the error the HTTP client makes quotes the
// URL, the notifier must not.
func TestConnectionRefusedIsRedacted(t *testing.T) {
	checkLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	u := NewSecret("http://" + addr + "/services/T0/B0/" + secretToken + "?token=" + secretToken)
	for _, n := range []Notifier{NewSlack(u, SlackOptions{HTTPOptions: testHTTP(t)}), NewWebhook(u, testHTTP(t))} {
		retry, err := n.Notify(context.Background(), Digest{Events: sampleEvents(1)})
		if err == nil {
			t.Fatal("want an error from a closed port")
		}
		if !retry {
			t.Errorf("connection refused should be retryable: %v", err)
		}
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if strings.Contains(s, secretToken) || strings.Contains(s, "/services/") {
				t.Errorf("secret in error: %s", s)
			}
		}
		if !strings.Contains(err.Error(), "refused") {
			t.Errorf("error should still say what happened: %v", err)
		}
	}
}
