//lint:file-ignore SA1019 obfs4 frames are NaCl secretbox, whose MAC is Poly1305 itself.

package cipher

import (
	"errors"
	"math/bits"

	"golang.org/x/crypto/poly1305"
)

// Overhead is the Poly1305 tag that precedes every sealed frame.
const Overhead = poly1305.TagSize

// ErrOpen is returned when a frame's tag does not verify.
var ErrOpen = errors.New("cipher: message authentication failed")

// FrameBox seals and opens the NaCl secretbox (XSalsa20-Poly1305) frames of one session
// direction. obfs4 fixes the first 16 bytes of the 24-byte nonce per direction and counts
// frames in the last 8 (big-endian), so a box is built once per direction and given only the
// counter per frame; that lets an implementation keep per-session work (the HSalsa20
// subkey) out of the per-frame path.
//
// Seal and Open produce and accept exactly what secretbox.Seal and secretbox.Open do for the
// nonce prefix‖BE64(counter): the 16-byte tag followed by the ciphertext.
type FrameBox interface {
	// Seal appends the sealed frame of plaintext to dst. plaintext may sit exactly where
	// its ciphertext goes, dst[len(dst)+Overhead:][:len(plaintext)] within dst's capacity,
	// so that a caller can build a frame in place and keep no scratch buffer of its own.
	Seal(dst []byte, counter uint64, plaintext []byte) []byte
	// Open appends the plaintext of box to dst, or returns ErrOpen and releases nothing.
	Open(dst []byte, counter uint64, box []byte) ([]byte, error)
}

// NewFrameBox returns the fastest FrameBox for this CPU (or the variant forced by Use).
func NewFrameBox(key *[32]byte, prefix *[16]byte) FrameBox {
	return newBox(active.Load(), key, prefix)
}

// box is a FrameBox on one cipher variant. Per session it derives the HSalsa20 subkey
// once and keeps the Salsa20 state built on it; per frame only the nonce words (the
// counter) change. A frame's keystream starts with the Poly1305 key (the first 32 bytes
// of block 0) and goes on, unbroken, over the payload, so the first group of blocks is
// run over a buffer holding 32 zero bytes and the payload's head, and everything after
// it straight from the source into dst: one keystream pass, then one Poly1305 pass over
// the ciphertext.
//
// A box holds no per-frame state, so one box may seal (or open) on several goroutines.
// Like secretbox, Seal's dst must not overlap plaintext, and Open's dst must not overlap
// box, except that Open may decrypt in place into box[Overhead:] (dst = box[Overhead:Overhead]).
type box struct {
	v  *variant
	st [16]uint32 // subkey, nonce words 0, counter 0
}

func newBox(v *variant, key *[32]byte, prefix *[16]byte) *box {
	b := &box{v: v}
	var subkey [32]byte
	hsalsa20(&subkey, key, prefix)
	initState(&b.st, &subkey, 0, 0)
	return b
}

// head is how much payload rides in the first keystream group, behind the Poly1305 key.
const head = maxGroup - 32

// state returns the box's Salsa20 state for frame counter: XSalsa20's last 8 nonce bytes
// are BE64(counter), which Salsa20 reads as two little-endian words.
func (b *box) state(counter uint64) [16]uint32 {
	st := b.st
	st[6] = bits.ReverseBytes32(uint32(counter >> 32))
	st[7] = bits.ReverseBytes32(uint32(counter))
	return st
}

func (b *box) Seal(dst []byte, counter uint64, plaintext []byte) []byte {
	ret, out := grow(dst, Overhead+len(plaintext))
	st := b.state(counter)
	n := min(len(plaintext), head)
	var buf [maxGroup]byte
	copy(buf[32:], plaintext[:n])
	b.v.xorKeyStream(buf[:32+n], buf[:32+n], &st)
	copy(out[Overhead:], buf[32:32+n])
	if len(plaintext) > n {
		// st's counter is at block 8: the head filled the group exactly.
		b.v.xorKeyStream(out[Overhead+n:], plaintext[n:], &st)
	}
	var tag [Overhead]byte
	b.v.polySum(&tag, out[Overhead:], (*[32]byte)(buf[:32]))
	copy(out, tag[:])
	clear(buf[:32])
	return ret
}

func (b *box) Open(dst []byte, counter uint64, sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return dst, ErrOpen
	}
	ct := sealed[Overhead:]
	st := b.state(counter)
	n := min(len(ct), head)
	var buf [maxGroup]byte
	copy(buf[32:], ct[:n])
	b.v.xorKeyStream(buf[:32+n], buf[:32+n], &st)
	if !b.v.polyVerify((*[Overhead]byte)(sealed[:Overhead]), ct, (*[32]byte)(buf[:32])) {
		clear(buf[:])
		return dst, ErrOpen
	}
	ret, out := grow(dst, len(ct))
	if len(ct) > n {
		b.v.xorKeyStream(out[n:], ct[n:], &st)
	}
	copy(out, buf[32:32+n])
	clear(buf[:])
	return ret, nil
}

// grow extends in by n bytes, reusing its capacity when it can, and returns the whole
// slice and the new tail (the AEAD sliceForAppend idiom).
func grow(in []byte, n int) (whole, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		whole = in[:total]
	} else {
		whole = make([]byte, total)
		copy(whole, in)
	}
	return whole, whole[len(in):]
}
