package elligator

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"testing"

	"filippo.io/edwards25519/field"
	"golang.org/x/crypto/curve25519"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Known answers, computed with lyrebird 0.5.0.
func TestKnownAnswers(t *testing.T) {
	for _, tc := range []struct{ name, secret, pub, repr string }{
		{"client0",
			"564b926fa76685d12e06515188df271466a21dbbe9f18fe6a97680c3a720e4fc",
			"a55e1618f40d94c813e2a4604260fc0c2a4e2796b7c15eb2f5fa404384a7b208",
			"1af60c22fbc98293d130b6d718e6dd635ff9d0fb8cf045e21e42ca3396b23471"},
		{"server0",
			"b2deea05b96947a03abf20fb4faab5c88215b1fdd7098fb957549b4366bacbba",
			"c12f45e865c54f3a295a0dd0094aa3b9e5c38a14718ca2432222d5fa7d04c07d",
			"b4e4c92eeb2ea28ea697f371390bc7990b338a7009c7d6b49dc46cf6af32ad4f"},
	} {
		d := sha512.Sum512([]byte(tc.name))
		kp, ok := KeypairFromDigest(&d)
		if !ok {
			t.Fatalf("%s: no representative", tc.name)
		}
		if got := hex.EncodeToString(kp.Private[:]); got != tc.secret {
			t.Errorf("%s: secret %s", tc.name, got)
		}
		if got := hex.EncodeToString(kp.Public[:]); got != tc.pub {
			t.Errorf("%s: public %s, want %s", tc.name, got, tc.pub)
		}
		if got := hex.EncodeToString(kp.Representative[:]); got != tc.repr {
			t.Errorf("%s: representative %s, want %s", tc.name, got, tc.repr)
		}
		var repr, pub [32]byte
		copy(repr[:], unhex(t, tc.repr))
		Decode(&pub, &repr)
		if got := hex.EncodeToString(pub[:]); got != tc.pub {
			t.Errorf("%s: decode %s", tc.name, got)
		}
	}
}

// The dirty public key must agree in DH with a clean X25519 peer: the clamp kills the
// low-order component.
func TestDirtyKeyAgreesWithX25519(t *testing.T) {
	for i := 0; i < 64; i++ {
		kp, err := GenerateKeypair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		var peer [32]byte
		rand.Read(peer[:])
		peerPub, _ := curve25519.X25519(peer[:], curve25519.Basepoint)
		a, err := curve25519.X25519(kp.Private[:], peerPub)
		if err != nil {
			t.Fatal(err)
		}
		b, err := curve25519.X25519(peer[:], kp.Public[:])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("DH mismatch for %x", kp.Private)
		}
		var back [32]byte
		Decode(&back, &kp.Representative)
		if back != kp.Public {
			t.Fatalf("Decode(repr) != public for %x", kp.Private)
		}
	}
}

// The low-order component must actually vary with the low bits of the secret, or the keys
// would stay in the prime-order subgroup (a distinguisher).
func TestDirtyKeyUsesLowBits(t *testing.T) {
	var priv, pub [32]byte
	rand.Read(priv[:])
	seen := map[[32]byte]bool{}
	for k := byte(0); k < 8; k++ {
		priv[0] = priv[0]&^7 | k
		DirtyPublic(&pub, &priv)
		seen[pub] = true
		clean, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
		if (k == 0) != bytes.Equal(clean, pub[:]) {
			t.Errorf("k=%d: dirty == clean is %v", k, bytes.Equal(clean, pub[:]))
		}
	}
	// k and 8-k give ±(P+kT) only when P = 0, so all 8 should differ.
	if len(seen) != 8 {
		t.Errorf("only %d distinct public keys for 8 low-order choices", len(seen))
	}
}

// About half of all keys have a representative; the top two bits are random padding taken
// from the tweak; every representative decodes back to its key.
func TestEncodeRoundTrip(t *testing.T) {
	const n = 400
	var ok, top int
	for i := 0; i < n; i++ {
		var priv, pub, repr, back [32]byte
		var tw [1]byte
		rand.Read(priv[:])
		rand.Read(tw[:])
		DirtyPublic(&pub, &priv)
		if Encode(&repr, &pub, tw[0]) != nil {
			if repr != ([32]byte{}) {
				t.Fatal("failed Encode left bytes in repr")
			}
			continue
		}
		ok++
		if repr[31]&0xc0 != tw[0]&0xc0 {
			t.Fatalf("top bits %02x, tweak %02x", repr[31], tw[0])
		}
		if repr[31]&0xc0 != 0 {
			top++
		}
		Decode(&back, &repr)
		if back != pub {
			t.Fatalf("round trip failed for %x", priv)
		}
		// The other preimage encodes the same key too.
		var repr2 [32]byte
		if err := Encode(&repr2, &pub, tw[0]^1); err != nil {
			t.Fatalf("second preimage missing: %v", err)
		}
		Decode(&back, &repr2)
		if back != pub {
			t.Fatal("second preimage decodes elsewhere")
		}
	}
	if ok < n/4 || ok > 3*n/4 {
		t.Errorf("%d of %d keys encodable, want about half", ok, n)
	}
	if top == 0 {
		t.Error("top bits never set")
	}
}

// Decoding ignores bits 254 and 255, and r and p-r (the negative root, which a canonical
// encoder never emits) decode to the same key.
func TestDecodeIgnoresPaddingAndSign(t *testing.T) {
	kp, err := GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	base := kp.Representative
	base[31] &= 0x3f
	for hi := 0; hi < 4; hi++ {
		r := base
		r[31] |= byte(hi) << 6
		var pub [32]byte
		Decode(&pub, &r)
		if pub != kp.Public {
			t.Fatalf("top bits %d change the key", hi)
		}
	}
	if greaterThanHalfP(base[:]) != 0 {
		t.Fatal("encoder emitted a negative root")
	}
	// p - r has bit 254 set for r in (0, (p-1)/2]; clearing it (as decoders do) gives a
	// different value, which is exactly why canonical roots matter. Check the map itself
	// is even: decode(-r) == decode(r) before the clear.
	var r, negR field.Element
	r.SetBytes(base[:])
	negR.Negate(&r)
	if got, want := decodeElement(&negR), decodeElement(&r); got != want {
		t.Fatal("forward map not even in r")
	}
}

func decodeElement(r *field.Element) [32]byte {
	var pub [32]byte
	forward(&pub, r)
	return pub
}

func TestGreaterThanHalfP(t *testing.T) {
	half := feHalfP
	if greaterThanHalfP(half[:]) != 0 {
		t.Error("(p-1)/2 > (p-1)/2")
	}
	half[0]++
	if greaterThanHalfP(half[:]) != 1 {
		t.Error("(p+1)/2 <= (p-1)/2")
	}
	var zero [32]byte
	if greaterThanHalfP(zero[:]) != 0 {
		t.Error("0 > (p-1)/2")
	}
}

// FuzzDecode feeds arbitrary representatives (network bytes) to the forward map: it must
// never panic, must ignore the padding bits, and whatever key comes out must encode back
// to something that decodes to the same key.
func FuzzDecode(f *testing.F) {
	f.Add(unhex(f, "1af60c22fbc98293d130b6d718e6dd635ff9d0fb8cf045e21e42ca3396b23471"))
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) != 32 {
			return
		}
		var repr, pub, pub2, again [32]byte
		copy(repr[:], in)
		Decode(&pub, &repr)
		repr[31] ^= 0xc0
		Decode(&pub2, &repr)
		if pub != pub2 {
			t.Fatal("padding bits matter")
		}
		for tw := 0; tw < 2; tw++ {
			if Encode(&repr, &pub, byte(tw)) == nil {
				Decode(&again, &repr)
				if again != pub {
					t.Fatal("re-encode does not round trip")
				}
			}
		}
	})
}

func BenchmarkGenerateKeypair(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := GenerateKeypair(rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	kp, _ := GenerateKeypair(rand.Reader)
	var pub [32]byte
	for i := 0; i < b.N; i++ {
		Decode(&pub, &kp.Representative)
	}
}

// referenceFromDigest is key generation the plain way: the dirty public key's
// u-coordinate, then Encode.
func referenceFromDigest(digest *[64]byte) (kp Keypair, ok bool) {
	copy(kp.Private[:], digest[:32])
	DirtyPublic(&kp.Public, &kp.Private)
	return kp, Encode(&kp.Representative, &kp.Public, digest[63]) == nil
}

// Key generation's short path (representability from projective u) agrees with
// DirtyPublic and Encode on random digests, on acceptance and on every byte.
func TestKeypairMatchesReference(t *testing.T) {
	accepted := 0
	for i := range 2000 {
		var d [64]byte
		rand.Read(d[:])
		want, wantOK := referenceFromDigest(&d)
		got, ok := KeypairFromDigest(&d)
		if ok != wantOK {
			t.Fatalf("digest %d %x: representable %v, reference says %v", i, d, ok, wantOK)
		}
		if !ok {
			continue
		}
		accepted++
		if *got != want {
			t.Fatalf("digest %d %x:\n got %x\nwant %x", i, d, *got, want)
		}
	}
	// About half of all keys have a representative; far from half means a broken test.
	if accepted < 800 || accepted > 1200 {
		t.Fatalf("%d of 2000 digests accepted", accepted)
	}
}
