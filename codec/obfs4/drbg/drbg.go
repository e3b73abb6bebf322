// Package drbg is obfs4's deterministic random bit generator: SipHash-2-4 run in what the
// obfs4 spec calls OFB mode, as deployed obfs4proxy and lyrebird really run it.
//
// The generator masks every frame length on the wire, and as a math/rand Source it drives
// the per-bridge length and delay distributions and the close delay. Both ends of a
// connection must draw the same blocks in the same order, so the construction here follows
// the deployed code bit for bit rather than the spec text: one streaming SipHash state,
// keyed once and never reset, absorbs the IV and then every block it outputs, and each
// block is the digest of everything absorbed so far:
//
//	out_n = SipHash-2-4(K, IV ‖ out_1 ‖ … ‖ out_{n-1})
//
// not the spec's SipHash(K, out_{n-1}). Keeping the running state makes each block O(1).
package drbg

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
)

// SeedLength is the size of a seed: a 16-byte SipHash key followed by an 8-byte IV.
const SeedLength = 24

// BlockLength is the size of one output block.
const BlockLength = 8

// Seed keys a HashDrbg: SipHash key (16 bytes) ‖ IV (8 bytes). obfs4 takes it from the
// last 24 bytes of each direction's 72 bytes of key material, from a bridge's drbg-seed,
// or from the PRNG seed packet.
type Seed [SeedLength]byte

// NewSeed returns a seed from crypto/rand.
func NewSeed() Seed {
	var s Seed
	rand.Read(s[:]) // never fails (Go ≥ 1.24 crashes instead of returning an error)
	return s
}

// SeedFromBytes copies a seed out of b, which must be exactly SeedLength bytes.
func SeedFromBytes(b []byte) (Seed, error) {
	var s Seed
	if len(b) != SeedLength {
		return s, fmt.Errorf("drbg: seed is %d bytes, want %d", len(b), SeedLength)
	}
	copy(s[:], b)
	return s, nil
}

// SeedFromHex parses the 48 hex digits of a seed, the form obfs4's state file stores
// ("drbg-seed").
func SeedFromHex(s string) (Seed, error) {
	var seed Seed
	if len(s) != 2*SeedLength {
		return seed, fmt.Errorf("drbg: seed is %d hex digits, want %d", len(s), 2*SeedLength)
	}
	if _, err := hex.Decode(seed[:], []byte(s)); err != nil {
		return seed, fmt.Errorf("drbg: seed: %w", err)
	}
	return seed, nil
}

// Hex returns the seed as 48 lower-case hex digits.
func (s Seed) Hex() string { return hex.EncodeToString(s[:]) }

// HashDrbg is the generator. It is not safe for concurrent use; each connection direction
// owns one.
type HashDrbg struct {
	h    SipHash // has absorbed IV ‖ out_1 ‖ … ‖ out_{n-2}
	next uint64  // the block to absorb before the next digest: IV, then the last output
}

// New returns a generator keyed with seed.
func New(seed Seed) *HashDrbg {
	d := new(HashDrbg)
	d.Reset(seed)
	return d
}

// Reset rekeys d with seed, as if it had just been made with New. It lets a generator live
// inside a larger struct without an allocation of its own.
func (d *HashDrbg) Reset(seed Seed) {
	var key [16]byte
	copy(key[:], seed[:16])
	d.h = NewSipHash(&key)
	d.next = binary.LittleEndian.Uint64(seed[16:])
}

// NextBlock returns the next 8 bytes of output, in the byte order the peers use (the
// little-endian encoding of the SipHash digest). obfs4's length mask is the big-endian
// uint16 of the first two.
func (d *HashDrbg) NextBlock() [BlockLength]byte {
	var b [BlockLength]byte
	binary.LittleEndian.PutUint64(b[:], d.next64())
	return b
}

// NextMask returns the 16-bit frame length mask of the next block: BE16(NextBlock()[0:2]).
func (d *HashDrbg) NextMask() uint16 {
	v := d.next64()
	// The first two bytes of the little-endian encoding, read big-endian.
	return uint16(v)<<8 | uint16(v>>8)&0xff
}

// next64 advances the generator and returns the digest as a number.
func (d *HashDrbg) next64() uint64 {
	d.h.writeBlock(d.next)
	d.next = d.h.Sum64()
	return d.next
}

// Int63 makes HashDrbg a math/rand Source: the block read as a big-endian integer with the
// top bit cleared, as the deployed peers do. (It deliberately has no Uint64 method, which
// would change how math/rand.Rand draws.)
func (d *HashDrbg) Int63() int64 {
	return int64(bits.ReverseBytes64(d.next64()) & (1<<63 - 1))
}

// Seed exists to satisfy math/rand.Source and does nothing: the generator can only be
// keyed with a full Seed (Reset). The peers' generators behave the same way.
func (d *HashDrbg) Seed(int64) {}
