package metrics

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	for _, c := range []struct {
		in     string
		public bool
		want   Address
		err    string // a part of the error; "" for none
	}{
		{"127.0.0.1:9100", false, Address{"tcp", "127.0.0.1:9100"}, ""},
		{"127.0.0.2:0", false, Address{"tcp", "127.0.0.2:0"}, ""},
		{"[::1]:9100", false, Address{"tcp", "[::1]:9100"}, ""},
		{"/run/ptreactor/metrics.sock", false, Address{"unix", "/run/ptreactor/metrics.sock"}, ""},
		{"192.0.2.1:9100", false, Address{}, "not a loopback address"},
		{"0.0.0.0:9100", false, Address{}, "-metrics-public"},
		{"[::]:9100", false, Address{}, "not a loopback address"},
		{"192.0.2.1:9100", true, Address{"tcp", "192.0.2.1:9100"}, ""},
		{"[2001:db8::1]:9100", true, Address{"tcp", "[2001:db8::1]:9100"}, ""},
		{"[::ffff:127.0.0.1]:9100", false, Address{}, "IPv4-mapped"},
		{"[fe80::1%lo]:9100", true, Address{}, "zone"},
		{"localhost:9100", false, Address{}, "neither IP:port"},
		{"127.0.0.1", false, Address{}, "neither IP:port"},
		{"127.0.0.1:65536", false, Address{}, "neither IP:port"},
		{":9100", false, Address{}, "neither IP:port"},
		{"metrics.sock", false, Address{}, "absolute"},
		{"/run/../metrics.sock", false, Address{}, "clean"},
		{"/run/ptreactor/", false, Address{}, "clean"},
		{"/" + strings.Repeat("x", 103), false, Address{}, "longer than"},
		{"", false, Address{}, "empty"},
	} {
		got, err := ParseAddress(c.in, c.public)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want one saying %q", c.in, err, c.err)
		case got != c.want:
			t.Errorf("%q: %+v, want %+v", c.in, got, c.want)
		}
	}
}

// FuzzParseAddress: any flag value is either refused or gives an address that parses back
// to itself, and a TCP address that is not loopback only with public.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9100", "[::1]:0", "/run/m.sock", "192.0.2.1:1", "[fe80::1%eth0]:1", "/a/../b"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, public bool) {
		a, err := ParseAddress(s, public)
		if err != nil {
			return
		}
		b, err := ParseAddress(a.Addr, public)
		if err != nil || b != a {
			t.Fatalf("%q gave %+v, which parses as %+v, %v", s, a, b, err)
		}
		if a.Network == "tcp" && !public && !netip.MustParseAddrPort(a.Addr).Addr().IsLoopback() {
			t.Fatalf("%q: %s accepted without public", s, a.Addr)
		}
	})
}
