// Command _asm generates codec/cipher's amd64 Salsa20 kernels with avo.
//
// Run it through `go generate ./codec/cipher/` (the directive lives in
// codec/cipher/salsa_amd64.go). It is its own module so that avo never becomes a
// dependency of ptreactor.
//
// Each kernel runs Salsa20/20 on W blocks at once, one block per SIMD lane (W = 8 for
// AVX2, 4 for SSE2), with the 16 state words held "sliced": vector j carries word j of
// every lane. A quarter-round needs two temporaries, so two quarter-rounds run
// interleaved (8 words + 4 temporaries) and the remaining registers cache state words;
// the rest live in a stack slot. Which word to evict is decided here, at generation
// time, by looking ahead in the fully unrolled schedule (Belady), so the emitted code
// spills as little as the register file allows. At the end the sliced words are
// transposed back into blocks, XORed with the input and stored.
//
// The kernels neither read nor write the state's counter beyond their call: the Go side
// guarantees the low counter word does not wrap inside a call, and advances the counter.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("gc,!purego")

	lanes := GLOBL("salsaLanes", RODATA|NOPTR)
	for i := 0; i < 8; i++ {
		DATA(4*i, U32(uint32(i)))
	}
	inc8 := GLOBL("salsaInc8", RODATA|NOPTR)
	for i := 0; i < 8; i++ {
		DATA(4*i, U32(8))
	}
	inc4 := GLOBL("salsaInc4", RODATA|NOPTR)
	for i := 0; i < 4; i++ {
		DATA(4*i, U32(4))
	}

	kernel(avx2{}, 1, lanes, inc8)
	kernel(sse2{}, 1, lanes, inc4)
	polyAVX2()
	Generate()
}

// isa is what differs between the SSE2 and AVX2 kernels.
type isa interface {
	name() string
	width() int // lanes (blocks per iteration)
	size() int  // vector bytes
	regs() []reg.VecPhysical
	load(m Mem, r reg.VecPhysical)  // aligned stack load
	store(r reg.VecPhysical, m Mem) // aligned stack store
	broadcast(m Mem, r reg.VecPhysical)
	add(dst, a, b reg.VecPhysical)     // dst = a + b
	addMem(m Mem, r reg.VecPhysical)   // r += aligned stack vector
	addConst(m Mem, r reg.VecPhysical) // r += global constant (maybe unaligned)
	// xorRot does b ^= t <<< n using u as scratch; t is destroyed.
	xorRot(b, t, u reg.VecPhysical, n int)
	transposeXOR(spill func(j int) Mem, in, out reg.GPPhysical, at int)
	end()
}

// A kernel runs `groups` independent groups of lanes per iteration (word w of group g
// is state word 16g+w), their dependency chains interleaved. Measured on AMD EPYC (Zen 3
// class), two AVX2 groups ran ~1.5x slower than one: the extra spills cost more than
// the latency they hide, so only groups = 1 is generated; the knob stays for CPUs
// where that trade goes the other way.
//
// Stack layout, in vectors: [0,16g) the input state of the current iteration (counter
// word already per lane), [16g,32g) spill slots of the working state.
func kernel(x isa, groups int, lanes, inc Mem) {
	slotIn, slotSpill := 0, 16*groups
	width := x.width() * groups
	name := "xorKeyStream" + x.name()
	if groups > 1 {
		name += fmt.Sprintf("x%d", groups)
	}
	TEXT(name, 0, "func(out, in *byte, blocks int, state *[16]uint32)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s XORs blocks*64 bytes of Salsa20/20 keystream for state into out from in,", name),
		fmt.Sprintf("%d blocks per iteration; blocks must be a multiple of %d and the low counter", width, width),
		"word must not wrap. out and in may alias exactly, nothing else.")

	local := AllocLocal(32*groups*x.size() + x.size())
	out, in, n, st, base := reg.RDI, reg.RSI, reg.RCX, reg.RDX, reg.RBX
	Load(Param("out"), out)
	Load(Param("in"), in)
	Load(Param("blocks"), n)
	Load(Param("state"), st)
	LEAQ(local, base)
	ADDQ(U32((x.size() - 1)), base)
	ANDQ(I8(int8(-x.size())), base)
	slot := func(i int) Mem { return Mem{Base: base, Disp: i * x.size()} }

	Comment("Broadcast the state; the counter's low word gets each lane's block index.")
	r := x.regs()
	for j := 0; j < 16; j++ {
		x.broadcast(Mem{Base: st, Disp: 4 * j}, r[0])
		if j == 8 {
			x.addConst(lanes, r[0])
		}
		for g := 0; g < groups; g++ {
			if j == 8 && g > 0 {
				x.addConst(inc, r[0])
			}
			x.store(r[0], slot(slotIn+16*g+j))
		}
	}

	Label(name + "_loop")
	CMPQ(n, U32(width))
	JB(LabelRef(name + "_done"))

	rounds(x, groups, slot, slotIn, slotSpill)

	Comment("Transpose lanes back into blocks, XOR with in, store to out.")
	for g := 0; g < groups; g++ {
		x.transposeXOR(func(j int) Mem { return slot(slotSpill + 16*g + j) }, in, out, 64*x.width()*g)
	}

	Comment("Next blocks.")
	for g := 0; g < groups; g++ {
		x.load(slot(slotIn+16*g+8), r[0])
		for i := 0; i < groups; i++ {
			x.addConst(inc, r[0])
		}
		x.store(r[0], slot(slotIn+16*g+8))
	}
	ADDQ(U32(64*width), in)
	ADDQ(U32(64*width), out)
	SUBQ(U32(width), n)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_done")
	x.end()
	RET()
}

// The quarter-rounds of one Salsa20 double round, as (y0, y1, y2, y3) word indices:
// y1 ^= (y0+y3)<<<7; y2 ^= (y1+y0)<<<9; y3 ^= (y2+y1)<<<13; y0 ^= (y3+y2)<<<18.
var doubleRound = [8][4]int{
	{0, 4, 8, 12}, {5, 9, 13, 1}, {10, 14, 2, 6}, {15, 3, 7, 11}, // columns
	{0, 1, 2, 3}, {5, 6, 7, 4}, {10, 11, 8, 9}, {15, 12, 13, 14}, // rows
}

// cache maps state words to registers during the unrolled rounds.
type cache struct {
	x                 isa
	slot              func(int) Mem
	free              []reg.VecPhysical
	where             []int // register index in regs, or -1
	dirty             []bool
	spilt             []bool // the word's current value is in its spill slot (else in its input slot)
	slotIn, slotSpill int
	regs              []reg.VecPhysical
	owner             []int // word held by each register, or -1
	uses              [][]int
	step              int
}

func (c *cache) nextUse(w int) int {
	for s := c.step; s < len(c.uses); s++ {
		for _, u := range c.uses[s] {
			if u == w {
				return s
			}
		}
	}
	return 1 << 30
}

// get returns the register holding word w, loading it (and evicting the word used
// furthest in the future, never one of pinned) if needed.
func (c *cache) get(w int, pinned []int) reg.VecPhysical {
	if i := c.where[w]; i >= 0 {
		return c.regs[i]
	}
	slotFor := -1
	for i, o := range c.owner {
		if o < 0 {
			slotFor = i
			break
		}
	}
	if slotFor < 0 {
		far := -1
		for i, o := range c.owner {
			isPinned := false
			for _, p := range pinned {
				if p == o {
					isPinned = true
				}
			}
			if isPinned {
				continue
			}
			if nu := c.nextUse(o); nu > far {
				far, slotFor = nu, i
			}
		}
		o := c.owner[slotFor]
		if c.dirty[o] {
			c.x.store(c.regs[slotFor], c.slot(c.slotSpill+o))
			c.spilt[o] = true
			c.dirty[o] = false
		}
		c.where[o] = -1
	}
	if c.spilt[w] {
		c.x.load(c.slot(c.slotSpill+w), c.regs[slotFor])
	} else {
		c.x.load(c.slot(c.slotIn+w), c.regs[slotFor])
	}
	c.owner[slotFor] = w
	c.where[w] = slotFor
	return c.regs[slotFor]
}

func rounds(x isa, groups int, slot func(int) Mem, slotIn, slotSpill int) {
	r := x.regs()
	nw := 16 * groups
	c := &cache{x: x, slot: slot, regs: r[:14], slotIn: slotIn, slotSpill: slotSpill,
		where: make([]int, nw), dirty: make([]bool, nw), spilt: make([]bool, nw)}
	c.owner = make([]int, len(c.regs))
	for i := range c.owner {
		c.owner[i] = -1
	}
	for j := range c.where {
		c.where[j] = -1
	}
	// The schedule: 10 double rounds of two rounds; in a round, step i of each of the
	// four independent quarter-rounds in turn, so four dependency chains are in flight.
	// A step reads two words and updates a third: dst ^= (src1+src2) <<< rot[i].
	type qstep struct{ src1, src2, dst, rot int }
	rot := [4]int{7, 9, 13, 18}
	var steps []qstep
	for dr := 0; dr < 10; dr++ {
		for half := 0; half < 8; half += 4 {
			for i := 0; i < 4; i++ {
				for q := half; q < half+4; q++ {
					for g := 0; g < groups; g++ {
						y := doubleRound[q]
						o := 16 * g
						s := qstep{o + y[i], o + y[(i+3)%4], o + y[(i+1)%4], rot[i]}
						steps = append(steps, s)
						c.uses = append(c.uses, []int{s.src1, s.src2, s.dst})
					}
				}
			}
		}
	}
	for j := 0; j < nw; j++ {
		c.uses = append(c.uses, []int{j})
	}
	// Two temporaries serve every step: each step's five instructions are emitted
	// together, and register renaming keeps the interleaved chains independent.
	t, u := r[14], r[15]
	Comment("20 rounds, four quarter-rounds interleaved.")
	for c.step = 0; c.step < len(steps); c.step++ {
		s := steps[c.step]
		ws := c.uses[c.step]
		a := c.get(s.src1, ws)
		b := c.get(s.src2, ws)
		d := c.get(s.dst, ws)
		x.add(t, a, b)
		x.xorRot(d, t, u, s.rot)
		c.dirty[s.dst] = true
	}
	Comment("Add the input state and spill every word for the transpose.")
	for j := 0; j < nw; j++ {
		if c.where[j] >= 0 {
			v := c.regs[c.where[j]]
			x.addMem(slot(slotIn+j), v)
			x.store(v, slot(slotSpill+j))
		}
	}
	for j := 0; j < nw; j++ {
		if c.where[j] < 0 {
			v := r[14]
			if c.spilt[j] {
				x.load(slot(slotSpill+j), v)
			} else {
				x.load(slot(slotIn+j), v)
			}
			x.addMem(slot(slotIn+j), v)
			x.store(v, slot(slotSpill+j))
		}
	}
}

type avx2 struct{}

func (avx2) name() string { return "AVX2" }
func (avx2) width() int   { return 8 }
func (avx2) size() int    { return 32 }
func (avx2) regs() []reg.VecPhysical {
	return []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7,
		reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}
}
func (avx2) load(m Mem, r reg.VecPhysical)      { VMOVDQA(m, r) }
func (avx2) store(r reg.VecPhysical, m Mem)     { VMOVDQA(r, m) }
func (avx2) broadcast(m Mem, r reg.VecPhysical) { VPBROADCASTD(m, r) }
func (avx2) add(dst, a, b reg.VecPhysical)      { VPADDD(b, a, dst) }
func (avx2) addMem(m Mem, r reg.VecPhysical)    { VPADDD(m, r, r) }
func (avx2) addConst(m Mem, r reg.VecPhysical)  { VPADDD(m, r, r) }
func (avx2) xorRot(b, t, u reg.VecPhysical, n int) {
	VPSLLD(U8(n), t, u)
	VPSRLD(U8(32-n), t, t)
	VPXOR(u, b, b)
	VPXOR(t, b, b)
}
func (avx2) end() { VZEROUPPER() }

// transposeXOR handles the output in two halves of 32 bytes per block: words 8h..8h+7.
// After a 4x4 dword transpose inside each 128-bit lane, vector i of words 8h..8h+3
// holds block i's words in its low half and block i+4's in its high half; VPERM2I128
// joins them with words 8h+4..8h+7.
func (avx2) transposeXOR(spill func(int) Mem, in, out reg.GPPhysical, at int) {
	y := avx2{}.regs()
	tr := func(a []reg.VecPhysical, w int) {
		for k := 0; k < 4; k++ {
			VMOVDQA(spill(w+k), a[k])
		}
		t := y[8:12]
		VPUNPCKLDQ(a[1], a[0], t[0])
		VPUNPCKHDQ(a[1], a[0], t[1])
		VPUNPCKLDQ(a[3], a[2], t[2])
		VPUNPCKHDQ(a[3], a[2], t[3])
		VPUNPCKLQDQ(t[2], t[0], a[0])
		VPUNPCKHQDQ(t[2], t[0], a[1])
		VPUNPCKLQDQ(t[3], t[1], a[2])
		VPUNPCKHQDQ(t[3], t[1], a[3])
	}
	for h := 0; h < 2; h++ {
		lo, hi := y[0:4], y[4:8]
		tr(lo, 8*h)
		tr(hi, 8*h+4)
		for i := 0; i < 4; i++ {
			for q, sel := range []uint8{0x20, 0x31} {
				blk := i + 4*q
				off := at + 64*blk + 32*h
				v := y[12+2*(i%2)+q]
				VPERM2I128(U8(sel), hi[i], lo[i], v)
				VPXOR(Mem{Base: in, Disp: off}, v, v)
				VMOVDQU(v, Mem{Base: out, Disp: off})
			}
		}
	}
}

type sse2 struct{}

func (sse2) name() string { return "SSE2" }
func (sse2) width() int   { return 4 }
func (sse2) size() int    { return 16 }
func (sse2) regs() []reg.VecPhysical {
	return []reg.VecPhysical{reg.X0, reg.X1, reg.X2, reg.X3, reg.X4, reg.X5, reg.X6, reg.X7,
		reg.X8, reg.X9, reg.X10, reg.X11, reg.X12, reg.X13, reg.X14, reg.X15}
}
func (sse2) load(m Mem, r reg.VecPhysical)  { MOVO(m, r) }
func (sse2) store(r reg.VecPhysical, m Mem) { MOVO(r, m) }
func (sse2) broadcast(m Mem, r reg.VecPhysical) {
	MOVL(m, reg.EAX)
	MOVD(reg.EAX, r)
	PSHUFD(U8(0), r, r)
}
func (sse2) add(dst, a, b reg.VecPhysical) {
	MOVO(a, dst)
	PADDL(b, dst)
}
func (sse2) addMem(m Mem, r reg.VecPhysical) { PADDL(m, r) }
func (sse2) addConst(m Mem, r reg.VecPhysical) {
	MOVOU(m, reg.X15)
	PADDL(reg.X15, r)
}
func (sse2) xorRot(b, t, u reg.VecPhysical, n int) {
	MOVO(t, u)
	PSLLL(U8(n), u)
	PSRLL(U8(32-n), t)
	PXOR(u, b)
	PXOR(t, b)
}
func (sse2) end() {}

// transposeXOR transposes each group of four words (a 4x4 dword matrix) back into
// 16 bytes of each of the four blocks.
func (sse2) transposeXOR(spill func(int) Mem, in, out reg.GPPhysical, at int) {
	x := sse2{}.regs()
	for g := 0; g < 4; g++ {
		a, t := x[0:4], x[4:8]
		for k := 0; k < 4; k++ {
			MOVO(spill(4*g+k), a[k])
		}
		MOVO(a[0], t[0])
		PUNPCKLLQ(a[1], t[0])
		MOVO(a[0], t[1])
		PUNPCKHLQ(a[1], t[1])
		MOVO(a[2], t[2])
		PUNPCKLLQ(a[3], t[2])
		MOVO(a[2], t[3])
		PUNPCKHLQ(a[3], t[3])
		MOVO(t[0], a[0])
		PUNPCKLQDQ(t[2], a[0])
		MOVO(t[0], a[1])
		PUNPCKHQDQ(t[2], a[1])
		MOVO(t[1], a[2])
		PUNPCKLQDQ(t[3], a[2])
		MOVO(t[1], a[3])
		PUNPCKHQDQ(t[3], a[3])
		for i := 0; i < 4; i++ {
			off := at + 64*i + 16*g
			v := x[8+i]
			MOVOU(Mem{Base: in, Disp: off}, v)
			PXOR(a[i], v)
			MOVOU(v, Mem{Base: out, Disp: off})
		}
	}
}
