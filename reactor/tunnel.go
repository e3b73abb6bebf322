package reactor

import (
	"context"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/socks"
)

// endState is where one end of a tunnel stands with respect to its event loop.
type endState uint8

const (
	endIdle      endState = iota // not on a loop yet: being enrolled, or being dialed
	endOpen                      // on the loop, carrying bytes
	endPausing                   // its gnet conn is closing to take it off the loop; the fd is kept
	endPaused                    // off the loop, the kept fd in end.fd
	endResuming                  // the kept fd is being enrolled again
	endLingering                 // the other end is gone: flushing what is queued, discarding input
	endClosed
)

// phase is where the tunnel as a whole stands.
type phase uint8

const (
	phaseSocks     phase = iota // client: SOCKS negotiation with tor
	phaseHandshake              // transport handshake on the network end
	phaseDial                   // the outbound conn is being dialed
	phaseRelay                  // payload flows both ways
	phaseStall                  // server: failed handshake; read and discard until stallUntil
	phaseDone                   // killed: everything is being closed
)

// end is one of the two conns of a tunnel; it is what Conn.Context returns, so the handler
// finds the tunnel without a lookup.
type end struct {
	t     *tunnel
	c     gnet.Conn // nil unless open, lingering or pausing
	st    endState
	isTor bool
	live  bool // holds or will hold a descriptor: the tunnel lasts while an end is live
	fd    int  // the kept descriptor while paused

	queue []byte // bytes for this end while it cannot take them (paused, not yet open)
	carry []byte // bytes read from this end but not yet unwrapped, kept across a pause

	written    int64     // bytes handed to c.Write since the conn opened
	drained    int64     // written-OutboundBuffered at the last sweep that saw progress
	stuckSince time.Time // when drained last moved while bytes were waiting

	lingerUntil time.Time
	lingerAfter bool // linger as soon as the conn is back on the loop
	closeAfter  bool // close requested while this end's own callback was running
}

// tunnel is one proxied connection: tor's end, the network end and the transport wire
// between them. It is only touched on its event loop.
type tunnel struct {
	e  *Engine
	ls *loopState

	client    bool
	transport codec.Transport // client: builds the wire from the SOCKS arguments
	name      string          // server: transport name for the ExtORPort
	srv       codec.Server    // server: builds the wire per connection

	wire  codec.Wire
	paced codec.Paced // wire, when it shapes its output in time

	phase    phase
	tor, net end
	socks    socks.Server

	deadline   time.Time // zero: none
	stallUntil time.Time
	watched    bool
	busy       *end // the end whose callback is running
	ended      bool

	timer      *time.Timer // paced output
	timerArmed bool
	pumpRun    gnet.RunnableFunc
}

func newClientTunnel(e *Engine, t codec.Transport) *tunnel {
	tn := &tunnel{e: e, client: true, transport: t}
	tn.init()
	return tn
}

func newServerTunnel(e *Engine, name string, srv codec.Server) *tunnel {
	tn := &tunnel{e: e, name: name, srv: srv, phase: phaseHandshake}
	tn.init()
	return tn
}

func (t *tunnel) init() {
	t.tor = end{t: t, isTor: true, fd: -1}
	t.net = end{t: t, fd: -1}
	t.inbound().live = true
}

// inbound is the end that was accepted: tor's in client mode, the network's in server mode.
func (t *tunnel) inbound() *end {
	if t.client {
		return &t.tor
	}
	return &t.net
}

func (t *tunnel) other(x *end) *end {
	if x.isTor {
		return &t.net
	}
	return &t.tor
}

func (t *tunnel) watch() {
	if !t.watched {
		t.watched = true
		t.ls.watch[t] = struct{}{}
	}
}

// pending is how many bytes wait to be written to x.
func (t *tunnel) pending(x *end) int {
	n := len(x.queue)
	if x.c != nil && (x.st == endOpen || x.st == endLingering) {
		n += x.c.OutboundBuffered()
	}
	if !x.isTor && t.paced != nil {
		n += t.paced.Pending()
	}
	return n
}

// write hands p to x's conn. A failed write closes x synchronously (gnet calls OnClose from
// inside Write), so callers check x.st before writing again.
func (t *tunnel) write(x *end, p []byte) {
	if len(p) == 0 || x.st != endOpen {
		return
	}
	x.written += int64(len(p))
	_, _ = x.c.Write(p)
}

// deliver passes payload on to x: straight to its conn while relaying, else into its queue.
func (t *tunnel) deliver(x *end, p []byte) {
	if len(p) == 0 {
		return
	}
	switch {
	case x.st == endOpen && t.phase == phaseRelay:
		t.write(x, p)
	case x.st == endIdle || x.st == endOpen || x.st == endPausing || x.st == endPaused || x.st == endResuming:
		x.queue = append(x.queue, p...)
	}
}

// flushQueue writes what waited for x while it was away.
func (t *tunnel) flushQueue(x *end) {
	if len(x.queue) == 0 {
		return
	}
	t.write(x, x.queue)
	if cap(x.queue) > 2*t.e.lim.HighWater {
		x.queue = nil
	} else {
		x.queue = x.queue[:0]
	}
}

// ---- events, called by the handler on the tunnel's loop ----

// opened runs when a conn of the tunnel comes onto the loop: the accepted one, a dialed
// one, or a paused one coming back.
func (t *tunnel) opened(x *end, prev endState) {
	switch {
	case prev == endResuming:
		t.flushQueue(x)
		if !x.isTor && t.paced != nil {
			t.pump()
		}
		if x.lingerAfter || t.phase == phaseDone {
			t.lingerOrClose(x)
		}
	case x == t.inbound():
		t.e.log.Debug("accepted", "remote", x.c.RemoteAddr().String())
		if t.client {
			t.deadline = time.Now().Add(t.e.lim.SOCKSTimeout)
			t.watch()
			return
		}
		t.wire = t.srv.NewWire()
		t.paced, _ = t.wire.(codec.Paced)
		if t.wire.Ready() {
			t.startDialTor()
			return
		}
		if d := t.srv.HandshakeTimeout(); d > 0 {
			t.deadline = time.Now().Add(d)
			t.watch()
		}
	default: // the dialed end
		peer := t.other(x)
		if t.phase == phaseDone {
			t.closeEnd(x)
			return
		}
		if t.client {
			if peer.st != endOpen {
				t.kill() // tor gave up while the bridge was being dialed
				return
			}
			out, err := t.wire.Start(t.ls.wbuf[:0])
			t.ls.wbuf = out[:0]
			if err != nil {
				t.e.log.Debug("transport start failed", "err", err)
				t.failClient(socks.GeneralFailure)
				return
			}
			t.write(x, out)
			t.phase = phaseHandshake
			if t.wire.Ready() {
				t.clientReady()
				return
			}
			t.deadline = time.Now().Add(t.e.lim.ClientHandshakeTimeout)
			t.watch()
			return
		}
		// Server: tor's end is up; what the client sent meanwhile goes first.
		t.phase = phaseRelay
		t.flushQueue(x)
		if peer.st == endClosed || peer.st == endLingering {
			t.lingerOrClose(x)
		}
	}
}

// clientReady answers tor's CONNECT once the transport handshake is done (pt-spec: not
// before), then lets payload flow.
func (t *tunnel) clientReady() {
	t.deadline = time.Time{}
	t.phase = phaseRelay
	t.write(&t.tor, socks.AppendReply(t.ls.wbuf[:0], socks.Succeeded))
	t.flushQueue(&t.tor)
}

// failClient refuses tor's CONNECT with code and ends the tunnel.
func (t *tunnel) failClient(code byte) {
	if t.tor.st == endOpen {
		t.write(&t.tor, socks.AppendReply(t.ls.wbuf[:0], code))
	}
	t.kill()
}

// traffic handles bytes read from x.
func (t *tunnel) traffic(x *end, c gnet.Conn) gnet.Action {
	if x.st != endOpen || t.phase == phaseStall || t.phase == phaseDone {
		_, _ = c.Discard(-1)
		return gnet.None
	}
	// Traffic on x is a chance to resume its paused peer sooner than the sweep would.
	if peer := t.other(x); peer.st == endPaused && t.pending(x) < t.e.lim.LowWater {
		t.resume(peer, false)
	}
	if x.isTor {
		switch t.phase {
		case phaseSocks:
			t.socksTraffic(c)
			return gnet.None
		case phaseRelay:
		default:
			// tor sent payload before its CONNECT was answered; it never does.
			_, _ = c.Discard(-1)
			t.failClient(socks.GeneralFailure)
			return gnet.None
		}
		in, _ := c.Peek(-1)
		if t.paced != nil {
			err := t.paced.Queue(in)
			_, _ = c.Discard(-1)
			if err != nil {
				t.e.log.Debug("transport wrap failed", "err", err)
				t.kill()
				return gnet.None
			}
			t.pump()
		} else {
			out, err := t.wire.Wrap(t.ls.wbuf[:0], in)
			_, _ = c.Discard(-1)
			if err != nil {
				t.e.log.Debug("transport wrap failed", "err", err)
				t.kill()
				return gnet.None
			}
			t.deliver(&t.net, out)
			t.ls.wbuf = out[:0]
		}
		return t.afterForward(x, &t.net)
	}

	// The network end: unwrap what arrived; a partial frame stays in gnet's buffer. After a
	// pause, the partial frame that was pending then is in x.carry (gnet dropped it with
	// the old conn): it is joined with the first bytes read after the resume, and once
	// Unwrap has used all of it the zero-copy path takes over again.
	out := &t.ls.out
	for x.st == endOpen {
		in, _ := c.Peek(-1)
		carried := len(x.carry)
		if carried > 0 {
			x.carry = append(x.carry, in...)
			in = x.carry
		}
		if len(in) == 0 {
			break
		}
		out.Payload, out.Reply = out.Payload[:0], out.Reply[:0]
		n, err := t.wire.Unwrap(in, out)
		switch {
		case carried > 0 && n >= carried:
			x.carry = x.carry[:0]
			if n > carried { // gnet's Discard(0) would discard everything
				_, _ = c.Discard(n - carried)
			}
		case carried > 0:
			x.carry = x.carry[:copy(x.carry, x.carry[n:])]
			_, _ = c.Discard(-1)
		case n > 0:
			_, _ = c.Discard(n)
		}
		t.write(x, out.Reply)
		t.deliver(&t.tor, out.Payload)
		if err != nil {
			return t.wireFailed(x, err)
		}
		if n == 0 {
			break
		}
	}
	if t.phase == phaseHandshake && t.wire.Ready() {
		if t.client {
			t.clientReady()
		} else {
			t.deadline = time.Time{}
			t.startDialTor()
		}
	}
	if t.phase == phaseDone {
		return gnet.None
	}
	return t.afterForward(x, &t.tor)
}

// socksTraffic advances the SOCKS negotiation with tor.
func (t *tunnel) socksTraffic(c gnet.Conn) {
	in, _ := c.Peek(-1)
	n, out, err := t.socks.Step(in, t.ls.wbuf[:0])
	if n > 0 { // gnet's Discard(0) discards everything
		_, _ = c.Discard(n)
	}
	t.write(&t.tor, out)
	t.ls.wbuf = out[:0]
	if err != nil {
		t.e.log.Debug("SOCKS negotiation failed", "err", err)
		t.kill()
		return
	}
	if !t.socks.Done() {
		return
	}
	if c.InboundBuffered() > 0 {
		t.e.log.Debug("SOCKS negotiation failed: bytes left after the request")
		t.failClient(socks.GeneralFailure)
		return
	}
	req := t.socks.Request()
	wire, err := t.transport.Client(req.Args)
	if err != nil {
		t.e.log.Debug("bad transport arguments", "err", err)
		t.failClient(socks.ReplyCode(err))
		return
	}
	t.wire = wire
	t.paced, _ = wire.(codec.Paced)
	t.phase = phaseDial
	t.deadline = time.Time{}
	t.net.live = true
	ls, e, x, addr := t.ls, t.e, &t.net, req.Addr
	go func() {
		ctx, cancel := context.WithTimeout(e.ctx, e.lim.DialBridgeTimeout)
		conn, err := e.dialer.dialBridge(ctx, addr)
		cancel()
		enrollDialed(ls, x, conn, err)
	}()
}

// startDialTor connects a server tunnel to tor once the client's handshake is done.
func (t *tunnel) startDialTor() {
	t.phase = phaseDial
	t.tor.live = true
	ls, e, x, name, from := t.ls, t.e, &t.tor, t.name, t.net.c.RemoteAddr()
	go func() {
		ctx, cancel := context.WithTimeout(e.ctx, e.lim.DialTorTimeout)
		conn, err := e.dialer.dialTor(ctx, from, name)
		cancel()
		enrollDialed(ls, x, conn, err)
	}()
}

// enrollDialed puts a dialed conn on the loop of its tunnel, or reports the failure there.
// It runs on the dialing goroutine.
func enrollDialed(ls *loopState, x *end, conn net.Conn, err error) {
	if err == nil {
		var ch <-chan gnet.RegisteredResult
		ch, err = ls.el.Enroll(gnet.NewContext(context.Background(), x), conn)
		if err != nil {
			conn.Close()
		} else if r := <-ch; r.Err != nil {
			err = r.Err
		}
	}
	if err != nil {
		ls.e.stats.dialFailures.Add(1)
		_ = ls.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			x.t.dialFailed(x, err)
			return nil
		}))
	}
}

func (t *tunnel) dialFailed(x *end, err error) {
	x.live = false
	x.st = endClosed
	if t.client {
		t.e.log.Debug("bridge connection failed", "err", err)
		t.failClient(socks.ReplyCode(err))
	} else {
		t.e.log.Debug("tor connection failed", "err", err)
		t.kill()
	}
	t.maybeEnd()
}

// wireFailed handles a transport error on the network end: a server wire that must not
// reveal its failure stalls, anything else closes (after tor's end has flushed).
func (t *tunnel) wireFailed(x *end, err error) gnet.Action {
	t.e.log.Debug("transport error", "err", err)
	if !t.client && t.phase == phaseHandshake {
		if s, ok := t.wire.(codec.Stalling); ok {
			t.stall(s)
			return gnet.None
		}
	}
	if t.client && t.phase == phaseHandshake {
		t.failClient(socks.GeneralFailure)
		return gnet.None
	}
	return gnet.Close
}

func (t *tunnel) stall(s codec.Stalling) {
	t.phase = phaseStall
	t.deadline = time.Time{}
	t.stallUntil = s.StallUntil()
	t.watch()
}

// afterForward pauses src when what waits for dst has passed the high-water mark. src can
// only leave the loop with an empty outbound buffer; otherwise the sweep's caps apply.
func (t *tunnel) afterForward(src, dst *end) gnet.Action {
	if src.st != endOpen || t.pending(dst) < t.e.lim.HighWater {
		return gnet.None
	}
	t.watch()
	if src.c.OutboundBuffered() != 0 || len(src.queue) != 0 {
		return gnet.None
	}
	fd, err := src.c.Dup()
	if err != nil {
		return gnet.None // out of descriptors: the caps still bound the tunnel
	}
	src.fd = fd
	// gnet drops the conn's unread bytes with it: keep the partial frame for the resume.
	if rest, _ := src.c.Peek(-1); len(rest) > 0 {
		src.carry = append(src.carry, rest...)
	}
	src.st = endPausing
	t.e.stats.pauses.Add(1)
	t.ls.hurry()
	return gnet.Close // gnet closes its conn; OnClose sees endPausing and keeps the fd
}

// resume puts a paused end back on the loop. Its kept fd becomes a net.Conn (which takes
// its own duplicate) and is enrolled; OnOpen then flushes the queue.
func (t *tunnel) resume(x *end, linger bool) {
	nc, err := connFromKept(x.fd)
	if err != nil {
		return // out of descriptors: try again at the next sweep
	}
	closeFD(x.fd)
	x.fd = -1
	x.st = endResuming
	x.lingerAfter = x.lingerAfter || linger
	ch, err := t.ls.el.Enroll(gnet.NewContext(context.Background(), x), nc)
	if err != nil {
		nc.Close()
		x.st = endClosed
		x.live = false
		t.kill()
		return
	}
	ls := t.ls
	go func() {
		if r := <-ch; r.Err != nil {
			_ = ls.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				if x.st == endResuming {
					x.st = endClosed
					x.live = false
					x.t.kill()
				}
				return nil
			}))
		}
	}()
}

// pump writes a paced wire's output, chunk by chunk, waiting on the tunnel's timer between.
func (t *tunnel) pump() {
	for t.net.st == endOpen && !t.timerArmed {
		out, wait, ok := t.paced.Next(t.ls.wbuf[:0])
		t.write(&t.net, out)
		t.ls.wbuf = out[:0]
		if !ok {
			return
		}
		if wait > 0 {
			t.timerArmed = true
			if t.timer == nil {
				ls := t.ls
				t.pumpRun = func(context.Context) error {
					t.timerArmed = false
					if !t.ended && t.phase != phaseDone {
						t.pump()
					}
					return nil
				}
				t.timer = time.AfterFunc(wait, func() { _ = ls.el.Execute(context.Background(), t.pumpRun) })
			} else {
				t.timer.Reset(wait)
			}
			return
		}
	}
}

// ---- closing ----

// closed runs when x's conn has left the loop for good.
func (t *tunnel) closed(x *end) {
	x.c = nil
	x.st = endClosed
	x.live = false
	if t.phase != phaseDone && !t.e.stopping() {
		peer := t.other(x)
		switch peer.st {
		case endOpen:
			if t.client && !x.isTor && t.phase != phaseRelay {
				t.failClient(socks.GeneralFailure) // the bridge hung up mid-handshake
				break
			}
			t.lingerOrClose(peer)
		case endPaused:
			if len(peer.queue) == 0 {
				t.dropKept(peer)
			} else {
				t.resume(peer, true)
			}
		case endResuming:
			peer.lingerAfter = true
		}
	}
	t.maybeEnd()
}

// lingerOrClose closes x once what is queued for it has been written.
func (t *tunnel) lingerOrClose(x *end) {
	if x.st != endOpen && x.st != endLingering {
		return
	}
	if t.pending(x) == 0 {
		t.closeEnd(x)
		return
	}
	x.st = endLingering
	x.lingerUntil = time.Now().Add(t.e.lim.LingerMax)
	t.watch()
	t.ls.hurry()
}

// closeEnd closes x's conn now, or as soon as its own callback returns.
func (t *tunnel) closeEnd(x *end) {
	if x.c == nil || x.st == endClosed || x.st == endPausing {
		return
	}
	if t.busy == x {
		x.closeAfter = true
		return
	}
	_ = t.ls.el.Close(x.c)
}

func (t *tunnel) dropKept(x *end) {
	if x.fd >= 0 {
		closeFD(x.fd)
		x.fd = -1
	}
	x.st = endClosed
	x.live = false
}

// kill ends the tunnel at once, dropping whatever is queued.
func (t *tunnel) kill() {
	if t.phase == phaseDone {
		return
	}
	t.phase = phaseDone
	for _, x := range [...]*end{&t.tor, &t.net} {
		switch x.st {
		case endOpen, endLingering:
			t.closeEnd(x)
		case endPaused:
			t.dropKept(x)
		}
		// endIdle/endResuming: OnOpen sees phaseDone and closes; dialFailed ends it.
	}
	t.maybeEnd()
}

func (t *tunnel) maybeEnd() {
	if t.ended || t.tor.live || t.net.live {
		return
	}
	t.ended = true
	if t.timer != nil {
		t.timer.Stop()
	}
	if t.watched {
		delete(t.ls.watch, t)
		t.watched = false
	}
	t.e.tunnelEnded()
}

// ---- the sweep ----

// check runs from the loop's sweep for a watched tunnel: deadlines, resuming paused ends,
// finishing lingering ones, and the caps on sinks that do not drain. It reports whether the
// tunnel still needs watching and whether it needs the fast sweep.
func (t *tunnel) check(now time.Time) (keep, fast bool) {
	if t.ended {
		return false, false
	}
	if !t.deadline.IsZero() && now.After(t.deadline) {
		t.deadline = time.Time{}
		t.deadlineHit()
	}
	if t.phase == phaseStall && now.After(t.stallUntil) {
		t.kill()
	}
	for _, x := range [...]*end{&t.tor, &t.net} {
		switch x.st {
		case endPaused:
			peer := t.other(x)
			if (peer.st == endOpen && t.pending(peer) < t.e.lim.LowWater) || len(x.queue) >= t.e.lim.HighWater {
				t.resume(x, false)
			}
		case endLingering:
			if t.pending(x) == 0 || now.After(x.lingerUntil) {
				t.closeEnd(x)
			}
		case endOpen:
			t.checkDrain(x, now)
		}
	}
	if t.ended {
		return false, false
	}
	for _, x := range [...]*end{&t.tor, &t.net} {
		switch x.st {
		case endPaused, endPausing, endResuming, endLingering:
			keep, fast = true, true
		case endOpen:
			if t.pending(x) > 0 {
				keep = true
			}
		}
	}
	if !t.deadline.IsZero() || t.phase == phaseStall {
		keep = true
	}
	return keep, fast
}

// checkDrain closes the tunnel when bytes for x pass HardCap, or when x has taken none of
// them for NeverDrain: a peer that stops reading must not hold memory for ever.
func (t *tunnel) checkDrain(x *end, now time.Time) {
	p := t.pending(x)
	if p > t.e.lim.HardCap {
		t.e.log.Warn("closing a tunnel whose peer does not read", "queued", p, "cap", t.e.lim.HardCap)
		t.kill()
		return
	}
	ob := x.c.OutboundBuffered()
	if ob == 0 {
		x.stuckSince = time.Time{}
		return
	}
	drained := x.written - int64(ob)
	if drained != x.drained || x.stuckSince.IsZero() {
		x.drained = drained
		x.stuckSince = now
		return
	}
	if now.Sub(x.stuckSince) > t.e.lim.NeverDrain {
		t.e.log.Warn("closing a tunnel whose peer stopped reading", "queued", p, "for", t.e.lim.NeverDrain)
		t.kill()
	}
}

func (t *tunnel) deadlineHit() {
	switch t.phase {
	case phaseSocks:
		t.e.log.Debug("SOCKS negotiation timed out")
		t.kill()
	case phaseHandshake:
		if t.client {
			t.e.log.Debug("transport handshake timed out")
			t.failClient(socks.TTLExpired)
			return
		}
		if s, ok := t.wire.(codec.Stalling); ok {
			t.stall(s)
			return
		}
		t.kill()
	}
}
