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

// TestMeasure runs each measurement of the load generator once, small, against the
// reference forwarder, so that the generator's own code is exercised by make test.
func TestMeasure(t *testing.T) {
	tgt, err := NewTarget(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := []string{RefPTEnv + "=1"}
	self := selfBinary(t)
	p, err := harness.StartPair(ctx, harness.PairSpec{ClientBin: self, ServerBin: self, ClientEnv: env, ServerEnv: env,
		Transport: "plain", Dir: t.TempDir(), ORPort: tgt.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	b, err := Bulk(ctx, p, 4, 16<<20)
	if err != nil || b.Bytes != 16<<20 || b.MBps() <= 0 {
		t.Fatalf("Bulk: %+v %v", b, err)
	}
	h, err := Handshakes(ctx, p, 4, 200*time.Millisecond)
	if err != nil || h.N == 0 {
		t.Fatalf("Handshakes: %+v %v", h, err)
	}
	i, err := Idle(ctx, p, 50, 0)
	if err != nil || i.ClientRSS == 0 || i.ServerRSS == 0 {
		t.Fatalf("Idle: %+v %v", i, err)
	}
	if n := tgt.Conns(); n != 0 {
		// Idle closed its tunnels; the stand-in sees them go shortly after.
		deadline := time.Now().Add(5 * time.Second)
		for tgt.Conns() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := tgt.Conns(); n != 0 {
			t.Errorf("%d connections left open at the target", n)
		}
	}
	if cpu, err := CPUTime(p.Server.Pid()); err != nil || cpu < 0 {
		t.Errorf("CPUTime: %v %v", cpu, err)
	}
}
