// Package proxyproto reads the PROXY protocol header (HAProxy's doc/proxy-protocol.txt) as the
// server that receives it: the line (version 1) or binary block (version 2) a load balancer
// writes before the first byte of the client's own stream, saying which address the client
// connected from and which address it connected to.
//
// The package is sans-IO. Parse is handed whatever bytes have arrived so far and either
// reports that it needs more, fails, or returns the header and how many bytes it took; it
// never takes a byte past the header, so the caller hands the rest of its buffer to the
// transport that follows (obfs4). It keeps no state between calls: the caller offers the
// same bytes again with more appended, the contract the reactor already follows for every
// wire, and the header is short enough (at most 107 bytes for version 1, HeaderMax for
// version 2) that looking at it again costs nothing worth a state machine. Parse does not
// allocate unless it fails.
//
// Parse rejects as early as it can: the first byte of a header is 'P' (version 1) or CR
// (version 2), and every later byte of the fixed prefix is checked as soon as it is there, so
// a stranger's bytes from an address that must send a header fail on the byte that first
// differs.
package proxyproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Limits.
const (
	// V1Max is the longest version 1 line, CRLF included, that the specification allows.
	V1Max = 107
	// V2LenMax caps the length field of a version 2 header (the bytes after its first 16).
	// The largest address block is 216 bytes (AF_UNIX); the rest are TLVs, which ptreactor
	// skips unread. HAProxy sends at most a few dozen bytes of them unless told to add
	// certificate details, and 1 KiB leaves room for the longest of the standard ones (a
	// unique ID of up to 128 bytes, an AWS or Azure endpoint ID) with plenty to spare, while
	// bounding what one connection can make the reactor hold before the first obfs4 byte.
	V2LenMax = 1024
	// HeaderMax is the longest header Parse accepts, of either version.
	HeaderMax = v2Fixed + V2LenMax
)

// Errors. All but ErrIncomplete end the connection; they are wrapped with the detail of
// what was wrong, so test them with errors.Is.
var (
	// ErrIncomplete says the bytes so far are a valid start of a header and Parse needs
	// more. It is returned as is, never wrapped.
	ErrIncomplete = errors.New("proxyproto: incomplete header")
	// ErrNoHeader: the input does not start with either version's signature.
	ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")
	// ErrMalformedV1: the version 1 line breaks the grammar.
	ErrMalformedV1 = errors.New("proxyproto: malformed v1 header")
	// ErrMalformedV2: the version 2 block has a bad command, family or address length.
	ErrMalformedV2 = errors.New("proxyproto: malformed v2 header")
	// ErrVersion: a version 2 signature followed by a version other than 2.
	ErrVersion = errors.New("proxyproto: unsupported version")
	// ErrTooLong: a version 1 line without CRLF in its first V1Max bytes, or a version 2
	// length field above V2LenMax.
	ErrTooLong = errors.New("proxyproto: header too long")
)

// Header is what a PROXY protocol header says about the connection.
type Header struct {
	// Version is 1 (text) or 2 (binary).
	Version uint8
	// Local is set for a version 2 LOCAL header: the balancer's own connection (a health
	// check), not a relayed client; the caller uses the socket's endpoints.
	Local bool
	// Unknown is set when a relaying header carries no address the caller can use: version 1
	// UNKNOWN, or version 2 PROXY over anything but TCP on IPv4 or IPv6 (the caller uses the
	// socket's peer).
	Unknown bool
	// Source is the client's address and Destination the address it connected to, both
	// valid exactly when neither Local nor Unknown is set.
	Source, Destination netip.AddrPort
}

// v2Sig is the 12 bytes every version 2 header starts with.
const v2Sig = "\r\n\r\n\x00\r\nQUIT\n"

// v1Prefix starts every version 1 header.
const v1Prefix = "PROXY "

// Parse reads the header at the start of in. On success n is the header's length, and
// in[n:] belongs to whatever follows. If in is a valid start of a header but not a whole one
// it returns ErrIncomplete, and the caller calls again with more bytes appended.
func Parse(in []byte) (n int, h Header, err error) {
	if len(in) == 0 {
		return 0, Header{}, ErrIncomplete
	}
	switch in[0] {
	case v1Prefix[0]:
		return parseV1(in)
	case v2Sig[0]:
		return parseV2(in)
	}
	return 0, Header{}, fmt.Errorf("%w: first byte %#02x", ErrNoHeader, in[0])
}

// hasPrefix checks the bytes of in that are there against prefix, and reports whether all
// of prefix is there.
func hasPrefix(in []byte, prefix string) (whole bool, err error) {
	for i := 0; i < len(prefix) && i < len(in); i++ {
		if in[i] != prefix[i] {
			return false, fmt.Errorf("%w: byte %d is %#02x", ErrNoHeader, i, in[i])
		}
	}
	return len(in) >= len(prefix), nil
}

// parseV1 reads the human-readable header (specification section 2.1):
//
//	"PROXY" SP ( "TCP4" | "TCP6" ) SP src SP dst SP sport SP dport CRLF
//	"PROXY" SP "UNKNOWN" [ anything but CRLF ] CRLF
//
// with single spaces, addresses in the stated family's usual text form, and decimal ports.
func parseV1(in []byte) (int, Header, error) {
	if whole, err := hasPrefix(in, v1Prefix); !whole || err != nil {
		return 0, Header{}, orIncomplete(err)
	}
	end := -1
	for i := len(v1Prefix); i < len(in) && i < V1Max; i++ {
		if in[i] == '\n' {
			end = i
			break
		}
	}
	if end < 0 {
		if len(in) >= V1Max {
			return 0, Header{}, fmt.Errorf("%w: no CRLF in the first %d bytes of a v1 header", ErrTooLong, V1Max)
		}
		return 0, Header{}, ErrIncomplete
	}
	if in[end-1] != '\r' {
		return 0, Header{}, fmt.Errorf("%w: line ends in LF without CR", ErrMalformedV1)
	}
	n := end + 1
	line := in[len(v1Prefix) : end-1]

	proto, rest := cutSpace(line)
	h := Header{Version: 1}
	var family4 bool
	switch string(proto) {
	case "UNKNOWN":
		// The receiver ignores whatever follows UNKNOWN on the line.
		h.Unknown = true
		return n, h, nil
	case "TCP4":
		family4 = true
	case "TCP6":
	default:
		return 0, Header{}, fmt.Errorf("%w: protocol %q", ErrMalformedV1, proto)
	}
	if rest == nil {
		return 0, Header{}, fmt.Errorf("%w: %s without addresses", ErrMalformedV1, proto)
	}
	var fields [4][]byte
	for i := range fields {
		fields[i], rest = cutSpace(rest)
		// An empty field (a double or trailing space) fails as an address or port below.
		if (i < 3) != (rest != nil) {
			return 0, Header{}, fmt.Errorf("%w: want 4 fields after %s", ErrMalformedV1, proto)
		}
	}
	var src, dst netip.Addr
	var ok1, ok2 bool
	if family4 {
		src, ok1 = parseIPv4(fields[0])
		dst, ok2 = parseIPv4(fields[1])
	} else {
		src, ok1 = parseIPv6(fields[0])
		dst, ok2 = parseIPv6(fields[1])
	}
	if !ok1 || !ok2 {
		return 0, Header{}, fmt.Errorf("%w: addresses %q %q are not %s", ErrMalformedV1, fields[0], fields[1], proto)
	}
	sport, ok1 := parsePort(fields[2])
	dport, ok2 := parsePort(fields[3])
	if !ok1 || !ok2 {
		return 0, Header{}, fmt.Errorf("%w: ports %q %q", ErrMalformedV1, fields[2], fields[3])
	}
	h.Source = netip.AddrPortFrom(src, sport)
	h.Destination = netip.AddrPortFrom(dst, dport)
	return n, h, nil
}

// orIncomplete is err, or ErrIncomplete where there is none.
func orIncomplete(err error) error {
	if err != nil {
		return err
	}
	return ErrIncomplete
}

// cutSpace splits b at its first space. rest is nil when there is none, and empty (not nil)
// when the space is the last byte.
func cutSpace(b []byte) (field, rest []byte) {
	for i, c := range b {
		if c == ' ' {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

// parsePort reads a decimal port, 0 to 65535, with no sign and no leading zero (no sender
// writes one, and "080" is not a number a strict reader should guess at).
func parsePort(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v > 0xffff {
		return 0, false
	}
	return uint16(v), true
}

// parseIPv4 reads dotted decimal: four numbers 0 to 255, without leading zeros (the
// specification forbids them, since some readers take them for octal).
func parseIPv4(b []byte) (netip.Addr, bool) {
	var ip [4]byte
	for k := range ip {
		if k > 0 {
			if len(b) == 0 || b[0] != '.' {
				return netip.Addr{}, false
			}
			b = b[1:]
		}
		i, v := 0, 0
		for i < len(b) && i < 4 && '0' <= b[i] && b[i] <= '9' {
			v = v*10 + int(b[i]-'0')
			i++
		}
		if i == 0 || i > 3 || v > 255 || (b[0] == '0' && i > 1) {
			return netip.Addr{}, false
		}
		ip[k] = byte(v)
		b = b[i:]
	}
	if len(b) != 0 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

// parseIPv6 reads the text form of an IPv6 address: eight groups of one to four hex digits,
// one "::" standing for one or more zero groups, and optionally dotted decimal IPv4 for the
// last 32 bits. Zones are not allowed. netip.ParseAddr reads the same language but
// allocates when handed a []byte, which Parse must not on its success path.
func parseIPv6(b []byte) (netip.Addr, bool) {
	var ip [16]byte
	i := 0         // bytes of ip filled
	ellipsis := -1 // where "::" stands, in bytes of ip
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		b = b[2:]
	}
	for len(b) > 0 && i < 16 {
		off, v := 0, 0
		for off < len(b) && off < 5 {
			d := hexDigit(b[off])
			if d < 0 {
				break
			}
			v = v<<4 | d
			off++
		}
		if off < len(b) && b[off] == '.' {
			// Dotted IPv4 as the last 32 bits.
			if i > 12 || (ellipsis < 0 && i != 12) {
				return netip.Addr{}, false
			}
			v4, ok := parseIPv4(b)
			if !ok {
				return netip.Addr{}, false
			}
			a4 := v4.As4()
			copy(ip[i:], a4[:])
			i += 4
			b = nil
			break
		}
		if off == 0 || off > 4 {
			return netip.Addr{}, false
		}
		ip[i], ip[i+1] = byte(v>>8), byte(v)
		i += 2
		b = b[off:]
		if len(b) == 0 {
			break
		}
		if b[0] != ':' || len(b) == 1 {
			return netip.Addr{}, false
		}
		b = b[1:]
		if b[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = i
			b = b[1:]
		}
	}
	if len(b) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		gap := 16 - i
		copy(ip[ellipsis+gap:], ip[ellipsis:i])
		clear(ip[ellipsis : ellipsis+gap])
	} else if ellipsis >= 0 {
		// "::" must stand for at least one group.
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(ip), true
}

func hexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// Version 2 layout (specification section 2.2): the signature, a version and command byte,
// an address family and transport byte, and a big-endian length of what follows.
const (
	v2Fixed = 16

	v2Version  = 0x2
	cmdLocal   = 0x0
	cmdProxy   = 0x1
	famUnspec  = 0x00
	famTCP4    = 0x11
	famUDP4    = 0x12
	famTCP6    = 0x21
	famUDP6    = 0x22
	famUnixTCP = 0x31 // AF_UNIX, SOCK_STREAM
	famUnixUDP = 0x32 // AF_UNIX, SOCK_DGRAM
	addrLenIn  = 12   // two IPv4 addresses and two ports
	addrLenIn6 = 36   // two IPv6 addresses and two ports
	addrLenUx  = 216  // two 108-byte socket paths
)

// parseV2 reads the binary header. LOCAL takes no address and its family byte is ignored, as
// the specification says; PROXY must name one of the defined family and transport pairs,
// and its length must hold that family's address block. Only TCP over IPv4 and IPv6 yields
// an address; the other pairs are skipped whole, like the TLVs after any address block.
func parseV2(in []byte) (int, Header, error) {
	if whole, err := hasPrefix(in, v2Sig); !whole || err != nil {
		return 0, Header{}, orIncomplete(err)
	}
	// Each fixed byte is judged as soon as it is there.
	if len(in) <= 12 {
		return 0, Header{}, ErrIncomplete
	}
	ver, cmd := in[12]>>4, in[12]&0x0f
	if ver != v2Version {
		return 0, Header{}, fmt.Errorf("%w: v2 signature with version %d", ErrVersion, ver)
	}
	if cmd != cmdLocal && cmd != cmdProxy {
		return 0, Header{}, fmt.Errorf("%w: command %#x", ErrMalformedV2, cmd)
	}
	if len(in) <= 13 {
		return 0, Header{}, ErrIncomplete
	}
	fam := in[13]
	need := 0
	if cmd == cmdProxy {
		switch fam {
		case famUnspec:
		case famTCP4, famUDP4:
			need = addrLenIn
		case famTCP6, famUDP6:
			need = addrLenIn6
		case famUnixTCP, famUnixUDP:
			need = addrLenUx
		default:
			return 0, Header{}, fmt.Errorf("%w: family and transport %#02x", ErrMalformedV2, fam)
		}
	}
	if len(in) < v2Fixed {
		return 0, Header{}, ErrIncomplete
	}
	length := int(binary.BigEndian.Uint16(in[14:16]))
	if length > V2LenMax {
		return 0, Header{}, fmt.Errorf("%w: v2 length %d, at most %d accepted", ErrTooLong, length, V2LenMax)
	}
	if length < need {
		return 0, Header{}, fmt.Errorf("%w: length %d below the %d-byte address block of family %#02x", ErrMalformedV2, length, need, fam)
	}
	n := v2Fixed + length
	if len(in) < n {
		return 0, Header{}, ErrIncomplete
	}
	h := Header{Version: 2}
	if cmd == cmdLocal {
		h.Local = true
		return n, h, nil
	}
	block := in[v2Fixed:n]
	switch fam {
	case famTCP4:
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(block[0:4])), binary.BigEndian.Uint16(block[8:10]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(block[4:8])), binary.BigEndian.Uint16(block[10:12]))
	case famTCP6:
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(block[0:16])), binary.BigEndian.Uint16(block[32:34]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom16([16]byte(block[16:32])), binary.BigEndian.Uint16(block[34:36]))
	default:
		h.Unknown = true
	}
	return n, h, nil
}
