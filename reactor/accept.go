package reactor

import (
	"errors"
	"net"
	"os"
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
// sheds load before the descriptor limit and, should accept still fail with EMFILE, frees a
// spare descriptor to accept-and-close the waiting conn, then backs off: ptreactor keeps
// serving once descriptors free up.
//
// Past the tunnel limit a conn is made by hold when there is one (a server whose transport
// hides a failed handshake from probers, codec.Holding): that tunnel reads and discards,
// never dials tor, and closes when a failed handshake would, so a prober cannot tell an
// overloaded bridge from another by a conn closed at once. Held conns need a descriptor
// each for that long, so past maxHeld of them (or when the enroll finds no descriptor)
// conns are closed at once after all: a refusal a prober can see beats a process that runs
// out of descriptors for the tunnels it carries. Without hold (tor's SOCKS listener, a
// transport such as plain that does not hide its failures) conns are closed at once: tor
// is no prober, and a refusal tells it at once to try again later, where a held conn
// would keep its circuit waiting.
func (e *Engine) serve(ln net.Listener, mk, hold func() *tunnel) {
	spare, _ := os.Open(os.DevNull)
	defer func() {
		if spare != nil {
			spare.Close()
		}
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			e.stats.acceptErrors.Add(1)
			if outOfDescriptors(err) {
				e.stats.shed.Add(1)
				e.failures.note(failDescriptors, err)
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
		newTunnel := mk
		if e.active.Load()-e.held.Load() >= e.maxTunnels {
			if hold == nil || e.held.Load() >= e.maxHeld {
				e.stats.shed.Add(1)
				e.failures.note(failTunnelLimit, nil)
				c.Close()
				continue
			}
			e.failures.note(failOverloadHeld, nil)
			e.stats.held.Add(1)
			newTunnel = hold
		}
		t := newTunnel()
		e.active.Add(1)
		if t.overload {
			e.held.Add(1)
		}
		// EnrollContext duplicates the fd onto a loop and closes c; OnOpen runs on the loop.
		if _, err := e.cli.EnrollContext(c, t.inbound()); err != nil {
			e.log.Debug("cannot enroll accepted connection", "err", err)
			e.tunnelEnded(t)
			if outOfDescriptors(err) {
				e.stats.shed.Add(1)
				e.failures.note(failDescriptors, err)
			}
		}
	}
}
