package ntor

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"golang.org/x/crypto/curve25519"
)

// reference is x/crypto's X25519, mapping its all-zero error to zero output.
func reference(scalar, point []byte) []byte {
	out, err := curve25519.X25519(scalar, point)
	if err != nil {
		return make([]byte, 32)
	}
	return out
}

func TestX25519RFC7748(t *testing.T) {
	for _, v := range []struct{ k, u, out string }{
		{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
		{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
	} {
		var k, u, out [32]byte
		hex.Decode(k[:], []byte(v.k))
		hex.Decode(u[:], []byte(v.u))
		x25519(&out, &k, &u)
		if got := hex.EncodeToString(out[:]); got != v.out {
			t.Errorf("X25519(%s, %s) = %s", v.k, v.u, got)
		}
	}
}

func TestX25519MatchesXCrypto(t *testing.T) {
	var k, u, out [32]byte
	for i := 0; i < 500; i++ {
		rand.Read(k[:])
		rand.Read(u[:])
		if i%3 == 0 {
			copy(u[:], reference(u[:], curve25519.Basepoint)) // a point on the curve
		}
		zero := x25519(&out, &k, &u)
		want := reference(k[:], u[:])
		if !bytes.Equal(out[:], want) {
			t.Fatalf("X25519(%x, %x) = %x, want %x", k, u, out, want)
		}
		if (zero == 1) != bytes.Equal(want, make([]byte, 32)) {
			t.Fatal("zero flag wrong")
		}
	}
	// Low-order inputs give zero and say so.
	u = [32]byte{1}
	if x25519(&out, &k, &u) != 1 {
		t.Fatal("low-order point not flagged")
	}
}

func FuzzX25519(f *testing.F) {
	f.Add(make([]byte, 32), make([]byte, 32))
	f.Add(bytes.Repeat([]byte{0xff}, 32), curve25519.Basepoint)
	f.Fuzz(func(t *testing.T, k, u []byte) {
		if len(k) != 32 || len(u) != 32 {
			return
		}
		var kk, uu, out [32]byte
		copy(kk[:], k)
		copy(uu[:], u)
		x25519(&out, &kk, &uu)
		if want := reference(k, u); !bytes.Equal(out[:], want) {
			t.Fatalf("got %x want %x", out, want)
		}
	})
}

func BenchmarkX25519(b *testing.B) {
	var k, u, out [32]byte
	rand.Read(k[:])
	copy(u[:], curve25519.Basepoint)
	for i := 0; i < b.N; i++ {
		x25519(&out, &k, &u)
	}
}

func BenchmarkXCryptoX25519(b *testing.B) {
	var k [32]byte
	rand.Read(k[:])
	for i := 0; i < b.N; i++ {
		curve25519.X25519(k[:], curve25519.Basepoint)
	}
}
