package ntor

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"testing"

	"golang.org/x/crypto/curve25519"
)

// eachVariant runs f for every x25519 this CPU and build can run.
func eachVariant(t *testing.T, f func(t *testing.T, v variant)) {
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) { f(t, v) })
	}
}

// reference is x/crypto's X25519, mapping its all-zero error to zero output.
func reference(scalar, point []byte) []byte {
	out, err := curve25519.X25519(scalar, point)
	if err != nil {
		return make([]byte, 32)
	}
	return out
}

// fieldP is 2^255-19.
var fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

// leBytes is n (below 2^256) as 32 little-endian bytes.
func leBytes(n *big.Int) (b [32]byte) {
	n.FillBytes(b[:])
	for i := 0; i < 16; i++ {
		b[i], b[31-i] = b[31-i], b[i]
	}
	return b
}

// edgePoints are u encodings where a limb, a fold or the canonical form is on an edge:
// 0, 1, p-1, p, p+1, 2^255-1, values with bit 255 set (ignored), the two points of
// order 8, limbs of all ones, and 9 (the base point).
func edgePoints() [][32]byte {
	one := big.NewInt(1)
	two255 := new(big.Int).Lsh(one, 255)
	two256 := new(big.Int).Lsh(one, 256)
	var ns []*big.Int
	for _, v := range []int64{0, 1, 2, 9, 19, 38} {
		ns = append(ns, big.NewInt(v))
	}
	for _, base := range []*big.Int{fieldP, two255, two256} {
		for _, d := range []int64{-39, -38, -20, -19, -18, -1, 0, 1, 18, 19} {
			n := new(big.Int).Add(base, big.NewInt(d))
			if n.Sign() >= 0 && n.Cmp(two256) < 0 {
				ns = append(ns, n)
			}
		}
	}
	for _, h := range orderEight {
		n, _ := new(big.Int).SetString(h, 16)
		ns = append(ns, n, new(big.Int).Add(n, two255))
	}
	var out [][32]byte
	for _, n := range ns {
		out = append(out, leBytes(n))
	}
	// Limbs of all ones and all zeros in every pattern.
	for m := 0; m < 16; m++ {
		var b [32]byte
		for l := 0; l < 4; l++ {
			if m>>l&1 == 1 {
				copy(b[8*l:], bytes.Repeat([]byte{0xff}, 8))
			}
		}
		out = append(out, b)
	}
	return out
}

func TestX25519RFC7748(t *testing.T) {
	eachVariant(t, func(t *testing.T, v variant) {
		for _, tv := range []struct{ k, u, out string }{
			{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
				"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
				"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
			{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
				"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
				"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
		} {
			k, u := hexArray(t, tv.k), hexArray(t, tv.u)
			var out [32]byte
			v.x25519(&out, &k, &u)
			if got := hex.EncodeToString(out[:]); got != tv.out {
				t.Errorf("X25519(%s, %s) = %s", tv.k, tv.u, got)
			}
		}
	})
}

// TestX25519RFC7748Iterated runs section 5.2's iteration (k = X25519(k, u), u = old k)
// from k = u = 9 to its 1,000th value.
func TestX25519RFC7748Iterated(t *testing.T) {
	eachVariant(t, func(t *testing.T, v variant) {
		k, u := [32]byte{9}, [32]byte{9}
		for i := 1; i <= 1000; i++ {
			var r [32]byte
			v.x25519(&r, &k, &u)
			u, k = k, r
			var want string
			switch i {
			case 1:
				want = "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
			case 1000:
				want = "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"
			default:
				continue
			}
			if got := hex.EncodeToString(k[:]); got != want {
				t.Fatalf("after %d iterations k = %s, want %s", i, got, want)
			}
		}
	})
}

func TestX25519MatchesXCrypto(t *testing.T) {
	eachVariant(t, func(t *testing.T, v variant) {
		var k, u, out [32]byte
		for i := 0; i < 3000; i++ {
			rand.Read(k[:])
			rand.Read(u[:])
			if i%3 == 0 {
				copy(u[:], reference(u[:], curve25519.Basepoint)) // a point on the curve
			}
			zero := v.x25519(&out, &k, &u)
			want := reference(k[:], u[:])
			if !bytes.Equal(out[:], want) {
				t.Fatalf("X25519(%x, %x) = %x, want %x", k, u, out, want)
			}
			if (zero == 1) != bytes.Equal(want, make([]byte, 32)) {
				t.Fatal("zero flag wrong")
			}
		}
	})
}

// orderEight are the u of the two points of order 8, as big-endian hex.
var orderEight = []string{
	"00b8495f16056286fdb1329ceb8d09da6ac49ff1fae35616aeb8413b7c7aebe0",
	"57119fd0dd4e22d8868e1c58c45c44045bef839c55b1d0b1248c50a3bc959c5f",
}

// lowOrder says whether u (bit 255 ignored, reduced mod p) is a point whose order divides
// 8 on the curve or 4 on the twist: 0, 1, p-1 and the order-8 pair, the u every clamped
// scalar (a multiple of 8) takes to zero, and the only ones.
func lowOrder(u [32]byte) bool {
	for i := 0; i < 16; i++ {
		u[i], u[31-i] = u[31-i], u[i]
	}
	u[0] &= 0x7f
	n := new(big.Int).Mod(new(big.Int).SetBytes(u[:]), fieldP)
	if n.Cmp(big.NewInt(1)) <= 0 || n.Cmp(new(big.Int).Sub(fieldP, big.NewInt(1))) == 0 {
		return true
	}
	for _, h := range orderEight {
		if o, _ := new(big.Int).SetString(h, 16); n.Cmp(o) == 0 {
			return true
		}
	}
	return false
}

// TestX25519EdgePoints runs every edge u with edge and random scalars against x/crypto,
// and checks that exactly the low-order ones give zero and say so.
func TestX25519EdgePoints(t *testing.T) {
	eachVariant(t, func(t *testing.T, v variant) {
		scalars := [][32]byte{{}, [32]byte(bytes.Repeat([]byte{0xff}, 32))}
		for i := 0; i < 8; i++ {
			var k [32]byte
			rand.Read(k[:])
			scalars = append(scalars, k)
		}
		low := 0
		for _, u := range edgePoints() {
			if lowOrder(u) {
				low++
			}
			for _, k := range scalars {
				var out [32]byte
				zero := v.x25519(&out, &k, &u)
				if want := reference(k[:], u[:]); !bytes.Equal(out[:], want) {
					t.Fatalf("X25519(%x, %x) = %x, want %x", k, u, out, want)
				}
				if (zero == 1) != lowOrder(u) {
					t.Fatalf("X25519(%x, %x) = %x, zero = %d", k, u, out, zero)
				}
			}
		}
		// 0, 1, p-1 as 0..2, p..p+1, 2^255-20.., 2^255+0..1, 2^256-20..; the order-8
		// pair with and without bit 255; the all-zero limb pattern.
		if low != 19 {
			t.Fatalf("%d low-order edge points, want 19", low)
		}
	})
}

// FuzzX25519 checks every variant against x/crypto.
func FuzzX25519(f *testing.F) {
	f.Add(make([]byte, 32), make([]byte, 32))
	f.Add(bytes.Repeat([]byte{0xff}, 32), curve25519.Basepoint)
	// Inputs of other lengths are cut or zero-padded to 32 bytes, so every run computes.
	f.Fuzz(func(t *testing.T, k, u []byte) {
		var kk, uu, out [32]byte
		copy(kk[:], k)
		copy(uu[:], u)
		want := reference(kk[:], uu[:])
		for _, v := range variants() {
			if v.x25519(&out, &kk, &uu); !bytes.Equal(out[:], want) {
				t.Fatalf("%s: got %x want %x", v.name, out, want)
			}
		}
	})
}

func BenchmarkX25519(b *testing.B) {
	var k, u, out [32]byte
	rand.Read(k[:])
	copy(u[:], curve25519.Basepoint)
	for _, v := range variants() {
		b.Run(v.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				v.x25519(&out, &k, &u)
			}
		})
	}
}

func BenchmarkXCryptoX25519(b *testing.B) {
	var k [32]byte
	rand.Read(k[:])
	for i := 0; i < b.N; i++ {
		curve25519.X25519(k[:], curve25519.Basepoint)
	}
}
