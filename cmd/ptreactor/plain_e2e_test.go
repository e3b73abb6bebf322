package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/internal/harness"
)

// TestPlainEndToEnd runs our client and our bridge with the identity transport: one large
// checked transfer, then 50 tunnels at once, then a clean exit on stdin close (checked by
// startPair's cleanup).
func TestPlainEndToEnd(t *testing.T) {
	us := ourBin(t)
	tgt := target(t, false)
	p := startPair(t, harness.PairSpec{ClientBin: us, ServerBin: us, Transport: "plain", ORPort: tgt.Addr()})

	c := dial(t, p, 10*time.Second)
	if err := bench.Xfer(deadlineConn(c, 60*time.Second), 32<<20, 32<<20, 9); err != nil {
		t.Fatal(err)
	}
	c.Close()

	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialErr(p, 10*time.Second)
			if err != nil {
				t.Errorf("tunnel %d: SOCKS: %v", i, err)
				return
			}
			defer c.Close()
			if err := bench.Xfer(deadlineConn(c, 60*time.Second), 256<<10, 1<<20, uint64(100+i)); err != nil {
				t.Error(fmt.Errorf("tunnel %d: %w", i, err))
			}
		}()
	}
	wg.Wait()
}
