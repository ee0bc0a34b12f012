package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// blockingCollector holds a scrape of /metrics until release is closed.
type blockingCollector struct {
	in      chan struct{}
	release chan struct{}
}

func (c blockingCollector) Describe(chan<- *prometheus.Desc) {} // unchecked

func (c blockingCollector) Collect(chan<- prometheus.Metric) {
	select {
	case c.in <- struct{}{}:
	default:
	}
	<-c.release
}

// TestShutdownCancelsRunsWhileHTTPDrains: on SIGTERM the reads of a run in flight are
// cancelled at once (SPEC 7), not only after the HTTP server has finished its own
// graceful shutdown — which waits up to ShutdownTimeout for a slow request, time the
// 30 s grace period does not have twice — and the daemon still exits cleanly.
func TestShutdownCancelsRunsWhileHTTPDrains(t *testing.T) {
	w := newWorld(t)
	readStarted, readCancelled := make(chan struct{}, 1), make(chan struct{}, 1)
	graph := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		// Every read hangs until its caller gives up.
		select {
		case readStarted <- struct{}{}:
		default:
		}
		<-r.Context().Done()
		select {
		case readCancelled <- struct{}{}:
		default:
		}
	}))
	defer graph.Close()
	cfg := readFile(t, w.cfg)
	cfg = regexp.MustCompile(`base_url: "[^"]*"`).ReplaceAllString(cfg, fmt.Sprintf("base_url: %q", graph.URL))
	w.write("rulesd.yaml", cfg)
	w.write("rules/stop-loss.yaml", strings.Replace(fmt.Sprintf(stopLossYAML, ""), `"*/30 * * * *"`, `"@every 1s"`, 1))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan string, 1)
	d, err := start(ctx, Options{ConfigPath: w.cfg, noWatch: true, OnListen: func(a string) { addr <- a }})
	if err != nil {
		t.Fatal(err)
	}
	slow := blockingCollector{in: make(chan struct{}, 1), release: make(chan struct{})}
	d.reg.MustRegister(slow)
	done := make(chan error, 1)
	go func() {
		err := d.serve(ctx)
		d.close()
		done <- err
	}()
	base := "http://" + <-addr
	select {
	case <-readStarted:
	case <-time.After(waitFor):
		t.Fatal("no scheduled run read the Marketing API within 10s")
	}
	go func() {
		if resp, err := http.Get(base + "/metrics"); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-slow.in:
	case <-time.After(waitFor):
		t.Fatal("GET /metrics did not reach the registry within 10s")
	}

	cancel() // SIGTERM
	select {
	case <-readCancelled:
	case <-time.After(3 * time.Second):
		t.Error("the run's read was not cancelled within 3s of SIGTERM while an HTTP request was still in flight")
	}
	close(slow.release)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not stop within 30s")
	}
}
