package lifecycle

import (
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// TestDenyWarnsTorOnce: the real binary, started as tor starts a bridge's transport, with
// an Extended ORPort that DENYs every connection. Five clients fail; tor's log gets one
// warning saying so within a second, not five, and ptreactor keeps serving.
func TestDenyWarnsTorOnce(t *testing.T) {
	ext := pttest.StartExtORPort(t, harness.ExtOROptions{Deny: true})
	p := pttest.Start(t, pttest.ServerEnv(t.TempDir(), "plain", "plain-127.0.0.1:0", "",
		"TOR_PT_EXTENDED_SERVER_PORT="+ext.Addr, "TOR_PT_AUTH_COOKIE_FILE="+ext.CookieFile))
	addr, _ := plainServerAddr(t, p)

	start := time.Now()
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(lineWait))
			if _, err := io.ReadAll(c); err != nil {
				t.Errorf("a denied client was not closed: %v", err)
			}
		}()
	}
	var warned []string
	var at time.Duration
	for {
		l, ok := p.NextLine(time.Until(start.Add(2 * time.Second)))
		if !ok {
			break
		}
		checkLine(t, l)
		if strings.HasPrefix(l, "LOG SEVERITY=warning ") && strings.Contains(l, "tor denied") {
			warned = append(warned, l)
			at = time.Since(start)
		}
	}
	wg.Wait()
	if len(warned) != 1 || at > time.Second {
		t.Fatalf("%d DENY warnings (the last after %v), want 1 within a second: %q\nstderr: %s", len(warned), at, warned, p.StderrText())
	}
	t.Logf("after %v: %s", at, warned[0])
	if s := ext.WaitSessions(t, 5, lineWait); len(s) != 5 {
		t.Fatalf("ExtORPort sessions %+v", s)
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(lineWait); code != ExitClean {
		t.Errorf("exit %d", code)
	}
}
