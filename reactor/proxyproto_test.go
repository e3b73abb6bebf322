package reactor

import (
	"bytes"

	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// proxiedServer starts an obfs4 server engine that feeds e and expects PROXY headers from
// ranges, and an obfs4 client engine; it returns the SOCKS address, the server's address,
// the client's SOCKS arguments and the log.
func proxiedServer(t *testing.T, e *pttest.ExtORPort, ranges ...string) (socksAddr, srvAddr, args string, logs *logSink) {
	t.Helper()
	logs = &logSink{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var prefixes []netip.Prefix
	for _, r := range ranges {
		prefixes = append(prefixes, netip.MustParsePrefix(r))
	}
	srv, err := New(Config{Logger: log.With("side", "server"), Transports: testTransports(), StateDir: t.TempDir(),
		ExtORPort: addrPort(t, e.Addr), AuthCookieFile: e.CookieFile, ProxyProtocol: prefixes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	sa, sargs, err := srv.ListenServer("obfs4", "127.0.0.1:0", codec.Args{})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := sargs.Get("cert")
	cli, err := New(Config{Logger: log.With("side", "client"), Transports: testTransports()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ca, err := cli.ListenClient("obfs4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ca.String(), sa.String(), "cert=" + cert + ";iat-mode=0", logs
}

// balancer stands in for HAProxy: it relays each connection to dst, first writing the
// header header(c) makes for it.
func balancer(t *testing.T, dst string, header func(c net.Conn) []byte) string {
	return listen(t, func(c net.Conn) {
		up, err := net.Dial("tcp", dst)
		if err != nil {
			return
		}
		defer up.Close()
		if _, err := up.Write(header(c)); err != nil {
			return
		}
		go func() { io.Copy(up, c); up.Close() }()
		io.Copy(c, up)
	})
}

func echoThrough(t *testing.T, socksAddr, target, args string) {
	t.Helper()
	c, rep, err := socksDial(socksAddr, target, args)
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v", rep, err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("behind a balancer "), 1000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %v", err)
	}
}

// TestProxyProtocol: a connection from a balancer range names its client in a PROXY
// header, and that client is the USERADDR tor is told; a LOCAL header leaves the balancer
// as the client.
func TestProxyProtocol(t *testing.T) {
	e := pttest.StartExtORPort(t, harness.ExtOROptions{})
	socksAddr, srvAddr, args, logs := proxiedServer(t, e, "127.0.0.0/8")
	v1 := balancer(t, srvAddr, func(net.Conn) []byte { return []byte("PROXY TCP4 203.0.113.7 127.0.0.1 4444 443\r\n") })
	v2local := balancer(t, srvAddr, func(net.Conn) []byte {
		return append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x20, 0x00, 0x00, 0x00)
	})
	echoThrough(t, socksAddr, v1, args)
	echoThrough(t, socksAddr, v2local, args)
	s := e.WaitSessions(t, 2, 10*time.Second)
	if s[0].UserAddr != "203.0.113.7:4444" {
		t.Errorf("USERADDR %q through a v1 header, want 203.0.113.7:4444\n%s", s[0].UserAddr, logs)
	}
	if !strings.HasPrefix(s[1].UserAddr, "127.0.0.1:") {
		t.Errorf("USERADDR %q through a LOCAL header, want the balancer's 127.0.0.1:port", s[1].UserAddr)
	}
}

// TestProxyProtocolMissing: a client that reaches the bridge from a balancer range without
// a header, or with garbage, gets what a failed handshake gets: no answer, the connection
// held, tor never dialed.
func TestProxyProtocolMissing(t *testing.T) {
	e := pttest.StartExtORPort(t, harness.ExtOROptions{})
	_, srvAddr, _, logs := proxiedServer(t, e, "127.0.0.1/32")
	for _, send := range [][]byte{bytes.Repeat([]byte{0x5a}, 4000), []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n")} {
		c, err := net.Dial("tcp", srvAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(send)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		var one [1]byte
		if n, err := c.Read(one[:]); n > 0 || !isTimeout(err) {
			t.Fatalf("sent %q...: read %d bytes, %v; want no answer and the conn held", send[:8], n, err)
		}
	}
	if n := len(e.Sessions()); n != 0 {
		t.Errorf("tor was dialed %d times", n)
	}
	if got := strings.Count(logs.String(), "bad PROXY protocol header"); got != 2 {
		t.Errorf("%d bad-header log lines, want 2\n%s", got, logs)
	}
}

// TestProxyProtocolOtherSources: with a balancer range that does not hold the client, the
// client is served as ever, with no header, and is its own USERADDR.
func TestProxyProtocolOtherSources(t *testing.T) {
	e := pttest.StartExtORPort(t, harness.ExtOROptions{})
	socksAddr, srvAddr, args, _ := proxiedServer(t, e, "10.0.0.0/8", "2001:db8::/32")
	echoThrough(t, socksAddr, srvAddr, args)
	if s := e.WaitSessions(t, 1, 10*time.Second); !strings.HasPrefix(s[0].UserAddr, "127.0.0.1:") {
		t.Errorf("USERADDR %q, want the client's own 127.0.0.1:port", s[0].UserAddr)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
