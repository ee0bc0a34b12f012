package app

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestPruneDuringReload: the hourly housekeeping reads the retention of the config a
// reload (POST /-/reload, from the HTTP server's goroutine) may be replacing at the
// same moment; under -race this must not be a data race.
func TestPruneDuringReload(t *testing.T) {
	w := newWorld(t)
	w.write("rules/stop-loss.yaml", fmt.Sprintf(stopLossYAML, ""))
	ctx := context.Background()
	d, err := start(ctx, Options{ConfigPath: w.cfg, noWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			if err := d.Reload(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	for range 5 {
		d.prune(ctx)
	}
	wg.Wait()
}
