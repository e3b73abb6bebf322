package reactor

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

func TestEcho(t *testing.T) {
	or := listen(t, echo)
	socksAddr, srvAddr, logs := pair(t, or, "", "")
	for i := 0; i < 3; i++ {
		c, rep, err := socksDial(socksAddr, srvAddr, "")
		if err != nil || rep != 0 {
			t.Fatalf("socks: rep %d err %v\n%s", rep, err, logs)
		}
		msg := bytes.Repeat([]byte("hello, bridge "), 1000*(i+1))
		go c.Write(msg)
		got := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo: %v\n%s", err, logs)
		}
		c.Close()
	}
}

// TestCloseDeliversQueued: the ORPort writes a burst and closes at once; every byte must
// reach tor's side before the tunnel closes it.
func TestCloseDeliversQueued(t *testing.T) {
	const n = 8 << 20
	or := listen(t, func(c net.Conn) {
		sendHashed(c, n, 7)
	})
	socksAddr, srvAddr, logs := pair(t, or, "", "")
	c, rep, err := socksDial(socksAddr, srvAddr, "")
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v", rep, err)
	}
	defer c.Close()
	time.Sleep(200 * time.Millisecond) // let the server finish and close first
	want, _ := sendHashed(io.Discard, n, 7)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, sum, err := recvHashed(c, n+1)
	if err != nil || got != n || sum != want {
		t.Fatalf("got %d bytes (err %v), hash match %v\n%s", got, err, sum == want, logs)
	}
}

func TestArgsAccepted(t *testing.T) {
	or := listen(t, echo)
	socksAddr, srvAddr, _ := pair(t, or, "", "")
	c, rep, err := socksDial(socksAddr, srvAddr, `cert=abc\;d;iat-mode=0`)
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v", rep, err)
	}
	c.Close()
}

// bulk moves size bytes each way at once through one tunnel and compares SHA-256 at both
// ends.
func bulk(t *testing.T, socksAddr, srvAddr string, size int64, orSide chan net.Conn) {
	bulkArgs(t, socksAddr, srvAddr, "", size, orSide)
}

func bulkArgs(t *testing.T, socksAddr, srvAddr, args string, size int64, orSide chan net.Conn) {
	c, o := openTunnel(t, socksAddr, srvAddr, args, orSide)
	defer c.Close()
	defer o.Close()
	var wg sync.WaitGroup
	var sentUp, sentDown, gotUp, gotDown [32]byte
	var nUp, nDown int64
	var errs [4]error
	wg.Add(4)
	go func() { defer wg.Done(); sentUp, errs[0] = sendHashed(c, size, 1) }()
	go func() { defer wg.Done(); sentDown, errs[1] = sendHashed(o, size, 2) }()
	go func() { defer wg.Done(); nUp, gotUp, errs[2] = recvHashed(o, size) }()
	go func() { defer wg.Done(); nDown, gotDown, errs[3] = recvHashed(c, size) }()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	if nUp != size || nDown != size || sentUp != gotUp || sentDown != gotDown {
		t.Fatalf("up %d/%d match %v, down %d/%d match %v", nUp, size, sentUp == gotUp, nDown, size, sentDown == gotDown)
	}
}

// openTunnel opens one tunnel through the client engine and returns both of its ends: the
// SOCKS conn and the conn the ORPort side received.
func openTunnel(t *testing.T, socksAddr, srvAddr, args string, orSide chan net.Conn) (c, o net.Conn) {
	t.Helper()
	c, rep, err := socksDial(socksAddr, srvAddr, args)
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v", rep, err)
	}
	select {
	case o = <-orSide:
	case <-time.After(10 * time.Second):
		c.Close()
		t.Fatal("no ORPort connection")
	}
	return c, o
}

func orCollector(t *testing.T) (string, chan net.Conn) {
	ch := make(chan net.Conn, 16)
	block := make(chan struct{})
	addr := listen(t, func(c net.Conn) {
		ch <- c
		<-block
	})
	t.Cleanup(func() { close(block) }) // runs before listen's cleanup waits for handlers
	return addr, ch
}

// TestBulk1GiB: 1 GiB each way at once, SHA-256 compared at both ends (256 MiB with -short).
func TestBulk1GiB(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 256 << 20
	}
	or, orSide := orCollector(t)
	socksAddr, srvAddr, logs, cli, srv := pairEngines(t, or, "", "")
	start := time.Now()
	bulk(t, socksAddr, srvAddr, size, orSide)
	el := time.Since(start)
	t.Logf("%d MiB each way in %v (%.0f MB/s each way), %d+%d pauses", size>>20, el, float64(size)/el.Seconds()/1e6,
		cli.stats.pauses.Load(), srv.stats.pauses.Load())
	_ = logs
}

// TestConcurrentTunnels: 1,000 tunnels open at once, each echoing its own data.
func TestConcurrentTunnels(t *testing.T) {
	const n = 1000
	or := listen(t, echo)
	socksAddr, srvAddr, logs := pair(t, or, "", "")
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errc := make(chan error, n)
	sem := make(chan struct{}, 64) // tor opens circuits gradually too
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, rep, err := socksDial(socksAddr, srvAddr, "")
			if err != nil || rep != 0 {
				errc <- err
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("dial: %v\n%s", err, logs)
	}
	// All n are open now; each echoes 16 KiB.
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 8<<10)
			go c.Write(msg)
			got := make([]byte, len(msg))
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
				t.Errorf("tunnel %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
}

// TestExtORPort: the server engine speaks to an Extended ORPort stand-in; the session
// carries the client's address and the transport name, then bytes flow.
func TestExtORPort(t *testing.T) {
	ext := pttest.StartExtORPort(t, harness.ExtOROptions{})
	socksAddr, srvAddr, logs := pair(t, "", ext.Addr, ext.CookieFile)
	c, rep, err := socksDial(socksAddr, srvAddr, "")
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v\n%s", rep, err, logs)
	}
	defer c.Close()
	c.Write([]byte("via extorport"))
	b := make([]byte, 13)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "via extorport" {
		t.Fatalf("echo: %q %v\n%s", b, err, logs)
	}
	s := ext.WaitSessions(t, 1, 5*time.Second)[0]
	// USERADDR is where the server engine saw the client engine come from.
	if !s.AuthOK || !s.Okay || s.Transport != "plain" || !strings.HasPrefix(s.UserAddr, "127.0.0.1:") || s.EarlyData {
		t.Fatalf("session %+v", s)
	}
}

// TestSteadyStateAllocs: once a tunnel is up, moving bytes through it allocates nothing
// (the measure covers the whole test process, both engines and the test's own sockets).
func TestSteadyStateAllocs(t *testing.T) {
	or := listen(t, echo)
	socksAddr, srvAddr, _ := pair(t, or, "", "")
	c, rep, err := socksDial(socksAddr, srvAddr, "")
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v", rep, err)
	}
	defer c.Close()
	msg := make([]byte, 32<<10)
	got := make([]byte, len(msg))
	roundTrip := func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i++ {
		roundTrip() // warm the loops' buffers
	}
	allocs := testing.AllocsPerRun(200, roundTrip)
	t.Logf("%.2f allocations per 32 KiB round trip", allocs)
	if allocs > 1 {
		t.Errorf("%.2f allocations per round trip, want none", allocs)
	}
}

// BenchmarkTunnel measures the copy path of one tunnel: client engine, server engine,
// plain transport, one direction, into a discarding ORPort.
func BenchmarkTunnel(b *testing.B) {
	or := listen(b, func(c net.Conn) { io.Copy(io.Discard, c) })
	socksAddr, srvAddr, _ := pair(b, or, "", "")
	c, rep, err := socksDial(socksAddr, srvAddr, "")
	if err != nil || rep != 0 {
		b.Fatalf("socks: rep %d err %v", rep, err)
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPauseResumesPromptly: a source paused while its loop's ticker sleeps the slow period
// must come back on the fast sweep. SweepSlow is an hour here, so a pause that waited for
// it would hang the transfer; the consumer stays away long enough for both hops to pause.
func TestPauseResumesPromptly(t *testing.T) {
	lim := DefaultLimits()
	lim.SweepSlow = time.Hour
	or, orSide := orCollector(t)
	socksAddr, srvAddr, _, cli, srv := pairEnginesWith(t, lim, or, "", "")
	c, o := openTunnel(t, socksAddr, srvAddr, "", orSide)
	defer c.Close()
	defer o.Close()
	const size = 64 << 20
	var sum [32]byte
	sent := make(chan error, 1)
	go func() {
		var err error
		sum, err = sendHashed(o, size, 3)
		sent <- err
	}()
	time.Sleep(500 * time.Millisecond) // let the queues pass HighWater
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, got, err := recvHashed(c, size)
	if err != nil || n != size {
		t.Fatalf("got %d of %d bytes: %v (pauses %d+%d)", n, size, err, cli.stats.pauses.Load(), srv.stats.pauses.Load())
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if got != sum {
		t.Fatal("SHA-256 mismatch")
	}
	if cli.stats.pauses.Load()+srv.stats.pauses.Load() == 0 {
		t.Fatal("no source was paused; the test proves nothing")
	}
}

// TestStateNames: every end state and phase has a name of its own, so logs and failures
// name them; a value past the last one says what it is.
func TestStateNames(t *testing.T) {
	seen := map[string]bool{}
	for s := endState(0); s < numEndStates; s++ {
		n := s.String()
		if endStateNames[s] == "" || seen[n] {
			t.Errorf("endState %d has no name of its own (%q)", s, n)
		}
		seen[n] = true
	}
	for p := phase(0); p < numPhases; p++ {
		n := p.String()
		if phaseNames[p] == "" || seen["phase "+n] {
			t.Errorf("phase %d has no name of its own (%q)", p, n)
		}
		seen["phase "+n] = true
	}
	if got := numEndStates.String(); got != "endState(7)" {
		t.Errorf("numEndStates.String() = %q", got)
	}
	if got := numPhases.String(); got != "phase(6)" {
		t.Errorf("numPhases.String() = %q", got)
	}
}
