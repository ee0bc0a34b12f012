package app

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// watch signals changes on changes to the config or rule files. Like Thanos'
// reloader it watches directories, not files (a Kubernetes ConfigMap update swaps a
// ..data symlink, which a watch on the file never sees), debounces events, hashes
// the content so that only real changes count, and re-checks on a timer in case an
// event was lost.
func (d *Daemon) watch(ctx context.Context, changes chan<- struct{}) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.log.Warn("cannot watch rule files; reload with SIGHUP or POST /-/reload", zap.Error(err))
		return
	}
	defer w.Close()
	watched := map[string]bool{}
	addDirs := func() {
		for _, dir := range d.watchDirs() {
			if watched[dir] {
				continue
			}
			if err := w.Add(dir); err != nil {
				d.log.Warn("watch directory", zap.String("dir", dir), zap.Error(err))
				continue
			}
			watched[dir] = true
		}
	}
	addDirs()
	// Compare with the files as loaded at start-up, not as they are now: a change
	// made while the daemon was starting would otherwise never be seen.
	last := d.loadHash
	const debounce = 300 * time.Millisecond
	var timer *time.Timer
	var fire <-chan time.Time
	poll := time.NewTicker(30 * time.Second)
	defer poll.Stop()
	check := func() {
		if h := d.contentHash(); h != last {
			last = h
			select {
			case changes <- struct{}{}:
			default:
			}
		}
		addDirs()
	}
	check()
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case _, ok := <-w.Events:
			if !ok {
				return
			}
			if timer == nil {
				timer = time.NewTimer(debounce)
			} else {
				timer.Reset(debounce)
			}
			fire = timer.C
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			d.log.Warn("file watch", zap.Error(err))
		case <-fire:
			fire = nil
			check()
		case <-poll.C:
			check()
		}
	}
}

// watchDirs are the directories holding the config and the rule files (the globs'
// directories, so new files are seen).
func (d *Daemon) watchDirs() []string {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	set := map[string]bool{filepath.Dir(d.opts.ConfigPath): true}
	for _, pattern := range cfg.RuleFiles {
		set[filepath.Dir(cfg.Resolve(pattern))] = true
	}
	out := make([]string, 0, len(set))
	for dir := range set {
		out = append(out, dir)
	}
	sort.Strings(out)
	return out
}

// contentHash hashes the config and every rule file it names now.
func (d *Daemon) contentHash() [32]byte {
	h := sha256.New()
	files := []string{d.opts.ConfigPath}
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	if paths, err := cfg.RuleFilePaths(); err == nil {
		files = append(files, paths...)
	}
	for _, f := range files {
		h.Write([]byte(f))
		if b, err := os.ReadFile(f); err == nil {
			h.Write(b)
		}
		h.Write([]byte{0})
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
