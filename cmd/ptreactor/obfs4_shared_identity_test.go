package main

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/internal/harness"
)

// TestObfs4SharedIdentity: two ptreactor bridges with one identity, the first given it as
// options and the second a copy of the first one's state file, as instances behind one
// balancer are. They write the same SMETHOD ARGS and the same bridge line, clients of both
// implementations holding that one line move data through either, and a prober's garbage
// is held by each for the same 30 s plus the identity's close delay.
func TestObfs4SharedIdentity(t *testing.T) {
	t.Parallel()
	tgt := target(t, false)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := bridgeServer(t, ourBin(t), dirA, tgt.Addr(), probeIdentity)
	state, err := os.ReadFile(filepath.Join(dirA, "obfs4_state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "obfs4_state.json"), state, 0o600); err != nil {
		t.Fatal(err)
	}
	b := bridgeServer(t, ourBin(t), dirB, tgt.Addr(), "")
	ma, mb := a.Methods["obfs4"], b.Methods["obfs4"]
	if ma.Arg("cert") != mb.Arg("cert") || ma.Arg("iat-mode") != mb.Arg("iat-mode") {
		t.Fatalf("SMETHOD ARGS differ: %v and %v", ma.Args, mb.Args)
	}
	if la, lb := bridgeLine(t, dirA), bridgeLine(t, dirB); la != lb {
		t.Fatalf("bridge lines differ:\n%s\n%s", la, lb)
	}

	cert := ma.Arg("cert")
	for _, bin := range []string{ourBin(t), obfs4proxyBin(t)} {
		cli := launch(t, harness.Spec{Bin: bin, StateDir: t.TempDir(), ClientTransports: "obfs4"})
		for _, srv := range []*harness.PT{a, b} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			conn, err := harness.DialSOCKS(ctx, cli.Addr("obfs4"), srv.Addr("obfs4"), harness.ObfsArgs(cert, 0))
			cancel()
			if err != nil {
				t.Fatalf("%s client, one bridge line, bridge %s: %v", filepath.Base(bin), srv.Addr("obfs4"), err)
			}
			err = bench.Xfer(deadlineConn(conn, 30*time.Second), 256<<10, 256<<10, 5)
			conn.Close()
			if err != nil {
				t.Fatalf("%s client through bridge %s: %v", filepath.Base(bin), srv.Addr("obfs4"), err)
			}
		}
	}

	garbage := make([]byte, 4096)
	rand.Read(garbage)
	var wg sync.WaitGroup
	for _, srv := range []*harness.PT{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := probe(srv.Addr("obfs4"), garbage, true); err != nil {
				t.Errorf("garbage to bridge %s: %v", srv.Addr("obfs4"), err)
			}
		}()
	}
	wg.Wait()
}
