package bench

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// The tunnel benchmarks push data through real process pairs, one tunnel, bridge to
// client, so that `go test -bench` gives a quick bytes-per-second comparison without the
// load generator's full report. b.N counts 1 MiB transfers.

func benchPair(b *testing.B, spec harness.PairSpec) {
	tgt, err := NewTarget(false)
	if err != nil {
		b.Fatal(err)
	}
	defer tgt.Close()
	spec.Dir, spec.ORPort = b.TempDir(), tgt.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := harness.StartPair(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	c, err := p.Dial(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const chunk = 1 << 20
	b.SetBytes(chunk)
	b.ResetTimer()
	for b.Loop() {
		if err := Xfer(c, 0, chunk, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTunnelPlainPtreactor(b *testing.B) {
	bin := pttest.Binary(b)
	benchPair(b, harness.PairSpec{ClientBin: bin, ServerBin: bin, Transport: "plain"})
}

func BenchmarkTunnelPlainReference(b *testing.B) {
	self, env := selfBinary(b), []string{RefPTEnv + "=1"}
	benchPair(b, harness.PairSpec{ClientBin: self, ServerBin: self, ClientEnv: env, ServerEnv: env, Transport: "plain"})
}

func BenchmarkTunnelObfs4Ptreactor(b *testing.B) {
	bin := pttest.Binary(b)
	benchPair(b, harness.PairSpec{ClientBin: bin, ServerBin: bin, Transport: "obfs4"})
}

func BenchmarkTunnelObfs4Obfs4proxy(b *testing.B) {
	bin, err := exec.LookPath("obfs4proxy")
	if err != nil {
		b.Fatal(err)
	}
	benchPair(b, harness.PairSpec{ClientBin: bin, ServerBin: bin, Transport: "obfs4"})
}
