package lifecycle

import (
	"fmt"
	"net/netip"
	"strings"
)

// parseCIDRList reads a comma-separated list of address ranges, such as -proxy-protocol's
// "10.0.0.0/8,2001:db8::/32". Each range is masked; a bare address is refused, so that
// "10.0.0.1" is not read as one host by one operator and as a typo by another. "" is no
// ranges (nil).
func parseCIDRList(s string) ([]netip.Prefix, error) {
	if s == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(item))
		if err != nil || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("%q is not an IPv4 or IPv6 address range (CIDR, such as 10.0.0.0/8)", item)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
