package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

var (
	errTunnelGone   = errors.New("the obfs4 tunnel closed")
	errLinkTimeout  = errors.New("tor link handshake timed out")
	errLinkOverflow = errors.New("tor sent more than a link handshake before it was read")
)

// maxLinkBuffer bounds what tor may send ahead of the link handshake's reader: VERSIONS,
// CERTS (a few KiB), AUTH_CHALLENGE and NETINFO, in TLS records.
const maxLinkBuffer = 64 << 10

// linkConn is the net.Conn that crypto/tls runs over: the payload of one obfs4 tunnel.
// The event loop feeds Read with what the tunnel unwraps; Write hands payload to the loop,
// which wraps and sends it. It is the one part of a tunnel that another goroutine touches,
// hence its lock.
type linkConn struct {
	t             *tunnel
	el            gnet.EventLoop
	local, remote net.Addr

	mu   sync.Mutex
	cond sync.Cond
	in   []byte
	err  error // once set, Read returns it after what is buffered, Write at once
}

func newLinkConn(t *tunnel) *linkConn {
	l := &linkConn{t: t, el: t.c.EventLoop(), local: t.c.LocalAddr(), remote: t.c.RemoteAddr()}
	l.cond.L = &l.mu
	return l
}

// feed runs on the loop with payload the tunnel unwrapped.
func (l *linkConn) feed(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if len(l.in)+len(p) > maxLinkBuffer {
		l.err, l.in = errLinkOverflow, nil
	} else {
		l.in = append(l.in, p...)
	}
	l.cond.Broadcast()
}

// abort ends the conn: what is buffered is dropped and blocked calls return err.
func (l *linkConn) abort(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
	l.in = nil
	l.cond.Broadcast()
}

// cause is why the conn was aborted, nil while it is not.
func (l *linkConn) cause() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *linkConn) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.in) == 0 && l.err == nil {
		l.cond.Wait()
	}
	if len(l.in) == 0 {
		return 0, l.err
	}
	n := copy(p, l.in)
	l.in = l.in[n:]
	if len(l.in) == 0 {
		l.in = nil
	}
	return n, nil
}

func (l *linkConn) Write(p []byte) (int, error) {
	if err := l.cause(); err != nil {
		return 0, err
	}
	b := bytes.Clone(p) // crypto/tls reuses p once Write returns
	t := l.t
	err := l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		t.send(b)
		return nil
	}))
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close aborts the conn; the tunnel itself is the loop's to close.
func (l *linkConn) Close() error {
	l.abort(net.ErrClosed)
	return nil
}

func (l *linkConn) LocalAddr() net.Addr  { return l.local }
func (l *linkConn) RemoteAddr() net.Addr { return l.remote }

// The deadline methods do nothing: crypto/tls only calls them around Close, and the link
// handshake is bounded by its own timer, which aborts the conn.
func (l *linkConn) SetDeadline(time.Time) error      { return nil }
func (l *linkConn) SetReadDeadline(time.Time) error  { return nil }
func (l *linkConn) SetWriteDeadline(time.Time) error { return nil }

// startLink runs on the loop once the obfs4 handshake is done: the link handshake gets a
// goroutine of its own (it blocks in crypto/tls), bounded by the set-up slot it keeps.
func (t *tunnel) startLink() {
	l := newLinkConn(t)
	t.link = l
	g, begun := t.g, time.Now()
	g.links.Add(1)
	go func() {
		defer g.links.Done()
		timer := time.AfterFunc(g.cfg.Timeout, func() { l.abort(errLinkTimeout) })
		versionsAt, k, err := torLink(l)
		timer.Stop()
		if cause := l.cause(); err != nil && cause != nil {
			switch cause {
			case errLinkTimeout:
				k, err = TorLinkTimeout, cause
			case errLinkOverflow:
				k, err = TorLinkCells, cause
			}
		}
		d := versionsAt.Sub(begun)
		_ = l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			t.linkDone(d, k, err)
			return nil
		}))
	}()
}

// tlsConfig is the client side of tor's link TLS. A relay's link certificate is
// self-signed and made up afresh; tor does not authenticate a relay through the TLS chain
// at all but through the CERTS cell that follows VERSIONS (which ties the TLS key to the
// relay's identity key). There is no chain to verify, so skipping verification is what a
// tor client does too; ptbench then reads the CERTS cell without checking its signatures,
// because it measures the handshake, it does not trust the bridge with anything.
var tlsConfig = &tls.Config{
	InsecureSkipVerify: true,
	MinVersion:         tls.VersionTLS12,
}

// torLink performs tor's link handshake as an unauthenticated client over l: TLS, our
// VERSIONS, tor's VERSIONS (the point the latency is measured to), then tor's CERTS,
// AUTH_CHALLENGE and NETINFO, and our NETINFO, after which tor holds an open client link.
// It returns when tor's VERSIONS had been read.
func torLink(l *linkConn) (versionsAt time.Time, k Kind, err error) {
	tc := tls.Client(l, tlsConfig)
	if err := tc.HandshakeContext(context.Background()); err != nil {
		return versionsAt, TorLinkTLS, fmt.Errorf("TLS: %w", err)
	}
	if _, err := tc.Write(appendVersionsCell(nil)); err != nil {
		return versionsAt, TorLinkTLS, err
	}
	var r cellReader
	var version uint16
	for version == 0 {
		if err := r.fill(tc); err != nil {
			return versionsAt, TorLinkCells, fmt.Errorf("reading VERSIONS: %w", err)
		}
		v, n, err := parseVersionsCell(r.buf)
		if err != nil {
			return versionsAt, TorLinkCells, err
		}
		if n > 0 {
			version = v
			r.consume(n)
		}
	}
	versionsAt = time.Now()
	var sawCerts bool
	for {
		cmd, _, n, err := parseCell(r.buf, version)
		if err != nil {
			return versionsAt, TorLinkCells, err
		}
		if n == 0 {
			if err := r.fill(tc); err != nil {
				return versionsAt, TorLinkCells, fmt.Errorf("reading the cells after VERSIONS: %w", err)
			}
			continue
		}
		r.consume(n)
		switch cmd {
		case cmdPadding, cmdVPadding, cmdAuthChallenge:
		case cmdCerts:
			sawCerts = true
		case cmdNetinfo:
			if !sawCerts {
				return versionsAt, TorLinkCells, errors.New("NETINFO before CERTS")
			}
			var other netip.Addr
			if a, ok := l.remote.(*net.TCPAddr); ok {
				other = a.AddrPort().Addr().Unmap()
			}
			if _, err := tc.Write(appendNetinfoCell(nil, version, other)); err != nil {
				return versionsAt, TorLinkTLS, err
			}
			return versionsAt, 0, nil
		default:
			return versionsAt, TorLinkCells, fmt.Errorf("unexpected cell command %d in the link handshake", cmd)
		}
	}
}

// cellReader accumulates the bytes the link handshake reads.
type cellReader struct{ buf []byte }

func (r *cellReader) fill(c net.Conn) error {
	var tmp [4096]byte
	n, err := c.Read(tmp[:])
	r.buf = append(r.buf, tmp[:n]...)
	if n > 0 {
		return nil
	}
	return err
}

func (r *cellReader) consume(n int) { r.buf = r.buf[:copy(r.buf, r.buf[n:])] }
