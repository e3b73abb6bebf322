package metrics

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// Address is where the metrics endpoint listens: a TCP address or a unix socket path.
type Address struct {
	Network string // "tcp" or "unix"
	Addr    string // IP:port, or the socket's absolute path
}

func (a Address) String() string { return a.Addr }

// maxSocketPath is the longest unix socket path Linux and the BSDs take (sun_path, less
// its terminating NUL).
const maxSocketPath = 103

// ParseAddress reads the -metrics value: an IP literal and port ("127.0.0.1:9100",
// "[::1]:9100"; port 0 lets the kernel choose, and the bound address is logged) or the
// absolute path of a unix socket. The endpoint says how busy the bridge is and carries no
// authentication, so a TCP address that is not loopback is refused unless public is set
// (-metrics-public).
func ParseAddress(s string, public bool) (Address, error) {
	switch {
	case s == "":
		return Address{}, errors.New("empty address")
	case strings.HasPrefix(s, "/"):
		if len(s) > maxSocketPath {
			return Address{}, fmt.Errorf("unix socket path %q is longer than %d bytes", s, maxSocketPath)
		}
		if strings.ContainsRune(s, 0) || filepath.Clean(s) != s || strings.HasSuffix(s, "/") {
			return Address{}, fmt.Errorf("unix socket path %q is not a clean absolute path", s)
		}
		return Address{Network: "unix", Addr: s}, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return Address{}, fmt.Errorf("%q is neither IP:port nor an absolute unix socket path", s)
	}
	ip := ap.Addr()
	if ip.Zone() != "" {
		return Address{}, fmt.Errorf("%q: an address with a zone is not supported", s)
	}
	if ip.Is4In6() {
		return Address{}, fmt.Errorf("%q: write an IPv4 address as such, not IPv4-mapped", s)
	}
	if !ip.IsLoopback() && !public {
		return Address{}, fmt.Errorf("%s is not a loopback address: the metrics are unauthenticated; add -metrics-public to serve them there anyway", s)
	}
	return Address{Network: "tcp", Addr: ap.String()}, nil
}
