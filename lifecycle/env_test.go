package lifecycle

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func lookupMap(kv ...string) lookupFunc {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var (
	baseClient = []string{"TOR_PT_MANAGED_TRANSPORT_VER=1", "TOR_PT_STATE_LOCATION=/tmp/s/", "TOR_PT_CLIENT_TRANSPORTS=plain"}
	baseServer = []string{"TOR_PT_MANAGED_TRANSPORT_VER=1", "TOR_PT_STATE_LOCATION=/tmp/s/", "TOR_PT_SERVER_TRANSPORTS=plain", "TOR_PT_ORPORT=127.0.0.1:9001"}
)

func with(base []string, kv ...string) []string { return append(append([]string{}, base...), kv...) }

func TestParseEnvErrors(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want string // ENV-ERROR text; "no-version" for VERSION-ERROR
	}{
		{nil, "no TOR_PT_MANAGED_TRANSPORT_VER environment variable"},
		{[]string{"TOR_PT_MANAGED_TRANSPORT_VER=2"}, "no-version"},
		{[]string{"TOR_PT_MANAGED_TRANSPORT_VER=1a,2b"}, "no-version"},
		{[]string{"TOR_PT_MANAGED_TRANSPORT_VER= 1"}, "no-version"},
		{[]string{"TOR_PT_MANAGED_TRANSPORT_VER=1"}, "no TOR_PT_STATE_LOCATION environment variable"},
		{[]string{"TOR_PT_MANAGED_TRANSPORT_VER=1", "TOR_PT_STATE_LOCATION=/tmp/s"}, "no TOR_PT_CLIENT_TRANSPORTS or TOR_PT_SERVER_TRANSPORTS environment variable"},
		{with(baseClient, "TOR_PT_SERVER_TRANSPORTS=plain"), "TOR_PT_[CLIENT,SERVER]_TRANSPORTS both set"},
		{with(baseClient, "TOR_PT_CLIENT_TRANSPORTS=plain,,obfs4"), `TOR_PT_CLIENT_TRANSPORTS: "plain,,obfs4": "" is not a valid transport name`},
		{with(baseClient, "TOR_PT_CLIENT_TRANSPORTS=9lives"), `TOR_PT_CLIENT_TRANSPORTS: "9lives": "9lives" is not a valid transport name`},
		{with(baseClient, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4=::1"), `TOR_PT_OUTBOUND_BIND_ADDRESS_V4: "::1" is not an IPv4 address`},
		{with(baseClient, "TOR_PT_OUTBOUND_BIND_ADDRESS_V6=203.0.113.4"), `TOR_PT_OUTBOUND_BIND_ADDRESS_V6: "203.0.113.4" is not an IPv6 address`},
		{with(baseClient, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4=example.com"), `TOR_PT_OUTBOUND_BIND_ADDRESS_V4: "example.com" is not an IPv4 address`},
		{with(baseServer, "TOR_PT_SERVER_BINDADDR=plain127.0.0.1:1"), `TOR_PT_SERVER_BINDADDR: "plain127.0.0.1:1": doesn't contain "-"`},
		{with(baseServer, "TOR_PT_SERVER_BINDADDR=plain-127.0.0.1:1,plain-127.0.0.1:2"), `TOR_PT_SERVER_BINDADDR: "plain-127.0.0.1:2": duplicate method name "plain"`},
		{with(baseServer, "TOR_PT_SERVER_BINDADDR=plain-localhost:1"), `TOR_PT_SERVER_BINDADDR: "plain-localhost:1": "localhost" is not an IP address`},
		{with(baseServer, "TOR_PT_SERVER_BINDADDR=plain-127.0.0.1:65536"), `TOR_PT_SERVER_BINDADDR: "plain-127.0.0.1:65536": bad port "65536"`},
		{with(baseServer, "TOR_PT_SERVER_BINDADDR=plain-127.0.0.1"), `TOR_PT_SERVER_BINDADDR: "plain-127.0.0.1": address 127.0.0.1: missing port in address`},
		{with(baseServer, "TOR_PT_SERVER_TRANSPORT_OPTIONS=plain:k=v;"), `TOR_PT_SERVER_TRANSPORT_OPTIONS: "plain:k=v;": empty option`},
		{with(baseServer, `TOR_PT_SERVER_TRANSPORT_OPTIONS=plain:k=v\`), `TOR_PT_SERVER_TRANSPORT_OPTIONS: "plain:k=v\\": backslash at end of string`},
		{with(baseServer, "TOR_PT_ORPORT=localhost:9001"), `cannot resolve TOR_PT_ORPORT "localhost:9001": "localhost" is not an IP address`},
		{with(baseServer, "TOR_PT_EXTENDED_SERVER_PORT=127.0.0.1:x"), `cannot resolve TOR_PT_EXTENDED_SERVER_PORT "127.0.0.1:x": bad port "x"`},
		{with(baseServer, "TOR_PT_EXTENDED_SERVER_PORT=127.0.0.1:4200"), "need TOR_PT_AUTH_COOKIE_FILE environment variable with TOR_PT_EXTENDED_SERVER_PORT"},
	} {
		_, err := parseEnv(lookupMap(c.env...))
		var got string
		var ee *envError
		switch {
		case err == nil:
			got = "<nil>"
		case errors.As(err, &ee):
			got = ee.msg
		case errors.Is(err, versionError{}):
			got = "no-version"
		default:
			got = "other: " + err.Error()
		}
		if got != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.env, got, c.want)
		}
	}
}

func TestParseEnvClient(t *testing.T) {
	e, err := parseEnv(lookupMap(with(baseClient,
		"TOR_PT_MANAGED_TRANSPORT_VER=2,1,1a",
		"TOR_PT_CLIENT_TRANSPORTS=obfs4,plain,obfs4",
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
		"TOR_PT_PROXY=socks5://tor:test1234@198.51.100.1:8000",
		"TOR_PT_OUTBOUND_BIND_ADDRESS_V4=203.0.113.4",
		"TOR_PT_OUTBOUND_BIND_ADDRESS_V6=[2001:db8::4]",
	)...))
	if err != nil {
		t.Fatal(err)
	}
	if e.Server || !e.ExitOnStdinClose || !reflect.DeepEqual(e.Transports, []string{"obfs4", "plain"}) {
		t.Errorf("env = %+v", e)
	}
	if e.Proxy == nil || e.ProxyErr != nil || e.Proxy.Addr.String() != "198.51.100.1:8000" {
		t.Errorf("proxy = %v, %v", e.Proxy, e.ProxyErr)
	}
	if e.OutboundBindV4 != netip.MustParseAddr("203.0.113.4") || e.OutboundBindV6 != netip.MustParseAddr("2001:db8::4") {
		t.Errorf("bind = %v %v", e.OutboundBindV4, e.OutboundBindV6)
	}
	// A bad TOR_PT_PROXY is not an ENV-ERROR: it becomes PROXY-ERROR after VERSION.
	e, err = parseEnv(lookupMap(with(baseClient, "TOR_PT_PROXY=ftp://127.0.0.1:21")...))
	if err != nil || e.ProxyErr == nil {
		t.Errorf("bad proxy: %v, %+v", err, e)
	}
	for _, v := range []string{"", "0", "yes"} {
		e, err = parseEnv(lookupMap(with(baseClient, "TOR_PT_EXIT_ON_STDIN_CLOSE="+v)...))
		if err != nil || e.ExitOnStdinClose {
			t.Errorf("TOR_PT_EXIT_ON_STDIN_CLOSE=%q: %v %+v", v, err, e)
		}
	}
}

func TestParseEnvServer(t *testing.T) {
	e, err := parseEnv(lookupMap(with(baseServer,
		"TOR_PT_SERVER_TRANSPORTS=obfs4,plain,other",
		"TOR_PT_SERVER_BINDADDR=obfs4-0.0.0.0:0,plain-[::1]:4891,other-::1:77",
		`TOR_PT_SERVER_TRANSPORT_OPTIONS=obfs4:iat-mode=1;plain:x\:y=a=b\;c`,
		"TOR_PT_ORPORT=127.0.0.1:9001",
		"TOR_PT_EXTENDED_SERVER_PORT=[::1]:4200",
		"TOR_PT_AUTH_COOKIE_FILE=/tmp/cookie",
	)...))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"obfs4": "0.0.0.0:0", "plain": "[::1]:4891", "other": "[::1]:77"}
	if !e.Server || !reflect.DeepEqual(e.BindAddr, want) {
		t.Errorf("bindaddr = %v", e.BindAddr)
	}
	if got := e.Options["plain"]["x:y"]; !reflect.DeepEqual(got, []string{"a=b;c"}) {
		t.Errorf("options = %v", e.Options)
	}
	if e.ORPort.String() != "127.0.0.1:9001" || e.ExtORPort.String() != "[::1]:4200" || e.AuthCookieFile != "/tmp/cookie" {
		t.Errorf("ports = %q %q %q", e.ORPort, e.ExtORPort, e.AuthCookieFile)
	}
	// BINDADDR may be omitted (pt-spec 3.2.3); tor sends an empty ExtORPort on purpose.
	e, err = parseEnv(lookupMap(with(baseServer, "TOR_PT_EXTENDED_SERVER_PORT=")...))
	if err != nil || len(e.BindAddr) != 0 || e.ExtORPort.IsValid() {
		t.Errorf("minimal server env: %v %+v", err, e)
	}
}

func TestParseProxyURI(t *testing.T) {
	for _, c := range []struct {
		in, host, user, pass string
	}{
		{in: "socks5://127.0.0.1:8001", host: "127.0.0.1:8001"},
		{in: "socks5://tor:test1234@198.51.100.1:8000", host: "198.51.100.1:8000", user: "tor", pass: "test1234"},
		{in: "socks4a://198.51.100.2:8001", host: "198.51.100.2:8001"},
		{in: "socks4a://someid@198.51.100.2:8001", host: "198.51.100.2:8001", user: "someid"},
		{in: "http://198.51.100.3:443", host: "198.51.100.3:443"},
		{in: "http://user:pass@198.51.100.3:443", host: "198.51.100.3:443", user: "user", pass: "pass"},
		{in: "socks5://[2001:db8::1]:1080", host: "[2001:db8::1]:1080"},
		// tor does not percent-encode: '@' and ':' may sit in the password, '%' anywhere.
		{in: "socks5://u%41:p:a@ss@127.0.0.1:1", host: "127.0.0.1:1", user: "u%41", pass: "p:a@ss"},
		{in: "SOCKS5://127.0.0.1:1", host: "127.0.0.1:1"},
	} {
		u, err := parseProxyURI(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if u.Addr.String() != c.host {
			t.Errorf("%q: host %v", c.in, u.Addr)
		}
		if u.User != c.user || u.Pass != c.pass {
			t.Errorf("%q: user %q pass %q", c.in, u.User, u.Pass)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"ftp://127.0.0.1:21", "proxy URI has invalid scheme: ftp"},
		{"socks4://127.0.0.1:1080", "proxy URI has invalid scheme: socks4"},
		{"127.0.0.1:1080", "proxy URI is not an absolute URI"},
		{"socks5://127.0.0.1:1080/", "proxy URI has a path, query or fragment"},
		{"socks5://127.0.0.1:1080?x", "proxy URI has a path, query or fragment"},
		{"socks5://127.0.0.1:1080#x", "proxy URI has a path, query or fragment"},
		{"socks5://localhost:1080", `proxy URI has an invalid host: "localhost" is not an IP address`},
		{"socks5://127.0.0.1", "proxy URI has an invalid host: address 127.0.0.1: missing port in address"},
		{"socks5://127.0.0.1:0", "proxy URI has port 0"},
		{"socks5://2001:db8::1:1080", "proxy URI has an invalid host: address 2001:db8::1:1080: too many colons in address"},
		{"socks5://:p@127.0.0.1:1", "proxy URI specified a invalid SOCKS5 username"},
		{"socks5://u@127.0.0.1:1", "proxy URI specified a invalid SOCKS5 password"},
		{"socks5://" + strings.Repeat("u", 256) + ":p@127.0.0.1:1", "proxy URI specified a invalid SOCKS5 username"},
		{"socks5://u:" + strings.Repeat("p", 256) + "@127.0.0.1:1", "proxy URI specified a invalid SOCKS5 password"},
		{"socks4a://u:p@127.0.0.1:1", "proxy URI specified SOCKS4a and a password"},
		{"socks5://127.0.0.1:1\n", "proxy URI contains a control or non-ASCII byte"},
	} {
		u, err := parseProxyURI(c.in)
		if err == nil {
			t.Errorf("%q: no error, got %v", c.in, u)
		} else if err.Error() != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.in, err, c.want)
		}
	}
}

func TestScrubAddrs(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"from 1.2.3.4", "from [scrubbed]"},
		{"from 1.2.3.4:5678.", "from [scrubbed]."},
		{"dial tcp 198.51.100.7:443: connection refused", "dial tcp [scrubbed]: connection refused"},
		{"addr=[2001:db8::1]:443 x", "addr=[scrubbed] x"},
		{"peer 2001:db8::1 gone", "peer [scrubbed] gone"},
		{"peer ::1, fe80::1%eth0", "peer [scrubbed], [scrubbed]%eth0"},
		{"remote=\"10.0.0.1:9\"", "remote=\"[scrubbed]\""},
		{"addr:1.2.3.4", "addr:[scrubbed]"},
		{"at 22:20:01.123 took 1.5s, id deadbeef, Foo::Bar", "at 22:20:01.123 took 1.5s, id deadbeef, Foo::Bar"},
		{"no address here", "no address here"},
		{"v1.2.3.4x", "v1.2.3.4x"},
	} {
		if got := scrubAddrs(c.in); got != c.want {
			t.Errorf("scrubAddrs(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}
