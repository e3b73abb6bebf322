// Package ntor is the ntor key agreement as obfs4 uses it. It is not Tor's ntor: obfs4's
// transcript suffix is B‖B‖X‖Y‖PROTOID‖NODEID (the identity key twice and the node ID
// last, an accident of the original Go code that every deployed peer now depends on), and
// the 144-byte key material is split client→server first.
//
// The package only does the arithmetic and the hashing; the handshake messages that carry
// X, Y and AUTH live in package obfs4.
package ntor

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"io"

	"golang.org/x/crypto/hkdf"
)

// Sizes of the values the handshake exchanges and derives.
const (
	KeySize    = 32  // Curve25519 keys
	NodeIDSize = 20  // the bridge's node ID
	AuthSize   = 32  // AUTH, an HMAC-SHA256
	SeedSize   = 32  // KEY_SEED
	OKMSize    = 144 // KDF output: two directions of key 32, nonce prefix 16, SipHash key 16, IV 8
)

// ProtoID is the PROTOID of the ntor transcript.
const ProtoID = "ntor-curve25519-sha256-1"

var (
	tMac    = []byte(ProtoID + ":mac")
	tKey    = []byte(ProtoID + ":key_extract")
	tVerify = []byte(ProtoID + ":key_verify")
	mExpand = []byte(ProtoID + ":key_expand")
)

// ErrZeroSecret is returned when a Diffie-Hellman result is all zeros: the peer sent a
// low-order point.
var ErrZeroSecret = errors.New("ntor: degenerate shared secret")

// Client completes the client side: x is the client's ephemeral secret, X its public key
// (the value whose representative was sent), Y the server's decoded ephemeral key, B and
// id the bridge's identity. It returns KEY_SEED and the AUTH the server must have sent; the
// caller compares AUTH in constant time.
func Client(x, X, Y, B *[KeySize]byte, id *[NodeIDSize]byte) (keySeed, auth [32]byte, err error) {
	var zy, zb [KeySize]byte
	bad := x25519(&zy, x, Y) | x25519(&zb, x, B)
	return finish(&zy, &zb, bad, X, Y, B, id)
}

// Server completes the server side: y and Y are the server's ephemeral keypair, b the
// identity secret, X the client's decoded key. It returns KEY_SEED and AUTH to send.
func Server(y, b, X, Y, B *[KeySize]byte, id *[NodeIDSize]byte) (keySeed, auth [32]byte, err error) {
	var zy, zb [KeySize]byte
	bad := x25519(&zy, y, X) | x25519(&zb, b, X)
	return finish(&zy, &zb, bad, X, Y, B, id)
}

// finish hashes the two DH results with the transcript. Both results are always hashed, so
// a degenerate key is not revealed by timing; bad is 1 if either result was all zeros.
func finish(z1, z2 *[KeySize]byte, bad int, X, Y, B *[KeySize]byte, id *[NodeIDSize]byte) (keySeed, auth [32]byte, err error) {
	var suffix [4*KeySize + len(ProtoID) + NodeIDSize]byte
	s := suffix[:0]
	s = append(s, B[:]...)
	s = append(s, B[:]...)
	s = append(s, X[:]...)
	s = append(s, Y[:]...)
	s = append(s, ProtoID...)
	s = append(s, id[:]...)

	m := hmac.New(sha256.New, tKey)
	m.Write(z1[:])
	m.Write(z2[:])
	m.Write(s)
	m.Sum(keySeed[:0])

	m = hmac.New(sha256.New, tVerify)
	m.Write(z1[:])
	m.Write(z2[:])
	m.Write(s)
	var verify [32]byte
	m.Sum(verify[:0])

	m = hmac.New(sha256.New, tMac)
	m.Write(verify[:])
	m.Write(s)
	m.Write([]byte("Server"))
	m.Sum(auth[:0])

	if bad != 0 {
		return [32]byte{}, [32]byte{}, ErrZeroSecret
	}
	return keySeed, auth, nil
}

// KDF expands KEY_SEED into the session keys: okm[0:72] protects client→server frames and
// okm[72:144] server→client ones.
func KDF(okm *[OKMSize]byte, keySeed *[SeedSize]byte) {
	r := hkdf.New(sha256.New, keySeed[:], tKey, mExpand)
	if _, err := io.ReadFull(r, okm[:]); err != nil {
		panic(err) // HKDF-SHA256 can give up to 8160 bytes
	}
}
