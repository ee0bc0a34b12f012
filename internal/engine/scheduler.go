package engine

import (
	"context"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/rules"
)

// Scheduler runs each group on its cron schedule. robfig/cron never catches up runs
// missed while the process was down, and skips the spring-forward DST hour; both are
// documented for users.
type Scheduler struct {
	e      *Engine
	log    *zap.Logger
	cron   *cron.Cron
	ctx    context.Context
	cancel context.CancelFunc
	// AccountLocation resolves an account's time zone for groups with
	// timezone: account; nil or an error uses the config's zone.
	accountLoc func(ctx context.Context, acct string) (*time.Location, error)

	mu      sync.Mutex
	entries map[string][]cron.EntryID // group name -> entries
	hashes  map[string]string         // group name -> definition hash
}

// NewScheduler returns a stopped scheduler for e.
func NewScheduler(e *Engine, accountLoc func(ctx context.Context, acct string) (*time.Location, error)) *Scheduler {
	ctx, cancel := context.WithCancel(context.Background())
	c := cron.New(cron.WithParser(cron.NewParser(cron.Minute|cron.Hour|cron.Dom|cron.Month|cron.Dow|cron.Descriptor)),
		cron.WithLocation(time.UTC), cron.WithChain(cron.Recover(cron.PrintfLogger(zapPrintf{e.opts.Logger}))))
	return &Scheduler{e: e, log: e.opts.Logger, cron: c, ctx: ctx, cancel: cancel, accountLoc: accountLoc,
		entries: map[string][]cron.EntryID{}, hashes: map[string]string{}}
}

type zapPrintf struct{ l *zap.Logger }

func (z zapPrintf) Printf(format string, args ...any) { z.l.Sugar().Errorf(format, args...) }

// Sync makes the schedule match the engine's rule set: groups whose definition did
// not change keep their entries (and timing), changed groups are re-added, removed
// groups are dropped.
func (s *Scheduler) Sync() {
	set := s.e.Rules()
	cfg := s.e.Config()
	s.mu.Lock()
	defer s.mu.Unlock()
	live := map[string]bool{}
	for _, g := range set.Groups {
		live[g.Name] = true
		if s.hashes[g.Name] == g.Hash+cfg.Schedule.Value+cfg.Timezone.Value {
			continue
		}
		s.remove(g.Name)
		s.add(g, cfg)
		s.hashes[g.Name] = g.Hash + cfg.Schedule.Value + cfg.Timezone.Value
	}
	for name := range s.entries {
		if !live[name] {
			s.remove(name)
			delete(s.hashes, name)
		}
	}
}

func (s *Scheduler) remove(name string) {
	for _, id := range s.entries[name] {
		s.cron.Remove(id)
	}
	delete(s.entries, name)
}

func (s *Scheduler) add(g *rules.Group, cfg *config.Config) {
	sched, err := rules.ParseSchedule(g.Schedule)
	if err != nil {
		s.log.Error("invalid schedule", zap.String("group", g.Name), zap.Error(err))
		return
	}
	if !g.AccountTimezone {
		s.entries[g.Name] = append(s.entries[g.Name], s.cron.Schedule(inLocation(sched, g.Location), s.job(g.Name, nil)))
		return
	}
	// timezone: account: one entry per time zone, each running the accounts in it.
	byZone := map[string][]string{}
	locs := map[string]*time.Location{}
	for _, a := range cfg.Accounts {
		if !g.Selects(a) {
			continue
		}
		loc := g.Location
		if s.accountLoc != nil {
			if l, err := s.accountLoc(s.ctx, a.ID); err == nil {
				loc = l
			} else {
				s.log.Warn("account time zone unknown; using the config's", zap.String("account", a.ID), zap.Error(err))
			}
		}
		byZone[loc.String()] = append(byZone[loc.String()], a.ID)
		locs[loc.String()] = loc
	}
	for zone, ids := range byZone {
		set := map[string]bool{}
		for _, id := range ids {
			set[id] = true
		}
		s.entries[g.Name] = append(s.entries[g.Name], s.cron.Schedule(inLocation(sched, locs[zone]), s.job(g.Name, set)))
	}
}

// inLocation evaluates a schedule in loc unless it carries its own CRON_TZ (the
// parser gives time.Local to schedules without one).
func inLocation(sched cron.Schedule, loc *time.Location) cron.Schedule {
	if spec, ok := sched.(*cron.SpecSchedule); ok && spec.Location == time.Local && loc != nil {
		cp := *spec
		cp.Location = loc
		return &cp
	}
	return sched
}

func (s *Scheduler) job(group string, accounts map[string]bool) cron.Job {
	return cron.FuncJob(func() {
		at := s.e.opts.Now().Truncate(time.Second)
		if _, err := s.e.runGroupFiltered(s.ctx, group, at, accounts); err != nil {
			s.log.Error("group run", zap.String("group", group), zap.Error(err))
		}
	})
}

// Start starts the schedule.
func (s *Scheduler) Start() { s.cron.Start() }

// Stop stops scheduling and cancels runs in flight (their write batches finish),
// then waits for them until ctx is done.
func (s *Scheduler) Stop(ctx context.Context) {
	// cron's Stop returns a context done once the running jobs have returned.
	stopped := s.cron.Stop()
	s.cancel()
	select {
	case <-stopped.Done():
	case <-ctx.Done():
	}
}

// Next returns when the group next runs.
func (s *Scheduler) Next(group string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for _, id := range s.entries[group] {
		if n := s.cron.Entry(id).Next; !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next
}
