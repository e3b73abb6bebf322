package reactor

import (
	"net/netip"
	"net/url"
	"testing"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/obfs4"
	"github.com/ptreactor/ptreactor/codec/plain"
	"github.com/ptreactor/ptreactor/codec/upstream"
)

// testTransports are the transports the reactor's tests serve, as lifecycle hands them in.
func testTransports() map[string]codec.Transport {
	return map[string]codec.Transport{plain.Name: plain.Transport{}, obfs4.Name: obfs4.Transport{}}
}

// addrPort reads an "IP:port" of a test stand-in; "" is the invalid AddrPort (unset).
func addrPort(t testing.TB, s string) netip.AddrPort {
	t.Helper()
	if s == "" {
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// proxyOf is the typed proxy of a stand-in proxy's URL.
func proxyOf(t testing.TB, u *url.URL) *upstream.Proxy {
	t.Helper()
	p := &upstream.Proxy{Scheme: u.Scheme, Addr: addrPort(t, u.Host)}
	if u.User != nil {
		p.User = u.User.Username()
		p.Pass, _ = u.User.Password()
	}
	return p
}
