package bench

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
)

// Usage is the CPU both PTs of a pair spent over one measurement.
type Usage struct {
	Client, Server time.Duration
}

func pairCPU(p *harness.Pair) (Usage, error) {
	c, err := CPUTime(p.Client.Pid())
	if err != nil {
		return Usage{}, err
	}
	s, err := CPUTime(p.Server.Pid())
	return Usage{c, s}, err
}

func (u Usage) sub(v Usage) Usage { return Usage{u.Client - v.Client, u.Server - v.Server} }

// BulkResult is one bulk transfer measurement.
type BulkResult struct {
	Tunnels int
	Bytes   int64
	Elapsed time.Duration
	CPU     Usage
}

// MBps is the payload rate in 10^6 bytes per second.
func (r BulkResult) MBps() float64 { return float64(r.Bytes) / r.Elapsed.Seconds() / 1e6 }

// CPUPerGiB is CPU seconds per GiB of payload on each side.
func (r BulkResult) CPUPerGiB() (client, server float64) {
	g := float64(r.Bytes) / (1 << 30)
	return r.CPU.Client.Seconds() / g, r.CPU.Server.Seconds() / g
}

// Bulk opens tunnels through p, then moves total bytes from the bridge side to the client
// (the direction most Tor traffic flows), split evenly over the tunnels, and times only the
// transfer. The payload is zeros and unchecked: the generator's CPU goes to the sockets.
func Bulk(ctx context.Context, p *harness.Pair, tunnels int, total int64) (BulkResult, error) {
	conns, err := dialMany(ctx, p, tunnels, 64)
	if err != nil {
		return BulkResult{}, err
	}
	defer closeAll(conns)
	per := total / int64(tunnels)
	u0, err := pairCPU(p)
	if err != nil {
		return BulkResult{}, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, tunnels)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if dl, ok := ctx.Deadline(); ok {
				c.SetDeadline(dl)
			}
			if err := Xfer(c, 0, per, 0); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return BulkResult{}, err
	}
	u1, err := pairCPU(p)
	if err != nil {
		return BulkResult{}, err
	}
	return BulkResult{Tunnels: tunnels, Bytes: per * int64(tunnels), Elapsed: elapsed, CPU: u1.sub(u0)}, nil
}

// HandshakeResult is one handshake-rate measurement.
type HandshakeResult struct {
	N       int
	Elapsed time.Duration
	CPU     Usage
}

// PerSecond is completed tunnels per second.
func (r HandshakeResult) PerSecond() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// CPUPer is the CPU per tunnel on each side.
func (r HandshakeResult) CPUPer() (client, server time.Duration) {
	if r.N == 0 {
		return 0, 0
	}
	return r.CPU.Client / time.Duration(r.N), r.CPU.Server / time.Duration(r.N)
}

// Handshakes has workers open tunnels back to back for d: SOCKS connect, the transport's
// handshake, one round trip to the ORPort stand-in, close. It counts completed tunnels.
func Handshakes(ctx context.Context, p *harness.Pair, workers int, d time.Duration) (HandshakeResult, error) {
	u0, err := pairCPU(p)
	if err != nil {
		return HandshakeResult{}, err
	}
	var n atomic.Int64
	var firstErr atomic.Pointer[error]
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				c, err := p.Dial(dctx)
				cancel()
				if err == nil {
					c.SetDeadline(time.Now().Add(10 * time.Second))
					err = Xfer(c, 0, 0, 0)
					c.Close()
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if e := firstErr.Load(); e != nil {
		return HandshakeResult{}, *e
	}
	u1, err := pairCPU(p)
	if err != nil {
		return HandshakeResult{}, err
	}
	return HandshakeResult{N: int(n.Load()), Elapsed: elapsed, CPU: u1.sub(u0)}, nil
}

// IdleResult is the memory cost of idle tunnels.
type IdleResult struct {
	N                     int
	ClientBase, ClientRSS int64
	ServerBase, ServerRSS int64
	ClientPer, ServerPer  float64 // bytes per tunnel
}

// Idle opens n tunnels (each proven with one round trip), lets them sit for settle, and
// reports the growth of each PT's RSS per tunnel. The tunnels are closed before it returns.
func Idle(ctx context.Context, p *harness.Pair, n int, settle time.Duration) (IdleResult, error) {
	var r IdleResult
	var err error
	r.N = n
	if r.ClientBase, err = RSS(p.Client.Pid()); err != nil {
		return r, err
	}
	if r.ServerBase, err = RSS(p.Server.Pid()); err != nil {
		return r, err
	}
	conns, err := dialMany(ctx, p, n, 64)
	defer closeAll(conns)
	if err != nil {
		return r, err
	}
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	if r.ClientRSS, err = RSS(p.Client.Pid()); err != nil {
		return r, err
	}
	if r.ServerRSS, err = RSS(p.Server.Pid()); err != nil {
		return r, err
	}
	r.ClientPer = float64(r.ClientRSS-r.ClientBase) / float64(n)
	r.ServerPer = float64(r.ServerRSS-r.ServerBase) / float64(n)
	return r, nil
}

// dialMany opens n tunnels, conc at a time, each proven with a zero-length transfer.
func dialMany(ctx context.Context, p *harness.Pair, n, conc int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := range n {
		sem <- struct{}{}
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			c, err := p.Dial(dctx)
			if err == nil {
				c.SetDeadline(time.Now().Add(20 * time.Second))
				if err = Xfer(c, 0, 0, 0); err != nil {
					c.Close()
				} else {
					c.SetDeadline(time.Time{})
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = fmt.Errorf("tunnel %d of %d: %w", i, n, err)
				}
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
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
