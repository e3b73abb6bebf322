package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// patternByte is byte k of seed's pattern, the slow way: the reference the fast fill and
// check are held to.
func patternByte(seed uint64, k int64) byte {
	return byte(patternWord(seed, uint64(k)/8) >> (8 * (k % 8)))
}

// TestPatternFillAndCheck fills and checks every length 0..40 at every offset 0..17 (each
// head and tail alignment), and longer runs at random offsets, against patternByte; then
// changes each byte of a run in turn and sees the check name exactly that byte.
func TestPatternFillAndCheck(t *testing.T) {
	const seed = 0x1234_5678_9abc_def1
	check := func(off int64, n int) {
		b := make([]byte, n)
		fillPattern(b, seed, off)
		for k := range b {
			if want := patternByte(seed, off+int64(k)); b[k] != want {
				t.Fatalf("fill off %d len %d: byte %d is %#x, want %#x", off, n, k, b[k], want)
			}
		}
		if j := patternMismatch(b, seed, off); j != -1 {
			t.Fatalf("off %d len %d: intact run reported wrong at %d", off, n, j)
		}
		for k := range b {
			b[k] ^= 0x20
			if j := patternMismatch(b, seed, off); j != k {
				t.Fatalf("off %d len %d: byte %d changed, check says %d", off, n, k, j)
			}
			b[k] ^= 0x20
		}
	}
	for off := range int64(18) {
		for n := range 41 {
			check(off, n)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		check(r.Int64N(1<<40), 1+r.IntN(3000))
	}
}

// TestPatternShiftsCaught: a run that lost, repeated or swapped one byte, or whose words
// are in another order, never passes as the pattern, whatever the place.
func TestPatternShiftsCaught(t *testing.T) {
	const seed, n = 77, 64
	good := make([]byte, n)
	fillPattern(good, seed, 0)
	for p := range n - 1 {
		for name, bad := range map[string][]byte{
			"lost":     append(append([]byte{}, good[:p]...), good[p+1:]...),
			"repeated": append(append([]byte{}, good[:p+1]...), good[p:n-1]...),
			"swapped":  append(append(append([]byte{}, good[:p]...), good[p+1], good[p]), good[p+2:]...),
		} {
			if name != "lost" && good[p] == good[p+1] {
				continue // two equal bytes in a row: no swap or repeat to see
			}
			if patternMismatch(bad, seed, 0) < 0 {
				t.Errorf("byte %d %s: passed the check", p, name)
			}
		}
	}
	// A word moved: every word is unique in its stream.
	moved := append([]byte{}, good...)
	copy(moved[8:16], good[16:24])
	copy(moved[16:24], good[8:16])
	if j := patternMismatch(moved, seed, 0); j < 8 || j >= 16 {
		t.Error("two swapped words passed the check")
	}
	// The same bytes at another offset (the upload's start among them: a tunnel that sent
	// the download back up fails), or of another seed, are not the pattern.
	if patternMismatch(good[8:], seed, 0) < 0 || patternMismatch(good, seed, upStart) < 0 || patternMismatch(good, seed+1, 0) < 0 {
		t.Error("a run checked at the wrong offset or seed passed")
	}
}

// FuzzPatternMismatch holds the check to the reference on any bytes at any offset: it
// names the first byte that is not the pattern's, or none when all are.
func FuzzPatternMismatch(f *testing.F) {
	f.Add(uint64(1), int64(0), []byte{})
	f.Add(uint64(3), int64(5), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})
	good := make([]byte, 37)
	fillPattern(good, 9, 3)
	f.Add(uint64(9), int64(3), good)
	good[30] ^= 1
	f.Add(uint64(9), int64(3), good)
	f.Add(uint64(1), int64(upStart+1), good)
	f.Fuzz(func(t *testing.T, seed uint64, off int64, b []byte) {
		if seed == 0 || off < 0 || off > upStart+1<<40 {
			return
		}
		want := -1
		for k := range b {
			if b[k] != patternByte(seed, off+int64(k)) {
				want = k
				break
			}
		}
		if got := patternMismatch(b, seed, off); got != want {
			t.Fatalf("check says %d, reference %d", got, want)
		}
	})
}

// TestXferRoundTrips runs checked transfers of many sizes and directions, one after another
// on one connection to a real Target, including lengths that end mid-word.
func TestXferRoundTrips(t *testing.T) {
	tgt, err := NewTarget(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	c, err := net.Dial("tcp", tgt.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	for i, x := range [][2]int64{{0, 0}, {1, 0}, {0, 1}, {514, 514}, {16 << 10, 16<<10 + 1}, {3<<20 + 5, 0}, {0, 3<<20 + 7}, {1 << 20, 5 << 20}} {
		for _, seed := range []uint64{0, uint64(i) + 100} {
			if err := Xfer(c, x[0], x[1], seed); err != nil {
				t.Fatalf("up %d down %d seed %d: %v", x[0], x[1], seed, err)
			}
		}
	}
	if errs := tgt.Errors(); len(errs) > 0 {
		t.Fatalf("target saw %v", errs)
	}
}

// damage is what a faulty tunnel does to one byte of one direction.
type damage int

const (
	flipped damage = iota
	lost
	repeated
	swapped
)

func (d damage) String() string { return [...]string{"flipped", "lost", "repeated", "swapped"}[d] }

// damagingProxy listens on 127.0.0.1 and forwards each connection to target, doing d to
// the byte at offset at of the upstream (client to target, header included) or downstream
// direction; everything else passes unchanged.
func damagingProxy(t *testing.T, target string, upstream bool, at int64, d damage) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				return
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			src, dst := net.Conn(c), net.Conn(s)
			if !upstream {
				src, dst = s, c
			}
			go func() { io.Copy(src, dst); src.Close(); dst.Close() }() // the other way
			go func() {
				defer src.Close()
				defer dst.Close()
				head := make([]byte, at+2)
				if _, err := io.ReadFull(src, head); err != nil {
					return
				}
				switch d {
				case flipped:
					head[at] ^= 0x80
				case lost:
					head = append(head[:at], head[at+1:]...)
				case repeated:
					head = append(head[:at+1], head[at:]...)
				case swapped:
					head[at], head[at+1] = head[at+1], head[at]
				}
				if _, err := dst.Write(head); err == nil {
					io.Copy(dst, src)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestXferCatchesDamage passes checked transfers through a proxy that flips, loses,
// repeats or swaps one byte, in either direction and at the start, middle or end of the
// payload, and needs every one to fail as corrupt (not as a timeout) at the client, and
// the target to have seen an upload's damage itself. The xfer header and the verdict are
// left alone: their damage fails transfers in other ways.
func TestXferCatchesDamage(t *testing.T) {
	tgt, err := NewTarget(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	const n = 300 << 10 // more than one read buffer
	for _, upstream := range []bool{true, false} {
		for _, d := range []damage{flipped, lost, repeated, swapped} {
			for _, at := range []int64{0, 131 << 10, n - 2} {
				seed := uint64(at) + 1 // 1 among them: every seed but 0 is checked both ways
				// Bytes equal to their neighbour cannot be swapped or repeated visibly.
				k := at
				if upstream {
					k += upStart
				}
				if (d == swapped || d == repeated) && patternByte(seed, k) == patternByte(seed, k+1) {
					t.Fatalf("test choice: bytes %d and %d of seed %d are equal", k, k+1, seed)
				}
				off := at
				if upstream {
					off += xferHeaderLen
				}
				addr := damagingProxy(t, tgt.Addr(), upstream, off, d)
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				before := len(tgt.Errors())
				err = Xfer(c, n, n, seed)
				c.Close()
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("upstream %v, byte %d %s: got %v, want a corrupt transfer", upstream, at, d, err)
					continue
				}
				if upstream {
					deadline := time.Now().Add(5 * time.Second)
					for len(tgt.Errors()) == before && time.Now().Before(deadline) {
						time.Sleep(10 * time.Millisecond)
					}
					if errs := tgt.Errors(); len(errs) == before || !errors.Is(errs[before], ErrCorrupt) {
						t.Errorf("upstream, byte %d %s: target recorded %v", at, d, errs[before:])
					}
				}
			}
		}
	}
}

// The pattern's fill and check, each 4.6 GB/s on one core of an AMD EPYC (go1.26), and
// what they replaced, 0.75 GB/s.
func BenchmarkPatternFill(b *testing.B) {
	buf := make([]byte, xferBufLen)
	b.SetBytes(int64(len(buf)))
	for i := 0; b.Loop(); i++ {
		fillPattern(buf, 7, int64(i)*int64(len(buf)))
	}
}

func BenchmarkPatternCheck(b *testing.B) {
	buf := make([]byte, xferBufLen)
	fillPattern(buf, 7, 0)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if patternMismatch(buf, 7, 0) >= 0 {
			b.Fatal("mismatch")
		}
	}
}

// BenchmarkChaCha8SHA256 is one ChaCha8 fill and one SHA-256 of the same bytes, the least
// the generator did per byte before the pattern (it did up to three of each).
func BenchmarkChaCha8SHA256(b *testing.B) {
	buf := make([]byte, xferBufLen)
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], 7)
	r := rand.NewChaCha8(key)
	h := sha256.New()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		r.Read(buf)
		h.Write(buf)
	}
}
