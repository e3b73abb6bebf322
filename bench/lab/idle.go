package lab

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/ptreactor/ptreactor/bench"
)

// idle holds Size.Idle tunnels and reports what they cost each PT in memory and descriptors.
func (m *run) idle(ctx context.Context) error {
	z := m.lab.cfg.Size
	// Warm both processes up, so the baseline holds their steady runtime overhead and not
	// the first buffers they ever allocate.
	warm, err := openTunnels(ctx, m.dial, 8)
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	for _, c := range warm {
		c.SetDeadline(time.Now().Add(tunnelTimeout))
		if err := bench.Xfer(c, 256<<10, 256<<10, m.lab.nextSeed()); err != nil {
			closeAll(warm)
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	closeAll(warm)
	if err := sleep(ctx, 300*time.Millisecond); err != nil {
		return err
	}
	c0, s0, err := m.sample()
	if err != nil {
		return err
	}
	var held []net.Conn
	defer func() { closeAll(held) }()
	steps := max(1, z.IdleSteps)
	for i := range steps {
		want := z.Idle*(i+1)/steps - len(held)
		conns, err := openTunnels(ctx, m.dial, want)
		if err != nil {
			return fmt.Errorf("with %d tunnels open, opening %d more: %w", len(held), want, err)
		}
		held = append(held, conns...)
		c, s, err := m.sample()
		if err != nil {
			return err
		}
		m.add("idle", "rss_mib_client", "MiB", "", len(held), mib(c.RSS))
		m.add("idle", "rss_mib_server", "MiB", "", len(held), mib(s.RSS))
	}
	n := len(held)
	m.add("idle", "handshakes_ok", "count", "", n, float64(n))
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	c1, s1, err := m.sample()
	if err != nil {
		return err
	}
	m.add("idle", "rss_kib_per_tunnel_client", "KiB", "", n, float64(c1.RSS-c0.RSS)/1024/float64(n))
	m.add("idle", "rss_kib_per_tunnel_server", "KiB", "", n, float64(s1.RSS-s0.RSS)/1024/float64(n))
	m.add("idle", "peak_rss_mib_client", "MiB", "", n, mib(c1.PeakRSS))
	m.add("idle", "peak_rss_mib_server", "MiB", "", n, mib(s1.PeakRSS))
	m.add("idle", "fds_client", "count", "", n, float64(c1.FDs))
	m.add("idle", "fds_server", "count", "", n, float64(s1.FDs))
	m.add("idle", "threads_client", "count", "", n, float64(c1.Threads))
	m.add("idle", "threads_server", "count", "", n, float64(s1.Threads))
	// Held means still answering after the wait, each proven again.
	ok, errs := proveAll(ctx, held)
	m.add("idle", "tunnels_held", "count", "", n, float64(ok))
	m.errors("idle", "", n, errs)
	if ok != n {
		return fmt.Errorf("%d of %d idle tunnels stopped answering", n-ok, n)
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// sleep waits d, or less if ctx ends first; it returns nil only if ctx is still live, so
// that no work starts after a deadline. (A timer of d <= 0 is ready at once, and a select
// with both ready picks either: the end of a soak used to start set-ups after its deadline
// that way.)
func sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
