package elligator

import (
	"io"
	"runtime"
	"sync/atomic"
)

// Pool keeps a bounded stock of ready keypairs so that a handshake need not pay for key
// generation (about two tries of a base-point multiplication and a square root) at the
// moment a connection arrives. The stock is made ahead, while nobody is waiting for it.
//
// A keypair is handed out at most once: Get removes it from the pool, and nothing keeps a
// copy. An ephemeral key must never serve two handshakes, since the same representative
// seen twice on the wire would link the two connections to one another, and a repeated
// secret would give both sessions related keys.
//
// Refilling is done by at most one goroutine at a time. It is started when a Get leaves
// the pool below its low mark, or by Refill whenever the pool is not full; it makes
// keypairs until the pool is full, yielding the processor after each one so that waiting
// work runs first, and then exits: an idle pool costs nothing and holds no goroutine. Its
// rate is thereby bounded by one processor, and its total by what is drawn: it never makes
// more than the bound ahead of demand. When the pool is empty, Get makes a keypair inline,
// so a burst larger than the pool slows down to the cost of generation but never waits on
// the refill.
type Pool struct {
	rand      io.Reader
	ready     chan *Keypair // the stock; its capacity is the bound
	low       int           // a Get that leaves fewer than this starts a refill
	refilling atomic.Bool   // a refill goroutine is running
}

// NewPool returns an empty pool holding at most size keypairs drawn from rand, which must
// be safe for concurrent use (crypto/rand.Reader is). A refill starts when fewer than
// half of size are left. It panics if size < 1.
func NewPool(rand io.Reader, size int) *Pool {
	if size < 1 {
		panic("elligator: pool size must be at least 1")
	}
	return &Pool{rand: rand, ready: make(chan *Keypair, size), low: (size + 1) / 2}
}

// Get returns a keypair that no one else has had or will have. It takes one from the
// stock when there is one and otherwise generates it inline; either way it starts a
// refill when the stock is low.
func (p *Pool) Get() (*Keypair, error) {
	select {
	case kp := <-p.ready:
		p.refillBelow(p.low)
		return kp, nil
	default:
		p.refillBelow(p.low)
		return GenerateKeypair(p.rand)
	}
}

// Len returns how many keypairs are in stock.
func (p *Pool) Len() int { return len(p.ready) }

// Cap returns the bound on the stock.
func (p *Pool) Cap() int { return cap(p.ready) }

// Refill starts the refill goroutine unless the stock is full or one is running, and
// returns at once. A server calls it when it starts, so the stock is made before the
// first client arrives.
func (p *Pool) Refill() { p.refillBelow(cap(p.ready)) }

// refillBelow starts the refill goroutine if the stock is below mark and none is running.
func (p *Pool) refillBelow(mark int) {
	if len(p.ready) < mark && p.refilling.CompareAndSwap(false, true) {
		go p.fill()
	}
}

// fill makes keypairs until the stock is full. After it clears the running flag it looks
// once more, since a Get that drained the stock in between saw the flag set and started
// nothing.
func (p *Pool) fill() {
	for {
		for len(p.ready) < cap(p.ready) {
			kp, err := GenerateKeypair(p.rand)
			if err != nil {
				// The source is failing; Get reports the error when it generates inline.
				p.refilling.Store(false)
				return
			}
			p.ready <- kp // only this goroutine adds, so there is room
			runtime.Gosched()
		}
		p.refilling.Store(false)
		if len(p.ready) >= p.low || !p.refilling.CompareAndSwap(false, true) {
			return
		}
	}
}
