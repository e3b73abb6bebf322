package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ptreactor/ptreactor/bench/results"
	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// runLoadCmd runs `ptbench load args...` and returns its exit code, stdout and stderr.
func runLoadCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(ptbench, append([]string{"load"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// oneLine fails the test unless stderr is exactly one line holding want.
func oneLine(t *testing.T, stderr, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("stderr %q: want one line containing %q", stderr, want)
	}
}

// TestLoadBadInput: a malformed bridge line is a usage error (exit 2), a closed port ends
// the run with one line saying the bridge refused (exit 1).
func TestLoadBadInput(t *testing.T) {
	var raw [52]byte
	rand.Read(raw[:])
	cert := base64.RawStdEncoding.EncodeToString(raw[:])

	code, _, stderr := runLoadCmd(t, "-bridge", "obfs4 not-an-address cert="+cert+" iat-mode=0")
	if code != 2 {
		t.Errorf("malformed bridge line: exit %d, want 2", code)
	}
	oneLine(t, stderr, "malformed bridge line")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	code, _, stderr = runLoadCmd(t, "-bridge", "obfs4 "+closed+" cert="+cert+" iat-mode=0", "-conns", "4", "-duration", "20s")
	if code != 1 {
		t.Errorf("closed port: exit %d, want 1", code)
	}
	oneLine(t, stderr, "refused")
}

// TestLoadHoldsTunnels: against a real ptreactor bridge, the command holds the tunnels it
// was asked for and its JSON figures say so.
func TestLoadHoldsTunnels(t *testing.T) {
	line, _, _ := pttest.StartObfs4Bridge(t, harness.Discard)
	out := filepath.Join(t.TempDir(), "load.jsonl")
	code, stdout, stderr := runLoadCmd(t, "-bridge", "obfs4 "+line, "-conns", "40",
		"-until-held", "-duration", "60s", "-json", out, "-name", "ptreactor")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	figs, err := results.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fig := range figs {
		if fig.Scenario != "load" || fig.Pair != "ptreactor" {
			t.Errorf("figure %+v: want scenario load, pair ptreactor", fig)
		}
		if fig.Variant == "" || fig.Variant == "total" {
			got[fig.Metric] = fig.Value
		}
	}
	if got["tunnels_held"] != 40 || got["handshakes_ok"] < 40 {
		t.Errorf("tunnels_held %v, handshakes_ok %v: want 40 and at least 40\n%s", got["tunnels_held"], got["handshakes_ok"], stdout)
	}
	if got["errors"] != 0 {
		t.Errorf("%v errors against a healthy bridge\n%s", got["errors"], stdout)
	}
	if got["setup_p50_ms"] <= 0 || got["setup_p50_ms"] > got["setup_p99_ms"] {
		t.Errorf("set-up p50 %v, p99 %v: want 0 < p50 <= p99", got["setup_p50_ms"], got["setup_p99_ms"])
	}
}
