package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// polyAVX2 generates the Poly1305 loop: four interleaved accumulators, one per 64-bit
// lane, each limb (radix 2^26) in its own register. Per 64-byte chunk every lane takes
// one 16-byte block: H = H·r^4 + M. The Go side loads the first chunk into H and hands
// over the last chunk padded in a buffer, with each lane's 2^128 bit; the kernel ends by
// multiplying each lane by its own power of r, so the Go side only sums the lanes.
// VPUNPCK*QDQ on two 32-byte loads leaves blocks in lane order 0, 2, 1, 3; the Go side
// knows.
func polyAVX2() {
	mask := GLOBL("polyMask26", RODATA|NOPTR)
	DATA(0, U64(1<<26-1))
	hibit := GLOBL("polyHibit", RODATA|NOPTR)
	DATA(0, U64(1<<24))

	TEXT("polyBlocksAVX2", 0, "func(h *[5][4]uint64, pow *[5][4]uint64, m *byte, chunks int, last *[64]byte, lastHibit *[4]uint64)")
	Pragma("noescape")
	Doc("polyBlocksAVX2 runs H = H·r^4 + M over chunks 64-byte chunks of m and then over last",
		"(whose lanes get lastHibit as their 2^128 bit), then multiplies each lane by its own",
		"power of r. h holds the lanes' limbs (each below 2^27); pow the limbs of each lane's",
		"final power, lane 0's being r^4.")
	hp, pp, mp, n, rp := reg.RDI, reg.RSI, reg.RDX, reg.RCX, reg.RBX
	Load(Param("h"), hp)
	Load(Param("pow"), pp)
	Load(Param("m"), mp)
	Load(Param("chunks"), n)
	// Two tables of 9 vectors on the stack, 32-byte aligned: [0] r^4 in every lane, [1]
	// each lane's final power; limbs 0..4, then 5·limbs 1..4.
	local := AllocLocal(2*9*32 + 32)
	LEAQ(local, rp)
	ADDQ(U32(31), rp)
	ANDQ(I8(-32), rp)

	y := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7,
		reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}
	h := y[0:5]
	d := y[5:10]
	t, u := y[10], y[11]
	msk := y[12]
	lo, hi := y[13], y[14]
	hb := y[15]
	for i := 0; i < 5; i++ {
		VMOVDQU(Mem{Base: hp, Disp: 32 * i}, h[i])
	}
	VPBROADCASTQ(mask, msk)
	VPBROADCASTQ(hibit, hb)
	for i := 0; i < 5; i++ {
		for tbl := 0; tbl < 2; tbl++ {
			v := d[2*tbl]
			if tbl == 0 {
				VPBROADCASTQ(Mem{Base: pp, Disp: 32 * i}, v)
			} else {
				VMOVDQU(Mem{Base: pp, Disp: 32 * i}, v)
			}
			VMOVDQA(v, Mem{Base: rp, Disp: tbl*9*32 + 32*i})
			if i > 0 {
				VPSLLQ(U8(2), v, t)
				VPADDQ(v, t, t)
				VMOVDQA(t, Mem{Base: rp, Disp: tbl*9*32 + 32*(4+i)})
			}
		}
	}

	// mul sets D = H·r for the table r[at]: d_k = Σ h_i·r_(k-i), wrapping terms
	// times 5.
	mul := func(at int) {
		for k := 0; k < 5; k++ {
			for i := 0; i < 5; i++ {
				j := k - i
				if j < 0 {
					j += 9 // 5·r_(j+5) lives at 4+(j+5)
				}
				m := Mem{Base: rp, Disp: at*9*32 + 32*j}
				if i == 0 {
					VPMULUDQ(m, h[i], d[k])
				} else {
					VPMULUDQ(m, h[i], t)
					VPADDQ(t, d[k], d[k])
				}
			}
		}
	}
	// absorb adds the four blocks at src, split into limbs, to D; bit is 2^128.
	absorb := func(src reg.GPPhysical, bit reg.VecPhysical) {
		VMOVDQU(Mem{Base: src}, t)
		VMOVDQU(Mem{Base: src, Disp: 32}, u)
		VPUNPCKLQDQ(u, t, lo)
		VPUNPCKHQDQ(u, t, hi)
		VPAND(msk, lo, t) // limb 0
		VPADDQ(t, d[0], d[0])
		VPSRLQ(U8(26), lo, t) // limb 1
		VPAND(msk, t, t)
		VPADDQ(t, d[1], d[1])
		VPSRLQ(U8(52), lo, t) // limb 2
		VPSLLQ(U8(12), hi, u)
		VPOR(u, t, t)
		VPAND(msk, t, t)
		VPADDQ(t, d[2], d[2])
		VPSRLQ(U8(14), hi, t) // limb 3
		VPAND(msk, t, t)
		VPADDQ(t, d[3], d[3])
		VPSRLQ(U8(40), hi, t) // limb 4
		VPOR(bit, t, t)
		VPADDQ(t, d[4], d[4])
	}
	// reduce carries D back into H: limbs under 2^26 (limb 1 under 2^27).
	reduce := func() {
		carry := func(from, to reg.VecPhysical) {
			VPSRLQ(U8(26), from, t)
			VPAND(msk, from, from)
			VPADDQ(t, to, to)
		}
		carry(d[0], d[1])
		carry(d[3], d[4])
		carry(d[1], d[2])
		// d4's carry wraps around times 5.
		VPSRLQ(U8(26), d[4], t)
		VPAND(msk, d[4], d[4])
		VPSLLQ(U8(2), t, u)
		VPADDQ(u, t, t)
		VPADDQ(t, d[0], d[0])
		carry(d[2], d[3])
		carry(d[0], d[1])
		carry(d[3], d[4])
		for i := 0; i < 5; i++ {
			VMOVDQA(d[i], h[i])
		}
	}

	Label("poly_loop")
	CMPQ(n, U32(0))
	JE(LabelRef("poly_last"))
	mul(0)
	absorb(mp, hb)
	reduce()
	ADDQ(U32(64), mp)
	DECQ(n)
	JMP(LabelRef("poly_loop"))

	Label("poly_last")
	Comment("The padded last chunk, with each lane's own 2^128 bit.")
	Load(Param("last"), mp)
	Load(Param("lastHibit"), n)
	VMOVDQU(Mem{Base: n}, hb)
	mul(0)
	absorb(mp, hb)
	reduce()

	Comment("Each lane times its own power of r.")
	mul(1)
	reduce()
	for i := 0; i < 5; i++ {
		VMOVDQU(h[i], Mem{Base: hp, Disp: 32 * i})
	}
	VZEROUPPER()
	RET()
}
