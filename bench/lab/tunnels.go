package lab

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ptreactor/ptreactor/bench"
)

// dialConcurrency is how many tunnels are being opened at once when many are wanted: enough
// to keep both PTs busy, few enough not to time out in their accept queues.
const dialConcurrency = 64

// tunnelTimeout bounds one tunnel's set-up and each small transfer.
const tunnelTimeout = 20 * time.Second

// setup opens one tunnel and proves it with one empty round trip to the stand-in.
func setup(ctx context.Context, dial dialer) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, tunnelTimeout)
	defer cancel()
	c, err := dial(dctx)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(tunnelTimeout))
	stop := context.AfterFunc(dctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	err = bench.Xfer(c, 0, 0, 0)
	stop()
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// openTunnels opens n tunnels, dialConcurrency at a time, each proven with one round trip.
// On the first failure it stops, closes what it opened and returns the error.
func openTunnels(ctx context.Context, dial dialer, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	sem := make(chan struct{}, dialConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-octx.Done():
		}
		if octx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := setup(octx, dial)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = fmt.Errorf("tunnel %d of %d: %s: %w", i+1, n, errorKind(err), err)
					cancel()
				}
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	if first != nil {
		closeAll(conns)
		return nil, first
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// interruptible makes blocked reads and writes on conns fail as soon as ctx ends; the
// returned function undoes it.
func interruptible(ctx context.Context, conns []net.Conn) func() bool {
	return context.AfterFunc(ctx, func() {
		for _, c := range conns {
			if c != nil {
				c.SetDeadline(time.Unix(1, 0))
			}
		}
	})
}

// proveAll runs one empty round trip on every conn, dialConcurrency at a time, and counts
// those that answered.
func proveAll(ctx context.Context, conns []net.Conn) (ok int, errs errorKinds) {
	errs = errorKinds{}
	defer interruptible(ctx, conns)()
	var mu sync.Mutex
	sem := make(chan struct{}, dialConcurrency)
	var wg sync.WaitGroup
	for _, c := range conns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.SetDeadline(time.Now().Add(tunnelTimeout))
			err := bench.Xfer(c, 0, 0, 0)
			c.SetDeadline(time.Time{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs.add(err)
				return
			}
			ok++
		}()
	}
	wg.Wait()
	return ok, errs
}
