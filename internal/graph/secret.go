package graph

import (
	"fmt"
	"log/slog"
)

// redacted is what every rendering of a Secret prints instead of its value.
const redacted = "[REDACTED]"

// Secret holds an access token or app secret. Every way of printing it
// (fmt verbs, JSON, text, zap (zap.Any and zap.Stringer use String) and slog) yields "[REDACTED]", because zap has no
// redaction of its own and a token that reaches a log line, an error or a
// metric label is a leaked credential. Only Reveal returns the value.
type Secret struct {
	v string
}

// NewSecret wraps s. Surrounding whitespace (a trailing newline from a token
// file) is the caller's business: the value is kept verbatim.
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the secret's value; call it only where the value is sent to
// the API or used to compute appsecret_proof.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String returns "[REDACTED]" (or "" for an empty secret, so that a missing
// optional secret is visible in config dumps).
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return redacted
}

// GoString redacts %#v as well.
func (s Secret) GoString() string { return "graph.Secret(" + redacted + ")" }

// Format redacts every fmt verb, including %x and %q, which would otherwise
// be applied to the String result only by convention.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// MarshalJSON redacts the secret in JSON (and in zap's reflection encoder).
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText redacts the secret in text encodings (YAML, TOML, flags).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue redacts the secret in log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
