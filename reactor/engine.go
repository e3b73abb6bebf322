// Package reactor is ptreactor's engine room: gnet event loops, listeners, outbound
// connections, the pairing of two connections into a tunnel, backpressure, timeouts and
// graceful drain. It knows bytes and codecs, not the environment or stdout: lifecycle
// configures it through Config (addresses already parsed and validated, the transports to
// serve, the Limits) and the Listen methods.
//
// # Shape
//
// One gnet engine (a gnet.Client: loops without gnet listeners) runs one event loop per
// core, and the Go runtime gets one processor more than there are loops, so that the
// goroutines waiting in Go's own poller (accepts, dials) are never stuck behind loops
// blocked in epoll_wait (internal/gnetprocs says why and what it measured). Listeners are
// ordinary net.Listeners served by one goroutine each (accept.go), because gnet stops its
// whole engine on an accept error such as EMFILE; each accepted conn is handed to the
// least busy loop. A tunnel is two gnet conns on that one loop, the
// tor end and the network end, with the transport's Wire between them: tor-bound bytes
// pass Unwrap, network-bound bytes pass Wrap (or the wire's Pacer). The outbound conn is
// dialed off the loop (on a goroutine of gnet's worker pool, with a timeout) and enrolled
// on the inbound conn's loop, so a tunnel is only ever touched by one goroutine and needs no lock. Everything of
// a tunnel lives in one struct reached from Conn.Context.
//
// # The tunnel
//
// A tunnel's code is split by what it is about:
//
//   - tunnel.go: the tunnel, its two ends and their states, and the events both sides
//     share. handler.go's callbacks land in opened, traffic and closed; traffic passes
//     tor's bytes to fromTor (the SOCKS negotiation, then Wrap or the pacer's queue) and the
//     network's to fromNet (the Unwrap loop, then the handshake's completion).
//   - role_client.go, role_server.go: the two sides, as a role the tunnel holds. A role's
//     methods are the events the sides act on differently (the inbound conn opened, tor's
//     bytes before relaying, the dialed conn opened, handshake done, handshake failed,
//     deadline passed, the network end gone mid-handshake, dial failed); the shared code
//     asks the role and never which side it is on. The client answers tor's SOCKS request
//     only once the transport handshake with the bridge is done; the server dials tor only
//     once the client's handshake is done, and stalls a failed one (codec.Stalling).
//   - pause.go: backpressure, below.
//   - gnetquirks.go: the three behaviours of gnet that the tunnel code works around, and
//     the only places it discards input or closes a conn.
//   - sweep.go: what the loop's periodic sweep (loop.go) checks on a tunnel.
//
// A tunnel's phase (SOCKS, handshake, dial, relay, stall, done) and each end's state
// (idle, open, pausing, paused, resuming, lingering, closed) have names (String) for the
// logs.
//
// # Backpressure
//
// (The limits named here are the fields of Limits, set in Config.)
//
// gnet reads every readable socket and buffers whatever the handler leaves, so the only
// way to stop reading a socket is to take it off the loop. When the bytes queued toward one
// end (its gnet outbound buffer plus our own queue) pass HighWater, the other end, the
// source, is paused: gnet closes its conn while the reactor keeps a duplicate of its fd.
// The kernel keeps the socket; its receive buffer fills and TCP flow control pushes back on
// the sender. The source is resumed once the sink is below LowWater, at the per-loop sweep
// or sooner when the sink itself has traffic, by enrolling the kept fd on the same loop
// again. pause.go has the mechanics and what they must keep: bytes owed to a paused end
// wait in its queue, and the partial frame pending at the pause is carried across it,
// because gnet drops a closing conn's unread input.
//
// Why this route: it needs only gnet's public API, costs nothing while bytes flow (the
// check is one OutboundBuffered call per read), and lets the kernel's TCP flow control do
// the actual pushing back, so a stalled tunnel holds no more than HighWater plus one read
// in user space. Dropping reads or closing the sink would lose data; buffering without
// bound is what gnet does by itself. If both directions are stuck (both peers stopped
// reading and keep sending), a tunnel whose queued bytes pass HardCap, or whose sink
// accepted nothing for NeverDrain while bytes were waiting, is closed and logged.
//
// # Sharing a loop
//
// Many tunnels share one loop, and one bulk tunnel must not starve the idle ones beside
// it. What bounds a tunnel's turn (read in gnet v2.9.7's event loop and poller):
//
//   - gnet runs level-triggered (the reactor does not ask for edge-triggered I/O): for
//     each ready conn in an epoll_wait (kqueue) round it makes one read(2) into the loop's
//     buffer, 64 KiB (WithReadBufferCap in start), and calls OnTraffic once. Bytes still in
//     the socket wait for the next round, after every other conn ready in this one has had
//     its turn.
//   - One OnTraffic handles what is buffered and no more: fromTor wraps (or queues) all of
//     it, at most one read; fromNet unwraps one read plus the partial frame left from the
//     last. Each write is one write(2) attempt; what the socket does not take waits in
//     gnet's outbound buffer, written when the socket is writable, again once per round.
//   - A tunnel whose sink does not keep up is paused at HighWater and is not read at all
//     until it drains, so a slow sink costs the loop no reads, and no memory past HighWater.
//   - Paced output (obfs4 iat-mode 1 and 2) waits on a per-tunnel timer off the loop; each
//     chunk is written from a task the timer queues with EventLoop.Execute, and gnet runs
//     queued tasks after the round's I/O events. The loop never sleeps for a tunnel.
//
// So each end of a busy tunnel holds the loop, per round, for one read of at most 64 KiB,
// its Wrap or Unwrap and one write attempt. A new tunnel's transport handshake takes a
// turn of its own: its key exchange runs in the callback that completes it.
//
// # Closing
//
// gnet has no half-close and drops queued bytes on close, so when one end closes, the
// other end lingers: it is closed only once its outbound buffer is empty (or after
// LingerMax), and whatever it sends meanwhile is discarded.
//
// # Timeouts
//
// gnet conns have no deadlines. Every loop has a ticker goroutine that asks the loop, via
// EventLoop.Execute, to sweep the tunnels that have a deadline, a paused or lingering end,
// or a congested sink: every SweepFast while anything is paused or lingering, else every
// SweepSlow. A pause or a linger wakes a ticker that is in its slow wait, so a resume never
// waits for SweepSlow.
//
// # Failures and overload
//
// failures.go knows the failures an operator can fix (tor's DENY, a cookie that does not
// match, an unreadable cookie file, a refused ORPort, descriptors or tunnels run out): the
// first of a spell is logged at warning at once, saying what to check, and its repeats in
// a summary per Config.FailureSummary (a minute); other failed dials are only counted, at
// info. Past the tunnel limit a server whose transport hides failed handshakes
// (codec.Holding) holds a new conn as it would a failed handshake rather than closing it,
// up to a bound of its own (accept.go says why both).
//
// # Counters
//
// stats.go counts what an operator watches (tunnels and handshakes by transport, payload
// bytes, pauses, caps hit, shed and held connections, outbound dial latency and failures
// by kind) and Engine.Stats returns a snapshot; lifecycle turns it into Prometheus metrics
// and STATUS lines. The counts never take a lock: payload bytes are per loop, written by that
// loop alone; the rest are atomics touched once per event in a tunnel's life, not per read.
//
// # Platforms
//
// The reactor runs on Linux (epoll) and on macOS and the BSDs (kqueue); the code that
// differs is split by file name. The descriptor limit is raised to the hard limit on every
// one of them. A source address range for the (Ext)ORPort uses IP_BIND_ADDRESS_NO_PORT on
// Linux, so one source address serves a port range per destination; elsewhere each source
// address binds its own ephemeral port, and New checks that the range's addresses are
// local (on macOS and the BSDs, 127.0.0.0/8 is not, beyond the addresses on lo0).
//
// On Windows the reactor builds but refuses to run (Supported, and lifecycle's ENV-ERROR).
// gnet's Windows engine is not an event loop over sockets: it reads every connection on a
// goroutine of its own, at once and without end, so the only way to stop reading a
// source is the pause above, and its resume needs a descriptor turned back into a
// net.Conn, which Go's net.FileConn does not do on Windows. A tunnel's memory could not be
// bounded there short of a second data path beside gnet, which is not worth its weight for
// a bridge or client that already runs on every other system.
package reactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/upstream"
	"github.com/ptreactor/ptreactor/internal/gnetprocs"
)

// ErrUnknownTransport is returned by the Listen methods for a transport name that is not in
// Config.Transports; lifecycle skips such names with a warning (pt-spec 3.3.2).
var ErrUnknownTransport = errors.New("no such transport")

// Config is what lifecycle learned from tor's environment and the flags that the data path
// needs, parsed and validated there: the reactor takes every value as it is.
type Config struct {
	Logger     *slog.Logger
	StateDir   string
	Transports map[string]codec.Transport // by the name tor uses
	Limits     Limits                     // the zero value means DefaultLimits()

	// Client mode.
	Proxy          *upstream.Proxy // TOR_PT_PROXY, nil for direct connections
	OutboundBindV4 netip.Addr      // TOR_PT_OUTBOUND_BIND_ADDRESS_V4, invalid when unset
	OutboundBindV6 netip.Addr      // TOR_PT_OUTBOUND_BIND_ADDRESS_V6, invalid when unset

	// Server mode.
	ORPort         netip.AddrPort // TOR_PT_ORPORT, invalid when unset
	ExtORPort      netip.AddrPort // TOR_PT_EXTENDED_SERVER_PORT, invalid when unset
	AuthCookieFile string         // TOR_PT_AUTH_COOKIE_FILE, with ExtORPort
	// ORSource, when valid, is the range (e.g. 127.0.0.0/8) the source address of
	// connections to the (Ext)ORPort is chosen from, so a busy bridge is not capped by the
	// ephemeral ports of one source address. lifecycle sets it from -orport-source.
	ORSource netip.Prefix
	// ORPool, when not empty, replaces ORPort, ExtORPort and AuthCookieFile: each client
	// goes to one of these Extended ORPorts, chosen by its IP address (orpool.go).
	// lifecycle sets it from -orport-pool; at most MaxORPoolSize instances.
	ORPool []ORInstance
	// ProxyProtocol lists the source ranges (a load balancer) whose connections to a
	// server start with a PROXY protocol v1 or v2 header; the client address it names is
	// the one USERADDR, the pool and the logs use. A missing or malformed header from such
	// a source is treated as a failed handshake. lifecycle sets it from -proxy-protocol.
	ProxyProtocol []netip.Prefix

	// FailureSummary is how often the repeats of a failure the log has warned about are
	// summarised (failures.go); 0 means once a minute.
	FailureSummary time.Duration
}

// Limits of the data path.
type Limits struct {
	HighWater  int           // queued bytes toward one end that pause its source
	LowWater   int           // ...and below which the source is resumed
	HardCap    int           // queued bytes toward one end that close the tunnel
	NeverDrain time.Duration // a sink that accepts nothing this long is closed
	LingerMax  time.Duration // how long a closing end may take to flush
	SweepFast  time.Duration // the sweep period while something is paused or lingering
	SweepSlow  time.Duration // ...and otherwise

	SOCKSTimeout           time.Duration // tor's SOCKS request, from the accept
	DialBridgeTimeout      time.Duration // TCP and the TOR_PT_PROXY handshake
	ClientHandshakeTimeout time.Duration // the transport handshake after the dial
	DialTorTimeout         time.Duration // (Ext)ORPort connect and authentication

	// MaxTunnels caps the tunnels of the engine below what the descriptor limit allows
	// (tunnelLimit); 0: no cap of its own.
	MaxTunnels int
}

// DefaultLimits are the limits ptreactor runs with.
func DefaultLimits() Limits {
	return Limits{
		HighWater:  512 << 10,
		LowWater:   256 << 10,
		HardCap:    8 << 20,
		NeverDrain: 2 * time.Minute,
		LingerMax:  30 * time.Second,
		SweepFast:  time.Millisecond,
		SweepSlow:  100 * time.Millisecond,

		SOCKSTimeout:           5 * time.Second,
		DialBridgeTimeout:      30 * time.Second,
		ClientHandshakeTimeout: 30 * time.Second,
		DialTorTimeout:         15 * time.Second,
	}
}

// Engine runs the tunnels of one ptreactor process.
type Engine struct {
	cfg    Config
	lim    Limits
	log    *slog.Logger
	dialer *dialer
	ctx    context.Context // cancelled by Close; bounds the dials
	cancel context.CancelFunc

	startOnce sync.Once
	startErr  error
	cli       *gnet.Client

	mu        sync.Mutex
	listeners []net.Listener
	loops     map[gnet.EventLoop]*loopState
	closed    bool
	role      Role                        // set by the Listen methods
	counts    map[string]*transportCounts // by transport name

	active     atomic.Int64 // tunnels not yet ended
	maxTunnels int64        // beyond this, new connections are held or shed (accept.go)
	held       atomic.Int64 // of active, the connections held past maxTunnels
	maxHeld    int64        // beyond this, connections past maxTunnels are closed at once
	draining   atomic.Bool
	drained    chan struct{}
	drainOnce  sync.Once
	done       chan struct{}
	closeOnce  sync.Once
	closeErr   error // what Close returns

	stats    stats
	failures *failures
}

// New returns an engine for cfg; listeners are added with ListenClient/ListenServer. The
// event loops start with the first listener.
func New(cfg Config) (*Engine, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	fdLimit, err := raiseFileLimit(cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("cannot read the descriptor limit: %w", err)
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	e := &Engine{
		cfg:     cfg,
		lim:     cfg.Limits,
		log:     cfg.Logger,
		loops:   make(map[gnet.EventLoop]*loopState),
		drained: make(chan struct{}),
		done:    make(chan struct{}),
	}
	d, err := newDialer(&e.cfg)
	if err != nil {
		return nil, err
	}
	if err := d.checkSources(); err != nil {
		return nil, err
	}
	e.dialer = d
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.maxTunnels = tunnelLimit(fdLimit)
	if m := int64(cfg.Limits.MaxTunnels); m > 0 && m < e.maxTunnels {
		e.maxTunnels = m
	}
	e.maxHeld = overloadHoldLimit(e.maxTunnels)
	e.failures = newFailures(e.log, &e.cfg, fdLimit, e.maxTunnels)
	return e, nil
}

// start launches the event loops once.
func (e *Engine) start() error {
	e.startOnce.Do(func() {
		e.cli, e.startErr = gnet.NewClient(&handler{e: e},
			gnet.WithNumEventLoop(gnetprocs.EventLoops()),
			gnet.WithLogger(gnetLogger{e.log}),
			gnet.WithLoadBalancing(gnet.LeastConnections),
			gnet.WithReadBufferCap(64<<10),
			gnet.WithWriteBufferCap(64<<10),
			// Every conn the reactor enrolls comes from Go's net package, which has set
			// TCP_NODELAY on its socket already, and gnet's duplicate shares that socket.
			// With its default (TCPNoDelay) gnet's Client sets the option again on each
			// enroll of an accepted conn: one system call per accept for nothing. TCPDelay
			// only makes gnet leave the option as it is; it never turns it off.
			gnet.WithTCPNoDelay(gnet.TCPDelay),
		)
		if e.startErr == nil {
			e.startErr = e.cli.Start()
		}
		if e.startErr == nil {
			go e.failures.run(e.done)
		}
	})
	return e.startErr
}

// ListenClient binds a SOCKS5 listener for the client side of transport on addr (port 0:
// the kernel's choice) and returns the bound address for the CMETHOD line.
func (e *Engine) ListenClient(transport, addr string) (net.Addr, error) {
	t, ok := e.cfg.Transports[transport]
	if !ok {
		return nil, ErrUnknownTransport
	}
	counts := e.countsFor(transport, RoleClient)
	return e.listen(addr, keepAliveLocal, func() *tunnel { return newClientTunnel(e, t, counts) }, nil)
}

// ListenServer binds the bridge side of transport on addr, with the transport's options,
// and returns the bound address and the ARGS for the SMETHOD line.
func (e *Engine) ListenServer(transport, addr string, opts codec.Args) (net.Addr, codec.Args, error) {
	t, ok := e.cfg.Transports[transport]
	if !ok {
		return nil, nil, ErrUnknownTransport
	}
	srv, err := t.Server(opts, e.cfg.StateDir)
	if err != nil {
		return nil, nil, err
	}
	counts := e.countsFor(transport, RoleServer)
	var hold func() *tunnel
	if h, ok := srv.(codec.Holding); ok {
		hold = func() *tunnel { return newHeldTunnel(e, transport, srv, counts, h.HoldFor()) }
	}
	a, err := e.listen(addr, keepAliveNetwork, func() *tunnel { return newServerTunnel(e, transport, srv, counts) }, hold)
	if err != nil {
		return nil, nil, err
	}
	return a, srv.Args(), nil
}

// listen binds addr and serves it: mk makes the tunnel of an accepted conn, hold (nil:
// none) that of a conn past the tunnel limit (serve).
func (e *Engine) listen(addr string, keepAlive time.Duration, mk, hold func() *tunnel) (net.Addr, error) {
	if err := e.start(); err != nil {
		return nil, err
	}
	lc := listenConfig(keepAlive)
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if e.closed || e.draining.Load() {
		e.mu.Unlock()
		ln.Close()
		return nil, net.ErrClosed
	}
	e.listeners = append(e.listeners, ln)
	e.mu.Unlock()
	go e.serve(ln, mk, hold)
	return ln.Addr(), nil
}

// Drain closes the listeners and lets open tunnels finish; the returned channel is closed
// when the last tunnel has ended.
func (e *Engine) Drain() <-chan struct{} {
	e.draining.Store(true)
	if err := e.closeListeners(); err != nil {
		e.log.Warn("draining", "err", err)
	}
	e.checkDrained()
	return e.drained
}

func (e *Engine) checkDrained() {
	if e.draining.Load() && e.active.Load() == 0 {
		e.drainOnce.Do(func() { close(e.drained) })
	}
}

// Close ends everything at once. It returns what went wrong in the stopping: an event loop
// that had died with an error (gnet's Stop reports it; its tunnels were lost with it) or a
// listener that would not close. lifecycle turns that into exit code 2.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		errs := []error{e.closeListeners()}
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		e.cancel()
		close(e.done)
		if e.cli != nil {
			if err := e.cli.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("an event loop failed: %w", err))
			}
			// The loops are gone: the fds of paused ends are ours to close.
			e.mu.Lock()
			for _, ls := range e.loops {
				ls.closeKept()
			}
			e.mu.Unlock()
		}
		e.draining.Store(true)
		e.active.Store(0)
		e.checkDrained()
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// closeListeners closes the listeners; a failure is reported, not retried.
func (e *Engine) closeListeners() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, ln := range e.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("closing listener %v: %w", ln.Addr(), err))
		}
	}
	e.listeners = nil
	return errors.Join(errs...)
}

// tunnelEnded is called once per tunnel, on its loop, when both ends are gone (or by serve,
// when the accepted conn could not be enrolled).
func (e *Engine) tunnelEnded(t *tunnel) {
	if t.overload {
		e.held.Add(-1)
	}
	if e.active.Add(-1) <= 0 {
		e.checkDrained()
	}
}

// Tunnels is how many tunnels are open now (inbound connections accepted and not yet
// ended, a stalled failed handshake included): one atomic load, for lifecycle's slow
// timer that hands memory back once a burst has gone.
func (e *Engine) Tunnels() int { return int(e.active.Load()) }
