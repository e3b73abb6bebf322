package drbg

import (
	"encoding/binary"
	"math/bits"
)

// SipHash-2-4 (Aumasson and Bernstein), written out here because obfs4 needs its streaming
// form: the DRBG keeps one keyed state open for the life of a connection direction and
// takes a digest after every 8 bytes it feeds in, without ever finalising the state.

// SipHash is a streaming SipHash-2-4 state. The zero value is not usable; start from
// NewSipHash. Copying a SipHash copies the state, which is how Sum64 can peek at the
// digest without disturbing what has been written so far.
type SipHash struct {
	v0, v1, v2, v3 uint64
	tail           [8]byte // bytes written that do not yet fill a block
	ntail          int
	length         uint64 // total bytes written; only its low byte reaches the digest
}

// NewSipHash returns a SipHash-2-4 state keyed with key (k0 = LE64(key[0:8]),
// k1 = LE64(key[8:16]), as in the reference implementation).
func NewSipHash(key *[16]byte) SipHash {
	k0 := binary.LittleEndian.Uint64(key[0:8])
	k1 := binary.LittleEndian.Uint64(key[8:16])
	return SipHash{
		v0: k0 ^ 0x736f6d6570736575,
		v1: k1 ^ 0x646f72616e646f6d,
		v2: k0 ^ 0x6c7967656e657261,
		v3: k1 ^ 0x7465646279746573,
	}
}

// Write absorbs p. It never fails; the signature matches io.Writer for convenience.
func (s *SipHash) Write(p []byte) (int, error) {
	n := len(p)
	s.length += uint64(n)
	if s.ntail > 0 {
		c := copy(s.tail[s.ntail:], p)
		s.ntail += c
		p = p[c:]
		if s.ntail < 8 {
			return n, nil
		}
		s.block(binary.LittleEndian.Uint64(s.tail[:]))
		s.ntail = 0
	}
	for len(p) >= 8 {
		s.block(binary.LittleEndian.Uint64(p))
		p = p[8:]
	}
	s.ntail = copy(s.tail[:], p)
	return n, nil
}

// writeBlock absorbs one aligned 8-byte block given as its little-endian value. It is the
// DRBG's fast path and requires that no partial block is pending.
func (s *SipHash) writeBlock(m uint64) {
	s.length += 8
	s.block(m)
}

// Sum64 returns the digest of everything written so far. The state is left as it was, so
// more may be written afterwards and the digest taken again.
func (s *SipHash) Sum64() uint64 {
	b := s.length << 56
	for i := s.ntail - 1; i >= 0; i-- {
		b |= uint64(s.tail[i]) << (8 * uint(i))
	}
	v0, v1, v2, v3 := s.v0, s.v1, s.v2, s.v3
	v3 ^= b
	v0, v1, v2, v3 = round(v0, v1, v2, v3)
	v0, v1, v2, v3 = round(v0, v1, v2, v3)
	v0 ^= b
	v2 ^= 0xff
	v0, v1, v2, v3 = round(v0, v1, v2, v3)
	v0, v1, v2, v3 = round(v0, v1, v2, v3)
	v0, v1, v2, v3 = round(v0, v1, v2, v3)
	v0, v1, v2, v3 = round(v0, v1, v2, v3)
	return v0 ^ v1 ^ v2 ^ v3
}

// Sum64 is the one-shot SipHash-2-4 of msg under key (obfs4's replay filter keys its table
// with it).
func Sum64(key *[16]byte, msg []byte) uint64 {
	s := NewSipHash(key)
	s.Write(msg)
	return s.Sum64()
}

// block runs the two compression rounds over one message word.
func (s *SipHash) block(m uint64) {
	v0, v1, v2, v3 := s.v0, s.v1, s.v2, s.v3^m
	v0, v1, v2, v3 = round(v0, v1, v2, v3)
	v0, v1, v2, v3 = round(v0, v1, v2, v3)
	s.v0, s.v1, s.v2, s.v3 = v0^m, v1, v2, v3
}

func round(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}
