//go:build gc && !purego

package cipher

import "github.com/klauspost/cpuid/v2"

//go:generate sh -c "cd _asm && go run . -pkg cipher -out ../kernels_amd64.s -stubs ../kernels_stubs_amd64.go"

var (
	sse2 = &variant{name: "sse2", kernels: []kernel{{4}, genericKernel}}
	// The avx2 variant has no SSE2 kernel for tails: a whole AVX2 group of 8 blocks
	// costs less than an SSE2 group of 4 here.
	avx2 = &variant{name: "avx2", kernels: []kernel{{8}, genericKernel}, vecPoly: true}
)

// available lists the variants this CPU runs, slowest first. SSE2 is part of amd64;
// cpuid's AVX2 flag already requires the OS to save YMM state.
func available() []*variant {
	if cpuid.CPU.Supports(cpuid.AVX2) {
		return []*variant{generic, sse2, avx2}
	}
	return []*variant{generic, sse2}
}

// xorBlocks runs the kernel of the given width.
func xorBlocks(lanes int, out, in *byte, blocks int, state *[16]uint32) {
	switch lanes {
	case 8:
		xorKeyStreamAVX2(out, in, blocks, state)
	case 4:
		xorKeyStreamSSE2(out, in, blocks, state)
	default:
		xorKeyStreamGeneric(out, in, blocks, state)
	}
}
