//go:build linux

package proxyproto_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec/proxyproto"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

var (
	lo4       = netip.MustParseAddr("127.0.0.1")
	lo4client = netip.MustParseAddr("127.0.0.7")
)

// TestHAProxy is the real-peer check: haproxy, in a loopback-only namespace, relays a client
// to a listener the test owns, with send-proxy-v2 and with send-proxy, the client coming in
// over IPv4 (from 127.0.0.7, so that its address differs from haproxy's) or IPv6 (::1); the
// header that arrives must name the client's own address and the frontend's, with the
// client's first bytes intact right behind it. A last run has haproxy health-check the
// listener with check-send-proxy, which must arrive as a version 2 LOCAL header.
func TestHAProxy(t *testing.T) {
	for _, c := range []struct {
		name, option  string
		version       uint8
		client, front netip.Addr
	}{
		{"send-proxy-v2 IPv4", "send-proxy-v2", 2, lo4client, lo4},
		{"send-proxy-v2 IPv6", "send-proxy-v2", 2, netip.IPv6Loopback(), netip.IPv6Loopback()},
		{"send-proxy IPv4", "send-proxy", 1, lo4client, lo4},
		{"send-proxy IPv6", "send-proxy", 1, netip.IPv6Loopback(), netip.IPv6Loopback()},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := pttest.NewNetNS(t)
			backend := listen(t, ns, lo4)
			front := freePort(t, ns, c.front)
			h := pttest.StartHAProxy(t, ns, haproxyConfig(front, backend.Addr().String(), "server s1 %s "+c.option))

			payload := []byte("\x00\x01obfs4 client handshake stand-in\r\n")
			client := dialRetry(t, h, front, c.client)
			defer client.Close()
			if _, err := client.Write(payload); err != nil {
				t.Fatal(err)
			}
			conn := accept(t, backend)
			defer conn.Close()
			hdr, rest := readHeader(t, conn)
			want := proxyproto.Header{
				Version:     c.version,
				Source:      netip.MustParseAddrPort(client.LocalAddr().String()),
				Destination: front,
			}
			if hdr != want {
				t.Fatalf("header %+v, want %+v", hdr, want)
			}
			got := append(rest, make([]byte, len(payload)-len(rest))...)
			if _, err := io.ReadFull(conn, got[len(rest):]); err != nil {
				t.Fatal(err)
			}
			if string(got) != string(payload) {
				t.Fatalf("after the header: %q, want %q", got, payload)
			}
		})
	}

	t.Run("check-send-proxy", func(t *testing.T) {
		ns := pttest.NewNetNS(t)
		backend := listen(t, ns, lo4)
		front := freePort(t, ns, lo4)
		pttest.StartHAProxy(t, ns, haproxyConfig(front, backend.Addr().String(),
			"server s1 %s send-proxy-v2 check check-send-proxy inter 200ms"))
		conn := accept(t, backend)
		defer conn.Close()
		hdr, _ := readHeader(t, conn)
		if want := (proxyproto.Header{Version: 2, Local: true}); hdr != want {
			t.Fatalf("health check header %+v, want %+v", hdr, want)
		}
	})
}

// haproxyConfig is a TCP relay from 127.0.0.1 at front to backend; server is the server
// line, with %s for the backend's address.
func haproxyConfig(front netip.AddrPort, backend, server string) string {
	return fmt.Sprintf(`global
	maxconn 64
defaults
	mode tcp
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend fe
	bind %s
	default_backend be
backend be
	`+server+`
`, front, backend)
}

// listen listens on a free port of addr in ns.
func listen(t *testing.T, ns *pttest.NetNS, addr netip.Addr) net.Listener {
	t.Helper()
	l, err := ns.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// freePort is a port of addr in ns that nothing listens on, for haproxy's frontend.
func freePort(t *testing.T, ns *pttest.NetNS, addr netip.Addr) netip.AddrPort {
	t.Helper()
	l := listen(t, ns, addr)
	ap := netip.MustParseAddrPort(l.Addr().String())
	l.Close()
	return ap
}

// dialRetry dials the frontend from local, in haproxy's namespace, until haproxy has bound
// it.
func dialRetry(t *testing.T, h *pttest.HAProxy, front netip.AddrPort, local netip.Addr) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0)), Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var c net.Conn
		err := h.NS.Do(func() (err error) {
			c, err = d.Dial("tcp", front.String())
			return err
		})
		if err == nil {
			return c
		}
		select {
		case <-h.Exited():
			t.Fatalf("haproxy exited: %s", h.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy frontend %v: %v\n%s", front, err, h.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func accept(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	l.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// readHeader reads from conn in whatever pieces arrive until Parse has a header, and returns
// it with the bytes that came after it in the same reads.
func readHeader(t *testing.T, conn net.Conn) (proxyproto.Header, []byte) {
	t.Helper()
	var buf []byte
	chunk := make([]byte, 4096)
	for {
		k, err := conn.Read(chunk)
		buf = append(buf, chunk[:k]...)
		n, h, perr := proxyproto.Parse(buf)
		if perr == nil {
			t.Logf("%d-byte header: % x", n, buf[:n])
			return h, buf[n:]
		}
		if !errors.Is(perr, proxyproto.ErrIncomplete) {
			t.Fatalf("Parse(% x): %v", buf, perr)
		}
		if err != nil {
			t.Fatalf("after % x: %v", buf, err)
		}
	}
}
