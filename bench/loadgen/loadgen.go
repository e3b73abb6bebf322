package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/panjf2000/gnet/v2"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/obfs4"
	"github.com/ptreactor/ptreactor/internal/gnetprocs"
)

// Config is one load run.
type Config struct {
	// Bridges are the bridges to load; tunnels are spread over them in turn. More than one
	// is for capacities beyond one process's descriptors: bridge instances that share one
	// obfs4 identity, as behind a TCP balancer.
	Bridges []*Bridge
	// Conns is how many tunnels the run holds open; a tunnel that is lost is replaced.
	Conns int
	// Rate is how many tunnels are started per second; 0 starts them as fast as
	// Concurrency allows.
	Rate float64
	// Concurrency bounds the tunnels being set up at once (connect, obfs4 handshake and,
	// with TorLink, the link handshake).
	Concurrency int
	// Duration is how long the run lasts; with UntilHeld it ends sooner, as soon as Conns
	// tunnels are held and no set-up (with TorLink, no link handshake) is in progress.
	Duration  time.Duration
	UntilHeld bool
	// Timeout bounds each stage of a tunnel's set-up on its own: the TCP connect, the obfs4
	// handshake, the tor link handshake.
	Timeout time.Duration
	// TorLink performs tor's link handshake through every tunnel (see the package doc).
	TorLink bool
	// Logger receives gnet's warnings and errors; nil discards them.
	Logger *slog.Logger
}

// Defaults of the command's flags.
const (
	DefaultConcurrency = 256
	DefaultTimeout     = 30 * time.Second
)

const (
	// fdReserve is what the process needs besides one descriptor per tunnel and one more per
	// set-up in flight (the dialed socket and gnet's duplicate exist together for a moment):
	// the pollers, their wake-up descriptors, stdio, the output file.
	fdReserve = 64
	// failBackoff is how long a set-up slot rests after a failure, so a bridge that refuses
	// is asked again at a bounded rate rather than in a tight loop.
	failBackoff = 100 * time.Millisecond
	// giveUpAfter: a run in which this many set-ups (or Conns, if fewer) have failed and
	// none has been completed stops at once; the bridge is not working.
	giveUpAfter = 32
	// histMax is the longest latency the histograms hold, in microseconds.
	histMax = int64(10 * time.Minute / time.Microsecond)
)

// Generator drives one load run against a bridge. It is used once: New, then Run.
type Generator struct {
	cfg Config
	cli *gnet.Client

	slots   chan struct{} // one token per set-up in flight
	changed chan struct{} // wakes the scheduler: a slot freed or a tunnel lost
	dials   sync.WaitGroup
	links   sync.WaitGroup
	stop    atomic.Bool // the run is over: closes are ours, not the bridge's

	attempts atomic.Int64
	ok       atomic.Int64
	linkOK   atomic.Int64
	failed   atomic.Int64
	held     atomic.Int64
	peak     atomic.Int64
	inflight atomic.Int64

	mu       sync.Mutex
	loops    map[gnet.EventLoop]*loopState
	setup    *hdrhistogram.Histogram // connect start to obfs4 handshake done, µs
	link     *hdrhistogram.Histogram // obfs4 done to tor's VERSIONS parsed, µs
	errs     [numKinds]int64
	sample   [numKinds]string
	started  time.Time
	filledAt time.Time // when Conns tunnels were first held
}

// New checks cfg, raises the descriptor limit and starts the event loops.
func New(cfg Config) (*Generator, error) {
	switch {
	case len(cfg.Bridges) == 0:
		return nil, errors.New("no bridge")
	case cfg.Conns < 1:
		return nil, fmt.Errorf("%d tunnels to hold: want at least 1", cfg.Conns)
	case cfg.Rate < 0:
		return nil, fmt.Errorf("a rate of %g per second: want 0 (as fast as it goes) or more", cfg.Rate)
	case cfg.Duration <= 0:
		return nil, fmt.Errorf("a run of %v: want more than 0", cfg.Duration)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Concurrency > cfg.Conns {
		cfg.Concurrency = cfg.Conns
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Generator{
		cfg:     cfg,
		slots:   make(chan struct{}, cfg.Concurrency),
		changed: make(chan struct{}, 1),
		loops:   make(map[gnet.EventLoop]*loopState),
		setup:   hdrhistogram.New(1, histMax, 3),
		link:    hdrhistogram.New(1, histMax, 3),
	}
	limit := raiseFileLimit()
	if need := uint64(cfg.Conns+cfg.Concurrency) + fdReserve; limit > 0 && need > limit {
		return nil, fmt.Errorf("%d tunnels with %d set-ups in flight need about %d descriptors; this process may open %d (its hard RLIMIT_NOFILE)",
			cfg.Conns, cfg.Concurrency, need, limit)
	}
	cli, err := gnet.NewClient(&handler{g: g},
		gnet.WithNumEventLoop(gnetprocs.EventLoops()),
		gnet.WithLogger(gnetLogger{cfg.Logger}),
		gnet.WithReadBufferCap(64<<10),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
	)
	if err != nil {
		return nil, err
	}
	if err := cli.Start(); err != nil {
		return nil, err
	}
	g.cli = cli
	return g, nil
}

// Run performs the load run and returns what it measured. It ends after cfg.Duration, when
// ctx is cancelled (the result is then marked Interrupted), when UntilHeld is met, or as
// soon as giveUpAfter set-ups have failed without one success. The tunnels are closed
// before it returns.
func (g *Generator) Run(ctx context.Context) *Result {
	baseRSS := selfRSS()
	g.mu.Lock()
	g.started = time.Now()
	g.mu.Unlock()
	runCtx, cancel := context.WithTimeout(ctx, g.cfg.Duration)
	defer cancel()
	g.schedule(runCtx)
	cancel()
	g.dials.Wait()

	r := g.result()
	r.Interrupted = ctx.Err() != nil
	r.RSS, r.BaseRSS = selfRSS(), baseRSS
	r.Descriptors = openDescriptors()

	g.stop.Store(true)
	_ = g.cli.Stop()
	g.links.Wait()
	return r
}

// schedule starts set-ups until the run ends.
func (g *Generator) schedule(ctx context.Context) {
	var interval time.Duration
	if g.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / g.cfg.Rate)
	}
	next := time.Now()
	limit := int64(min(g.cfg.Conns, giveUpAfter))
	for {
		switch {
		case ctx.Err() != nil:
			return
		case g.cfg.UntilHeld && g.held.Load() >= int64(g.cfg.Conns) && g.inflight.Load() == 0:
			return
		case g.complete() == 0 && g.failed.Load() >= limit:
			return
		case g.held.Load()+int64(len(g.slots)) >= int64(g.cfg.Conns):
			select { // full: wait for a slot to free or a tunnel to go
			case <-ctx.Done():
			case <-g.changed:
			}
			continue
		}
		if interval > 0 {
			now := time.Now()
			if next.Before(now.Add(-time.Second)) {
				next = now // fell behind (slots were full): do not burst to catch up
			}
			if d := next.Sub(now); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			next = next.Add(interval)
		}
		select {
		case <-ctx.Done():
			return
		case g.slots <- struct{}{}:
		}
		g.inflight.Add(1)
		n := g.attempts.Add(1)
		g.dials.Add(1)
		go g.attempt(ctx, g.cfg.Bridges[int((n-1)%int64(len(g.cfg.Bridges)))])
	}
}

// attempt dials the bridge and hands the connection to an event loop, where the tunnel
// (tunnel.go) takes over and frees the slot when its set-up ends.
func (g *Generator) attempt(ctx context.Context, b *Bridge) {
	defer g.dials.Done()
	// The bridge line was accepted by this same call when it was parsed.
	wire, err := obfs4.Transport{}.Client(b.Args)
	if err != nil {
		g.failure(Local, err)
		g.release(true)
		return
	}
	t := &tunnel{g: g, wire: wire, start: time.Now()}
	t.pacer = wire.Pacer()
	d := net.Dialer{Timeout: g.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", b.Addr.String())
	if err != nil {
		if ctx.Err() != nil { // the run ended while dialing: not the bridge's failure
			g.release(false)
			return
		}
		g.failure(dialKind(err), err)
		g.release(true)
		return
	}
	// EnrollContext puts a duplicate of the socket on a loop, closes conn and returns
	// once OnOpen has run.
	if _, err := g.cli.EnrollContext(conn, t); err != nil {
		g.failure(Local, err)
		g.release(true)
	}
}

// complete is the number of set-ups completed: obfs4 handshakes, or with TorLink the link
// handshakes after them.
func (g *Generator) complete() int64 {
	if g.cfg.TorLink {
		return g.linkOK.Load()
	}
	return g.ok.Load()
}

// release ends a set-up: it no longer counts as in flight, and its slot is free again at
// once, or after failBackoff when the set-up failed.
func (g *Generator) release(failed bool) {
	g.inflight.Add(-1)
	if failed {
		time.AfterFunc(failBackoff, g.freeSlot)
		return
	}
	g.freeSlot()
}

func (g *Generator) freeSlot() {
	<-g.slots
	g.wake()
}

func (g *Generator) wake() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// gained counts a tunnel whose obfs4 handshake completed after setup.
func (g *Generator) gained(setup time.Duration) {
	g.ok.Add(1)
	n := g.held.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	g.mu.Lock()
	_ = g.setup.RecordValue(max(setup.Microseconds(), 1))
	if n >= int64(g.cfg.Conns) && g.filledAt.IsZero() {
		g.filledAt = time.Now()
	}
	g.mu.Unlock()
}

func (g *Generator) linked(d time.Duration) {
	g.linkOK.Add(1)
	g.mu.Lock()
	_ = g.link.RecordValue(max(d.Microseconds(), 1))
	g.mu.Unlock()
}

// failure counts a tunnel lost to k; err, the first of its kind, is kept for the report.
func (g *Generator) failure(k Kind, err error) {
	g.failed.Add(1)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.errs[k]++
	if g.sample[k] == "" && err != nil {
		g.sample[k] = err.Error()
	}
}

// loopFor returns the scratch state of el, made on first use.
func (g *Generator) loopFor(el gnet.EventLoop) *loopState {
	g.mu.Lock()
	defer g.mu.Unlock()
	ls, ok := g.loops[el]
	if !ok {
		ls = &loopState{
			wbuf: make([]byte, 0, 16<<10),
			out:  codec.Output{Payload: make([]byte, 0, 80<<10)},
		}
		g.loops[el] = ls
	}
	return ls
}

// Snapshot is the run so far, for a progress line.
type Snapshot struct {
	Elapsed                     time.Duration
	Attempts, OK, Held, Pending int64
	Errors                      int64
}

// Snapshot may be called from any goroutine while Run runs.
func (g *Generator) Snapshot() Snapshot {
	g.mu.Lock()
	var el time.Duration
	if !g.started.IsZero() {
		el = time.Since(g.started)
	}
	var errs int64
	for _, n := range g.errs {
		errs += n
	}
	g.mu.Unlock()
	return Snapshot{Elapsed: el, Attempts: g.attempts.Load(), OK: g.ok.Load(), Held: g.held.Load(),
		Pending: g.inflight.Load(), Errors: errs}
}

// gnetLogger passes gnet's warnings and errors on; gnet's own default logger would write
// to stdout, where the report goes.
type gnetLogger struct{ l *slog.Logger }

func (gnetLogger) Debugf(string, ...any) {}
func (gnetLogger) Infof(string, ...any)  {}
func (g gnetLogger) Warnf(format string, args ...any) {
	g.l.Warn("gnet: " + fmt.Sprintf(format, args...))
}
func (g gnetLogger) Errorf(format string, args ...any) {
	g.l.Error("gnet: " + fmt.Sprintf(format, args...))
}
func (g gnetLogger) Fatalf(format string, args ...any) {
	g.l.Error("gnet: " + fmt.Sprintf(format, args...))
}
