package ntor

// X25519 is RFC 7748's function (clamped scalar, Montgomery ladder on the u-coordinate).
// The package has its own rather than x/crypto's because that one goes through
// crypto/ecdh, whose NewPrivateKey runs a second ladder to derive a public key the
// handshake never uses. x25519 (one definition per build, in x25519_amd64.go and
// x25519_other.go) writes scalar·point to dst and reports 1 if the result is all zeros;
// it ignores bit 255 of the point and accepts non-canonical u, as RFC 7748 asks.

// variant is one implementation of x25519, named for tests and benchmarks that run each.
type variant struct {
	name   string
	x25519 func(dst, scalar, point *[KeySize]byte) (zero int)
}

var generic = variant{"generic", x25519Generic}

// clamp returns the scalar with RFC 7748's bits forced: a multiple of 8, bit 254 set,
// bit 255 clear.
func clamp(scalar *[KeySize]byte) [KeySize]byte {
	e := *scalar
	e[0] &= 248
	e[31] &= 127
	e[31] |= 64
	return e
}
