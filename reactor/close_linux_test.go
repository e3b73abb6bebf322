package reactor

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec/plain"
	"github.com/ptreactor/ptreactor/internal/pollfault"
)

// TestCloseReportsDeadLoop: an event loop whose epoll instance fails dies with an error,
// and Close reports it (lifecycle's exit code 2); an engine whose loops ran fine closes
// with nil.
func TestCloseReportsDeadLoop(t *testing.T) {
	for _, breakLoops := range []bool{false, true} {
		before, err := pollfault.Epolls()
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(Config{Transports: testTransports()})
		if err != nil {
			t.Fatal(err)
		}
		addr, err := e.ListenClient(plain.Name, "127.0.0.1:0") // starts the loops
		if err != nil {
			e.Close()
			t.Fatal(err)
		}
		if breakLoops {
			n, err := pollfault.BreakNew(before)
			if err != nil || n == 0 {
				e.Close()
				t.Fatalf("broke %d epoll instances: %v", n, err)
			}
		}
		// A connection enrolled on a loop wakes it (into the failure, if broken).
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		time.Sleep(200 * time.Millisecond)
		err = e.Close()
		switch {
		case breakLoops && (err == nil || !strings.Contains(err.Error(), "event loop failed")):
			t.Errorf("Close after the loops died: %v", err)
		case !breakLoops && err != nil:
			t.Errorf("Close of a healthy engine: %v", err)
		}
		if again := e.Close(); (again == nil) != (err == nil) {
			t.Errorf("second Close: %v, first %v", again, err)
		}
	}
}
