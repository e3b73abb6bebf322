//lint:file-ignore SA1019 the reference the kernels are checked against.

package cipher

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/poly1305"
)

// TestPolyXCrypto compares every Poly1305 path with x/crypto's on lengths 0..4096 and
// random keys, plus keys and messages of all-ones bytes (the limbs' worst case).
func TestPolyXCrypto(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	var key [32]byte
	for n := 0; n <= 4096; n++ {
		copy(key[:], randBytes(r, 32))
		msg := unaligned(randBytes(r, n), n%7)
		if n%3 == 0 {
			for i := range key {
				key[i] = 0xff
			}
			for i := range msg {
				msg[i] = 0xff
			}
		}
		var want, got [16]byte
		poly1305.Sum(&want, msg, &key)
		polySumGeneric(&got, msg, &key)
		if got != want {
			t.Fatalf("generic, len %d: %x, want %x", n, got, want)
		}
		for _, v := range available() {
			v.polySum(&got, msg, &key)
			if got != want {
				t.Fatalf("%s, len %d: %x, want %x", v.name, n, got, want)
			}
			if !v.polyVerify(&want, msg, &key) {
				t.Fatalf("%s, len %d: verify failed", v.name, n)
			}
			bad := want
			bad[n%16] ^= 0x10
			if v.polyVerify(&bad, msg, &key) {
				t.Fatalf("%s, len %d: bad tag verified", v.name, n)
			}
		}
	}
}

// The poly1305-donna / NaCl vectors.
func TestPolyVectors(t *testing.T) {
	for _, tc := range []struct{ key, msg, tag string }{
		{"eea6a7251c1e72916d11c2cb214d3c252539121d8e234e652d651fa4c8cff880",
			"8e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74e355a5",
			"f3ffc7703f9400e52a7dfb4b3d3305d9"},
		{"0200000000000000000000000000000000000000000000000000000000000000",
			"ffffffffffffffffffffffffffffffff",
			"03000000000000000000000000000000"},
	} {
		key, msg, want := (*[32]byte)(mustHex(tc.key)), mustHex(tc.msg), mustHex(tc.tag)
		var got [16]byte
		polySumGeneric(&got, msg, key)
		if !bytes.Equal(got[:], want) {
			t.Fatalf("generic: %x, want %x", got, want)
		}
		for _, v := range available() {
			v.polySum(&got, msg, key)
			if !bytes.Equal(got[:], want) {
				t.Fatalf("%s: %x, want %x", v.name, got, want)
			}
		}
	}
}
