package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestTestCommand(t *testing.T) {
	examples, err := filepath.Glob("../../rules/tests/*.yaml")
	if err != nil || len(examples) == 0 {
		t.Fatalf("no example tests: %v", err)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"no files", []string{"test"}, 2, ""},
		{"bad regexp", []string{"test", "--run", "(", examples[0]}, 2, ""},
		{"examples", append([]string{"test"}, examples...), 0, "ok   "},
		{"failing", []string{"test", "../../internal/ruletest/testdata/fail_test.yaml"}, 1, "FAIL ../../internal/ruletest/testdata/fail_test.yaml:4:3: expects the wrong thing"},
		{"bad file", []string{"test", "../../internal/ruletest/testdata/badkeys_test.yaml"}, 1, `badkeys_test.yaml:6:30: unknown key "colour" in object`},
		{"missing file", []string{"test", "nope_test.yaml"}, 1, "nope_test.yaml: read test file"},
		{"no test selected", []string{"test", "--run", "^nothing$", examples[0]}, 1, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := dispatch(context.Background(), c.args, &stdout, &stderr); code != c.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), c.out) {
				t.Errorf("stdout lacks %q:\n%s", c.out, stdout.String())
			}
		})
	}
}
