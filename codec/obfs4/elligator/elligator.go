// Package elligator hides Curve25519 public keys as uniformly random strings, the way obfs4
// (obfs4proxy 0.0.14, lyrebird) does it, so that the first 32 bytes of an obfs4 handshake
// cannot be told apart from noise.
//
// Three pieces make that work, and all three must match the deployed peers bit for bit:
//
//   - Key generation makes a "dirty" public key: the clamped scalar times the base point plus
//     one of the eight low-order points, picked by the three low bits of the (unclamped)
//     secret. A clean key lies in the prime-order subgroup, which is a distinguisher; the
//     dirty one is uniform over the whole curve, and X25519 with clamping still agrees with
//     every peer because the cofactor clamp removes the low-order part.
//   - The inverse map turns the Montgomery u-coordinate into a representative: one of two
//     preimages chosen by a tweak bit, the non-negative root (in [0, (p-1)/2]), and random
//     bits 254 and 255 from the tweak, because a 254-bit value in a 256-bit field is itself
//     a distinguisher. Only about half of all keys have a representative.
//   - The forward map clears bits 254 and 255 and maps the rest back to u.
//
// Key generation checks representability before it pays for the affine u-coordinate
// (DirtyPublic and Encode are the plain reference it is tested against), and a Pool keeps a
// bounded stock of keypairs made ahead of demand, each handed out once.
//
// The maths follows the Elligator 2 description at elligator.org (non-square Z = 2) and is
// built on filippo.io/edwards25519 and its field package.
package elligator

import (
	"crypto/sha512"
	"errors"
	"io"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// Size is the length of keys and representatives.
const Size = 32

// ErrNoRepresentative is returned for a public key the inverse map cannot encode.
var ErrNoRepresentative = errors.New("elligator: public key has no representative")

// Keypair is an ephemeral Curve25519 keypair whose public key can be sent as Representative.
type Keypair struct {
	// Private is the secret scalar as stored, unclamped; X25519 clamps it at use.
	Private [Size]byte
	// Public is the dirty Montgomery u-coordinate, the value the ntor transcript uses. It is
	// not X25519(Private, 9), but Decode(Representative) == Public.
	Public [Size]byte
	// Representative is what goes on the wire.
	Representative [Size]byte
}

// GenerateKeypair draws keypairs from rand until one has a representative; on average
// that takes two tries. Each try hashes 32 random bytes with SHA-512, as the peers do, so
// the secret and the tweak are independent of the raw entropy source.
func GenerateKeypair(rand io.Reader) (*Keypair, error) {
	kp := new(Keypair)
	var seed [32]byte
	for {
		if _, err := io.ReadFull(rand, seed[:]); err != nil {
			return nil, err
		}
		digest := sha512.Sum512(seed[:])
		if kp.fromDigest(&digest) {
			return kp, nil
		}
	}
}

// KeypairFromDigest builds the keypair a SHA-512 digest describes: the secret is its first
// 32 bytes and the tweak its last byte. It reports false when the public key has no
// representative. It exists for known-answer tests; GenerateKeypair is the normal entry.
func KeypairFromDigest(digest *[64]byte) (*Keypair, bool) {
	kp := new(Keypair)
	if !kp.fromDigest(digest) {
		return nil, false
	}
	return kp, true
}

func (kp *Keypair) fromDigest(digest *[64]byte) bool {
	copy(kp.Private[:], digest[:32])
	var p edwards25519.Point
	dirtyPoint(&p, &kp.Private)
	return encodePoint(&kp.Representative, &kp.Public, &p, digest[63])
}

// encodePoint does for key generation what DirtyPublic followed by Encode does, and
// agrees with them on every key (the tests compare the two on random digests), but more
// cheaply. It decides whether u(p) has a representative from u in projective form,
// u = N/D with N = Z+Y and D = Z−Y, since the two preimages are square roots of ratios
// that need no division: −u/(2(u+A)) = −N/(2(N+A·D)) and −(u+A)/(2u) = −(N+A·D)/(2N).
// So a key without a representative, half of all tries, costs one square root and no
// inversion; a key with one costs one inversion for u instead of BytesMontgomery's two.
// Only rejected keys leave early, so the time taken says nothing about the key kept.
func encodePoint(repr, pub *[Size]byte, p *edwards25519.Point, tweak byte) bool {
	_, y, z, _ := p.ExtendedCoordinates()
	var n, d, nA, num, den, num2, den2, r, neg, u field.Element
	n.Add(z, y)
	d.Subtract(z, y)
	nA.Multiply(&feA, &d)
	nA.Add(&nA, &n)
	num.Negate(&n)
	den.Add(&nA, &nA)
	num2.Negate(&nA)
	den2.Add(&n, &n)
	alt := int(tweak & 1)
	num.Select(&num2, &num, alt)
	den.Select(&den2, &den, alt)
	if _, wasSquare := r.SqrtRatio(&num, &den); wasSquare != 1 {
		return false
	}
	u.Multiply(&n, d.Invert(&d))
	copy(pub[:], u.Bytes())
	neg.Negate(&r)
	r.Select(&neg, &r, greaterThanHalfP(r.Bytes()))
	copy(repr[:], r.Bytes())
	repr[31] |= tweak & 0xc0
	// As in Encode, the round trip rules out the points the map does not really cover.
	var back [Size]byte
	Decode(&back, repr)
	if equalBytes(&back, pub) != 1 {
		*repr, *pub = [Size]byte{}, [Size]byte{}
		return false
	}
	return true
}

// lowOrder holds k·T for k = 0..7, where T is the order-8 point
// (sqrt((sqrt(d+1)+1)/d), -x·sqrt(-1)) with non-negative roots.
var lowOrder [8]edwards25519.Point

func init() {
	var one, minusOne, d, num, den, sqrtM1, x, y, t field.Element
	one.One()
	minusOne.Negate(&one)
	// d = -121665/121666
	num.Mult32(&one, 121665)
	num.Negate(&num)
	den.Mult32(&one, 121666)
	d.Multiply(&num, den.Invert(&den))
	sqrtM1.SqrtRatio(&minusOne, &one)
	// x = sqrt((sqrt(d+1)+1)/d)
	num.Add(&d, &one)
	num.SqrtRatio(&num, &one)
	num.Add(&num, &one)
	x.SqrtRatio(&num, &d)
	y.Multiply(&x, &sqrtM1)
	y.Negate(&y)
	t.Multiply(&x, &y)
	gen, err := new(edwards25519.Point).SetExtendedCoordinates(&x, &y, &one, &t)
	if err != nil {
		panic("elligator: low-order generator not on the curve")
	}
	lowOrder[0].Set(edwards25519.NewIdentityPoint())
	for k := 1; k < 8; k++ {
		lowOrder[k].Add(&lowOrder[k-1], gen)
	}
}

// DirtyPublic sets pub to the Montgomery u-coordinate of clamp(priv)·G + (priv[0]&7)·T.
// With Encode it is the plain reference for key generation, which takes a shorter path.
func DirtyPublic(pub, priv *[Size]byte) {
	var p edwards25519.Point
	dirtyPoint(&p, priv)
	copy(pub[:], p.BytesMontgomery())
}

// dirtyPoint sets p to clamp(priv)·G + (priv[0]&7)·T, the dirty public key as a point.
// Selection of the low-order point is constant time.
func dirtyPoint(p *edwards25519.Point, priv *[Size]byte) {
	s, err := edwards25519.NewScalar().SetBytesWithClamping(priv[:])
	if err != nil {
		panic(err) // only on a wrong length, impossible with an array
	}
	var low edwards25519.Point
	p.ScalarBaseMult(s)
	low.Set(&lowOrder[0])
	k := int(priv[0] & 7)
	for i := 1; i < 8; i++ {
		low.Select(&lowOrder[i], &low, equal(i, k))
	}
	p.Add(p, &low)
}

// equal returns 1 if a == b and 0 otherwise, without branching on secrets.
func equal(a, b int) int {
	x := uint32(a ^ b)
	return int((x - 1) >> 31)
}

var (
	feA     field.Element // 486662
	feHalfP [Size]byte    // (p-1)/2, little-endian
)

func init() {
	var one field.Element
	one.One()
	feA.Mult32(&one, 486662)
	// (p-1)/2 = 2^254 - 10
	for i := range feHalfP {
		feHalfP[i] = 0xff
	}
	feHalfP[0] = 0xf6
	feHalfP[31] = 0x3f
}

// Encode sets repr to a representative of the Montgomery u-coordinate pub. Bit 0 of tweak
// picks one of the two preimages, bits 6 and 7 become bits 254 and 255 of repr. It returns
// ErrNoRepresentative when pub has none (about half of all points).
func Encode(repr, pub *[Size]byte, tweak byte) error {
	var u, uA, num, den, num2, den2, r, neg field.Element
	if _, err := u.SetBytes(pub[:]); err != nil {
		return err
	}
	// The two preimages of u are sqrt(-u / (2(u+A))) and sqrt(-(u+A) / (2u)).
	uA.Add(&u, &feA)
	num.Negate(&u)
	den.Add(&uA, &uA)
	num2.Negate(&uA)
	den2.Add(&u, &u)
	alt := int(tweak & 1)
	num.Select(&num2, &num, alt)
	den.Select(&den2, &den, alt)
	_, wasSquare := r.SqrtRatio(&num, &den)
	// Pick the root in [0, (p-1)/2].
	neg.Negate(&r)
	r.Select(&neg, &r, greaterThanHalfP(r.Bytes()))
	copy(repr[:], r.Bytes())
	repr[31] |= tweak & 0xc0

	// A zero denominator (u = 0 or u = -A) slips past wasSquare; the round trip catches it
	// and any other key the map does not really cover.
	var back [Size]byte
	Decode(&back, repr)
	ok := wasSquare & equalBytes(&back, pub)
	if ok != 1 {
		for i := range repr {
			repr[i] = 0
		}
		return ErrNoRepresentative
	}
	return nil
}

// greaterThanHalfP returns 1 if the canonical little-endian value b exceeds (p-1)/2.
func greaterThanHalfP(b []byte) int {
	// Compute (p-1)/2 - b with borrow; a final borrow means b is larger.
	var borrow uint32
	for i := 0; i < Size; i++ {
		d := uint32(feHalfP[i]) - uint32(b[i]) - borrow
		borrow = (d >> 8) & 1
	}
	return int(borrow)
}

func equalBytes(a, b *[Size]byte) int {
	var v byte
	for i := range a {
		v |= a[i] ^ b[i]
	}
	return equal(int(v), 0)
}

// Decode sets pub to the Montgomery u-coordinate that repr represents. Bits 254 and 255 are
// padding and ignored, as every current obfs4 peer does.
func Decode(pub, repr *[Size]byte) {
	b := *repr
	b[31] &= 0x3f
	var r field.Element
	r.SetBytes(b[:]) // cannot fail: 32 bytes, and below p with the top bits clear
	forward(pub, &r)
}

// forward is the Elligator 2 map from a field element r to a Montgomery u-coordinate.
func forward(pub *[Size]byte, r *field.Element) {
	var w, g, t, alt, one field.Element
	one.One()
	// w = -A / (1 + 2r²); 1 + 2r² is never zero because -1/2 is not a square mod p.
	t.Square(r)
	t.Add(&t, &t)
	t.Add(&t, &one)
	w.Multiply(&feA, t.Invert(&t))
	w.Negate(&w)
	// g = w³ + A·w² + w = w·(w² + A·w + 1); u = w if g is square, else -w - A.
	t.Multiply(&feA, &w)
	g.Square(&w)
	g.Add(&g, &t)
	g.Add(&g, &one)
	g.Multiply(&g, &w)
	_, isSquare := t.SqrtRatio(&g, &one)
	alt.Negate(&w)
	alt.Subtract(&alt, &feA)
	w.Select(&w, &alt, isSquare)
	copy(pub[:], w.Bytes())
}
