package lifecycle

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/ptreactor/ptreactor/reactor"
)

// After a burst of connections ends, the heap it used is garbage that no collection frees:
// a quiet process allocates nothing, so no GC runs (the runtime forces one only every two
// minutes), and the scavenger returns only what lies above the heap goal that the burst
// raised. Measured in `ptbench lab --scenario burst` (500 connections, half of them
// garbage): RSS stayed 4.6 MiB (client) and 7.9 MiB (server) above its level before the
// burst for the whole 10 s watch. So lifecycle watches the engine's tunnel count on a slow
// timer and, once it has fallen far from its peak, collects twice and hands the free pages
// back (handBack.run).

// handBackTick is how often the tunnel count is looked at: once a second reads one atomic.
const handBackTick = time.Second

// handBackDrop is how many tunnels below its peak the count must fall before a hand-back is
// worth its cost: about 16-30 KiB of heap per tunnel, so smaller drops leave less than the
// 4 MiB a hand-back is for.
const handBackDrop = 100

// handBackEvery is the shortest gap between two hand-backs, so that a bridge whose count
// swings widely (probes come and go in waves) collects at most this often.
const handBackEvery = 10 * time.Second

// handBack decides when a process that went quiet after growing returns its freed heap to
// the OS: when the tunnel count is at most half its peak since the last hand-back, at least
// handBackDrop below it, and not rising (a burst still arriving is left alone).
type handBack struct {
	drop  int
	every time.Duration
	peak  int
	prev  int
	last  time.Time
}

func newHandBack() *handBack { return &handBack{drop: handBackDrop, every: handBackEvery} }

// due is told the tunnel count at each tick and says whether to hand memory back now.
func (h *handBack) due(tunnels int, now time.Time) bool {
	h.peak = max(h.peak, tunnels)
	rising := tunnels > h.prev
	h.prev = tunnels
	if rising || h.peak-tunnels < h.drop || tunnels > h.peak/2 || (!h.last.IsZero() && now.Sub(h.last) < h.every) {
		return false
	}
	h.peak, h.last = tunnels, now
	return true
}

// run checks eng's tunnel count every handBackTick until done is closed, and hands freed
// memory back when due says so.
func (h *handBack) run(done <-chan struct{}, eng *reactor.Engine, log *slog.Logger) {
	t := time.NewTicker(handBackTick)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			if n := eng.Tunnels(); h.due(n, now) {
				took, released := freeOSMemory()
				log.Info("returned freed memory to the OS", "tunnels", n, "released", released, "took", took)
			}
		}
	}
}

// freeOSMemory collects twice and returns every free page to the OS; it reports how long
// that took and how many bytes went back. Two collections, because sync.Pool (gnet's and
// bytebufferpool's buffers) keeps what it held before one GC in a victim cache until the
// next. The collections are the runtime's concurrent ones: the event loops keep running
// beside them, stopped only for the two short stop-the-world phases of each. Measured
// after a 500-connection burst, on two cores shared with the other PT and the load: 3 to
// 11 ms of wall time for both collections and the scavenge, releasing 3 to 9 MiB, with
// stop-the-world phases of 0.05 to 0.6 ms per collection (GODEBUG=gctrace=1). Marking
// costs in proportion to the live heap, that is to the tunnels still open, which is why
// it waits for the count to halve and runs at most every handBackEvery.
func freeOSMemory() (took time.Duration, released uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	t0 := time.Now()
	runtime.GC()
	debug.FreeOSMemory()
	took = time.Since(t0)
	metrics.Read(s)
	if after := s[0].Value.Uint64(); after > before {
		released = after - before
	}
	return took, released
}
