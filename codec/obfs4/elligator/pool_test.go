package elligator

import (
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"
)

// waitIdle waits, for at most 10 s, until no refill runs. A Get that leaves the pool low
// has started one before it returns, so afterwards the pool is either above its low mark
// untouched or full.
func waitIdle(t *testing.T, p *Pool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.refilling.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("refill still running after 10 s, pool holds %d of %d", p.Len(), p.Cap())
		}
		time.Sleep(time.Millisecond)
	}
}

// waitFull waits for the refill to end and fails unless the pool is then full.
func waitFull(t *testing.T, p *Pool) {
	t.Helper()
	waitIdle(t, p)
	if p.Len() != p.Cap() {
		t.Fatalf("refill ended with %d of %d", p.Len(), p.Cap())
	}
}

// checkKeypair fails unless kp is a valid keypair: its representative decodes to its
// public key, which is the dirty public key of its secret.
func checkKeypair(t *testing.T, kp *Keypair) {
	t.Helper()
	var pub, dirty [Size]byte
	Decode(&pub, &kp.Representative)
	DirtyPublic(&dirty, &kp.Private)
	if pub != kp.Public || dirty != kp.Public {
		t.Fatalf("bad keypair %x", kp.Private)
	}
}

// A fresh pool is empty; Get still serves (inline) and starts a refill, which fills the
// pool to its bound and no further.
func TestPoolEmptyFallbackAndBound(t *testing.T) {
	p := NewPool(rand.Reader, 8)
	if p.Len() != 0 || p.Cap() != 8 {
		t.Fatalf("fresh pool holds %d of %d", p.Len(), p.Cap())
	}
	kp, err := p.Get()
	if err != nil {
		t.Fatal(err)
	}
	checkKeypair(t, kp)
	waitFull(t, p)
	p.Refill() // full: must not start anything
	if p.refilling.Load() {
		t.Fatal("refill started on a full pool")
	}
}

// After the pool is drained it fills again, on its own, to its bound.
func TestPoolRefills(t *testing.T) {
	p := NewPool(rand.Reader, 16)
	p.Refill()
	waitFull(t, p)
	for range 3 {
		for p.Len() > 0 {
			kp, err := p.Get()
			if err != nil {
				t.Fatal(err)
			}
			checkKeypair(t, kp)
		}
		waitFull(t, p)
	}
}

// No keypair is handed out twice: many draws through drains and refills are all
// distinct, and so are the representatives that go on the wire.
func TestPoolNeverReuses(t *testing.T) {
	p := NewPool(rand.Reader, 4)
	secrets := make(map[[Size]byte]bool)
	reprs := make(map[[Size]byte]bool)
	for i := range 400 {
		kp, err := p.Get()
		if err != nil {
			t.Fatal(err)
		}
		if secrets[kp.Private] || reprs[kp.Representative] {
			t.Fatalf("draw %d repeats an earlier keypair", i)
		}
		secrets[kp.Private], reprs[kp.Representative] = true, true
		if i%50 == 0 {
			waitIdle(t, p) // so draws come from the stock, not only inline
		}
	}
}

// Concurrent draws (run with -race) each get their own keypair, and the stock never
// exceeds its bound.
func TestPoolConcurrentDraws(t *testing.T) {
	p := NewPool(rand.Reader, 8)
	const workers, each = 8, 40
	got := make([][]*Keypair, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				kp, err := p.Get()
				if err != nil {
					t.Error(err)
					return
				}
				if p.Len() > p.Cap() {
					t.Errorf("pool holds %d, bound %d", p.Len(), p.Cap())
				}
				got[w] = append(got[w], kp)
			}
		}()
	}
	wg.Wait()
	seen := make(map[[Size]byte]bool)
	for _, kps := range got {
		for _, kp := range kps {
			if seen[kp.Private] {
				t.Fatal("two draws got the same keypair")
			}
			seen[kp.Private] = true
			checkKeypair(t, kp)
		}
	}
	if len(seen) != workers*each {
		t.Fatalf("%d keypairs from %d draws", len(seen), workers*each)
	}
	waitIdle(t, p)
	if p.Len() < p.low || p.Len() > p.Cap() {
		t.Fatalf("settled at %d, low mark %d, bound %d", p.Len(), p.low, p.Cap())
	}
}

// failingReader fails every read.
type failingReader struct{}

var errSource = errors.New("source failed")

func (failingReader) Read([]byte) (int, error) { return 0, errSource }

// A failing source is reported by Get, and the refill gives up rather than spin.
func TestPoolSourceError(t *testing.T) {
	p := NewPool(failingReader{}, 4)
	if _, err := p.Get(); !errors.Is(err, errSource) {
		t.Fatalf("Get: %v", err)
	}
	waitIdle(t, p)
	if p.Len() != 0 {
		t.Fatalf("pool holds %d from a failing source", p.Len())
	}
}

// BenchmarkPoolGet is a draw from a stock kept full between draws, the cost a handshake
// sees when the loop has had idle time.
func BenchmarkPoolGet(b *testing.B) {
	p := NewPool(rand.Reader, 64)
	p.Refill()
	for b.Loop() {
		if p.Len() == 0 {
			b.StopTimer()
			for p.refilling.Load() {
				time.Sleep(time.Millisecond)
			}
			b.StartTimer()
		}
		if _, err := p.Get(); err != nil {
			b.Fatal(err)
		}
	}
}
