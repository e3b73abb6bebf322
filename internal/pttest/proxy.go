package pttest

// This file holds the upstream proxies a client-side transport is sent through by
// TOR_PT_PROXY: SOCKS5 (optionally with RFC 1929 credentials), SOCKS4a and HTTP CONNECT
// (optionally with Basic credentials). They really connect to the target and relay, count
// the tunnels they carried, and refuse wrong credentials the way each protocol does.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
)

// ProxyOptions configures a proxy stand-in.
type ProxyOptions struct {
	// User and Pass are the credentials the proxy demands (SOCKS4a: User is the USERID);
	// empty: none. The URL of the proxy carries them.
	User, Pass string
	// Reply, for SOCKS5, answers every CONNECT with this reply code instead of connecting.
	Reply byte
	// HTTPStatus, for HTTP, answers every CONNECT with this status instead of connecting.
	HTTPStatus int
	// DomainReply makes a SOCKS5 proxy name its bound address as a domain name.
	DomainReply bool
	// FirstBytes makes the proxy wait for the target's first bytes and send them in the
	// same write as its reply, so that a client that reads past the reply would swallow
	// them. Use it with targets that speak first (Banner).
	FirstBytes bool
}

// Proxy is a running proxy stand-in on 127.0.0.1.
type Proxy struct {
	URL  *url.URL // scheme://[user[:pass]@]127.0.0.1:port, as TOR_PT_PROXY would name it
	Addr string

	opts ProxyOptions
	s    *harness.StandIn

	mu       sync.Mutex
	tunnels  int
	targets  []string
	refusals int
}

// StartProxy starts a proxy speaking scheme: "socks5", "socks4a" or "http".
func StartProxy(t testing.TB, scheme string, opts ProxyOptions) *Proxy {
	t.Helper()
	p := &Proxy{opts: opts}
	var serve func(net.Conn)
	switch scheme {
	case "socks5":
		serve = p.serveSOCKS5
	case "socks4a":
		serve = p.serveSOCKS4a
	case "http":
		serve = p.serveHTTP
	default:
		t.Fatalf("no proxy stand-in for %q", scheme)
	}
	p.s = Serve(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		serve(c)
	})
	p.Addr = p.s.Addr()
	p.URL = &url.URL{Scheme: scheme, Host: p.Addr}
	switch {
	case opts.User != "" && opts.Pass != "":
		p.URL.User = url.UserPassword(opts.User, opts.Pass)
	case opts.User != "":
		p.URL.User = url.User(opts.User)
	}
	return p
}

// Tunnels is how many tunnels the proxy has connected to their targets.
func (p *Proxy) Tunnels() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tunnels
}

// Targets lists the targets clients asked for, in order, connected or not.
func (p *Proxy) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// Refusals is how many clients were turned away for their credentials.
func (p *Proxy) Refusals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refusals
}

func (p *Proxy) refused() {
	p.mu.Lock()
	p.refusals++
	p.mu.Unlock()
}

func (p *Proxy) asked(target string) {
	p.mu.Lock()
	p.targets = append(p.targets, target)
	p.mu.Unlock()
}

// dial connects to the target for a client.
func (p *Proxy) dial(target string) (net.Conn, error) {
	p.asked(target)
	c, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if !p.s.Own(c) {
		c.Close()
		return nil, net.ErrClosed
	}
	return c, nil
}

// relay answers the client with reply (plus the target's first bytes, when so configured)
// and copies both ways until either side ends. pre holds client bytes the proxy had read
// past the request.
func (p *Proxy) relay(client, target net.Conn, reply []byte, pre io.Reader) {
	defer p.s.Release(target)
	if p.opts.FirstBytes {
		buf := make([]byte, 4096)
		_ = target.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := target.Read(buf)
		_ = target.SetReadDeadline(time.Time{})
		reply = append(reply, buf[:n]...)
	}
	// Counted before the reply, so a client that has its reply finds the tunnel counted.
	p.mu.Lock()
	p.tunnels++
	p.mu.Unlock()
	if _, err := client.Write(reply); err != nil {
		return
	}
	_ = client.SetDeadline(time.Time{})
	src := io.Reader(client)
	if pre != nil {
		src = pre
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(target, src)
		closeWrite(target)
		close(done)
	}()
	_, _ = io.Copy(client, target)
	closeWrite(client)
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// errnoOf extracts the errno of a failed dial, with timeouts as ETIMEDOUT.
func errnoOf(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return syscall.ETIMEDOUT
	}
	return 0
}

func (p *Proxy) serveSOCKS5(c net.Conn) {
	r := bufio.NewReader(c)
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil || head[0] != 5 {
		return
	}
	methods := make([]byte, head[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return
	}
	want := byte(0)
	if p.opts.User != "" {
		want = 2
	}
	if bytes.IndexByte(methods, want) < 0 {
		if want == 2 {
			p.refused()
		}
		_, _ = c.Write([]byte{5, 0xff})
		return
	}
	if _, err := c.Write([]byte{5, want}); err != nil {
		return
	}
	if want == 2 {
		user, pass, err := readUserPass(r)
		if err != nil {
			return
		}
		if user != p.opts.User || pass != p.opts.Pass {
			p.refused()
			_, _ = c.Write([]byte{1, 1})
			return
		}
		if _, err := c.Write([]byte{1, 0}); err != nil {
			return
		}
	}
	var req [4]byte
	if _, err := io.ReadFull(r, req[:]); err != nil || req[0] != 5 {
		return
	}
	var host string
	switch req[3] {
	case 1, 4:
		ip := make([]byte, 4)
		if req[3] == 4 {
			ip = make([]byte, 16)
		}
		if _, err := io.ReadFull(r, ip); err != nil {
			return
		}
		host = net.IP(ip).String()
	case 3:
		n, err := r.ReadByte()
		if err != nil {
			return
		}
		name := make([]byte, n)
		if _, err := io.ReadFull(r, name); err != nil {
			return
		}
		host = string(name)
	default:
		_, _ = c.Write([]byte{5, 8, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	var port [2]byte
	if _, err := io.ReadFull(r, port[:]); err != nil {
		return
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:]))))
	if req[1] != 1 {
		_, _ = c.Write([]byte{5, 7, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	if p.opts.Reply != 0 {
		p.asked(target)
		_, _ = c.Write([]byte{5, p.opts.Reply, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	t, err := p.dial(target)
	if err != nil {
		rep := byte(1)
		switch errnoOf(err) {
		case syscall.ENETUNREACH:
			rep = 3
		case syscall.EHOSTUNREACH:
			rep = 4
		case syscall.ECONNREFUSED:
			rep = 5
		case syscall.ETIMEDOUT:
			rep = 6
		}
		_, _ = c.Write([]byte{5, rep, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	reply := []byte{5, 0, 0}
	if p.opts.DomainReply {
		reply = append(reply, 3, byte(len("proxy.invalid")))
		reply = append(reply, "proxy.invalid"...)
	} else {
		la := t.LocalAddr().(*net.TCPAddr).AddrPort()
		if a := la.Addr().Unmap(); a.Is4() {
			reply = append(reply, 1)
			reply = append(reply, a.AsSlice()...)
		} else {
			reply = append(reply, 4)
			reply = append(reply, a.AsSlice()...)
		}
	}
	reply = binary.BigEndian.AppendUint16(reply, t.LocalAddr().(*net.TCPAddr).AddrPort().Port())
	p.relay(c, t, reply, r)
}

func readUserPass(r *bufio.Reader) (user, pass string, err error) {
	ver, err := r.ReadByte()
	if err != nil || ver != 1 {
		return "", "", fmt.Errorf("bad RFC 1929 version %d: %v", ver, err)
	}
	field := func() (string, error) {
		n, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		b := make([]byte, n)
		_, err = io.ReadFull(r, b)
		return string(b), err
	}
	if user, err = field(); err != nil {
		return "", "", err
	}
	pass, err = field()
	return user, pass, err
}

func (p *Proxy) serveSOCKS4a(c net.Conn) {
	r := bufio.NewReader(c)
	var head [8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil || head[0] != 4 {
		return
	}
	fail := func(code byte) { _, _ = c.Write([]byte{0, code, 0, 0, 0, 0, 0, 0}) }
	userID, err := r.ReadString(0)
	if err != nil {
		return
	}
	userID = userID[:len(userID)-1]
	host := net.IP(head[4:8]).String()
	if head[4] == 0 && head[5] == 0 && head[6] == 0 && head[7] != 0 {
		name, err := r.ReadString(0)
		if err != nil {
			return
		}
		host = name[:len(name)-1]
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(head[2:4]))))
	if head[1] != 1 {
		fail(91)
		return
	}
	if p.opts.User != "" && userID != p.opts.User {
		p.refused()
		fail(93)
		return
	}
	t, err := p.dial(target)
	if err != nil {
		fail(91)
		return
	}
	p.relay(c, t, []byte{0, 90, 0, 0, 0, 0, 0, 0}, r)
}

func (p *Proxy) serveHTTP(c net.Conn) {
	r := bufio.NewReader(c)
	req, err := http.ReadRequest(r)
	if err != nil {
		return
	}
	status := func(code int, extra string) {
		fmt.Fprintf(c, "HTTP/1.1 %d %s\r\n%sContent-Length: 0\r\n\r\n", code, http.StatusText(code), extra)
	}
	if req.Method != http.MethodConnect {
		status(http.StatusMethodNotAllowed, "")
		return
	}
	if p.opts.User != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.opts.User+":"+p.opts.Pass))
		if req.Header.Get("Proxy-Authorization") != want {
			p.refused()
			status(http.StatusProxyAuthRequired, "Proxy-Authenticate: Basic realm=\"pttest\"\r\n")
			return
		}
	}
	if p.opts.HTTPStatus != 0 {
		p.asked(req.Host)
		status(p.opts.HTTPStatus, "")
		return
	}
	t, err := p.dial(req.Host)
	if err != nil {
		status(http.StatusBadGateway, "")
		return
	}
	p.relay(c, t, []byte("HTTP/1.1 200 Connection established\r\nProxy-Agent: pttest\r\n\r\n"), r)
}
