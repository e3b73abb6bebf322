package obfs4

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/obfs4/drbg"
	"github.com/ptreactor/ptreactor/codec/obfs4/framing"
	"github.com/ptreactor/ptreactor/codec/obfs4/ntor"
	"github.com/ptreactor/ptreactor/codec/obfs4/probdist"
	"golang.org/x/crypto/curve25519"
)

// Argument names, in SOCKS args, SMETHOD ARGS and TOR_PT_SERVER_TRANSPORT_OPTIONS.
const (
	argCert       = "cert"
	argIATMode    = "iat-mode"
	argNodeID     = "node-id"
	argPublicKey  = "public-key"
	argPrivateKey = "private-key"
	argDrbgSeed   = "drbg-seed"
	argLegacyRepr = "legacy-repr"
)

// The iat-modes: how a side shapes its writes in time.
const (
	IATNone     = 0 // one burst per write, padded
	IATEnabled  = 1 // bursts cut into MTU chunks with random delays
	IATParanoid = 2 // chunk sizes drawn from the length distribution too
)

// certLength is the cert as published: base64 of NODEID‖B (52 bytes) without its "==".
const certLength = 70

// bridgeKey is what a client knows about a bridge from its bridge line: NODEID and the
// identity public key B. Both sides key their handshake MACs with B‖NODEID.
type bridgeKey struct {
	nodeID [ntor.NodeIDSize]byte
	public [ntor.KeySize]byte
}

// macKey returns B‖NODEID, the HMAC key of the marks and MACs.
func (k *bridgeKey) macKey() []byte {
	key := make([]byte, 0, ntor.KeySize+ntor.NodeIDSize)
	key = append(key, k.public[:]...)
	return append(key, k.nodeID[:]...)
}

// cert encodes NODEID‖B as the 70-character cert= value: standard base64 with the trailing
// "==" dropped, so it needs no escaping in SMETHOD ARGS.
func (k *bridgeKey) cert() string {
	var raw [ntor.NodeIDSize + ntor.KeySize]byte
	copy(raw[:], k.nodeID[:])
	copy(raw[ntor.NodeIDSize:], k.public[:])
	return base64.StdEncoding.EncodeToString(raw[:])[:certLength]
}

// parseCert is the inverse of cert. A cert given with its padding is refused, as lyrebird
// refuses it.
func parseCert(s string) (*bridgeKey, error) {
	if len(s) != certLength {
		return nil, fmt.Errorf("cert is %d characters, want %d", len(s), certLength)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s + "==")
	if err != nil || len(raw) != ntor.NodeIDSize+ntor.KeySize {
		return nil, errors.New("cert is not valid base64 of 52 bytes")
	}
	k := new(bridgeKey)
	copy(k.nodeID[:], raw[:ntor.NodeIDSize])
	copy(k.public[:], raw[ntor.NodeIDSize:])
	return k, nil
}

// parseHex decodes exactly len(dst) bytes of hex.
func parseHex(dst []byte, name, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("%s is %d hex digits, want %d", name, len(s), 2*len(dst))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

// parseIATMode accepts "0", "1" or "2".
func parseIATMode(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < IATNone || n > IATParanoid {
		return 0, fmt.Errorf("invalid iat-mode %q", s)
	}
	return n, nil
}

// clientArgs is what a client connection is told about its bridge.
type clientArgs struct {
	key     bridgeKey
	iatMode int
	// legacyRepr sends representatives with bits 254 and 255 clear, which obfs4proxy
	// 0.0.11 and older decode correctly; with the random top bits that current peers send,
	// about half of all handshakes with such a bridge fail. It is off by
	// default because always-zero top bits are a distinguisher.
	legacyRepr bool
	biased     bool // Transport.BiasedDist
}

// parseClientArgs reads the SOCKS arguments of one client connection: cert= (or the old
// node-id= and public-key= pair, from obfs4proxy 0.0.2 and earlier) and iat-mode=, which is
// required, and the optional legacy-repr=0|1 (ptreactor's own, for bridges that still run
// obfs4proxy 0.0.11 or older). Every failure wraps codec.ErrBadArgs.
func parseClientArgs(args codec.Args) (*clientArgs, error) {
	ca := new(clientArgs)
	if cert, ok := args.Get(argCert); ok {
		k, err := parseCert(cert)
		if err != nil {
			return nil, fmt.Errorf("%w: obfs4: %v", codec.ErrBadArgs, err)
		}
		ca.key = *k
	} else {
		id, ok1 := args.Get(argNodeID)
		pub, ok2 := args.Get(argPublicKey)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: obfs4: missing argument '%s'", codec.ErrBadArgs, argCert)
		}
		if err := parseHex(ca.key.nodeID[:], argNodeID, id); err != nil {
			return nil, fmt.Errorf("%w: obfs4: %v", codec.ErrBadArgs, err)
		}
		if err := parseHex(ca.key.public[:], argPublicKey, pub); err != nil {
			return nil, fmt.Errorf("%w: obfs4: %v", codec.ErrBadArgs, err)
		}
	}
	s, ok := args.Get(argIATMode)
	if !ok {
		return nil, fmt.Errorf("%w: obfs4: missing argument '%s'", codec.ErrBadArgs, argIATMode)
	}
	n, err := parseIATMode(s)
	if err != nil {
		return nil, fmt.Errorf("%w: obfs4: %v", codec.ErrBadArgs, err)
	}
	ca.iatMode = n
	if s, ok := args.Get(argLegacyRepr); ok {
		switch s {
		case "0":
		case "1":
			ca.legacyRepr = true
		default:
			return nil, fmt.Errorf("%w: obfs4: %s must be 0 or 1, not %q", codec.ErrBadArgs, argLegacyRepr, s)
		}
	}
	return ca, nil
}

// identity is a bridge's long-term obfs4 identity.
type identity struct {
	bridgeKey
	private  [ntor.KeySize]byte // stored unclamped; X25519 clamps at use
	drbgSeed drbg.Seed
}

// newIdentity makes a fresh identity the way the peers do: the private key is the first
// half of SHA-512 of 32 random bytes, NODEID and the seed are raw random bytes.
func newIdentity() (*identity, error) {
	id := new(identity)
	var r [32]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	d := sha512.Sum512(r[:])
	copy(id.private[:], d[:32])
	if _, err := rand.Read(id.nodeID[:]); err != nil {
		return nil, err
	}
	for {
		if _, err := rand.Read(id.drbgSeed[:]); err != nil {
			return nil, err
		}
		if !lengthTableHasZero(id.drbgSeed) {
			break
		}
	}
	return id, id.derivePublic()
}

// lengthTableHasZero reports whether the length distribution that seed defines can yield
// 0. The bridge's drbg-seed becomes every client's length distribution (the PRNG seed
// frame), and obfs4proxy and lyrebird clients in iat-mode 2 panic, taking the whole client
// process down, when they draw a 0 ("iat length was 0"). About one seed in thirty has a 0;
// a new bridge simply avoids those. A seed loaded from a state file is used as it is.
func lengthTableHasZero(seed drbg.Seed) bool {
	t := probdist.NewTable(seed, 0, framing.MaxSegmentLength, false)
	for i := 0; i < t.Len(); i++ {
		if v, _ := t.Value(i); v == 0 {
			return true
		}
	}
	return false
}

// derivePublic sets B = X25519(b, 9). The stored public key is never trusted.
func (id *identity) derivePublic() error {
	pub, err := curve25519.X25519(id.private[:], curve25519.Basepoint)
	if err != nil {
		return err
	}
	copy(id.public[:], pub)
	return nil
}
