package upstream

import (
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
)

// httpRequest is the whole CONNECT request, with Basic credentials when the URI has any.
func (h *Handshake) httpRequest(dst []byte) []byte {
	hostport := net.JoinHostPort(h.host, strconv.Itoa(int(h.port)))
	dst = append(dst, "CONNECT "...)
	dst = append(dst, hostport...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, hostport...)
	dst = append(dst, "\r\n"...)
	if h.user != "" || h.pass != "" {
		dst = append(dst, "Proxy-Authorization: Basic "...)
		dst = base64.StdEncoding.AppendEncode(dst, []byte(h.user+":"+h.pass))
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// maxHTTPHeader bounds the response header a proxy may send; a CONNECT reply is short.
const maxHTTPHeader = 16 << 10

// minStatusLine is the shortest possible complete reply: "HTTP/1.1 200\n\n".
const minStatusLine = 14

// httpReply scans a CONNECT response up to the empty line that ends its header. It accepts
// CRLF and bare LF line ends, and keeps only the start of the status line.
type httpReply struct {
	total      int      // bytes seen
	status     [64]byte // the start of the status line
	statusLen  int
	pastStatus bool // the status line has ended
	lineLen    int  // bytes of the current line, not counting CRs
}

// need is the least number of bytes that could complete the header, so reading that many
// never reads past it: a line with content needs at least "\n\n", an empty one "\n".
func (r *httpReply) need() int {
	switch {
	case r.total < minStatusLine-2:
		return minStatusLine - r.total
	case r.lineLen == 0:
		return 1
	default:
		return 2
	}
}

func (h *Handshake) httpFeed(in []byte) int {
	r := &h.http
	for i, b := range in {
		r.total++
		if r.total > maxHTTPHeader {
			h.fail(fmt.Errorf("%w: http header longer than %d bytes", ErrReply, maxHTTPHeader))
			return i + 1
		}
		switch {
		case b == '\r':
		case b != '\n':
			r.lineLen++
			if !r.pastStatus && r.statusLen < len(r.status) {
				r.status[r.statusLen] = b
				r.statusLen++
			}
		case !r.pastStatus:
			r.pastStatus, r.lineLen = true, 0
			if err := h.httpStatus(); err != nil {
				h.fail(err)
				return i + 1
			}
		case r.lineLen == 0:
			h.done = true
			return i + 1
		default:
			r.lineLen = 0
		}
	}
	return len(in)
}

// httpStatus checks the status line: "HTTP/1.x 200 reason". Anything but 200 fails the
// tunnel; 407 means the credentials were missing or wrong.
func (h *Handshake) httpStatus() error {
	line := h.http.status[:h.http.statusLen]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return fmt.Errorf("%w: http status line %q", ErrReply, line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 {
		return fmt.Errorf("%w: http status line %q", ErrReply, line)
	}
	if code == 200 {
		return nil
	}
	reason := ""
	if len(line) > 13 {
		reason = string(line[13:])
	}
	e := &ReplyError{Proxy: "http", Code: code, Text: reason}
	if code == 407 {
		return fmt.Errorf("%w: %w", ErrAuth, e)
	}
	return e
}
