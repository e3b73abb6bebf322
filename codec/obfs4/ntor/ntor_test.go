package ntor

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"testing"

	"github.com/ptreactor/ptreactor/codec/obfs4/elligator"
	"golang.org/x/crypto/curve25519"
)

func hexArray(t *testing.T, s string) (a [32]byte) {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad hex %q", s)
	}
	copy(a[:], b)
	return a
}

// TestKnownAnswers checks answers computed with lyrebird 0.5.0.
func TestKnownAnswers(t *testing.T) {
	var id [NodeIDSize]byte
	for i := range id {
		id[i] = 0xa0 + byte(i)
	}
	d := sha512.Sum512([]byte("identity"))
	var b, B [32]byte
	copy(b[:], d[:32])
	pub, _ := curve25519.X25519(b[:], curve25519.Basepoint)
	copy(B[:], pub)
	if got := hex.EncodeToString(B[:]); got != "6902dcf1d8ef3724f3ec38e39a870dcbc9ddba3edfbd280a2affb84cb8413d3e" {
		t.Fatalf("B = %s", got)
	}
	dc := sha512.Sum512([]byte("client0"))
	ds := sha512.Sum512([]byte("server0"))
	client, ok1 := elligator.KeypairFromDigest(&dc)
	server, ok2 := elligator.KeypairFromDigest(&ds)
	if !ok1 || !ok2 {
		t.Fatal("vector keys have no representative")
	}
	var X, Y [32]byte
	elligator.Decode(&X, &client.Representative)
	elligator.Decode(&Y, &server.Representative)

	seedC, authC, err := Client(&client.Private, &X, &Y, &B, &id)
	if err != nil {
		t.Fatal(err)
	}
	seedS, authS, err := Server(&server.Private, &b, &X, &Y, &B, &id)
	if err != nil {
		t.Fatal(err)
	}
	wantSeed := "f8661dc1eba4ebe2a728bd9665be1e636e5863f6e361942fd4067e3b4ab2cf8b"
	wantAuth := "f0a0748a387d66fe108dd0a563960818605a6c4978ba1ef831b82c26e0ae694b"
	for _, got := range [][32]byte{seedC, seedS} {
		if h := hex.EncodeToString(got[:]); h != wantSeed {
			t.Errorf("KEY_SEED %s", h)
		}
	}
	for _, got := range [][32]byte{authC, authS} {
		if h := hex.EncodeToString(got[:]); h != wantAuth {
			t.Errorf("AUTH %s", h)
		}
	}
	var okm [OKMSize]byte
	KDF(&okm, &seedC)
	if h := hex.EncodeToString(okm[:72]); h != "f131737e993c536f3c97f86585937d9e9c49fc9d3e579242e134982f4df88733344022009bba81f417f3a7e44432fa3039c43f100327c8b68fc3f408addd61c6eb1ba739319b3f06" {
		t.Errorf("okm[0:72] %s", h)
	}
	if h := hex.EncodeToString(okm[72:]); h != "7b91c6e8123ba478e9d533fab14cbfa1140c901be062a0212e8ccd94a8c11255252fcce3b569b4de9620bec10d85cb9a62fa937ccd4de0b2ad1ef9718fcfb65743df43f36b5caf44" {
		t.Errorf("okm[72:144] %s", h)
	}
}

func TestRandomAgreement(t *testing.T) {
	var id [NodeIDSize]byte
	rand.Read(id[:])
	var b, B [32]byte
	rand.Read(b[:])
	pub, _ := curve25519.X25519(b[:], curve25519.Basepoint)
	copy(B[:], pub)
	for i := 0; i < 32; i++ {
		c, _ := elligator.GenerateKeypair(rand.Reader)
		s, _ := elligator.GenerateKeypair(rand.Reader)
		k1, a1, err1 := Client(&c.Private, &c.Public, &s.Public, &B, &id)
		k2, a2, err2 := Server(&s.Private, &b, &c.Public, &s.Public, &B, &id)
		if err1 != nil || err2 != nil || k1 != k2 || a1 != a2 {
			t.Fatalf("disagreement: %v %v", err1, err2)
		}
	}
}

// A low-order X from the client makes both DH results zero; the server must refuse.
func TestZeroSecretRejected(t *testing.T) {
	var id [NodeIDSize]byte
	var y, b, X, Y, B [32]byte
	rand.Read(y[:])
	rand.Read(b[:])
	for _, lowOrder := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	} {
		X = hexArray(t, lowOrder)
		if _, _, err := Server(&y, &b, &X, &Y, &B, &id); err != ErrZeroSecret {
			t.Errorf("X=%s: err %v", lowOrder, err)
		}
	}
}

func BenchmarkServer(b *testing.B) {
	var id [NodeIDSize]byte
	var y, sb, B [32]byte
	rand.Read(y[:])
	rand.Read(sb[:])
	c, _ := elligator.GenerateKeypair(rand.Reader)
	for i := 0; i < b.N; i++ {
		Server(&y, &sb, &c.Public, &c.Public, &B, &id)
	}
}
