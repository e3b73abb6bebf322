package reactor

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/pool/goroutine"

	"github.com/ptreactor/ptreactor/codec"
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
	numEndStates // not a state: the count
)

var endStateNames = [numEndStates]string{
	endIdle:      "idle",
	endOpen:      "open",
	endPausing:   "pausing",
	endPaused:    "paused",
	endResuming:  "resuming",
	endLingering: "lingering",
	endClosed:    "closed",
}

func (s endState) String() string { return enumName(endStateNames[:], "endState", s) }

// phase is where the tunnel as a whole stands.
type phase uint8

const (
	phaseSocks     phase = iota // client: SOCKS negotiation with tor
	phaseHandshake              // transport handshake on the network end
	phaseDial                   // the outbound conn is being dialed
	phaseRelay                  // payload flows both ways
	phaseStall                  // server: failed handshake; read and discard until stallUntil
	phaseDone                   // killed: everything is being closed
	numPhases                   // not a phase: the count
)

var phaseNames = [numPhases]string{
	phaseSocks:     "socks",
	phaseHandshake: "handshake",
	phaseDial:      "dial",
	phaseRelay:     "relay",
	phaseStall:     "stall",
	phaseDone:      "done",
}

func (p phase) String() string { return enumName(phaseNames[:], "phase", p) }

func enumName[E ~uint8](names []string, typ string, v E) string {
	if int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(int(v)) + ")"
}

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
	e      *Engine
	ls     *loopState
	role   role             // the side this tunnel is on (role_client.go, role_server.go)
	counts *transportCounts // its transport's counters (stats.go)

	wire  codec.Wire
	pacer codec.Pacer // the wire's, when it shapes its output in time

	phase    phase
	tor, net end
	in       *end // the accepted end: tor's on the client side, the network's on the server

	deadline   time.Time // zero: none
	stallUntil time.Time
	watched    bool
	busy       *end // the end whose callback is running (gnetquirks.go)
	ended      bool
	overload   bool // a server conn held past the tunnel limit (accept.go), counted in e.held

	timer      *time.Timer // paced output
	timerArmed bool
	pumpRun    gnet.RunnableFunc
}

// role is what differs between the two sides of a tunnel. Its methods are the events on
// which the client (tor's SOCKS conn accepted, the bridge dialed) and the server (a transport
// client accepted, tor dialed) act differently; everything else about a tunnel (moving
// bytes, pausing, lingering, the sweep) is shared and knows no side.
//
// It is an interface rather than a struct of funcs because each side has state of its own
// (the client its transport and the SOCKS negotiation, the server its codec.Server): the
// role struct is allocated in one piece with its tunnel (newClientTunnel, newServerTunnel),
// so the role costs a pointer and no allocation, where funcs would need closures over that
// state; and the compiler checks that each side handles every event.
type role interface {
	// inboundOpened runs when the accepted conn comes onto the loop.
	inboundOpened(t *tunnel)
	// torBeforeRelay handles bytes from tor before payload flows.
	torBeforeRelay(t *tunnel, c gnet.Conn)
	// netPreamble reads what precedes the transport's bytes on the network end during the
	// handshake (a server behind a balancer: its PROXY header). It reports whether the
	// rest of c's input is the wire's.
	netPreamble(t *tunnel, c gnet.Conn) bool
	// dialedOpened runs when the dialed conn x comes onto the loop, the tunnel not killed.
	dialedOpened(t *tunnel, x *end)
	// handshakeReady runs once the wire's handshake has completed.
	handshakeReady(t *tunnel)
	// handshakeFailed handles a wire error during the handshake; the action is for the
	// network end's callback.
	handshakeFailed(t *tunnel) gnet.Action
	// deadlineHit runs when t.deadline passes (SOCKS, handshake).
	deadlineHit(t *tunnel)
	// netClosedBeforeRelay runs when the network end closes, tor's end open, before payload
	// flows.
	netClosedBeforeRelay(t *tunnel)
	// dialFailed runs when the outbound conn could not be had; its end is already closed.
	dialFailed(t *tunnel, err error)
}

// init sets up a tunnel whose role r was allocated with it; in is the accepted end, p
// the first phase and counts its transport's counters.
func (t *tunnel) init(e *Engine, r role, in *end, p phase, counts *transportCounts) {
	t.e, t.role, t.phase, t.counts = e, r, p, counts
	t.tor = end{t: t, isTor: true, fd: -1}
	t.net = end{t: t, fd: -1}
	t.in = in
	in.live = true
}

// inbound is the end that was accepted: tor's in client mode, the network's in server mode.
func (t *tunnel) inbound() *end { return t.in }

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
	if !x.isTor && t.pacer != nil {
		n += t.pacer.Pending()
	}
	return n
}

// write hands p to x's conn. A failed write closes x synchronously (gnetquirks.go), so
// callers check x.st before writing again.
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
		t.resumed(x)
	case x == t.in:
		if t.e.log.Enabled(context.Background(), slog.LevelDebug) { // RemoteAddr().String() allocates
			t.e.log.Debug("accepted", "remote", x.c.RemoteAddr().String())
		}
		t.counts.opened.Add(1)
		t.role.inboundOpened(t)
	case t.phase == phaseDone:
		t.closeEnd(x) // killed while x was being dialed
	default:
		t.role.dialedOpened(t, x)
	}
}

// traffic handles bytes read from x: what both directions check first, then x's direction.
func (t *tunnel) traffic(x *end, c gnet.Conn) gnet.Action {
	if x.st != endOpen || t.phase == phaseStall || t.phase == phaseDone {
		discardAll(c)
		return gnet.None
	}
	t.resumePeerEarly(x)
	if x.isTor {
		return t.fromTor(c)
	}
	return t.fromNet(c)
}

// fromTor handles tor's bytes: the role's until payload flows (the SOCKS negotiation), then
// payload for the network, wrapped at once or queued on the wire's pacer.
func (t *tunnel) fromTor(c gnet.Conn) gnet.Action {
	if t.phase != phaseRelay {
		t.role.torBeforeRelay(t, c)
		return gnet.None
	}
	in, _ := c.Peek(-1)
	t.ls.fromTor.add(len(in))
	if t.pacer != nil {
		err := t.pacer.Queue(in)
		discardAll(c)
		if err != nil {
			return t.wrapFailed(err)
		}
		t.pump()
	} else {
		out, err := t.wire.Wrap(t.ls.wbuf[:0], in)
		discardAll(c)
		if err != nil {
			return t.wrapFailed(err)
		}
		t.deliver(&t.net, out)
		t.ls.wbuf = out[:0]
	}
	return t.pauseIfFull(&t.tor, &t.net)
}

func (t *tunnel) wrapFailed(err error) gnet.Action {
	t.e.log.Debug("transport wrap failed", "err", err)
	t.kill()
	return gnet.None
}

// fromNet handles the network's bytes: everything buffered passes Unwrap, its payload goes
// to tor and its replies back to the network; a partial frame stays in gnet's buffer (or in
// the carry after a pause, pause.go). When the handshake completes, the role goes on.
func (t *tunnel) fromNet(c gnet.Conn) gnet.Action {
	if t.phase == phaseHandshake && !t.role.netPreamble(t, c) {
		return gnet.None
	}
	x := &t.net
	out := &t.ls.out
	for x.st == endOpen {
		in, carried := x.unwrapInput(c)
		if len(in) == 0 {
			break
		}
		out.Payload, out.Reply = out.Payload[:0], out.Reply[:0]
		n, err := t.wire.Unwrap(in, out)
		x.consumed(c, n, carried)
		t.write(x, out.Reply)
		t.ls.toTor.add(len(out.Payload))
		t.deliver(&t.tor, out.Payload)
		if err != nil {
			return t.wireFailed(err)
		}
		if n == 0 {
			break
		}
	}
	if t.phase == phaseHandshake && t.wire.Ready() {
		t.counts.handshakes.Add(1)
		t.role.handshakeReady(t)
	}
	if t.phase == phaseDone {
		return gnet.None
	}
	return t.pauseIfFull(x, &t.tor)
}

// wireFailed handles a transport error on the network end: during the handshake the role
// decides (a server wire that must not reveal its failure stalls); afterwards the network
// end closes, and tor's end lingers until it has flushed.
func (t *tunnel) wireFailed(err error) gnet.Action {
	t.e.log.Debug("transport error", "err", err, "phase", t.phase)
	if t.phase == phaseHandshake {
		t.counts.handshakeFailed(err)
		return t.role.handshakeFailed(t)
	}
	return gnet.Close
}

// pump writes a paced wire's output, chunk by chunk, waiting on the tunnel's timer between.
func (t *tunnel) pump() {
	for t.net.st == endOpen && !t.timerArmed {
		out, wait, ok := t.pacer.Next(t.ls.wbuf[:0])
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

// dialOffLoop runs dial for x's end, within timeout, on a goroutine of gnet's worker pool
// (the one its Enroll uses), and enrolls the conn on ls's loop or reports the failure
// there. A pooled goroutine rather than a new one per dial: a dial's call chain grows a
// new goroutine's stack, and that copy plus the goroutine's creation were 3 % of a
// bridge's CPU in ptbench churn (perf); the pool's goroutines keep their grown stacks.
// Should the pool refuse the task (it is closed, or its 2^18 workers are busy), a
// goroutine of its own runs it.
func dialOffLoop(ls *loopState, x *end, timeout time.Duration, dial func(context.Context) (net.Conn, error)) {
	task := func() {
		start := time.Now()
		ctx, cancel := context.WithTimeout(ls.e.ctx, timeout)
		conn, err := dial(ctx)
		cancel()
		enrollDialed(ls, x, conn, err, start)
	}
	if goroutine.DefaultWorkerPool.Submit(task) != nil {
		go task()
	}
}

// enrollDialed puts a dialed conn on the loop of its tunnel, or reports the failure there.
// It runs on the dialing goroutine; the dial began at start.
func enrollDialed(ls *loopState, x *end, conn net.Conn, err error, start time.Time) {
	if err == nil {
		ls.e.stats.dialLatency.observe(time.Since(start))
		var ch <-chan gnet.RegisteredResult
		ch, err = ls.el.Enroll(gnet.NewContext(context.Background(), x), conn)
		if err != nil {
			conn.Close()
		} else if r := <-ch; r.Err != nil {
			err = r.Err
		} else if r.Conn == nil {
			// gnet's Enroll worker recovers from a panic (a conn whose peer is already
			// gone has no remote address) by closing the channel with neither.
			err = errEnrollLost
		}
	}
	if err != nil {
		ls.e.stats.dialFailed(err)
		_ = ls.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			x.t.dialFailed(x, err)
			return nil
		}))
	}
}

func (t *tunnel) dialFailed(x *end, err error) {
	x.live = false
	x.st = endClosed
	t.role.dialFailed(t, err)
	t.maybeEnd()
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
			if !x.isTor && t.phase != phaseRelay {
				t.role.netClosedBeforeRelay(t)
				break
			}
			t.lingerOrClose(peer)
		case endPaused:
			t.pausedPeerGone(peer)
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
	t.counts.ended.Add(1)
	if t.timer != nil {
		t.timer.Stop()
	}
	if t.watched {
		delete(t.ls.watch, t)
		t.watched = false
	}
	t.e.tunnelEnded(t)
}
