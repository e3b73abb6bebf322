package reactor

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec/socks"
)

// exchange writes msg to a fresh conn to addr and returns everything read until the PT
// closes the conn (or 10 s pass).
func exchange(t *testing.T, addr string, msg []byte, closeWrite bool) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(msg)
	if closeWrite {
		c.(*net.TCPConn).CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("PT did not close after %x (got %x)", msg, got)
	}
	return got
}

func TestHostileSOCKS(t *testing.T) {
	lim := DefaultLimits()
	lim.SOCKSTimeout = time.Second
	or := listen(t, echo)
	socksAddr, srvAddr, logs, _, _ := pairEnginesWith(t, lim, or, "", "")
	reply := func(code byte) []byte { return socks.AppendReply(nil, code) }
	ap := net.ParseIP("127.0.0.1").To4()
	connect := append([]byte{5, 1, 0, 1}, ap...)
	connect = append(connect, 0, 1) // 127.0.0.1:1: nothing listens there

	cases := []struct {
		name string
		msg  []byte
		want []byte
	}{
		{"truncated greeting, then silence", []byte{5}, nil},
		{"truncated request, then silence", []byte{5, 1, 0, 5, 1, 0, 1, 127}, []byte{5, 0}},
		{"socks4", []byte{4, 1, 0, 80, 127, 0, 0, 1, 0}, nil},
		{"no acceptable method", []byte{5, 1, 1}, []byte{5, 0xff}},
		{"empty username", []byte{5, 1, 2, 1, 0, 1, 0}, []byte{5, 2, 1, 1}},
		{"bad args", []byte{5, 1, 2, 1, 2, '=', 'x', 1, 0}, []byte{5, 2, 1, 1}},
		{"bind", []byte{5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80}, append([]byte{5, 0}, reply(socks.CommandNotSupported)...)},
		{"address type", []byte{5, 1, 0, 5, 1, 0, 9, 1, 2, 3, 4}, append([]byte{5, 0}, reply(socks.AddrTypeNotSupp)...)},
		{"pipelined bytes", append(append([]byte{5, 1, 0}, connect...), 'x'), append([]byte{5, 0}, reply(socks.GeneralFailure)...)},
		{"refused", append([]byte{5, 1, 0}, connect...), append([]byte{5, 0}, reply(socks.ConnectionRefused)...)},
	}
	for _, c := range cases {
		got := exchange(t, socksAddr, c.msg, false)
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s: got %x, want %x", c.name, got, c.want)
		}
	}
	// Garbage of every size, and oversized junk after a valid greeting.
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{1, 3, 17, 300, 70000} {
		b := make([]byte, n)
		rng.Read(b)
		exchange(t, socksAddr, b, true)
		exchange(t, socksAddr, append([]byte{5, 1, 0}, b...), true)
	}

	// A bridge that accepts and resets: tor's side must be closed, not left hanging.
	rst := listen(t, func(c net.Conn) { c.(*net.TCPConn).SetLinger(0) })
	c, rep, err := socksDial(socksAddr, rst, "")
	if err == nil && rep == 0 {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("tor side not closed after the bridge reset")
			}
		}
		c.Close()
	}

	// A SOCKS exchange that arrives one byte at a time is still a good one.
	{
		sa, _ := net.ResolveTCPAddr("tcp", srvAddr)
		msg := []byte{5, 1, 2}
		msg = append(msg, 1, 3, 'a', '=', 'b', 1, 0)
		msg = append(msg, 5, 1, 0, 1)
		msg = append(msg, sa.IP.To4()...)
		msg = append(msg, byte(sa.Port>>8), byte(sa.Port))
		c, err := net.Dial("tcp", socksAddr)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range msg {
			c.Write([]byte{b})
			time.Sleep(2 * time.Millisecond)
		}
		want := append([]byte{5, 2, 1, 0}, reply(socks.Succeeded)...)
		got := make([]byte, len(want))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("byte-at-a-time SOCKS: got %x (%v), want %x", got, err, want)
		}
		c.Close()
	}

	// Through all this, the PT keeps serving.
	c, rep, err = socksDial(socksAddr, srvAddr, "")
	if err != nil || rep != 0 {
		t.Fatalf("good tunnel after hostile ones: rep %d err %v\n%s", rep, err, logs)
	}
	c.Write([]byte("still here"))
	buf := make([]byte, 10)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	c.Close()
}

// TestStalledSinkMemory: the ORPort stops reading for a while as the source pushes at full
// speed. The PT process (a child, client and server engines) must not grow, and every byte
// must arrive once the ORPort reads again.
func TestStalledSinkMemory(t *testing.T) {
	stall := 10 * time.Second
	if testing.Short() {
		stall = 3 * time.Second
	}
	const size = 128 << 20
	resume := make(chan struct{})
	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	res := make(chan result, 1)
	or := listen(t, func(c net.Conn) {
		<-resume
		n, sum, err := recvHashed(c, size)
		res <- result{n, sum, err}
	})
	ch := startChild(t, or, 0)
	c, rep, err := socksDial(ch.socks, ch.srv, "")
	if err != nil || rep != 0 {
		t.Fatalf("socks: %d %v", rep, err)
	}
	defer c.Close()
	var sent atomic.Int64
	sendDone := make(chan [32]byte, 1)
	go func() {
		h := sha256.New()
		s := &stream{x: 42}
		buf := make([]byte, 64<<10)
		for n := 0; n < size; n += len(buf) {
			s.Read(buf)
			h.Write(buf)
			if _, err := c.Write(buf); err != nil {
				return
			}
			sent.Add(int64(len(buf)))
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		sendDone <- sum
	}()
	time.Sleep(500 * time.Millisecond) // the pipe fills and the sources pause
	base := rssKiB(t, ch.Pid())
	peak := base
	deadline := time.Now().Add(stall)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if r := rssKiB(t, ch.Pid()); r > peak {
			peak = r
		}
	}
	t.Logf("RSS %d KiB after 0.5 s, peak %d KiB over a %v stall; %d MiB sent meanwhile", base, peak, stall, sent.Load()>>20)
	if peak-base > 4<<10 && !raceEnabled {
		t.Errorf("RSS grew by %d KiB during the stall", peak-base)
	}
	if sent.Load() >= size {
		t.Fatalf("the whole %d MiB went in during the stall: no backpressure", size>>20)
	}
	close(resume)
	var want [32]byte
	select {
	case want = <-sendDone:
	case <-time.After(60 * time.Second):
		t.Fatal("source did not finish after the sink resumed")
	}
	r := <-res
	if r.err != nil || r.n != size || r.sum != want {
		t.Fatalf("sink got %d of %d bytes (err %v), hash match %v", r.n, size, r.err, r.sum == want)
	}
}

// TestDescriptorExhaustion runs the PT with a low descriptor limit, opens more tunnels than
// fit, closes them, and checks that new tunnels work again.
func TestDescriptorExhaustion(t *testing.T) {
	or := listen(t, echo)
	ch := startChild(t, or, 200)
	var mu sync.Mutex
	var conns []net.Conn
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, rep, err := socksDial(ch.socks, ch.srv, "")
			if err != nil || rep != 0 {
				failed.Add(1)
				return
			}
			ok.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("with 200 descriptors: %d tunnels up, %d refused", ok.Load(), failed.Load())
	if failed.Load() == 0 {
		t.Fatal("expected some tunnels to be refused at this limit")
	}
	for _, c := range conns {
		c.Close()
	}
	// Descriptors free up: the PT must serve again.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, rep, err := socksDial(ch.socks, ch.srv, "")
		if err == nil && rep == 0 {
			c.Write([]byte("ping"))
			b := make([]byte, 4)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.ReadFull(c, b)
			c.Close()
			if err == nil && string(b) == "ping" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no working tunnel after descriptors were freed (rep %d err %v); child log:\n%s", rep, err, ch.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// What was refused is said at warning, once per engine and kind however many were.
	log := ch.stderr.String()
	limit, fds := logLines(log, "WARN", "tunnel limit reached"), logLines(log, "WARN", "out of file descriptors")
	if len(limit)+len(fds) == 0 || len(limit) > 2 || len(fds) > 2 {
		t.Errorf("%d tunnel limit and %d descriptor warnings, want one or two (an engine each) of one or both:\n%s", len(limit), len(fds), ch.stderr)
	}
}

// TestTunnelLimit: at the common hard limit of 20,000 descriptors a process carries the
// 8,000 tunnels the benchmarks hold idle, and no limit promises more than two descriptors
// per tunnel plus the reserve.
func TestTunnelLimit(t *testing.T) {
	if got := tunnelLimit(20000); got < 8000 {
		t.Fatalf("tunnelLimit(20000) = %d, want at least 8000", got)
	}
	for _, lim := range []uint64{0, 64, 128, 129, 200, 1024, 20000, 1 << 20} {
		got := tunnelLimit(lim)
		if got < 1 || (lim > 128 && uint64(2*got) > lim) {
			t.Errorf("tunnelLimit(%d) = %d", lim, got)
		}
	}
}
