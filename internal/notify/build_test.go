package notify

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

func fakeFiles(files map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		s, ok := files[name]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
}

func TestBuild(t *testing.T) {
	files := map[string]string{"/s/slack": "https://hooks.slack.com/services/T/B/" + secretToken + "\n"}
	got, err := Build([]Config{
		{Name: "growth-slack", Type: TypeSlack, URLFile: "/s/slack"},
		{Name: "audit-hook", Type: TypeWebhook, URL: NewSecret("https://example.internal/hook")},
	}, fakeFiles(files), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := got["growth-slack"].(*Slack)
	if !ok || s.url.Reveal() != strings.TrimSpace(files["/s/slack"]) {
		t.Errorf("slack notifier: %#v", got["growth-slack"])
	}
	if _, ok := got["audit-hook"].(*Webhook); !ok {
		t.Errorf("webhook notifier: %#v", got["audit-hook"])
	}
	if p := fmt.Sprintf("%+v %#v", got, s); strings.Contains(p, secretToken) {
		t.Errorf("printing notifiers reveals the URL: %s", p)
	}
}

func TestBuildErrors(t *testing.T) {
	files := map[string]string{"/empty": " \n", "/bad": "ftp://" + secretToken, "/rel": "https:///services/" + secretToken}
	_, err := Build([]Config{
		{Name: "", Type: TypeSlack, URL: NewSecret("https://x.example/a")},
		{Name: "t", Type: "email", URL: NewSecret("https://x.example/a")},
		{Name: "both", Type: TypeSlack, URL: NewSecret("https://x.example/a"), URLFile: "/x"},
		{Name: "none", Type: TypeWebhook},
		{Name: "missing", Type: TypeSlack, URLFile: "/nope"},
		{Name: "empty", Type: TypeSlack, URLFile: "/empty"},
		{Name: "scheme", Type: TypeSlack, URLFile: "/bad"},
		{Name: "nohost", Type: TypeWebhook, URLFile: "/rel"},
		{Name: "parse", Type: TypeWebhook, URL: NewSecret("https://x.example/%zz" + secretToken)},
		{Name: "ok", Type: TypeWebhook, URL: NewSecret("https://x.example/a")},
		{Name: "ok", Type: TypeWebhook, URL: NewSecret("https://x.example/b")},
	}, fakeFiles(files), BuildOptions{})
	if err == nil {
		t.Fatal("want errors")
	}
	msg := err.Error()
	for _, want := range []string{
		`notifiers[0] "": name is required`,
		`notifiers[1] "t": unknown type "email"`,
		`notifiers[2] "both": url and webhook_url_file are mutually exclusive`,
		`notifiers[3] "none": one of url or webhook_url_file is required`,
		`notifiers[4] "missing": reading webhook_url_file: open /nope: file does not exist`,
		`notifiers[5] "empty": webhook_url_file /empty is empty`,
		`notifiers[6] "scheme": url must be http or https`,
		`notifiers[7] "nohost": url has no host`,
		`notifiers[8] "parse": url is not a valid URL`,
		`notifiers[10] "ok": duplicate name`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, secretToken) {
		t.Errorf("secret in errors:\n%s", msg)
	}
}
