package bench

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the reference forwarder when re-executed.
func TestMain(m *testing.M) {
	RunRefPTIfAsked()
	os.Exit(m.Run())
}

func selfBinary(t testing.TB) string {
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
