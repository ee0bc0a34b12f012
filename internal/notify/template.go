package notify

import (
	"bytes"
	"errors"
	"fmt"
	"text/template"
)

// MaxMessageBytes bounds a rendered message: a `range` over a large value
// must not turn one notification into megabytes.
const MaxMessageBytes = 4000

// ParseMessage parses a rule's `message:` as a Go text/template. Keys missing
// from the data are errors (missingkey=error) rather than "<no value>", so a
// misspelt name is caught by `rulesd check` at load time (when the rules
// package executes the template against sample data) instead of producing
// a silently wrong notification.
func ParseMessage(text string) (*template.Template, error) {
	t, err := template.New("message").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("message template: %w", err)
	}
	return t, nil
}

// RenderMessage executes tmpl with data. The output is cut at
// MaxMessageBytes with a trailing "…". A nil tmpl renders "".
func RenderMessage(tmpl *template.Template, data any) (string, error) {
	if tmpl == nil {
		return "", nil
	}
	w := &limitedBuffer{max: MaxMessageBytes}
	if err := tmpl.Execute(w, data); err != nil && !errors.Is(err, errMessageFull) {
		return "", fmt.Errorf("message template: %w", err)
	}
	if w.full {
		return truncate(w.buf.String()+"…", MaxMessageBytes), nil
	}
	return w.buf.String(), nil
}

// errMessageFull stops template execution once the output is long enough.
var errMessageFull = errors.New("message too long")

// limitedBuffer keeps the first max bytes and then fails every write, which
// aborts the template's execution early.
type limitedBuffer struct {
	buf  bytes.Buffer
	max  int
	full bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); len(p) > room {
		b.buf.Write(p[:room])
		b.full = true
		return room, errMessageFull
	}
	return b.buf.Write(p)
}
