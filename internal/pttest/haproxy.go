package pttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// HAProxyPath returns the haproxy binary, or fails the test: the PROXY protocol tests need
// the real balancer and must not pass by skipping (the Makefile's deps target installs it).
func HAProxyPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/haproxy", "/usr/bin/haproxy"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("haproxy is not installed (apt-get install haproxy, or make deps)")
	return ""
}

// HAProxy is one haproxy process started by a test.
type HAProxy struct {
	Cmd    *exec.Cmd
	NS     *NetNS // the namespace it runs in; nil: this process's
	output lockedBuilder
	done   chan struct{}
}

// StartHAProxy runs haproxy in the foreground with config as its whole configuration, in
// ns, or with ns nil in this process's own network namespace (haproxy then only reaches
// what config names, which a test keeps on loopback), and stops it when the test ends. The
// config should set global maxconn, so that haproxy sizes its descriptor limit from it
// rather than raising it past the machine's. It returns as soon as haproxy has started; a
// caller waits for a frontend by dialling it until it accepts (a probe would be relayed to
// the backend like any client).
func StartHAProxy(t testing.TB, ns *NetNS, config string) *HAProxy {
	t.Helper()
	bin := HAProxyPath(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &HAProxy{NS: ns, done: make(chan struct{})}
	h.Cmd = exec.Command(bin, "-db", "-f", cfg)
	h.Cmd.Stdout, h.Cmd.Stderr = &h.output, &h.output
	if err := startWatched(ns, h.Cmd, h.done, nil); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(h.Stop)
	return h
}

// Output is what haproxy wrote on stdout and stderr so far.
func (h *HAProxy) Output() string { return h.output.String() }

// Exited is closed when haproxy has ended.
func (h *HAProxy) Exited() <-chan struct{} { return h.done }

// Stop ends haproxy (SIGTERM, then SIGKILL after five seconds) and waits for it.
func (h *HAProxy) Stop() {
	select {
	case <-h.done:
		return
	default:
	}
	h.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		h.Cmd.Process.Kill()
		<-h.done
	}
}
