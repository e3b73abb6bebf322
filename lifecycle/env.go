package lifecycle

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/upstream"
)

// ptEnv is what tor told ptreactor through the TOR_PT_* environment, parsed and validated.
type ptEnv struct {
	StateDir         string
	ExitOnStdinClose bool
	Server           bool     // server (bridge) mode; client mode otherwise
	Transports       []string // requested transport names, in tor's order, without repeats

	// Client mode.
	Proxy    *upstream.Proxy // nil without TOR_PT_PROXY
	ProxyErr error           // TOR_PT_PROXY was set but is unusable: PROXY-ERROR after VERSION

	OutboundBindV4 netip.Addr // invalid when unset
	OutboundBindV6 netip.Addr

	// Server mode.
	BindAddr       map[string]string     // transport -> ip:port; absent: 0.0.0.0:0
	Options        map[string]codec.Args // TOR_PT_SERVER_TRANSPORT_OPTIONS by transport
	ORPort         netip.AddrPort        // invalid when unset
	ExtORPort      netip.AddrPort
	AuthCookieFile string

	// Warnings are problems worth a LOG line that do not stop the start.
	Warnings []string
}

// envError is an ENV-ERROR: the environment is unusable and the process must exit.
type envError struct{ msg string }

func (e *envError) Error() string { return e.msg }

func envErrorf(format string, a ...any) error { return &envError{fmt.Sprintf(format, a...)} }

// versionError is a VERSION-ERROR: tor offers no protocol version we speak.
type versionError struct{}

func (versionError) Error() string { return "no-version" }

// lookupFunc reads one environment variable (os.LookupEnv in the binary).
type lookupFunc func(string) (string, bool)

// parseEnv reads and validates the managed-proxy environment. The error is an ENV-ERROR or
// VERSION-ERROR to report before exiting; an unusable TOR_PT_PROXY is not an error here but
// lands in ptEnv.ProxyErr, because tor wants PROXY-ERROR after VERSION.
func parseEnv(lookup lookupFunc) (*ptEnv, error) {
	get := func(k string) string { v, _ := lookup(k); return v }
	e := &ptEnv{}

	ver := get("TOR_PT_MANAGED_TRANSPORT_VER")
	if ver == "" {
		return nil, envErrorf("no TOR_PT_MANAGED_TRANSPORT_VER environment variable")
	}
	found := false
	for _, v := range strings.Split(ver, ",") {
		if v == "1" {
			found = true
		}
	}
	if !found {
		return nil, versionError{}
	}

	e.StateDir = get("TOR_PT_STATE_LOCATION")
	if e.StateDir == "" {
		return nil, envErrorf("no TOR_PT_STATE_LOCATION environment variable")
	}

	switch v := get("TOR_PT_EXIT_ON_STDIN_CLOSE"); v {
	case "1":
		e.ExitOnStdinClose = true
	case "", "0":
	default:
		e.Warnings = append(e.Warnings, fmt.Sprintf("TOR_PT_EXIT_ON_STDIN_CLOSE=%+q is not \"1\": a closed stdin will not end ptreactor", v))
	}

	var err error
	if e.OutboundBindV4, err = parseBindIP("TOR_PT_OUTBOUND_BIND_ADDRESS_V4", get("TOR_PT_OUTBOUND_BIND_ADDRESS_V4"), false); err != nil {
		return nil, err
	}
	if e.OutboundBindV6, err = parseBindIP("TOR_PT_OUTBOUND_BIND_ADDRESS_V6", get("TOR_PT_OUTBOUND_BIND_ADDRESS_V6"), true); err != nil {
		return nil, err
	}

	client, server := get("TOR_PT_CLIENT_TRANSPORTS"), get("TOR_PT_SERVER_TRANSPORTS")
	switch {
	case client != "" && server != "":
		return nil, envErrorf("TOR_PT_[CLIENT,SERVER]_TRANSPORTS both set")
	case client == "" && server == "":
		return nil, envErrorf("no TOR_PT_CLIENT_TRANSPORTS or TOR_PT_SERVER_TRANSPORTS environment variable")
	case client != "":
		if e.Transports, err = parseTransportList("TOR_PT_CLIENT_TRANSPORTS", client); err != nil {
			return nil, err
		}
		if raw, ok := lookup("TOR_PT_PROXY"); ok && raw != "" {
			e.Proxy, e.ProxyErr = parseProxyURI(raw)
		}
		return e, nil
	}

	e.Server = true
	if e.Transports, err = parseTransportList("TOR_PT_SERVER_TRANSPORTS", server); err != nil {
		return nil, err
	}
	if e.BindAddr, err = parseBindAddr(get("TOR_PT_SERVER_BINDADDR")); err != nil {
		return nil, err
	}
	raw := get("TOR_PT_SERVER_TRANSPORT_OPTIONS")
	if e.Options, err = parseTransportOptions(raw); err != nil {
		return nil, envErrorf("TOR_PT_SERVER_TRANSPORT_OPTIONS: %+q: %v", raw, err)
	}

	if v := get("TOR_PT_ORPORT"); v != "" {
		if e.ORPort, err = parseHostPort(v, false); err != nil {
			return nil, envErrorf("cannot resolve TOR_PT_ORPORT %+q: %v", v, err)
		}
	}
	if v := get("TOR_PT_EXTENDED_SERVER_PORT"); v != "" {
		if e.ExtORPort, err = parseHostPort(v, false); err != nil {
			return nil, envErrorf("cannot resolve TOR_PT_EXTENDED_SERVER_PORT %+q: %v", v, err)
		}
		e.AuthCookieFile = get("TOR_PT_AUTH_COOKIE_FILE")
		if e.AuthCookieFile == "" {
			return nil, envErrorf("need TOR_PT_AUTH_COOKIE_FILE environment variable with TOR_PT_EXTENDED_SERVER_PORT")
		}
	}
	// Where tor is, is checked by run, since -orport-pool can stand for both variables.
	return e, nil
}

// parseTransportList splits a TOR_PT_*_TRANSPORTS value. Every name must be a C identifier
// (pt-spec 3.1); a repeated name is launched once.
func parseTransportList(key, v string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for _, name := range strings.Split(v, ",") {
		if !validName(name) {
			return nil, envErrorf("%s: %+q: %+q is not a valid transport name", key, v, name)
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names, nil
}

// validName reports whether name matches [a-zA-Z_][a-zA-Z0-9_]*.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// parseBindAddr parses TOR_PT_SERVER_BINDADDR, a comma list of <name>-<ip>:<port> split at
// the first '-'. Unset or empty is allowed (pt-spec: MAY be omitted); transports without an
// entry then bind 0.0.0.0:0.
func parseBindAddr(v string) (map[string]string, error) {
	m := map[string]string{}
	if v == "" {
		return m, nil
	}
	for _, item := range strings.Split(v, ",") {
		name, addr, ok := strings.Cut(item, "-")
		if !ok {
			return nil, envErrorf("TOR_PT_SERVER_BINDADDR: %+q: doesn't contain \"-\"", item)
		}
		if _, dup := m[name]; dup {
			return nil, envErrorf("TOR_PT_SERVER_BINDADDR: %+q: duplicate method name %+q", item, name)
		}
		if !validName(name) {
			return nil, envErrorf("TOR_PT_SERVER_BINDADDR: %+q: %+q is not a valid transport name", item, name)
		}
		ap, err := parseHostPort(addr, true)
		if err != nil {
			return nil, envErrorf("TOR_PT_SERVER_BINDADDR: %+q: %v", item, err)
		}
		m[name] = ap.String()
	}
	return m, nil
}

// parseHostPort reads an IP literal and a decimal port ("1.2.3.4:5", "[::1]:5"; an
// IPv4-mapped IPv6 address becomes IPv4). With lenientV6, an unbracketed IPv6 address
// is split at its last colon, which goptlib accepts for the old tor bug #7011.
func parseHostPort(s string, lenientV6 bool) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil && lenientV6 {
		if i := strings.LastIndexByte(s, ':'); i > 0 && !strings.Contains(s, "[") {
			host, port, err = s[:i], s[i+1:], nil
		}
	}
	if err != nil {
		return netip.AddrPort{}, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%+q is not an IP address", host)
	}
	p, err := parsePort(port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ip.Unmap(), p), nil
}

// parsePort accepts a decimal port 0..65535 with no sign and no leading spaces.
func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("bad port %+q", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("bad port %+q", s)
	}
	return uint16(n), nil
}

// parseBindIP parses TOR_PT_OUTBOUND_BIND_ADDRESS_V4/_V6. The V6 form comes in brackets
// (pt-spec 3.2.1); a bare IPv6 address is accepted too. Unset or empty means none.
func parseBindIP(key, v string, v6 bool) (netip.Addr, error) {
	if v == "" {
		return netip.Addr{}, nil
	}
	s := v
	if v6 && strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" || (v6 && !ip.Is6()) || (!v6 && !ip.Is4()) || ip.Is4In6() {
		want := "an IPv4 address"
		if v6 {
			want = "an IPv6 address"
		}
		return netip.Addr{}, envErrorf("%s: %+q is not %s", key, v, want)
	}
	return ip, nil
}
