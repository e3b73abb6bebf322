package lifecycle

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// A bridge with its metrics on a unix socket and STATUS every second: two clients whose
// tunnels fail at the ORPort (nothing listens there) show in the scrape as two plain
// server tunnels and two refused dials, beside the Go and process metrics; the STATUS
// TYPE=stats line that follows counts the same two connections and reads the same to tor
// and to Arti. A clean exit removes the socket.
func TestMetricsAndStatusStats(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	p := pttest.Start(t, pttest.ServerEnv(t.TempDir(), "plain", "plain-127.0.0.1:0", "127.0.0.1:9", "TOR_PT_EXIT_ON_STDIN_CLOSE=1"),
		"-metrics", sock, "-status-interval", "1s")
	var addr string
	for _, l := range config(t, p) {
		if strings.HasPrefix(l, "SMETHOD plain ") {
			addr = strings.Fields(l)[2]
		}
	}
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}

	const tunnels = `ptreactor_tunnels_total{role="server",transport="plain"}`
	const refused = `ptreactor_outbound_dial_failures_total{kind="refused",role="server"}`
	var s harness.Samples
	deadline := time.Now().Add(lineWait)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		s, err = harness.Scrape(ctx, "unix", sock)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if s[tunnels] == 2 && s[refused] == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s[tunnels] != 2 || s[refused] != 2 {
		t.Errorf("%s = %v, %s = %v; want 2 each", tunnels, s[tunnels], refused, s[refused])
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes",
		"process_open_fds", "process_max_fds", "ptreactor_tunnels_limit"} {
		if s[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, s[name])
		}
	}
	if s[`ptreactor_outbound_dial_seconds_count{role="server"}`] != 0 {
		t.Errorf("a refused dial was counted as a latency")
	}

	// STATUS lines come every second; the first taken after both tunnels ended counts both.
	deadline = time.Now().Add(lineWait)
	var stats string
	for stats == "" && time.Now().Before(deadline) {
		l, ok := p.NextLine(time.Until(deadline))
		if !ok {
			break
		}
		checkLine(t, l)
		if strings.HasPrefix(l, "STATUS TRANSPORT=plain TYPE=stats CONNECTIONS=2 ") {
			stats = l
		}
	}
	want := "STATUS TRANSPORT=plain TYPE=stats CONNECTIONS=2 OPEN=0 HANDSHAKES=0 HANDSHAKE_FAILURES=0 HANDSHAKE_TIMEOUTS=0"
	if stats != want {
		t.Errorf("STATUS stats line %q, want %q", stats, want)
	}
	if m, err := torParse(stats); err != nil || m.fields["CONNECTIONS"] != "2" || m.fields["TYPE"] != "stats" {
		t.Errorf("tor reads %v, %v", m, err)
	}

	p.Signal(syscall.SIGTERM)
	if code := p.Wait(lineWait); code != ExitClean {
		t.Errorf("exit %d", code)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("metrics socket left behind: %v", err)
	}
}

// A metrics socket that a dead process left behind is replaced; one that another process
// serves is not taken over.
func TestMetricsStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	env := pttest.ServerEnv(t.TempDir(), "plain", "plain-127.0.0.1:0", "127.0.0.1:9")
	p := pttest.Start(t, env, "-metrics", sock)
	lines := allLines(t, p)
	if code := p.Wait(lineWait); code != ExitSetup || !hasLine(lines, `^ENV-ERROR -metrics: .*another process serves this socket$`) {
		t.Errorf("exit %d, stdout %q", code, lines)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, as after a crash

	p = pttest.Start(t, env, "-metrics", sock)
	config(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := harness.Scrape(ctx, "unix", sock); err != nil {
		t.Errorf("scrape after replacing a stale socket: %v", err)
	}
}
