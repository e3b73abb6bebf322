package lifecycle

// ptreactor launched the way Arti's PT manager (crates/tor-ptmgr) launches a PT: its
// environment (TOR_PT_EXIT_ON_STDIN_CLOSE=1 always; a server always gets
// TOR_PT_SERVER_TRANSPORT_OPTIONS, empty when there are none, and no ExtORPort), its
// rules for the configuration lines (every line must parse, "...METHODS DONE" within
// 30 s, a -ERROR line fails the launch, a CMETHOD must be on loopback), and its shutdown:
// close stdin, wait 5 s, then kill.

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/pttest"
)

const (
	artiStartTimeout = 30 * time.Second // Arti's PT_START_TIMEOUT
	artiGraceful     = 5 * time.Second  // Arti's GRACEFUL_EXIT_TIME, then SIGKILL
)

func artiClientEnv(t *testing.T, transports string) []string {
	return []string{
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_STATE_LOCATION=" + filepath.Join(t.TempDir(), "pt_state"),
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
		"TOR_PT_CLIENT_TRANSPORTS=" + transports,
	}
}

func artiServerEnv(t *testing.T, transports, options, bindaddr string) []string {
	return []string{
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_STATE_LOCATION=" + filepath.Join(t.TempDir(), "pt_state"),
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
		"TOR_PT_SERVER_TRANSPORTS=" + transports,
		"TOR_PT_SERVER_TRANSPORT_OPTIONS=" + options,
		"TOR_PT_SERVER_BINDADDR=" + bindaddr,
		"TOR_PT_ORPORT=127.0.0.1:9",
	}
}

// artiConfigure reads the configuration lines as Arti does, each checked with both
// parents' grammars (checkLine), up to "...METHODS DONE", which must come within Arti's
// start timeout.
func artiConfigure(t *testing.T, p *pttest.Proc) []string {
	t.Helper()
	deadline := time.Now().Add(artiStartTimeout)
	var lines []string
	for {
		l, ok := p.NextLine(time.Until(deadline))
		if !ok {
			t.Fatalf("no METHODS DONE within Arti's %v (stdout %q, stderr %s)", artiStartTimeout, lines, p.StderrText())
		}
		checkLine(t, l)
		lines = append(lines, l)
		if l == "CMETHODS DONE" || l == "SMETHODS DONE" {
			return lines
		}
	}
}

// artiShutdown closes stdin one second after the configuration, as an Arti that is done
// with the PT does, and requires an exit before Arti would kill the process.
func artiShutdown(t *testing.T, p *pttest.Proc, want int) {
	t.Helper()
	time.Sleep(time.Second)
	p.Stdin.Close()
	// Lines written while stopping are read too, and must parse for both parents.
	deadline := time.Now().Add(artiGraceful)
	for {
		l, ok := p.NextLine(time.Until(deadline))
		if !ok {
			break
		}
		checkLine(t, l)
	}
	left := time.Until(deadline)
	if left <= 0 {
		t.Fatalf("stdout still open %v after stdin closed: Arti would kill the process now", artiGraceful)
	}
	if code := p.Wait(left); code != want { // Wait fails the test when left runs out
		t.Errorf("exit %d, want %d", code, want)
	}
}

func TestArtiLaunch(t *testing.T) {
	for _, c := range []struct {
		name, method string
		env          []string
	}{
		{"client", "CMETHOD obfs4 socks5 127.0.0.1:", artiClientEnv(t, "obfs4")},
		{"server", "SMETHOD obfs4 127.0.0.1:", artiServerEnv(t, "obfs4", "", "obfs4-127.0.0.1:0")},
		{"server with options", "SMETHOD obfs4 127.0.0.1:", artiServerEnv(t, "obfs4", "obfs4:iat-mode=1", "obfs4-127.0.0.1:0")},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := pttest.Start(t, c.env)
			lines := artiConfigure(t, p)
			if !hasLine(lines, "^"+strings.ReplaceAll(c.method, ".", `\.`)+`[1-9]`) {
				t.Errorf("no %q line in %q", c.method, lines)
			}
			if hasLine(lines, "METHOD-ERROR") {
				t.Errorf("a -ERROR line fails Arti's whole launch: %q", lines)
			}
			if !hasLine(lines, `^STATUS TRANSPORT=obfs4 TYPE=version `) {
				t.Errorf("no version STATUS line naming the transport: %q", lines)
			}
			artiShutdown(t, p, ExitClean)
		})
	}
}

// A bad ServerTransportOptions value holding '"', '\' and non-ASCII text: the error that
// names it reaches both parents as the same text, quotes and all.
func TestArtiBadOptionMessage(t *testing.T) {
	value := `7"x\é`
	p := pttest.Start(t, artiServerEnv(t, "obfs4", "obfs4:"+escapeTransportOption("iat-mode="+value), "obfs4-127.0.0.1:0"))
	lines := artiConfigure(t, p)
	var msg string
	for _, l := range lines {
		if m, err := artiParse(l); err == nil && m.keyword == "LOG" && strings.Contains(m.fields["MESSAGE"], "iat-mode") {
			msg = m.fields["MESSAGE"]
		}
	}
	// The message quotes the value Go-style inside the log's own quoting, so '"' and '\'
	// come back escaped once more, and é as it is.
	if !strings.Contains(msg, "transport failed to start transport=obfs4") || !strings.Contains(msg, `invalid iat-mode \"7\\\"x\\\\é\"`) {
		t.Errorf("LOG message %q does not name the bad iat-mode (stdout %q)", msg, lines)
	}
	if !hasLine(lines, `^SMETHOD-ERROR obfs4 obfs4: invalid iat-mode "7\\"x\\\\é"$`) {
		t.Errorf("no SMETHOD-ERROR naming the value: %q", lines)
	}
	artiShutdown(t, p, ExitNoTransport)
}
