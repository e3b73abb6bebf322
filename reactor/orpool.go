package reactor

// This file is the pool of Extended ORPorts a bridge may feed instead of one tor: several
// tor instances with the same identity, each with its own ExtORPort and auth cookie. It
// chooses the instance for each client (rendezvous hashing of the client's IP address) and
// keeps track of the instances that are down.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ORInstance is one tor of an ORPort pool: its Extended ORPort and the file that holds its
// auth cookie.
type ORInstance struct {
	Addr       netip.AddrPort
	CookieFile string
}

// MaxORPoolSize is the most instances a pool may hold: a dial keeps the instances it has
// tried in one 64-bit mask, which keeps a pick free of allocations.
const MaxORPoolSize = 64

// The backoff of an instance that is down: the first retry after poolBackoffMin, doubling
// with each failed retry up to poolBackoffMax.
const (
	poolBackoffMin = time.Second
	poolBackoffMax = time.Minute
)

// levelNotice is lifecycle's notice level (between Info and Warn, passed on to tor).
const levelNotice = slog.Level(2)

// orPool is the shared state of the pool; the instances' health is changed by the dials of
// every loop's goroutines at once.
type orPool struct {
	log  *slog.Logger
	inst []*poolInstance
}

type poolInstance struct {
	ORInstance
	n    int    // 1-based position in the pool, for logs: its address is scrubbed there
	seed uint64 // the FNV-1a state after the instance's address

	// retryAt is 0 while the instance is up; while it is down, the UnixNano time from
	// which a dial may try it again. Read without mu by every pick.
	retryAt atomic.Int64
	mu      sync.Mutex // serializes the changes of health below and of retryAt
	down    bool
	since   time.Time // when down last changed
	backoff time.Duration
}

// FNV-1a, 64 bits.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvAdd(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

func newORPool(log *slog.Logger, insts []ORInstance) *orPool {
	p := &orPool{log: log, inst: make([]*poolInstance, len(insts))}
	for i, in := range insts {
		a := in.Addr.Addr().Unmap().As16()
		var port [2]byte
		binary.BigEndian.PutUint16(port[:], in.Addr.Port())
		p.inst[i] = &poolInstance{ORInstance: in, n: i + 1, seed: fnvAdd(fnvAdd(fnvOffset, a[:]), port[:])}
	}
	return p
}

// weight is the instance's rendezvous weight for a client address: FNV-1a over the
// instance's address and port and then the client's address, through a 64-bit finalizer
// (MurmurHash3's), since FNV-1a alone spreads the last bytes it takes poorly. The function
// is fixed rather than keyed with a per-process secret so that a client keeps its instance
// when ptreactor restarts, and when several ptreactors with the same pool stand behind one
// balancer. A client that could aim at one instance gains nothing it could not get by
// opening many connections from one address.
func (in *poolInstance) weight(client *[16]byte) uint64 {
	h := fnvAdd(in.seed, client[:])
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// pick is the instance a dial for client should try next, -1 when every one is in tried:
// the highest weight among the instances that are up or due for a retry, else, when every
// untried instance is down, the highest weight among those (a pool that is all down is
// still tried rather than refused). Removing an instance moves only the clients whose
// highest weight it held; adding one takes only the clients that now rank it first.
func (p *orPool) pick(client *[16]byte, tried uint64, now int64) int {
	best, bestDown := -1, -1
	var bw, bdw uint64
	for i, in := range p.inst {
		if tried&(1<<i) != 0 {
			continue
		}
		w := in.weight(client)
		if r := in.retryAt.Load(); r == 0 || now >= r {
			if best < 0 || w > bw {
				best, bw = i, w
			}
		} else if bestDown < 0 || w > bdw {
			bestDown, bdw = i, w
		}
	}
	if best >= 0 {
		return best
	}
	return bestDown
}

// failed marks an instance down after a dial to it that started at started failed with
// err, at now. The first failure is logged at warning; a failed retry doubles the backoff.
// Reports of dials that began before the instance last changed state, or before its retry
// time, are stale (they were aimed at the instance as it was) and change nothing.
func (p *orPool) failed(i int, err error, started, now time.Time) {
	in := p.inst[i]
	in.mu.Lock()
	if in.down && started.UnixNano() < in.retryAt.Load() || !in.down && started.Before(in.since) {
		in.mu.Unlock()
		return
	}
	wasDown := in.down
	if !wasDown {
		in.backoff, in.since = poolBackoffMin, now
	} else {
		in.backoff = min(2*in.backoff, poolBackoffMax)
	}
	in.down = true
	in.retryAt.Store(now.Add(in.backoff).UnixNano())
	backoff := in.backoff
	in.mu.Unlock()

	if wasDown {
		p.log.Debug("ORPort pool instance still down", "instance", in.n, "extorport", in.Addr.String(),
			"err", err, "retry_in", backoff)
		return
	}
	p.log.Warn("ORPort pool instance down; its clients go to the next instance until it is back",
		"instance", in.n, "extorport", in.Addr.String(), "err", err, "retry_in", backoff)
}

// succeeded marks an instance up after a dial to it that started at started succeeded;
// back from down, that is logged at notice. A dial that began before the instance went
// down says nothing about it now.
func (p *orPool) succeeded(i int, started, now time.Time) {
	in := p.inst[i]
	if in.retryAt.Load() == 0 {
		return
	}
	in.mu.Lock()
	if !in.down || started.Before(in.since) {
		in.mu.Unlock()
		return
	}
	in.down, in.backoff, in.since = false, 0, now
	in.retryAt.Store(0)
	in.mu.Unlock()
	p.log.Log(context.Background(), levelNotice, "ORPort pool instance back up",
		"instance", in.n, "extorport", in.Addr.String())
}

// dial connects a client to its instance: the first of its ranking that is up, and on a
// failure the next, all within ctx. It returns the last failure when none succeeded.
func (p *orPool) dial(ctx context.Context, d *dialer, client net.Addr, transport string) (net.Conn, error) {
	userAddr := addrPortOf(client)
	key := userAddr.Addr().Unmap().As16() // the zero address for a client without one
	var (
		tried   uint64
		lastErr error
	)
	for {
		i := p.pick(&key, tried, time.Now().UnixNano())
		if i < 0 {
			return nil, lastErr
		}
		tried |= 1 << i
		in := p.inst[i]
		started := time.Now()
		c, err := p.attempt(ctx, d, in, userAddr, transport, tried)
		if err == nil {
			p.succeeded(i, started, time.Now())
			return c, nil
		}
		lastErr = fmt.Errorf("ORPort pool instance %d: %w", in.n, err)
		if dl, ok := ctx.Deadline(); ctx.Err() != nil || ok && !time.Now().Before(dl) {
			// No time is left for another instance. An instance that used up the setup's
			// time did not answer in time and counts as down; a dial cancelled because the
			// engine is closing says nothing about it.
			if !errors.Is(context.Cause(ctx), context.Canceled) {
				p.failed(i, err, started, time.Now())
			}
			return nil, lastErr
		}
		p.failed(i, err, started, time.Now())
	}
}

// attempt dials one instance. While other instances are left to try, it may take only half
// of the time the setup has left, so that an instance that accepts but never answers (a
// tor that hangs) leaves time for the next one.
func (p *orPool) attempt(ctx context.Context, d *dialer, in *poolInstance, userAddr netip.AddrPort, transport string, tried uint64) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok && tried != 1<<len(p.inst)-1 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
		defer cancel()
	}
	return d.dialExtOR(ctx, in.Addr, in.CookieFile, userAddr, transport)
}
