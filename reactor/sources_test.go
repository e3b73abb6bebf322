package reactor

import (
	"net/netip"
	"strings"
	"testing"
)

// TestNewChecksSourceRange: a source range the system cannot send from fails New with the
// address and the reason; 127.0.0.0/8 (all local on Linux) passes.
func TestNewChecksSourceRange(t *testing.T) {
	foreign := netip.MustParsePrefix("192.0.2.0/24") // TEST-NET-1, on no interface
	or := netip.MustParseAddrPort("127.0.0.1:9001")
	_, err := New(Config{ORPort: or, ORSource: foreign})
	if err == nil || !strings.Contains(err.Error(), "192.0.2.1") || !strings.Contains(err.Error(), "not usable") {
		t.Fatalf("New with a foreign source range: %v", err)
	}
	e, err := New(Config{ORPort: or, ORSource: netip.MustParsePrefix("127.0.0.0/8")})
	if err != nil {
		t.Fatalf("New with 127.0.0.0/8: %v", err)
	}
	e.Close()
}
