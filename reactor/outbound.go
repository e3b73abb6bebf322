package reactor

// This file opens the far side of a tunnel: the connection to the bridge in client mode
// (directly or through TOR_PT_PROXY) and the connection to tor in server mode (its Extended
// ORPort or its plain ORPort, or the Extended ORPort of one of a pool of tors: orpool.go). These dials block, with their handshakes, so the reactor runs
// them on a goroutine of their own and enrolls the finished connection on the loop of the
// tunnel's inbound side. Every handshake reads exactly as many bytes as it needs: the loop
// takes over the file descriptor, not a Go reader, so a byte read here past a handshake
// would be a byte lost.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/ptreactor/ptreactor/codec/extor"
	"github.com/ptreactor/ptreactor/codec/upstream"
)

// extORSetupTimeout bounds an Extended ORPort setup, connect and handshake together, as
// goptlib does.
const extORSetupTimeout = 5 * time.Second

// maxSourceHostBits caps how much of an ORSource range is used: 2^24 addresses hold more
// ephemeral ports than any process has file descriptors.
const maxSourceHostBits = 24

// dialer holds what the outbound dials need from Config.
type dialer struct {
	log *slog.Logger

	// Client mode.
	proxy  *upstream.Proxy // nil: connect directly
	bindV4 netip.Addr      // source for IPv4 destinations, or invalid
	bindV6 netip.Addr      // source for IPv6 destinations, or invalid

	// Server mode.
	orAddr     netip.AddrPort // the ExtORPort if set, else the ORPort; invalid: neither
	extOR      bool           // orAddr is an Extended ORPort
	cookieFile string
	pool       *orPool      // nil: orAddr; else the pool replaces orAddr
	orSource   netip.Prefix // masked; invalid: the kernel picks the source
	sourceNext atomic.Uint64
}

// newDialer takes the outbound parts of cfg, which lifecycle has validated; what is checked
// here is how they go together.
func newDialer(cfg *Config) (*dialer, error) {
	d := &dialer{
		log:        cfg.Logger,
		proxy:      cfg.Proxy,
		bindV4:     cfg.OutboundBindV4,
		bindV6:     cfg.OutboundBindV6,
		cookieFile: cfg.AuthCookieFile,
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case len(cfg.ORPool) > 0:
		if len(cfg.ORPool) > MaxORPoolSize {
			return nil, fmt.Errorf("an ORPort pool holds at most %d instances, not %d", MaxORPoolSize, len(cfg.ORPool))
		}
		for i, in := range cfg.ORPool {
			if !in.Addr.IsValid() || in.CookieFile == "" {
				return nil, fmt.Errorf("ORPort pool instance %d needs an address and an auth cookie file", i+1)
			}
			if p := cfg.ORSource; p.IsValid() && p.Addr().Is4() != in.Addr.Addr().Is4() {
				return nil, fmt.Errorf("source range %v and ORPort pool instance %d (%v) are of different IP versions", p.Masked(), i+1, in.Addr)
			}
			if !in.Addr.Addr().IsLoopback() {
				d.log.Warn("an ORPort pool instance is not on a loopback address; its Extended ORPort traffic is unencrypted",
					"instance", i+1, "extorport", in.Addr.String())
			}
		}
		d.pool = newORPool(d.log, cfg.ORPool)
	case cfg.ExtORPort.IsValid():
		if cfg.AuthCookieFile == "" {
			return nil, errors.New("an Extended ORPort needs an auth cookie file")
		}
		d.orAddr, d.extOR = cfg.ExtORPort, true
		if !cfg.ExtORPort.Addr().IsLoopback() {
			// ext-orport-spec 4: the Extended ORPort protocol is not encrypted.
			d.log.Warn("the Extended ORPort is not on a loopback address; its traffic is unencrypted",
				"extorport", cfg.ExtORPort.String())
		}
	case cfg.ORPort.IsValid():
		d.orAddr = cfg.ORPort
	}
	if p := cfg.ORSource; p.IsValid() {
		p = p.Masked()
		if d.orAddr.IsValid() && p.Addr().Is4() != d.orAddr.Addr().Is4() {
			return nil, fmt.Errorf("source range %v and OR address %v are of different IP versions", p, d.orAddr)
		}
		d.orSource = p
		var seed [8]byte
		_, _ = rand.Read(seed[:])
		d.sourceNext.Store(binary.LittleEndian.Uint64(seed[:]))
	}
	return d, nil
}

// dialBridge connects to a bridge for the client side of a tunnel: directly, or through the
// configured proxy and never around it. addr is what the bridge line says, host:port with
// an IP literal or a name.
func (d *dialer) dialBridge(ctx context.Context, addr string) (net.Conn, error) {
	if d.proxy != nil {
		h, err := upstream.New(*d.proxy, addr)
		if err != nil {
			return nil, err
		}
		c, err := d.dialTCP(ctx, d.proxy.Addr, d.bindFor(d.proxy.Addr.Addr()), keepAliveNetwork)
		if err != nil {
			return nil, fmt.Errorf("connecting to the %s proxy: %w", d.proxy.Scheme, err)
		}
		if err := runHandshake(ctx, c, h); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s proxy handshake: %w", d.proxy.Scheme, err)
		}
		return c, nil
	}

	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		port, err := parsePort(portStr)
		if err != nil {
			return nil, err
		}
		return d.dialTCP(ctx, netip.AddrPortFrom(ip.Unmap(), port), d.bindFor(ip.Unmap()), keepAliveNetwork)
	}
	port, err := parsePort(portStr)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	// The bind address depends on each address's family and on whether it is loopback, so
	// the addresses are tried one by one here rather than by net.Dialer.
	var first error
	for _, ip := range ips {
		ip = ip.Unmap()
		c, err := d.dialTCP(ctx, netip.AddrPortFrom(ip, port), d.bindFor(ip), keepAliveNetwork)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if first == nil {
		first = fmt.Errorf("%s: no addresses", host)
	}
	return nil, first
}

func parsePort(s string) (uint16, error) {
	var p uint16
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' || p > (65535-uint16(s[i]-'0'))/10 {
			return 0, fmt.Errorf("bad port %q", s)
		}
		p = p*10 + uint16(s[i]-'0')
	}
	if s == "" || p == 0 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return p, nil
}

// bindFor is the source address for a client-mode connection to dst: the outbound bind
// address of dst's family, except for loopback destinations (pt-spec 3.2.1 MUST).
func (d *dialer) bindFor(dst netip.Addr) netip.Addr {
	switch {
	case dst.IsLoopback():
		return netip.Addr{}
	case dst.Is4():
		return d.bindV4
	default:
		return d.bindV6
	}
}

// dialTor connects to tor for the server side of a tunnel whose client came from client,
// over transport. Through an Extended ORPort it authenticates, tells tor the client's address
// and the transport, and returns once tor has said OKAY. With an ORPort pool, the tor is the
// client's instance of the pool (orpool.go).
func (d *dialer) dialTor(ctx context.Context, client net.Addr, transport string) (net.Conn, error) {
	if d.pool == nil && !d.orAddr.IsValid() {
		return nil, errors.New("no ORPort or Extended ORPort configured")
	}
	if d.pool == nil && !d.extOR {
		return d.dialTCP(ctx, d.orAddr, d.nextSource(), keepAliveLocal)
	}

	if !extor.ValidTransportName(transport) {
		return nil, fmt.Errorf("%w: %q", extor.ErrTransport, transport)
	}
	ctx, cancel := context.WithTimeout(ctx, extORSetupTimeout)
	defer cancel()
	if d.pool != nil {
		return d.pool.dial(ctx, d, client, transport)
	}
	return d.dialExtOR(ctx, d.orAddr, d.cookieFile, addrPortOf(client), transport)
}

// dialExtOR connects to the Extended ORPort at addr and runs its handshake within ctx, with
// the cookie in cookieFile, telling tor userAddr (none when invalid) and transport.
func (d *dialer) dialExtOR(ctx context.Context, addr netip.AddrPort, cookieFile string, userAddr netip.AddrPort, transport string) (net.Conn, error) {
	// tor may rewrite the cookie after it started us (tor bug #15240): read it every time.
	cookie, err := extor.ReadCookieFile(cookieFile)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", errCookieFile, cookieFile, err)
	}
	var nonce [32]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	h, err := extor.NewClient(cookie, nonce, userAddr, transport)
	if err != nil {
		return nil, err
	}
	c, err := d.dialTCP(ctx, addr, d.nextSource(), keepAliveLocal)
	if err != nil {
		return nil, fmt.Errorf("connecting to the Extended ORPort: %w", err)
	}
	if err := runHandshake(ctx, c, h); err != nil {
		c.Close()
		return nil, fmt.Errorf("extended ORPort handshake: %w", err)
	}
	return c, nil
}

// addrPortOf is the address of a client as USERADDR needs it; the zero AddrPort (no
// USERADDR) when it is not an IP address.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// nextSource picks the source address of the next connection to tor, round-robin over the
// ORSource range (skipping its first and last address, the network and broadcast address of
// an IPv4 subnet); invalid without a range.
func (d *dialer) nextSource() netip.Addr {
	if !d.orSource.IsValid() {
		return netip.Addr{}
	}
	return d.sourceAt(d.sourceNext.Add(1))
}

// sourceCount is how many source addresses the ORSource range yields.
func (d *dialer) sourceCount() uint64 {
	switch hostBits := d.orSource.Addr().BitLen() - d.orSource.Bits(); {
	case hostBits <= 1:
		return 1 << hostBits
	case hostBits > maxSourceHostBits:
		return 1<<maxSourceHostBits - 1
	default:
		return 1<<hostBits - 2
	}
}

// sourceAt is the n-th source address (n modulo sourceCount).
func (d *dialer) sourceAt(n uint64) netip.Addr {
	p := d.orSource
	off := n % d.sourceCount()
	if p.Addr().BitLen()-p.Bits() > 1 {
		off++ // skip the first address
	}
	b := p.Addr().As16()
	for i := 15; i >= 0 && off > 0; i-- {
		sum := uint64(b[i]) + off&0xff
		b[i] = byte(sum)
		off = off>>8 + sum>>8
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

// checkSources binds the first and the last source address of the ORSource range once, so
// a range this system cannot send from fails at start-up with a reason rather than as
// failed connections later. On Linux every address of 127.0.0.0/8 is local; on the BSDs
// and macOS only the addresses configured on an interface are (lo0 holds 127.0.0.1 alone
// unless aliases are added).
func (d *dialer) checkSources() error {
	if !d.orSource.IsValid() {
		return nil
	}
	for _, n := range [...]uint64{0, d.sourceCount() - 1} {
		a := d.sourceAt(n)
		ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
		if err != nil {
			return fmt.Errorf("source range %v: address %v is not usable on this system (every address of the range must be local): %w", d.orSource, a, err)
		}
		ln.Close()
	}
	return nil
}

// TCP keep-alive of the connections a tunnel opens or accepts, as net.Dialer and
// net.ListenConfig take it.
const (
	// keepAliveNetwork is Go's default (probes after 15 s idle): a peer out on the network
	// that vanished (a NAT that forgot the flow, a client gone dark) is noticed and its
	// tunnel freed, as obfs4proxy does.
	keepAliveNetwork time.Duration = 0
	// keepAliveLocal is none, for tor's side of the tunnel: tor is on this machine and
	// ends a dead link itself. Turning keep-alive on costs four setsockopt calls per
	// connection: 3 % of all CPU in a profile of BenchmarkSetup (the benchmark's own
	// connections included), too little for the benchmark's time to show.
	keepAliveLocal time.Duration = -1
)

// dialTCP connects to dst from src (any source when src is invalid), with the platform's
// sourceControl when a source is given, and keepAlive as net.Dialer takes it.
func (d *dialer) dialTCP(ctx context.Context, dst netip.AddrPort, src netip.Addr, keepAlive time.Duration) (net.Conn, error) {
	nd := net.Dialer{KeepAlive: keepAlive}
	if src.IsValid() {
		nd.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		nd.Control = sourceControl
	}
	// Not Dialer.DialTCP, which would save formatting and parsing dst: without a source it
	// still binds the socket, to the wildcard address and port 0, before connecting. A
	// port chosen at bind time must be free of every connection, TIME_WAIT ones included,
	// where connect's own choice need only differ per destination and may reuse a
	// loopback TIME_WAIT: with DialTCP, ptbench churn at 750 set-ups/s ran the bridge out
	// of ephemeral ports within seconds.
	return nd.DialContext(ctx, "tcp", dst.String())
}

// clientHandshake is the shape of the sans-IO client handshakes in codec/extor and
// codec/upstream.
type clientHandshake interface {
	Start() []byte
	Need() int
	Feed(in []byte) (n int, out []byte, err error)
	Done() bool
}

// pastDeadline is a deadline that has already passed, to break a blocked read or write.
var pastDeadline = time.Unix(1, 0)

// runHandshake drives h over c until it is done, reading never more than h.Need, within
// ctx. It leaves c without a deadline.
func runHandshake(ctx context.Context, c net.Conn, h clientHandshake) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(pastDeadline) })
	err := handshakeIO(c, h)
	if !stop() {
		// ctx ended during the handshake: its error says why better than the I/O error
		// it caused, and a deadline set by the AfterFunc may still be in place.
		if err == nil {
			err = ctx.Err()
		} else {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return err
	}
	if err != nil {
		return err
	}
	return c.SetDeadline(time.Time{})
}

func handshakeIO(c net.Conn, h clientHandshake) error {
	if out := h.Start(); len(out) > 0 {
		if _, err := c.Write(out); err != nil {
			return err
		}
	}
	var buf [512]byte
	for !h.Done() {
		k := min(h.Need(), len(buf))
		if k <= 0 {
			return errors.New("handshake stalled") // cannot happen: Need > 0 until done
		}
		n, err := c.Read(buf[:k])
		if n > 0 {
			// n <= Need, so Feed uses all of it.
			_, out, ferr := h.Feed(buf[:n])
			if ferr != nil {
				return ferr
			}
			if len(out) > 0 {
				if _, err := c.Write(out); err != nil {
					return err
				}
			}
		}
		if err != nil && !h.Done() {
			if err == io.EOF {
				return fmt.Errorf("peer closed the connection: %w", io.ErrUnexpectedEOF)
			}
			return err
		}
	}
	return nil
}
