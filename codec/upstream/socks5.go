package upstream

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// SOCKS5 (RFC 1928) states.
const (
	s5Method    = iota // reading VER METHOD
	s5Auth             // reading the RFC 1929 VER STATUS
	s5ReplyHead        // reading VER REP RSV ATYP
	s5DomainLen        // reading the length of a domain-name BND.ADDR
	s5ReplyTail        // skipping BND.ADDR and BND.PORT
)

const (
	s5NoAuth   = 0x00
	s5UserPass = 0x02
	s5NoMethod = 0xff
)

func (h *Handshake) socks5Greeting(dst []byte) []byte {
	if h.user != "" {
		// Offer both: a proxy that wants no credentials may say so.
		return append(dst, 5, 2, s5NoAuth, s5UserPass)
	}
	return append(dst, 5, 1, s5NoAuth)
}

func (h *Handshake) socks5Connect(dst []byte) []byte {
	dst = append(dst, 5, 1, 0) // VER CMD=CONNECT RSV
	switch {
	case h.ip.Is4():
		a := h.ip.As4()
		dst = append(dst, 1)
		dst = append(dst, a[:]...)
	case h.ip.Is6():
		a := h.ip.As16()
		dst = append(dst, 4)
		dst = append(dst, a[:]...)
	default:
		dst = append(dst, 3, byte(len(h.host)))
		dst = append(dst, h.host...)
	}
	return binary.BigEndian.AppendUint16(dst, h.port)
}

func (h *Handshake) socks5Need() int {
	switch h.st {
	case s5Method, s5Auth:
		return 2 - h.have
	case s5ReplyHead:
		return 4 - h.have
	case s5DomainLen:
		return 1
	default:
		return h.left
	}
}

// socks5Feed consumes part of in and reports how much.
func (h *Handshake) socks5Feed(in []byte) int {
	switch h.st {
	case s5Method:
		k, full := h.fill(in, 2)
		if !full {
			return k
		}
		h.have = 0
		if h.buf[0] != 5 {
			h.fail(fmt.Errorf("%w: socks5 version %d", ErrReply, h.buf[0]))
			return k
		}
		switch h.buf[1] {
		case s5NoAuth:
			h.out = h.socks5Connect(h.out)
			h.st = s5ReplyHead
		case s5UserPass:
			if h.user == "" {
				h.fail(fmt.Errorf("%w: socks5 method %d was not offered", ErrReply, h.buf[1]))
				return k
			}
			h.out = append(h.out, 1, byte(len(h.user)))
			h.out = append(h.out, h.user...)
			h.out = append(h.out, byte(len(h.pass)))
			h.out = append(h.out, h.pass...)
			h.st = s5Auth
		case s5NoMethod:
			if h.user == "" {
				h.fail(fmt.Errorf("%w: socks5 proxy wants credentials and none are configured", ErrAuth))
			} else {
				h.fail(fmt.Errorf("%w: socks5 proxy accepts neither no authentication nor username/password", ErrAuth))
			}
		default:
			h.fail(fmt.Errorf("%w: socks5 method %d was not offered", ErrReply, h.buf[1]))
		}
		return k

	case s5Auth:
		k, full := h.fill(in, 2)
		if !full {
			return k
		}
		h.have = 0
		// RFC 1929 says VER is 1; some proxies answer 5. Only STATUS matters.
		if h.buf[1] != 0 {
			h.fail(fmt.Errorf("%w: socks5 username/password status %d", ErrAuth, h.buf[1]))
			return k
		}
		h.out = h.socks5Connect(h.out)
		h.st = s5ReplyHead
		return k

	case s5ReplyHead:
		k, full := h.fill(in, 4)
		if !full {
			return k
		}
		h.have = 0
		if h.buf[0] != 5 {
			h.fail(fmt.Errorf("%w: socks5 version %d", ErrReply, h.buf[0]))
			return k
		}
		if rep := h.buf[1]; rep != 0 {
			h.fail(socks5ReplyError(rep))
			return k
		}
		switch h.buf[3] {
		case 1:
			h.left, h.st = 4+2, s5ReplyTail
		case 4:
			h.left, h.st = 16+2, s5ReplyTail
		case 3:
			h.st = s5DomainLen
		default:
			h.fail(fmt.Errorf("%w: socks5 address type %d", ErrReply, h.buf[3]))
		}
		return k

	case s5DomainLen:
		h.left, h.st = int(in[0])+2, s5ReplyTail
		return 1

	default: // s5ReplyTail: the bound address and port say nothing we need
		k := min(h.left, len(in))
		h.left -= k
		if h.left == 0 {
			h.done = true
		}
		return k
	}
}

// socks5Replies maps RFC 1928 reply codes to what they mean and to the errno of the same
// meaning, so that ptreactor's own SOCKS reply to tor can pass it on.
var socks5Replies = [...]struct {
	text  string
	errno syscall.Errno
}{
	1: {"general SOCKS server failure", 0},
	2: {"connection not allowed by ruleset", 0},
	3: {"network unreachable", syscall.ENETUNREACH},
	4: {"host unreachable", syscall.EHOSTUNREACH},
	5: {"connection refused", syscall.ECONNREFUSED},
	6: {"TTL expired", syscall.ETIMEDOUT},
	7: {"command not supported", 0},
	8: {"address type not supported", 0},
}

func socks5ReplyError(rep byte) error {
	e := &ReplyError{Proxy: "socks5", Code: int(rep), Text: "unknown reply code"}
	if int(rep) < len(socks5Replies) {
		r := socks5Replies[rep]
		e.Text = r.text
		if r.errno != 0 {
			e.Err = r.errno
		}
	}
	return e
}
