// Package extor is the client side of tor's Extended ORPort (ext-orport-spec.txt), the
// connection a bridge's pluggable transport opens to its tor for every client: SAFE_COOKIE
// authentication, then the client's address (USERADDR) and the transport's name (TRANSPORT),
// then DONE, and tor's OKAY before any OR bytes may follow.
//
// The package is sans-IO. A Client is fed the bytes tor sent and hands back the bytes to
// send; it never touches a socket or a clock. Need tells the caller how many bytes it may read
// next without reading past the end of the handshake, so a blocking caller can leave the
// first OR bytes in the socket, where the event loop that takes the connection over finds
// them.
package extor

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
)

// CookieFileSize is the exact size of tor's auth cookie file: a 32-byte header and a 32-byte
// cookie.
const CookieFileSize = 64

// cookieHeader starts every Extended ORPort cookie file (ext-orport-spec 2.1.2).
const cookieHeader = "! Extended ORPort Auth Cookie !\x0a"

// Cookie is the shared secret of SAFE_COOKIE authentication (CookieString in the spec).
type Cookie [32]byte

// The HMAC labels of SAFE_COOKIE, 46 ASCII bytes each, without NUL.
const (
	serverHashLabel = "ExtORPort authentication server-to-client hash"
	clientHashLabel = "ExtORPort authentication client-to-server hash"
)

// Protocol numbers.
const (
	authSafeCookie = 1

	cmdDone      = 0x0000
	cmdUserAddr  = 0x0001
	cmdTransport = 0x0002
	replyOkay    = 0x1000
	replyDeny    = 0x1001
)

// Errors a handshake ends with. They are distinct so that logs say which side was at fault.
var (
	ErrCookieFile   = errors.New("extor: malformed auth cookie file")
	ErrNoSafeCookie = errors.New("extor: tor does not offer SAFE_COOKIE authentication")
	ErrServerHash   = errors.New("extor: tor's server hash is wrong (stale or foreign cookie file?)")
	ErrAuthFailed   = errors.New("extor: tor rejected our client hash")
	ErrDenied       = errors.New("extor: tor denied the connection")
	ErrBadList      = errors.New("extor: auth-type list too long")
	ErrTransport    = errors.New("extor: transport name is not a C identifier")
)

// ReadCookieFile reads and checks tor's auth cookie file. tor may rewrite the file after it
// has started its transports (tor bug #15240), so callers read it for every connection.
func ReadCookieFile(path string) (Cookie, error) {
	f, err := os.Open(path)
	if err != nil {
		return Cookie{}, err
	}
	defer f.Close()
	// One byte more than a valid file, to tell a long file from a good one.
	var buf [CookieFileSize + 1]byte
	n, err := io.ReadFull(f, buf[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return Cookie{}, err
	}
	return ParseCookieFile(buf[:n])
}

// ParseCookieFile checks the contents of a cookie file: exactly CookieFileSize bytes that
// start with the static header. The header comparison runs in constant time, as the rest of
// the secret's handling does.
func ParseCookieFile(b []byte) (Cookie, error) {
	var c Cookie
	if len(b) != CookieFileSize {
		return c, fmt.Errorf("%w: %d bytes, want %d", ErrCookieFile, len(b), CookieFileSize)
	}
	if subtle.ConstantTimeCompare(b[:len(cookieHeader)], []byte(cookieHeader)) != 1 {
		return c, fmt.Errorf("%w: wrong header", ErrCookieFile)
	}
	copy(c[:], b[len(cookieHeader):])
	return c, nil
}

// ServerHash is the hash tor proves its knowledge of the cookie with.
func ServerHash(c *Cookie, clientNonce, serverNonce *[32]byte) [32]byte {
	return safeCookieHash(c, serverHashLabel, clientNonce, serverNonce)
}

// ClientHash is the hash the transport proves its knowledge of the cookie with.
func ClientHash(c *Cookie, clientNonce, serverNonce *[32]byte) [32]byte {
	return safeCookieHash(c, clientHashLabel, clientNonce, serverNonce)
}

func safeCookieHash(c *Cookie, label string, clientNonce, serverNonce *[32]byte) [32]byte {
	m := hmac.New(sha256.New, c[:])
	m.Write([]byte(label))
	m.Write(clientNonce[:])
	m.Write(serverNonce[:])
	var h [32]byte
	m.Sum(h[:0])
	return h
}

// ValidTransportName reports whether name is a C identifier, the form tor checks TRANSPORT
// bodies against.
func ValidTransportName(name string) bool {
	if name == "" || len(name) > 0xffff {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		switch {
		case b == '_', 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z':
		case '0' <= b && b <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// FormatUserAddr writes a client address the way USERADDR wants it: `1.2.3.4:5678` or
// `[1:2::3:4]:5678`. IPv4-mapped IPv6 addresses are written as IPv4 and zones are dropped,
// since the spec recognises no other forms.
func FormatUserAddr(ap netip.AddrPort) string {
	a := ap.Addr().Unmap().WithZone("")
	return netip.AddrPortFrom(a, ap.Port()).String()
}

// AppendCommand appends one transport-to-tor command (COMMAND, BODYLEN, BODY) to dst.
func AppendCommand(dst []byte, cmd uint16, body string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, cmd)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(body)))
	return append(dst, body...)
}

type state uint8

const (
	stAuthTypes  state = iota // reading the auth-type list up to its 0
	stServerAuth              // reading ServerHash and ServerNonce
	stStatus                  // reading the status byte
	stReplyHead               // reading a reply's COMMAND and BODYLEN
	stReplyBody               // skipping a reply's body (ignored for every reply)
	stDone                    // OKAY received
	stFailed                  // the handshake ended in an error
)

// Client is one Extended ORPort handshake, from the first byte tor sends to its OKAY.
//
// Use: Start, then repeatedly read at most Need bytes from tor, Feed them and send what Feed
// returns, until Done or an error.
type Client struct {
	cookie      Cookie
	clientNonce [32]byte
	userAddr    string // empty: no USERADDR is sent
	transport   string

	st        state
	safe      bool     // SAFE_COOKIE was in the auth-type list
	buf       [64]byte // accumulates the current fixed-size field
	have      int      // bytes of buf filled (auth types seen, in stAuthTypes)
	bodyLeft  int      // bytes of the current reply's body still to skip
	afterBody state    // where the current reply's body leads
	err       error
	out       []byte
}

// NewClient prepares the handshake for one connection. clientNonce must be 32 fresh random
// bytes. userAddr is the address of the transport's client; an invalid one (for example
// netip.AddrPort{}) means no USERADDR is sent. transport must be a C identifier.
func NewClient(cookie Cookie, clientNonce [32]byte, userAddr netip.AddrPort, transport string) (*Client, error) {
	if !ValidTransportName(transport) {
		return nil, fmt.Errorf("%w: %q", ErrTransport, transport)
	}
	c := &Client{cookie: cookie, clientNonce: clientNonce, transport: transport}
	if userAddr.IsValid() {
		c.userAddr = FormatUserAddr(userAddr)
	}
	return c, nil
}

// Start returns the bytes to send before tor has said anything: none, since tor speaks first
// with its list of auth types. It is here so that every client handshake of ptreactor has the
// same shape.
func (c *Client) Start() []byte { return nil }

// Done reports whether tor has answered OKAY; from then on the connection carries OR bytes.
func (c *Client) Done() bool { return c.st == stDone }

// Need is how many bytes the caller may read from tor next without any risk of reading past
// the end of the handshake. It is 0 once the handshake is done or failed.
func (c *Client) Need() int {
	switch c.st {
	case stAuthTypes, stStatus:
		return 1
	case stServerAuth:
		return 64 - c.have
	case stReplyHead:
		return 4 - c.have
	case stReplyBody:
		return c.bodyLeft
	}
	return 0
}

// Feed consumes bytes tor sent. It returns how many of in it used, the bytes to send to tor
// (valid until the next call), and an error that ends the handshake. It uses all of in
// unless the handshake ends within it: bytes after OKAY are OR bytes and are left to the
// caller (tor sends none before the transport's first cell, but a caller that reads more than
// Need is not wrong). Once the handshake has ended, Feed uses nothing.
func (c *Client) Feed(in []byte) (n int, out []byte, err error) {
	c.out = c.out[:0]
	for n < len(in) && c.st < stDone {
		switch c.st {
		case stAuthTypes:
			b := in[n]
			n++
			if b == authSafeCookie {
				c.safe = true
			}
			if b != 0 {
				// Types are 1..255; a list longer than that is not tor's.
				if c.have++; c.have > 255 {
					c.fail(ErrBadList)
				}
				continue
			}
			if !c.safe {
				c.fail(ErrNoSafeCookie)
				break
			}
			c.out = append(c.out, authSafeCookie)
			c.out = append(c.out, c.clientNonce[:]...)
			c.st, c.have = stServerAuth, 0

		case stServerAuth:
			k := copy(c.buf[c.have:64], in[n:])
			n += k
			c.have += k
			if c.have < 64 {
				continue
			}
			serverNonce := (*[32]byte)(c.buf[32:64])
			want := ServerHash(&c.cookie, &c.clientNonce, serverNonce)
			if !hmac.Equal(want[:], c.buf[:32]) {
				c.fail(ErrServerHash)
				break
			}
			ch := ClientHash(&c.cookie, &c.clientNonce, serverNonce)
			c.out = append(c.out, ch[:]...)
			c.st = stStatus

		case stStatus:
			b := in[n]
			n++
			if b != 1 {
				c.fail(ErrAuthFailed)
				break
			}
			if c.userAddr != "" {
				c.out = AppendCommand(c.out, cmdUserAddr, c.userAddr)
			}
			c.out = AppendCommand(c.out, cmdTransport, c.transport)
			c.out = AppendCommand(c.out, cmdDone, "")
			c.st, c.have = stReplyHead, 0

		case stReplyHead:
			k := copy(c.buf[c.have:4], in[n:])
			n += k
			c.have += k
			if c.have < 4 {
				continue
			}
			c.have = 0
			cmd := binary.BigEndian.Uint16(c.buf[0:2])
			c.bodyLeft = int(binary.BigEndian.Uint16(c.buf[2:4]))
			switch cmd {
			case replyOkay:
				// OKAY's body is ignored, but it is still part of the reply.
				c.afterBody = stDone
			case replyDeny:
				c.fail(ErrDenied)
				continue
			default:
				// Unknown replies must be ignored (ext-orport-spec 3.1).
				c.afterBody = stReplyHead
			}
			c.st = stReplyBody
			if c.bodyLeft == 0 {
				c.st = c.afterBody
			}

		case stReplyBody:
			k := min(c.bodyLeft, len(in)-n)
			n += k
			c.bodyLeft -= k
			if c.bodyLeft == 0 {
				c.st = c.afterBody
			}
		}
	}
	return n, c.out, c.err
}

func (c *Client) fail(err error) {
	c.st, c.err = stFailed, err
}
