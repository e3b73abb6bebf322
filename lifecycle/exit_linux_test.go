package lifecycle

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/pollfault"
)

// TestExitEngineFailed: exit code 2 is what a run ends with when an event loop died under
// the engine (here its epoll instance fails, as a real kernel failure would make it): the
// run is in this process so the test can break the loops' epoll instances; stdin closing
// then ends it, after a connection has woken a loop into the failure. The same run with healthy loops exits 0.
func TestExitEngineFailed(t *testing.T) {
	for _, tc := range []struct {
		breakLoops bool
		want       int
	}{{false, ExitClean}, {true, ExitRuntime}} {
		before, err := pollfault.Epolls()
		if err != nil {
			t.Fatal(err)
		}
		stdinR, stdinW := io.Pipe()
		stdoutR, stdoutW := io.Pipe()
		code := make(chan int, 1)
		go func() {
			code <- Run(Options{
				Stdin:  stdinR,
				Stdout: stdoutW,
				Lookup: lookupMap("TOR_PT_MANAGED_TRANSPORT_VER=1", "TOR_PT_STATE_LOCATION="+t.TempDir(),
					"TOR_PT_CLIENT_TRANSPORTS=plain", "TOR_PT_EXIT_ON_STDIN_CLOSE=1"),
			})
			stdoutW.Close()
		}()
		lines := bufio.NewScanner(stdoutR)
		var socksAddr string
		for lines.Scan() && !strings.HasPrefix(lines.Text(), "CMETHODS DONE") {
			if f := strings.Fields(lines.Text()); len(f) == 4 && f[0] == "CMETHOD" {
				socksAddr = f[3]
			}
		}
		go func() { _, _ = io.Copy(io.Discard, stdoutR) }()
		if tc.breakLoops {
			if n, err := pollfault.BreakNew(before); err != nil || n == 0 {
				t.Fatalf("broke %d epoll instances: %v", n, err)
			}
			// A connection enrolled on a loop wakes it into the failure.
			c, err := net.Dial("tcp", socksAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			time.Sleep(300 * time.Millisecond)
		}
		stdinW.Close()
		select {
		case c := <-code:
			if c != tc.want {
				t.Errorf("loops broken %v: exit %d, want %d", tc.breakLoops, c, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("loops broken %v: Run did not return after stdin closed", tc.breakLoops)
		}
	}
}
