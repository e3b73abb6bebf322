package reactor

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/proxyproto"
)

// serverRole is the bridge side of a tunnel: a transport client connects to our listener,
// its handshake runs first, and only then is tor dialed (its Extended ORPort or ORPort).
// What the client sends meanwhile waits in tor's queue. A wire that fails its handshake
// and must not say so (codec.Stalling) holds the conn, reading and discarding, until its
// stall time.
type serverRole struct {
	name string       // transport name for the ExtORPort
	srv  codec.Server // builds the wire per connection

	header bool     // a PROXY protocol header is due before the wire's bytes
	client net.Addr // the client the header named; nil: the conn's peer is the client

	holdFor time.Duration // a held tunnel (newHeldTunnel): how long from the accept
}

func newServerTunnel(e *Engine, name string, srv codec.Server, counts *transportCounts) *tunnel {
	ts := &struct {
		tunnel
		serverRole
	}{serverRole: serverRole{name: name, srv: srv}}
	t := &ts.tunnel
	t.init(e, &ts.serverRole, &t.net, phaseHandshake, counts)
	return t
}

// newHeldTunnel is a server tunnel for a conn past the tunnel limit (accept.go): it is
// held as a failed handshake is, for holdFor from now, and gets no wire.
func newHeldTunnel(e *Engine, name string, srv codec.Server, counts *transportCounts, holdFor time.Duration) *tunnel {
	t := newServerTunnel(e, name, srv, counts)
	t.overload = true
	t.role.(*serverRole).holdFor = holdFor
	return t
}

// inboundOpened: a client has connected; its wire is made, and the handshake has the
// transport's timeout (a wire without a handshake goes straight to the dial, unless a
// PROXY header is due first, which then has proxyHeaderTimeout). A held conn goes to the
// stall at once, with no wire: nothing it sends is looked at.
func (r *serverRole) inboundOpened(t *tunnel) {
	if t.overload {
		t.phase = phaseStall
		t.stallUntil = time.Now().Add(r.holdFor)
		t.watch()
		return
	}
	t.wire = r.srv.NewWire()
	t.pacer = t.wire.Pacer()
	r.header = fromBalancer(t.e.cfg.ProxyProtocol, t.net.c.RemoteAddr())
	if t.wire.Ready() && !r.header {
		r.startDialTor(t)
		return
	}
	d := r.srv.HandshakeTimeout()
	if d <= 0 {
		d = proxyHeaderTimeout
	}
	t.deadline = time.Now().Add(d)
	t.watch()
}

// proxyHeaderTimeout bounds the wait for a PROXY header when the transport has no
// handshake timeout of its own (plain); obfs4's handshake timeout covers the header too.
const proxyHeaderTimeout = 30 * time.Second

// fromBalancer reports whether peer is in one of the -proxy-protocol ranges.
func fromBalancer(ranges []netip.Prefix, peer net.Addr) bool {
	a, ok := peer.(*net.TCPAddr)
	if !ok || len(ranges) == 0 {
		return false
	}
	ip := a.AddrPort().Addr().Unmap()
	for _, p := range ranges {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// netPreamble reads the PROXY protocol header a balancer sends ahead of the client's
// bytes. The header names the client, whom tor (USERADDR), the pool and the logs then see;
// a LOCAL header (the balancer's own health check) or an UNKNOWN one leaves the balancer
// as the client. A missing or malformed header is a failed handshake: the conn stalls like
// any other, with no answer.
func (r *serverRole) netPreamble(t *tunnel, c gnet.Conn) bool {
	if !r.header {
		return true
	}
	in, _ := c.Peek(-1)
	n, h, err := proxyproto.Parse(in)
	switch {
	case err == proxyproto.ErrIncomplete:
		return false
	case err != nil:
		t.e.log.Debug("bad PROXY protocol header from the balancer", "err", err)
		t.counts.handshakeFailed(err)
		discardAll(c)
		if !r.stall(t) {
			t.kill()
		}
		return false
	}
	discard(c, n)
	r.header = false
	if !h.Local && !h.Unknown {
		r.client = net.TCPAddrFromAddrPort(h.Source)
		t.e.log.Debug("PROXY header", "client", h.Source.String())
	}
	if t.wire.Ready() { // a transport without a handshake: tor is dialed now
		r.handshakeReady(t)
	}
	return true
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
	from := r.client
	if from == nil {
		from = t.net.c.RemoteAddr()
	}
	e, name := t.e, r.name
	dialOffLoop(t.ls, &t.tor, e.lim.DialTorTimeout, func(ctx context.Context) (net.Conn, error) {
		return e.dialer.dialTor(ctx, from, name)
	})
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
	t.counts.timedOut.Add(1)
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
	t.e.failures.note(torDialFailure(err), err)
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
	t.counts.stalled.Add(1)
	t.deadline = time.Time{}
	t.stallUntil = s.StallUntil()
	t.watch()
	return true
}
