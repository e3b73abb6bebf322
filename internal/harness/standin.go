package harness

// This file holds the stand-ins for the tor a bridge-side transport connects to: an Extended
// ORPort that really authenticates (written apart from codec/extor, so that the two check
// each other) and a plain ORPort. internal/pttest ties them to a test's lifetime.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// StandIn accepts TCP connections on a loopback port and serves each on its own goroutine.
// Close closes the listener and every connection and waits for the goroutines, so no
// stand-in outlives its user.
type StandIn struct {
	addr  string
	serve func(net.Conn)
	mu    sync.Mutex
	ln    net.Listener // nil between Unlisten and Relisten
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// ServeStandIn listens on addr ("": 127.0.0.1:0) and hands every connection to serve.
func ServeStandIn(addr string, serve func(net.Conn)) (*StandIn, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &StandIn{addr: ln.Addr().String(), serve: serve, ln: ln, conns: make(map[net.Conn]struct{})}
	s.accept(ln)
	return s, nil
}

func (s *StandIn) accept(ln net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !s.track(c) {
				c.Close()
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer s.Release(c)
				s.serve(c)
			}()
		}
	}()
}

// Addr is the stand-in's host:port; it stays the same across Unlisten and Relisten.
func (s *StandIn) Addr() string { return s.addr }

// Unlisten closes the listener, so that connecting to Addr is refused, and keeps the
// connections already accepted: the first half of a restart whose users must see the gap.
func (s *StandIn) Unlisten() {
	s.mu.Lock()
	ln := s.ln
	s.ln = nil
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// Relisten listens on Addr again after Unlisten. The port is free to be taken by anyone in
// the gap; an error says so.
func (s *StandIn) Relisten() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		return errors.New("stand-in closed")
	}
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.accept(ln)
	return nil
}

// track registers c; it reports false once the stand-in is closing.
func (s *StandIn) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// Release closes c, a connection the stand-in accepted or was given with Own, and forgets
// it.
func (s *StandIn) Release(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Own ties a further connection (a proxy's dial to its target) to the stand-in's lifetime;
// it reports false, and the caller must close c, once the stand-in is closing.
func (s *StandIn) Own(c net.Conn) bool { return s.track(c) }

// Close stops the stand-in: no more connections, every open one closed, every handler
// returned.
func (s *StandIn) Close() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
	s.wg.Wait()
}

// Echo writes back everything it reads: the default handler of the OR stand-ins.
func Echo(c net.Conn) { _, _ = io.Copy(c, c) }

// Discard reads and drops everything.
func Discard(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// Banner returns a handler that writes b as soon as the connection is handed to it, then
// echoes: a peer that speaks first, for checking that nothing before it swallowed its bytes.
func Banner(b []byte) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := c.Write(b); err != nil {
			return
		}
		Echo(c)
	}
}

// ORPort is a plain ORPort stand-in: it records where connections came from and hands each
// to its handler.
type ORPort struct {
	Addr string

	s       *StandIn
	mu      sync.Mutex
	remotes []netip.AddrPort
}

// StartORPort listens on 127.0.0.1:0; handler nil means Echo.
func StartORPort(handler func(net.Conn)) (*ORPort, error) {
	if handler == nil {
		handler = Echo
	}
	o := &ORPort{}
	s, err := ServeStandIn("", func(c net.Conn) {
		o.mu.Lock()
		o.remotes = append(o.remotes, c.RemoteAddr().(*net.TCPAddr).AddrPort())
		o.mu.Unlock()
		handler(c)
	})
	if err != nil {
		return nil, err
	}
	o.s, o.Addr = s, s.Addr()
	return o, nil
}

// Close stops the stand-in and ends its connections.
func (o *ORPort) Close() { o.s.Close() }

// Remotes returns the source address of every connection accepted so far.
func (o *ORPort) Remotes() []netip.AddrPort {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]netip.AddrPort(nil), o.remotes...)
}

// ExtOROptions makes the ExtORPort stand-in misbehave, or behave, in the ways tests need.
type ExtOROptions struct {
	// AuthTypes is the auth-type list offered, without its ending 0; nil means {1}.
	AuthTypes []byte
	// BadServerHash sends a wrong ServerHash, as a tor with another cookie would.
	BadServerHash bool
	// RejectClient answers status 0 even to a correct ClientHash.
	RejectClient bool
	// UnknownReply sends an unassigned reply command with a body before OKAY or DENY.
	UnknownReply bool
	// Deny answers DONE with DENY.
	Deny bool
	// OkayDelay waits this long after DONE before answering. As tor does, a connection
	// whose OR bytes arrived before OKAY is recorded as EarlyData and closed.
	OkayDelay time.Duration
	// Handler takes the connection after OKAY; nil means Echo.
	Handler func(net.Conn)
	// Addr is where to listen ("": 127.0.0.1:0), e.g. the port of a stand-in that was
	// closed, to bring it back.
	Addr string
}

// ExtORSession is what the stand-in saw on one connection.
type ExtORSession struct {
	Remote    netip.AddrPort // the transport's source address
	AuthOK    bool           // the ClientHash was right
	Commands  []uint16       // commands in the order received, DONE included
	UserAddr  string         // body of the last USERADDR, if any
	Transport string         // body of the last TRANSPORT, if any
	Done      bool           // DONE arrived
	Okay      bool           // OKAY was sent
	EarlyData bool           // bytes followed DONE before OKAY
	Err       string         // why the session ended early, if it did
	At        time.Time      // when the handshake ended (well or badly)
}

// ExtORPort is an Extended ORPort stand-in on 127.0.0.1.
type ExtORPort struct {
	Addr       string
	CookieFile string

	s        *StandIn
	opts     ExtOROptions
	mu       sync.Mutex
	cookie   [32]byte
	sessions []ExtORSession
	changed  chan struct{} // closed and replaced whenever a session is recorded
}

// StartExtORPort writes a fresh cookie file into dir, as tor writes
// extended_orport_auth_cookie into its data directory, and listens.
func StartExtORPort(dir string, opts ExtOROptions) (*ExtORPort, error) {
	if opts.AuthTypes == nil {
		opts.AuthTypes = []byte{1}
	}
	if opts.Handler == nil {
		opts.Handler = Echo
	}
	e := &ExtORPort{
		CookieFile: filepath.Join(dir, "extended_orport_auth_cookie"),
		opts:       opts,
		changed:    make(chan struct{}),
	}
	if err := e.RewriteCookie(); err != nil {
		return nil, err
	}
	s, err := ServeStandIn(opts.Addr, e.serve)
	if err != nil {
		return nil, err
	}
	e.s, e.Addr = s, s.Addr()
	return e, nil
}

// Close stops the stand-in and ends its connections.
func (e *ExtORPort) Close() { e.s.Close() }

// Unlisten is the first half of a restart of tor's ExtORPort: connecting is refused from now
// on; the sessions already open go on.
func (e *ExtORPort) Unlisten() { e.s.Unlisten() }

// Relisten is the second half: a fresh cookie file, as a restarted tor writes, and the same
// port listening again.
func (e *ExtORPort) Relisten() error {
	if err := e.RewriteCookie(); err != nil {
		return err
	}
	return e.s.Relisten()
}

// RewriteCookie replaces the cookie and its file, as tor does when it restarts. Transports
// must read the file for every connection to keep up.
func (e *ExtORPort) RewriteCookie() error {
	var c [32]byte
	if _, err := rand.Read(c[:]); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := WriteCookieFile(e.CookieFile, c); err != nil {
		return err
	}
	e.cookie = c
	return nil
}

// WriteCookieFile writes an Extended ORPort cookie file the way tor does.
func WriteCookieFile(path string, cookie [32]byte) error {
	b := append([]byte("! Extended ORPort Auth Cookie !\x0a"), cookie[:]...)
	return os.WriteFile(path, b, 0o600)
}

// Sessions returns what has been recorded so far, one entry per connection that ended its
// handshake (well or badly).
func (e *ExtORPort) Sessions() []ExtORSession {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]ExtORSession(nil), e.sessions...)
}

// WaitSessions waits up to timeout for n sessions to be recorded and returns them; if they
// do not come it returns those there are and an error.
func (e *ExtORPort) WaitSessions(n int, timeout time.Duration) ([]ExtORSession, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		got, ch := len(e.sessions), e.changed
		e.mu.Unlock()
		if got >= n {
			return e.Sessions(), nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			s := e.Sessions()
			return s, fmt.Errorf("%d ExtORPort sessions after %v, want %d: %+v", len(s), timeout, n, s)
		}
	}
}

func (e *ExtORPort) record(s *ExtORSession) {
	s.At = time.Now()
	e.mu.Lock()
	e.sessions = append(e.sessions, *s)
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

func (e *ExtORPort) serve(c net.Conn) {
	s := &ExtORSession{Remote: c.RemoteAddr().(*net.TCPAddr).AddrPort()}
	if err := e.handshake(c, s); err != nil {
		if err != errRecorded {
			s.Err = err.Error()
			e.record(s)
		}
		return
	}
	e.opts.Handler(c)
}

// handshake is the tor side of ext-orport-spec sections 2 and 3. It records the session
// before its last reply, so that a transport that has its answer finds it recorded.
func (e *ExtORPort) handshake(c net.Conn, s *ExtORSession) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	e.mu.Lock()
	cookie := e.cookie
	e.mu.Unlock()

	if _, err := c.Write(append(append([]byte(nil), e.opts.AuthTypes...), 0)); err != nil {
		return err
	}
	var clientNonce, serverNonce, clientHash [32]byte
	var authType [1]byte
	if _, err := io.ReadFull(c, authType[:]); err != nil {
		return fmt.Errorf("reading auth type: %w", err)
	}
	if authType[0] != 1 {
		return fmt.Errorf("auth type %d", authType[0])
	}
	if _, err := io.ReadFull(c, clientNonce[:]); err != nil {
		return fmt.Errorf("reading client nonce: %w", err)
	}
	_, _ = rand.Read(serverNonce[:])
	serverHash := cookieMAC(&cookie, "ExtORPort authentication server-to-client hash", &clientNonce, &serverNonce)
	if e.opts.BadServerHash {
		serverHash[7] ^= 0x40
	}
	if _, err := c.Write(append(serverHash[:], serverNonce[:]...)); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, clientHash[:]); err != nil {
		return fmt.Errorf("reading client hash: %w", err)
	}
	want := cookieMAC(&cookie, "ExtORPort authentication client-to-server hash", &clientNonce, &serverNonce)
	s.AuthOK = hmac.Equal(want[:], clientHash[:])
	if !s.AuthOK || e.opts.RejectClient {
		e.record(s)
		_, _ = c.Write([]byte{0})
		return errRecorded
	}
	if _, err := c.Write([]byte{1}); err != nil {
		return err
	}

	for !s.Done {
		var head [4]byte
		if _, err := io.ReadFull(c, head[:]); err != nil {
			return fmt.Errorf("reading command: %w", err)
		}
		cmd := binary.BigEndian.Uint16(head[:2])
		body := make([]byte, binary.BigEndian.Uint16(head[2:]))
		if _, err := io.ReadFull(c, body); err != nil {
			return fmt.Errorf("reading command body: %w", err)
		}
		s.Commands = append(s.Commands, cmd)
		switch cmd {
		case 0:
			s.Done = true
		case 1:
			s.UserAddr = string(body)
			if ap, err := netip.ParseAddrPort(s.UserAddr); err != nil || ap.String() != s.UserAddr {
				return fmt.Errorf("USERADDR %q is not in a recognized format", body)
			}
		case 2:
			s.Transport = string(body)
			if !cIdentifier(s.Transport) {
				return fmt.Errorf("TRANSPORT %q is not a C identifier", body)
			}
		}
	}

	if e.opts.OkayDelay > 0 {
		time.Sleep(e.opts.OkayDelay)
	}
	if pending(c) {
		s.EarlyData = true
		return errors.New("bytes after DONE before OKAY")
	}
	var reply []byte
	if e.opts.UnknownReply {
		reply = append(reply, 0x10, 0x02, 0, 3, 'x', 'y', 'z')
	}
	if e.opts.Deny {
		e.record(s)
		_, _ = c.Write(append(reply, 0x10, 0x01, 0, 0))
		return errRecorded
	}
	s.Okay = true
	e.record(s)
	if _, err := c.Write(append(reply, 0x10, 0x00, 0, 0)); err != nil {
		return err
	}
	_ = c.SetDeadline(time.Time{})
	return nil
}

// cIdentifier is tor's check of TRANSPORT names.
func cIdentifier(s string) bool {
	for i, r := range s {
		if !(r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || i > 0 && '0' <= r && r <= '9') {
			return false
		}
	}
	return s != ""
}

// errRecorded ends a session that has already been recorded.
var errRecorded = errors.New("recorded")

func cookieMAC(cookie *[32]byte, label string, clientNonce, serverNonce *[32]byte) [32]byte {
	m := hmac.New(sha256.New, cookie[:])
	m.Write([]byte(label))
	m.Write(clientNonce[:])
	m.Write(serverNonce[:])
	var h [32]byte
	m.Sum(h[:0])
	return h
}

// pending reports whether unread bytes wait on c, without reading them.
func pending(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	_ = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, _ = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	})
	return n > 0
}
