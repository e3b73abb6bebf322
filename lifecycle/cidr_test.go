package lifecycle

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseCIDRList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []netip.Prefix
		err  string
	}{
		{"", nil, ""},
		{"127.0.0.1/32", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, ""},
		{"10.1.2.3/8, fd00::1/64", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/64")}, ""},
		{"10.0.0.1", nil, `"10.0.0.1" is not`},
		{"10.0.0.0/33", nil, `"10.0.0.0/33" is not`},
		{"::ffff:10.0.0.0/104", nil, "is not"},
		{"fe80::1%eth0/64", nil, "is not"},
		{"10.0.0.0/8,", nil, `"" is not`},
		{"lb.example/32", nil, "is not"},
	} {
		got, err := parseCIDRList(c.in)
		switch {
		case c.err == "" && (err != nil || !reflect.DeepEqual(got, c.want)):
			t.Errorf("parseCIDRList(%q) = %v, %v; want %v", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("parseCIDRList(%q) error %v, want one containing %q", c.in, err, c.err)
		}
	}
}
