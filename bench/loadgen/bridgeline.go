package loadgen

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/obfs4"
)

// ErrBridgeLine is wrapped by every error ParseBridgeLine returns.
var ErrBridgeLine = errors.New("malformed bridge line")

// fingerprintLength is a relay identity fingerprint in hex: SHA-1, 20 bytes.
const fingerprintLength = 40

// Bridge is what a bridge line says about one obfs4 bridge.
type Bridge struct {
	Addr netip.AddrPort
	// Fingerprint is the bridge's relay identity (40 hex digits, upper case), or "" when the
	// line gives none. obfs4 does not use it; it names the bridge in the report.
	Fingerprint string
	// Args are the transport arguments (cert=, iat-mode=, ...), already accepted by the obfs4
	// client codec.
	Args codec.Args
}

// ParseBridgeLine reads a bridge line as tor's Bridge option takes it, with or without the
// leading "Bridge" keyword:
//
//	obfs4 ADDR:PORT [FINGERPRINT] key=value ...
//
// ADDR is an IP literal (IPv6 in brackets), as tor requires; the arguments are whatever the
// obfs4 client accepts (cert= or node-id= with public-key=, iat-mode=), each key once. The
// error, which wraps ErrBridgeLine, names the first thing wrong.
func ParseBridgeLine(line string) (*Bridge, error) {
	f := strings.Fields(line)
	if len(f) > 0 && f[0] == "Bridge" {
		f = f[1:]
	}
	if len(f) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBridgeLine)
	}
	if f[0] != obfs4.Name {
		return nil, fmt.Errorf("%w: transport %q: ptbench load speaks obfs4 only", ErrBridgeLine, f[0])
	}
	if len(f) < 2 {
		return nil, fmt.Errorf("%w: no address after %q", ErrBridgeLine, obfs4.Name)
	}
	addr, err := netip.ParseAddrPort(f[1])
	if err != nil || addr.Port() == 0 {
		return nil, fmt.Errorf("%w: address %q is not IP:PORT (an IP literal, IPv6 in brackets, and a port from 1 to 65535)", ErrBridgeLine, f[1])
	}
	b := &Bridge{Addr: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()), Args: codec.Args{}}
	rest := f[2:]
	if len(rest) > 0 && !strings.Contains(rest[0], "=") {
		fp, err := parseFingerprint(rest[0])
		if err != nil {
			return nil, err
		}
		b.Fingerprint = fp
		rest = rest[1:]
	}
	for _, kv := range rest {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %q is not key=value", ErrBridgeLine, kv)
		}
		if _, dup := b.Args[k]; dup {
			return nil, fmt.Errorf("%w: %s= given twice", ErrBridgeLine, k)
		}
		b.Args.Add(k, v)
	}
	// The codec is the one judge of its arguments: what it accepts here, every tunnel gets.
	if _, err := (obfs4.Transport{}).Client(b.Args); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBridgeLine, err)
	}
	return b, nil
}

// parseFingerprint accepts 40 hex digits, optionally after a "$" as tor writes them.
func parseFingerprint(s string) (string, error) {
	fp := strings.TrimPrefix(s, "$")
	if len(fp) != fingerprintLength {
		return "", fmt.Errorf("%w: %q is neither a fingerprint (40 hex digits) nor key=value", ErrBridgeLine, s)
	}
	for i := 0; i < len(fp); i++ {
		if !isHex(fp[i]) {
			return "", fmt.Errorf("%w: fingerprint %q is not hex", ErrBridgeLine, s)
		}
	}
	return strings.ToUpper(fp), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// String writes the bridge line back, arguments in sorted order.
func (b *Bridge) String() string {
	var s strings.Builder
	s.WriteString(obfs4.Name + " " + b.Addr.String())
	if b.Fingerprint != "" {
		s.WriteString(" " + b.Fingerprint)
	}
	for _, k := range b.Args.Keys() {
		for _, v := range b.Args[k] {
			s.WriteString(" " + k + "=" + v)
		}
	}
	return s.String()
}
