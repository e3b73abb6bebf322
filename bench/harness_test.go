package bench

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
)

// obfs4proxy returns the path of the peer binary; its absence fails the test (make deps
// installs it).
func obfs4proxy(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("obfs4proxy")
	if err != nil {
		t.Fatalf("obfs4proxy not installed (make deps): %v", err)
	}
	return p
}

// TestObfs4proxyPair checks the harness itself against two obfs4proxy processes: launch,
// SMETHOD ARGS, SOCKS with tor's argument encoding, and a checked transfer both ways.
func TestObfs4proxyPair(t *testing.T) {
	bin := obfs4proxy(t)
	tgt, err := NewTarget(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := harness.StartPair(ctx, harness.PairSpec{ClientBin: bin, ServerBin: bin, Transport: "obfs4", Dir: t.TempDir(), ORPort: tgt.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	if c := p.Server.Methods["obfs4"].Arg("cert"); len(c) != 70 {
		t.Errorf("cert %q: want 70 chars", c)
	}
	if harness.IATArg(p.Server) != 0 {
		t.Errorf("iat-mode: %q", p.Server.Header)
	}
	c, err := p.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := Xfer(c, 1<<20, 3<<20, 42); err != nil {
		t.Fatal(err)
	}
}

// TestRefPT runs the reference forwarder as a pair, re-executing the test binary.
func TestRefPT(t *testing.T) {
	tgt, err := NewTarget(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := []string{RefPTEnv + "=1"}
	self := selfBinary(t)
	p, err := harness.StartPair(ctx, harness.PairSpec{ClientBin: self, ServerBin: self, ClientEnv: env, ServerEnv: env,
		Transport: "plain", Dir: t.TempDir(), ORPort: tgt.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		c, err := p.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := Xfer(c, 5<<20, 7<<20, uint64(i)+7); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if !p.Stop(5 * time.Second) {
		t.Error("reference forwarder did not exit on stdin close")
	}
}
