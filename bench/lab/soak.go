package lab

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/bench/procstat"
)

// soak runs churn, an idle population and some bulk together for the soak's duration,
// sampling both PTs every second, and says whether their memory or descriptors grew.
func (m *run) soak(ctx context.Context) error {
	z := m.lab.cfg.Size
	d := m.lab.cfg.soakTime()
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
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	var mu sync.Mutex
	errs := errorKinds{}
	var checked atomic.Int64
	var wg sync.WaitGroup
	var series [2][]procstat.Sample
	var sampleErr error
	start := time.Now()
	wg.Add(1)
	go func() { // the sampler
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			c, s, err := m.sample()
			if err != nil {
				sampleErr = err
				return
			}
			series[0], series[1] = append(series[0], c), append(series[1], s)
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
	churn := openLoop(sctx, m.dial, z.SoakRate, d, func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(tunnelTimeout))
		if err := bench.Xfer(c, cellSize, cellSize, m.lab.nextSeed()); err != nil {
			return err
		}
		checked.Add(2 * cellSize)
		return nil
	})
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
	m.percentiles("soak", "setup", "", 0, churn.hist)
	m.add("soak", "bytes_checked_mib", "MiB", "", 0, float64(checked.Load())/(1<<20))
	m.errors("soak", "", 0, errs)
	for i, side := range []string{"client", "server"} {
		rss, fds := growth(series[i])
		m.add("soak", "rss_growth_mib_"+side, "MiB", "", 0, rss)
		m.add("soak", "fds_growth_"+side, "count", "", 0, fds)
		first := series[i][min(len(series[i])/4, len(series[i])-1)]
		verdict := 0.0
		if rss > max(4, 0.2*mib(first.RSS)) || fds > max(16, 0.02*float64(first.FDs)) {
			verdict = 1
		}
		m.add("soak", "growing_"+side, "bool", "", 0, verdict)
		last := series[i][len(series[i])-1]
		m.add("soak", "peak_rss_mib_"+side, "MiB", "", 0, mib(last.PeakRSS))
		m.add("soak", "threads_"+side, "count", "", 0, float64(last.Threads))
	}
	if n := errs.total(); n > 0 {
		return fmt.Errorf("%d transfers failed: %v", n, errs)
	}
	return nil
}

// growth compares the median of the last quarter of the samples with that of the second
// quarter (the first is warm-up): RSS in MiB, descriptors.
func growth(s []procstat.Sample) (rssMiB, fds float64) {
	if len(s) < 4 {
		return 0, 0
	}
	q := len(s) / 4
	med := func(part []procstat.Sample, f func(procstat.Sample) float64) float64 {
		v := make([]float64, len(part))
		for i, x := range part {
			v[i] = f(x)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rss := func(x procstat.Sample) float64 { return mib(x.RSS) }
	fd := func(x procstat.Sample) float64 { return float64(x.FDs) }
	early, late := s[q:2*q], s[len(s)-q:]
	return med(late, rss) - med(early, rss), med(late, fd) - med(early, fd)
}
