package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

const unitFile = "../../doc/ptreactor-obfs4.service"

// unitSettings reads the [Service] settings of a unit file: key to values, in order.
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[':
			section = l
		case section == "[Service]":
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("%s: %q is not key=value", path, l)
			}
			set[k] = append(set[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return set
}

// TestSystemdUnit checks the unit file the documentation ships, then starts ptreactor the
// way that unit does (its environment, stdin /dev/null, stopped with its KillSignal) in
// front of an ExtORPort stand-in, and tunnels through it.
func TestSystemdUnit(t *testing.T) {
	set := unitSettings(t, unitFile)
	for k, want := range map[string]string{
		"Restart":               "on-failure",
		"LimitNOFILE":           "65536",
		"AmbientCapabilities":   "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"DynamicUser":           "yes",
		"NoNewPrivileges":       "yes",
		"KillSignal":            "SIGINT",
	} {
		if got := set[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %s", k, got, want)
		}
	}

	// systemd's own check, with ExecStart pointed at the binary under test and the man page
	// where `make install` puts it.
	bin := ourBin(t)
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "ptreactor-obfs4.service")
	if err := os.WriteFile(copyPath, []byte(strings.Replace(string(unit), "ExecStart=/usr/local/bin/ptreactor", "ExecStart="+bin, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	man := filepath.Join(dir, "man", "man1")
	if err := os.MkdirAll(man, 0o755); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile("../../doc/ptreactor.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(man, "ptreactor.1"), page, 0o644); err != nil {
		t.Fatal(err)
	}
	verify := exec.Command("systemd-analyze", "verify", copyPath)
	verify.Env = append(os.Environ(), "MANPATH="+filepath.Join(dir, "man"))
	if out, err := verify.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The unit's environment, with the machine-specific values replaced by the test's.
	extor := pttest.StartExtORPort(t, harness.ExtOROptions{})
	replace := map[string]string{
		"TOR_PT_STATE_LOCATION":       t.TempDir(),
		"TOR_PT_SERVER_BINDADDR":      "obfs4-127.0.0.1:0",
		"TOR_PT_EXTENDED_SERVER_PORT": extor.Addr,
		"TOR_PT_AUTH_COOKIE_FILE":     extor.CookieFile,
	}
	env := harness.BaseEnv()
	for _, kv := range set["Environment"] {
		k, v, _ := strings.Cut(kv, "=")
		if r, ok := replace[k]; ok {
			v = r
			delete(replace, k)
		}
		env = append(env, k+"="+v)
	}
	if len(replace) > 0 {
		t.Fatalf("the unit sets none of %v", replace)
	}
	proc, err := harness.StartProc(bin, nil, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proc.Kill)
	// stdin is StartProc's pipe, never written nor closed: like systemd's /dev/null, it
	// says nothing, and without TOR_PT_EXIT_ON_STDIN_CLOSE nothing is expected of it.
	var m harness.Method
	for m.Name == "" {
		select {
		case l, ok := <-proc.Lines():
			if !ok {
				t.Fatalf("exited before SMETHOD: %s", proc.StderrTail())
			}
			if strings.HasPrefix(l, "SMETHOD ") {
				if m, err = harness.ParseMethod(l); err != nil {
					t.Fatal(err)
				}
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no SMETHOD line")
		}
	}

	cli := launch(t, harness.Spec{Bin: bin, StateDir: t.TempDir(), ClientTransports: "obfs4"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := harness.DialSOCKS(ctx, cli.Addr("obfs4"), m.Addr, harness.ObfsArgs(m.Arg("cert"), 0))
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 64<<10)
	rand.Read(msg)
	go conn.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(deadlineConn(conn, 30*time.Second), got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through the tunnel: %v", err)
	}
	if s := extor.WaitSessions(t, 1, 5*time.Second); !s[0].AuthOK || s[0].Transport != "obfs4" {
		t.Fatalf("ExtORPort session %+v, want authenticated with TRANSPORT obfs4", s[0])
	}

	// systemctl stop: KillSignal drains; with the tunnel still open it waits for it, and
	// exits 0 once the tunnel ends.
	if err := proc.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proc.Done():
		t.Fatal("exited with a tunnel still open")
	case <-time.After(500 * time.Millisecond):
	}
	conn.Close()
	select {
	case <-proc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after the drain")
	}
	if code := proc.ExitCode(); code != 0 {
		t.Fatalf("exit status %d after SIGINT, want 0", code)
	}
}
