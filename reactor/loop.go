package reactor

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/ptreactor/ptreactor/codec"
)

// loopState is what one event loop owns besides its conns: the tunnels the sweep watches
// and the scratch buffers every tunnel of the loop shares (the loop runs one callback at a
// time, so one set suffices and the data path allocates nothing).
type loopState struct {
	e     *Engine
	el    gnet.EventLoop
	watch map[*tunnel]struct{}

	wbuf []byte       // Wrap output, SOCKS replies, paced chunks
	out  codec.Output // Unwrap output

	fromTor, toTor payloadCount // payload bytes of the loop's tunnels (Stats)

	fast         atomic.Bool   // something is paused or lingering: sweep every SweepFast
	hurryUp      chan struct{} // wakes the ticker when fast is newly set
	sweepPending atomic.Bool
	sweepRun     gnet.RunnableFunc
}

// loopFor returns the state of el, creating it (and its sweep ticker) on first use.
func (e *Engine) loopFor(el gnet.EventLoop) *loopState {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ls, ok := e.loops[el]; ok {
		return ls
	}
	ls := &loopState{
		e:       e,
		el:      el,
		watch:   make(map[*tunnel]struct{}),
		wbuf:    make([]byte, 0, 80<<10),
		out:     codec.Output{Payload: make([]byte, 0, 80<<10), Reply: make([]byte, 0, 4<<10)},
		hurryUp: make(chan struct{}, 1),
	}
	ls.sweepRun = ls.sweep
	e.loops[el] = ls
	go ls.tick()
	return ls
}

// tick asks the loop to sweep, often while something is paused or lingering, rarely else.
func (ls *loopState) tick() {
	timer := time.NewTimer(ls.e.lim.SweepSlow)
	defer timer.Stop()
	for {
		d := ls.e.lim.SweepSlow
		if ls.fast.Load() {
			d = ls.e.lim.SweepFast
		}
		timer.Reset(d)
		select {
		case <-ls.e.done:
			return
		case <-ls.hurryUp:
			continue // re-arm at SweepFast
		case <-timer.C:
		}
		if ls.sweepPending.Swap(true) {
			continue // the loop has not run the last one yet
		}
		if err := ls.el.Execute(context.Background(), ls.sweepRun); err != nil {
			return
		}
	}
}

// hurry switches the sweep to SweepFast at once. The ticker may be half-way through a
// SweepSlow wait; without the wake-up a source paused then would sit off the loop for up
// to 100 ms although its sink drains in microseconds, which capped a single bulk tunnel at
// about 130 MB/s.
func (ls *loopState) hurry() {
	if ls.fast.Swap(true) {
		return
	}
	select {
	case ls.hurryUp <- struct{}{}:
	default:
	}
}

// sweep runs on the loop.
func (ls *loopState) sweep(context.Context) error {
	ls.sweepPending.Store(false)
	now := time.Now()
	fast := false
	for t := range ls.watch {
		keep, f := t.check(now)
		fast = fast || f
		if !keep && t.watched {
			t.watched = false
			delete(ls.watch, t)
		}
	}
	ls.fast.Store(fast)
	return nil // an error would stop the loop
}

// closeKept closes the descriptors of paused ends; only after the loops have stopped.
func (ls *loopState) closeKept() {
	for t := range ls.watch {
		for _, x := range [...]*end{&t.tor, &t.net} {
			if x.fd >= 0 {
				closeFD(x.fd)
				x.fd = -1
			}
		}
	}
}

func (e *Engine) stopping() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}
