// Package framing is obfs4's data phase: packets sealed in NaCl secretbox frames whose
// lengths are masked by the obfs4 DRBG, padding drawn from the per-bridge length
// distribution, and the inter-arrival-time shaping of iat-mode 1 and 2.
//
// One frame on the wire is
//
//	BE16(len ^ mask) ‖ secretbox(packet)          len = 16 + |packet|, 16..1446
//	packet = type ‖ BE16(payload length) ‖ payload ‖ zero padding
//
// where the secretbox nonce is the direction's 16-byte prefix ‖ BE64(counter), the counter
// starting at 1 and never sent, and mask is the first two bytes (big-endian) of the next
// block of the direction's DRBG. Each direction is keyed with 72 bytes of the handshake's
// key material: secretbox key (32) ‖ nonce prefix (16) ‖ SipHash key (16) ‖ IV (8); the
// DRBG seed is the last 24. The client writes with okm[0:72] and reads with okm[72:144].
//
// Everything here is sans-IO and is driven from one event loop per connection: a Writer
// turns payload into wire bytes (and, for iat-mode 1 and 2, into a schedule of chunks and
// pauses that the reactor carries out with a timer), a Reader turns wire bytes back into
// payload. Neither allocates per frame once its buffers have grown.
//
// The byte layout, the padding rules and the pacing follow deployed obfs4proxy/lyrebird,
// which differ from the obfs4 spec text in places; the comments below say where.
package framing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ptreactor/ptreactor/codec/cipher"
	"github.com/ptreactor/ptreactor/codec/obfs4/drbg"
)

// Sizes, in bytes.
const (
	// KeyLength is the key material of one direction: secretbox key 32, nonce prefix 16,
	// SipHash key 16, SipHash IV 8.
	KeyLength = 72

	// MaxSegmentLength is the largest frame on the wire (a 1500-byte MTU less IP and TCP
	// headers with timestamps); paced writes are at most this long.
	MaxSegmentLength = 1448
	lengthLength     = 2
	// FrameOverhead is the masked length plus the Poly1305 tag.
	FrameOverhead = lengthLength + cipher.Overhead
	// MaxFramePayloadLength is the largest packet a frame carries.
	MaxFramePayloadLength = MaxSegmentLength - FrameOverhead
	// PacketOverhead is the packet's type and payload length.
	PacketOverhead = 3
	// MaxPacketPayloadLength is the most payload (or padding) one packet carries.
	MaxPacketPayloadLength = MaxFramePayloadLength - PacketOverhead
	// HeaderLength is the wire cost of a packet on top of its payload and padding.
	HeaderLength = FrameOverhead + PacketOverhead

	// MinFrameLength and MaxFrameLength bound the secretbox length a frame may claim.
	MinFrameLength = cipher.Overhead
	MaxFrameLength = MaxSegmentLength - lengthLength

	// SeedPacketPayloadLength is the payload of a PRNG seed packet.
	SeedPacketPayloadLength = drbg.SeedLength
	// SeedFrameLength is the server's PRNG seed frame on the wire (no padding).
	SeedFrameLength = HeaderLength + SeedPacketPayloadLength
)

// Packet types.
const (
	PacketTypePayload  = 0x00
	PacketTypePRNGSeed = 0x01
)

// Inter-arrival-time shaping: a pause is a sample of [0, MaxIATDelay] times IATUnit.
const (
	MaxIATDelay = 100
	IATUnit     = 100 * time.Microsecond
)

// iat-mode values.
const (
	IATNone     = 0 // one burst per write, padded once
	IATEnabled  = 1 // the padded burst goes out in ≤1448-byte chunks with a pause after each
	IATParanoid = 2 // every chunk's length is drawn from the length distribution
)

var (
	// ErrTagMismatch is returned when a frame fails authentication, including a frame
	// whose length was out of range (see Reader). It ends the connection.
	ErrTagMismatch = errors.New("obfs4/framing: frame authentication failed")
	// ErrCounterWrapped is returned when a direction has used all 2^64−1 nonces.
	ErrCounterWrapped = errors.New("obfs4/framing: nonce counter wrapped")
	// ErrInvalidPacket is returned for an authentic frame that holds no well-formed packet
	// (shorter than 3 bytes, or a payload length past its end).
	ErrInvalidPacket = errors.New("obfs4/framing: invalid packet")
	// ErrKeyLength is returned when the key material is not KeyLength bytes.
	ErrKeyLength = errors.New("obfs4/framing: key material must be 72 bytes")
)

// directionKeys splits one direction's key material.
func directionKeys(key []byte) (cipher.FrameBox, drbg.Seed, error) {
	var seed drbg.Seed
	if len(key) != KeyLength {
		return nil, seed, fmt.Errorf("%w (got %d)", ErrKeyLength, len(key))
	}
	var k [32]byte
	var prefix [16]byte
	copy(k[:], key[0:32])
	copy(prefix[:], key[32:48])
	copy(seed[:], key[48:72])
	return cipher.NewFrameBox(&k, &prefix), seed, nil
}

// putLength writes the masked secretbox length in front of a frame.
func putLength(hdr []byte, length int, mask uint16) {
	binary.BigEndian.PutUint16(hdr, uint16(length)^mask)
}
