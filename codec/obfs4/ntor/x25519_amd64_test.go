//go:build gc && !purego

package ntor

import (
	"crypto/rand"
	"math/big"
	"testing"

	"golang.org/x/crypto/curve25519"
)

// limbsOf is n (below 2^256) as four little-endian words.
func limbsOf(n *big.Int) (x [4]uint64) {
	for i := range x {
		x[i] = new(big.Int).Rsh(n, uint(64*i)).Uint64()
	}
	return x
}

// bigOf is the value of four little-endian words.
func bigOf(x *[4]uint64) *big.Int {
	n := new(big.Int)
	for i := 3; i >= 0; i-- {
		n.Lsh(n, 64).Or(n, new(big.Int).SetUint64(x[i]))
	}
	return n
}

// edgeElements are limb patterns on the edges of the assembly's folds: the edge u of
// edgePoints, now with bit 255 kept, and random values below 2^256.
func edgeElements() []*big.Int {
	var ns []*big.Int
	for _, u := range edgePoints() {
		for i := 0; i < 16; i++ {
			u[i], u[31-i] = u[31-i], u[i]
		}
		ns = append(ns, new(big.Int).SetBytes(u[:]))
	}
	for i := 0; i < 64; i++ {
		var b [32]byte
		rand.Read(b[:])
		ns = append(ns, new(big.Int).SetBytes(b[:]))
	}
	return ns
}

// TestFe64Bytes checks the full reduction of every edge value below 2^256, [p, 2^256)
// included, against math/big.
func TestFe64Bytes(t *testing.T) {
	for _, n := range edgeElements() {
		x := limbsOf(n)
		var got [32]byte
		fe64Bytes(&got, &x)
		if want := leBytes(new(big.Int).Mod(n, fieldP)); got != want {
			t.Fatalf("fe64Bytes(%x) = %x, want %x", n, got, want)
		}
	}
}

// needADX fails nothing on a CPU without BMI2/ADX, where the assembly cannot run and
// x25519 never calls it; it says so in the test log.
func needADX(t *testing.T) {
	if !haveADX {
		t.Skip("this CPU lacks BMI2 or ADX: the assembly field operations cannot run here")
	}
}

// TestFieldADX checks feMulADX and feSquareADX on every pair of edge values against
// math/big: results congruent mod p and below 2^256 (held in four words by type), for
// inputs anywhere below 2^256.
func TestFieldADX(t *testing.T) {
	needADX(t)
	ns := edgeElements()
	for _, a := range ns {
		x := limbsOf(a)
		for _, b := range ns {
			y := limbsOf(b)
			var out [4]uint64
			feMulADX(&out, &x, &y)
			want := new(big.Int).Mod(new(big.Int).Mul(a, b), fieldP)
			if got := new(big.Int).Mod(bigOf(&out), fieldP); got.Cmp(want) != 0 {
				t.Fatalf("feMulADX(%x, %x) = %x, want %x mod p", a, b, bigOf(&out), want)
			}
		}
		for _, n := range []int{1, 2, 5, 100} {
			var out [4]uint64
			feSquareADX(&out, &x, n)
			e := new(big.Int).Lsh(big.NewInt(1), uint(n))
			want := new(big.Int).Exp(a, e, fieldP)
			if got := new(big.Int).Mod(bigOf(&out), fieldP); got.Cmp(want) != 0 {
				t.Fatalf("feSquareADX(%x, %d) = %x, want %x mod p", a, n, bigOf(&out), want)
			}
		}
		var inv [4]uint64
		invertADX(&inv, &x)
		want := new(big.Int).Exp(a, new(big.Int).Sub(fieldP, big.NewInt(2)), fieldP)
		if got := new(big.Int).Mod(bigOf(&inv), fieldP); got.Cmp(want) != 0 {
			t.Fatalf("invertADX(%x) = %x, want %x mod p", a, bigOf(&inv), want)
		}
	}
}

// TestX25519ADXAllocs: the assembly path allocates nothing (its state lives in its
// frame and the caller's stack).
func TestX25519ADXAllocs(t *testing.T) {
	needADX(t)
	var k, u, out [32]byte
	rand.Read(k[:])
	copy(u[:], curve25519.Basepoint)
	if n := testing.AllocsPerRun(100, func() { x25519ADX(&out, &k, &u) }); n != 0 {
		t.Fatalf("x25519ADX allocates %v times a call", n)
	}
}
