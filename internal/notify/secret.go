package notify

import (
	"errors"
	"net/url"
	"slices"
	"strings"
)

// redacted replaces a secret wherever rulesd prints one.
const redacted = "<redacted>"

// Secret holds a webhook URL (or any other credential) so that it cannot be
// printed by accident. Its String, GoString, MarshalText and MarshalJSON
// all yield "<redacted>", so fmt verbs, zap fields and JSON encoders never
// reveal it. The value sits behind a pointer because fmt prints unexported
// struct fields without calling their String method: a plain string type
// would leak through %+v of any struct that contains it, a pointer prints as
// an address.
//
// Only Reveal returns the value; call it at the one place where the secret
// is really used (building the HTTP request).
type Secret struct {
	p *string
}

// NewSecret wraps s. Surrounding white space, including the trailing newline
// of a secret file, is removed.
func NewSecret(s string) Secret {
	s = strings.TrimSpace(s)
	return Secret{p: &s}
}

// Reveal returns the secret value. Never log or wrap what it returns.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// String returns "<redacted>" so that %s and %v never print the value.
func (s Secret) String() string { return redacted }

// GoString returns "<redacted>" so that %#v never prints the value.
func (s Secret) GoString() string { return redacted }

// MarshalText returns "<redacted>": a config dump must not carry the secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON returns the JSON string "<redacted>".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// UnmarshalText sets the secret from text, so a config decoder (YAML, JSON)
// can fill a Secret field directly and the value is never held as a plain
// string.
func (s *Secret) UnmarshalText(b []byte) error {
	*s = NewSecret(string(b))
	return nil
}

// redactedError is an error whose text has had URLs and secrets removed.
// It unwraps to the cause inside a *url.Error (a *net.OpError,
// context.DeadlineExceeded, ...), never to the *url.Error itself, so that
// errors.Is keeps working while errors.As cannot dig the URL back out.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// RedactError returns err with every URL and every given secret removed from
// its text. Go's HTTP client wraps its failures in *url.Error, whose text is
// `Post "https://hooks.slack.com/services/T/B/XXXX": ...` — the whole
// secret. RedactError finds that URL anywhere in the chain and replaces it,
// its path and its query; the secrets are replaced the same way because a
// server may echo the request path in its answer ("Cannot POST /hooks/…").
// A nil err stays nil.
func RedactError(err error, secrets ...Secret) error {
	if err == nil {
		return nil
	}
	var fragments []string
	var cause error = err
	var ue *url.Error
	if errors.As(err, &ue) {
		fragments = append(fragments, urlFragments(ue.URL)...)
		cause = ue.Err
	}
	for _, s := range secrets {
		fragments = append(fragments, urlFragments(s.Reveal())...)
	}
	msg := err.Error()
	clean := scrub(msg, fragments)
	if clean == msg && ue == nil {
		return err
	}
	return &redactedError{msg: clean, cause: cause}
}

// minFragment is the shortest piece of a URL that is scrubbed on its own;
// shorter pieces ("/", "a") would garble the message without protecting
// anything.
const minFragment = 4

// urlFragments lists the parts of raw that must not appear in a message:
// the whole URL and, when it parses, its path, query and user info (the
// places where webhook services put their tokens). Longest first, so that a
// shorter fragment never breaks up a longer one before it is replaced.
func urlFragments(raw string) []string {
	if raw == "" {
		return nil
	}
	out := []string{raw}
	if u, err := url.Parse(raw); err == nil {
		out = append(out, u.String(), u.EscapedPath(), u.Path, u.RawQuery)
		if u.User != nil {
			out = append(out, u.User.String())
		}
	}
	return out
}

// scrub replaces every fragment of at least minFragment bytes in msg.
func scrub(msg string, fragments []string) string {
	// Longest first: the full URL before its path.
	slices.SortFunc(fragments, func(a, b string) int { return len(b) - len(a) })
	for _, f := range fragments {
		if len(f) < minFragment || f == redacted {
			continue
		}
		msg = strings.ReplaceAll(msg, f, redacted)
	}
	return msg
}
