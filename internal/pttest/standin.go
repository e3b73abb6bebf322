package pttest

// The stand-ins for the tor a bridge-side transport connects to live in internal/harness;
// these tie them to a test: they fail the test when they cannot start and stop when it ends.

import (
	"net"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
)

// Serve starts a harness.StandIn on 127.0.0.1:0 that hands every connection to serve (and
// closes it when serve returns); it is closed, and its handlers waited for, when the test ends.
func Serve(t testing.TB, serve func(net.Conn)) *harness.StandIn {
	t.Helper()
	s, err := harness.ServeStandIn("", serve)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartORPort starts a plain ORPort stand-in (handler nil: harness.Echo) for the test.
func StartORPort(t testing.TB, handler func(net.Conn)) *harness.ORPort {
	t.Helper()
	o, err := harness.StartORPort(handler)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	return o
}

// ExtORPort is an Extended ORPort stand-in tied to a test.
type ExtORPort struct {
	*harness.ExtORPort
}

// StartExtORPort starts an Extended ORPort stand-in for the test, its cookie file in a
// temporary directory.
func StartExtORPort(t testing.TB, opts harness.ExtOROptions) *ExtORPort {
	t.Helper()
	e, err := harness.StartExtORPort(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return &ExtORPort{e}
}

// WaitSessions waits up to timeout for n sessions to be recorded and returns them; it fails
// the test if they do not come.
func (e *ExtORPort) WaitSessions(t testing.TB, n int, timeout time.Duration) []harness.ExtORSession {
	t.Helper()
	s, err := e.ExtORPort.WaitSessions(n, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
