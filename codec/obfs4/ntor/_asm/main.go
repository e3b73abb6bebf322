// Command _asm generates codec/obfs4/ntor's amd64 X25519 ladder with avo.
//
// Run it through `go generate ./codec/obfs4/ntor/` (the directive lives in
// codec/obfs4/ntor/x25519_amd64.go). It is its own module so that avo never becomes a
// dependency of ptreactor.
//
// Field elements mod p = 2^255-19 are four 64-bit limbs holding any value below 2^256
// (so not unique: the Go side reduces fully before encoding). Products are taken with
// MULX into eight limbs, two carry chains running at once on ADCX (CF) and ADOX (OF),
// and folded back with 2^256 ≡ 38. Sums and differences fold their carry or borrow the
// same way, twice: the second fold cannot carry again.
//
// Every operand lives in memory (the ladder's frame, or the caller's elements), so each operation is a self-contained block that loads its inputs into
// registers first and stores its result last: an output may alias an input.
package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Registers shared by the field operations. r holds a product's eight limbs (the result
// in r[0..3]); t and h take MULX's low and high halves; zero is a zero for the carry
// chains; MULX multiplies by DX implicitly.
var (
	r          = []reg.GPPhysical{reg.R8, reg.R9, reg.R10, reg.R11, reg.R12, reg.R13, reg.R14, reg.R15}
	t, h, zero = reg.RAX, reg.RBX, reg.RCX
	dx         = reg.RDX
)

// Offsets of the ladder's working elements in its frame, and of the pending swap bit.
const (
	offX1 = 32 * iota
	offX2
	offZ2
	offX3
	offZ3
	offT0
	offT1
	offSwap
	frameSize = offSwap + 8
)

func main() {
	ConstraintExpr("gc,!purego")
	ladder()
	mulFunc()
	squareFunc()
	Generate()
}

// limb is the i-th limb of the element at m.
func limb(m Mem, i int) Mem { return m.Offset(8 * i) }

// mul sets out = a·b (mod p, below 2^256).
func mul(out, a, b Mem) {
	mulRows(a, b)
	reduce(out)
}

// mulRows leaves a·b in r[0..7].
func mulRows(a, b Mem) {
	// Row 0: r[0..4] = a·b0.
	MOVQ(limb(b, 0), dx)
	MULXQ(limb(a, 0), r[0], r[1])
	MULXQ(limb(a, 1), t, r[2])
	ADDQ(t, r[1])
	MULXQ(limb(a, 2), t, r[3])
	ADCQ(t, r[2])
	MULXQ(limb(a, 3), t, r[4])
	ADCQ(t, r[3])
	ADCQ(U8(0), r[4])
	// Rows 1..3: r[i..i+4] += a·bi, low halves on CF, high halves on OF.
	for i := 1; i < 4; i++ {
		MOVQ(limb(b, i), dx)
		XORQ(zero, zero) // clears CF and OF
		for j := 0; j < 3; j++ {
			MULXQ(limb(a, j), t, h)
			ADCXQ(t, r[i+j])
			ADOXQ(h, r[i+j+1])
		}
		MULXQ(limb(a, 3), t, r[i+4])
		ADCXQ(t, r[i+3])
		ADOXQ(zero, r[i+4])
		ADCXQ(zero, r[i+4])
	}
}

// square sets out = a² (mod p, below 2^256): the six cross products once, then one
// pass that doubles them on CF while adding the four squares on OF; ten multiplies where
// mul takes sixteen.
func square(out, a Mem) {
	squareRows(a)
	reduce(out)
}

// squareRows leaves a² in r[0..7].
func squareRows(a Mem) {
	// r[1..6] = a0·a1·2^64 + a0·a2·2^128 + (a0·a3 + a1·a2)·2^192 + a1·a3·2^256 + a2·a3·2^320.
	MOVQ(limb(a, 0), dx)
	MULXQ(limb(a, 1), r[1], r[2])
	MULXQ(limb(a, 2), t, r[3])
	ADDQ(t, r[2])
	MULXQ(limb(a, 3), t, r[4])
	ADCQ(t, r[3])
	ADCQ(U8(0), r[4])
	MOVQ(limb(a, 1), dx)
	XORQ(zero, zero)
	MULXQ(limb(a, 2), t, h)
	ADCXQ(t, r[3])
	ADOXQ(h, r[4])
	MULXQ(limb(a, 3), t, r[5])
	ADCXQ(t, r[4])
	ADOXQ(zero, r[5])
	ADCXQ(zero, r[5])
	MOVQ(limb(a, 2), dx)
	MULXQ(limb(a, 3), t, r[6])
	ADDQ(t, r[5])
	ADCQ(U8(0), r[6])
	// Double (CF) and add ai² at 2^(128i) (OF).
	XORQ(zero, zero)
	MOVQ(limb(a, 0), dx)
	MULXQ(dx, r[0], h)
	ADCXQ(r[1], r[1])
	ADOXQ(h, r[1])
	for i := 1; i < 3; i++ {
		MOVQ(limb(a, i), dx)
		MULXQ(dx, t, h)
		ADCXQ(r[2*i], r[2*i])
		ADOXQ(t, r[2*i])
		ADCXQ(r[2*i+1], r[2*i+1])
		ADOXQ(h, r[2*i+1])
	}
	MOVQ(limb(a, 3), dx)
	MULXQ(dx, t, r[7])
	ADCXQ(r[6], r[6])
	ADOXQ(t, r[6])
	ADCXQ(zero, r[7])
	ADOXQ(zero, r[7])
}

// reduce folds the eight limbs r[0..7] to four below 2^256 with 2^256 ≡ 38 and stores
// them at out. It leaves DX and the flags clobbered.
func reduce(out Mem) {
	MOVQ(U32(38), dx)
	XORQ(zero, zero)
	for j := 0; j < 3; j++ {
		MULXQ(r[4+j], t, h)
		ADCXQ(t, r[j])
		ADOXQ(h, r[j+1])
	}
	MULXQ(r[7], t, r[4])
	ADCXQ(t, r[3])
	ADOXQ(zero, r[4])
	ADCXQ(zero, r[4])
	// r[4] < 39: fold it, then the carry of that (which leaves r[0..3] tiny).
	IMUL3Q(U8(38), r[4], r[4])
	ADDQ(r[4], r[0])
	ADCQ(U8(0), r[1])
	ADCQ(U8(0), r[2])
	ADCQ(U8(0), r[3])
	SBBQ(t, t)
	ANDQ(U8(38), t)
	ADDQ(t, r[0])
	for i := 0; i < 4; i++ {
		MOVQ(r[i], limb(out, i))
	}
}

// add sets out = a+b.
func add(out, a, b Mem) {
	for i := 0; i < 4; i++ {
		MOVQ(limb(a, i), r[i])
	}
	ADDQ(limb(b, 0), r[0])
	for i := 1; i < 4; i++ {
		ADCQ(limb(b, i), r[i])
	}
	fold(ADDQ, ADCQ)
	fold(ADDQ, ADCQ)
	for i := 0; i < 4; i++ {
		MOVQ(r[i], limb(out, i))
	}
}

// sub sets out = a-b.
func sub(out, a, b Mem) {
	for i := 0; i < 4; i++ {
		MOVQ(limb(a, i), r[i])
	}
	SUBQ(limb(b, 0), r[0])
	for i := 1; i < 4; i++ {
		SBBQ(limb(b, i), r[i])
	}
	fold(SUBQ, SBBQ)
	fold(SUBQ, SBBQ)
	for i := 0; i < 4; i++ {
		MOVQ(r[i], limb(out, i))
	}
}

// fold turns the carry (or borrow) of the previous chain into ±38 on r[0..3]. The
// second of two folds never carries: after a first one that carried, r is below 38
// (or above 2^256-38).
func fold(op, opc func(imr, amr Op)) {
	SBBQ(t, t)
	ANDQ(U8(38), t)
	op(t, r[0])
	opc(U8(0), r[1])
	opc(U8(0), r[2])
	opc(U8(0), r[3])
}

// mul121666 sets out = 121666·a.
func mul121666(out, a Mem) {
	MOVQ(U32(121666), dx)
	MULXQ(limb(a, 0), r[0], r[1])
	MULXQ(limb(a, 1), t, r[2])
	ADDQ(t, r[1])
	MULXQ(limb(a, 2), t, r[3])
	ADCQ(t, r[2])
	MULXQ(limb(a, 3), t, r[4])
	ADCQ(t, r[3])
	ADCQ(U8(0), r[4])
	IMUL3Q(U8(38), r[4], r[4])
	ADDQ(r[4], r[0])
	ADCQ(U8(0), r[1])
	ADCQ(U8(0), r[2])
	ADCQ(U8(0), r[3])
	SBBQ(t, t)
	ANDQ(U8(38), t)
	ADDQ(t, r[0])
	for i := 0; i < 4; i++ {
		MOVQ(r[i], limb(out, i))
	}
}

// cswap swaps a and b if mask is all ones, leaves them if it is zero, touching both
// either way.
func cswap(a, b Mem, mask reg.GPPhysical) {
	for i := 0; i < 4; i++ {
		MOVQ(limb(a, i), r[0])
		MOVQ(limb(b, i), r[1])
		MOVQ(r[0], t)
		XORQ(r[1], t)
		ANDQ(mask, t)
		XORQ(t, r[0])
		XORQ(t, r[1])
		MOVQ(r[0], limb(a, i))
		MOVQ(r[1], limb(b, i))
	}
}

// ladder generates the 255 steps of RFC 7748's Montgomery ladder (bits 254..0), in the
// order of RFC 7748's pseudo-code with its a24 = 121665 written as 121666·E + BB, and
// copies x2 and z2 out (the Go side inverts and encodes). The scalar word is picked by
// the bit position, a public index; the bit itself only ever drives cswap's masks.
func ladder() {
	TEXT("ladderADX", NOSPLIT, "func(x, z *[4]uint64, scalar *[4]uint64, u *[4]uint64)")
	Pragma("noescape")
	Doc("ladderADX runs the Montgomery ladder over the clamped scalar (little-endian words)",
		"from u (below 2^255), setting x/z = scalar·u, each limb set below 2^256. It needs",
		"BMI2 and ADX.")
	frame := AllocLocal(frameSize)
	at := frame.Offset
	x1, x2, z2, x3, z3, t0, t1 := at(offX1), at(offX2), at(offZ2), at(offX3), at(offZ3), at(offT0), at(offT1)
	swap := at(offSwap)
	pos, p := reg.RSI, reg.RDI

	Comment("x1 = x3 = u, x2 = z3 = 1, z2 = 0, no swap pending.")
	Load(Param("u"), p)
	for i := 0; i < 4; i++ {
		MOVQ(limb(Mem{Base: p}, i), t)
		MOVQ(t, limb(x1, i))
		MOVQ(t, limb(x3, i))
	}
	XORQ(t, t)
	for i := 0; i < 4; i++ {
		MOVQ(t, limb(x2, i))
		MOVQ(t, limb(z2, i))
		MOVQ(t, limb(z3, i))
	}
	MOVQ(t, swap)
	MOVQ(U32(1), limb(x2, 0))
	MOVQ(U32(1), limb(z3, 0))

	MOVQ(U32(254), pos)
	Label("step")
	Comment("b = scalar bit pos; swap ^= b; cswap; swap = b")
	Load(Param("scalar"), p)
	MOVQ(pos, reg.RCX)
	SHRQ(U8(6), reg.RCX)
	MOVQ(Mem{Base: p, Index: reg.RCX, Scale: 8}, t)
	MOVQ(pos, reg.RCX)
	SHRQ(reg.CL, t)
	ANDQ(U8(1), t)
	MOVQ(swap, h)
	XORQ(t, h)
	MOVQ(t, swap)
	NEGQ(h)
	cswap(x2, x3, h)
	cswap(z2, z3, h)

	sub(t0, x3, z3)
	sub(t1, x2, z2)
	add(x2, x2, z2)
	add(z2, x3, z3)
	mul(z3, t0, x2)
	mul(z2, z2, t1)
	square(t0, t1)
	square(t1, x2)
	add(x3, z3, z2)
	sub(z2, z3, z2)
	mul(x2, t1, t0)
	sub(t1, t1, t0)
	square(z2, z2)
	mul121666(z3, t1)
	square(x3, x3)
	add(t0, t0, z3)
	mul(z3, x1, z2)
	mul(z2, t1, t0)

	SUBQ(U8(1), pos)
	JCC(LabelRef("step")) // until pos goes below zero

	Comment("The last swap.")
	MOVQ(swap, h)
	NEGQ(h)
	cswap(x2, x3, h)
	cswap(z2, z3, h)
	Load(Param("x"), p)
	for i := 0; i < 4; i++ {
		MOVQ(limb(x2, i), t)
		MOVQ(t, limb(Mem{Base: p}, i))
	}
	Load(Param("z"), p)
	for i := 0; i < 4; i++ {
		MOVQ(limb(z2, i), t)
		MOVQ(t, limb(Mem{Base: p}, i))
	}
	RET()
}

// mulFunc exposes mul for the inversion the Go side runs.
func mulFunc() {
	TEXT("feMulADX", NOSPLIT, "func(out, a, b *[4]uint64)")
	Pragma("noescape")
	Doc("feMulADX sets out = a·b. It needs BMI2 and ADX.")
	Load(Param("a"), reg.RSI)
	Load(Param("b"), reg.RDI)
	mulRows(Mem{Base: reg.RSI}, Mem{Base: reg.RDI})
	Load(Param("out"), reg.RSI)
	reduce(Mem{Base: reg.RSI})
	RET()
}

// squareFunc exposes square, repeated, for the inversion's long runs of squarings.
func squareFunc() {
	TEXT("feSquareADX", NOSPLIT, "func(out, a *[4]uint64, n int)")
	Pragma("noescape")
	Doc("feSquareADX sets out = a^(2^n), n ≥ 1. It needs BMI2 and ADX.")
	out, n := reg.RDI, reg.RSI
	Load(Param("a"), n)
	Load(Param("out"), out)
	square(Mem{Base: out}, Mem{Base: n})
	Load(Param("n"), n)
	JMP(LabelRef("next"))
	Label("again")
	square(Mem{Base: out}, Mem{Base: out})
	Label("next")
	SUBQ(U8(1), n)
	JHI(LabelRef("again")) // n-1 more times (n = 0 squares once too)
	RET()
}
