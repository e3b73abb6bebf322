package reactor

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/plain"
	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// logLines are the lines of log (slog's text form) at level whose message starts with msg.
func logLines(log, level, msg string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, " level="+level+" ") && strings.Contains(l, ` msg="`+msg) {
			out = append(out, l)
		}
	}
	return out
}

var countAttr = regexp.MustCompile(` count=(\d+)`)

// summed adds up the count= of lines.
func summed(t *testing.T, lines []string) int {
	t.Helper()
	n := 0
	for _, l := range lines {
		m := countAttr.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("summary line without a count: %s", l)
		}
		k, _ := strconv.Atoi(m[1])
		n += k
	}
	return n
}

// waitLog polls logs until cond holds or timeout passes, and reports whether it held.
func waitLog(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// failingServer starts a plain server engine with cfg (its logger and transports set
// here), whose every connection dials tor at once.
func failingServer(t *testing.T, cfg Config) (addr string, logs *logSink) {
	t.Helper()
	logs = &logSink{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Transports = testTransports()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	a, _, err := srv.ListenServer(plain.Name, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	return a.String(), logs
}

// connectAndWaitClose opens n conns to addr at once and waits until the PT has closed each
// (its dial to tor failed); a conn still open after 10 s fails the test.
func connectAndWaitClose(t *testing.T, addr string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.Write([]byte("payload for a tor that will not take it"))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadAll(c); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					errs <- errors.New("the PT did not close a conn whose tor connection failed")
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestFirstFailureWarnings: a failure the operator can fix is logged at warning within a
// second of the first connection it hits, once however many connections it hits, with what
// to check; the repeats are summed up in the summary. Each case is a real tor stand-in (or
// none) that fails the Extended ORPort or ORPort connection one way, for 5 connections.
func TestFirstFailureWarnings(t *testing.T) {
	const conns = 5
	const every = 2 * time.Second
	for _, tc := range []struct {
		name  string
		cfg   func(t *testing.T) Config
		first string // the warning's message starts so
		also  string // ...and holds this
		sum   string // the summary's message starts so
	}{
		{"ExtORPort DENY", func(t *testing.T) Config {
			ext := pttest.StartExtORPort(t, harness.ExtOROptions{Deny: true})
			return Config{ExtORPort: addrPort(t, ext.Addr), AuthCookieFile: ext.CookieFile}
		}, "tor denied the Extended ORPort connection", "-proxy-protocol", "tor denied Extended ORPort connections: "},
		{"another tor's cookie", func(t *testing.T) Config {
			ext := pttest.StartExtORPort(t, harness.ExtOROptions{})
			other := pttest.StartExtORPort(t, harness.ExtOROptions{})
			return Config{ExtORPort: addrPort(t, ext.Addr), AuthCookieFile: other.CookieFile}
		}, "tor's server hash is wrong", "TOR_PT_AUTH_COOKIE_FILE=", "tor's server hash was wrong: "},
		{"client hash rejected", func(t *testing.T) Config {
			ext := pttest.StartExtORPort(t, harness.ExtOROptions{RejectClient: true})
			return Config{ExtORPort: addrPort(t, ext.Addr), AuthCookieFile: ext.CookieFile}
		}, "tor rejected our client hash", "TOR_PT_AUTH_COOKIE_FILE=", "our client hash was rejected: "},
		{"no cookie file", func(t *testing.T) Config {
			ext := pttest.StartExtORPort(t, harness.ExtOROptions{})
			return Config{ExtORPort: addrPort(t, ext.Addr), AuthCookieFile: filepath.Join(t.TempDir(), "missing")}
		}, "cannot read the Extended ORPort auth cookie", "missing", "the auth cookie file could not be read: "},
		{"ORPort refused", func(t *testing.T) Config {
			return Config{ORPort: addrPort(t, deadAddr(t))}
		}, "the ORPort TOR_PT_ORPORT=127.0.0.1:", "is tor running", "tor refused connections: "},
		{"ExtORPort refused", func(t *testing.T) Config {
			ext := pttest.StartExtORPort(t, harness.ExtOROptions{})
			return Config{ExtORPort: addrPort(t, deadAddr(t)), AuthCookieFile: ext.CookieFile}
		}, "the Extended ORPort TOR_PT_EXTENDED_SERVER_PORT=127.0.0.1:", "(port ", "tor refused connections: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg(t)
			cfg.FailureSummary = every
			addr, logs := failingServer(t, cfg)
			start := time.Now()
			done := make(chan struct{})
			go func() {
				defer close(done)
				connectAndWaitClose(t, addr, conns)
			}()
			if !waitLog(time.Second, func() bool { return len(logLines(logs.String(), "WARN", tc.first)) > 0 }) {
				t.Fatalf("no warning %q within a second; log:\n%s", tc.first, logs)
			}
			t.Logf("warned after %v", time.Since(start))
			<-done
			first := logLines(logs.String(), "WARN", tc.first)
			if len(first) != 1 {
				t.Fatalf("%d warnings for %d failures, want 1:\n%s", len(first), conns, strings.Join(first, "\n"))
			}
			if !strings.Contains(first[0], tc.also) {
				t.Errorf("the warning does not say %q: %s", tc.also, first[0])
			}
			// The repeats are summarised (a summary tick may fall amid them: then in two).
			if !waitLog(3*every, func() bool { return summed(t, logLines(logs.String(), "WARN", tc.sum)) >= conns-1 }) {
				t.Fatalf("summaries count %d repeats, want %d; log:\n%s", summed(t, logLines(logs.String(), "WARN", tc.sum)), conns-1, logs)
			}
			sums := logLines(logs.String(), "WARN", tc.sum)
			if n := summed(t, sums); n != conns-1 || !strings.Contains(sums[0], " more times in the last 2s") {
				t.Errorf("summaries %q, want %d repeats in all", sums, conns-1)
			}
			if n := len(logLines(logs.String(), "WARN", tc.first)); n != 1 {
				t.Errorf("%d warnings after the summary, want 1", n)
			}
			if n := len(logLines(logs.String(), "INFO", "outbound connections failed")); n != 0 {
				t.Errorf("an operator-fixable failure was also counted among the others")
			}
		})
	}
}

// TestFailureSpell: once a whole summary interval has passed without a failure of a kind,
// the next one is said at once again; within a spell, only the summary counts them.
func TestFailureSpell(t *testing.T) {
	addr, logs := failingServer(t, Config{ORPort: addrPort(t, deadAddr(t)), FailureSummary: 250 * time.Millisecond})
	connectAndWaitClose(t, addr, 1)
	if n := len(logLines(logs.String(), "WARN", "the ORPort ")); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logs)
	}
	// The tick after the first failure keeps its spell, the next one, a whole quiet
	// interval later, ends it; five intervals leave room for a slow ticker.
	time.Sleep(5 * 250 * time.Millisecond)
	connectAndWaitClose(t, addr, 1)
	if n := len(logLines(logs.String(), "WARN", "the ORPort ")); n != 2 {
		t.Fatalf("%d warnings after a quiet spell, want 2:\n%s", n, logs)
	}
}

// TestBridgeFailureCounted: a bridge that refuses the client is not this machine's to fix:
// no warning, a count at info in the summary.
func TestBridgeFailureCounted(t *testing.T) {
	logs := &logSink{}
	cli, err := New(Config{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Transports: testTransports(), FailureSummary: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ca, err := cli.ListenClient(plain.Name, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := deadAddr(t)
	for range 3 {
		if _, rep, err := socksDial(ca.String(), dead, ""); err != nil || rep == 0 {
			t.Fatalf("SOCKS to a dead bridge: reply %d, err %v", rep, err)
		}
	}
	if !waitLog(3*time.Second, func() bool { return summed(t, logLines(logs.String(), "INFO", "outbound connections failed: ")) == 3 }) {
		t.Fatalf("no summary of 3 failed bridge connections:\n%s", logs)
	}
	if w := logLines(logs.String(), "WARN", ""); len(w) != 0 {
		t.Fatalf("warnings for a bridge's refusal: %q", w)
	}
}

// TestOverloadHeld: past the tunnel limit, a bridge's obfs4 conn is held as a garbage
// handshake is (nothing read back, not closed) rather than closed at once, up to the hold
// bound; past that it is closed at once. Tunnels under the limit keep working, the limit
// is logged once per way, and once the held conns go, new tunnels are served again.
func TestOverloadHeld(t *testing.T) {
	const maxTunnels = 2
	or := listen(t, echo)
	logs := &logSink{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	lim := DefaultLimits()
	lim.MaxTunnels = maxTunnels
	srv, err := New(Config{Logger: log.With("side", "server"), Transports: testTransports(), Limits: lim,
		ORPort: addrPort(t, or), StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sa, sargs, err := srv.ListenServer("obfs4", "127.0.0.1:0", codec.Args{"iat-mode": {"0"}})
	if err != nil {
		t.Fatal(err)
	}
	srvAddr := sa.String()
	cert, _ := sargs.Get("cert")
	args := "cert=" + cert + ";iat-mode=0"
	cli, err := New(Config{Logger: log.With("side", "client"), Transports: testTransports()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ca, err := cli.ListenClient("obfs4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	socksAddr := ca.String()

	ping := func(c net.Conn, what string) {
		t.Helper()
		msg := []byte("ping " + what)
		c.Write(msg)
		got := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%s: echo %q, %v\n%s", what, got, err, logs)
		}
	}
	rng := rand.New(rand.NewSource(1))
	garbage := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", srvAddr)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 100)
		rng.Read(b)
		c.Write(b)
		return c
	}

	tunnel, rep, err := socksDial(socksAddr, srvAddr, args)
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v", rep, err)
	}
	defer tunnel.Close()
	ping(tunnel, "the first tunnel")
	prober := garbage() // a garbage handshake: the second tunnel, stalled
	defer prober.Close()
	// The hold bound of this limit: these are all held.
	var held []net.Conn
	for range overloadHoldLimit(maxTunnels) {
		c := garbage()
		defer c.Close()
		held = append(held, c)
	}
	// Past the bound: closed at once.
	shedStart := time.Now()
	shed := garbage()
	shed.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(shed)
	shedIn := time.Since(shedStart)
	shed.Close()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || shedIn > time.Second || len(got) > 0 {
		t.Fatalf("a conn past the hold bound: read %q, %v after %v; want closed at once", got, err, shedIn)
	}
	// The garbage handshake and the held conns look the same: nothing read, still open.
	holdStart := time.Now()
	until := holdStart.Add(1500 * time.Millisecond)
	for i, c := range append([]net.Conn{prober}, held...) {
		c.SetReadDeadline(until)
		var b [1]byte
		n, err := c.Read(b[:])
		if !errors.As(err, &ne) || !ne.Timeout() || n > 0 {
			t.Fatalf("conn %d (0: the garbage handshake; others: held): read %d bytes, %v after %v; want held for the stall", i, n, err, time.Since(holdStart))
		}
	}
	t.Logf("past the hold bound closed after %v; the garbage handshake and %d held conns still open after %v", shedIn, len(held), time.Since(holdStart))
	ping(tunnel, "the first tunnel, with the limit reached")

	// Said once each, at warning.
	if n := len(logLines(logs.String(), "WARN", "tunnel limit reached")); n != 2 {
		t.Errorf("%d tunnel limit warnings, want one held, one closed:\n%s", n, strings.Join(logLines(logs.String(), "WARN", ""), "\n"))
	}
	if w := logLines(logs.String(), "WARN", "tunnel limit reached"); len(w) == 2 && !(strings.Contains(w[0], "held") && strings.Contains(w[1], "closed at once")) {
		t.Errorf("warnings %q", w)
	}
	if srv.held.Load() != int64(len(held)) {
		t.Errorf("%d conns counted as held, want %d", srv.held.Load(), len(held))
	}

	// The prober and the held conns leave: the bridge serves new tunnels again.
	prober.Close()
	for _, c := range held {
		c.Close()
	}
	if !waitLog(5*time.Second, func() bool { return srv.held.Load() == 0 && srv.active.Load() == 1 }) {
		t.Fatalf("held %d, active %d after the conns closed", srv.held.Load(), srv.active.Load())
	}
	second, rep, err := socksDial(socksAddr, srvAddr, args)
	if err != nil || rep != 0 {
		t.Fatalf("socks after the overload: rep %d err %v", rep, err)
	}
	defer second.Close()
	ping(second, "a new tunnel after the overload")
}

// TestClientLimitClosesAtOnce: tor's SOCKS conns past the limit are closed at once: tor
// is no prober, and a refusal lets it give up on this attempt now.
func TestClientLimitClosesAtOnce(t *testing.T) {
	or := listen(t, echo)
	lim := DefaultLimits()
	lim.MaxTunnels = 1
	socksAddr, srvAddr, logs, _, _ := pairEnginesWith(t, lim, or, "", "")
	c, rep, err := socksDial(socksAddr, srvAddr, "")
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v", rep, err)
	}
	defer c.Close()
	start := time.Now()
	_, rep, err = socksDial(socksAddr, srvAddr, "")
	if err == nil || rep != 0xff || time.Since(start) > time.Second {
		t.Fatalf("a SOCKS conn past the limit: reply %d, err %v after %v; want closed at once", rep, err, time.Since(start))
	}
	if n := len(logLines(logs.String(), "WARN", "tunnel limit reached")); n != 1 || !strings.Contains(logs.String(), "closed at once") {
		t.Fatalf("%d tunnel limit warnings, want 1:\n%s", n, logs)
	}
}

// TestOverloadHeldCloses: a held conn is closed when its hold ends, as a failed handshake
// is at the end of its stall (here a test transport's, stallFor, rather than obfs4's 30 s
// and more): the prober sees the same shape from both.
func TestOverloadHeldCloses(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxTunnels = 1
	srv, err := New(Config{Transports: map[string]codec.Transport{"hstest": hsTransport{}}, Limits: lim,
		ORPort: addrPort(t, listen(t, echo))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sa, _, err := srv.ListenServer("hstest", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	closedAfter := func(c net.Conn, start time.Time) time.Duration {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if len(got) != 0 || err != nil {
			t.Fatalf("read %q, %v; want nothing, then the close", got, err)
		}
		return time.Since(start)
	}
	start := time.Now()
	prober, err := net.Dial("tcp", sa.String())
	if err != nil {
		t.Fatal(err)
	}
	defer prober.Close()
	prober.Write([]byte("GET / HTTP/1.0\r\n\r\n")) // fails the handshake: the one tunnel, stalled
	over, err := net.Dial("tcp", sa.String())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	over.Write([]byte("HELLO")) // a good handshake, but past the limit: held
	probed, held := closedAfter(prober, start), closedAfter(over, start)
	t.Logf("garbage handshake closed after %v, held conn after %v (stall %v)", probed, held, stallFor)
	for _, d := range []time.Duration{probed, held} {
		if d < stallFor/2 {
			t.Fatalf("closed after %v, before the stall of %v ended", d, stallFor)
		}
	}
	// Stats tell the two apart: one failed handshake stalled, one conn held.
	s := srv.Stats()
	if len(s.Transports) != 1 || s.Held != 1 || s.Transports[0].Stalls != 1 || s.Transports[0].HandshakesFailed != 1 {
		t.Errorf("held %d, transports %+v; want 1 held, 1 failed handshake stalled", s.Held, s.Transports)
	}
}
