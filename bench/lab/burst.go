package lab

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/bench/procstat"
)

// burstSample is how often both PTs' RSS is read during a burst and after it.
const burstSample = 250 * time.Millisecond

// burstBack is how close to its level before the burst a PT's RSS must come back.
const burstBack = 4 << 20

// burstXfer is what each genuine tunnel of a burst moves each way, checked.
const burstXfer = 16 << 10

// burst opens Size.BurstConns connections at once, half genuine tunnels through the client
// PT that move a little checked data, half random garbage straight at the server's port
// (what an active prober sends), holds them for Size.BurstHold, closes them all, and watches
// both PTs' RSS for Size.BurstWatch: does the memory the burst took go back to the system?
func (m *run) burst(ctx context.Context) error {
	z := m.lab.cfg.Size
	// Settle: the baseline holds the runtime's steady overhead and the first buffers a
	// PT ever allocates, not the burst's.
	warm, err := openTunnels(ctx, m.dial, 8)
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	_, errs := proveAll(ctx, warm)
	closeAll(warm)
	if errs.total() > 0 {
		return fmt.Errorf("warm-up: %v", errs)
	}
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	c0, s0, err := m.sample()
	if err != nil {
		return err
	}

	// The sampler reads both PTs from the start of the burst to the end of the watch.
	var series [2][]procstat.Sample
	var sampleErr error
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(burstSample)
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
	defer func() { stopSampling(); <-sampled }()

	genuine := z.BurstConns / 2
	conns, garbage, errs := m.burstOpen(ctx, genuine, z.BurstConns-genuine)
	if err := sleep(ctx, z.BurstHold); err != nil {
		closeAll(conns)
		closeAll(garbage)
		return err
	}
	closeAll(conns)
	closeAll(garbage)
	closed := time.Now()
	if err := sleep(ctx, z.BurstWatch); err != nil {
		return err
	}
	stopSampling()
	<-sampled
	if sampleErr != nil {
		return sampleErr
	}

	m.lab.mu.Lock()
	if _, ok := m.lab.burstSeries[m.c.Name]; !ok {
		m.lab.burstSeries[m.c.Name], m.lab.burstClose[m.c.Name] = series, closed
	}
	m.lab.mu.Unlock()

	n := z.BurstConns
	ok := 0
	for _, c := range conns {
		if c != nil {
			ok++
		}
	}
	sent := 0
	for _, c := range garbage {
		if c != nil {
			sent++
		}
	}
	m.add("burst", "handshakes_ok", "count", "", n, float64(ok))
	m.add("burst", "garbage_sent", "count", "", n, float64(sent))
	m.errors("burst", "", n, errs)
	for i, side := range []string{"client", "server"} {
		before := [2]procstat.Sample{c0, s0}[i]
		f := burstFigures(before, series[i], closed, z.BurstWatch)
		m.add("burst", "rss_mib_"+side, "MiB", "before", n, mib(before.RSS))
		m.add("burst", "rss_mib_"+side, "MiB", "peak", n, mib(f.peak))
		for _, at := range f.after {
			m.add("burst", "rss_mib_"+side, "MiB", at.variant, n, mib(at.rss))
			m.add("burst", "rss_above_before_mib_"+side, "MiB", at.variant, n, mib(at.rss-before.RSS))
		}
		m.add("burst", "back_s_"+side, "s", "", n, f.back.Seconds())
		m.add("burst", "back_within_watch_"+side, "bool", "", n, boolFigure(f.backInTime))
	}
	if ok != genuine || sent != n-genuine {
		return fmt.Errorf("%d of %d genuine tunnels and %d of %d garbage connections made it: %v", ok, genuine, sent, n-genuine, errs)
	}
	return nil
}

// burstOpen opens genuine tunnels (each moving burstXfer each way, checked) and garbage
// connections (each sending probeGarbage random bytes) all at once, and returns them open:
// a slot is nil where one failed. The garbage is written but the server's answer is not
// waited for: a server stalls a failed handshake, and the burst ends it from this side.
func (m *run) burstOpen(ctx context.Context, genuine, junk int) (conns, garbage []net.Conn, errs errorKinds) {
	errs = errorKinds{}
	conns, garbage = make([]net.Conn, genuine), make([]net.Conn, junk)
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		errs.add(err)
		mu.Unlock()
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range genuine {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := setup(ctx, m.dial)
			if err != nil {
				fail(err)
				return
			}
			c.SetDeadline(time.Now().Add(tunnelTimeout))
			if err := bench.Xfer(c, burstXfer, burstXfer, m.lab.nextSeed()); err != nil {
				c.Close()
				fail(err)
				return
			}
			c.SetDeadline(time.Time{})
			conns[i] = c
		}()
	}
	for i := range junk {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, probeGarbage)
			rand.Read(payload)
			<-start
			c, err := net.DialTimeout("tcp", m.p.Bridge, tunnelTimeout)
			if err != nil {
				fail(err)
				return
			}
			c.SetDeadline(time.Now().Add(tunnelTimeout))
			if _, err := c.Write(payload); err != nil {
				c.Close()
				fail(err)
				return
			}
			garbage[i] = c
		}()
	}
	close(start)
	wg.Wait()
	return conns, garbage, errs
}

// burstResult is one PT's RSS after a burst.
type burstResult struct {
	peak  int64
	after []rssAt
	// back is how long after the close RSS came within burstBack of before and stayed
	// there to the end of the watch; the watch's length when it never did.
	back       time.Duration
	backInTime bool
}

// rssAt is RSS some time after a burst's close; variant says when ("+5s").
type rssAt struct {
	variant string
	rss     int64
}

// burstFigures reads series (samples from the burst's start) against before: the peak,
// RSS at half the watch and at its end after the close, and when it was back.
func burstFigures(before procstat.Sample, series []procstat.Sample, closed time.Time, watch time.Duration) burstResult {
	var r burstResult
	r.peak = before.RSS
	for _, s := range series {
		r.peak = max(r.peak, s.RSS)
	}
	for _, at := range []time.Duration{watch / 2, watch} {
		// The last sample at or before the mark (the sampler may run a little late).
		var rss int64 = -1
		for _, s := range series {
			if !s.At.After(closed.Add(at)) {
				rss = s.RSS
			}
		}
		if rss >= 0 {
			r.after = append(r.after, rssAt{fmt.Sprintf("+%gs", at.Seconds()), rss})
		}
	}
	r.back, r.backInTime = watch, false
	for i := len(series) - 1; i >= 0; i-- {
		s := series[i]
		if s.RSS > before.RSS+burstBack {
			break
		}
		if s.At.Before(closed) {
			r.back, r.backInTime = 0, true
			break
		}
		r.back, r.backInTime = s.At.Sub(closed), true
	}
	return r
}

func boolFigure(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
