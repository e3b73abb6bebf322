// Package plain is the identity transport: bytes pass unchanged. It exists so that the
// reactor, lifecycle and the benchmarks can be exercised without any obfuscation cost, and
// so that a tunnel's overhead can be measured apart from its transport's.
package plain

import (
	"time"

	"github.com/ptreactor/ptreactor/codec"
)

// Name is the transport name tor uses in TOR_PT_*_TRANSPORTS.
const Name = "plain"

// Transport is the plain transport.
type Transport struct{}

// Name implements codec.Transport.
func (Transport) Name() string { return Name }

// Client implements codec.Transport; plain takes no arguments and ignores any it is given.
func (Transport) Client(codec.Args) (codec.Wire, error) { return wire{}, nil }

// Server implements codec.Transport.
func (Transport) Server(codec.Args, string) (codec.Server, error) { return server{}, nil }

type server struct{}

func (server) Args() codec.Args                { return nil }
func (server) NewWire() codec.Wire             { return wire{} }
func (server) HandshakeTimeout() time.Duration { return 0 }

// wire copies bytes through; it has no handshake, so it is ready from the start.
type wire struct{}

func (wire) Start(dst []byte) ([]byte, error) { return dst, nil }

func (wire) Unwrap(in []byte, out *codec.Output) (int, error) {
	out.Payload = append(out.Payload, in...)
	return len(in), nil
}

func (wire) Wrap(dst, payload []byte) ([]byte, error) { return append(dst, payload...), nil }

func (wire) Ready() bool { return true }

// Pacer implements codec.Wire: plain writes what it wraps at once.
func (wire) Pacer() codec.Pacer { return nil }
