package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/bench/procstat"
	"github.com/ptreactor/ptreactor/internal/harness"
)

// soak runs churn, an idle population and some bulk together for the soak's duration while
// the server PT is faulted now and then (faults.go), sampling both PTs every second; then it
// closes everything and counts the descriptors left at rest, and ends with a SIGINT drain of
// the server under load. Every check it makes is a figure check_<name> (1 passed, 0 failed)
// beside the figures it judged; a failed check fails the scenario.
func (m *run) soak(ctx context.Context) error {
	z := m.lab.cfg.Size
	d := m.lab.cfg.soakTime()
	pids := [2]int{m.p.Client.Pid(), m.p.Server.Pid()}
	var checks soakChecks

	rest0, err := fdsAtRest(ctx, pids, [2]int{})
	if err != nil {
		return err
	}
	idle, err := openTunnels(ctx, m.dial, z.SoakIdle)
	if err != nil {
		return fmt.Errorf("opening the idle population: %w", err)
	}
	defer closeAll(idle)
	bulk, err := openTunnels(ctx, m.dial, z.SoakBulk)
	if err != nil {
		return fmt.Errorf("opening bulk tunnels: %w", err)
	}
	defer closeAll(bulk)
	defer interruptible(ctx, bulk)()

	start := time.Now()
	sctx, cancel := context.WithDeadline(ctx, start.Add(d))
	defer cancel()
	var mu sync.Mutex
	errs := errorKinds{}
	var checked atomic.Int64
	var wg sync.WaitGroup
	var series [2][]procstat.Sample
	var tasks [2][]float64 // goroutines from a metrics page, else threads
	var sampleErr error
	wg.Add(1)
	go func() { // the sampler: every second, or often enough for 60 samples in a short soak
		defer wg.Done()
		t := time.NewTicker(min(max(d/60, 100*time.Millisecond), time.Second))
		defer t.Stop()
		for {
			c, s, err := m.sample()
			if err == nil {
				var g [2]float64
				if g, err = m.tasks(ctx, c, s); err == nil {
					series[0], series[1] = append(series[0], c), append(series[1], s)
					tasks[0], tasks[1] = append(tasks[0], g[0]), append(tasks[1], g[1])
				}
			}
			if err != nil {
				sampleErr = err
				return
			}
			select {
			case <-t.C:
			case <-sctx.Done():
				return
			}
		}
	}()
	for _, c := range bulk {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sctx.Err() == nil {
				c.SetDeadline(time.Now().Add(tunnelTimeout))
				up, down := z.SoakChunk/4, z.SoakChunk
				if err := bench.Xfer(c, up, down, m.lab.nextSeed()); err != nil {
					mu.Lock()
					errs.add(err)
					mu.Unlock()
					return
				}
				checked.Add(up + down)
			}
		}()
	}
	wg.Add(1)
	go func() { // the idle population, re-proven every few seconds
		defer wg.Done()
		for sleep(sctx, 3*time.Second) == nil {
			_, e := proveAll(ctx, idle)
			mu.Lock()
			errs.merge(e)
			mu.Unlock()
		}
	}()
	faults := m.faults(d)
	wg.Add(1)
	go func() {
		defer wg.Done()
		runFaults(sctx, start, faults)
	}()
	// The churn runs on ctx, not sctx: it stops starting set-ups at d and lets those under
	// way finish, so that none is cut short by the end and every failure counts.
	churn := openLoopJudged(ctx, m.dial, z.SoakRate, d, func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(tunnelTimeout))
		if err := bench.Xfer(c, cellSize, cellSize, m.lab.nextSeed()); err != nil {
			return err
		}
		checked.Add(2 * cellSize)
		return nil
	}, func(due, ended time.Time, err error) bool { return judgeSetup(faults, due, ended, err) })
	cancel()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if sampleErr != nil {
		return sampleErr
	}
	errs.merge(churn.errs)
	held, e := proveAll(ctx, idle)
	errs.merge(e)
	m.lab.mu.Lock()
	m.lab.soakSeries[m.c.Name] = series
	m.lab.soakStart[m.c.Name] = start
	m.lab.mu.Unlock()

	m.add("soak", "handshakes_ok", "count", "", 0, float64(churn.ok+z.SoakIdle+z.SoakBulk))
	m.add("soak", "tunnels_held", "count", "", z.SoakIdle, float64(held))
	m.add("soak", "setups_per_s", "1/s", "", 0, float64(churn.ok)/churn.elapsed.Seconds())
	m.add("soak", "setups_failed_by_faults", "count", "", 0, float64(churn.excused))
	m.percentiles("soak", "setup", "", 0, churn.hist)
	m.add("soak", "bytes_checked_mib", "MiB", "", 0, float64(checked.Load())/(1<<20))
	m.errors("soak", "", 0, errs)
	checks.add("no_errors", errs.total() == 0, "%d transfers failed outside the fault windows: %v", errs.total(), errs)
	checks.add("idle_held", held == z.SoakIdle, "%d of %d idle tunnels held", held, z.SoakIdle)
	m.judgeFaults(&checks, faults, z.SoakRate)
	for i, side := range []string{"client", "server"} {
		th := []flatness{
			{"rss_mib", func(s int) float64 { return mib(series[i][s].RSS) }, 8, 0.25},
			{"fds", func(s int) float64 { return float64(series[i][s].FDs) }, 8, 0.01},
			{m.tasksName(), func(s int) float64 { return tasks[i][s] }, 8, 0.10},
		}
		for _, f := range th {
			second, last, allowed, ok := f.judge(len(series[i]))
			m.add("soak", f.metric+"_second_third_"+side, f.unit(), "", 0, second)
			m.add("soak", f.metric+"_last_third_"+side, f.unit(), "", 0, last)
			checks.add(f.metric+"_flat_"+side, ok,
				"%s %s: last third's median %.4g, second third's %.4g (allowed growth %.3g; %d samples)",
				side, f.metric, last, second, allowed, len(series[i]))
		}
		last := series[i][len(series[i])-1]
		m.add("soak", "peak_rss_mib_"+side, "MiB", "", 0, mib(last.PeakRSS))
		m.add("soak", "threads_"+side, "count", "", 0, float64(last.Threads))
	}

	// At rest: every tunnel closed, each PT back to the descriptors it had before the soak.
	closeAll(idle)
	closeAll(bulk)
	rest1, err := fdsAtRest(ctx, pids, rest0)
	if err != nil {
		return err
	}
	for i, side := range []string{"client", "server"} {
		m.add("soak", "fds_at_rest_before_"+side, "count", "", 0, float64(rest0[i]))
		m.add("soak", "fds_leaked_"+side, "count", "", 0, float64(rest1[i]-rest0[i]))
		checks.add("no_fd_leaked_"+side, rest1[i] <= rest0[i], "%s descriptors at rest: %d before the soak, %d after", side, rest0[i], rest1[i])
	}

	if err := m.drain(ctx, &checks); err != nil {
		return err
	}
	for _, c := range checks {
		v := 0.0
		if c.pass {
			v = 1
		}
		m.add("soak", "check_"+c.name, "bool", "", 0, v)
	}
	return checks.err()
}

// soakCheck is one pass/fail judgement of the soak, with the figures it was made on.
type soakCheck struct {
	name   string
	pass   bool
	detail string
}

type soakChecks []soakCheck

func (cs *soakChecks) add(name string, pass bool, format string, args ...any) {
	*cs = append(*cs, soakCheck{name, pass, fmt.Sprintf(format, args...)})
}

// err lists the failed checks, nil if none failed.
func (cs soakChecks) err() error {
	var bad []string
	for _, c := range cs {
		if !c.pass {
			bad = append(bad, c.name+": "+c.detail)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d soak checks failed: %s", len(bad), len(cs), strings.Join(bad, "; "))
}

// flatness is how a sampled quantity is judged flat: the median of the soak's last third of
// samples may exceed that of the second third (the first is warm-up) by at most
// max(abs, rel × the second third's). The descriptor bound, 8 and 1 %, is what one
// descriptor leaked per set-up breaks within seconds at any soak rate (a third of the
// 3-minute soak sees 3000 set-ups), while the in-flight set-ups (a few at a time) and a
// fault window's dip move a median by less. Goroutines (threads) get 8 and 10 %. Memory
// gets 8 MiB and 25 %: a Go process's RSS climbs in steps to the heap's peaks (each burst
// of set-ups held up by a fault leaves one) and gives them back slowly; a 3-minute soak of
// a ptreactor pair here went from 22.6 to 28.9 MiB (server) that way, in steps, not a line,
// with its descriptors and threads flat. A leak of 16 KiB per set-up (47 MiB a minute at
// 50/s) fails it; a slower one is for the hour-long soak to show.
type flatness struct {
	metric string
	at     func(sample int) float64
	abs    float64
	rel    float64
}

// judge returns the medians of the second and last thirds of n samples, the growth
// allowed, and whether the growth stayed within it; with fewer than 6 samples nothing can be
// judged and ok is false.
func (f flatness) judge(n int) (second, last, allowed float64, ok bool) {
	if n < 6 {
		return 0, 0, 0, false
	}
	med := func(from, to int) float64 {
		v := make([]float64, 0, to-from)
		for i := from; i < to; i++ {
			v = append(v, f.at(i))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	second, last = med(n/3, 2*n/3), med(2*n/3, n)
	allowed = max(f.abs, f.rel*second)
	return second, last, allowed, last-second <= allowed
}

func (f flatness) unit() string {
	if f.metric == "rss_mib" {
		return "MiB"
	}
	return "count"
}

// tasks is what the soak samples for each side's concurrency: go_goroutines from the
// side's metrics socket when the contestant serves one, else the threads in c and s.
func (m *run) tasks(ctx context.Context, c, s procstat.Sample) ([2]float64, error) {
	g := [2]float64{float64(c.Threads), float64(s.Threads)}
	for i, sock := range m.metrics {
		if sock == "" {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		samples, err := harness.Scrape(rctx, "unix", sock)
		cancel()
		v, ok := samples["go_goroutines"]
		if err == nil && !ok {
			err = errors.New("no go_goroutines")
		}
		if err != nil {
			return g, fmt.Errorf("goroutines of the %s PT: %w", [2]string{"client", "server"}[i], err)
		}
		g[i] = v
	}
	return g, nil
}

func (m *run) tasksName() string {
	if m.c.Metrics {
		return "goroutines"
	}
	return "threads"
}

// fdsAtRest waits, up to restTimeout, until each of pids holds no more descriptors than
// want (zero: until two readings 200 ms apart agree) and returns the last counts. A PT
// closes a tunnel's sockets a moment after the generator closes its end.
func fdsAtRest(ctx context.Context, pids [2]int, want [2]int) ([2]int, error) {
	const restTimeout = 10 * time.Second
	var prev, n [2]int
	deadline := time.Now().Add(restTimeout)
	for i := 0; ; i++ {
		for j, pid := range pids {
			var err error
			if n[j], err = procstat.FDs(pid); err != nil {
				return n, err
			}
		}
		settled := i > 0 && n == prev
		if want != [2]int{} {
			settled = n[0] <= want[0] && n[1] <= want[1]
		}
		if settled || time.Now().After(deadline) {
			return n, nil
		}
		prev = n
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return n, err
		}
	}
}

// drainTimeout is how long the server PT may take to exit once its last tunnel has closed
// after a SIGINT (lifecycle: the drain ends when the last tunnel does).
const drainTimeout = 10 * time.Second

// drain is the soak's end: bulk and idle tunnels open and moving, SIGINT to the server PT.
// The open tunnels must finish with every byte checked, a new tunnel must be refused, and
// the server must exit by itself, cleanly, once they are closed.
func (m *run) drain(ctx context.Context, checks *soakChecks) error {
	z := m.lab.cfg.Size
	nIdle := min(z.SoakIdle, 100)
	idle, err := openTunnels(ctx, m.dial, nIdle)
	if err != nil {
		return fmt.Errorf("drain: opening idle tunnels: %w", err)
	}
	defer closeAll(idle)
	bulk, err := openTunnels(ctx, m.dial, max(1, z.SoakBulk))
	if err != nil {
		return fmt.Errorf("drain: opening bulk tunnels: %w", err)
	}
	defer closeAll(bulk)
	defer interruptible(ctx, bulk)()

	// Each bulk tunnel moves four chunks; the signal comes once each has moved its first (or
	// failed).
	var wg sync.WaitGroup
	bulkErrs := make([]error, len(bulk))
	started := make(chan struct{}, len(bulk))
	for i, c := range bulk {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			defer once.Do(func() { started <- struct{}{} })
			for range 4 {
				c.SetDeadline(time.Now().Add(tunnelTimeout))
				if err := bench.Xfer(c, z.SoakChunk/4, z.SoakChunk, m.lab.nextSeed()); err != nil {
					bulkErrs[i] = err
					return
				}
				once.Do(func() { started <- struct{}{} })
			}
		}()
	}
	for range bulk {
		<-started
	}
	sigAt := time.Now()
	if err := m.p.Server.Signal(syscall.SIGINT); err != nil {
		return fmt.Errorf("drain: SIGINT: %w", err)
	}
	// The server closes its listeners at once; a tunnel asked for a moment later is refused.
	if err := sleep(ctx, 500*time.Millisecond); err != nil {
		return err
	}
	accepted := 0
	const tries = 3
	for range tries {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if c, err := setup(sctx, m.dial); err == nil {
			accepted++
			c.Close()
		}
		cancel()
	}
	provedIdle, idleErrs := proveAll(ctx, idle)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	bulkOK := 0
	var firstBulk error
	for _, err := range bulkErrs {
		if err == nil {
			bulkOK++
		} else if firstBulk == nil {
			firstBulk = err
		}
	}
	exitedEarly := m.p.Server.Proc.Exited()
	closedAt := time.Now()
	closeAll(idle)
	closeAll(bulk)
	exited := false
	select {
	case <-m.p.Server.Done():
		exited = true
	case <-time.After(drainTimeout):
	case <-ctx.Done():
		return ctx.Err()
	}
	took := time.Since(closedAt)
	m.add("soak", "drain_tunnels_finished", "count", "", 0, float64(provedIdle+bulkOK))
	m.add("soak", "drain_setups_accepted", "count", "", 0, float64(accepted))
	m.add("soak", "drain_exit_after_close_s", "s", "", 0, took.Seconds())
	m.add("soak", "drain_s", "s", "", 0, time.Since(sigAt).Seconds())
	checks.add("drain_tunnels_finished", provedIdle == nIdle && bulkOK == len(bulk) && !exitedEarly,
		"after SIGINT %d of %d idle tunnels answered (%v) and %d of %d bulk tunnels finished (first error: %v); exited before they closed: %v",
		provedIdle, nIdle, idleErrs, bulkOK, len(bulk), firstBulk, exitedEarly)
	checks.add("drain_refuses_new", accepted == 0, "%d of %d tunnels asked for after SIGINT were set up", accepted, tries)
	code := -1
	if exited {
		code = m.p.Server.ExitCode()
	}
	checks.add("drain_exits_clean", exited && code == 0,
		"server exited %v (code %d) %.2f s after its last tunnel closed (allowed %v)", exited, code, took.Seconds(), drainTimeout)
	return nil
}
