//lint:file-ignore SA1019 obfs4 frames are NaCl secretbox, whose MAC is Poly1305 itself.

package cipher

import (
	"crypto/subtle"
	"encoding/binary"

	"golang.org/x/crypto/poly1305"
)

// Poly1305 for the frame boxes. Variants without a vector MAC use
// golang.org/x/crypto/poly1305 (its amd64 assembly is scalar, ~2.5 GB/s here, and its
// faster internals cannot be imported). The AVX2 variant runs four interleaved
// accumulators in assembly (polyBlocksAVX2) with this file's radix-2^26 arithmetic
// around it: the first chunk, the powers of r, the combination of the lanes, the tail
// and the final reduction.

const mask26 = 1<<26 - 1

// polyLimbs is a number mod 2^130-5 in five 26-bit limbs (limbs may exceed 26 bits a
// little between carries).
type polyLimbs [5]uint64

// polyR reads and clamps r from the first half of a one-time key.
func polyR(key *[32]byte) polyLimbs {
	return polyLimbs{
		uint64(binary.LittleEndian.Uint32(key[0:])) & 0x3ffffff,
		uint64(binary.LittleEndian.Uint32(key[3:])>>2) & 0x3ffff03,
		uint64(binary.LittleEndian.Uint32(key[6:])>>4) & 0x3ffc0ff,
		uint64(binary.LittleEndian.Uint32(key[9:])>>6) & 0x3f03fff,
		uint64(binary.LittleEndian.Uint32(key[12:])>>8) & 0x00fffff,
	}
}

// polyMul returns a·b mod 2^130-5, carried so limbs are below 2^26 but limb 1 (below
// 2^27). Inputs must have limbs below 2^27 (5·b_i stays under 2^32, sums under 2^64).
func polyMul(a, b *polyLimbs) polyLimbs {
	s1, s2, s3, s4 := b[1]*5, b[2]*5, b[3]*5, b[4]*5
	d0 := a[0]*b[0] + a[1]*s4 + a[2]*s3 + a[3]*s2 + a[4]*s1
	d1 := a[0]*b[1] + a[1]*b[0] + a[2]*s4 + a[3]*s3 + a[4]*s2
	d2 := a[0]*b[2] + a[1]*b[1] + a[2]*b[0] + a[3]*s4 + a[4]*s3
	d3 := a[0]*b[3] + a[1]*b[2] + a[2]*b[1] + a[3]*b[0] + a[4]*s4
	d4 := a[0]*b[4] + a[1]*b[3] + a[2]*b[2] + a[3]*b[1] + a[4]*b[0]
	return polyCarry(d0, d1, d2, d3, d4)
}

func polyCarry(d0, d1, d2, d3, d4 uint64) polyLimbs {
	d1 += d0 >> 26
	d0 &= mask26
	d2 += d1 >> 26
	d1 &= mask26
	d3 += d2 >> 26
	d2 &= mask26
	d4 += d3 >> 26
	d3 &= mask26
	d0 += (d4 >> 26) * 5
	d4 &= mask26
	d1 += d0 >> 26
	d0 &= mask26
	return polyLimbs{d0, d1, d2, d3, d4}
}

// polyBlock splits a 16-byte block into limbs with 2^128 (hibit) set or not.
func polyBlock(m []byte, hibit uint64) polyLimbs {
	lo := binary.LittleEndian.Uint64(m[0:])
	hi := binary.LittleEndian.Uint64(m[8:])
	return polyLimbs{
		lo & mask26,
		(lo >> 26) & mask26,
		(lo>>52 | hi<<12) & mask26,
		(hi >> 14) & mask26,
		hi>>40 | hibit,
	}
}

func (h *polyLimbs) add(m *polyLimbs) {
	for i := range h {
		h[i] += m[i]
	}
}

// polyTail absorbs the 16-byte blocks of msg into h, the last one padded with a 1 byte.
func polyTail(h, r *polyLimbs, msg []byte) {
	for len(msg) >= 16 {
		m := polyBlock(msg, 1<<24)
		h.add(&m)
		*h = polyMul(h, r)
		msg = msg[16:]
	}
	if len(msg) > 0 {
		var buf [16]byte
		copy(buf[:], msg)
		buf[len(msg)] = 1
		m := polyBlock(buf[:], 0)
		h.add(&m)
		*h = polyMul(h, r)
	}
}

// polyFinish reduces h fully mod 2^130-5 (in constant time), adds s and writes the tag.
func polyFinish(tag *[16]byte, h *polyLimbs, key *[32]byte) {
	h0, h1, h2, h3, h4 := h[0], h[1], h[2], h[3], h[4]
	// Full carry: limbs below 2^26, h below 2^130 + small.
	h2 += h1 >> 26
	h1 &= mask26
	h3 += h2 >> 26
	h2 &= mask26
	h4 += h3 >> 26
	h3 &= mask26
	h0 += (h4 >> 26) * 5
	h4 &= mask26
	h1 += h0 >> 26
	h0 &= mask26
	// g = h + 5 - 2^130; keep g if it did not go negative.
	g0 := h0 + 5
	g1 := h1 + g0>>26
	g0 &= mask26
	g2 := h2 + g1>>26
	g1 &= mask26
	g3 := h3 + g2>>26
	g2 &= mask26
	g4 := h4 + g3>>26 - 1<<26
	g3 &= mask26
	keepG := (g4 >> 63) - 1 // all ones if g4 >= 0
	keepH := ^keepG
	h0 = h0&keepH | g0&keepG
	h1 = h1&keepH | g1&keepG
	h2 = h2&keepH | g2&keepG
	h3 = h3&keepH | g3&keepG
	h4 = h4&keepH | g4&keepG&mask26
	// h mod 2^128 as four 32-bit words, plus s.
	f0 := (h0 | h1<<26) & 0xffffffff
	f1 := (h1>>6 | h2<<20) & 0xffffffff
	f2 := (h2>>12 | h3<<14) & 0xffffffff
	f3 := (h3>>18 | h4<<8) & 0xffffffff
	f0 += uint64(binary.LittleEndian.Uint32(key[16:]))
	f1 += uint64(binary.LittleEndian.Uint32(key[20:])) + f0>>32
	f2 += uint64(binary.LittleEndian.Uint32(key[24:])) + f1>>32
	f3 += uint64(binary.LittleEndian.Uint32(key[28:])) + f2>>32
	binary.LittleEndian.PutUint32(tag[0:], uint32(f0))
	binary.LittleEndian.PutUint32(tag[4:], uint32(f1))
	binary.LittleEndian.PutUint32(tag[8:], uint32(f2))
	binary.LittleEndian.PutUint32(tag[12:], uint32(f3))
}

// polySumGeneric is the pure-Go radix-2^26 Poly1305, the reference for the AVX2 path.
func polySumGeneric(tag *[16]byte, msg []byte, key *[32]byte) {
	r := polyR(key)
	var h polyLimbs
	polyTail(&h, &r, msg)
	polyFinish(tag, &h, key)
}

// polySum computes msg's Poly1305 tag with the variant's MAC.
func (v *variant) polySum(tag *[16]byte, msg []byte, key *[32]byte) {
	if v.vecPoly && len(msg) >= 128 {
		polySumAVX2(tag, msg, key)
		return
	}
	poly1305.Sum(tag, msg, key)
}

// polyVerify reports in constant time whether tag is msg's Poly1305 tag under key.
func (v *variant) polyVerify(tag *[16]byte, msg []byte, key *[32]byte) bool {
	var want [16]byte
	v.polySum(&want, msg, key)
	return subtle.ConstantTimeCompare(tag[:], want[:]) == 1
}
