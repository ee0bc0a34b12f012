package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/fakegraph"
)

// End-to-end tests of `rulesd run` as Kubernetes runs it (issue 5, items 2 and 3):
// the built binary serves on a loopback port it chose itself ("127.0.0.1:0", the
// address read from its log), answers the probes, reloads on SIGHUP and exits 0 on
// SIGTERM.

// opsLog is the daemon's stderr (JSON log lines), safe to read while it writes.
type opsLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *opsLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *opsLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// entries returns the JSON log lines (other lines are skipped).
func (l *opsLog) entries() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// opsDaemon is a `rulesd run` process without --once.
type opsDaemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	stderr  opsLog
	stdout  opsLog
	done    chan struct{}
	code    int
	baseURL string
}

// startDaemon starts `rulesd run --config cfg` in dir and waits until it listens;
// it is killed at the end of the test if still running.
func startDaemon(t *testing.T, dir, cfg string) *opsDaemon {
	t.Helper()
	d := &opsDaemon{t: t, done: make(chan struct{})}
	d.cmd = exec.Command(binary, "run", "--config", cfg)
	d.cmd.Dir = dir
	d.cmd.Env = append(envWithout("RULESD_"), "RULESD_ACCESS_TOKEN=")
	d.cmd.Stdout, d.cmd.Stderr = &d.stdout, &d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := d.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			d.code = ee.ExitCode() // -1 when killed by a signal
		} else if err != nil {
			d.code = -2
		}
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			select {
			case <-d.done:
			case <-time.After(10 * time.Second):
				t.Error("rulesd did not die within 10s of SIGKILL")
			}
		}
	})
	addr := d.waitLog("the listen address", func(e map[string]any) bool { return e["msg"] == "http server listening" })
	d.baseURL = fmt.Sprintf("http://%s", addr["addr"])
	return d
}

// waitLog polls the log every 20 ms for a line ok accepts, for at most 20 s.
func (d *opsDaemon) waitLog(what string, ok func(map[string]any) bool) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, e := range d.stderr.entries() {
			if ok(e) {
				return e
			}
		}
		select {
		case <-d.done:
			d.t.Fatalf("rulesd exited (%d) before logging %s\nstderr: %s", d.code, what, d.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("rulesd did not log %s within 20s\nstderr: %s", what, d.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get returns the status code and body of GET path.
func (d *opsDaemon) get(path string) (int, string) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.baseURL+path, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// ruleNames returns the loaded rules as GROUP/RULE, from GET /api/v1/rules.
func (d *opsDaemon) ruleNames() []string {
	d.t.Helper()
	code, body := d.get("/api/v1/rules")
	if code != http.StatusOK {
		d.t.Fatalf("GET /api/v1/rules: %d %s", code, body)
	}
	var st struct {
		Groups []struct {
			Name  string
			Rules []struct{ Name string }
		}
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		d.t.Fatalf("GET /api/v1/rules: %v\n%s", err, body)
	}
	var out []string
	for _, g := range st.Groups {
		for _, r := range g.Rules {
			out = append(out, g.Name+"/"+r.Name)
		}
	}
	return out
}

func (d *opsDaemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("send %v: %v", sig, err)
	}
}

// wait waits up to limit for the process to exit and returns its exit code.
func (d *opsDaemon) wait(limit time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
		return d.code
	case <-time.After(limit):
		d.t.Fatalf("rulesd did not exit within %s\nstderr: %s", limit, d.stderr.String())
		return 0
	}
}

// envWithout is the environment without the variables starting with prefix (a token
// in the developer's shell must not leak into the test).
func envWithout(prefix string) []string {
	var env []string
	for _, kv := range exec.Command("true").Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

const opsExtraRule = `
groups:
- name: night-watch
  rules:
  - name: huge-spend
    level: adset
    window: last_7d
    when: spend > 1000000
    action: {kind: pause}
`

func TestRunDaemonProbesSighupSigterm(t *testing.T) {
	w := newE2E(t)
	acct, _ := w.stopLossWorld()
	w.write("rules/stop-loss.yaml", stopLossRules)
	cfg := w.config(fmt.Sprintf("- {id: %s, vars: {target_cpa: 25}}", acct), `listen: "127.0.0.1:0"`)
	d := startDaemon(t, w.dir, cfg)

	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := d.get(path); code != http.StatusOK {
			t.Errorf("GET %s: %d %s, want 200", path, code, body)
		}
	}
	if got := strings.Join(d.ruleNames(), ","); got != "stop-loss/pause-spend-without-purchase" {
		t.Fatalf("rules at start: %s", got)
	}

	// SIGHUP reloads: the new rule file is read (the log says the signal did it).
	w.write("rules/night-watch.yaml", opsExtraRule)
	d.signal(syscall.SIGHUP)
	d.waitLog("a reload on SIGHUP with both groups", func(e map[string]any) bool {
		return e["msg"] == "reloaded" && e["trigger"] == "signal" && e["groups"] == 2.0
	})
	if got := strings.Join(d.ruleNames(), ","); !strings.Contains(got, "night-watch/huge-spend") {
		t.Errorf("after SIGHUP the rules are %s, want night-watch/huge-spend among them", got)
	}

	// SIGTERM: exit 0, promptly.
	start := time.Now()
	d.signal(syscall.SIGTERM)
	if code := d.wait(10 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0\nstderr: %s", code, d.stderr.String())
	}
	t.Logf("exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	if strings.Contains(d.stderr.String()+d.stdout.String(), fakegraph.DefaultToken) {
		t.Error("the access token appears in rulesd's output")
	}
}
