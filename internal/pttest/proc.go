// Package pttest runs the real ptreactor binary the way tor does, for the black-box tests
// of every package: it builds the binary once per test process, starts it with a managed-
// proxy environment, hands out its stdout line by line and cleans it up when the test ends.
package pttest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

// Proc is one running ptreactor.
type Proc struct {
	t      testing.TB
	Cmd    *exec.Cmd
	Stdin  io.WriteCloser
	lines  chan string
	Stderr *strings.Builder
	done   chan struct{}
	mu     sync.Mutex
	err    error // Wait's result, valid once done is closed
}

// Start runs the binary with exactly env (plus PATH and HOME) and args. The process is killed
// when the test ends if it is still running.
func Start(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{t: t, Cmd: cmd, Stdin: stdin, lines: make(chan string, 1024), Stderr: &strings.Builder{}, done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{w: p.Stderr, mu: &p.mu}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// StderrText returns what the process wrote on stderr so far.
func (p *Proc) StderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Stderr.String()
}

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
	case l, ok := <-p.lines:
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

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) {
	_ = p.Cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the process to exit and returns its exit code (-1 when it
// was killed by a signal); it fails the test on timeout.
func (p *Proc) Wait(timeout time.Duration) int {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		select {
		case <-p.lines: // drain so the reader goroutine can finish
			continue
		case <-p.done:
			if p.Cmd.ProcessState == nil {
				return -1
			}
			return p.Cmd.ProcessState.ExitCode()
		case <-ctx.Done():
			p.t.Fatalf("process did not exit within %v (stderr: %s)", timeout, p.StderrText())
			return -1
		}
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
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
