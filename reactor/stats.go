package reactor

// This file is the engine's counters and their snapshot, Stats, which lifecycle turns into
// Prometheus metrics and STATUS lines. Counting never takes a lock: the payload byte
// counts are per loop, written only by their loop and summed when read; everything else is
// an atomic counted once per event of a tunnel's life (an accept, a handshake, a dial, a
// pause), never per read.

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/extor"
)

// Role is the side an engine serves.
type Role uint8

const (
	RoleNone   Role = iota // no listener yet
	RoleClient             // SOCKS listeners for tor, dials to bridges
	RoleServer             // bridge listeners, dials to tor's (Ext)ORPort
)

var roleNames = [...]string{RoleNone: "none", RoleClient: "client", RoleServer: "server"}

func (r Role) String() string { return enumName(roleNames[:], "Role", r) }

// DialFailure is the kind of a failed outbound connection (the bridge in client mode, the
// (Ext)ORPort in server mode).
type DialFailure uint8

const (
	DialRefused     DialFailure = iota // connection refused
	DialTimedOut                       // the connect or its handshake took too long
	DialDenied                         // the Extended ORPort said DENY
	DialAuth                           // Extended ORPort authentication failed: tor's hash or ours
	DialCookieFile                     // the auth cookie file could not be read or is malformed
	DialDescriptors                    // out of file descriptors
	DialOther                          // anything else (unreachable, reset, proxy refused, ...)
	NumDialFailures                    // not a kind: the count
)

var dialFailureNames = [NumDialFailures]string{
	DialRefused:     "refused",
	DialTimedOut:    "timed_out",
	DialDenied:      "extorport_denied",
	DialAuth:        "auth",
	DialCookieFile:  "cookie_file",
	DialDescriptors: "descriptors",
	DialOther:       "other",
}

// String is the kind's name as a metric label: lower case, underscores.
func (k DialFailure) String() string { return enumName(dialFailureNames[:], "DialFailure", k) }

// classifyDial says what kind of failure err, from a dial and its enrollment, is: the
// kinds the log names (torDialFailure, failures.go), with the two hashes as one, and
// timeouts told apart from the rest.
func classifyDial(err error) DialFailure {
	switch torDialFailure(err) {
	case failExtORDenied:
		return DialDenied
	case failServerHash, failClientHash:
		return DialAuth
	case failCookieFile:
		return DialCookieFile
	case failORPortRefused:
		return DialRefused
	case failDescriptors:
		return DialDescriptors
	}
	var ne net.Error
	switch {
	case errors.Is(err, extor.ErrNoSafeCookie):
		return DialAuth
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) ||
		errors.As(err, &ne) && ne.Timeout():
		return DialTimedOut
	}
	return DialOther
}

// dialLatencyBounds are the upper bounds of the dial latency histogram's buckets. A dial
// to a local tor's ORPort takes well under a millisecond; an Extended ORPort adds the
// authentication round trips; a client's dial to a bridge is one network round trip, or
// several through TOR_PT_PROXY.
var dialLatencyBounds = [...]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
	5 * time.Second, 10 * time.Second,
}

// latencyHistogram counts durations into dialLatencyBounds without a lock.
type latencyHistogram struct {
	counts [len(dialLatencyBounds) + 1]atomic.Uint64 // the last: above every bound
	sum    atomic.Int64                              // nanoseconds
}

func (h *latencyHistogram) observe(d time.Duration) {
	i, _ := slices.BinarySearch(dialLatencyBounds[:], d) // the first bound >= d
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// stats are the engine-wide counters; failures.go logs the failures among them.
type stats struct {
	dialFailures atomic.Int64
	shed         atomic.Int64 // connections closed at accept
	held         atomic.Int64 // connections past the tunnel limit held like a failed handshake
	acceptErrors atomic.Int64
	pauses       atomic.Int64 // sources taken off their loop

	closedHardCap    atomic.Int64 // tunnels closed because the bytes queued toward an end passed HardCap
	closedNeverDrain atomic.Int64 // ...because an end accepted nothing for NeverDrain

	dialKinds   [NumDialFailures]atomic.Int64
	dialLatency latencyHistogram // successful dials
}

// dialFailed counts a failed outbound connection by kind.
func (s *stats) dialFailed(err error) {
	s.dialFailures.Add(1)
	s.dialKinds[classifyDial(err)].Add(1)
}

// transportCounts are the counters of one transport's listeners, shared by their tunnels
// (a tunnel holds a pointer, so it counts without a lookup).
type transportCounts struct {
	opened, ended                          atomic.Int64
	handshakes, failed, replayed, timedOut atomic.Int64
	stalled                                atomic.Int64
}

// countsFor returns the counters of transport, creating them on the first listener.
func (e *Engine) countsFor(transport string, r Role) *transportCounts {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.role = r
	if c, ok := e.counts[transport]; ok {
		return c
	}
	if e.counts == nil {
		e.counts = make(map[string]*transportCounts)
	}
	c := &transportCounts{}
	e.counts[transport] = c
	return c
}

// payloadCount is a byte counter of one loop: only the loop adds to it, so an add is a
// load and a store (no locked instruction on the data path) and a reader on another
// goroutine still sees a whole value.
type payloadCount struct{ n atomic.Uint64 }

func (c *payloadCount) add(n int) { c.n.Store(c.n.Load() + uint64(n)) }

// Stats is a snapshot of an engine's counters. Counts are totals since the engine started
// unless their comment says otherwise; no count is per client.
type Stats struct {
	Role       Role             // the side the engine serves
	Transports []TransportStats // by name

	Tunnels     int64 // tunnels open now, every transport
	TunnelLimit int64 // past this many, new connections are shed

	// Payload bytes, before the transport's framing: read from tor's end of a tunnel and
	// written toward it (in client mode tor's SOCKS connection, after the SOCKS reply; in
	// server mode the (Ext)ORPort connection, after its handshake).
	BytesFromTor, BytesToTor uint64

	Pauses           int64 // times a source was taken off its loop because its sink was full
	ClosedHardCap    int64 // tunnels closed because the bytes queued toward one end passed HardCap
	ClosedNeverDrain int64 // tunnels closed because one end accepted nothing for NeverDrain
	Shed             int64 // connections closed at accept: tunnel or descriptor limit reached
	Held             int64 // server: connections past the tunnel limit held like a failed handshake, since start
	HeldNow          int64 // ...and held now
	AcceptErrors     int64 // failed accept calls

	Dial DialStats // outbound connections: to the bridge (client), to the (Ext)ORPort (server)
}

// TransportStats are the counts of one transport's tunnels.
type TransportStats struct {
	Name   string
	Open   int64 // tunnels accepted and not yet ended
	Total  int64 // tunnels accepted (their connection came onto a loop)
	Ended  int64
	Stalls int64 // server: failed handshakes (probes) held open, silent, until their stall time

	HandshakesDone     int64 // transport handshakes completed (plain has none)
	HandshakesFailed   int64 // handshakes the wire rejected, replays included
	HandshakesReplayed int64 // of those, replays of an earlier handshake
	HandshakesTimedOut int64 // handshakes that did not complete in time
}

// DialStats describe the outbound dials.
type DialStats struct {
	// Bounds are the upper bounds of the latency buckets; Counts[i] is how many successful
	// dials took more than Bounds[i-1] and at most Bounds[i], the last one those above
	// every bound. A dial's latency includes its handshakes (TOR_PT_PROXY, Extended
	// ORPort authentication).
	Bounds []time.Duration
	Counts []uint64
	Sum    time.Duration // of the successful dials' latencies
	Failed int64
	ByKind [NumDialFailures]int64
}

// Stats returns the engine's counters now. It locks only the engine's mutex (never taken
// on the data path); concurrent counting goes on, so the values are each exact but not
// all of one instant.
func (e *Engine) Stats() Stats {
	s := Stats{
		Tunnels:          e.active.Load(),
		TunnelLimit:      e.maxTunnels,
		Pauses:           e.stats.pauses.Load(),
		ClosedHardCap:    e.stats.closedHardCap.Load(),
		ClosedNeverDrain: e.stats.closedNeverDrain.Load(),
		Shed:             e.stats.shed.Load(),
		Held:             e.stats.held.Load(),
		HeldNow:          e.held.Load(),
		AcceptErrors:     e.stats.acceptErrors.Load(),
	}
	s.Dial.Bounds = dialLatencyBounds[:]
	s.Dial.Counts = make([]uint64, len(e.stats.dialLatency.counts))
	for i := range s.Dial.Counts {
		s.Dial.Counts[i] = e.stats.dialLatency.counts[i].Load()
	}
	s.Dial.Sum = time.Duration(e.stats.dialLatency.sum.Load())
	s.Dial.Failed = e.stats.dialFailures.Load()
	for k := range s.Dial.ByKind {
		s.Dial.ByKind[k] = e.stats.dialKinds[k].Load()
	}

	e.mu.Lock()
	s.Role = e.role
	for _, ls := range e.loops {
		s.BytesFromTor += ls.fromTor.n.Load()
		s.BytesToTor += ls.toTor.n.Load()
	}
	for name, c := range e.counts {
		ts := TransportStats{
			Name:               name,
			Ended:              c.ended.Load(),
			Total:              c.opened.Load(),
			Stalls:             c.stalled.Load(),
			HandshakesDone:     c.handshakes.Load(),
			HandshakesFailed:   c.failed.Load(),
			HandshakesReplayed: c.replayed.Load(),
			HandshakesTimedOut: c.timedOut.Load(),
		}
		ts.Open = ts.Total - ts.Ended // ended first: Open never goes below zero
		s.Transports = append(s.Transports, ts)
	}
	e.mu.Unlock()
	slices.SortFunc(s.Transports, func(a, b TransportStats) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// handshakeFailed counts a wire error during the handshake.
func (c *transportCounts) handshakeFailed(err error) {
	c.failed.Add(1)
	if errors.Is(err, codec.ErrReplayed) {
		c.replayed.Add(1)
	}
}
