package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/ptreactor/ptreactor/codec"
)

// loopState is the scratch space every tunnel of one event loop shares; the loop runs one
// callback at a time, so one set suffices.
type loopState struct {
	wbuf []byte       // the handshake request, wrapped payload
	out  codec.Output // Unwrap's output
}

// phase is where a tunnel stands.
type phase uint8

const (
	phaseHandshake phase = iota // the obfs4 request is sent, the reply awaited
	phaseLink                   // with --tor-link: the link handshake runs through the tunnel
	phaseHeld                   // set up: the tunnel is held open, idle
	phaseDone                   // failed or closed; counted
)

// tunnel is one obfs4 connection to the bridge. It is the gnet conn's context and is only
// touched on the conn's event loop, except where noted.
type tunnel struct {
	g     *Generator
	ls    *loopState
	c     gnet.Conn
	wire  codec.Wire
	pacer codec.Pacer // the wire's, when the bridge line asks for iat-mode 1 or 2
	start time.Time   // when the TCP connect began
	phase phase
	// answered: the bridge has sent at least one byte. It tells a bridge that never spoke
	// (silent, closed-unanswered) from one that stopped mid-reply.
	answered bool
	timer    *time.Timer // the handshake deadline
	link     *linkConn   // the tor link handshake's conn, while phaseLink

	pumpTimer *time.Timer // paced output
	pumpArmed bool
	// flushing: the link handshake is over but our NETINFO still waits in the paced queue;
	// the link (of latency linked) counts once the queue has been written.
	flushing bool
	linked   time.Duration
}

// handler is the gnet event handler; every conn's context is its *tunnel.
type handler struct {
	gnet.BuiltinEventEngine
	g *Generator
}

func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	t, ok := c.Context().(*tunnel)
	if !ok {
		return nil, gnet.Close
	}
	t.c = c
	t.ls = h.g.loopFor(c.EventLoop())
	out, err := t.wire.Start(t.ls.wbuf[:0])
	t.ls.wbuf = out[:0]
	if err != nil {
		t.fail(Local, err)
		return nil, gnet.Close
	}
	el := c.EventLoop()
	t.timer = time.AfterFunc(h.g.cfg.Timeout, func() {
		_ = el.Execute(context.Background(), gnet.RunnableFunc(t.deadline))
	})
	_, _ = c.Write(out) // copies what the socket does not take at once
	return nil, gnet.None
}

func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	t, ok := c.Context().(*tunnel)
	if !ok || t.phase == phaseDone {
		_, _ = c.Discard(-1)
		return gnet.None
	}
	t.answered = true
	out := &t.ls.out
	for t.phase != phaseDone {
		in, _ := c.Peek(-1)
		if len(in) == 0 {
			break
		}
		out.Payload, out.Reply = out.Payload[:0], out.Reply[:0]
		n, err := t.wire.Unwrap(in, out)
		if n > 0 { // gnet's Discard(0) would discard everything
			_, _ = c.Discard(n)
		}
		if t.phase == phaseHandshake && t.wire.Ready() {
			t.handshakeDone()
		}
		if t.link != nil && len(out.Payload) > 0 {
			t.link.feed(out.Payload)
		}
		if err != nil {
			t.fail(BadReply, err)
			return gnet.Close
		}
		if n == 0 {
			break
		}
	}
	return gnet.None
}

func (h *handler) OnClose(c gnet.Conn, err error) gnet.Action {
	t, ok := c.Context().(*tunnel)
	if !ok {
		return gnet.None
	}
	t.c = nil
	if h.g.stop.Load() {
		t.end() // the run is over and closes everything: nothing to count
		return gnet.None
	}
	t.fail(closeKind(err, t.answered || t.phase != phaseHandshake), err)
	return gnet.None
}

// deadline runs on the loop when the handshake timeout passes.
func (t *tunnel) deadline(context.Context) error {
	if t.phase != phaseHandshake {
		return nil
	}
	if t.answered {
		t.fail(HandshakeTimeout, fmt.Errorf("the obfs4 reply was not complete after %v", t.g.cfg.Timeout))
	} else {
		t.fail(Silent, fmt.Errorf("not one byte of reply in %v", t.g.cfg.Timeout))
	}
	if t.c != nil {
		_ = t.c.EventLoop().Close(t.c)
	}
	return nil
}

// handshakeDone counts a tunnel whose obfs4 handshake completed and moves it on: to the
// link handshake with --tor-link, else to being held (its set-up slot is freed).
func (t *tunnel) handshakeDone() {
	t.stopTimer()
	t.g.gained(time.Since(t.start))
	if t.g.cfg.TorLink {
		t.phase = phaseLink
		t.startLink()
		return
	}
	t.phase = phaseHeld
	t.g.release(false)
}

// linkDone runs on the loop when the link handshake's goroutine has finished.
func (t *tunnel) linkDone(d time.Duration, k Kind, err error) {
	if t.phase != phaseLink {
		return // the tunnel failed first and was counted then
	}
	t.link = nil
	if err != nil {
		t.fail(k, err)
		if t.c != nil {
			_ = t.c.EventLoop().Close(t.c)
		}
		return
	}
	if t.pacer != nil && t.pacer.Pending() > 0 {
		t.flushing, t.linked = true, d // pump finishes the link once NETINFO is out
		return
	}
	t.linkSent(d)
}

// linkSent counts a link handshake whose last cell has been written.
func (t *tunnel) linkSent(d time.Duration) {
	t.flushing = false
	t.g.linked(d)
	t.phase = phaseHeld
	t.g.release(false)
}

// fail counts the tunnel lost to k, once, and frees what it holds. The caller closes the
// conn (or is gnet's OnClose).
func (t *tunnel) fail(k Kind, err error) {
	if t.phase == phaseDone {
		return
	}
	prev := t.phase
	t.end()
	if err == nil {
		err = errors.New(k.String())
	}
	t.g.failure(k, err)
	switch prev {
	case phaseHandshake:
		t.g.release(true)
	case phaseLink:
		t.g.held.Add(-1)
		t.g.release(true)
	case phaseHeld:
		t.g.held.Add(-1)
		t.g.wake()
	}
}

// end stops the tunnel's timers and its link handshake.
func (t *tunnel) end() {
	t.phase = phaseDone
	t.stopTimer()
	if t.pumpTimer != nil {
		t.pumpTimer.Stop()
	}
	if t.link != nil {
		t.link.abort(errTunnelGone)
		t.link = nil
	}
}

func (t *tunnel) stopTimer() {
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
}

// send frames payload for the bridge: wrapped at once, or queued and paced out by pump when
// the wire shapes its output in time.
func (t *tunnel) send(p []byte) {
	if t.phase == phaseDone || t.c == nil {
		return
	}
	if t.pacer != nil {
		if err := t.pacer.Queue(p); err != nil {
			t.fail(Local, err)
			_ = t.c.EventLoop().Close(t.c)
			return
		}
		t.pump()
		return
	}
	out, err := t.wire.Wrap(t.ls.wbuf[:0], p)
	t.ls.wbuf = out[:0]
	if err != nil {
		t.fail(Local, err)
		_ = t.c.EventLoop().Close(t.c)
		return
	}
	_, _ = t.c.Write(out)
}

// pump writes a paced wire's chunks, waiting on the tunnel's timer between them.
func (t *tunnel) pump() {
	for t.c != nil && t.phase != phaseDone && !t.pumpArmed {
		out, wait, ok := t.pacer.Next(t.ls.wbuf[:0])
		if len(out) > 0 {
			_, _ = t.c.Write(out)
		}
		t.ls.wbuf = out[:0]
		if !ok {
			if t.phase == phaseLink && t.flushing {
				t.linkSent(t.linked)
			}
			return
		}
		if wait > 0 {
			t.pumpArmed = true
			if t.pumpTimer == nil {
				el := t.c.EventLoop()
				run := gnet.RunnableFunc(func(context.Context) error {
					t.pumpArmed = false
					t.pump()
					return nil
				})
				t.pumpTimer = time.AfterFunc(wait, func() { _ = el.Execute(context.Background(), run) })
			} else {
				t.pumpTimer.Reset(wait)
			}
			return
		}
	}
}
