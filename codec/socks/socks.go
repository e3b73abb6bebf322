// Package socks is the server side of the SOCKS5 negotiation tor performs with a client
// pluggable transport (RFC 1928, RFC 1929, pt-spec 3.5). It is sans-IO: the reactor hands
// a Server the bytes read from tor, writes back the reply bytes the Server appends, and
// once Done reports true it reads the requested destination and the per-connection
// transport arguments from Request.
//
// Only what tor uses is accepted: methods "no authentication" (00) and username/password
// (02, preferred when offered, because tor puts the transport arguments there), and the
// CONNECT command to an IPv4, IPv6 or domain-name destination. Every refusal carries the
// reply code RFC 1928 assigns to it, and ReplyCode maps a failed dial to the code tor's
// log will show.
package socks

import (
	"errors"
	"net"
	"net/netip"
	"strconv"

	"github.com/ptreactor/ptreactor/codec"
)

// Reply codes of RFC 1928 section 6.
const (
	Succeeded           byte = 0x00
	GeneralFailure      byte = 0x01
	NotAllowed          byte = 0x02
	NetworkUnreachable  byte = 0x03
	HostUnreachable     byte = 0x04
	ConnectionRefused   byte = 0x05
	TTLExpired          byte = 0x06
	CommandNotSupported byte = 0x07
	AddrTypeNotSupp     byte = 0x08
)

const (
	version5 = 0x05

	methodNoAuth   = 0x00
	methodUserPass = 0x02
	methodNone     = 0xff

	userPassVersion = 0x01

	cmdConnect = 0x01

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04
)

// Errors that end a negotiation. When Step returns one of them it has already appended the
// reply tor should see (if the protocol has one); the caller writes it and closes.
var (
	ErrVersion     = errors.New("socks: not SOCKS version 5")
	ErrNoMethod    = errors.New("socks: no acceptable authentication method")
	ErrAuth        = errors.New("socks: malformed username/password authentication")
	ErrCommand     = errors.New("socks: command not supported")
	ErrAddressType = errors.New("socks: address type not supported")
	ErrAddress     = errors.New("socks: malformed destination address")
)

// Request is what tor asked for: the bridge address and the transport arguments.
type Request struct {
	// Addr is the destination as host:port; IPv6 literals are bracketed.
	Addr string
	// Args are the per-connection transport arguments (empty without authentication).
	Args codec.Args
}

type stage uint8

const (
	stageGreeting stage = iota
	stageAuth
	stageRequest
	stageDone
	stageFailed
)

// Server is the state of one SOCKS5 negotiation. The zero value is ready for the greeting.
type Server struct {
	stage stage
	args  codec.Args
	req   Request
}

// Done reports whether a CONNECT request has been accepted; Request is then valid. The
// success reply is not sent by the Server: the reactor sends it (with AppendReply) only once
// the transport connection is up, as pt-spec requires.
func (s *Server) Done() bool { return s.stage == stageDone }

// Request returns the accepted request; valid once Done reports true.
func (s *Server) Request() Request { return s.req }

// Step consumes what it can of in, the unconsumed bytes read from tor so far, and appends
// to dst the bytes to write back. It returns how many bytes of in it used; bytes it did not
// use (an incomplete message) must be offered again with more appended. Once Done, Step
// consumes nothing more: bytes tor sent after its request are the caller's to judge. An
// error ends the negotiation; dst then holds the refusal, if SOCKS has one for the case.
func (s *Server) Step(in, dst []byte) (consumed int, out []byte, err error) {
	out = dst
	for {
		var n int
		switch s.stage {
		case stageGreeting:
			n, out, err = s.greeting(in[consumed:], out)
		case stageAuth:
			n, out, err = s.auth(in[consumed:], out)
		case stageRequest:
			n, out, err = s.request(in[consumed:], out)
		default:
			return consumed, out, nil
		}
		if err != nil {
			s.stage = stageFailed
			return consumed, out, err
		}
		if n == 0 {
			return consumed, out, nil
		}
		consumed += n
	}
}

// greeting handles VER NMETHODS METHODS.
func (s *Server) greeting(in, dst []byte) (int, []byte, error) {
	if len(in) < 1 {
		return 0, dst, nil
	}
	if in[0] != version5 {
		return 0, dst, ErrVersion
	}
	if len(in) < 2 {
		return 0, dst, nil
	}
	n := 2 + int(in[1])
	if len(in) < n {
		return 0, dst, nil
	}
	var noAuth, userPass bool
	for _, m := range in[2:n] {
		switch m {
		case methodNoAuth:
			noAuth = true
		case methodUserPass:
			userPass = true
		}
	}
	switch {
	case userPass: // tor offers 02 exactly when it has arguments to pass
		s.stage = stageAuth
		return n, append(dst, version5, methodUserPass), nil
	case noAuth:
		s.stage = stageRequest
		return n, append(dst, version5, methodNoAuth), nil
	}
	return 0, append(dst, version5, methodNone), ErrNoMethod
}

// auth handles the RFC 1929 sub-negotiation VER ULEN UNAME PLEN PASSWD, where tor splits
// the argument string across UNAME and PASSWD (pt-spec 3.5).
func (s *Server) auth(in, dst []byte) (int, []byte, error) {
	if len(in) < 1 {
		return 0, dst, nil
	}
	if in[0] != userPassVersion {
		return 0, append(dst, userPassVersion, 0x01), ErrAuth
	}
	if len(in) < 2 {
		return 0, dst, nil
	}
	ulen := int(in[1])
	if len(in) < 2+ulen+1 {
		return 0, dst, nil
	}
	plen := int(in[2+ulen])
	n := 2 + ulen + 1 + plen
	if len(in) < n {
		return 0, dst, nil
	}
	if ulen == 0 || plen == 0 {
		return 0, append(dst, userPassVersion, 0x01), ErrAuth
	}
	uname := in[2 : 2+ulen]
	passwd := in[3+ulen : n]
	// The split may fall inside an escape, so join before unescaping. A lone NUL password
	// means "no second half": tor sends it when the whole string fits in UNAME.
	joined := make([]byte, 0, ulen+plen)
	joined = append(joined, uname...)
	if !(plen == 1 && passwd[0] == 0) {
		joined = append(joined, passwd...)
	}
	args, err := ParseArgs(string(joined))
	if err != nil {
		return 0, append(dst, userPassVersion, 0x01), errors.Join(ErrAuth, err)
	}
	s.args = args
	s.stage = stageRequest
	return n, append(dst, userPassVersion, 0x00), nil
}

// request handles VER CMD RSV ATYP DST.ADDR DST.PORT.
func (s *Server) request(in, dst []byte) (int, []byte, error) {
	if len(in) < 1 {
		return 0, dst, nil
	}
	if in[0] != version5 {
		return 0, AppendReply(dst, GeneralFailure), ErrVersion
	}
	if len(in) < 4 {
		return 0, dst, nil
	}
	cmd, atyp := in[1], in[3]
	var host string
	var n int
	switch atyp {
	case atypIPv4:
		n = 4 + 4 + 2
		if len(in) < n {
			return 0, dst, nil
		}
		host = net.IP(in[4:8]).String()
	case atypIPv6:
		n = 4 + 16 + 2
		if len(in) < n {
			return 0, dst, nil
		}
		host = net.IP(in[4:20]).String()
	case atypDomain:
		if len(in) < 5 {
			return 0, dst, nil
		}
		dlen := int(in[4])
		n = 5 + dlen + 2
		if len(in) < n {
			return 0, dst, nil
		}
		host = string(in[5 : 5+dlen])
		if !ValidHost(host) {
			return 0, AppendReply(dst, GeneralFailure), ErrAddress
		}
	default:
		return 0, AppendReply(dst, AddrTypeNotSupp), ErrAddressType
	}
	// The command is judged once the whole message is in, as RFC 1928 servers do; the
	// reply is the same either way.
	if cmd != cmdConnect {
		return 0, AppendReply(dst, CommandNotSupported), ErrCommand
	}
	port := int(in[n-2])<<8 | int(in[n-1])
	if s.args == nil {
		s.args = codec.Args{}
	}
	s.req = Request{Addr: net.JoinHostPort(host, strconv.Itoa(port)), Args: s.args}
	s.stage = stageDone
	return n, dst, nil
}

// ValidHost reports whether a DOMAINNAME destination is something a dialer can be handed:
// a host name of letters, digits, '-', '_' and '.', or an IP literal that a client sent in
// domain form. Anything else (brackets, colons, NULs, spaces) would at best fail in the
// resolver and at worst change meaning when joined with the port, so it is refused here.
func ValidHost(h string) bool {
	if h == "" {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// AppendReply appends a SOCKS5 reply with code rep and the bound address 0.0.0.0:0, which is
// what tor expects (it ignores BND.ADDR and BND.PORT).
func AppendReply(dst []byte, rep byte) []byte {
	return append(dst, version5, rep, 0x00, atypIPv4, 0, 0, 0, 0, 0, 0)
}
