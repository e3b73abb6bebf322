package gnetenv_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/ptreactor/ptreactor/lifecycle/internal/gnetenv"

	// Linked in so that its init, which panics on a bad GNET_LOGGING_LEVEL, runs in this
	// test binary in the same order as in ptreactor.
	_ "github.com/panjf2000/gnet/v2/pkg/logging"
)

// TestBeforeGnetInit runs this test binary again with values gnet's init would panic on.
// If gnetenv's init did not run first, the child dies in gnet's init before any test.
func TestBeforeGnetInit(t *testing.T) {
	if os.Getenv("GNETENV_CHILD") == "1" {
		if os.Getenv("GNET_LOGGING_LEVEL") != "" || os.Getenv("GNET_LOGGING_FILE") != "" {
			t.Fatal("gnet variables still set")
		}
		if len(gnetenv.Removed) != 2 {
			t.Fatalf("Removed = %q", gnetenv.Removed)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBeforeGnetInit$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GNETENV_CHILD=1",
		"GNET_LOGGING_LEVEL=not-a-number", "GNET_LOGGING_FILE=/nonexistent/dir/gnet.log")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
}
