package rules

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary rule files to the loader: it may reject them, but must
// never panic, and a rejected file always comes with at least one error.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "errors", "*.yaml"))
	examples, _ := filepath.Glob(filepath.Join("..", "..", "rules", "*.yaml"))
	for _, p := range append(seeds, examples...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("groups:\n- name: g\n  rules:\n  - {name: r, level: ad, window: last_7d, when: 'spend > 1', action: {kind: pause}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, diags := Load([]Source{{Name: "fuzz.yaml", Data: data}}, Options{})
		if set == nil && !diags.HasErrors() {
			t.Fatalf("rejected without an error: %q", data)
		}
		if set != nil && diags.HasErrors() {
			t.Fatalf("accepted with errors: %v", diags)
		}
		if set != nil {
			rows := set.Layout.NewRows(2)
			for _, g := range set.Groups {
				for _, r := range g.Rules {
					r.Match(&rows[0])
					for _, v := range r.Values {
						v.Get(&rows[1])
					}
				}
			}
		}
	})
}
