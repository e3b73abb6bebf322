package framing

import (
	crand "crypto/rand"
	"encoding/binary"

	"github.com/ptreactor/ptreactor/codec/cipher"
	"github.com/ptreactor/ptreactor/codec/obfs4/drbg"
)

// Reader is the receiving direction of one obfs4 connection. It is not safe for concurrent
// use. Reading does not depend on either side's iat-mode.
type Reader struct {
	box     cipher.FrameBox
	counter uint64 // nonce counter of the next frame; 0 once all have been used
	mask    drbg.HashDrbg
	// next is the secretbox length of the frame whose header has been unmasked (which
	// took a DRBG block) but whose body has not all arrived; 0 when no header is pending.
	next  int
	bogus bool // next is a pretend length: fail once that many bytes are here
	seed  drbg.Seed
	err   error // sticky
}

// NewReader returns the Reader for one direction; key is that direction's 72 bytes of key
// material (the client reads with okm[72:144], the server with okm[0:72]).
func NewReader(key []byte) (*Reader, error) {
	box, seed, err := directionKeys(key)
	if err != nil {
		return nil, err
	}
	r := &Reader{box: box, counter: 1}
	r.mask.Reset(seed)
	return r, nil
}

// Unwrap opens every complete frame at the start of in and appends the payload of its
// payload packets to payload, returning the extended slice as payloadOut. A trailing
// partial frame is not consumed: offer it again, with more bytes after it, in the next
// call (the Reader remembers its unmasked length, so in must then start with the same
// bytes). Unwrap appends at most consumed bytes' worth to payload at any moment, so a
// payload buffer with len(in) bytes of spare capacity never has to grow. in and payload
// must not overlap.
//
// seed is non-nil when a PRNG seed packet with exactly a 24-byte payload arrived (the
// last one, if several did); it points into the Reader and is valid until the next call.
// A client hands it to its Writer's Reseed; a server ignores it. Packets of other types
// are authenticated and ignored.
//
// Any error ends the direction for good: every later call returns it. Payload of the
// frames opened before the failure is still returned. A frame length outside 16..1446 is
// not reported at once: the Reader pretends the frame has a random valid length, waits
// for that many bytes, and then reports ErrTagMismatch, so that a prober learns nothing
// from when the connection closes (Bider's countermeasure against length oracles).
func (r *Reader) Unwrap(in, payload []byte) (consumed int, payloadOut []byte, seed *drbg.Seed, err error) {
	out := payload
	if r.err != nil {
		return 0, out, nil, r.err
	}
	for {
		rest := in[consumed:]
		if r.next == 0 {
			if len(rest) < lengthLength {
				break
			}
			if r.counter == 0 {
				return r.fail(consumed, out, seed, ErrCounterWrapped)
			}
			n := int(binary.BigEndian.Uint16(rest) ^ r.mask.NextMask())
			if n < MinFrameLength || n > MaxFrameLength {
				n, r.bogus = randomFrameLength(), true
			}
			r.next = n
		}
		frameLen := lengthLength + r.next
		if len(rest) < frameLen {
			break
		}
		if r.bogus {
			return r.fail(consumed, out, seed, ErrTagMismatch)
		}
		start := len(out)
		out, err = r.box.Open(out, r.counter, rest[lengthLength:frameLen])
		if err != nil {
			return r.fail(consumed, out[:start], seed, ErrTagMismatch)
		}
		r.counter++
		r.next = 0
		consumed += frameLen

		// Parse the packet in place and keep only its payload.
		pkt := out[start:]
		if len(pkt) < PacketOverhead {
			return r.fail(consumed, out[:start], seed, ErrInvalidPacket)
		}
		typ := pkt[0]
		n := int(binary.BigEndian.Uint16(pkt[1:]))
		if n > len(pkt)-PacketOverhead {
			return r.fail(consumed, out[:start], seed, ErrInvalidPacket)
		}
		body := pkt[PacketOverhead : PacketOverhead+n]
		switch typ {
		case PacketTypePayload:
			copy(pkt, body) // overlapping move down over the packet header
			out = out[:start+n]
		case PacketTypePRNGSeed:
			if n == SeedPacketPayloadLength {
				copy(r.seed[:], body)
				seed = &r.seed
			}
			out = out[:start]
		default:
			out = out[:start]
		}
	}
	return consumed, out, seed, nil
}

func (r *Reader) fail(consumed int, out []byte, seed *drbg.Seed, err error) (int, []byte, *drbg.Seed, error) {
	r.err = err
	return consumed, out, seed, err
}

// Err reports why the Reader stopped, if it has.
func (r *Reader) Err() error { return r.err }

// randomFrameLength is a uniform secretbox length in [MinFrameLength, MaxFrameLength],
// unpredictable to the peer.
func randomFrameLength() int {
	const span = MaxFrameLength - MinFrameLength + 1
	const limit = 65536 - 65536%span // reject above this for an unbiased result
	var b [2]byte
	for {
		crand.Read(b[:])
		if v := int(binary.BigEndian.Uint16(b[:])); v < limit {
			return MinFrameLength + v%span
		}
	}
}
