package reactor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec/extor"
	"github.com/ptreactor/ptreactor/codec/upstream"
	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// testCtx bounds each dial of a test; no test waits on it unless it says so.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustDialer(t *testing.T, cfg Config) *dialer {
	t.Helper()
	d, err := newDialer(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// expectEcho checks that c is a working connection to an echo peer, and that nothing was
// lost before it: want is what the peer sends first (a banner), or nil.
func expectEcho(t *testing.T, c net.Conn, want []byte) {
	t.Helper()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Fatalf("conn is a %T, not a *net.TCPConn the loop can take over", c)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	msg := []byte("ping through the tunnel")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want)+len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v (got %q)", err, got)
	}
	if !bytes.Equal(got, append(append([]byte(nil), want...), msg...)) {
		t.Fatalf("got %q, want %q then %q", got, want, msg)
	}
}

func TestDialBridgeDirect(t *testing.T) {
	or := pttest.StartORPort(t, nil)
	d := mustDialer(t, Config{})
	c, err := d.dialBridge(testCtx(t), or.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectEcho(t, c, nil)

	// A name, as a bridge line may carry, resolves.
	_, port, _ := net.SplitHostPort(or.Addr)
	c2, err := d.dialBridge(testCtx(t), net.JoinHostPort("localhost", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	expectEcho(t, c2, nil)
}

func TestDialBridgeRefused(t *testing.T) {
	d := mustDialer(t, Config{})
	_, err := d.dialBridge(testCtx(t), deadAddr(t))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err %v, want ECONNREFUSED", err)
	}
	if k := classifyDial(err); k != DialRefused {
		t.Errorf("counted as %v, want %v", k, DialRefused)
	}
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestDialBridgeThroughProxies(t *testing.T) {
	banner := []byte("the bridge speaks first")
	for _, tc := range []struct {
		scheme string
		opts   pttest.ProxyOptions
	}{
		{"socks5", pttest.ProxyOptions{}},
		{"socks5", pttest.ProxyOptions{User: "tor", Pass: "test1234", DomainReply: true}},
		{"socks4a", pttest.ProxyOptions{}},
		{"socks4a", pttest.ProxyOptions{User: "alice"}},
		{"http", pttest.ProxyOptions{}},
		{"http", pttest.ProxyOptions{User: "user", Pass: "pa:ss"}},
	} {
		tc.opts.FirstBytes = true
		bridge := pttest.StartORPort(t, harness.Banner(banner))
		p := pttest.StartProxy(t, tc.scheme, tc.opts)
		d := mustDialer(t, Config{Proxy: proxyOf(t, p.URL)})
		c, err := d.dialBridge(testCtx(t), bridge.Addr)
		if err != nil {
			t.Fatalf("%s: %v", p.URL, err)
		}
		// The proxy sent the bridge's banner in the same write as its reply: a handshake
		// that read past the reply would have eaten it.
		expectEcho(t, c, banner)
		c.Close()
		if p.Tunnels() != 1 || len(p.Targets()) != 1 || p.Targets()[0] != bridge.Addr {
			t.Fatalf("%s: tunnels %d, targets %v", p.URL, p.Tunnels(), p.Targets())
		}
	}
}

func TestDialBridgeProxyName(t *testing.T) {
	// The proxy resolves names; the client must pass them on, not resolve them itself.
	bridge := pttest.StartORPort(t, nil)
	_, port, _ := net.SplitHostPort(bridge.Addr)
	for _, scheme := range []string{"socks5", "socks4a", "http"} {
		p := pttest.StartProxy(t, scheme, pttest.ProxyOptions{})
		d := mustDialer(t, Config{Proxy: proxyOf(t, p.URL)})
		target := net.JoinHostPort("localhost", port)
		c, err := d.dialBridge(testCtx(t), target)
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		expectEcho(t, c, nil)
		c.Close()
		if got := p.Targets(); len(got) != 1 || got[0] != target {
			t.Fatalf("%s: targets %v", scheme, got)
		}
	}
}

func TestDialBridgeProxyWrongCredentials(t *testing.T) {
	for _, tc := range []struct {
		scheme string
		opts   pttest.ProxyOptions
		user   *url.Userinfo
	}{
		{"socks5", pttest.ProxyOptions{User: "tor", Pass: "right"}, url.UserPassword("tor", "wrong")},
		{"socks5", pttest.ProxyOptions{User: "tor", Pass: "right"}, nil},
		{"socks4a", pttest.ProxyOptions{User: "alice"}, url.User("mallory")},
		{"http", pttest.ProxyOptions{User: "u", Pass: "right"}, url.UserPassword("u", "wrong")},
		{"http", pttest.ProxyOptions{User: "u", Pass: "right"}, nil},
	} {
		bridge := pttest.StartORPort(t, nil)
		p := pttest.StartProxy(t, tc.scheme, tc.opts)
		u := *p.URL
		u.User = tc.user
		d := mustDialer(t, Config{Proxy: proxyOf(t, &u)})
		_, err := d.dialBridge(testCtx(t), bridge.Addr)
		if !errors.Is(err, upstream.ErrAuth) {
			t.Errorf("%s: err %v, want ErrAuth", u.String(), err)
		}
		if p.Refusals() != 1 || p.Tunnels() != 0 || len(bridge.Remotes()) != 0 {
			t.Errorf("%s: refusals %d tunnels %d bridge conns %d", u.String(), p.Refusals(), p.Tunnels(), len(bridge.Remotes()))
		}
	}
}

func TestDialBridgeProxyReplyCodes(t *testing.T) {
	for code, want := range map[byte]error{
		3: syscall.ENETUNREACH,
		4: syscall.EHOSTUNREACH,
		5: syscall.ECONNREFUSED,
		6: syscall.ETIMEDOUT,
	} {
		p := pttest.StartProxy(t, "socks5", pttest.ProxyOptions{Reply: code})
		d := mustDialer(t, Config{Proxy: proxyOf(t, p.URL)})
		_, err := d.dialBridge(testCtx(t), "198.51.100.7:443")
		if !errors.Is(err, want) {
			t.Errorf("reply %d: err %v, want %v", code, err, want)
		}
	}
	p := pttest.StartProxy(t, "socks5", pttest.ProxyOptions{Reply: 1})
	d := mustDialer(t, Config{Proxy: proxyOf(t, p.URL)})
	_, err := d.dialBridge(testCtx(t), "198.51.100.7:443")
	var re *upstream.ReplyError
	if !errors.As(err, &re) || re.Code != 1 {
		t.Errorf("reply 1: err %v", err)
	}

	hp := pttest.StartProxy(t, "http", pttest.ProxyOptions{HTTPStatus: 403})
	d = mustDialer(t, Config{Proxy: proxyOf(t, hp.URL)})
	if _, err := d.dialBridge(testCtx(t), "198.51.100.7:443"); !errors.As(err, &re) || re.Code != 403 {
		t.Errorf("http 403: err %v", err)
	}
}

func TestDialBridgeProxyRealRefusal(t *testing.T) {
	// The proxy really connects, to a port where nothing listens: the refusal travels back
	// as reply 5 and comes out as ECONNREFUSED.
	p := pttest.StartProxy(t, "socks5", pttest.ProxyOptions{})
	d := mustDialer(t, Config{Proxy: proxyOf(t, p.URL)})
	if _, err := d.dialBridge(testCtx(t), deadAddr(t)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err %v, want ECONNREFUSED", err)
	}
}

func TestDialBridgeFailsClosed(t *testing.T) {
	// With the proxy down, the bridge must not be reached some other way.
	bridge := pttest.StartORPort(t, nil)
	d := mustDialer(t, Config{Proxy: &upstream.Proxy{Scheme: "socks5", Addr: addrPort(t, deadAddr(t))}})
	_, err := d.dialBridge(testCtx(t), bridge.Addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err %v, want ECONNREFUSED", err)
	}
	if n := len(bridge.Remotes()); n != 0 {
		t.Fatalf("the bridge saw %d direct connections", n)
	}
}

// silentServer accepts and reads, and never answers.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestDialBridgeProxyTimeoutAndCancel(t *testing.T) {
	d := mustDialer(t, Config{Proxy: &upstream.Proxy{Scheme: "socks5", Addr: addrPort(t, silentServer(t))}})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := d.dialBridge(ctx, "198.51.100.7:443")
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err %v, want a deadline error", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = d.dialBridge(ctx, "198.51.100.7:443")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestBindFor(t *testing.T) {
	d := mustDialer(t, Config{
		OutboundBindV4: netip.MustParseAddr("203.0.113.4"),
		OutboundBindV6: netip.MustParseAddr("2001:db8::4"),
	})
	for dst, want := range map[string]string{
		"198.51.100.7":     "203.0.113.4",
		"::ffff:1.2.3.4":   "203.0.113.4",
		"2001:db8:1::1":    "2001:db8::4",
		"127.0.0.1":        "invalid IP",
		"127.3.2.1":        "invalid IP",
		"::1":              "invalid IP",
		"::ffff:127.0.0.1": "invalid IP",
	} {
		if got := d.bindFor(netip.MustParseAddr(dst).Unmap()).String(); got != want {
			t.Errorf("bindFor(%s) = %s, want %s", dst, got, want)
		}
	}
	if got := mustDialer(t, Config{}).bindFor(netip.MustParseAddr("198.51.100.7")); got.IsValid() {
		t.Errorf("unset bind address gave %v", got)
	}
}

func TestOutboundBindIgnoredForLoopback(t *testing.T) {
	// 127.0.0.2 is a local address, so a wrongly applied bind would succeed and show.
	bridge := pttest.StartORPort(t, nil)
	p := pttest.StartProxy(t, "socks5", pttest.ProxyOptions{})
	for _, cfg := range []Config{
		{OutboundBindV4: netip.MustParseAddr("127.0.0.2")},
		{OutboundBindV4: netip.MustParseAddr("127.0.0.2"), Proxy: proxyOf(t, p.URL)},
	} {
		d := mustDialer(t, cfg)
		c, err := d.dialBridge(testCtx(t), bridge.Addr)
		if err != nil {
			t.Fatal(err)
		}
		src := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr()
		c.Close()
		if src == netip.MustParseAddr("127.0.0.2") {
			t.Errorf("proxy %v: loopback destination dialed from the bind address", cfg.Proxy)
		}
	}
}

func TestOutboundBindApplied(t *testing.T) {
	// The bind itself, exercised by dialTCP with a source, as it is for a non-loopback
	// destination: the loopback range stands in for one here.
	or := pttest.StartORPort(t, nil)
	d := mustDialer(t, Config{})
	c, err := d.dialTCP(testCtx(t), netip.MustParseAddrPort(or.Addr), netip.MustParseAddr("127.0.0.9"), keepAliveNetwork)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if src := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); src != netip.MustParseAddr("127.0.0.9") {
		t.Fatalf("source %v, want 127.0.0.9", src)
	}
	expectEcho(t, c, nil)
}

func TestDialTorORPort(t *testing.T) {
	or := pttest.StartORPort(t, harness.Banner([]byte("hello")))
	d := mustDialer(t, Config{ORPort: addrPort(t, or.Addr)})
	c, err := d.dialTor(testCtx(t), &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 1}, "obfs4")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectEcho(t, c, []byte("hello"))
}

func TestDialTorORSource(t *testing.T) {
	or := pttest.StartORPort(t, nil)
	d := mustDialer(t, Config{ORPort: addrPort(t, or.Addr), ORSource: netip.MustParsePrefix("127.0.0.0/8")})
	const n = 20
	for i := 0; i < n; i++ {
		c, err := d.dialTor(testCtx(t), nil, "obfs4")
		if err != nil {
			t.Fatal(err)
		}
		expectEcho(t, c, nil) // and so the stand-in has recorded it
		c.Close()
	}
	seen := map[netip.Addr]bool{}
	for _, r := range or.Remotes() {
		a := r.Addr()
		if !netip.MustParsePrefix("127.0.0.0/8").Contains(a) || a == netip.MustParseAddr("127.0.0.0") ||
			a == netip.MustParseAddr("127.255.255.255") {
			t.Fatalf("source %v outside the usable range", a)
		}
		seen[a] = true
	}
	if len(or.Remotes()) != n || len(seen) != n {
		t.Fatalf("%d connections from %d distinct sources, want %d from %d", len(or.Remotes()), len(seen), n, n)
	}
}

func TestNextSource(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		n      int // distinct addresses expected over 2n picks
	}{
		{"127.0.0.1/32", 1},
		{"127.0.0.0/31", 2},
		{"127.0.0.0/30", 2},
		{"10.1.2.0/24", 254},
		{"::1/128", 1},
		{"fd00::/120", 254},
	} {
		p := netip.MustParsePrefix(tc.prefix)
		d := mustDialer(t, Config{ORSource: p})
		seen := map[netip.Addr]bool{}
		for i := 0; i < 2*tc.n; i++ {
			a := d.nextSource()
			if !p.Contains(a) {
				t.Fatalf("%s: picked %v", tc.prefix, a)
			}
			seen[a] = true
		}
		if len(seen) != tc.n {
			t.Errorf("%s: %d distinct sources, want %d", tc.prefix, len(seen), tc.n)
		}
	}
	// A huge range stays inside itself.
	d := mustDialer(t, Config{ORSource: netip.MustParsePrefix("2001:db8::/32")})
	for i := 0; i < 1000; i++ {
		if a := d.nextSource(); !netip.MustParsePrefix("2001:db8::/32").Contains(a) {
			t.Fatalf("picked %v", a)
		}
	}
}

func TestDialTorExtORPort(t *testing.T) {
	e := pttest.StartExtORPort(t, harness.ExtOROptions{Handler: harness.Banner([]byte("cell"))})
	d := mustDialer(t, Config{ExtORPort: addrPort(t, e.Addr), AuthCookieFile: e.CookieFile, ORPort: addrPort(t, deadAddr(t))})
	clients := []*net.TCPAddr{
		{IP: net.ParseIP("198.51.100.7"), Port: 54321},
		{IP: net.ParseIP("2001:db8::7"), Port: 443},
	}
	for _, client := range clients {
		c, err := d.dialTor(testCtx(t), client, "obfs4")
		if err != nil {
			t.Fatal(err)
		}
		expectEcho(t, c, []byte("cell"))
		c.Close()
	}
	ss := e.WaitSessions(t, 2, 10*time.Second)
	for i, want := range []string{"198.51.100.7:54321", "[2001:db8::7]:443"} {
		s := ss[i]
		if !s.AuthOK || !s.Okay || s.EarlyData || s.UserAddr != want || s.Transport != "obfs4" ||
			len(s.Commands) != 3 || s.Commands[0] != 1 || s.Commands[1] != 2 || s.Commands[2] != 0 {
			t.Errorf("session %d: %+v", i, s)
		}
	}
}

func TestDialTorExtORPortCookieReread(t *testing.T) {
	e := pttest.StartExtORPort(t, harness.ExtOROptions{})
	d := mustDialer(t, Config{ExtORPort: addrPort(t, e.Addr), AuthCookieFile: e.CookieFile})
	for i := 0; i < 3; i++ {
		c, err := d.dialTor(testCtx(t), nil, "obfs4")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		c.Close()
		if err := e.RewriteCookie(); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range e.WaitSessions(t, 3, 10*time.Second) {
		if !s.AuthOK || !s.Okay || s.UserAddr != "" || len(s.Commands) != 2 {
			t.Errorf("session %+v", s)
		}
	}

	// A broken or missing cookie file fails that connection, before connecting.
	if err := os.WriteFile(e.CookieFile, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.dialTor(testCtx(t), nil, "obfs4"); !errors.Is(err, extor.ErrCookieFile) || classifyDial(err) != DialCookieFile {
		t.Errorf("short cookie file: %v (counted as %v)", err, classifyDial(err))
	}
	os.Remove(e.CookieFile)
	if _, err := d.dialTor(testCtx(t), nil, "obfs4"); !errors.Is(err, os.ErrNotExist) || classifyDial(err) != DialCookieFile {
		t.Errorf("missing cookie file: %v (counted as %v)", err, classifyDial(err))
	}
	if got := len(e.Sessions()); got != 3 {
		t.Errorf("%d sessions, want 3", got)
	}
}

func TestDialTorExtORPortFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts harness.ExtOROptions
		want error
		kind DialFailure // what Stats counts it as
	}{
		{"bad server hash", harness.ExtOROptions{BadServerHash: true}, extor.ErrServerHash, DialAuth},
		{"client rejected", harness.ExtOROptions{RejectClient: true}, extor.ErrAuthFailed, DialAuth},
		{"deny", harness.ExtOROptions{Deny: true}, extor.ErrDenied, DialDenied},
		{"deny after unknown reply", harness.ExtOROptions{Deny: true, UnknownReply: true}, extor.ErrDenied, DialDenied},
		{"no safe cookie", harness.ExtOROptions{AuthTypes: []byte{2, 3}}, extor.ErrNoSafeCookie, DialAuth},
	} {
		e := pttest.StartExtORPort(t, tc.opts)
		d := mustDialer(t, Config{ExtORPort: addrPort(t, e.Addr), AuthCookieFile: e.CookieFile})
		_, err := d.dialTor(testCtx(t), nil, "obfs4")
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
		if k := classifyDial(err); k != tc.kind {
			t.Errorf("%s: counted as %v, want %v", tc.name, k, tc.kind)
		}
		s := e.WaitSessions(t, 1, 10*time.Second)[0]
		if s.Okay {
			t.Errorf("%s: session %+v", tc.name, s)
		}
		if tc.opts.BadServerHash && s.AuthOK {
			t.Errorf("%s: the client answered a wrong server hash", tc.name)
		}
	}

	if _, err := mustDialer(t, Config{ExtORPort: addrPort(t, deadAddr(t)), AuthCookieFile: "x"}).dialTor(testCtx(t), nil, "ob-fs4"); !errors.Is(err, extor.ErrTransport) {
		t.Errorf("bad transport name: %v", err)
	}
}

func TestDialTorExtORPortTolerance(t *testing.T) {
	// Unknown replies are ignored, and a slow OKAY is waited for without sending OR bytes.
	e := pttest.StartExtORPort(t, harness.ExtOROptions{UnknownReply: true, OkayDelay: 50 * time.Millisecond})
	d := mustDialer(t, Config{ExtORPort: addrPort(t, e.Addr), AuthCookieFile: e.CookieFile})
	c, err := d.dialTor(testCtx(t), nil, "obfs4")
	if err != nil {
		t.Fatal(err)
	}
	expectEcho(t, c, nil)
	c.Close()
	if s := e.WaitSessions(t, 1, 10*time.Second)[0]; !s.Okay || s.EarlyData {
		t.Fatalf("session %+v", s)
	}
}

func TestDialTorExtORPortTimeout(t *testing.T) {
	// A port that never speaks: the 5 s bound ends the setup even though the caller's
	// context has none.
	cookie := t.TempDir() + "/cookie"
	if err := harness.WriteCookieFile(cookie, [32]byte{}); err != nil {
		t.Fatal(err)
	}
	d := mustDialer(t, Config{ExtORPort: addrPort(t, silentServer(t)), AuthCookieFile: cookie})
	_, err := d.dialTor(context.Background(), nil, "obfs4")
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err %v, want a deadline error", err)
	}
	if k := classifyDial(err); k != DialTimedOut {
		t.Errorf("counted as %v, want %v", k, DialTimedOut)
	}
}

// TestNewDialer: the values come validated from lifecycle; the dialer checks only how they
// go together.
func TestNewDialer(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	or := netip.MustParseAddrPort("127.0.0.1:1")
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"empty", Config{}, true},
		{"socks5", Config{Proxy: &upstream.Proxy{Scheme: "socks5", Addr: netip.MustParseAddrPort("127.0.0.1:1080")}}, true},
		{"extor without cookie", Config{ExtORPort: or}, false},
		{"orport", Config{ORPort: or}, true},
		{"source range", Config{ORPort: or, ORSource: netip.MustParsePrefix("127.0.0.0/8")}, true},
		{"source family", Config{ORPort: or, ORSource: netip.MustParsePrefix("fd00::/64")}, false},
		{"non-loopback extor", Config{ExtORPort: netip.MustParseAddrPort("192.0.2.1:9000"), AuthCookieFile: "x", Logger: log}, true},
	} {
		_, err := newDialer(&tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
		}
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "192.0.2.1:9000") {
		t.Errorf("no warning for a non-loopback ExtORPort: %q", logs.String())
	}
	logs.Reset()
	if _, err := newDialer(&Config{ExtORPort: netip.MustParseAddrPort("127.0.0.1:9000"), AuthCookieFile: "x", Logger: log}); err != nil || logs.Len() != 0 {
		t.Errorf("loopback ExtORPort: %v, logs %q", err, logs.String())
	}
	if _, err := mustDialer(t, Config{}).dialTor(testCtx(t), nil, "obfs4"); err == nil {
		t.Error("dialTor without an ORPort succeeded")
	}
}

func TestParsePort(t *testing.T) {
	for s, want := range map[string]int{"1": 1, "443": 443, "65535": 65535, "0": -1, "65536": -1, "": -1, "+1": -1, "99999": -1, "0080": 80} {
		p, err := parsePort(s)
		if (err != nil) != (want < 0) || (err == nil && int(p) != want) {
			t.Errorf("parsePort(%q) = %d, %v", s, p, err)
		}
	}
}

// startBridgeTor runs a real tor as a bridge with an Extended ORPort on loopback and returns
// the ExtORPort's address and cookie file. Its only directory authority is a dead loopback
// address, so it never reaches the network.
func startBridgeTor(t *testing.T) (extORPort, cookieFile string) {
	t.Helper()
	torBin, err := exec.LookPath("tor")
	if err != nil {
		t.Fatal("tor is not installed (make deps installs it)")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	torrc := strings.Join([]string{
		"DataDirectory " + data,
		"SocksPort 0",
		"ORPort 127.0.0.1:auto",
		"ExtORPort 127.0.0.1:auto",
		"BridgeRelay 1",
		"PublishServerDescriptor 0",
		"AssumeReachable 1",
		"Address 127.0.0.1",
		"UseDefaultFallbackDirs 0",
		"DirAuthority dead orport=1 no-v2 v3ident=0000000000000000000000000000000000000000 127.0.0.1:1 0000000000000000000000000000000000000000",
		"Log notice stdout",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "torrc"), []byte(torrc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(torBin, "-f", filepath.Join(dir, "torrc"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody listens any more; keep draining
			}
		}
		close(lines)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	const opened = "Opened Extended OR listener connection (ready) on "
	timeout := time.After(60 * time.Second)
	for extORPort == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("tor exited before opening its Extended ORPort")
			}
			if i := strings.Index(l, opened); i >= 0 {
				extORPort = strings.TrimSpace(l[i+len(opened):])
			}
		case <-timeout:
			t.Fatal("tor did not open its Extended ORPort within 60 s")
		}
	}
	// tor writes the cookie around the time it opens the port.
	cookieFile = filepath.Join(data, "extended_orport_auth_cookie")
	for {
		if fi, err := os.Stat(cookieFile); err == nil && fi.Size() == extor.CookieFileSize {
			return extORPort, cookieFile
		}
		select {
		case <-timeout:
			t.Fatal("tor wrote no auth cookie within 60 s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestDialTorRealTor runs the Extended ORPort handshake against tor itself: tor checks our
// client hash and our commands, and after its OKAY the connection is tor's ORPort, which
// answers a TLS handshake. A foreign cookie makes tor's server hash wrong, and the dial fails.
func TestDialTorRealTor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tor")
	}
	extORPort, cookieFile := startBridgeTor(t)
	d := mustDialer(t, Config{ExtORPort: addrPort(t, extORPort), AuthCookieFile: cookieFile})
	for _, client := range []net.Addr{
		&net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 54321},
		&net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 443},
	} {
		c, err := d.dialTor(testCtx(t), client, "obfs4")
		if err != nil {
			t.Fatalf("client %v: %v", client, err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("client %v: TLS with tor's ORPort after OKAY: %v", client, err)
		}
		tc.Close()
	}

	foreign := filepath.Join(t.TempDir(), "cookie")
	if err := harness.WriteCookieFile(foreign, [32]byte{1}); err != nil {
		t.Fatal(err)
	}
	d = mustDialer(t, Config{ExtORPort: addrPort(t, extORPort), AuthCookieFile: foreign})
	if _, err := d.dialTor(testCtx(t), nil, "obfs4"); !errors.Is(err, extor.ErrServerHash) {
		t.Fatalf("foreign cookie: err %v, want ErrServerHash", err)
	}
}

// BenchmarkDialTorExtORPort is the cost of one Extended ORPort setup against the stand-in:
// connect, cookie file read, SAFE_COOKIE and the commands.
func BenchmarkDialTorExtORPort(b *testing.B) {
	e := pttest.StartExtORPort(b, harness.ExtOROptions{Handler: func(net.Conn) {}})
	cfg := Config{ExtORPort: addrPort(b, e.Addr), AuthCookieFile: e.CookieFile}
	d, err := newDialer(&cfg)
	if err != nil {
		b.Fatal(err)
	}
	client := &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 54321}
	b.ReportAllocs()
	for b.Loop() {
		c, err := d.dialTor(context.Background(), client, "obfs4")
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkDialBridgeSOCKS5 is the cost of one connection through a SOCKS5 proxy with
// credentials, the proxy's own work included.
func BenchmarkDialBridgeSOCKS5(b *testing.B) {
	bridge := pttest.StartORPort(b, func(net.Conn) {})
	p := pttest.StartProxy(b, "socks5", pttest.ProxyOptions{User: "tor", Pass: "test1234"})
	cfg := Config{Proxy: proxyOf(b, p.URL)}
	d, err := newDialer(&cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := d.dialBridge(context.Background(), bridge.Addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
