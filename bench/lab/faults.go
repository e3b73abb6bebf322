package lab

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// A fault disturbs the server PT for a while during the soak: set-ups that overlap its
// window (plus faultGrace) may fail and are counted apart; every other failure is a bug.
type fault struct {
	name string
	at   time.Duration // from the soak's start
	gap  time.Duration // how long it lasts
	// begin starts the fault; the function it returns ends it.
	begin func() (end func() error, err error)

	mu       sync.Mutex
	from, to time.Time // when it really began and ended; zero until it has
	err      error     // what went wrong starting or ending it
	detail   string    // what it did, for the report
	failed   int       // set-ups that failed in its window
	held     int       // set-ups due in its window that worked only once it was over
	okAfter  int       // set-ups due after its window (and grace) that worked
}

// faultGrace is how long after a fault ends a set-up may still fail because of it: the
// server's accept loop backs off up to a second after EMFILE, and tor's reconnect after an
// ExtORPort restart is immediate, so a second covers both.
const faultGrace = time.Second

// faults plans the soak's disturbances of the server PT. They come in cycles of period p
// (a quarter of the soak, at most five minutes), the first after one period of warm-up, as
// long as set-ups have time to work again before the end: three cycles in the 3-minute
// soak, eleven in the hour. In each, the Extended ORPort stand-in is restarted (when the
// servers are fed through one) at a fifth of the period, and at three fifths the server's
// descriptor limit is lowered to just above what it uses and raised again. Each fault lasts
// a fraction of p: the restart's gap 100 ms to 2 s, the lowered limit 100 ms to 5 s.
func (m *run) faults(d time.Duration) []*fault {
	p := min(d/4, 5*time.Minute)
	restartGap := min(max(p/10, 100*time.Millisecond), 2*time.Second)
	limitGap := min(max(p/8, 100*time.Millisecond), 5*time.Second)
	pid := m.p.Server.Pid()
	var out []*fault
	for k := time.Duration(1); ; k++ {
		restartAt, limitAt := k*p+p/5, k*p+3*p/5
		if limitAt+limitGap+2*faultGrace >= d { // set-ups must have time to work again after it
			break
		}
		if ext := m.lab.ext; ext != nil {
			out = append(out, &fault{name: "extorport_restart", at: restartAt, gap: restartGap,
				begin: func() (func() error, error) {
					ext.Unlisten()
					return ext.Relisten, nil
				}})
		}
		f := &fault{name: "fd_limit", at: limitAt, gap: limitGap}
		f.begin = func() (func() error, error) {
			used, limit, restore, err := lowerFileLimit(pid, fdLimitMargin)
			if err != nil {
				return nil, err
			}
			f.mu.Lock()
			f.detail = fmt.Sprintf("soft RLIMIT_NOFILE %d with %d open", limit, used)
			f.mu.Unlock()
			return restore, nil
		}
		out = append(out, f)
	}
	return out
}

// fdLimitMargin is how many descriptors above those it has open the server PT may open
// while its limit is lowered: one, so that it can accept a client but not connect it on to
// the ORPort, and must shed every set-up of the window while its open tunnels go on.
const fdLimitMargin = 1

// runFaults runs each fault at its time after start, until ctx ends (a fault under way is
// always ended).
func runFaults(ctx context.Context, start time.Time, faults []*fault) {
	for _, f := range faults {
		if sleep(ctx, time.Until(start.Add(f.at))) != nil {
			return
		}
		f.mu.Lock()
		f.from = time.Now()
		f.mu.Unlock()
		end, err := f.begin()
		if err == nil {
			time.Sleep(f.gap) // not cut by ctx: the fault must be undone in any case
			err = end()
		}
		f.mu.Lock()
		f.to, f.err = time.Now(), err
		f.mu.Unlock()
	}
}

// heldUpMargin: a set-up due this long before a fault ended, and ended only after it, was
// held up by the fault (an undisturbed one takes a few tens of milliseconds).
const heldUpMargin = 200 * time.Millisecond

// judgeSetup is the soak's churn judge: a failed set-up that overlapped a fault's window
// (plus faultGrace) is excused and counted as that fault's, the latest one if their graces
// overlap; a set-up that worked counts for every fault whose window it came after, and as
// held up by one it was due early in and ended only after.
func judgeSetup(faults []*fault, due, ended time.Time, err error) (excused bool) {
	var blamed *fault
	for _, f := range faults {
		f.mu.Lock()
		from, to := f.from, f.to
		switch {
		case from.IsZero(): // not begun
		case err == nil:
			if !to.IsZero() && due.After(to.Add(faultGrace)) {
				f.okAfter++
			}
			if !to.IsZero() && !due.Before(from) && due.Before(to.Add(-heldUpMargin)) && ended.After(to) {
				f.held++
			}
		case (to.IsZero() || due.Before(to.Add(faultGrace))) && ended.After(from):
			blamed = f
		}
		f.mu.Unlock()
	}
	if blamed == nil {
		return false
	}
	blamed.mu.Lock()
	blamed.failed++
	blamed.mu.Unlock()
	return true
}

// inFaultWindow reports whether t fell in one of the soak's faults (or its grace).
func (l *lab) inFaultWindow(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.faultWindows {
		if !t.Before(w[0]) && !t.After(w[1]) {
			return true
		}
	}
	return false
}

// judgeFaults checks each kind of fault: every one ran and was undone, the server was alive
// after it, and set-ups worked again after each; when its window was long enough to expect
// three set-ups or more (at rate), some failed in it or waited for its end, so the fault did
// bite (ptreactor retries an ORPort dial that meets EMFILE, so under a lowered limit its
// set-ups wait rather than fail). It records each kind's counts as figures, and the
// windows, which excuse the Extended ORPort sessions that failed in them.
func (m *run) judgeFaults(checks *soakChecks, faults []*fault, rate float64) {
	type kind struct {
		n, ran, failed, held, okAfter, recovered int
		gap                                      time.Duration
		firstErr                                 error
		detail                                   string
	}
	var names []string
	kinds := map[string]*kind{}
	for _, f := range faults {
		k := kinds[f.name]
		if k == nil {
			k = &kind{gap: f.gap}
			kinds[f.name] = k
			names = append(names, f.name)
		}
		f.mu.Lock()
		k.n++
		if !f.from.IsZero() && !f.to.IsZero() && f.err == nil {
			k.ran++
		}
		if f.err != nil && k.firstErr == nil {
			k.firstErr = f.err
		}
		if f.detail != "" {
			k.detail = f.detail
		}
		if !f.from.IsZero() {
			end := f.to
			if end.IsZero() {
				end = time.Now()
			}
			m.lab.mu.Lock()
			m.lab.faultWindows = append(m.lab.faultWindows, [2]time.Time{f.from, end.Add(faultGrace)})
			m.lab.mu.Unlock()
		}
		k.failed += f.failed
		k.held += f.held
		k.okAfter += f.okAfter
		if f.okAfter > 0 {
			k.recovered++
		}
		f.mu.Unlock()
	}
	alive := !m.p.Server.Proc.Exited()
	for _, name := range names {
		k := kinds[name]
		m.add("soak", name+"_count", "count", "", 0, float64(k.n))
		m.add("soak", name+"_setups_failed", "count", "", 0, float64(k.failed))
		m.add("soak", name+"_setups_held_up", "count", "", 0, float64(k.held))
		bit := k.failed+k.held > 0 || rate*k.gap.Seconds() < 3
		checks.add(name, k.ran == k.n && k.recovered == k.n && alive && bit,
			"%d of %d faults of %v ran (first error %v), set-ups worked again after %d of them, server alive %v; in the windows %d set-ups failed and %d were held up until the end, at %g/s; last: %s",
			k.ran, k.n, k.gap, k.firstErr, k.recovered, alive, k.failed, k.held, rate, k.detail)
	}
}
