package cipher

import (
	"testing"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/salsa20"
)

// The benchmark names are fixed (benchstat compares them across commits):
// <Op>/xcrypto is golang.org/x/crypto, <Op>/<variant> is ours.

const frameLen = 1448

func BenchmarkSeal1448(b *testing.B) {
	var key [32]byte
	var nonce [24]byte
	msg := make([]byte, frameLen)
	dst := make([]byte, 0, frameLen+Overhead)
	b.Run("xcrypto", func(b *testing.B) {
		b.SetBytes(frameLen)
		for i := 0; b.Loop(); i++ {
			nonce[23] = byte(i)
			secretbox.Seal(dst[:0], msg, &nonce, &key)
		}
	})
	for _, v := range available() {
		b.Run(v.name, func(b *testing.B) {
			box := newBox(v, &key, (*[16]byte)(nonce[:16]))
			b.SetBytes(frameLen)
			for i := uint64(0); b.Loop(); i++ {
				box.Seal(dst[:0], i, msg)
			}
		})
	}
}

func BenchmarkOpen1448(b *testing.B) {
	var key [32]byte
	var nonce [24]byte
	msg := make([]byte, frameLen)
	dst := make([]byte, 0, frameLen)
	sealed := secretbox.Seal(nil, msg, &nonce, &key)
	b.Run("xcrypto", func(b *testing.B) {
		b.SetBytes(frameLen)
		for b.Loop() {
			if _, ok := secretbox.Open(dst[:0], sealed, &nonce, &key); !ok {
				b.Fatal("open failed")
			}
		}
	})
	for _, v := range available() {
		b.Run(v.name, func(b *testing.B) {
			box := newBox(v, &key, (*[16]byte)(nonce[:16]))
			b.SetBytes(frameLen)
			for b.Loop() {
				if _, err := box.Open(dst[:0], 0, sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkKeystream16K(b *testing.B) {
	var key [32]byte
	var nonce [8]byte
	buf := make([]byte, 16<<10)
	b.Run("xcrypto", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			salsa20.XORKeyStream(buf, buf, nonce[:], &key)
		}
	})
	for _, v := range available() {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				var st [16]uint32
				initState(&st, &key, 0, 0)
				v.xorKeyStream(buf, buf, &st)
			}
		})
	}
}
