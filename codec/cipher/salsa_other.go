//go:build !amd64 || !gc || purego

package cipher

// available lists the variants of this build: the pure-Go reference only.
func available() []*variant { return []*variant{generic} }

// xorBlocks runs the kernel of the given width: here always the generic one.
func xorBlocks(_ int, out, in *byte, blocks int, state *[16]uint32) {
	xorKeyStreamGeneric(out, in, blocks, state)
}

// polySumAVX2 is never called: no variant of this build sets vecPoly.
func polySumAVX2(tag *[16]byte, msg []byte, key *[32]byte) { polySumGeneric(tag, msg, key) }
