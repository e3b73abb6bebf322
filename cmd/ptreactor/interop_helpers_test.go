package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// These are black-box tests of the built binary against the real peer, obfs4proxy. They
// launch both as tor would (harness.Launch), tunnel through SOCKS with tor's argument
// encoding, and feed the bridge side into an in-process ORPort stand-in (bench.Target)
// that checks every byte.

// obfs4proxyBin is the peer; a missing peer is a failure, never a skip (make deps).
func obfs4proxyBin(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("obfs4proxy")
	if err != nil {
		t.Fatalf("obfs4proxy is required for the interop tests (make deps): %v", err)
	}
	return p
}

// ourBin is the binary under test: the one built from this tree, or, when
// PTREACTOR_INTEROP_OURS names another binary (e.g. /usr/bin/obfs4proxy), that one. The
// override exists to check the tests themselves against a known-good implementation.
func ourBin(t testing.TB) string {
	if p := os.Getenv("PTREACTOR_INTEROP_OURS"); p != "" {
		return p
	}
	return pttest.Binary(t)
}

// pairing is which binary plays the client PT and which the server PT.
type pairing struct {
	name           string
	client, server string
}

// pairings are the interop directions: the peer's client against our bridge, our client
// against the peer's bridge. PTREACTOR_INTEROP_CONTROL=1 adds obfs4proxy against itself,
// which checks the tests (not ptreactor) when a failure looks like the harness's fault.
func pairings(t testing.TB) []pairing {
	us, peer := ourBin(t), obfs4proxyBin(t)
	ps := []pairing{
		{"obfs4proxy-to-ptreactor", peer, us},
		{"ptreactor-to-obfs4proxy", us, peer},
	}
	if os.Getenv("PTREACTOR_INTEROP_CONTROL") == "1" {
		ps = append(ps, pairing{"obfs4proxy-to-obfs4proxy", peer, peer})
	}
	return ps
}

// target starts an ORPort stand-in that lives as long as the test.
func target(t testing.TB, echo bool) *bench.Target {
	t.Helper()
	tgt, err := bench.NewTarget(echo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tgt.Close()
		for _, err := range tgt.Errors() {
			t.Errorf("ORPort stand-in: %v", err)
		}
	})
	return tgt
}

// logBuf collects a child's stderr for failure messages.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 64<<10 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startPair launches ps (filling in Dir and the stderr sinks) and stops it when the test
// ends; a stop that needs a kill is an error, since tor relies on stdin close.
func startPair(t testing.TB, ps harness.PairSpec) *harness.Pair {
	t.Helper()
	if ps.Dir == "" {
		ps.Dir = t.TempDir()
	}
	var cerr, serr logBuf
	ps.ClientStderr, ps.ServerStderr = &cerr, &serr
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := harness.StartPair(ctx, ps)
	if err != nil {
		t.Fatalf("%v\nclient stderr: %s\nserver stderr: %s", err, cerr.String(), serr.String())
	}
	t.Cleanup(func() {
		if !p.Stop(10 * time.Second) {
			t.Errorf("a PT did not exit within 10 s of stdin close")
		}
		if t.Failed() {
			t.Logf("client %s stderr: %s\nserver %s stderr: %s", ps.ClientBin, cerr.String(), ps.ServerBin, serr.String())
		}
	})
	return p
}

// dial opens a tunnel through p, bounded by timeout.
func dial(t testing.TB, p *harness.Pair, timeout time.Duration) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := p.Dial(ctx)
	if err != nil {
		t.Fatalf("SOCKS through %s: %v", p.Client.Spec.Bin, err)
	}
	return c
}

// deadlineConn bounds a whole transfer: a stalled tunnel fails the test instead of hanging.
func deadlineConn(c net.Conn, d time.Duration) net.Conn {
	c.SetDeadline(time.Now().Add(d))
	return c
}

func timeoutCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// dialErr is dial for goroutines other than the test's own.
func dialErr(p *harness.Pair, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.Dial(ctx)
}

// extORTarget starts the Extended ORPort stand-in (internal/pttest), which really
// authenticates, with the xfer protocol behind it; errors of its data phase fail the test.
func extORTarget(t testing.TB) *pttest.ExtORPort {
	t.Helper()
	var mu sync.Mutex
	var errs []error
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, err := range errs {
			t.Errorf("ExtORPort stand-in: %v", err)
		}
	})
	return pttest.StartExtORPort(t, harness.ExtOROptions{Handler: func(c net.Conn) {
		if err := bench.ServeXfer(c); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}})
}

// checkSessions checks what the bridge told the ExtORPort: auth passed, TRANSPORT obfs4,
// USERADDR the client's loopback address.
func checkSessions(t testing.TB, e *pttest.ExtORPort, n int) {
	t.Helper()
	for i, s := range e.WaitSessions(t, n, 10*time.Second) {
		if !s.AuthOK || !s.Okay || s.Transport != "obfs4" || !strings.HasPrefix(s.UserAddr, "127.0.0.1:") || s.Err != "" {
			t.Errorf("ExtORPort session %d: %+v", i, s)
		}
	}
}
