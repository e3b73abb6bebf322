package lifecycle

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/pttest"
)

// TestHandBackDue walks the decision through a day of tunnel counts, one tick a second:
// a hand-back comes only once the count has fallen to half its peak and at least
// handBackDrop below it, never while it rises, and not twice within handBackEvery.
func TestHandBackDue(t *testing.T) {
	h := newHandBack()
	t0 := time.Unix(1_000_000, 0)
	steps := []struct {
		tunnels int
		want    bool
		why     string
	}{
		{0, false, "nothing ever open"},
		{80, false, "growing"},
		{10, false, "fell by less than handBackDrop"},
		{300, false, "a burst arriving"},
		{600, false, "still arriving"},
		{400, false, "fell, but not to half the peak"},
		{250, true, "half the peak and 350 below it"},
		{240, false, "the peak is now 250"},
		{700, false, "a second burst"},
		{100, false, "down from 700, but within handBackEvery of the last"},
		{90, false, "still within handBackEvery"},
	}
	for i, s := range steps {
		if got := h.due(s.tunnels, t0.Add(time.Duration(i)*time.Second)); got != s.want {
			t.Errorf("tick %d, %d tunnels (%s): due %v, want %v", i, s.tunnels, s.why, got, s.want)
		}
	}
	// Once handBackEvery has passed since the last one, the second burst's fall counts.
	if !h.due(80, t0.Add(6*time.Second+handBackEvery)) {
		t.Errorf("%d tunnels after a peak of 700, %v after the last hand-back: not due", 80, handBackEvery)
	}
}

// TestHandBackAfterBurst opens connections to the real binary's SOCKS port, closes them all
// and waits for its log to say that it returned the freed memory to the OS.
func TestHandBackAfterBurst(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "ptreactor.log")
	env := []string{"TOR_PT_MANAGED_TRANSPORT_VER=1", "TOR_PT_STATE_LOCATION=" + filepath.Join(dir, "state"), "TOR_PT_CLIENT_TRANSPORTS=plain"}
	p := pttest.Start(t, env, "-log-level", "info", "-log-file", logFile)
	var addr string
	for _, l := range config(t, p) {
		if strings.HasPrefix(l, "CMETHOD plain socks5 ") {
			addr = strings.Fields(l)[3]
		}
	}
	if addr == "" {
		t.Fatal("no CMETHOD line")
	}
	// Each connection waits in the SOCKS phase (5 s allowed) and counts as a tunnel.
	n := 2 * handBackDrop
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Let the engine see them all on a tick before they go.
	time.Sleep(2 * handBackTick)
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(lineWait)
	var log []byte
	for time.Now().Before(deadline) {
		log, _ = os.ReadFile(logFile)
		if strings.Contains(string(log), "returned freed memory to the OS tunnels=0 ") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Signal(syscall.SIGTERM)
	p.Wait(lineWait)
	if !strings.Contains(string(log), "returned freed memory to the OS tunnels=0 ") {
		t.Errorf("no hand-back logged after %d connections closed:\n%s", n, log)
	}
}
