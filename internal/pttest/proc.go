// Package pttest runs the real ptreactor binary the way tor does, for the black-box tests
// of every package: it builds the binary once per test process, starts it (with
// internal/harness) in a managed-proxy environment, hands out its stdout line by line and
// cleans it up when the test ends.
package pttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/ptreactor once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ptreactor-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ptreactor")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/ptreactor/ptreactor/cmd/ptreactor")
		cmd.Dir = moduleRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Proc is one running ptreactor, a harness.Proc tied to a test.
type Proc struct {
	*harness.Proc
	t      testing.TB
	stderr lockedBuilder
}

// Start runs the binary with exactly env (plus PATH and HOME) and args. The process is killed
// when the test ends if it is still running.
func Start(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t}
	hp, err := harness.StartProc(Binary(t), args, append(harness.BaseEnv(), env...), &p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	p.Proc = hp
	t.Cleanup(hp.Kill)
	return p
}

// lockedBuilder collects what a child writes on stderr (or stdout).
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(b)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StderrText returns what the process wrote on stderr so far.
func (p *Proc) StderrText() string { return p.stderr.String() }

// Line returns the next stdout line, or fails the test after timeout or at EOF.
func (p *Proc) Line(timeout time.Duration) string {
	p.t.Helper()
	l, ok := p.NextLine(timeout)
	if !ok {
		p.t.Fatalf("no stdout line within %v (stderr: %s)", timeout, p.StderrText())
	}
	return l
}

// NextLine returns the next stdout line; ok is false at EOF or after timeout.
func (p *Proc) NextLine(timeout time.Duration) (string, bool) {
	select {
	case l, ok := <-p.Lines():
		return l, ok
	case <-time.After(timeout):
		return "", false
	}
}

// Expect reads lines until one starts with prefix, skipping LOG and STATUS lines, and
// returns it; any other line first fails the test.
func (p *Proc) Expect(prefix string, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		l := p.Line(time.Until(deadline))
		if strings.HasPrefix(l, prefix) {
			return l
		}
		if strings.HasPrefix(l, "LOG ") || strings.HasPrefix(l, "STATUS ") {
			continue
		}
		p.t.Fatalf("want a line starting %q, got %q", prefix, l)
	}
}

// Wait waits up to timeout for the process to exit and returns its exit code (-1 when it
// was killed by a signal); it fails the test on timeout.
func (p *Proc) Wait(timeout time.Duration) int {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	lines := p.Lines()
	for {
		select {
		case _, ok := <-lines: // drain so that the child never blocks on stdout
			if !ok {
				lines = nil
			}
		case <-p.Done():
			return p.ExitCode()
		case <-ctx.Done():
			p.t.Fatalf("process did not exit within %v (stderr: %s)", timeout, p.StderrText())
			return -1
		}
	}
}

// ClientEnv is the environment tor gives a client PT, plus extra entries.
func ClientEnv(stateDir, transports string, extra ...string) []string {
	return append([]string{
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_STATE_LOCATION=" + stateDir,
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
		"TOR_PT_CLIENT_TRANSPORTS=" + transports,
	}, extra...)
}

// ServerEnv is the environment tor gives a server PT without an ExtORPort, plus extra
// entries (a later entry of the same name wins, as with os/exec).
func ServerEnv(stateDir, transports, bindaddr, orport string, extra ...string) []string {
	return append([]string{
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_STATE_LOCATION=" + stateDir,
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
		"TOR_PT_SERVER_TRANSPORTS=" + transports,
		"TOR_PT_SERVER_BINDADDR=" + bindaddr,
		"TOR_PT_ORPORT=" + orport,
		"TOR_PT_EXTENDED_SERVER_PORT=",
	}, extra...)
}
