package reactor

import (
	"net"
	"strings"
	"testing"
)

// TestNewChecksSourceRange: a source range the system cannot send from fails New with the
// address and the reason; 127.0.0.0/8 (all local on Linux) passes.
func TestNewChecksSourceRange(t *testing.T) {
	_, foreign, _ := net.ParseCIDR("192.0.2.0/24") // TEST-NET-1, on no interface
	_, err := New(Config{ORPort: "127.0.0.1:9001", ORSource: foreign})
	if err == nil || !strings.Contains(err.Error(), "192.0.2.1") || !strings.Contains(err.Error(), "not usable") {
		t.Fatalf("New with a foreign source range: %v", err)
	}
	_, loop, _ := net.ParseCIDR("127.0.0.0/8")
	e, err := New(Config{ORPort: "127.0.0.1:9001", ORSource: loop})
	if err != nil {
		t.Fatalf("New with 127.0.0.0/8: %v", err)
	}
	e.Close()
}
