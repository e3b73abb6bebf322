package obfs4

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"time"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/obfs4/elligator"
	"github.com/ptreactor/ptreactor/codec/obfs4/framing"
	"github.com/ptreactor/ptreactor/codec/obfs4/ntor"
)

// Handshake sizes.
const (
	maxHandshakeLength = 8192
	reprLength         = elligator.Size
	markLength         = sha256.Size / 2
	macLength          = sha256.Size / 2
	authLength         = ntor.AuthSize

	clientMinHandshakeLength = reprLength + markLength + macLength              // 64
	serverMinHandshakeLength = reprLength + authLength + markLength + macLength // 96

	// The client pads to at least what the server's reply with its seed frame needs, so
	// the two messages cannot be told apart by size alone.
	clientMinPadLength = serverMinHandshakeLength + framing.SeedFrameLength - clientMinHandshakeLength // 77
	clientMaxPadLength = maxHandshakeLength - clientMinHandshakeLength                                 // 8128
	serverMinPadLength = 0
	serverMaxPadLength = maxHandshakeLength - (serverMinHandshakeLength + framing.SeedFrameLength) // 8051
)

// Handshake failures. A server never tells the peer which one happened.
var (
	errMarkNotFound = errors.New("obfs4: handshake mark not found")
	errBadMAC       = errors.New("obfs4: handshake MAC mismatch")
	errReplay       = fmt.Errorf("obfs4: %w", codec.ErrReplayed)
	errTrailing     = errors.New("obfs4: data after client handshake")
	errBadAuth      = errors.New("obfs4: ntor AUTH mismatch")
)

// epochHour is E: the hours since the Unix epoch in decimal, which both MACs cover so that
// a recorded handshake goes stale.
func epochHour(t time.Time) []byte {
	return strconv.AppendInt(nil, t.Unix()/3600, 10)
}

// newMAC returns the HMAC-SHA256 keyed with B‖NODEID that a handshake computes all its
// marks and MACs with. One per handshake, reset between uses, spares making (and keying)
// a new one for each.
func newMAC(key []byte) hash.Hash { return hmac.New(sha256.New, key) }

// mac16 is the handshake's HMAC m over the concatenated parts, cut to 16 bytes: the form
// of every mark and MAC in the handshake.
func mac16(m hash.Hash, parts ...[]byte) (out [macLength]byte) {
	m.Reset()
	for _, p := range parts {
		m.Write(p)
	}
	var sum [sha256.Size]byte
	copy(out[:], m.Sum(sum[:0]))
	return out
}

// randomPadLength draws a padding length uniformly from [min, max] with crypto/rand, as
// the peers do: the lengths are what a censor sees first.
func randomPadLength(min, max int) int {
	span := uint64(max - min + 1)
	limit := ^uint64(0) - ^uint64(0)%span // reject above this for an unbiased result
	var b [8]byte
	for {
		rand.Read(b[:])
		if v := binary.LittleEndian.Uint64(b[:]); v < limit {
			return min + int(v%span)
		}
	}
}

// appendPad appends n bytes of padding read from r: crypto/rand on the wire; the tests'
// fixed vectors pad with zeros. The padding is written in place in dst, the buffer the
// handshake goes out in, rather than in a slice of its own: that slice was garbage of 4 KiB
// on average per handshake on each side (a quarter of a server's heap growth in a burst of
// 250 handshakes and 250 garbage connections, 1.1 of 9 MiB allocated).
func appendPad(dst []byte, n int, r io.Reader) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	if _, err := io.ReadFull(r, dst[start:]); err != nil {
		panic("obfs4: reading padding: " + err.Error()) // crypto/rand does not fail
	}
	return dst
}

// clientHandshake is the client's side of the handshake: it writes the request and then
// waits for the reply.
type clientHandshake struct {
	key   *bridgeKey
	mac   hash.Hash // keyed with B‖NODEID
	kp    *elligator.Keypair
	epoch []byte // E as sent; the reply's MAC must use the same one
}

// newClientHandshake starts a handshake with the session keypair kp, which it owns from
// then on. With legacyRepr the representative's two top bits, which every decoder since
// obfs4proxy 0.0.12 treats as padding, are cleared; the representative still decodes to
// the same public key.
func newClientHandshake(key *bridgeKey, kp *elligator.Keypair, legacyRepr bool) *clientHandshake {
	if legacyRepr {
		kp.Representative[31] &= 0x3f
	}
	return &clientHandshake{key: key, mac: newMAC(key.macKey()), kp: kp}
}

// appendRequest appends X' ‖ P_C ‖ M_C ‖ MAC_C, with padLen bytes from pad as P_C, for
// the hour of now.
func (h *clientHandshake) appendRequest(dst []byte, padLen int, pad io.Reader, now time.Time) []byte {
	h.epoch = epochHour(now)
	start := len(dst)
	dst = append(dst, h.kp.Representative[:]...)
	dst = appendPad(dst, padLen, pad)
	mark := mac16(h.mac, h.kp.Representative[:])
	dst = append(dst, mark[:]...)
	mac := mac16(h.mac, dst[start:], h.epoch)
	return append(dst, mac[:]...)
}

// parseReply looks for the server's reply at the start of in. It returns n == 0 when more
// bytes are needed; otherwise the reply is in[:n] and the session keys are set in okm.
// Bytes after n are already frames.
func (h *clientHandshake) parseReply(in []byte, okm *[ntor.OKMSize]byte) (n int, err error) {
	if len(in) < serverMinHandshakeLength {
		return 0, nil
	}
	var yRepr, auth [32]byte
	copy(yRepr[:], in[:reprLength])
	copy(auth[:], in[reprLength:reprLength+authLength])
	mark := mac16(h.mac, yRepr[:])

	limit := min(len(in), maxHandshakeLength)
	const from = reprLength + authLength
	i := bytes.Index(in[from:limit], mark[:])
	if i < 0 {
		if len(in) >= maxHandshakeLength {
			return 0, errMarkNotFound
		}
		return 0, nil
	}
	pos := from + i
	end := pos + markLength + macLength
	if len(in) < end {
		return 0, nil // the MAC has not all arrived
	}
	mac := mac16(h.mac, in[:pos+markLength], h.epoch)
	if subtle.ConstantTimeCompare(mac[:], in[pos+markLength:end]) != 1 {
		return 0, errBadMAC
	}
	var Y [32]byte
	elligator.Decode(&Y, &yRepr)
	keySeed, want, err := ntor.Client(&h.kp.Private, &h.kp.Public, &Y, &h.key.public, &h.key.nodeID)
	if err != nil {
		return 0, err
	}
	if subtle.ConstantTimeCompare(want[:], auth[:]) != 1 {
		return 0, errBadAuth
	}
	ntor.KDF(okm, &keySeed)
	return end, nil
}

// serverHandshake is the bridge's side: it waits for the request and builds the reply.
type serverHandshake struct {
	srv *server
	mac hash.Hash // keyed with B‖NODEID
	kp  *elligator.Keypair
}

// parseRequest looks for a complete client request in in. done is false when more bytes
// are needed. On success the session keys are set in okm and epoch is the E the client
// used (one of the current hour and its neighbours).
func (h *serverHandshake) parseRequest(in []byte, now time.Time, okm *[ntor.OKMSize]byte) (done bool, epoch []byte, auth [32]byte, err error) {
	const minLength = reprLength + clientMinPadLength + markLength + macLength
	if len(in) < minLength {
		return false, nil, auth, nil
	}
	mark := mac16(h.mac, in[:reprLength])
	// The mark can only be at the end of what the client sent, since the client sends
	// nothing else before it has the reply.
	pos := min(len(in), maxHandshakeLength) - markLength - macLength
	if subtle.ConstantTimeCompare(mark[:], in[pos:pos+markLength]) != 1 {
		if len(in) >= maxHandshakeLength {
			return false, nil, auth, errMarkNotFound
		}
		return false, nil, auth, nil
	}
	got := in[pos+markLength : pos+markLength+macLength]
	hour := now.Unix() / 3600
	var match int
	for _, e := range []int64{hour, hour - 1, hour + 1} {
		candidate := strconv.AppendInt(nil, e, 10)
		mac := mac16(h.mac, in[:pos+markLength], candidate)
		if subtle.ConstantTimeCompare(mac[:], got) == 1 && match == 0 {
			match = 1
			epoch = candidate
		}
	}
	if match == 0 {
		return false, nil, auth, errBadMAC
	}
	var macC [macLength]byte
	copy(macC[:], got)
	if h.srv.replay.testAndSet(now, &macC) {
		return false, nil, auth, errReplay
	}
	if len(in) != pos+markLength+macLength {
		return false, nil, auth, errTrailing
	}
	var xRepr, X [32]byte
	copy(xRepr[:], in[:reprLength])
	elligator.Decode(&X, &xRepr)
	st := h.srv.state
	keySeed, auth, err := ntor.Server(&h.kp.Private, &st.private, &X, &h.kp.Public, &st.public, &st.nodeID)
	if err != nil {
		return false, nil, auth, err
	}
	ntor.KDF(okm, &keySeed)
	return true, epoch, auth, nil
}

// appendReply appends Y' ‖ AUTH ‖ P_S ‖ M_S ‖ MAC_S, with padLen bytes from pad as P_S.
// The seed frame that completes the reply is the caller's, since it is the first frame
// under the new keys.
func (h *serverHandshake) appendReply(dst []byte, auth *[32]byte, padLen int, pad io.Reader, epoch []byte) []byte {
	start := len(dst)
	dst = append(dst, h.kp.Representative[:]...)
	dst = append(dst, auth[:]...)
	dst = appendPad(dst, padLen, pad)
	mark := mac16(h.mac, h.kp.Representative[:])
	dst = append(dst, mark[:]...)
	mac := mac16(h.mac, dst[start:], epoch)
	return append(dst, mac[:]...)
}
