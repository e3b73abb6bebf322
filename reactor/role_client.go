package reactor

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/socks"
)

// clientRole is the client side of a tunnel: tor connects to our SOCKS listener, names the
// bridge and the transport arguments, and we dial the bridge and run the transport
// handshake there. tor's CONNECT is answered only once that handshake is done (pt-spec:
// not before), so every failure before then is a SOCKS reply.
type clientRole struct {
	transport codec.Transport // builds the wire from the SOCKS arguments
	socks     socks.Server
}

func newClientTunnel(e *Engine, tr codec.Transport, counts *transportCounts) *tunnel {
	tc := &struct {
		tunnel
		clientRole
	}{clientRole: clientRole{transport: tr}}
	t := &tc.tunnel
	t.init(e, &tc.clientRole, &t.tor, phaseSocks, counts)
	return t
}

// inboundOpened: tor has connected; it has SOCKSTimeout to make its request.
func (r *clientRole) inboundOpened(t *tunnel) {
	t.deadline = time.Now().Add(t.e.lim.SOCKSTimeout)
	t.watch()
}

// netPreamble: the bridge's bytes are the wire's from the first.
func (r *clientRole) netPreamble(*tunnel, gnet.Conn) bool { return true }

func (r *clientRole) torBeforeRelay(t *tunnel, c gnet.Conn) {
	if t.phase == phaseSocks {
		r.negotiate(t, c)
		return
	}
	// tor sent payload before its CONNECT was answered; it never does.
	discardAll(c)
	r.fail(t, socks.GeneralFailure)
}

// negotiate advances the SOCKS negotiation with tor and, once tor's request is complete,
// builds the wire from its arguments and dials the bridge.
func (r *clientRole) negotiate(t *tunnel, c gnet.Conn) {
	in, _ := c.Peek(-1)
	n, out, err := r.socks.Step(in, t.ls.wbuf[:0])
	discard(c, n)
	t.write(&t.tor, out)
	t.ls.wbuf = out[:0]
	if err != nil {
		t.e.log.Debug("SOCKS negotiation failed", "err", err)
		t.kill()
		return
	}
	if !r.socks.Done() {
		return
	}
	if c.InboundBuffered() > 0 {
		t.e.log.Debug("SOCKS negotiation failed: bytes left after the request")
		r.fail(t, socks.GeneralFailure)
		return
	}
	req := r.socks.Request()
	wire, err := r.transport.Client(req.Args)
	if err != nil {
		t.e.log.Debug("bad transport arguments", "err", err)
		r.fail(t, socks.ReplyCode(err))
		return
	}
	t.wire = wire
	t.pacer = wire.Pacer()
	t.phase = phaseDial
	t.deadline = time.Time{}
	t.net.live = true
	r.startDialBridge(t, req.Addr)
}

// startDialBridge dials the bridge at addr off the loop; the conn is enrolled on t's loop.
func (r *clientRole) startDialBridge(t *tunnel, addr string) {
	e := t.e
	dialOffLoop(t.ls, &t.net, e.lim.DialBridgeTimeout, func(ctx context.Context) (net.Conn, error) {
		return e.dialer.dialBridge(ctx, addr)
	})
}

// dialedOpened: the bridge conn is up; the wire's handshake starts, unless tor gave up
// while the bridge was being dialed.
func (r *clientRole) dialedOpened(t *tunnel, x *end) {
	if t.tor.st != endOpen {
		t.kill()
		return
	}
	out, err := t.wire.Start(t.ls.wbuf[:0])
	t.ls.wbuf = out[:0]
	if err != nil {
		t.e.log.Debug("transport start failed", "err", err)
		t.counts.handshakeFailed(err)
		r.fail(t, socks.GeneralFailure)
		return
	}
	t.write(x, out)
	t.phase = phaseHandshake
	if t.wire.Ready() {
		r.handshakeReady(t)
		return
	}
	t.deadline = time.Now().Add(t.e.lim.ClientHandshakeTimeout)
	t.watch()
}

// handshakeReady answers tor's CONNECT, then lets payload flow: what the bridge sent with
// its handshake reply waited in tor's queue.
func (r *clientRole) handshakeReady(t *tunnel) {
	t.deadline = time.Time{}
	t.phase = phaseRelay
	t.write(&t.tor, socks.AppendReply(t.ls.wbuf[:0], socks.Succeeded))
	t.flushQueue(&t.tor)
}

func (r *clientRole) handshakeFailed(t *tunnel) gnet.Action {
	r.fail(t, socks.GeneralFailure)
	return gnet.None
}

func (r *clientRole) deadlineHit(t *tunnel) {
	switch t.phase {
	case phaseSocks:
		t.e.log.Debug("SOCKS negotiation timed out")
		t.kill()
	case phaseHandshake:
		t.e.log.Debug("transport handshake timed out")
		t.counts.timedOut.Add(1)
		r.fail(t, socks.TTLExpired)
	}
}

// netClosedBeforeRelay: the bridge hung up mid-handshake.
func (r *clientRole) netClosedBeforeRelay(t *tunnel) {
	if t.phase == phaseHandshake {
		t.counts.handshakeFailed(errBridgeHungUp)
	}
	r.fail(t, socks.GeneralFailure)
}

func (r *clientRole) dialFailed(t *tunnel, err error) {
	t.e.log.Debug("bridge connection failed", "err", err)
	t.e.failures.note(bridgeDialFailure(err), err)
	r.fail(t, socks.ReplyCode(err))
}

// errBridgeHungUp is the handshake failure of a bridge that closed the connection before
// its reply.
var errBridgeHungUp = errors.New("the bridge closed the connection during the handshake")

// fail refuses tor's CONNECT with code and ends the tunnel.
func (r *clientRole) fail(t *tunnel, code byte) {
	if t.tor.st == endOpen {
		t.write(&t.tor, socks.AppendReply(t.ls.wbuf[:0], code))
	}
	t.kill()
}
