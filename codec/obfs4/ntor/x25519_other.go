//go:build !amd64 || !gc || purego

package ntor

// x25519 is X25519 (see x25519.go); this build has only the Go ladder.
func x25519(dst, scalar, point *[KeySize]byte) (zero int) { return x25519Generic(dst, scalar, point) }

// variants lists the implementations this build runs.
func variants() []variant { return []variant{generic} }
