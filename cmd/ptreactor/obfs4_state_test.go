package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/internal/harness"
)

// launch starts one PT for spec (every transport of it reported, or the test fails) and kills it at the end of the test if it is still running.
func launch(t testing.TB, s harness.Spec) *harness.PT {
	t.Helper()
	var errs logBuf
	s.Stderr = &errs
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pt, err := harness.Launch(ctx, s)
	if err != nil {
		t.Fatalf("%v\nstderr: %s", err, errs.String())
	}
	t.Cleanup(func() {
		pt.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("%s stderr: %s", s.Bin, errs.String())
		}
	})
	return pt
}

func bridgeServer(t testing.TB, bin, stateDir, orport, options string) *harness.PT {
	return launch(t, harness.Spec{Bin: bin, StateDir: stateDir, ServerTransports: "obfs4",
		BindAddr: "obfs4-127.0.0.1:0", ORPort: orport, ServerOptions: options})
}

// bridgeLine is the "Bridge obfs4 ..." line of the state directory's obfs4_bridgeline.txt.
func bridgeLine(t testing.TB, stateDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "obfs4_bridgeline.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Bridge obfs4 ") {
			return l
		}
	}
	t.Fatalf("obfs4_bridgeline.txt has no Bridge line:\n%s", b)
	return ""
}

// identity is the part of obfs4_state.json that makes a bridge what it is.
type identity struct {
	NodeID     string `json:"node-id"`
	PrivateKey string `json:"private-key"`
	DRBGSeed   string `json:"drbg-seed"`
	IATMode    int    `json:"iat-mode"`
}

func readIdentity(t testing.TB, stateDir string) identity {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "obfs4_state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		t.Fatalf("obfs4_state.json: %v\n%s", err, b)
	}
	if len(id.NodeID) != 40 || len(id.PrivateKey) != 64 || len(id.DRBGSeed) != 48 {
		t.Fatalf("obfs4_state.json: bad field lengths: %s", b)
	}
	return id
}

// TestObfs4StatePortability: a bridge created by one implementation and restarted as the
// other on the same state directory is the same bridge: same cert and iat-mode in SMETHOD
// ARGS, same bridge line, same state, and a client holding the old bridge line reaches it.
// iat-mode=1 is given only at the first start, so the second must have read it from state.
func TestObfs4StatePortability(t *testing.T) {
	us, peer := ourBin(t), obfs4proxyBin(t)
	for _, c := range []struct{ name, first, second string }{
		{"obfs4proxy-then-ptreactor", peer, us},
		{"ptreactor-then-obfs4proxy", us, peer},
	} {
		t.Run(c.name, func(t *testing.T) {
			tgt := target(t, false)
			state := filepath.Join(t.TempDir(), "bridge")
			if err := os.Mkdir(state, 0o700); err != nil {
				t.Fatal(err)
			}
			first := bridgeServer(t, c.first, state, tgt.Addr(), "obfs4:iat-mode=1")
			m1 := first.Methods["obfs4"]
			line1, id1 := bridgeLine(t, state), readIdentity(t, state)
			if m1.Arg("iat-mode") != "1" || id1.IATMode != 1 {
				t.Fatalf("first run: ARGS %v, state iat-mode %d; want iat-mode 1", m1.Args, id1.IATMode)
			}
			if !first.Stop(10 * time.Second) {
				t.Fatal("first bridge did not exit on stdin close")
			}

			second := bridgeServer(t, c.second, state, tgt.Addr(), "")
			m2 := second.Methods["obfs4"]
			if m2.Arg("cert") != m1.Arg("cert") || m2.Arg("iat-mode") != m1.Arg("iat-mode") {
				t.Errorf("SMETHOD ARGS changed across implementations: %v -> %v", m1.Args, m2.Args)
			}
			if line2 := bridgeLine(t, state); line2 != line1 {
				t.Errorf("bridge line changed:\n%s\n%s", line1, line2)
			}
			if id2 := readIdentity(t, state); id2 != id1 {
				t.Errorf("state changed: %+v -> %+v", id1, id2)
			}

			// A client of the first implementation, holding the first bridge line.
			cli := launch(t, harness.Spec{Bin: c.first, StateDir: t.TempDir(), ClientTransports: "obfs4"})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := harness.DialSOCKS(ctx, cli.Addr("obfs4"), second.Addr("obfs4"), harness.ObfsArgs(m1.Arg("cert"), 1))
			if err != nil {
				t.Fatalf("old bridge line against the restarted bridge: %v", err)
			}
			defer conn.Close()
			if err := bench.Xfer(deadlineConn(conn, 60*time.Second), 64<<10, 64<<10, 77); err != nil {
				t.Fatal(err)
			}
		})
	}
}
