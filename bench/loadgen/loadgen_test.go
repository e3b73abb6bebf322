package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// run performs one load run and fails the test if it does not end within the run's own
// bounds.
func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	return runWhile(t, cfg, nil)
}

// runWhile is run, cancelled as soon as enough (polled every 50 ms) reports true, so that a
// test can check the far side while the tunnels are still open.
func runWhile(t *testing.T, cfg Config, enough func() bool) *Result {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *Result, 1)
	go func() { done <- g.Run(ctx) }()
	limit := time.After(cfg.Duration + 2*cfg.Timeout + 30*time.Second)
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case r := <-done:
			t.Logf("\n%s", r.Summary())
			return r
		case <-poll.C:
			if enough != nil && enough() {
				cancel()
			}
		case <-limit:
			t.Fatal("the run did not end")
			return nil
		}
	}
}

func parse(t *testing.T, line string) []*Bridge {
	t.Helper()
	b, err := ParseBridgeLine(line)
	if err != nil {
		t.Fatal(err)
	}
	return []*Bridge{b}
}

// TestHoldTunnels holds a few hundred tunnels against a ptreactor bridge and checks that
// every one was counted on both sides: handshakes, tunnels held, the connections the
// bridge made to its ORPort, the descriptors of this process, and the figures.
func TestHoldTunnels(t *testing.T) {
	const n = 300
	line, or, _ := pttest.StartObfs4Bridge(t, harness.Discard)
	r := run(t, Config{Bridges: parse(t, "obfs4 "+line), Conns: n, Concurrency: 64,
		Duration: 2 * time.Minute, UntilHeld: true, Timeout: 30 * time.Second})
	if r.HandshakesOK != n || r.Held != n || r.PeakHeld != n || r.Attempts != n || r.ErrorCount() != 0 {
		t.Fatalf("%d handshakes of %d attempts, %d held (peak %d), errors %v; want %d of each, no errors",
			r.HandshakesOK, r.Attempts, r.Held, r.PeakHeld, r.Errors, n)
	}
	if r.Failure() != nil {
		t.Errorf("Failure() = %v on a good run", r.Failure())
	}
	// The bridge dials its ORPort once a client's handshake is done: one conn per tunnel.
	deadline := time.Now().Add(10 * time.Second)
	for len(or.Remotes()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := len(or.Remotes()); got != n {
		t.Errorf("the ORPort saw %d connections, want %d", got, n)
	}
	if r.Descriptors < n || r.Descriptors > n+fdReserve+len(or.Remotes())+64 {
		t.Errorf("%d descriptors open with %d tunnels", r.Descriptors, n)
	}
	if r.Setup.TotalCount() != n {
		t.Errorf("%d set-up latencies recorded", r.Setup.TotalCount())
	}
	p := map[string]float64{}
	variants := map[string]float64{}
	for _, f := range r.Figures("ptreactor") {
		if f.Scenario != "load" || f.Pair != "ptreactor" || f.Runs != 1 || f.Tunnels != n || f.Min != f.Value || f.Max != f.Value {
			t.Errorf("figure %+v", f)
		}
		if f.Metric == "errors" {
			variants[f.Variant] = f.Value
			continue
		}
		p[f.Metric] = f.Value
	}
	for _, m := range []string{"handshakes_ok", "tunnels_held", "setup_p50_ms", "setup_p90_ms", "setup_p99_ms", "setup_p999_ms", "setups_per_s", "rss_kib_per_tunnel_client"} {
		if _, ok := p[m]; !ok {
			t.Errorf("no %s figure", m)
		}
	}
	if p["handshakes_ok"] != n || p["tunnels_held"] != n || variants["total"] != 0 || len(variants) != 1 {
		t.Errorf("figures: %v, errors %v", p, variants)
	}
	if !(0 < p["setup_p50_ms"] && p["setup_p50_ms"] <= p["setup_p90_ms"] && p["setup_p90_ms"] <= p["setup_p99_ms"] && p["setup_p99_ms"] <= p["setup_p999_ms"]) {
		t.Errorf("percentiles out of order: %v", p)
	}
}

// TestBridgeGoesAway: tunnels held when the bridge dies are counted as lost, by kind, and
// the attempts to replace them as refused; the run as a whole did set tunnels up.
func TestBridgeGoesAway(t *testing.T) {
	const n = 50
	line, _, p := pttest.StartObfs4Bridge(t, harness.Discard)
	g, err := New(Config{Bridges: parse(t, "obfs4 "+line), Conns: n, Duration: 2 * time.Minute, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *Result, 1)
	go func() { done <- g.Run(ctx) }()
	for deadline := time.Now().Add(time.Minute); g.Snapshot().Held < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never held %d tunnels: %+v", n, g.Snapshot())
		}
	}
	_ = p.Cmd.Process.Kill()
	for deadline := time.Now().Add(time.Minute); g.Snapshot().Held > 0 || g.Snapshot().Errors < n+giveUpAfter; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the tunnels of a dead bridge are still counted as held: %+v", g.Snapshot())
		}
	}
	cancel()
	r := <-done
	t.Logf("\n%s", r.Summary())
	// A held tunnel ends closed (or reset); a replacement is refused, or reset if it was
	// in the listener's backlog when the bridge died.
	lost, other := r.Errors[Closed]+r.Errors[Reset], r.ErrorCount()-r.Errors[Closed]-r.Errors[Reset]-r.Errors[Refused]
	if r.HandshakesOK != n || r.Held != 0 || r.PeakHeld != n || lost < n || r.ErrorCount() < n+giveUpAfter || other != 0 {
		t.Fatalf("%d handshakes, %d held (peak %d), errors %v; want %d handshakes, all %d lost (closed or reset), then refused",
			r.HandshakesOK, r.Held, r.PeakHeld, r.Errors, n, n)
	}
	if err := r.Failure(); err != nil {
		t.Errorf("Failure() = %v for a run that set tunnels up", err)
	}
}

// randomCert is a well-formed cert of no bridge.
func randomCert() string {
	var b [52]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])[:70]
}

// TestWrongCert: with a cert that is not the bridge's every handshake fails, and the
// bridge, hiding from what looks like a prober, says nothing: each tunnel is "silent",
// and the run says so in one line.
func TestWrongCert(t *testing.T) {
	line, _, _ := pttest.StartObfs4Bridge(t, harness.Discard)
	addr := strings.Fields(line)[0]
	r := run(t, Config{Bridges: parse(t, "obfs4 "+addr+" cert="+randomCert()+" iat-mode=0"), Conns: 8,
		Duration: time.Minute, Timeout: 2 * time.Second})
	if r.HandshakesOK != 0 || r.Errors[Silent] != 8 || len(r.Errors) != 1 {
		t.Fatalf("%d handshakes, errors %v; want 8 silent", r.HandshakesOK, r.Errors)
	}
	err := r.Failure()
	if err == nil || !strings.Contains(err.Error(), "silent") || !strings.Contains(err.Error(), "wrong cert") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Failure() = %v", err)
	}
	errs := map[string]float64{}
	for _, f := range r.Figures("wrong-cert") {
		if f.Metric == "errors" {
			errs[f.Variant] = f.Value
		}
	}
	if len(errs) != 2 || errs["total"] != 8 || errs["silent"] != 8 {
		t.Fatalf("error figures %v, want total and silent, 8 each", errs)
	}
}

// TestClosedPort: nothing listens, every connect is refused.
func TestClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := run(t, Config{Bridges: parse(t, "obfs4 "+addr+" cert="+randomCert()+" iat-mode=0"), Conns: 100,
		Duration: time.Minute, Timeout: 5 * time.Second})
	if r.HandshakesOK != 0 || r.Errors[Refused] < giveUpAfter || len(r.Errors) != 1 {
		t.Fatalf("%d handshakes, errors %v; want only refused", r.HandshakesOK, r.Errors)
	}
	if r.Elapsed > 30*time.Second {
		t.Errorf("a refusing bridge took %v to give up on", r.Elapsed)
	}
	if err := r.Failure(); err == nil || !strings.Contains(err.Error(), "refused every connection") {
		t.Fatalf("Failure() = %v", err)
	}
}

// TestFailureKinds runs against servers that fail in each way a bridge can, and checks the
// kind each failure is counted under.
func TestFailureKinds(t *testing.T) {
	for _, c := range []struct {
		name   string
		serve  func(net.Conn)
		want   Kind
		phrase string
	}{
		{"accepts and never speaks", harness.Discard, Silent, "never answered"},
		{"reads the handshake and hangs up", func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, _ = io.Copy(io.Discard, c)
		}, ClosedUnanswered, "closed without answering"},
		{"resets", func(c net.Conn) {
			_, _ = c.Read(make([]byte, 1))
			c.(*net.TCPConn).SetLinger(0)
		}, Reset, "reset"},
		{"speaks something else", func(c net.Conn) {
			junk := make([]byte, 9000)
			rand.Read(junk)
			_, _ = c.Write(junk)
			harness.Discard(c)
		}, BadReply, "not an obfs4 reply"},
		{"answers part of a reply", func(c net.Conn) {
			_, _ = c.Write(make([]byte, 40))
			harness.Discard(c)
		}, HandshakeTimeout, "never completed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := pttest.StartORPort(t, c.serve)
			r := run(t, Config{Bridges: parse(t, "obfs4 "+srv.Addr+" cert="+randomCert()+" iat-mode=0"), Conns: 4,
				Duration: time.Minute, Timeout: 2 * time.Second})
			if r.HandshakesOK != 0 || r.Errors[c.want] != 4 || len(r.Errors) != 1 {
				t.Fatalf("errors %v, want 4 %s", r.Errors, c.want)
			}
			if err := r.Failure(); err == nil || !strings.Contains(err.Error(), c.phrase) || !strings.Contains(err.Error(), c.want.String()) {
				t.Fatalf("Failure() = %v", err)
			}
		})
	}
}

// TestTorLink runs the link handshake through ptreactor to a real tor bridge: tor with
// ServerTransportPlugin obfs4 exec ptreactor, ORPort and ExtORPort on loopback, in a
// namespace of its own. Every tunnel must get tor's VERSIONS (parsed), CERTS,
// AUTH_CHALLENGE and NETINFO back through the obfs4 tunnel, the ExtORPort and tor's TLS.
func TestTorLink(t *testing.T) {
	const n = 6
	ns := pttest.NewNetNS(t)
	listen := ns.FreePort(t, "127.0.0.1")
	bridge := pttest.StartTor(t, ns, pttest.BridgeTorrc("obfs4", pttest.Binary(t), listen)...)
	bridge.WaitLog(regexp.QuoteMeta("Registered server transport 'obfs4' at '"+listen+"'"), 60*time.Second)
	fp := bridge.Fingerprint()
	args := pttest.BridgeArgs(t, filepath.Join(bridge.DataDir, "pt_state"))
	addr := forwardInto(t, ns, listen)
	// The client's iat-mode is its own choice: 1 sends the link handshake through the
	// paced path (queued, cut into chunks, timed).
	for i, iat := range []string{"0", "1"} {
		line := "obfs4 " + addr + " " + fp + " " + strings.Replace(args, "iat-mode=0", "iat-mode="+iat, 1)
		// The run holds its tunnels until tor has logged each of our NETINFO cells (or
		// 20 s pass). A run that closed its links at once lost a NETINFO on tor's side in
		// about one run of three, with obfs4proxy as the server as well: tor can drop the
		// cells that reach it together with the link's close.
		open, want := 0, (i+1)*n
		deadline := time.Now().Add(20 * time.Second)
		r := runWhile(t, Config{Bridges: parse(t, line), Conns: n, Concurrency: 3,
			Duration: 2 * time.Minute, TorLink: true, Timeout: 30 * time.Second}, func() bool {
			open = strings.Count(bridge.Log(), "Got good NETINFO cell")
			return open >= want || time.Now().After(deadline)
		})
		if r.HandshakesOK != n || r.TorLinkOK != n || r.Held != n || r.ErrorCount() != 0 || r.Link.TotalCount() != n {
			t.Fatalf("iat-mode %s: %d handshakes, %d tor links (%d timed), %d held, errors %v; want %d each, no errors\n%s",
				iat, r.HandshakesOK, r.TorLinkOK, r.Link.TotalCount(), r.Held, r.Errors, n, bridge.Log())
		}
		// tor's side: each of our NETINFO cells opened a link.
		if open != want {
			t.Errorf("iat-mode %s: tor logged %d links opened by a good NETINFO in all, want %d", iat, open, want)
		}
		var link bool
		for _, f := range r.Figures("tor") {
			link = link || f.Metric == "tor_link_p99_ms" && f.Value > 0
		}
		if !link {
			t.Errorf("iat-mode %s: no tor_link_p99_ms figure", iat)
		}
	}
}

// forwardInto listens on 127.0.0.1 here and pipes every connection to addr inside ns. The
// load generator dials from goroutines on any thread, which cannot all join ns. Its
// cleanup, which runs before ns's, closes everything and waits for its goroutines.
func forwardInto(t *testing.T, ns *pttest.NetNS, addr string) string {
	t.Helper()
	// Closing c (the stand-in does at cleanup) ends the copy from c, which closes up and so
	// ends the copy back.
	return pttest.Serve(t, func(c net.Conn) {
		up, err := ns.Dial("tcp", addr)
		if err != nil {
			return
		}
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(up, c)
			up.Close()
			close(done)
		}()
		_, _ = io.Copy(c, up)
		c.Close()
		<-done
	}).Addr()
}

// TestTorLinkFailures: what is behind the bridge is not tor. An ORPort that echoes sends
// our own ClientHello back (tor-link-tls); one that never speaks lets the link handshake
// time out (tor-link-timeout). The obfs4 tunnels themselves were fine.
func TestTorLinkFailures(t *testing.T) {
	for _, c := range []struct {
		name   string
		orport func(net.Conn)
		want   Kind
	}{
		{"echo", harness.Echo, TorLinkTLS},
		{"silent", harness.Discard, TorLinkTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			line, _, _ := pttest.StartObfs4Bridge(t, c.orport)
			r := run(t, Config{Bridges: parse(t, "obfs4 "+line), Conns: 4, Duration: time.Minute,
				Timeout: 2 * time.Second, TorLink: true})
			if r.HandshakesOK < 4 || r.TorLinkOK != 0 || r.Errors[c.want] != r.ErrorCount() || r.Errors[c.want] < 4 {
				t.Fatalf("%d handshakes, %d links, errors %v; want only %s", r.HandshakesOK, r.TorLinkOK, r.Errors, c.want)
			}
			if r.Attempts > 8 {
				t.Errorf("%d attempts: the run went on although no link handshake ever completed", r.Attempts)
			}
			if err := r.Failure(); err == nil || !strings.Contains(err.Error(), c.want.String()) {
				t.Fatalf("Failure() = %v", err)
			}
		})
	}
}

// TestConfig: a run that cannot fit in this process's descriptors is refused before it
// starts, and so are meaningless settings.
func TestConfig(t *testing.T) {
	b := parse(t, "obfs4 127.0.0.1:1 cert="+testCert+" iat-mode=0")
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Bridges: b, Conns: 1 << 30, Duration: time.Second}, "descriptors"},
		{Config{Bridges: b, Conns: 0, Duration: time.Second}, "at least 1"},
		{Config{Bridges: b, Conns: 1, Rate: -1, Duration: time.Second}, "rate"},
		{Config{Bridges: b, Conns: 1}, "a run of 0s"},
		{Config{Conns: 1, Duration: time.Second}, "no bridge"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one that says %q", c.cfg, err, c.want)
		}
	}
}

// TestConnectTimeout: a listener whose accept queue is full drops further SYNs, so their
// connects time out; the one connection the queue took is silent.
func TestConnectTimeout(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil { // never accepted: room for one connection
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4(sa.(*unix.SockaddrInet4).Addr), uint16(sa.(*unix.SockaddrInet4).Port))
	r := run(t, Config{Bridges: parse(t, "obfs4 "+addr.String()+" cert="+randomCert()+" iat-mode=0"), Conns: 6,
		Duration: time.Minute, Timeout: 1500 * time.Millisecond})
	if r.HandshakesOK != 0 || r.Errors[ConnectTimeout] < 4 || r.Errors[ConnectTimeout]+r.Errors[Silent] != r.ErrorCount() {
		t.Fatalf("errors %v; want connect-timeout (and silent for what the queue took)", r.Errors)
	}
	if err := r.Failure(); err == nil || !strings.Contains(err.Error(), "did not accept a TCP connection") {
		t.Fatalf("Failure() = %v", err)
	}
}
