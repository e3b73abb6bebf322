package cipher

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// Salsa20's "expand 32-byte k" constants, state words 0, 5, 10 and 15.
const (
	sigma0 = 0x61707865
	sigma1 = 0x3320646e
	sigma2 = 0x79622d32
	sigma3 = 0x6b206574
)

// maxGroup is the widest kernel's group in bytes (AVX2: 8 blocks). Tails and frame
// heads go through stack buffers of this size.
const maxGroup = 8 * 64

// A kernel XORs blocks*64 bytes of Salsa20/20 keystream into out from in, starting at
// the block counter in state[8] (low) and state[9] (high). blocks is a multiple of
// lanes, and the low counter word must not wrap inside a call (generic is exempt from
// both). Kernels read state and never write it: callers advance the counter.
//
// A kernel is named by its width and dispatched by a switch (xorBlocks), not a func
// value: an indirect call would make every buffer passed to it escape to the heap.
type kernel struct {
	lanes int
}

// A variant is one implementation choice: its kernels, widest first, always ending with
// the generic one.
type variant struct {
	name    string
	kernels []kernel
	vecPoly bool // Poly1305 through polySumAVX2 (else x/crypto's)
}

var genericKernel = kernel{lanes: 1}

// initState lays out a Salsa20 state for key and the 8-byte nonce words n0, n1 with
// block counter zero.
func initState(st *[16]uint32, key *[32]byte, n0, n1 uint32) {
	st[0], st[5], st[10], st[15] = sigma0, sigma1, sigma2, sigma3
	for i := 0; i < 4; i++ {
		st[1+i] = binary.LittleEndian.Uint32(key[4*i:])
		st[11+i] = binary.LittleEndian.Uint32(key[16+4*i:])
	}
	st[6], st[7], st[8], st[9] = n0, n1, 0, 0
}

// advance moves the state's 64-bit block counter on by n, carrying from the low word
// into the high word as x/crypto's salsa20 does.
func advance(st *[16]uint32, n uint64) {
	c := uint64(st[9])<<32 | uint64(st[8])
	c += n
	st[8], st[9] = uint32(c), uint32(c>>32)
}

// xorKeyStream XORs len(in) bytes of keystream into out (which must be at least as
// long, and may alias in exactly, but not overlap it otherwise) and advances the block
// counter past every block it used, a partly used last block included.
func (v *variant) xorKeyStream(out, in []byte, st *[16]uint32) {
	if len(in) == 0 {
		return
	}
	out = out[:len(in)]
	wide := v.kernels[0]
	for len(in) >= 64*wide.lanes {
		blocks := uint64(len(in) / 64)
		room := 1<<32 - uint64(st[8])
		if room < uint64(wide.lanes) {
			// A group would carry into the high counter word: go past the carry
			// one block at a time.
			xorKeyStreamGeneric(&out[0], &in[0], int(room), st)
			advance(st, room)
			in, out = in[64*room:], out[64*room:]
			continue
		}
		blocks = min(blocks, room)
		blocks -= blocks % uint64(wide.lanes)
		xorBlocks(wide.lanes, &out[0], &in[0], int(blocks), st)
		advance(st, blocks)
		in, out = in[64*blocks:], out[64*blocks:]
	}
	if len(in) == 0 {
		return
	}
	// The tail, shorter than a wide group: through a buffer, with the narrowest SIMD
	// kernel whose group covers it. A single block is cheaper in Go (measured on AMD
	// EPYC: one generic block ~150 ns, an SSE2 group of 4 ~260 ns, an AVX2 group of 8
	// ~185 ns), and generic also takes a group that would carry.
	blocks := (len(in) + 63) / 64
	k := genericKernel
	if blocks > 1 {
		for _, c := range v.kernels {
			if c.lanes > 1 && 64*c.lanes >= len(in) && uint64(c.lanes) <= 1<<32-uint64(st[8]) {
				k = c
			}
		}
	}
	if k.lanes > blocks {
		blocks = k.lanes
	}
	var buf [maxGroup]byte
	copy(buf[:], in)
	xorBlocks(k.lanes, &buf[0], &buf[0], blocks, st)
	copy(out, buf[:len(in)])
	advance(st, uint64((len(in)+63)/64))
}

// xorKeyStreamGeneric is the pure-Go kernel and the reference for the others.
func xorKeyStreamGeneric(out, in *byte, blocks int, state *[16]uint32) {
	o := unsafe.Slice(out, 64*blocks)
	n := unsafe.Slice(in, 64*blocks)
	st := *state
	var ks [16]uint32
	for b := 0; b < blocks; b++ {
		core(&ks, &st)
		for i, w := range ks {
			binary.LittleEndian.PutUint32(o[64*b+4*i:], binary.LittleEndian.Uint32(n[64*b+4*i:])^w)
		}
		advance(&st, 1)
	}
}

// core computes one Salsa20/20 block: 20 rounds of in plus in.
func core(out, in *[16]uint32) {
	x := *in
	rounds(&x)
	for i := range out {
		out[i] = x[i] + in[i]
	}
}

// rounds applies Salsa20's 20 rounds (10 double rounds) to x in place.
func rounds(x *[16]uint32) {
	x0, x1, x2, x3, x4, x5, x6, x7 := x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]
	x8, x9, x10, x11, x12, x13, x14, x15 := x[8], x[9], x[10], x[11], x[12], x[13], x[14], x[15]
	for i := 0; i < 10; i++ {
		// Columns.
		x4 ^= bits.RotateLeft32(x0+x12, 7)
		x8 ^= bits.RotateLeft32(x4+x0, 9)
		x12 ^= bits.RotateLeft32(x8+x4, 13)
		x0 ^= bits.RotateLeft32(x12+x8, 18)

		x9 ^= bits.RotateLeft32(x5+x1, 7)
		x13 ^= bits.RotateLeft32(x9+x5, 9)
		x1 ^= bits.RotateLeft32(x13+x9, 13)
		x5 ^= bits.RotateLeft32(x1+x13, 18)

		x14 ^= bits.RotateLeft32(x10+x6, 7)
		x2 ^= bits.RotateLeft32(x14+x10, 9)
		x6 ^= bits.RotateLeft32(x2+x14, 13)
		x10 ^= bits.RotateLeft32(x6+x2, 18)

		x3 ^= bits.RotateLeft32(x15+x11, 7)
		x7 ^= bits.RotateLeft32(x3+x15, 9)
		x11 ^= bits.RotateLeft32(x7+x3, 13)
		x15 ^= bits.RotateLeft32(x11+x7, 18)

		// Rows.
		x1 ^= bits.RotateLeft32(x0+x3, 7)
		x2 ^= bits.RotateLeft32(x1+x0, 9)
		x3 ^= bits.RotateLeft32(x2+x1, 13)
		x0 ^= bits.RotateLeft32(x3+x2, 18)

		x6 ^= bits.RotateLeft32(x5+x4, 7)
		x7 ^= bits.RotateLeft32(x6+x5, 9)
		x4 ^= bits.RotateLeft32(x7+x6, 13)
		x5 ^= bits.RotateLeft32(x4+x7, 18)

		x11 ^= bits.RotateLeft32(x10+x9, 7)
		x8 ^= bits.RotateLeft32(x11+x10, 9)
		x9 ^= bits.RotateLeft32(x8+x11, 13)
		x10 ^= bits.RotateLeft32(x9+x8, 18)

		x12 ^= bits.RotateLeft32(x15+x14, 7)
		x13 ^= bits.RotateLeft32(x12+x15, 9)
		x14 ^= bits.RotateLeft32(x13+x12, 13)
		x15 ^= bits.RotateLeft32(x14+x13, 18)
	}
	x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7] = x0, x1, x2, x3, x4, x5, x6, x7
	x[8], x[9], x[10], x[11], x[12], x[13], x[14], x[15] = x8, x9, x10, x11, x12, x13, x14, x15
}

// hsalsa20 derives XSalsa20's subkey from key and the nonce's first 16 bytes: Salsa20's
// rounds without the final addition, keeping words 0, 5, 10, 15, 6, 7, 8, 9.
func hsalsa20(subkey *[32]byte, key *[32]byte, nonce *[16]byte) {
	var x [16]uint32
	initState(&x, key, binary.LittleEndian.Uint32(nonce[0:]), binary.LittleEndian.Uint32(nonce[4:]))
	x[8] = binary.LittleEndian.Uint32(nonce[8:])
	x[9] = binary.LittleEndian.Uint32(nonce[12:])
	rounds(&x)
	for i, w := range [8]uint32{x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9]} {
		binary.LittleEndian.PutUint32(subkey[4*i:], w)
	}
}

// XORKeyStream XORs len(in) bytes of Salsa20/20 keystream (8-byte nonce) or XSalsa20
// keystream (24-byte nonce) into out, block counter starting at zero, exactly as
// golang.org/x/crypto/salsa20.XORKeyStream does, with the variant active now. out must
// be at least as long as in and may alias it exactly but not overlap it otherwise.
func XORKeyStream(out, in []byte, nonce []byte, key *[32]byte) {
	if len(out) < len(in) {
		panic("cipher: output smaller than input")
	}
	var st [16]uint32
	switch len(nonce) {
	case 8:
		initState(&st, key, binary.LittleEndian.Uint32(nonce[0:]), binary.LittleEndian.Uint32(nonce[4:]))
	case 24:
		var subkey [32]byte
		hsalsa20(&subkey, key, (*[16]byte)(nonce))
		initState(&st, &subkey, binary.LittleEndian.Uint32(nonce[16:]), binary.LittleEndian.Uint32(nonce[20:]))
	default:
		panic("cipher: nonce must be 8 or 24 bytes")
	}
	active.Load().xorKeyStream(out, in, &st)
}
