package reactor

import (
	"context"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/ptreactor/ptreactor/codec"
)

// serverRole is the bridge side of a tunnel: a transport client connects to our listener,
// its handshake runs first, and only then is tor dialed (its Extended ORPort or ORPort).
// What the client sends meanwhile waits in tor's queue. A wire that fails its handshake
// and must not say so (codec.Stalling) holds the conn, reading and discarding, until its
// stall time.
type serverRole struct {
	name string       // transport name for the ExtORPort
	srv  codec.Server // builds the wire per connection
}

func newServerTunnel(e *Engine, name string, srv codec.Server) *tunnel {
	ts := &struct {
		tunnel
		serverRole
	}{serverRole: serverRole{name: name, srv: srv}}
	t := &ts.tunnel
	t.init(e, &ts.serverRole, &t.net, phaseHandshake)
	return t
}

// inboundOpened: a client has connected; its wire is made, and the handshake has the
// transport's timeout (a wire without a handshake goes straight to the dial).
func (r *serverRole) inboundOpened(t *tunnel) {
	t.wire = r.srv.NewWire()
	t.pacer = t.wire.Pacer()
	if t.wire.Ready() {
		r.startDialTor(t)
		return
	}
	if d := r.srv.HandshakeTimeout(); d > 0 {
		t.deadline = time.Now().Add(d)
		t.watch()
	}
}

// torBeforeRelay cannot happen: tor's end is dialed after the handshake, and relaying
// starts as it opens. Were it to, the tunnel ends.
func (r *serverRole) torBeforeRelay(t *tunnel, c gnet.Conn) {
	discardAll(c)
	t.kill()
}

// handshakeReady: the client is who it should be; tor is dialed.
func (r *serverRole) handshakeReady(t *tunnel) {
	t.deadline = time.Time{}
	r.startDialTor(t)
}

// startDialTor connects the tunnel to tor off the loop; the conn is enrolled on t's loop.
func (r *serverRole) startDialTor(t *tunnel) {
	t.phase = phaseDial
	t.tor.live = true
	ls, e, x, name, from := t.ls, t.e, &t.tor, r.name, t.net.c.RemoteAddr()
	go func() {
		ctx, cancel := context.WithTimeout(e.ctx, e.lim.DialTorTimeout)
		conn, err := e.dialer.dialTor(ctx, from, name)
		cancel()
		enrollDialed(ls, x, conn, err)
	}()
}

// dialedOpened: tor's end is up; what the client sent meanwhile goes first, and if the
// client has gone already, tor's end closes once that is written.
func (r *serverRole) dialedOpened(t *tunnel, x *end) {
	t.phase = phaseRelay
	t.flushQueue(x)
	if t.net.st == endClosed || t.net.st == endLingering {
		t.lingerOrClose(x)
	}
}

func (r *serverRole) handshakeFailed(t *tunnel) gnet.Action {
	if r.stall(t) {
		return gnet.None
	}
	return gnet.Close
}

func (r *serverRole) deadlineHit(t *tunnel) {
	if t.phase != phaseHandshake {
		return
	}
	if !r.stall(t) {
		t.kill()
	}
}

// netClosedBeforeRelay cannot happen either (tor's end is open only while relaying); were
// it to, tor's end flushes and closes as after any close.
func (r *serverRole) netClosedBeforeRelay(t *tunnel) {
	t.lingerOrClose(&t.tor)
}

func (r *serverRole) dialFailed(t *tunnel, err error) {
	t.e.log.Debug("tor connection failed", "err", err)
	t.kill()
}

// stall holds a failed handshake until the wire's StallUntil, reading and discarding
// (traffic drops everything in phaseStall; the sweep kills the tunnel at stallUntil). It
// reports false for a wire that does not stall.
func (r *serverRole) stall(t *tunnel) bool {
	s, ok := t.wire.(codec.Stalling)
	if !ok {
		return false
	}
	t.phase = phaseStall
	t.deadline = time.Time{}
	t.stallUntil = s.StallUntil()
	t.watch()
	return true
}
