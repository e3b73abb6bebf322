// Package obfs4 is the obfs4 transport, wire-compatible with obfs4proxy 0.0.14 and
// lyrebird: the handshake (ntor over Elligator2-hidden keys, marks and MACs keyed with the
// bridge's identity, random padding), the bridge identity and its state files, and the
// Wire that the reactor drives for every connection.
//
// Like every codec it is sans-IO. A client Wire's Start yields the request; its Unwrap
// finds the reply and switches to the data phase (package framing). A server Wire's Unwrap
// finds the request and yields the reply in one piece. A server wire that fails says
// nothing: it reports when the reactor may close (codec.Stalling), which is 30 s plus a
// per-bridge delay after the connection began, so probers learn neither why nor when.
//
// Every wire takes its ephemeral keypair from one process-wide elligator.Pool, refilled in
// the background when it runs low, so a handshake usually finds its key made; a key is
// used for one handshake only.
//
// Where the deployed peers depart from the obfs4 spec, this package follows the peers;
// the comment at each departure says what the peers do.
package obfs4

import (
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand"
	"time"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/obfs4/drbg"
	"github.com/ptreactor/ptreactor/codec/obfs4/elligator"
	"github.com/ptreactor/ptreactor/codec/obfs4/framing"
	"github.com/ptreactor/ptreactor/codec/obfs4/ntor"
)

// Name is the transport name tor uses in TOR_PT_*_TRANSPORTS.
const Name = "obfs4"

// ServerHandshakeTimeout bounds a client's handshake on the bridge.
const ServerHandshakeTimeout = 30 * time.Second

// maxCloseDelay bounds the per-bridge part of the close delay, in seconds.
const maxCloseDelay = 60

// Transport is the obfs4 transport.
type Transport struct {
	// BiasedDist draws the weights of the length and delay distributions ScrambleSuit
	// style, favouring a few values, as lyrebird's -obfs4-distBias does; both sides of a
	// connection choose it on their own. The default is uniform weights, obfs4proxy's only
	// choice.
	BiasedDist bool
}

// Name implements codec.Transport.
func (Transport) Name() string { return Name }

// Client implements codec.Transport. args must hold cert= (or node-id= and public-key=) and
// iat-mode=; anything else is an error wrapping codec.ErrBadArgs.
func (t Transport) Client(args codec.Args) (codec.Wire, error) {
	ca, err := parseClientArgs(args)
	if err != nil {
		return nil, err
	}
	ca.biased = t.BiasedDist
	return newClientWire(ca, keypairs, time.Now), nil
}

// Server implements codec.Transport: it loads (or creates) the bridge identity from opts
// and stateDir and rewrites obfs4_state.json and obfs4_bridgeline.txt.
func (t Transport) Server(opts codec.Args, stateDir string) (codec.Server, error) {
	st, err := loadServerState(opts, stateDir)
	if err != nil {
		return nil, fmt.Errorf("obfs4: %w", err)
	}
	s := newServer(st, keypairs, time.Now)
	s.biased = t.BiasedDist
	return s, nil
}

// keypairPoolSize bounds the stock of ready ephemeral keypairs: 128 are about 8 ms of
// generation, a burst of set-ups the handshakes meet without making keys.
const keypairPoolSize = 128

// keypairs is the process's stock of ephemeral keypairs, shared by every client and server
// wire the Transport makes. Each keypair is handed out once and dropped with its
// handshake.
var keypairs = elligator.NewPool(rand.Reader, keypairPoolSize)

// server is the bridge side of one process: identity, replay filter, close delay.
type server struct {
	state      *serverState
	macKey     []byte
	replay     *replayFilter
	closeDelay time.Duration
	biased     bool // Transport.BiasedDist
	keys       *elligator.Pool
	now        func() time.Time
}

func newServer(st *serverState, keys *elligator.Pool, now func() time.Time) *server {
	delay := mrand.New(drbg.New(st.drbgSeed)).Intn(maxCloseDelay)
	s := &server{
		state:      st,
		macKey:     st.macKey(),
		replay:     newReplayFilter(),
		closeDelay: time.Duration(delay) * time.Second,
		keys:       keys,
		now:        now,
	}
	keys.Refill() // a bridge makes its stock before its first client
	return s
}

// Args implements codec.Server: cert and iat-mode for the SMETHOD line.
func (s *server) Args() codec.Args { return s.state.args() }

// HandshakeTimeout implements codec.Server.
func (s *server) HandshakeTimeout() time.Duration { return ServerHandshakeTimeout }

// HoldFor implements codec.Holding: 30 s plus the bridge's close delay, as StallUntil.
func (s *server) HoldFor() time.Duration { return ServerHandshakeTimeout + s.closeDelay }

// NewWire implements codec.Server. The ephemeral key is taken here, before any byte is
// read, so the time its rejection sampling takes (when the stock is empty) is not visible
// in the reply's timing.
func (s *server) NewWire() codec.Wire {
	w := &serverWire{srv: s, hs: &serverHandshake{srv: s, mac: newMAC(s.macKey)}}
	kp, err := s.keys.Get()
	if err != nil {
		w.err = err
	}
	w.hs.kp = kp
	w.start = s.now()
	return w
}

// errNotReady is returned when payload is offered before the handshake has completed.
var errNotReady = errors.New("obfs4: handshake not complete")

// session is the data phase of a wire, once the handshake has given it keys.
type session struct {
	w *framing.Writer
	r *framing.Reader
}

// newSession splits okm: the client writes with okm[0:72] and reads with okm[72:144],
// the server the other way round.
func newSession(okm *[ntor.OKMSize]byte, isClient bool, lenSeed drbg.Seed, iatMode int, biased bool) (*session, error) {
	wk, rk := okm[framing.KeyLength:], okm[:framing.KeyLength]
	if isClient {
		wk, rk = rk, wk
	}
	w, err := framing.NewWriter(wk, lenSeed, iatMode)
	if err != nil {
		return nil, err
	}
	if biased {
		w.SetBiased(true)
	}
	r, err := framing.NewReader(rk)
	if err != nil {
		return nil, err
	}
	return &session{w: w, r: r}, nil
}

// clientWire is the client side of one obfs4 connection.
type clientWire struct {
	args    *clientArgs
	hs      *clientHandshake // nil once the handshake is done
	s       *session
	started bool
	err     error
	keys    *elligator.Pool
	now     func() time.Time
}

func newClientWire(ca *clientArgs, keys *elligator.Pool, now func() time.Time) codec.Wire {
	return &clientWire{args: ca, keys: keys, now: now}
}

// Start implements codec.Wire: it appends the client request.
func (w *clientWire) Start(dst []byte) ([]byte, error) {
	if w.started {
		return dst, errors.New("obfs4: Start called twice")
	}
	w.started = true
	kp, err := w.keys.Get()
	if err != nil {
		w.err = err
		return dst, err
	}
	hs := newClientHandshake(&w.args.key, kp, w.args.legacyRepr)
	w.hs = hs
	return hs.appendRequest(dst, randomPadLength(clientMinPadLength, clientMaxPadLength), rand.Reader, w.now()), nil
}

// Unwrap implements codec.Wire.
func (w *clientWire) Unwrap(in []byte, out *codec.Output) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	consumed := 0
	if w.s == nil {
		if w.hs == nil {
			return 0, errors.New("obfs4: Unwrap before Start")
		}
		var okm [ntor.OKMSize]byte
		n, err := w.hs.parseReply(in, &okm)
		if err != nil {
			w.err = err
			return 0, err
		}
		if n == 0 {
			return 0, nil
		}
		// Until the bridge's seed frame arrives (it is the first frame), the client pads
		// with a random length distribution.
		s, err := newSession(&okm, true, drbg.NewSeed(), w.args.iatMode, w.args.biased)
		if err != nil {
			w.err = err
			return 0, err
		}
		w.s, w.hs = s, nil
		consumed = n
	}
	n, payload, seed, err := w.s.r.Unwrap(in[consumed:], out.Payload)
	out.Payload = payload
	if seed != nil {
		w.s.w.Reseed(*seed)
	}
	if err != nil {
		w.err = err
	}
	return consumed + n, err
}

// Wrap implements codec.Wire.
func (w *clientWire) Wrap(dst, payload []byte) ([]byte, error) {
	if w.s == nil {
		return dst, errNotReady
	}
	return w.s.w.Wrap(dst, payload)
}

// Ready implements codec.Wire.
func (w *clientWire) Ready() bool { return w.s != nil && w.err == nil }

// Pacer implements codec.Wire: in iat-mode 1 and 2 the wire itself is its Pacer, and its
// session's framing.Writer cuts and times the chunks.
func (w *clientWire) Pacer() codec.Pacer {
	if w.args.iatMode == IATNone {
		return nil
	}
	return w
}

// Queue implements codec.Pacer.
func (w *clientWire) Queue(payload []byte) error { return queue(w.s, payload) }

// Next implements codec.Pacer.
func (w *clientWire) Next(dst []byte) ([]byte, time.Duration, bool) { return next(w.s, dst) }

// Pending implements codec.Pacer.
func (w *clientWire) Pending() int { return pending(w.s) }

// serverWire is the bridge side of one obfs4 connection.
type serverWire struct {
	srv   *server
	hs    *serverHandshake // nil once the handshake is done
	s     *session
	start time.Time
	err   error
}

// Start implements codec.Wire; the server speaks only after the client.
func (w *serverWire) Start(dst []byte) ([]byte, error) { return dst, nil }

// Unwrap implements codec.Wire. The reply goes to out.Reply in one piece: Y', AUTH,
// padding, mark, MAC and the PRNG seed frame.
func (w *serverWire) Unwrap(in []byte, out *codec.Output) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.s == nil {
		srv := w.srv
		var okm [ntor.OKMSize]byte
		done, epoch, auth, err := w.hs.parseRequest(in, srv.now(), &okm)
		if err != nil {
			w.err = err
			return 0, err
		}
		if !done {
			return 0, nil
		}
		st := srv.state
		s, err := newSession(&okm, false, st.drbgSeed, st.iatMode, srv.biased)
		if err != nil {
			w.err = err
			return 0, err
		}
		reply := w.hs.appendReply(out.Reply, &auth, randomPadLength(serverMinPadLength, serverMaxPadLength), rand.Reader, epoch)
		reply, err = s.w.AppendSeedFrame(reply, st.drbgSeed)
		if err != nil {
			w.err = err
			return 0, err
		}
		out.Reply = reply
		w.s, w.hs = s, nil
		return len(in), nil // parseRequest allows no bytes after the request
	}
	n, payload, _, err := w.s.r.Unwrap(in, out.Payload)
	out.Payload = payload
	if err != nil {
		w.err = err
	}
	return n, err
}

// Wrap implements codec.Wire.
func (w *serverWire) Wrap(dst, payload []byte) ([]byte, error) {
	if w.s == nil {
		return dst, errNotReady
	}
	return w.s.w.Wrap(dst, payload)
}

// Ready implements codec.Wire.
func (w *serverWire) Ready() bool { return w.s != nil && w.err == nil }

// StallUntil implements codec.Stalling: a connection whose handshake failed is held,
// reading and discarding, until 30 s plus the bridge's close delay after it began. Once the
// handshake has succeeded a failure is no longer a probe to hide (the peers close such a
// connection at once), so the time returned is already past.
func (w *serverWire) StallUntil() time.Time {
	if w.s != nil {
		return w.start
	}
	return w.start.Add(w.srv.HoldFor())
}

// Pacer implements codec.Wire, as the client wire's does, with the bridge's iat-mode.
func (w *serverWire) Pacer() codec.Pacer {
	if w.srv.state.iatMode == IATNone {
		return nil
	}
	return w
}

// Queue implements codec.Pacer.
func (w *serverWire) Queue(payload []byte) error { return queue(w.s, payload) }

// Next implements codec.Pacer.
func (w *serverWire) Next(dst []byte) ([]byte, time.Duration, bool) { return next(w.s, dst) }

// Pending implements codec.Pacer.
func (w *serverWire) Pending() int { return pending(w.s) }

func queue(s *session, payload []byte) error {
	if s == nil {
		return errNotReady
	}
	return s.w.Queue(payload)
}

func next(s *session, dst []byte) ([]byte, time.Duration, bool) {
	if s == nil {
		return dst, 0, false
	}
	return s.w.Next(dst)
}

func pending(s *session) int {
	if s == nil {
		return 0
	}
	return s.w.Pending()
}

// Interface checks.
var (
	_ codec.Transport = Transport{}
	_ codec.Server    = (*server)(nil)
	_ codec.Wire      = (*clientWire)(nil)
	_ codec.Pacer     = (*clientWire)(nil)
	_ codec.Wire      = (*serverWire)(nil)
	_ codec.Pacer     = (*serverWire)(nil)
	_ codec.Stalling  = (*serverWire)(nil)
)
