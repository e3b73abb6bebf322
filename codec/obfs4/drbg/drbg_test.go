package drbg

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand"
	"testing"
)

func vectorSeed() Seed {
	var s Seed
	for i := range s {
		s[i] = byte(i)
	}
	return s
}

// TestKAT checks the blocks that lyrebird's own drbg produces for seed 00..17 (notes §13).
func TestKAT(t *testing.T) {
	want := []string{"28b572b88c1ab776", "a8de197d8e7de4b3", "4d3a58549e36707c", "9c0614afb5a7a147"}
	masks := []uint16{0x28b5, 0xa8de, 0x4d3a, 0x9c06}
	d := New(vectorSeed())
	m := New(vectorSeed())
	for i, w := range want {
		b := d.NextBlock()
		if got := hex.EncodeToString(b[:]); got != w {
			t.Fatalf("block %d = %s, want %s", i+1, got, w)
		}
		if got := m.NextMask(); got != masks[i] {
			t.Fatalf("mask %d = %#04x, want %#04x", i+1, got, masks[i])
		}
	}
}

// TestCloseDelayKAT: a bridge with seed 00..17 waits Intn(60) = 24 extra seconds.
func TestCloseDelayKAT(t *testing.T) {
	if got := rand.New(New(vectorSeed())).Intn(60); got != 24 {
		t.Fatalf("Intn(60) = %d, want 24", got)
	}
}

// TestCumulative checks the construction against a plain re-hash of the whole message,
// far past the point where SipHash's length byte wraps.
func TestCumulative(t *testing.T) {
	seed := vectorSeed()
	var key [16]byte
	copy(key[:], seed[:16])
	msg := append([]byte(nil), seed[16:]...)
	d := New(seed)
	for i := 0; i < 300; i++ {
		b := d.NextBlock()
		want := Sum64(&key, msg)
		if got := binary.LittleEndian.Uint64(b[:]); got != want {
			t.Fatalf("block %d: %016x, want %016x", i+1, got, want)
		}
		msg = append(msg, b[:]...)
	}
}

func TestInt63(t *testing.T) {
	d, e := New(vectorSeed()), New(vectorSeed())
	for i := 0; i < 100; i++ {
		b := d.NextBlock()
		want := int64(binary.BigEndian.Uint64(b[:]) & (1<<63 - 1))
		if got := e.Int63(); got != want {
			t.Fatalf("Int63 %d = %x, want %x", i, got, want)
		}
	}
	e.Seed(42) // a no-op that must not disturb the stream
	b := d.NextBlock()
	if got := e.Int63(); got != int64(binary.BigEndian.Uint64(b[:])&(1<<63-1)) {
		t.Fatal("Seed changed the stream")
	}
}

// TestSipHashVectors checks the reference vectors of the SipHash paper (key 00..0f,
// messages 00, 00 01, …), which cover every tail length.
func TestSipHashVectors(t *testing.T) {
	// The first 16 of the 64 reference outputs (little-endian uint64s).
	want := []uint64{
		0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a, 0x85676696d7fb7e2d,
		0xcf2794e0277187b7, 0x18765564cd99a68d, 0xcbc9466e58fee3ce, 0xab0200f58b01d137,
		0x93f5f5799a932462, 0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
		0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee, 0xa129ca6149be45e5,
	}
	var key [16]byte
	for i := range key {
		key[i] = byte(i)
	}
	msg := make([]byte, 0, len(want))
	for i, w := range want {
		if got := Sum64(&key, msg); got != w {
			t.Errorf("len %d: %016x, want %016x", i, got, w)
		}
		msg = append(msg, byte(i))
	}
}

func TestSeedParsing(t *testing.T) {
	s := vectorSeed()
	p, err := SeedFromHex(s.Hex())
	if err != nil || p != s {
		t.Fatalf("hex round trip: %x, %v", p, err)
	}
	for _, bad := range []string{"", "00", s.Hex() + "00", s.Hex()[:46] + "zz"} {
		if _, err := SeedFromHex(bad); err == nil {
			t.Errorf("SeedFromHex(%q) accepted", bad)
		}
	}
	if _, err := SeedFromBytes(make([]byte, 23)); err == nil {
		t.Error("23-byte seed accepted")
	}
	if b, err := SeedFromBytes(s[:]); err != nil || !bytes.Equal(b[:], s[:]) {
		t.Error("SeedFromBytes")
	}
	if a, b := NewSeed(), NewSeed(); a == b {
		t.Error("two random seeds are equal")
	}
}

// FuzzSipHashStream: writing a message in arbitrary pieces gives the one-shot digest, and
// a digest taken midway does not disturb the state.
func FuzzSipHashStream(f *testing.F) {
	f.Add([]byte("obfs4"), []byte{3, 1, 7})
	f.Add(make([]byte, 300), []byte{8, 8, 0, 255})
	f.Fuzz(func(t *testing.T, msg, cuts []byte) {
		var key [16]byte
		copy(key[:], "ptreactor drbg k")
		s := NewSipHash(&key)
		rest := msg
		for _, c := range cuts {
			n := int(c) % (len(rest) + 1)
			s.Write(rest[:n])
			s.Sum64()
			rest = rest[n:]
		}
		s.Write(rest)
		if got, want := s.Sum64(), Sum64(&key, msg); got != want {
			t.Fatalf("streamed %016x, one-shot %016x", got, want)
		}
	})
}

// FuzzSeedFromHex: the state-file parser never panics and round-trips what it accepts.
func FuzzSeedFromHex(f *testing.F) {
	f.Add(vectorSeed().Hex())
	f.Add("")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		seed, err := SeedFromHex(s)
		if err != nil {
			return
		}
		if p, err := SeedFromHex(seed.Hex()); err != nil || p != seed {
			t.Fatalf("round trip of %q failed", s)
		}
	})
}

func BenchmarkNextBlock(b *testing.B) {
	d := New(vectorSeed())
	for i := 0; i < b.N; i++ {
		d.NextBlock()
	}
}

func BenchmarkIntn(b *testing.B) {
	r := rand.New(New(vectorSeed()))
	for i := 0; i < b.N; i++ {
		r.Intn(1449)
	}
}
