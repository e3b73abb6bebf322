package upstream

import (
	"encoding/binary"
	"fmt"
)

// socks4aRequest is the whole SOCKS4a CONNECT request: VN=4 CD=1 DSTPORT DSTIP USERID NUL,
// and for a host name DSTIP 0.0.0.1 followed by the name and NUL.
func (h *Handshake) socks4aRequest(dst []byte) []byte {
	dst = append(dst, 4, 1)
	dst = binary.BigEndian.AppendUint16(dst, h.port)
	if h.ip.Is4() {
		a := h.ip.As4()
		dst = append(dst, a[:]...)
		dst = append(dst, h.user...)
		return append(dst, 0)
	}
	dst = append(dst, 0, 0, 0, 1)
	dst = append(dst, h.user...)
	dst = append(dst, 0)
	dst = append(dst, h.host...)
	return append(dst, 0)
}

// socks4aFeed reads the 8-byte reply: VN CD DSTPORT DSTIP.
func (h *Handshake) socks4aFeed(in []byte) int {
	k, full := h.fill(in, 8)
	if !full {
		return k
	}
	// VN is 0 by the protocol; some servers echo 4.
	if h.buf[0] != 0 && h.buf[0] != 4 {
		h.fail(fmt.Errorf("%w: socks4a version %d", ErrReply, h.buf[0]))
		return k
	}
	switch cd := h.buf[1]; cd {
	case 90:
		h.done = true
	case 91:
		h.fail(&ReplyError{Proxy: "socks4a", Code: int(cd), Text: "request rejected or failed"})
	case 92:
		h.fail(&ReplyError{Proxy: "socks4a", Code: int(cd), Text: "proxy cannot reach our identd"})
	case 93:
		h.fail(fmt.Errorf("%w: %w", ErrAuth, &ReplyError{Proxy: "socks4a", Code: int(cd), Text: "user id not accepted"}))
	default:
		h.fail(fmt.Errorf("%w: socks4a reply code %d", ErrReply, cd))
	}
	return k
}
