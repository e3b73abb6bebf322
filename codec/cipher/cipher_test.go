//lint:file-ignore SA1019 the reference the kernels are checked against.

package cipher

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/salsa20"
	"golang.org/x/crypto/salsa20/salsa"
)

// eachVariant runs f for every variant this CPU and build can run.
func eachVariant(t *testing.T, f func(t *testing.T, v *variant)) {
	for _, v := range available() {
		t.Run(v.name, func(t *testing.T) { f(t, v) })
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// unaligned returns a copy of b that starts off at an odd offset inside a larger buffer.
func unaligned(b []byte, off int) []byte {
	buf := make([]byte, len(b)+off+64)
	s := buf[off : off+len(b)]
	copy(s, b)
	return s
}

// TestKeyStreamXCrypto compares every variant with x/crypto's salsa20 on every length
// 0..4096, 8- and 24-byte nonces, unaligned in and out, and in place.
func TestKeyStreamXCrypto(t *testing.T) {
	eachVariant(t, func(t *testing.T, v *variant) {
		r := rand.New(rand.NewPCG(1, uint64(len(v.name))))
		var key [32]byte
		for n := 0; n <= 4096; n++ {
			copy(key[:], randBytes(r, 32))
			nonce := randBytes(r, 8+16*(n%2))
			in := unaligned(randBytes(r, n), n%17)
			want := make([]byte, n)
			salsa20.XORKeyStream(want, in, nonce, &key)

			var st [16]uint32
			if len(nonce) == 8 {
				initState(&st, &key, binary.LittleEndian.Uint32(nonce), binary.LittleEndian.Uint32(nonce[4:]))
			} else {
				var sub [32]byte
				hsalsa20(&sub, &key, (*[16]byte)(nonce))
				initState(&st, &sub, binary.LittleEndian.Uint32(nonce[16:]), binary.LittleEndian.Uint32(nonce[20:]))
			}
			out := unaligned(make([]byte, n), (n+5)%13)
			st0 := st
			v.xorKeyStream(out, in, &st)
			if !bytes.Equal(out, want) {
				t.Fatalf("len %d nonce %d: keystream differs from x/crypto", n, len(nonce))
			}
			if c := uint64(st[9])<<32 | uint64(st[8]); c != uint64(n+63)/64 {
				t.Fatalf("len %d: counter at %d, want %d", n, c, (n+63)/64)
			}
			// In place.
			v.xorKeyStream(in, in, &st0)
			if !bytes.Equal(in, want) {
				t.Fatalf("len %d: in-place keystream differs", n)
			}
		}
	})
}

// TestCounterCarry starts the block counter just below 2^32 (and just below 2^64) and
// checks the 32-bit carry into the high word against x/crypto's salsa.XORKeyStream,
// which carries over all 64 bits of the counter.
func TestCounterCarry(t *testing.T) {
	eachVariant(t, func(t *testing.T, v *variant) {
		r := rand.New(rand.NewPCG(2, 2))
		var key [32]byte
		copy(key[:], randBytes(r, 32))
		for _, hi := range []uint32{0, 7} {
			for back := 0; back <= 20; back++ {
				for _, n := range []int{1, 63, 64, 65, 255, 256, 511, 512, 513, 1000, 2048} {
					lo := uint32(1<<32 - back)
					var ctr [16]byte
					copy(ctr[:8], key[:8])
					binary.LittleEndian.PutUint32(ctr[8:], lo)
					binary.LittleEndian.PutUint32(ctr[12:], hi)
					in := randBytes(r, n)
					want := make([]byte, n)
					salsa.XORKeyStream(want, in, &ctr, &key)

					var st [16]uint32
					initState(&st, &key, binary.LittleEndian.Uint32(key[0:]), binary.LittleEndian.Uint32(key[4:]))
					st[8], st[9] = lo, hi
					out := make([]byte, n)
					v.xorKeyStream(out, in, &st)
					if !bytes.Equal(out, want) {
						t.Fatalf("hi %d lo 2^32-%d len %d: differs from x/crypto", hi, back, n)
					}
					if got, want := uint64(st[9])<<32|uint64(st[8]), uint64(hi)<<32+uint64(lo)+uint64(n+63)/64; got != want {
						t.Fatalf("counter %#x, want %#x", got, want)
					}
				}
			}
		}
	})
}

func TestHSalsa20(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for i := 0; i < 1000; i++ {
		var key, got, want [32]byte
		var in [16]byte
		copy(key[:], randBytes(r, 32))
		copy(in[:], randBytes(r, 16))
		hsalsa20(&got, &key, &in)
		salsa.HSalsa20(&want, &in, &key, &salsa.Sigma)
		if got != want {
			t.Fatalf("hsalsa20 differs from x/crypto")
		}
	}
}

// The NaCl crypto_secretbox test vector (tests/secretbox.c), the one libsodium keeps.
func TestSecretboxVector(t *testing.T) {
	key := mustHex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
	nonce := mustHex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
	msg := mustHex("be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705")
	want := mustHex("f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74e355a5")
	counter := binary.BigEndian.Uint64(nonce[16:])
	eachVariant(t, func(t *testing.T, v *variant) {
		b := newBox(v, (*[32]byte)(key), (*[16]byte)(nonce))
		if got := b.Seal(nil, counter, msg); !bytes.Equal(got, want) {
			t.Fatalf("Seal:\n got %x\nwant %x", got, want)
		}
		got, err := b.Open(nil, counter, want)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("Open: %v", err)
		}
	})
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestFrameBoxSecretbox checks Seal and Open of every variant against secretbox on
// every length 0..4096, unaligned, with dst prefixes, in-place Seal and Open, and tampering.
func TestFrameBoxSecretbox(t *testing.T) {
	eachVariant(t, func(t *testing.T, v *variant) {
		r := rand.New(rand.NewPCG(4, uint64(len(v.name))))
		var key [32]byte
		var nonce [24]byte
		for n := 0; n <= 4096; n++ {
			copy(key[:], randBytes(r, 32))
			copy(nonce[:], randBytes(r, 24))
			counter := r.Uint64()
			switch n % 5 {
			case 0:
				counter = 0
			case 1:
				counter = ^uint64(0)
			}
			binary.BigEndian.PutUint64(nonce[16:], counter)
			msg := unaligned(randBytes(r, n), n%11)
			want := secretbox.Seal(nil, msg, &nonce, &key)

			b := newBox(v, &key, (*[16]byte)(nonce[:16]))
			pre := randBytes(r, n%7)
			got := b.Seal(unaligned(pre, n%3), counter, msg)
			if !bytes.Equal(got[:len(pre)], pre) || !bytes.Equal(got[len(pre):], want) {
				t.Fatalf("len %d: Seal differs from secretbox", n)
			}
			sealed := unaligned(want, (n+1)%9)
			opened, err := b.Open(pre[:len(pre):len(pre)], counter, sealed)
			if err != nil || !bytes.Equal(opened[:len(pre)], pre) || !bytes.Equal(opened[len(pre):], msg) {
				t.Fatalf("len %d: Open: %v", n, err)
			}
			// Seal in place: the plaintext already sits where its ciphertext goes.
			frame := make([]byte, len(pre)+Overhead+n, len(pre)+Overhead+n+n%5)
			copy(frame, pre)
			copy(frame[len(pre)+Overhead:], msg)
			got = b.Seal(frame[:len(pre)], counter, frame[len(pre)+Overhead:])
			if &got[0] != &frame[0] || !bytes.Equal(got[:len(pre)], pre) || !bytes.Equal(got[len(pre):], want) {
				t.Fatalf("len %d: in-place Seal differs from secretbox", n)
			}
			// In place, over the ciphertext.
			inplace := append([]byte(nil), want...)
			opened, err = b.Open(inplace[Overhead:Overhead], counter, inplace)
			if err != nil || !bytes.Equal(opened, msg) {
				t.Fatalf("len %d: in-place Open: %v", n, err)
			}
			// Tampering anywhere, or a wrong counter, fails and releases nothing.
			bad := append([]byte(nil), want...)
			bad[r.IntN(len(bad))] ^= 1 << r.IntN(8)
			dst := make([]byte, 3, 8192)
			if out, err := b.Open(dst, counter, bad); err != ErrOpen || len(out) != 3 || bytes.Count(dst[:cap(dst)], []byte{0}) != cap(dst) {
				t.Fatalf("len %d: tampered frame: err %v, %d bytes out", n, err, len(out))
			}
			if _, err := b.Open(nil, counter+1, want); err != ErrOpen {
				t.Fatalf("len %d: wrong counter opened", n)
			}
		}
		if _, err := newBox(v, &key, (*[16]byte)(nonce[:16])).Open(nil, 0, make([]byte, Overhead-1)); err != ErrOpen {
			t.Fatal("short frame opened")
		}
	})
}

func TestUse(t *testing.T) {
	defer Use("")
	for _, name := range Variants() {
		if err := Use(name); err != nil {
			t.Fatal(err)
		}
		if Active() != name {
			t.Fatalf("Active() = %q after Use(%q)", Active(), name)
		}
	}
	if Use("sse2") == nil {
		if err := Use("ssse3"); err != nil || Active() != "sse2" {
			t.Fatalf("Use(ssse3): %v, active %s", err, Active())
		}
	}
	if err := Use("avx512"); err == nil {
		t.Fatal("Use(avx512) succeeded")
	}
	if err := Use("auto"); err != nil || Active() != best().name {
		t.Fatalf("Use(auto): %v, %s", err, Active())
	}
	// The exported paths run on the active variant.
	var key [32]byte
	var nonce [24]byte
	msg := make([]byte, 1448)
	for _, name := range Variants() {
		Use(name)
		if !bytes.Equal(NewFrameBox(&key, (*[16]byte)(nonce[:16])).Seal(nil, 0, msg), secretbox.Seal(nil, msg, &nonce, &key)) {
			t.Fatalf("%s: NewFrameBox differs", name)
		}
		got, want := make([]byte, 1000), make([]byte, 1000)
		XORKeyStream(got, msg[:1000], nonce[:], &key)
		salsa20.XORKeyStream(want, msg[:1000], nonce[:], &key)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: XORKeyStream differs", name)
		}
	}
}

func TestSealAllocs(t *testing.T) {
	var key [32]byte
	var prefix [16]byte
	msg := make([]byte, 1448)
	dst := make([]byte, 0, 2048)
	eachVariant(t, func(t *testing.T, v *variant) {
		b := newBox(v, &key, &prefix)
		sealed := b.Seal(nil, 1, msg)
		if n := testing.AllocsPerRun(20, func() {
			b.Seal(dst[:0], 1, msg)
			b.Open(dst[:0], 1, sealed)
		}); n != 0 {
			t.Fatalf("%v allocations per Seal+Open", n)
		}
	})
}
