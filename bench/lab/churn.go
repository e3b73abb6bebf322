package lab

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// churn measures tunnel set-up: open, handshake, one round trip, close; first as fast as
// it goes (closed loop), then at each fixed offered rate (open loops, variant "open N/s").
// The set-up CDF chart shows the first rate's.
func (m *run) churn(ctx context.Context) error {
	z := m.lab.cfg.Size
	variants := []string{"closed"}
	for _, r := range z.ChurnRates {
		variants = append(variants, openVariant(r))
	}
	for i, variant := range variants {
		c0, s0, err := m.sample()
		if err != nil {
			return err
		}
		g0, err := loadgenCPU()
		if err != nil {
			return err
		}
		var res loopResult
		if i == 0 {
			res = closedLoop(ctx, m.dial, z.ChurnWorkers, z.ChurnTime)
		} else {
			rate := z.ChurnRates[i-1]
			res = openLoop(ctx, m.dial, rate, z.ChurnTime, nil)
			m.add("churn", "offered_per_s", "1/s", variant, 0, rate)
			if i == 1 {
				m.lab.mergeSetupHist(m.c.Name, res.hist)
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c1, s1, err := m.sample()
		if err != nil {
			return err
		}
		g1, err := loadgenCPU()
		if err != nil {
			return err
		}
		m.add("churn", "setups_per_s", "1/s", variant, 0, float64(res.ok)/res.elapsed.Seconds())
		m.add("churn", "handshakes_ok", "count", variant, 0, float64(res.ok))
		m.percentiles("churn", "setup", variant, 0, res.hist)
		m.errors("churn", variant, 0, res.errs)
		if res.ok > 0 {
			m.add("churn", "cpu_ms_per_setup_client", "ms", variant, 0, float64((c1.CPU-c0.CPU).Microseconds())/1000/float64(res.ok))
			m.add("churn", "cpu_ms_per_setup_server", "ms", variant, 0, float64((s1.CPU-s0.CPU).Microseconds())/1000/float64(res.ok))
			m.add("churn", "cpu_ms_per_setup_loadgen", "ms", variant, 0, float64((g1-g0).Microseconds())/1000/float64(res.ok))
		}
	}
	return nil
}

// openVariant names the open loop at rate set-ups per second.
func openVariant(rate float64) string { return fmt.Sprintf("open %g/s", rate) }

// rateList is rates as the report's prose gives them: "200", "400 and 1500".
func rateList(rates []float64) string {
	s := make([]string, len(rates))
	for i, r := range rates {
		s[i] = fmt.Sprintf("%g", r)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

func (l *lab) mergeSetupHist(pair string, h *histogram) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.setupHist[pair] == nil {
		l.setupHist[pair] = newHistogram()
	}
	l.setupHist[pair].merge(h)
}

// loopResult is what a set-up loop saw.
type loopResult struct {
	ok      int
	elapsed time.Duration
	hist    *histogram
	errs    errorKinds
	excused int // failures a fault was expected to cause (openLoopJudged)
}

// closedLoop has workers set tunnels up back to back for d.
func closedLoop(ctx context.Context, dial dialer, workers int, d time.Duration) loopResult {
	res := loopResult{hist: newHistogram(), errs: errorKinds{}}
	var mu sync.Mutex
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				t0 := time.Now()
				c, err := setup(ctx, dial)
				lat := time.Since(t0)
				mu.Lock()
				if err == nil {
					res.ok++
					res.hist.record(lat)
				} else if ctx.Err() == nil {
					res.errs.add(err)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond) // a refusing peer must not make this spin
					continue
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// maxInFlight bounds an open loop's concurrent set-ups (and so its descriptors); a set-up
// due while that many are pending is counted as an "overload" error, not started.
const maxInFlight = 2000

// openLoop starts a set-up every 1/rate seconds for d, whatever the previous ones are
// doing, and times each from when it was due: a slow PT shows as latency, not as a lower
// rate. work, if set, runs on the tunnel before it is closed and is part of the latency.
// No set-up starts after d, even one that fell behind; the loop returns when the last one
// has ended (each is bounded by tunnelTimeout), so a caller that wants every failure
// counted passes a ctx that outlives d.
func openLoop(ctx context.Context, dial dialer, rate float64, d time.Duration, work func(net.Conn) error) loopResult {
	return openLoopJudged(ctx, dial, rate, d, work, nil)
}

// openLoopJudged is openLoop that shows every set-up's outcome to judge, when it ended:
// a failure that judge excuses (one a fault was meant to cause) is counted in res.excused
// rather than as an error.
func openLoopJudged(ctx context.Context, dial dialer, rate float64, d time.Duration, work func(net.Conn) error, judge func(due, ended time.Time, err error) (excused bool)) loopResult {
	res := loopResult{hist: newHistogram(), errs: errorKinds{}}
	var mu sync.Mutex
	var inFlight atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	n := int(rate * d.Seconds())
	gap := time.Duration(float64(time.Second) / rate)
	for i := range n {
		due := start.Add(time.Duration(i) * gap)
		if err := sleep(ctx, time.Until(due)); err != nil || !time.Now().Before(end) {
			break
		}
		if inFlight.Load() >= maxInFlight {
			mu.Lock()
			res.errs.addKind("overload", 1, fmt.Errorf("%d set-ups pending", maxInFlight))
			mu.Unlock()
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer inFlight.Add(-1)
			c, err := setup(ctx, dial)
			if err == nil {
				if work != nil {
					err = work(c)
				}
				c.Close()
			}
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && ctx.Err() != nil:
			case judge != nil && judge(due, now, err):
				res.excused++
			case err != nil:
				res.errs.add(err)
			default:
				res.ok++
				res.hist.record(now.Sub(due))
			}
		}()
	}
	wg.Wait()
	res.elapsed = max(time.Since(start), d)
	return res
}
