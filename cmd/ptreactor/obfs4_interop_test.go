package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/bench"
)

// iatVolume is how much each direction carries per iat-mode. iat-mode 0 moves the full
// 64 MiB each way. In modes 1 and 2 the sender sleeps between MTU-sized writes (obfs4-notes
// §11), which holds obfs4proxy to about 200 KB/s (8 MiB each way took 43 s in mode 1 and
// 76 s in mode 2 between two obfs4proxy), so those transfers are 1 MiB: still hundreds of
// paced frames over every padding path.
var iatVolume = map[int]int64{0: 64 << 20, 1: 1 << 20, 2: 1 << 20}

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

func testInterop(t *testing.T, modes ...int) {
	for _, pr := range pairings(t) {
		for _, iat := range modes {
			t.Run(fmt.Sprintf("%s/iat-mode=%d", pr.name, iat), func(t *testing.T) {
				if iat != 0 {
					t.Parallel()
				}
				tgt, ext := target(t, false), extORTarget(t)
				p := startPair(t, bench.PairSpec{
					ClientBin: pr.client, ServerBin: pr.server, Transport: "obfs4",
					ORPort: tgt.Addr(), ExtORPort: ext.Addr, CookieFile: ext.CookieFile,
					IATMode: iat, ServerOptions: fmt.Sprintf("obfs4:iat-mode=%d", iat),
				})
				if got := bench.IATArg(p.Server); got != iat {
					t.Errorf("SMETHOD ARGS iat-mode = %d, want %d (%q)", got, iat, p.Server.Header)
				}
				c := dial(t, p, 10*time.Second)
				defer c.Close()
				n := iatVolume[iat]
				start := time.Now()
				if err := bench.Xfer(deadlineConn(c, 150*time.Second), n, n, uint64(iat)+1); err != nil {
					t.Fatal(err)
				}
				t.Logf("%d MiB each way in %v", n>>20, time.Since(start).Round(time.Millisecond))
				checkSessions(t, ext, 1)
			})
		}
	}
}

// TestObfs4ConcurrentTunnels runs 100 tunnels at once through one pair in each direction,
// each checked both ways.
func TestObfs4ConcurrentTunnels(t *testing.T) {
	const tunnels, size = 100, 512 << 10
	for _, pr := range pairings(t) {
		t.Run(pr.name, func(t *testing.T) {
			tgt := target(t, false)
			p := startPair(t, bench.PairSpec{ClientBin: pr.client, ServerBin: pr.server,
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
