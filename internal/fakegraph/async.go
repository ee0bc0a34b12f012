package fakegraph

import (
	"strconv"
	"time"
)

// Async job statuses, exactly as Graph spells them.
const (
	JobNotStarted = "Job Not Started"
	JobStarted    = "Job Started"
	JobRunning    = "Job Running"
	JobCompleted  = "Job Completed"
	JobFailed     = "Job Failed"
	JobSkipped    = "Job Skipped"
)

// AsyncBehavior scripts how an async insights job progresses. Jobs advance one step per poll
// of GET /{report_run_id} (not with the clock), so tests are exact and fast.
type AsyncBehavior struct {
	NotStartedPolls int // polls answering "Job Not Started", 0%
	StartedPolls    int // then "Job Started", 0%
	RunningPolls    int // then "Job Running" with a rising percentage below 100
	// StuckPolls then answer "Job Running" at 100%; reading results meanwhile fails with
	// 2601/1815107 (section 13.11).
	StuckPolls int
	// Outcome is the final status: JobCompleted (default when empty), JobFailed (after the
	// running polls, percentage back to 0, no detail) or JobSkipped (after the not-started polls).
	Outcome string
}

// DefaultAsync is the behaviour of new servers: completes on the 6th poll, after one poll
// stuck at 100%.
var DefaultAsync = AsyncBehavior{NotStartedPolls: 1, StartedPolls: 1, RunningPolls: 2, StuckPolls: 1}

// SetAsync sets the behaviour of jobs created from now on (unless queued ones apply).
func (s *Server) SetAsync(b AsyncBehavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asyncDef = b
}

// QueueAsync makes the next jobs, one each, behave as given (e.g. one JobFailed).
func (s *Server) QueueAsync(b ...AsyncBehavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asyncNext = append(s.asyncNext, b...)
}

type job struct {
	id        string
	acct      *account
	created   time.Time
	completed time.Time
	beh       AsyncBehavior
	polls     int
	q         *insightsQuery
	rows      []jobj // rendered when the job was submitted
}

// state is the job's status after its polls so far.
func (j *job) state() (string, int) {
	b, k := j.beh, j.polls
	if k <= b.NotStartedPolls {
		return JobNotStarted, 0
	}
	k -= b.NotStartedPolls
	if b.Outcome == JobSkipped {
		return JobSkipped, 0
	}
	if k <= b.StartedPolls {
		return JobStarted, 0
	}
	k -= b.StartedPolls
	if k <= b.RunningPolls {
		return JobRunning, k * 100 / (b.RunningPolls + 1)
	}
	k -= b.RunningPolls
	if b.Outcome == JobFailed {
		return JobFailed, 0
	}
	if k <= b.StuckPolls {
		return JobRunning, 100
	}
	return JobCompleted, 100
}

func (s *Server) asyncInsights(r *request, n node) *response {
	q, e := s.parseInsights(r, n)
	if e != nil {
		return s.errorResp(e, nil)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	rows := s.run(q, now)
	rendered := make([]jobj, len(rows))
	for i := range rows {
		rendered[i] = s.renderRow(q, &rows[i])
	}
	beh := s.asyncDef
	if len(s.asyncNext) > 0 {
		beh, s.asyncNext = s.asyncNext[0], s.asyncNext[1:]
	}
	s.nextJob++
	j := &job{id: strconv.FormatUint(s.nextJob, 10), acct: n.acct, created: now, beh: beh, q: q, rows: rendered}
	s.jobs[j.id] = j
	// Section 13.11: the id comes back as a string.
	return s.ok(jobj{{"report_run_id", j.id}}, nil)
}

func (s *Server) getJob(j *job) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	j.polls++
	st, pct := j.state()
	if st == JobCompleted && j.completed.IsZero() {
		j.completed = s.now()
	}
	o := jobj{{"id", j.id}, {"account_id", j.acct.num}, {"time_ref", j.created.Unix()}}
	if !j.completed.IsZero() {
		o = append(o, kv{"time_completed", j.completed.Unix()})
	}
	o = append(o, kv{"async_status", st}, kv{"async_percent_completion", pct},
		kv{"is_running", st != JobCompleted && st != JobFailed && st != JobSkipped},
		kv{"date_start", j.q.from.String()}, kv{"date_stop", j.q.to.String()})
	return s.ok(o, nil)
}

func (s *Server) jobResults(r *request, j *job) *response {
	s.mu.RLock()
	st, _ := j.state()
	rows := j.rows
	s.mu.RUnlock()
	if st != JobCompleted {
		return s.errorResp(NewAPIError(2601, 1815107), nil)
	}
	return s.insightsPage(r, len(rows), func(i int) jobj { return rows[i] })
}
