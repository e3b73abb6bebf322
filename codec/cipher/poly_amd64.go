//go:build gc && !purego

package cipher

import (
	"encoding/binary"
	"math/bits"
)

// polyLaneBlock is the block index (within a 64-byte chunk) each AVX2 lane carries.
var polyLaneBlock = [4]int{0, 2, 1, 3}

// polySumAVX2 computes msg's Poly1305 tag under key with the AVX2 kernel; msg must
// hold at least 128 bytes. The 16-byte blocks (the last one padded) are preceded by
// zero blocks to make whole 64-byte chunks: a zero block adds nothing to the
// polynomial, so every block, the partial one included, goes through the kernel.
func polySumAVX2(tag *[16]byte, msg []byte, key *[32]byte) {
	var pow [5]polyLimbs // pow[k] = r^k
	polyPowers(&pow, key)
	// Each lane's final power r^(4-block(j)), limb by limb; lane 0's is r^4.
	var lanePow [5][4]uint64
	for lane, blk := range polyLaneBlock {
		p := &pow[4-blk]
		for i := range p {
			lanePow[i][lane] = p[i]
		}
	}
	blocks := (len(msg) + 15) / 16
	pad := (4 - blocks%4) % 4
	chunks := (blocks + pad) / 4 // at least 2
	// The first chunk (never holding the last block) is the lanes' starting value.
	var hv [5][4]uint64
	for lane, blk := range polyLaneBlock {
		if i := blk - pad; i >= 0 {
			m := polyBlock(msg[16*i:], 1<<24)
			for l := range m {
				hv[l][lane] = m[l]
			}
		}
	}
	// The last chunk, padded in a buffer; only its block 3 can be partial.
	tail := msg[16*(4*(chunks-1)-pad):]
	var last [64]byte
	copy(last[:], tail)
	hib := [4]uint64{1 << 24, 1 << 24, 1 << 24, 1 << 24}
	if len(tail) < 64 && len(tail)%16 != 0 {
		last[len(tail)] = 1
		hib[3] = 0 // polyLaneBlock[3] == 3
	}
	polyBlocksAVX2(&hv, &lanePow, &msg[16*(4-pad)], chunks-2, &last, &hib)
	var h polyLimbs
	for i := range h {
		h[i] = hv[i][0] + hv[i][1] + hv[i][2] + hv[i][3]
	}
	h = polyCarry(h[0], h[1], h[2], h[3], h[4])
	polyFinish(tag, &h, key)
}

// polyPowers sets pow[1..4] to r^1..r^4 in radix 2^26. The products are taken in radix
// 2^64, where multiplying by the clamped r costs four 64x64 multiplies (the 26-bit
// schoolbook takes 25): h·r, with r1 a multiple of 4, folds back mod 2^130-5 as
// low130 + 5·(h>>130).
func polyPowers(pow *[5]polyLimbs, key *[32]byte) {
	r0 := binary.LittleEndian.Uint64(key[0:]) & 0x0ffffffc0fffffff
	r1 := binary.LittleEndian.Uint64(key[8:]) & 0x0ffffffc0ffffffc
	h0, h1, h2 := r0, r1, uint64(0)
	pow[1] = limbs26(h0, h1, h2)
	for k := 2; k <= 4; k++ {
		hi0, lo0 := bits.Mul64(h0, r0)
		hi1, lo1 := bits.Mul64(h1, r0)
		hi2, lo2 := bits.Mul64(h0, r1)
		hi3, lo3 := bits.Mul64(h1, r1)
		// t = h·r in four words (h2 is a few bits, so h2·r0 and h2·r1 fit in one).
		t0 := lo0
		t1, c := bits.Add64(hi0, lo1, 0)
		t2, c2 := bits.Add64(hi1, lo3, c)
		t1, c = bits.Add64(t1, lo2, 0)
		t2, c3 := bits.Add64(t2, hi2, c)
		t2, c4 := bits.Add64(t2, h2*r0, 0)
		t3 := hi3 + h2*r1 + c2 + c3 + c4
		// low130 + 4·(t>>130) + (t>>130).
		m0, m1 := t2&^3, t3 // 4·(t>>130)
		h0, c = bits.Add64(t0, m0, 0)
		h1, c = bits.Add64(t1, m1, c)
		h2 = t2&3 + c
		m0 = m0>>2 | m1<<62
		m1 >>= 2
		h0, c = bits.Add64(h0, m0, 0)
		h1, c = bits.Add64(h1, m1, c)
		h2 += c
		pow[k] = limbs26(h0, h1, h2)
	}
}

// limbs26 splits h0 + h1·2^64 + h2·2^128 (h2 a few bits) into 26-bit limbs, the top
// one taking the excess.
func limbs26(h0, h1, h2 uint64) polyLimbs {
	return polyLimbs{
		h0 & mask26,
		(h0 >> 26) & mask26,
		(h0>>52 | h1<<12) & mask26,
		(h1 >> 14) & mask26,
		h1>>40 | h2<<24,
	}
}
