package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/pttest"
)

// ptbench is the binary under test, built once by TestMain.
var ptbench string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ptbench-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ptbench = filepath.Join(dir, "ptbench")
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", ptbench, ".")
	cmd.Dir = filepath.Dir(file)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// startLab prepares `ptbench lab args...` with its temporary files (and so the PTs' state
// directories) under tmp, so that leftovers can be found by their environment.
func startLab(tmp string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(ptbench, append([]string{"lab"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr
}

// leftovers are the live processes whose TOR_PT_STATE_LOCATION lies under tmp: PTs a
// ptbench run started, and their children.
func leftovers(tmp string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !bytes.Contains(env, []byte("TOR_PT_STATE_LOCATION="+tmp)) {
			continue
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && bytes.Contains(st, []byte(") Z ")) {
			continue // a zombie has ended
		}
		pids = append(pids, pid)
	}
	return pids
}

// noLeftovers fails the test if a process ptbench started outlives it (a pipeline's
// children get a moment to see their stdin close).
func noLeftovers(t *testing.T, tmp string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := leftovers(tmp)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left running: %v", left)
			for _, p := range left {
				syscall.Kill(p, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBadInput checks that each kind of bad input gives one line naming the problem, a
// non-zero exit, and no process left behind.
func TestBadInput(t *testing.T) {
	bin := pttest.Binary(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"unknown transport", []string{"--pair", "p=" + bin + ":" + bin, "--transport", "nosuch"},
			1, []string{"pair p", "nosuch", "not offered"}},
		{"VERSION-ERROR", []string{"--pair", "p=" + script(t, dir, "version-error", "echo VERSION-ERROR no-version\nexit 1\n") + ":" + bin},
			1, []string{"pair p", "VERSION-ERROR no-version"}},
		{"ENV-ERROR", []string{"--pair", "p=" + script(t, dir, "env-error", "echo VERSION 1\necho ENV-ERROR no TOR_PT_ORPORT\nexit 1\n") + ":" + bin},
			1, []string{"pair p", "server", "ENV-ERROR no TOR_PT_ORPORT"}},
		{"SMETHOD-ERROR", []string{"--pair", "p=" + script(t, dir, "smethod-error", "echo VERSION 1\necho SMETHOD-ERROR obfs4 cannot bind\necho SMETHODS DONE\nexec cat >/dev/null\n") + ":" + bin},
			1, []string{"pair p", "SMETHOD-ERROR obfs4 cannot bind"}},
		{"CMETHOD-ERROR", []string{"--pair", "p=" + bin + ":" + script(t, dir, "cmethod-error", "echo VERSION 1\necho CMETHOD-ERROR obfs4 broken\necho CMETHODS DONE\nexec cat >/dev/null\n")},
			1, []string{"pair p", "client", "CMETHOD-ERROR obfs4 broken"}},
		{"no DONE", []string{"--start-timeout", "1s", "--pair", "p=" + script(t, dir, "silent", "echo VERSION 1\nexec sleep 60\n") + ":" + bin},
			1, []string{"pair p", "no METHODS DONE"}},
		{"exits early", []string{"--pair", "p=" + script(t, dir, "exits", "echo VERSION 1\nexit 0\n") + ":" + bin},
			1, []string{"pair p", "exited before METHODS DONE"}},
		// The server's SMETHOD line carries another cert (its first characters changed), so
		// the client's every handshake fails.
		{"wrong cert", []string{"--start-timeout", "3s", "--pair", "p=" + script(t, dir, "wrong-cert",
			`"`+bin+`" "$@" | sed -u 's/cert=........../cert=AAAAAAAAAA/'`+"\n") + ":" + bin},
			1, []string{"pair p", "the first tunnel failed", "wrong cert"}},
		{"no such binary", []string{"--pair", "p=/nonexistent/pt:" + bin}, 2, []string{"/nonexistent/pt: no such file"}},
		{"not in PATH", []string{"--pair", "p=no-such-pt-anywhere:" + bin}, 2, []string{"no-such-pt-anywhere not found in PATH"}},
		{"bad pair", []string{"--pair", "justaname"}, 2, []string{"want NAME=SERVER:CLIENT"}},
		{"unknown scenario", []string{"--pair", "p=" + bin + ":" + bin, "--scenario", "bulk,nosuch"}, 1, []string{`unknown scenario "nosuch"`}},
		{"unknown size", []string{"--size", "huge"}, 2, []string{`unknown --size "huge"`}},
		{"probe needs obfs4", []string{"--pair", "p=" + bin + ":" + bin, "--transport", "plain", "--scenario", "probe"}, 1, []string{"probe scenario needs --transport obfs4"}},
		{"burst needs obfs4", []string{"--pair", "p=" + bin + ":" + bin, "--transport", "plain", "--scenario", "burst"}, 1, []string{"burst scenario needs --transport obfs4"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			out := filepath.Join(tmp, "out")
			cmd, stderr := startLab(tmp, append(c.args, "--size", "quick", "--out", out)...)
			if c.name == "unknown size" {
				cmd, stderr = startLab(tmp, c.args...)
			}
			start := time.Now()
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			if err == nil || code != c.code {
				t.Errorf("exit %d (%v), want %d", code, err, c.code)
			}
			t.Logf("stderr: %s", stderr)
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 {
				t.Errorf("%d lines on stderr, want one:\n%s", len(lines), stderr)
			}
			for _, w := range c.wants {
				if !strings.Contains(lines[0], w) {
					t.Errorf("stderr %q does not say %q", lines[0], w)
				}
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %v", d)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a failed run wrote %s", out)
			}
			noLeftovers(t, tmp)
		})
	}
}

// TestSignals interrupts a running ptbench with SIGTERM and with SIGINT (Ctrl-C): it must
// say so on one line, exit with 128+signal, and leave no PT running.
func TestSignals(t *testing.T) {
	bin := pttest.Binary(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			cmd, stderr := startLab(tmp, "--pair", "p="+bin+":"+bin, "--size", "quick", "--scenario", "soak",
				"--duration", "1m", "--out", filepath.Join(tmp, "out"))
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			// Wait until the soak's pair is up (the preflight pair comes and goes first).
			deadline := time.Now().Add(20 * time.Second)
			for {
				env := 0
				for _, p := range leftovers(tmp) {
					if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p)); bytes.Contains(b, []byte("soak-0")) {
						env++
					}
				}
				if env == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the soak's PTs did not start; stderr: %s", stderr)
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond) // into the soak's traffic
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Fatalf("ptbench still running 15s after %v", sig)
			}
			if code := cmd.ProcessState.ExitCode(); code != 128+int(sig) {
				t.Errorf("exit %d, want %d", code, 128+int(sig))
			}
			if s := strings.TrimSpace(stderr.String()); strings.Count(s, "\n") != 0 || !strings.Contains(s, "interrupted by "+sig.String()) {
				t.Errorf("stderr: %q", s)
			}
			noLeftovers(t, tmp)
		})
	}
}

// TestLabWritesReport runs one small scenario through the binary: exit 0, the report, the
// figures and the charts written, and, stderr not being a terminal, no progress line.
func TestLabWritesReport(t *testing.T) {
	bin := pttest.Binary(t)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	cmd, stderr := startLab(tmp, "--pair", "a="+bin+":"+bin, "--pair", "b="+bin+":"+bin,
		"--size", "quick", "--scenario", "churn", "--out", out)
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if s := strings.TrimSpace(stderr.String()); strings.Count(s, "\n") != 0 || !strings.HasPrefix(s, "ptbench lab: wrote ") {
		t.Errorf("stderr: %q", s)
	}
	for _, f := range []string{"report.md", "results.jsonl", "charts/setup_cdf.png", "charts/setup_cdf.svg"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !bytes.Contains(md, []byte("| a / b |")) || !bytes.Contains(md, []byte("cipher=")) {
		t.Errorf("report.md lacks the ratio column or ptreactor's cipher kernel:\n%s", md)
	}
	noLeftovers(t, tmp)
}
