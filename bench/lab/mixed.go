package lab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/bench/report"
)

// cellSize is one Tor cell on the wire (link protocol 4 and later): what a mostly idle
// tunnel sends now and then.
const cellSize = 514

// mixedResult is one load level of the mixed scenario.
type mixedResult struct {
	hist    *histogram
	bulk    int64 // bulk bytes moved and checked
	elapsed time.Duration
	errs    errorKinds
}

// mixedBaseline runs every load level of the mixed scenario with no PT in between, so that
// the contestants' figures of the same run can say what latency the PTs add.
func (l *lab) mixedBaseline(ctx context.Context, r int) error {
	for _, k := range l.cfg.Size.MixedLoads {
		res, err := l.mixedLoad(ctx, l.directDial, k)
		if err != nil {
			return fmt.Errorf("%d tunnels: %w", k, err)
		}
		l.mu.Lock()
		if l.baseline == nil {
			l.baseline = map[[2]int]*histogram{}
		}
		l.baseline[[2]int{r, k}] = res.hist
		l.mu.Unlock()
		l.recordMixed(l.samples, report.Baseline, k, res)
	}
	return nil
}

func (l *lab) recordMixed(s *sampleSet, pair string, k int, res mixedResult) {
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9}} {
		s.add("mixed", pair, "rtt_"+q.name+"_ms", "ms", "", k, res.hist.ms(q.q))
	}
	s.add("mixed", pair, "echoes", "count", "", k, float64(res.hist.count()))
	s.add("mixed", pair, "mb_per_s", "MB/s", "bulk", k, float64(res.bulk)/res.elapsed.Seconds()/1e6)
	s.add("mixed", pair, "errors", "count", "", k, float64(res.errs.total()))
}

// mixed runs every load level through the pair and measures its CPU and memory meanwhile.
func (m *run) mixed(ctx context.Context) error {
	for _, k := range m.lab.cfg.Size.MixedLoads {
		c0, s0, err := m.sample()
		if err != nil {
			return err
		}
		res, err := m.lab.mixedLoad(ctx, m.dial, k)
		if err != nil {
			return fmt.Errorf("%d tunnels: %w", k, err)
		}
		c1, s1, err := m.sample()
		if err != nil {
			return err
		}
		m.lab.recordMixed(m.lab.samples, m.c.Name, k, res)
		m.lab.mu.Lock()
		base := m.lab.baseline[[2]int{m.r, k}]
		m.lab.mu.Unlock()
		if base != nil {
			m.add("mixed", "rtt_added_p50_ms", "ms", "", k, res.hist.ms(50)-base.ms(50))
			m.add("mixed", "rtt_added_p99_ms", "ms", "", k, res.hist.ms(99)-base.ms(99))
		}
		wall := res.elapsed.Seconds()
		m.add("mixed", "cpu_pct_client", "%", "", k, 100*(c1.CPU-c0.CPU).Seconds()/wall)
		m.add("mixed", "cpu_pct_server", "%", "", k, 100*(s1.CPU-s0.CPU).Seconds()/wall)
		m.add("mixed", "rss_mib_client", "MiB", "", k, mib(c1.RSS))
		m.add("mixed", "rss_mib_server", "MiB", "", k, mib(s1.RSS))
		if n := res.errs.total(); n > 0 {
			return fmt.Errorf("%d tunnels: %d transfers failed: %v", k, n, res.errs)
		}
	}
	return nil
}

// mixedLoad opens k echo tunnels and MixedBulk bulk tunnels, runs them together for
// MixedTime and closes them: each echo tunnel sends one cell about every MixedInterval
// (uniformly jittered by ±50 %, first one at a random offset, so they do not march in step)
// and times the checked 514-byte answer; each bulk tunnel downloads checked chunks flat out.
func (l *lab) mixedLoad(ctx context.Context, dial dialer, k int) (mixedResult, error) {
	z := l.cfg.Size
	echo, err := openTunnels(ctx, dial, k)
	if err != nil {
		return mixedResult{}, fmt.Errorf("opening echo tunnels: %w", err)
	}
	defer closeAll(echo)
	bulk, err := openTunnels(ctx, dial, z.MixedBulk)
	if err != nil {
		return mixedResult{}, fmt.Errorf("opening bulk tunnels: %w", err)
	}
	defer closeAll(bulk)
	defer interruptible(ctx, echo)()
	defer interruptible(ctx, bulk)()
	rctx, cancel := context.WithTimeout(ctx, z.MixedTime)
	defer cancel()
	res := mixedResult{hist: newHistogram(), errs: errorKinds{}}
	var mu sync.Mutex
	var moved atomic.Int64
	var wg sync.WaitGroup
	fail := func(err error) {
		mu.Lock()
		res.errs.add(err)
		mu.Unlock()
	}
	start := time.Now()
	for _, c := range bulk {
		wg.Add(1)
		go func() {
			defer wg.Done()
			const chunk = 1 << 20
			for rctx.Err() == nil {
				c.SetDeadline(time.Now().Add(tunnelTimeout))
				if err := bench.Xfer(c, 0, chunk, l.nextSeed()); err != nil {
					fail(err)
					return
				}
				moved.Add(chunk)
			}
		}()
	}
	for _, c := range echo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait := time.Duration(rand.Int64N(int64(z.MixedInterval)))
			for sleep(rctx, wait) == nil {
				c.SetDeadline(time.Now().Add(tunnelTimeout))
				t0 := time.Now()
				err := bench.Xfer(c, cellSize, cellSize, l.nextSeed())
				lat := time.Since(t0)
				if err != nil {
					fail(err)
					return
				}
				mu.Lock()
				res.hist.record(lat)
				mu.Unlock()
				wait = jitter(z.MixedInterval)
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.bulk = moved.Load()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// jitter is d scaled by a uniform factor in [0.5, 1.5).
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}
