package cipher

import (
	"encoding/binary"
	"errors"

	"golang.org/x/crypto/nacl/secretbox"
)

// Overhead is the Poly1305 tag that precedes every sealed frame.
const Overhead = secretbox.Overhead

// ErrOpen is returned when a frame's tag does not verify.
var ErrOpen = errors.New("cipher: message authentication failed")

// FrameBox seals and opens the NaCl secretbox (XSalsa20-Poly1305) frames of one session
// direction. obfs4 fixes the first 16 bytes of the 24-byte nonce per direction and counts
// frames in the last 8 (big-endian), so a box is built once per direction and given only the
// counter per frame; that lets an implementation keep per-session work (the HSalsa20
// subkey) out of the per-frame path.
//
// Seal and Open produce and accept exactly what secretbox.Seal and secretbox.Open do for the
// nonce prefix‖BE64(counter): the 16-byte tag followed by the ciphertext.
type FrameBox interface {
	// Seal appends the sealed frame of plaintext to dst.
	Seal(dst []byte, counter uint64, plaintext []byte) []byte
	// Open appends the plaintext of box to dst, or returns ErrOpen and releases nothing.
	Open(dst []byte, counter uint64, box []byte) ([]byte, error)
}

// NewFrameBox returns the fastest FrameBox for this CPU.
func NewFrameBox(key *[32]byte, prefix *[16]byte) FrameBox {
	b := &xcryptoBox{key: *key}
	copy(b.nonce[:16], prefix[:])
	return b
}

// xcryptoBox is golang.org/x/crypto's secretbox, the reference every faster box is tested
// against.
type xcryptoBox struct {
	key   [32]byte
	nonce [24]byte
}

func (b *xcryptoBox) Seal(dst []byte, counter uint64, plaintext []byte) []byte {
	binary.BigEndian.PutUint64(b.nonce[16:], counter)
	return secretbox.Seal(dst, plaintext, &b.nonce, &b.key)
}

func (b *xcryptoBox) Open(dst []byte, counter uint64, box []byte) ([]byte, error) {
	binary.BigEndian.PutUint64(b.nonce[16:], counter)
	out, ok := secretbox.Open(dst, box, &b.nonce, &b.key)
	if !ok {
		return dst, ErrOpen
	}
	return out, nil
}
