package obfs4

import (
	"sync"
	"time"
)

// Replay filter bounds.
const (
	replayTTL      = 3 * time.Hour
	replayCapacity = 100 * 1024
)

// replayFilter remembers the MAC_C of every accepted client handshake for three hours, so
// that a censor who records a handshake and plays it back gets the same silent treatment
// as any other failed handshake. It is shared by all of a server's wires, which run on
// several event loops, hence the lock; it is touched once per handshake.
type replayFilter struct {
	mu      sync.Mutex
	seen    map[[macLength]byte]struct{}
	fifo    []replayEntry // ring in insertion (and so time) order
	head, n int
	last    time.Time
}

type replayEntry struct {
	mac [macLength]byte
	at  time.Time
}

func newReplayFilter() *replayFilter {
	return &replayFilter{seen: make(map[[macLength]byte]struct{})}
}

// testAndSet reports whether mac was seen within the TTL, and records it if not.
func (f *replayFilter) testAndSet(now time.Time, mac *[macLength]byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Before(f.last) {
		// The clock went backwards: no entry's age can be trusted.
		clear(f.seen)
		f.head, f.n = 0, 0
	}
	f.last = now
	for f.n > 0 && now.Sub(f.fifo[f.head].at) > replayTTL {
		f.pop()
	}
	if _, hit := f.seen[*mac]; hit {
		return true
	}
	if f.n == replayCapacity {
		f.pop()
	}
	if f.fifo == nil || f.n == len(f.fifo) {
		f.grow()
	}
	f.fifo[(f.head+f.n)%len(f.fifo)] = replayEntry{mac: *mac, at: now}
	f.n++
	f.seen[*mac] = struct{}{}
	return false
}

func (f *replayFilter) pop() {
	delete(f.seen, f.fifo[f.head].mac)
	f.head = (f.head + 1) % len(f.fifo)
	f.n--
}

// grow doubles the ring (up to the capacity), so an idle bridge does not hold 3 MiB.
func (f *replayFilter) grow() {
	size := 2 * len(f.fifo)
	if size == 0 {
		size = 64
	}
	if size > replayCapacity {
		size = replayCapacity
	}
	ring := make([]replayEntry, size)
	for i := 0; i < f.n; i++ {
		ring[i] = f.fifo[(f.head+i)%len(f.fifo)]
	}
	f.fifo, f.head = ring, 0
}
