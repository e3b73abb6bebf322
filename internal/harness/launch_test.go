package harness_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// fakePT writes a shell script that plays a managed PT: it records its pid and that of a
// child of its own (a sleep that holds stdout and stderr open, as a PT's helper process
// would), then runs body, in which $PIDS is the directory of the pid files. It returns the script's path and the directory of the pid files.
func fakePT(t *testing.T, body string) (bin, dir string) {
	t.Helper()
	dir = t.TempDir()
	bin = filepath.Join(dir, "fake-pt")
	script := fmt.Sprintf("#!/bin/sh\nPIDS=%[1]s\necho $$ > $PIDS/pid\nsleep 60 &\necho $! > $PIDS/grandchild\n%[2]s\n", dir, body)
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, dir
}

// readPid reads a pid file the fake PT wrote.
func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// alive reports whether pid is a process that has not ended (a zombie has ended).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
}

// checkGone fails the test if the fake PT of dir, or its child, is still running. The PT
// itself must be gone when Launch returns; its child, killed with the process group, gets a
// moment for the signal to land.
func checkGone(t *testing.T, dir string) {
	t.Helper()
	if pid := readPid(t, filepath.Join(dir, "pid")); alive(pid) {
		t.Errorf("the PT (pid %d) is still running after Launch returned", pid)
	}
	pid := readPid(t, filepath.Join(dir, "grandchild"))
	deadline := time.Now().Add(2 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("the PT's child (pid %d) outlived the failed launch", pid)
	}
}

func launch(t *testing.T, s harness.Spec) (*harness.PT, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if s.StateDir == "" {
		s.StateDir = t.TempDir()
	}
	return harness.Launch(ctx, s)
}

// wantLaunchError checks that err is a *LaunchError of kind, naming bin, whose text holds
// every one of want.
func wantLaunchError(t *testing.T, err error, kind error, bin string, want ...string) {
	t.Helper()
	var le *harness.LaunchError
	if !errors.As(err, &le) || !errors.Is(err, kind) {
		t.Fatalf("err = %v, want a LaunchError of kind %q", err, kind)
	}
	t.Log(err)
	if le.Bin != bin || !strings.Contains(err.Error(), bin) {
		t.Errorf("error %q does not name %s", err, bin)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is more than one line", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

var (
	clientSpec = harness.Spec{ClientTransports: "obfs4"}
	serverSpec = harness.Spec{ServerTransports: "obfs4", BindAddr: "obfs4-127.0.0.1:0", ORPort: "127.0.0.1:9"}
)

// TestLaunchBadPT runs the launcher against fake PTs that fail in each way tor can meet,
// and checks the error it reports and that no process is left behind.
func TestLaunchBadPT(t *testing.T) {
	for _, c := range []struct {
		name string
		spec harness.Spec
		body string
		kind error
		want []string
	}{
		{"version-error", clientSpec, "echo 'VERSION-ERROR no-version'; sleep 60",
			harness.ErrVersion, []string{"VERSION-ERROR no-version"}},
		{"env-error", serverSpec, "echo 'VERSION 1'; echo 'ENV-ERROR need TOR_PT_ORPORT'; sleep 60",
			harness.ErrEnv, []string{"ENV-ERROR need TOR_PT_ORPORT"}},
		{"smethod-error", serverSpec, "echo 'VERSION 1'; echo 'SMETHOD-ERROR obfs4 bind: address already in use'; echo 'SMETHODS DONE'; sleep 60",
			harness.ErrMethod, []string{"SMETHOD-ERROR obfs4 bind: address already in use"}},
		{"cmethod-error", clientSpec, "echo 'VERSION 1'; echo 'CMETHOD-ERROR obfs4 no such transport'; echo 'CMETHODS DONE'; sleep 60",
			harness.ErrMethod, []string{"CMETHOD-ERROR obfs4 no such transport"}},
		{"proxy-error", clientSpec, "echo 'VERSION 1'; echo 'PROXY-ERROR no socks4'; sleep 60",
			harness.ErrProxy, []string{"PROXY-ERROR no socks4"}},
		{"malformed-method", clientSpec, "echo 'VERSION 1'; echo 'CMETHOD obfs4 socks5'; sleep 60",
			harness.ErrBadLine, []string{"CMETHOD obfs4 socks5"}},
		{"bad-args", serverSpec, "echo 'VERSION 1'; echo 'SMETHOD obfs4 127.0.0.1:1 ARGS:cert'; sleep 60",
			harness.ErrBadLine, []string{"ARGS:cert", "no '='"}},
		{"not-offered", clientSpec, "echo 'VERSION 1'; echo 'CMETHOD plain socks5 127.0.0.1:1'; echo 'CMETHODS DONE'; sleep 60",
			harness.ErrNotOffered, []string{"transport obfs4 not offered by"}},
		{"exits-early", clientSpec, "echo 'VERSION 1'; echo 'frob: cannot open the frobnicator' >&2; exit 3",
			harness.ErrExited, []string{"exit status 3", "cannot open the frobnicator"}},
		{"closes-stdout", clientSpec, "echo 'VERSION 1'; exec >&-; kill $(cat $PIDS/grandchild); echo 'stdout closed' >&2; sleep 60",
			harness.ErrExited, []string{"closed its stdout", "stdout closed"}},
		{"no-done-timeout", harness.Spec{ClientTransports: "obfs4", HeaderTimeout: 300 * time.Millisecond},
			"echo 'VERSION 1'; echo 'CMETHOD obfs4 socks5 127.0.0.1:1'; sleep 60",
			harness.ErrNoDone, []string{"within 300ms", "CMETHOD obfs4 socks5 127.0.0.1:1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin, dir := fakePT(t, c.body)
			s := c.spec
			s.Bin = bin
			pt, err := launch(t, s)
			if err == nil {
				pt.Kill()
				t.Fatal("Launch succeeded")
			}
			wantLaunchError(t, err, c.kind, bin, c.want...)
			checkGone(t, dir)
		})
	}
}

// TestLaunchContextDeadline: the context bounds the wait for METHODS DONE too.
func TestLaunchContextDeadline(t *testing.T) {
	bin, dir := fakePT(t, "echo 'VERSION 1'; sleep 60")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := harness.Launch(ctx, harness.Spec{Bin: bin, StateDir: t.TempDir(), ClientTransports: "obfs4"})
	wantLaunchError(t, err, harness.ErrNoDone, bin, "context deadline exceeded")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v is not the context's error", err)
	}
	checkGone(t, dir)
}

// TestLaunchNotFound: a binary that is not there, by path or by name.
func TestLaunchNotFound(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{filepath.Join(t.TempDir(), "no-such-pt"), "no-such-pt-in-path", notExec} {
		_, err := launch(t, harness.Spec{Bin: bin, ClientTransports: "obfs4"})
		wantLaunchError(t, err, harness.ErrNotFound, bin, "binary not found")
	}
}

// TestLaunchStopsGoodPT: a fake PT that comes up is reported, and Stop ends it and its
// group.
func TestLaunchStopsGoodPT(t *testing.T) {
	bin, dir := fakePT(t, "echo 'VERSION 1'; echo 'SMETHOD obfs4 127.0.0.1:7 ARGS:cert=a\\,b,iat-mode=0'; echo 'SMETHODS DONE'; echo 'LOG after'; cat >/dev/null")
	s := serverSpec
	s.Bin = bin
	pt, err := launch(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if m := pt.Methods["obfs4"]; m.Addr != "127.0.0.1:7" || m.Arg("cert") != "a,b" || m.Arg("iat-mode") != "0" {
		t.Errorf("method %+v", m)
	}
	if !pt.Stop(5 * time.Second) {
		t.Error("the PT did not leave on stdin close")
	}
	checkGone(t, dir)
	if tail := pt.Tail(); len(tail) != 1 || tail[0] != "LOG after" {
		t.Errorf("tail %q", tail)
	}
}

// TestLaunchRealBadInput drives the real binaries into the failures they can be led to by
// their environment.
func TestLaunchRealBadInput(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ours, peer := pttest.Binary(t), obfs4proxy(t)
	for _, c := range []struct {
		name string
		spec harness.Spec
		kind error
		want string
	}{
		{"ptreactor version", harness.Spec{Bin: ours, ClientTransports: "obfs4", Env: []string{"TOR_PT_MANAGED_TRANSPORT_VER=2"}},
			harness.ErrVersion, "VERSION-ERROR"},
		{"obfs4proxy version", harness.Spec{Bin: peer, ClientTransports: "obfs4", Env: []string{"TOR_PT_MANAGED_TRANSPORT_VER=2"}},
			harness.ErrVersion, "VERSION-ERROR"},
		{"ptreactor env", harness.Spec{Bin: ours, ServerTransports: "obfs4", BindAddr: "obfs4-127.0.0.1:0"},
			harness.ErrEnv, "ENV-ERROR"},
		{"ptreactor bind", harness.Spec{Bin: ours, ServerTransports: "obfs4", BindAddr: "obfs4-" + busy.Addr().String(), ORPort: "127.0.0.1:9"},
			harness.ErrMethod, "SMETHOD-ERROR obfs4"},
		{"obfs4proxy bind", harness.Spec{Bin: peer, ServerTransports: "obfs4", BindAddr: "obfs4-" + busy.Addr().String(), ORPort: "127.0.0.1:9"},
			harness.ErrMethod, "SMETHOD-ERROR obfs4"},
		// ptreactor passes over a name it does not know, as pt-spec says; obfs4proxy refuses it.
		{"ptreactor unknown transport", harness.Spec{Bin: ours, ClientTransports: "nosuch"},
			harness.ErrNotOffered, "transport nosuch not offered by " + ours},
		{"obfs4proxy unknown transport", harness.Spec{Bin: peer, ClientTransports: "nosuch"},
			harness.ErrMethod, "CMETHOD-ERROR nosuch"},
		{"ptreactor bad flag", harness.Spec{Bin: ours, Args: []string{"-no-such-flag"}, ClientTransports: "obfs4"},
			harness.ErrExited, "no-such-flag"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pt, err := launch(t, c.spec)
			if err == nil {
				pt.Kill()
				t.Fatal("Launch succeeded")
			}
			wantLaunchError(t, err, c.kind, c.spec.Bin, c.want)
		})
	}
}

// TestPairTunnel launches ptreactor pairs feeding the ORPort stand-in and the Extended
// ORPort stand-in, opens tunnels as tor does and echoes through them.
func TestPairTunnel(t *testing.T) {
	or, err := harness.StartORPort(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer or.Close()
	ext, err := harness.StartExtORPort(t.TempDir(), harness.ExtOROptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	bin := pttest.Binary(t)
	for _, c := range []struct {
		transport string
		ext       bool
	}{{"plain", false}, {"obfs4", false}, {"obfs4", true}} {
		ps := harness.PairSpec{ClientBin: bin, ServerBin: bin, Transport: c.transport, Dir: t.TempDir(), ORPort: or.Addr}
		if c.ext {
			ps.ORPort, ps.ExtORPort, ps.CookieFile = "", ext.Addr, ext.CookieFile
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		p, err := harness.StartPair(ctx, ps)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		conn, err := p.Dial(ctx)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		msg := bytes.Repeat([]byte(c.transport), 10000)
		go conn.Write(msg)
		got := make([]byte, len(msg))
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, msg) {
			t.Errorf("%+v: echo: %v", c, err)
		}
		conn.Close()
		cancel()
		if !p.Stop(10 * time.Second) {
			t.Errorf("%+v: a PT did not leave on stdin close", c)
		}
	}
	s, err := ext.WaitSessions(1, 5*time.Second)
	if err != nil || len(s) != 1 || !s[0].AuthOK || !s[0].Okay || s[0].Transport != "obfs4" {
		t.Errorf("ExtORPort sessions %+v %v", s, err)
	}
	if n := len(or.Remotes()); n != 2 {
		t.Errorf("ORPort saw %d connections, want 2", n)
	}
}

func obfs4proxy(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("obfs4proxy")
	if err != nil {
		t.Fatalf("obfs4proxy is required (make deps): %v", err)
	}
	return p
}
