// Package codec is the room of ptreactor's protocol state machines. Everything below it is
// sans-IO: a codec is handed the bytes a socket produced and hands back the bytes to send,
// and it never touches a socket, a timer or the process environment. That is what lets the
// reactor drive thousands of them from a few event loops, and what lets the tests and fuzz
// targets drive them from plain byte slices.
//
// This file holds the two contracts the reactor relies on: Wire, one transport connection
// (obfs4, plain), and Transport, the factory that tor names in TOR_PT_*_TRANSPORTS.
package codec

import (
	"errors"
	"sort"
	"time"
)

// Args are pt-spec key=value arguments: the per-connection arguments tor passes in the SOCKS
// username/password (pt-spec 3.5), a transport's TOR_PT_SERVER_TRANSPORT_OPTIONS, and the
// ARGS of an SMETHOD line. A key may repeat; values keep their order.
type Args map[string][]string

// Get returns the first value of key.
func (a Args) Get(key string) (string, bool) {
	v, ok := a[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// Add appends value to key's values.
func (a Args) Add(key, value string) { a[key] = append(a[key], value) }

// Keys returns the keys in sorted order, the order goptlib writes SMETHOD ARGS in.
func (a Args) Keys() []string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Output collects what one Unwrap call produces. The reactor owns both buffers and resets
// them between calls; a codec only appends.
type Output struct {
	// Payload is decoded application data for the other side of the tunnel.
	Payload []byte
	// Reply is bytes to write back to the network on this wire (a server handshake reply).
	Reply []byte
}

// Wire is the state machine of one transport connection, the network-facing side of a
// tunnel. The reactor calls it only from the connection's event loop, so it needs no locks.
type Wire interface {
	// Start appends to dst the bytes the wire sends as soon as the connection is open (a
	// client handshake). A server wire appends nothing.
	Start(dst []byte) ([]byte, error)

	// Unwrap consumes bytes read from the network and reports how many it used. Bytes it did
	// not consume (a partial frame) are offered again, with more appended, on the next call.
	// Decoded payload and handshake replies are appended to out. An error ends the wire; if
	// the wire implements Stalling, the reactor then reads and discards until StallUntil.
	Unwrap(in []byte, out *Output) (consumed int, err error)

	// Wrap frames payload for the network, appending the wire bytes to dst. It is called only
	// once Ready reports true and only on wires whose Pacer is nil.
	Wrap(dst, payload []byte) ([]byte, error)

	// Ready reports whether the handshake has completed and payload may flow both ways.
	Ready() bool

	// Pacer is the wire's output shaping in time (obfs4 iat-mode 1 and 2), or nil for a wire
	// whose Wrap output is written at once. The answer is fixed when the wire is made: the
	// reactor asks once, before the handshake.
	Pacer() Pacer
}

// Pacer is a wire's send side when the wire shapes its output in time. The reactor hands
// payload to Queue instead of Wrap, then writes the chunks Next returns, waiting the
// returned pause between them on a per-tunnel timer (never a sleeping goroutine).
type Pacer interface {
	// Queue frames payload into the wire's own send queue.
	Queue(payload []byte) error
	// Next appends the next chunk to write to dst and says how long to wait before asking
	// again. ok is false when nothing is queued.
	Next(dst []byte) (out []byte, wait time.Duration, ok bool)
	// Pending is the number of bytes queued and not yet handed out; it counts toward the
	// tunnel's backpressure mark.
	Pending() int
}

// Stalling is implemented by server wires that must not reveal a failed handshake to a
// prober (obfs4 spec section 7): after Unwrap fails, or when the handshake deadline passes,
// the reactor writes nothing, keeps reading and discarding, and closes at StallUntil (or as
// soon as the peer closes).
type Stalling interface {
	StallUntil() time.Time
}

// Holding is implemented by servers whose wires are Stalling. HoldFor is how long after it
// was accepted a connection whose handshake fails is held before it is closed. The reactor
// holds a connection it has no room for (past its tunnel limit) just as long, reading and
// discarding, without making it a wire: a prober then sees an overloaded bridge answer
// like any other, and the wire's per-connection cost (obfs4: an ephemeral key) is not paid.
type Holding interface {
	HoldFor() time.Duration
}

// Transport is one pluggable transport that tor can name: "plain", "obfs4".
type Transport interface {
	Name() string
	// Client validates the per-connection arguments tor sent in the SOCKS request and
	// returns the client wire for one connection to the bridge.
	Client(args Args) (Wire, error)
	// Server prepares the bridge side from TOR_PT_SERVER_TRANSPORT_OPTIONS and the state
	// directory (where a transport keeps its identity).
	Server(opts Args, stateDir string) (Server, error)
}

// Server is a transport's bridge side, set up once per process.
type Server interface {
	// Args are published in the SMETHOD line (obfs4: cert and iat-mode).
	Args() Args
	// NewWire returns the server wire for one accepted connection.
	NewWire() Wire
	// HandshakeTimeout bounds how long a client may take to complete the handshake.
	HandshakeTimeout() time.Duration
}

// ErrBadArgs is wrapped by Transport.Client when the per-connection arguments are invalid;
// the reactor answers such a SOCKS request with general failure, as lyrebird does.
var ErrBadArgs = errors.New("invalid transport arguments")

// ErrReplayed is wrapped by a server wire's Unwrap error when the client's handshake repeats
// one the server has already seen (a prober replaying a recorded client); the reactor counts
// such failures apart.
var ErrReplayed = errors.New("replayed handshake")
