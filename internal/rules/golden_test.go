package rules

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rulesd/rulesd/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestErrorGolden loads each file under testdata/errors (or each directory, as one set
// of files) and compares every message, with its position, to the .golden file beside
// it: the exact text a marketer sees is part of the product.
func TestErrorGolden(t *testing.T) {
	dir := filepath.Join("testdata", "errors")
	cfg, l := config.Load(filepath.Join(dir, "rulesd.yaml"))
	if cfg == nil {
		t.Fatalf("config: %v", l.Err())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	for _, e := range entries {
		name := e.Name()
		var files []string
		switch {
		case e.IsDir():
			files, _ = filepath.Glob(filepath.Join(dir, name, "*.yaml"))
		case strings.HasSuffix(name, ".yaml") && name != "rulesd.yaml":
			files = []string{filepath.Join(dir, name)}
			name = strings.TrimSuffix(name, ".yaml")
		default:
			continue
		}
		cases++
		t.Run(name, func(t *testing.T) {
			_, diags := LoadFiles(files, Options{Config: cfg})
			var b strings.Builder
			for _, d := range diags {
				b.WriteString(filepath.ToSlash(d.String()))
				b.WriteByte('\n')
			}
			got := b.String()
			if got == "" {
				t.Fatalf("no diagnostics for %s: every file here holds a mistake", name)
			}
			golden := filepath.Join(dir, name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/rules -run TestErrorGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
	if cases < 20 {
		t.Fatalf("only %d golden cases found", cases)
	}
}
