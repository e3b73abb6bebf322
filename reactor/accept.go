package reactor

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// tunnelLimit is how many tunnels fit in limit descriptors: two each in the steady state
// (a paused end keeps one duplicate in place of its conn), a few more for a moment while a
// conn is enrolled or a paused end resumed, and a reserve for listeners, the pollers, dials
// in flight and the rest of the process. 45 % leaves a tenth of the descriptors for those
// moments: at the common hard limit of 20,000 that is 8,971 tunnels, and a resume or dup
// that still meets EMFILE is retried at the next sweep rather than failing the tunnel.
func tunnelLimit(limit uint64) int64 {
	const reserve = 64
	if limit <= 2*reserve {
		return 16
	}
	return int64((limit - reserve) * 45 / 100)
}

// serve accepts on ln until it is closed and hands each conn to the least busy loop. It
// sheds load before the descriptor limit (close at once, so the client sees a refusal
// rather than a hang in the backlog) and, should accept still fail with EMFILE, frees a
// spare descriptor to accept-and-close the waiting conn, then backs off: ptreactor keeps
// serving once descriptors free up.
func (e *Engine) serve(ln net.Listener, mk func() *tunnel) {
	spare, _ := os.Open(os.DevNull)
	defer func() {
		if spare != nil {
			spare.Close()
		}
	}()
	var backoff time.Duration
	var lastWarn time.Time
	warn := func(msg string, args ...any) {
		if time.Since(lastWarn) > 10*time.Second {
			lastWarn = time.Now()
			e.log.Warn(msg, args...)
		}
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			e.stats.acceptErrors.Add(1)
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				e.stats.shed.Add(1)
				warn("out of file descriptors: shedding connections", "listener", ln.Addr().String(), "active", e.active.Load())
				if spare != nil {
					spare.Close()
					if c, err := ln.Accept(); err == nil {
						c.Close()
					}
					spare, _ = os.Open(os.DevNull)
				}
			}
			switch {
			case backoff == 0:
				backoff = 5 * time.Millisecond
			case backoff < time.Second:
				backoff *= 2
			}
			select {
			case <-time.After(backoff):
			case <-e.done:
				return
			}
			continue
		}
		backoff = 0
		if e.active.Load() >= e.maxTunnels {
			e.stats.shed.Add(1)
			warn("tunnel limit reached: shedding connections", "limit", e.maxTunnels)
			c.Close()
			continue
		}
		t := mk()
		e.active.Add(1)
		// EnrollContext duplicates the fd onto a loop and closes c; OnOpen runs on the loop.
		if _, err := e.cli.EnrollContext(c, t.inbound()); err != nil {
			e.log.Debug("cannot enroll accepted connection", "err", err)
			e.tunnelEnded()
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				e.stats.shed.Add(1)
				warn("out of file descriptors: shedding connections", "listener", ln.Addr().String(), "active", e.active.Load())
			}
		}
	}
}
