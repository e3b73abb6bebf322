package reactor

// This file is the backpressure of a tunnel: pausing a source, resuming it, and the carry
// that keeps a partial frame across the pause. The package doc says why a pause takes the
// conn off the loop; here is how, and what each step must keep.
//
// gnet reads a readable socket whether or not the handler consumes what it read, so a
// source stops being read only by leaving the loop. pauseIfFull does that when the bytes
// waiting for its sink reach HighWater: it duplicates the source's fd, marks the end
// endPausing and returns gnet.Close from the source's own callback; OnClose (handler.go)
// sees endPausing and keeps the fd in end.fd instead of tearing the tunnel down. The socket
// stays open in the kernel, its receive buffer fills, and TCP flow control pushes back on
// the sender.
//
// A closing gnet conn writes its outbound buffer once and drops the rest, and drops its
// unread input (gnetquirks.go). So a source is paused only with an empty outbound buffer
// and an empty queue (otherwise the sweep's caps bound it, and the next read tries again);
// bytes that arrive for it while it is away wait in end.queue, flushed when it is back; and
// the partial frame left in its input is copied to end.carry, which fromNet joins with the
// first read after the resume (unwrapInput, consumed). Once Unwrap has used the whole carry,
// the zero-copy path over gnet's buffer takes over again.
//
// A paused source is resumed when its sink has drained below LowWater, checked at the
// sweep (resumeIfDue) and, sooner, whenever the sink itself has traffic (resumePeerEarly);
// also when the queue waiting for the paused end reaches HighWater, so both ends of a
// tunnel cannot sit paused waiting on each other. Resuming turns the kept fd into a
// net.Conn and enrolls it on the same loop; OnOpen then runs resumed. A paused end whose
// peer closes is resumed to flush its queue and linger, or dropped if it has none.

import (
	"context"
	"errors"

	"github.com/panjf2000/gnet/v2"
)

// pauseIfFull pauses src, from its own callback, when what waits for dst has reached the
// high-water mark; the action is the callback's.
func (t *tunnel) pauseIfFull(src, dst *end) gnet.Action {
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
	src.carry = appendUnread(src.carry, src.c)
	src.st = endPausing
	t.e.stats.pauses.Add(1)
	t.ls.hurry()
	return gnet.Close // gnet closes its conn; OnClose sees endPausing and keeps the fd
}

// resumePeerEarly resumes x's paused peer when x's own traffic shows that what waits for x
// is below the low-water mark, sooner than the sweep would.
func (t *tunnel) resumePeerEarly(x *end) {
	if peer := t.other(x); peer.st == endPaused && t.pending(x) < t.e.lim.LowWater {
		t.resume(peer, false)
	}
}

// resumeIfDue is the sweep's look at a paused end x. A peer already closed means that
// pausedPeerGone could not bring x back when the peer went (out of descriptors): it is
// tried again here, or x would stay paused for ever.
func (t *tunnel) resumeIfDue(x *end) {
	peer := t.other(x)
	switch {
	case peer.st == endClosed:
		t.pausedPeerGone(x)
	case (peer.st == endOpen && t.pending(peer) < t.e.lim.LowWater) || len(x.queue) >= t.e.lim.HighWater:
		t.resume(x, false)
	}
}

// errPeerGone: a paused end's socket was reset while it was off the loop.
var errPeerGone = errors.New("the peer reset the connection while it was paused")

// errEnrollLost: gnet's Enroll closed its result channel with neither a conn nor an
// error, which its worker does when it recovers from a panic.
var errEnrollLost = errors.New("gnet lost the connection while enrolling it")

// resume puts a paused end back on the loop. Its kept fd becomes a net.Conn (which takes
// its own duplicate) and is enrolled; OnOpen then runs resumed. With linger, x lingers as
// soon as it is back.
func (t *tunnel) resume(x *end, linger bool) {
	nc, err := connFromKept(x.fd)
	if err != nil {
		return // out of descriptors: try again at the next sweep
	}
	closeFD(x.fd)
	x.fd = -1
	x.st = endResuming
	x.lingerAfter = x.lingerAfter || linger
	var ch <-chan gnet.RegisteredResult
	if nc.RemoteAddr() == nil {
		// The peer reset the socket while it was off the loop (it is no longer connected).
		// gnet's Enroll would dereference the missing remote address in its pool goroutine,
		// recover, and close the result channel with neither Conn nor Err.
		err = errPeerGone
	} else {
		ch, err = t.ls.el.Enroll(gnet.NewContext(context.Background(), x), nc)
	}
	if err != nil {
		nc.Close()
		x.st = endClosed
		x.live = false
		t.kill()
		return
	}
	ls := t.ls
	go func() {
		if r := <-ch; r.Err != nil || r.Conn == nil { // nil, nil: gnet recovered a panic
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

// resumed runs when a resumed end is back on the loop: what waited for it is written (for
// the network end, the pacer goes on too), and it lingers if its peer went meanwhile.
func (t *tunnel) resumed(x *end) {
	t.flushQueue(x)
	if !x.isTor && t.pacer != nil {
		t.pump()
	}
	if x.lingerAfter || t.phase == phaseDone {
		t.lingerOrClose(x)
	}
}

// pausedPeerGone handles a paused end x whose peer has closed: x comes back to flush its
// queue and linger, or, with nothing queued, its kept fd is closed.
func (t *tunnel) pausedPeerGone(x *end) {
	if len(x.queue) == 0 {
		t.dropKept(x)
	} else {
		t.resume(x, true)
	}
}

// dropKept closes a paused end's kept fd: the end is gone.
func (t *tunnel) dropKept(x *end) {
	if x.fd >= 0 {
		closeFD(x.fd)
		x.fd = -1
	}
	x.st = endClosed
	x.live = false
}

// unwrapInput is what x's next Unwrap gets: gnet's buffered input, joined to the carried
// partial frame after a resume. carried is how much of it came from the carry.
func (x *end) unwrapInput(c gnet.Conn) (in []byte, carried int) {
	in, _ = c.Peek(-1)
	carried = len(x.carry)
	if carried > 0 {
		x.carry = append(x.carry, in...)
		in = x.carry
	}
	return in, carried
}

// consumed drops the n bytes Unwrap used from what unwrapInput gave it: from gnet's buffer,
// or first from the carry. Until Unwrap has used the whole carry, the carry keeps the rest,
// gnet's bytes included.
func (x *end) consumed(c gnet.Conn, n, carried int) {
	switch {
	case carried > 0 && n >= carried:
		x.carry = x.carry[:0]
		discard(c, n-carried)
	case carried > 0:
		x.carry = x.carry[:copy(x.carry, x.carry[n:])]
		discardAll(c)
	default:
		discard(c, n)
	}
}
