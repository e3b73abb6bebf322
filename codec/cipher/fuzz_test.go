//lint:file-ignore SA1019 the references the kernels are checked against.

package cipher

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/poly1305"
	"golang.org/x/crypto/salsa20/salsa"
)

// FuzzKeyStream runs every variant on the same key, nonce, starting block counter and
// input and compares each with x/crypto's salsa.XORKeyStream; offsets in [0, 64) make
// the slices unaligned.
func FuzzKeyStream(f *testing.F) {
	f.Add([]byte("key"), []byte("nonce"), uint64(0), []byte("hello"), uint8(0))
	f.Add(make([]byte, 32), make([]byte, 8), uint64(1<<32-3), make([]byte, 1000), uint8(3))
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, 8), ^uint64(0)>>1, make([]byte, 4097), uint8(63))
	f.Fuzz(func(t *testing.T, k, n []byte, counter uint64, data []byte, off uint8) {
		if len(data) > 1<<14 {
			data = data[:1<<14]
		}
		// x/crypto's counter is 64 bits and wraps silently; stay clear of 2^64.
		counter &= 1<<63 - 1
		var key [32]byte
		copy(key[:], k)
		var ctr [16]byte
		copy(ctr[:8], n)
		binary.LittleEndian.PutUint64(ctr[8:], counter)
		want := make([]byte, len(data))
		salsa.XORKeyStream(want, data, &ctr, &key)
		in := unaligned(data, int(off%64))
		for _, v := range available() {
			var st [16]uint32
			initState(&st, &key, binary.LittleEndian.Uint32(ctr[0:]), binary.LittleEndian.Uint32(ctr[4:]))
			st[8], st[9] = uint32(counter), uint32(counter>>32)
			out := unaligned(make([]byte, len(data)), int(off/2%64))
			v.xorKeyStream(out, in, &st)
			if !bytes.Equal(out, want) {
				t.Fatalf("%s: keystream differs from x/crypto (len %d, counter %#x)", v.name, len(data), counter)
			}
			if got, want := uint64(st[9])<<32|uint64(st[8]), counter+uint64(len(data)+63)/64; got != want {
				t.Fatalf("%s: counter %#x, want %#x", v.name, got, want)
			}
		}
	})
}

// FuzzFrameBox seals msg with every variant and compares with secretbox.Seal, then
// opens both the real frame and the fuzzer's arbitrary bytes with every variant and
// requires the same verdict and plaintext as secretbox.Open.
func FuzzFrameBox(f *testing.F) {
	f.Add([]byte("key"), []byte("prefix"), uint64(1), []byte("payload"), []byte("not a frame at all"))
	f.Add(make([]byte, 32), make([]byte, 16), uint64(0), make([]byte, 1448), make([]byte, 16))
	f.Add(bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 16), ^uint64(0), make([]byte, 480), []byte{})
	f.Fuzz(func(t *testing.T, k, p []byte, counter uint64, msg, junk []byte) {
		if len(msg) > 1<<13 {
			msg = msg[:1<<13]
		}
		var key [32]byte
		var nonce [24]byte
		copy(key[:], k)
		copy(nonce[:16], p)
		binary.BigEndian.PutUint64(nonce[16:], counter)
		want := secretbox.Seal(nil, msg, &nonce, &key)
		wantJunk, okJunk := secretbox.Open(nil, junk, &nonce, &key)
		for _, v := range available() {
			b := newBox(v, &key, (*[16]byte)(nonce[:16]))
			if got := b.Seal(nil, counter, msg); !bytes.Equal(got, want) {
				t.Fatalf("%s: Seal differs from secretbox (len %d)", v.name, len(msg))
			}
			if got, err := b.Open(nil, counter, want); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("%s: Open of a sealed frame: %v", v.name, err)
			}
			got, err := b.Open(nil, counter, junk)
			if (err == nil) != okJunk || !bytes.Equal(got, wantJunk) {
				t.Fatalf("%s: Open of arbitrary bytes disagrees with secretbox (err %v, secretbox ok %v)", v.name, err, okJunk)
			}
		}
	})
}

// FuzzPoly compares every Poly1305 path with x/crypto's.
func FuzzPoly(f *testing.F) {
	f.Add([]byte("key"), []byte("message"))
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, 200))
	f.Add(make([]byte, 32), make([]byte, 1448))
	f.Fuzz(func(t *testing.T, k, msg []byte) {
		var key [32]byte
		copy(key[:], k)
		var want, got [16]byte
		poly1305.Sum(&want, msg, &key)
		polySumGeneric(&got, msg, &key)
		if got != want {
			t.Fatalf("generic differs from x/crypto (len %d)", len(msg))
		}
		for _, v := range available() {
			v.polySum(&got, msg, &key)
			if got != want {
				t.Fatalf("%s differs from x/crypto (len %d)", v.name, len(msg))
			}
		}
	})
}
