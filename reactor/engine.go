// Package reactor is ptreactor's engine room: gnet event loops, listeners, outbound
// connections, the pairing of two connections into a tunnel, backpressure, timeouts and
// graceful drain. It knows bytes and codecs, not the environment or stdout: lifecycle
// configures it through Config and the Listen methods.
package reactor

import (
	"errors"
	"log/slog"
	"net"
	"net/url"
	"sync"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/plain"
)

// ErrUnknownTransport is returned by the Listen methods for a transport name ptreactor does
// not implement; lifecycle skips such names with a warning (pt-spec 3.3.2).
var ErrUnknownTransport = errors.New("no such transport")

// Config is what lifecycle learned from tor's environment that the data path needs.
type Config struct {
	Logger   *slog.Logger
	StateDir string

	// Client mode.
	Proxy          *url.URL // TOR_PT_PROXY, nil for direct connections
	OutboundBindV4 net.IP   // TOR_PT_OUTBOUND_BIND_ADDRESS_V4, nil when unset
	OutboundBindV6 net.IP   // TOR_PT_OUTBOUND_BIND_ADDRESS_V6, nil when unset

	// Server mode.
	ORPort         string // TOR_PT_ORPORT, host:port or ""
	ExtORPort      string // TOR_PT_EXTENDED_SERVER_PORT, host:port or ""
	AuthCookieFile string // TOR_PT_AUTH_COOKIE_FILE
	// ORSource, when set, is the range (e.g. 127.0.0.0/8) the source address of connections
	// to the (Ext)ORPort is chosen from, so a busy bridge is not capped by the ephemeral
	// ports of one source address. lifecycle sets it from the -orport-source flag.
	ORSource *net.IPNet
}

// transports are the transports ptreactor implements, by name.
var transports = map[string]codec.Transport{
	plain.Name: plain.Transport{},
}

// Lookup returns the transport tor calls name.
func Lookup(name string) (codec.Transport, bool) {
	t, ok := transports[name]
	return t, ok
}

// Engine runs the tunnels of one ptreactor process.
type Engine struct {
	cfg       Config
	mu        sync.Mutex
	listeners []net.Listener
	done      chan struct{}
	closeOnce sync.Once
}

// New returns an engine for cfg; listeners are added with ListenClient/ListenServer.
func New(cfg Config) (*Engine, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, done: make(chan struct{})}, nil
}

// ListenClient binds a SOCKS5 listener for the client side of transport on addr (port 0:
// the kernel's choice) and returns the bound address for the CMETHOD line.
func (e *Engine) ListenClient(transport, addr string) (net.Addr, error) {
	if _, ok := Lookup(transport); !ok {
		return nil, ErrUnknownTransport
	}
	return e.listen(addr)
}

// ListenServer binds the bridge side of transport on addr, with the transport's options,
// and returns the bound address and the ARGS for the SMETHOD line.
func (e *Engine) ListenServer(transport, addr string, opts codec.Args) (net.Addr, codec.Args, error) {
	t, ok := Lookup(transport)
	if !ok {
		return nil, nil, ErrUnknownTransport
	}
	srv, err := t.Server(opts, e.cfg.StateDir)
	if err != nil {
		return nil, nil, err
	}
	a, err := e.listen(addr)
	if err != nil {
		return nil, nil, err
	}
	return a, srv.Args(), nil
}

func (e *Engine) listen(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.listeners = append(e.listeners, ln)
	e.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr(), nil
}

// Drain closes the listeners and lets open tunnels finish; the returned channel is closed
// when the last tunnel has ended.
func (e *Engine) Drain() <-chan struct{} {
	e.closeListeners()
	ch := make(chan struct{})
	close(ch)
	return ch
}

// Close ends everything at once.
func (e *Engine) Close() error {
	e.closeListeners()
	e.closeOnce.Do(func() { close(e.done) })
	return nil
}

func (e *Engine) closeListeners() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ln := range e.listeners {
		ln.Close()
	}
	e.listeners = nil
}
