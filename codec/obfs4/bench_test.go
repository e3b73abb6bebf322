package obfs4

import (
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec"
)

// cpuMeter reports, as cpu-ns/op, the CPU time the whole process used while the timer
// ran, divided by b.N. Unlike ns/op it counts work done beside the benchmark's goroutine,
// the refill of the keypair stock among it, and it is less disturbed by other processes.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
	ok    bool
}

func startCPU(b *testing.B) cpuMeter {
	b.ResetTimer()
	start, ok := processCPU()
	return cpuMeter{b: b, start: start, ok: ok}
}

func (m cpuMeter) stop() {
	m.b.StopTimer()
	if end, ok := processCPU(); m.ok && ok {
		m.b.ReportMetric(float64(end-m.start)/float64(m.b.N), "cpu-ns/op")
	}
}

// waitStocked waits, for at most 10 s, until the process's keypair stock is full, so a
// benchmark starts from the state a server has after idle time.
func waitStocked(b *testing.B) {
	deadline := time.Now().Add(10 * time.Second)
	for keypairs.Len() < keypairs.Cap() {
		keypairs.Refill()
		if time.Now().After(deadline) {
			b.Fatalf("keypair stock at %d of %d after 10 s", keypairs.Len(), keypairs.Cap())
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkHandshake is one full handshake, both sides (keys, MACs, ntor, KDF, reply).
func BenchmarkHandshake(b *testing.B) {
	srv := newTestServer(b, nil, nil)
	waitStocked(b)
	cpu := startCPU(b)
	for i := 0; i < b.N; i++ {
		c := clientFor(b, srv, "0", nil)
		s := srv.NewWire()
		handshake(b, c, s, 0)
	}
	cpu.stop()
}

// BenchmarkServerHandshake is the bridge's share: NewWire (key generation) and the parse
// of a request and building of the reply.
func BenchmarkServerHandshake(b *testing.B) {
	srv := newTestServer(b, nil, nil)
	reqs := make([][]byte, b.N)
	for i := range reqs {
		c := clientFor(b, srv, "0", nil)
		reqs[i], _ = c.Start(nil)
	}
	waitStocked(b)
	cpu := startCPU(b)
	var out codec.Output
	for i := 0; i < b.N; i++ {
		s := srv.NewWire()
		out.Reply = out.Reply[:0]
		if _, err := s.Unwrap(reqs[i], &out); err != nil || !s.Ready() {
			b.Fatal(err)
		}
	}
	cpu.stop()
}

// BenchmarkClientHandshake is the client's share: Start (keypair, padding, request) and
// the parse of the reply (ntor, KDF). The server's part runs with the timer stopped.
func BenchmarkClientHandshake(b *testing.B) {
	srv := newTestServer(b, nil, nil)
	var out codec.Output
	for i := 0; i < b.N; i++ {
		c := clientFor(b, srv, "0", nil)
		req, err := c.Start(nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s := srv.NewWire()
		out.Reply = out.Reply[:0]
		if _, err := s.Unwrap(req, &out); err != nil || !s.Ready() {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := c.Unwrap(out.Reply, &codec.Output{}); err != nil || !c.Ready() {
			b.Fatal(err)
		}
	}
}

// The data phase must not allocate per call once buffers have grown: the wire adds
// nothing to the framing's own cost.
func TestDataPhaseAllocs(t *testing.T) {
	srv := newTestServer(t, nil, nil)
	c := clientFor(t, srv, "0", nil)
	s := srv.NewWire()
	handshake(t, c, s, 0)
	msg := make([]byte, 16384)
	dst := make([]byte, 0, 64<<10)
	out := codec.Output{Payload: make([]byte, 0, 64<<10)}
	allocs := testing.AllocsPerRun(100, func() {
		wire, err := c.Wrap(dst[:0], msg)
		if err != nil {
			t.Fatal(err)
		}
		out.Payload = out.Payload[:0]
		n, err := s.Unwrap(wire, &out)
		if err != nil || n != len(wire) || len(out.Payload) != len(msg) {
			t.Fatal(n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per Wrap+Unwrap", allocs)
	}
}
