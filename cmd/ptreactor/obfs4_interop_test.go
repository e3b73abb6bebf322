package main

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// interopVolume is how much each direction carries in every iat-mode: 64 MiB, SHA-256
// checked at both ends. In modes 1 and 2 the sender sleeps between MTU-sized writes (a
// delay drawn per chunk), which holds obfs4proxy to 100-250 KB/s, so one paced transfer
// takes 4 to 10 minutes. The transfers of one test therefore run at the same time, in
// goroutines rather than parallel subtests, which go test would queue behind -parallel
// (GOMAXPROCS, 2 here). The deadline is a bound on a hang, not a speed check.
const interopVolume = 64 << 20

// interopDeadline bounds one transfer: iat-mode 0 takes seconds, iat-mode 2 with obfs4proxy
// on one side about ten minutes.
var interopDeadline = map[int]time.Duration{0: 150 * time.Second, 1: 25 * time.Minute, 2: 25 * time.Minute}

// TestObfs4Interop moves 64 MiB each way (SHA-256 checked at both ends) between our binary
// and obfs4proxy, in both roles, with iat-mode 0. The bridge side feeds an Extended ORPort
// stand-in that checks its authentication, TRANSPORT and USERADDR.
func TestObfs4Interop(t *testing.T) { testInterop(t, 0) }

// TestObfs4InteropPaced does the same in iat-modes 1 and 2. It sleeps more than it
// computes, so it runs alongside the other slow waiters (t.Parallel).
func TestObfs4InteropPaced(t *testing.T) {
	t.Parallel()
	testInterop(t, 1, 2)
}

// testInterop starts one pair per pairing and iat-mode, then runs all their transfers at
// once and reports each by name.
func testInterop(t *testing.T, modes ...int) {
	type transfer struct {
		name string
		iat  int
		conn net.Conn
		ext  *pttest.ExtORPort
		took time.Duration
		err  error
	}
	var xs []*transfer
	for _, pr := range pairings(t) {
		for _, iat := range modes {
			tgt, ext := target(t, false), extORTarget(t)
			p := startPair(t, harness.PairSpec{
				ClientBin: pr.client, ServerBin: pr.server, Transport: "obfs4",
				ORPort: tgt.Addr(), ExtORPort: ext.Addr, CookieFile: ext.CookieFile,
				IATMode: iat, ServerOptions: fmt.Sprintf("obfs4:iat-mode=%d", iat),
			})
			name := fmt.Sprintf("%s/iat-mode=%d", pr.name, iat)
			if got := harness.IATArg(p.Server); got != iat {
				t.Errorf("%s: SMETHOD ARGS iat-mode = %d, want %d (%q)", name, got, iat, p.Server.Header)
			}
			c := dial(t, p, 10*time.Second)
			t.Cleanup(func() { c.Close() })
			xs = append(xs, &transfer{name: name, iat: iat, conn: c, ext: ext})
		}
	}
	var wg sync.WaitGroup
	for i, x := range xs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			x.err = bench.Xfer(deadlineConn(x.conn, interopDeadline[x.iat]), interopVolume, interopVolume, uint64(10*x.iat+i+1))
			x.took = time.Since(start)
		}()
	}
	wg.Wait()
	for _, x := range xs {
		if x.err != nil {
			t.Errorf("%s: %v", x.name, x.err)
			continue
		}
		t.Logf("%s: %d MiB each way in %v", x.name, interopVolume>>20, x.took.Round(time.Millisecond))
		checkSessions(t, x.ext, 1)
	}
}

// TestObfs4ConcurrentTunnels runs 100 tunnels at once through one pair in each direction,
// each checked both ways.
func TestObfs4ConcurrentTunnels(t *testing.T) {
	const tunnels, size = 100, 512 << 10
	for _, pr := range pairings(t) {
		t.Run(pr.name, func(t *testing.T) {
			tgt := target(t, false)
			p := startPair(t, harness.PairSpec{ClientBin: pr.client, ServerBin: pr.server,
				Transport: "obfs4", ORPort: tgt.Addr()})
			var wg sync.WaitGroup
			errs := make(chan error, tunnels)
			for i := range tunnels {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := dialErr(p, 30*time.Second)
					if err != nil {
						t.Errorf("tunnel %d: SOCKS: %v", i, err)
						return
					}
					defer c.Close()
					if err := bench.Xfer(deadlineConn(c, 90*time.Second), size, size, uint64(1000+i)); err != nil {
						errs <- fmt.Errorf("tunnel %d: %w", i, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
