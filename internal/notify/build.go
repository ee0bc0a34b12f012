package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Notifier sends one digest. It reports whether a failure is worth retrying:
// network errors, 429 and 5xx are; a request the endpoint refuses (other
// 4xx) is not. Its errors must not contain the endpoint's URL or any other
// secret, and it must return when ctx is done.
type Notifier interface {
	Notify(ctx context.Context, d Digest) (retryable bool, err error)
}

// NotifierFunc adapts a function to Notifier (tests, in-process sinks).
type NotifierFunc func(ctx context.Context, d Digest) (bool, error)

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, d Digest) (bool, error) { return f(ctx, d) }

// Notifier types of the config.
const (
	TypeSlack   = "slack"
	TypeWebhook = "webhook"
)

// Config is one entry of the config's `notifiers:` list. Exactly one of URL
// and URLFile is set.
type Config struct {
	// Name is how rules refer to the notifier.
	Name string
	// Type is TypeSlack or TypeWebhook.
	Type string
	// URL is the endpoint given directly (`url:`).
	URL Secret
	// URLFile is a file holding the endpoint (`webhook_url_file:`); white
	// space around it is ignored.
	URLFile string
}

// BuildOptions are shared by every notifier Build makes.
type BuildOptions struct {
	HTTPOptions
	// SlackMaxEvents is SlackOptions.MaxEvents.
	SlackMaxEvents int
}

// Build makes the notifiers of configs, by name. readFile reads URLFile
// (nil means os.ReadFile; tests pass a fake). It checks every entry and
// returns all problems together; no error mentions a URL or a file's
// content, only names and file paths.
func Build(configs []Config, readFile func(string) ([]byte, error), opts BuildOptions) (map[string]Notifier, error) {
	if readFile == nil {
		readFile = os.ReadFile
	}
	out := make(map[string]Notifier, len(configs))
	var errs []error
	for i, c := range configs {
		n, err := build(c, readFile, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("notifiers[%d] %q: %w", i, c.Name, err))
			continue
		}
		if _, dup := out[c.Name]; dup {
			errs = append(errs, fmt.Errorf("notifiers[%d] %q: duplicate name", i, c.Name))
			continue
		}
		out[c.Name] = n
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func build(c Config, readFile func(string) ([]byte, error), opts BuildOptions) (Notifier, error) {
	if strings.TrimSpace(c.Name) == "" {
		return nil, errors.New("name is required")
	}
	if c.Type != TypeSlack && c.Type != TypeWebhook {
		return nil, fmt.Errorf("unknown type %q (want %s or %s)", c.Type, TypeSlack, TypeWebhook)
	}
	var u Secret
	switch {
	case !c.URL.IsZero() && c.URLFile != "":
		return nil, errors.New("url and webhook_url_file are mutually exclusive")
	case !c.URL.IsZero():
		u = c.URL
	case c.URLFile != "":
		b, err := readFile(c.URLFile)
		if err != nil {
			// A *fs.PathError names the file, which is fine; its content is
			// not read into the message.
			return nil, fmt.Errorf("reading webhook_url_file: %w", err)
		}
		u = NewSecret(string(b))
		if u.IsZero() {
			return nil, fmt.Errorf("webhook_url_file %s is empty", c.URLFile)
		}
	default:
		return nil, errors.New("one of url or webhook_url_file is required")
	}
	if err := checkURL(u); err != nil {
		return nil, err
	}
	switch c.Type {
	case TypeSlack:
		return NewSlack(u, SlackOptions{HTTPOptions: opts.HTTPOptions, MaxEvents: opts.SlackMaxEvents}), nil
	default:
		return NewWebhook(u, opts.HTTPOptions), nil
	}
}

// checkURL validates a webhook URL. url.Parse's own errors quote the input,
// so they are replaced by messages that do not.
func checkURL(u Secret) error {
	p, err := url.Parse(u.Reveal())
	if err != nil {
		return errors.New("url is not a valid URL")
	}
	if p.Scheme != "https" && p.Scheme != "http" {
		return errors.New("url must be http or https")
	}
	if p.Host == "" {
		return errors.New("url has no host")
	}
	return nil
}
