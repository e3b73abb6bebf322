// Package upstream holds the client handshakes a transport client runs through the proxy
// tor names in TOR_PT_PROXY (pt-spec 3.2.2): SOCKS5 with optional RFC 1929 credentials,
// SOCKS4a with a USERID, and HTTP CONNECT with optional Basic credentials.
//
// The package is sans-IO, in the same shape as codec/extor: Start gives the first bytes to
// send, Need says how many bytes may be read next without reading past the proxy's reply,
// Feed consumes them and gives what to send next. Reading no more than Need leaves the first
// bytes of the tunnelled connection in the socket, where the event loop that takes the
// connection over finds them.
//
// A proxy's refusal comes back as an error that says why: a SOCKS5 reply code wraps the
// matching errno (errors.Is(err, syscall.ECONNREFUSED) and so on), so the SOCKS reply ptreactor
// gives tor can say the same thing; rejected credentials wrap ErrAuth.
package upstream

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Errors of the handshakes.
var (
	// ErrScheme is returned for a proxy URI whose scheme is not socks5, socks4a or http.
	ErrScheme = errors.New("upstream: unsupported proxy scheme")
	// ErrTarget is returned for a target address the protocol cannot carry.
	ErrTarget = errors.New("upstream: invalid target address")
	// ErrAuth is wrapped by the error for credentials the proxy rejected (or demanded and
	// did not get).
	ErrAuth = errors.New("upstream: proxy rejected the credentials")
	// ErrReply is wrapped by the error for a reply that breaks the protocol.
	ErrReply = errors.New("upstream: malformed proxy reply")
)

// ReplyError is a proxy's refusal to connect to the target. Err, when not nil, is the
// errno the refusal stands for; Unwrap exposes it to errors.Is.
type ReplyError struct {
	Proxy string // "socks5", "socks4a", "http"
	Code  int    // the reply code or HTTP status
	Text  string // what the code means
	Err   error  // a syscall.Errno, or nil
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("upstream: %s proxy refused: %s (%d)", e.Proxy, e.Text, e.Code)
}

func (e *ReplyError) Unwrap() error { return e.Err }

// Proxy is the proxy TOR_PT_PROXY names, as lifecycle parsed and validated it: the scheme
// (socks5, socks4a or http), the address (an IP literal; the proxy is reached without a DNS
// lookup) and the credentials. Validated means: socks5 credentials are both 1..255 bytes or
// both empty (no authentication); socks4a has a user ID (maybe empty) and no password; http
// takes anything (Basic is sent when either is set); neither holds a control byte.
type Proxy struct {
	Scheme     string
	Addr       netip.AddrPort
	User, Pass string
}

// Handshake is one client handshake with a proxy, for one connection to one target.
type Handshake struct {
	kind kind
	st   int // per-kind state
	done bool
	err  error

	user, pass string // socks5 RFC 1929, socks4a USERID (user only)
	host       string // target host: an IP literal or a name
	port       uint16
	ip         netip.Addr // valid when host is an IP literal

	buf  [8]byte // fixed-size reply fields
	have int
	left int // variable-size reply bytes still to read

	http httpReply

	out []byte
}

type kind uint8

const (
	kindSOCKS5 kind = iota
	kindSOCKS4a
	kindHTTP
)

// New prepares the handshake for a connection through proxy, a validated Proxy, to target
// ("host:port"; host is an IP literal or a name, resolved by the proxy).
func New(proxy Proxy, target string) (*Handshake, error) {
	h := &Handshake{user: proxy.User, pass: proxy.Pass}
	switch proxy.Scheme {
	case "socks5":
		h.kind = kindSOCKS5
	case "socks4a":
		h.kind = kindSOCKS4a
	case "http":
		h.kind = kindHTTP
	default:
		return nil, fmt.Errorf("%w: %q", ErrScheme, proxy.Scheme)
	}
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTarget, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("%w: port %q", ErrTarget, portStr)
	}
	if host == "" || len(host) > 255 || containsNUL(host) || containsAny(host, "\r\n ") {
		return nil, fmt.Errorf("%w: host %q", ErrTarget, host)
	}
	h.host, h.port = host, uint16(port)
	if ip, err := netip.ParseAddr(host); err == nil {
		h.ip = ip.Unmap()
		if h.ip.Zone() != "" {
			return nil, fmt.Errorf("%w: zoned address %q", ErrTarget, host)
		}
	}
	if h.kind == kindSOCKS4a && h.ip.Is6() {
		return nil, fmt.Errorf("%w: socks4a cannot carry IPv6 address %s", ErrTarget, host)
	}
	return h, nil
}

func containsNUL(s string) bool { return containsAny(s, "\x00") }

func containsAny(s, chars string) bool {
	for i := 0; i < len(s); i++ {
		for j := 0; j < len(chars); j++ {
			if s[i] == chars[j] {
				return true
			}
		}
	}
	return false
}

// Start returns the first bytes to send to the proxy (valid until the next call).
func (h *Handshake) Start() []byte {
	h.out = h.out[:0]
	switch h.kind {
	case kindSOCKS5:
		h.out = h.socks5Greeting(h.out)
	case kindSOCKS4a:
		h.out = h.socks4aRequest(h.out)
	case kindHTTP:
		h.out = h.httpRequest(h.out)
	}
	return h.out
}

// Done reports whether the proxy has connected the tunnel; from then on the connection
// carries the target's bytes.
func (h *Handshake) Done() bool { return h.done }

// Need is how many bytes the caller may read from the proxy next without any risk of reading
// past the end of its reply; 0 once the handshake has ended.
func (h *Handshake) Need() int {
	if h.done || h.err != nil {
		return 0
	}
	switch h.kind {
	case kindSOCKS5:
		return h.socks5Need()
	case kindSOCKS4a:
		return 8 - h.have
	default:
		return h.http.need()
	}
}

// Feed consumes bytes the proxy sent. It returns how many of in it used, the bytes to send
// to the proxy (valid until the next call), and an error that ends the handshake. It uses
// all of in unless the handshake ends within it: bytes after the reply belong to the tunnel
// and are left to the caller. Once the handshake has ended, Feed uses nothing.
func (h *Handshake) Feed(in []byte) (n int, out []byte, err error) {
	h.out = h.out[:0]
	for n < len(in) && !h.done && h.err == nil {
		var k int
		switch h.kind {
		case kindSOCKS5:
			k = h.socks5Feed(in[n:])
		case kindSOCKS4a:
			k = h.socks4aFeed(in[n:])
		default:
			k = h.httpFeed(in[n:])
		}
		n += k
	}
	return n, h.out, h.err
}

// fill copies from in into h.buf until it holds want bytes; it returns the bytes used and
// whether the field is complete.
func (h *Handshake) fill(in []byte, want int) (int, bool) {
	k := copy(h.buf[h.have:want], in)
	h.have += k
	return k, h.have == want
}

func (h *Handshake) fail(err error) { h.err = err }
