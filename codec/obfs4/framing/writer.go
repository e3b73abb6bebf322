package framing

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ptreactor/ptreactor/codec/cipher"
	"github.com/ptreactor/ptreactor/codec/obfs4/drbg"
	"github.com/ptreactor/ptreactor/codec/obfs4/probdist"
)

// Writer is the sending direction of one obfs4 connection. It is not safe for concurrent
// use.
//
// What one write of the peers' code does is one call here: Wrap for iat-mode 0 (a padded
// burst appended to the caller's buffer), Queue for iat-mode 1 and 2 (the burst goes into
// the Writer's own queue, and Next hands it out a chunk at a time with the pause to keep
// after each). Both work in every mode; Wrap never paces and always pads as iat-mode 0
// does, Queue in iat-mode 0 hands out each burst whole with no pause.
type Writer struct {
	box     cipher.FrameBox
	counter uint64 // nonce counter of the next frame; 0 once all have been used
	mask    drbg.HashDrbg
	iatMode int
	biased  bool
	lenDist probdist.Dist  // burst and chunk lengths, over [0, 1448]
	iatDist *probdist.Dist // pauses, over [0, 100] × 100 µs; nil in iat-mode 0
	err     error          // sticky

	// The pacing queue: q[qoff:] is wire bytes not yet handed out. In iat-mode 1,
	// bursts[bhead:] are the lengths of the bursts left in it, so chunks never straddle two
	// bursts, as they cannot in the peers' code.
	q      []byte
	qoff   int
	bursts []int
	bhead  int
}

// NewWriter returns the Writer for one direction. key is that direction's 72 bytes of key
// material (the client writes with okm[0:72], the server with okm[72:144]). lenSeed seeds
// the length distribution: the bridge's drbg-seed on the server, a random seed on the
// client until the bridge's PRNG seed packet arrives (Reseed). iatMode is 0, 1 or 2.
func NewWriter(key []byte, lenSeed drbg.Seed, iatMode int) (*Writer, error) {
	if iatMode < IATNone || iatMode > IATParanoid {
		return nil, fmt.Errorf("obfs4/framing: iat-mode %d is not 0, 1 or 2", iatMode)
	}
	box, seed, err := directionKeys(key)
	if err != nil {
		return nil, err
	}
	w := &Writer{box: box, counter: 1, iatMode: iatMode}
	w.mask.Reset(seed)
	w.initDists(lenSeed)
	return w, nil
}

// SetBiased switches both distributions to ScrambleSuit-style biased weights (lyrebird's
// -obfs4-distBias). Call it before the Writer is first used; it keeps the current seed.
func (w *Writer) SetBiased(biased bool) {
	w.biased = biased
	w.initDists(w.lenSeed())
}

func (w *Writer) lenSeed() drbg.Seed { return w.lenDist.Seed() }

// LengthTable is the table the burst lengths are drawn from: the one probdist.NewTable
// gives for the current seed and bias.
func (w *Writer) LengthTable() *probdist.Table { return w.lenDist.Table() }

func (w *Writer) initDists(seed drbg.Seed) {
	w.lenDist.Init(seed, 0, MaxSegmentLength, w.biased)
	if w.iatMode != IATNone {
		// Held by pointer: most tunnels run iat-mode 0 and should not carry it.
		w.iatDist = probdist.New(iatSeed(&seed), 0, MaxIATDelay, w.biased)
	}
}

// iatSeed derives the delay distribution's seed from the length distribution's:
// SHA-256(seed)[:24].
func iatSeed(seed *drbg.Seed) drbg.Seed {
	h := sha256.Sum256(seed[:])
	var s drbg.Seed
	copy(s[:], h[:drbg.SeedLength])
	return s
}

// Reseed switches the length distribution (and, with iat on, the delay distribution) to
// seed. A client calls it when the bridge's PRNG seed packet arrives (Reader.Unwrap
// reports it); a server never does.
func (w *Writer) Reseed(seed drbg.Seed) {
	w.lenDist.Reset(seed)
	if w.iatMode != IATNone {
		w.iatDist.Reset(iatSeed(&seed))
	}
}

// IATMode reports the mode the Writer was made with.
func (w *Writer) IATMode() int { return w.iatMode }

// Err reports why the Writer stopped, if it has (only ErrCounterWrapped can stop it).
func (w *Writer) Err() error { return w.err }

// AppendSeedFrame appends the PRNG seed frame (type 0x01, the 24-byte seed, no padding:
// SeedFrameLength bytes), the first frame a server sends, as the tail of its handshake
// reply.
func (w *Writer) AppendSeedFrame(dst []byte, seed drbg.Seed) ([]byte, error) {
	return w.appendPacket(dst, PacketTypePRNGSeed, seed[:], 0)
}

// Wrap appends to dst the frames of one write: payload split into packets of at most 1427
// bytes, then padding so that the burst's length modulo 1448 is a fresh sample of the
// length distribution. An empty payload yields a burst of padding alone, as it does in the
// peers. dst grows at most once per call, and not at all when it has MaxBurstLength(
// len(payload)) bytes of spare capacity.
func (w *Writer) Wrap(dst, payload []byte) ([]byte, error) {
	if w.err != nil {
		return dst, w.err
	}
	dst = grow(dst, burstBound(len(payload)))
	start := len(dst)
	dst, err := w.appendPayload(dst, payload)
	if err != nil {
		return dst, err
	}
	return w.padBurst(dst, start, w.lenDist.Sample())
}

// Queue adds the frames of one write to the pacing queue: padded as in Wrap in iat-mode 0
// and 1, unpadded in iat-mode 2 (where Next pads each chunk as it is drawn).
func (w *Writer) Queue(payload []byte) error {
	if w.err != nil {
		return w.err
	}
	w.compact()
	q := grow(w.q, burstBound(len(payload)))
	start := len(q)
	q, err := w.appendPayload(q, payload)
	if err == nil && w.iatMode != IATParanoid {
		q, err = w.padBurst(q, start, w.lenDist.Sample())
	}
	if err != nil {
		w.q = q[:start]
		return err
	}
	w.q = q
	if w.iatMode == IATEnabled && len(q) > start { // an empty write padded to 0 is no burst
		w.bursts = append(w.bursts, len(q)-start)
	}
	return nil
}

// Pending is the number of queued wire bytes that Next has not handed out yet.
func (w *Writer) Pending() int { return len(w.q) - w.qoff }

// Next appends the next chunk of the queue to dst and returns the pause to keep after
// writing it, before calling Next again. ok is false when the queue is empty (or the
// Writer has failed; see Err).
//
//   - iat-mode 0: everything queued, no pause.
//   - iat-mode 1: at most 1448 bytes, never crossing from one Queue call's burst into the
//     next; a pause of [0, 100] × 100 µs from the delay distribution.
//   - iat-mode 2: exactly a sampled target length (from the length distribution, 0
//     excluded): if fewer bytes are queued, padding is appended first, and if the padding
//     cannot land on the target (1..21 bytes short: see padBurst) it overshoots and a new
//     target is drawn, now shorter than what is queued. Chunks may split frames. Then a
//     pause as in iat-mode 1.
func (w *Writer) Next(dst []byte) (out []byte, wait time.Duration, ok bool) {
	if w.err != nil || w.Pending() == 0 {
		return dst, 0, false
	}
	n := 0
	switch w.iatMode {
	case IATNone:
		n = w.Pending()
	case IATEnabled:
		b := &w.bursts[w.bhead]
		n = min(*b, MaxSegmentLength)
		if *b -= n; *b == 0 {
			w.bhead++
		}
	case IATParanoid:
		n = w.paranoidTarget()
		if n == 0 {
			return dst, 0, false
		}
	}
	out = append(dst, w.q[w.qoff:w.qoff+n]...)
	w.qoff += n
	if w.iatMode != IATNone {
		wait = time.Duration(w.iatDist.Sample()) * IATUnit
	}
	w.compact()
	return out, wait, true
}

// paranoidTarget draws the length of the next iat-mode 2 chunk, padding the queue when it
// is short. It returns 0 only if the Writer failed.
func (w *Writer) paranoidTarget() int {
	// A table can hold the value 0 (the peers then crash); draw again, but a table whose
	// only value is 0 would loop for ever, so give up after a while and send what there is
	// in segment-sized chunks.
	for tries := 0; ; tries++ {
		if tries == 64 {
			return min(w.Pending(), MaxSegmentLength)
		}
		target := w.lenDist.Sample()
		if target == 0 {
			continue
		}
		if w.Pending() >= target {
			return target
		}
		q, err := w.padBurst(grow(w.q, 2*MaxSegmentLength), w.qoff, target)
		w.q = q
		if err != nil {
			return 0
		}
		if w.Pending() == target {
			return target
		}
		// The padding overshot; there is now more queued than any target.
	}
}

// compact releases or reuses the queue's space once it has been handed out.
func (w *Writer) compact() {
	if w.qoff == 0 {
		return
	}
	if w.qoff == len(w.q) {
		if cap(w.q) > maxIdleQueue {
			w.q = nil // do not keep a bulk transfer's buffer on an idle tunnel
		} else {
			w.q = w.q[:0]
		}
		w.qoff = 0
		w.bursts, w.bhead = w.bursts[:0], 0
		return
	}
	if w.qoff >= cap(w.q)/2 {
		n := copy(w.q, w.q[w.qoff:])
		w.q = w.q[:n]
		w.qoff = 0
	}
	if w.bhead > 0 && w.bhead >= cap(w.bursts)/2 {
		n := copy(w.bursts, w.bursts[w.bhead:])
		w.bursts = w.bursts[:n]
		w.bhead = 0
	}
}

// maxIdleQueue is the most queue capacity kept once the queue has drained.
const maxIdleQueue = 64 << 10

// appendPayload appends payload as unpadded payload packets of at most 1427 bytes.
func (w *Writer) appendPayload(dst, payload []byte) ([]byte, error) {
	var err error
	for len(payload) > 0 {
		n := min(len(payload), MaxPacketPayloadLength)
		if dst, err = w.appendPacket(dst, PacketTypePayload, payload[:n], 0); err != nil {
			return dst, err
		}
		payload = payload[n:]
	}
	return dst, nil
}

// padBurst appends padding to the burst that starts at dst[start:] so that its length
// modulo 1448 becomes target, the way the peers do it. A padding packet costs 21 bytes of
// header, so a gap of 1..21 bytes cannot be filled exactly: the peers then send a full
// 1448-byte padding frame and a packet with gap bytes of padding, ending 1448 + 21 bytes
// past the target. That quirk shows on the wire, so it is kept.
func (w *Writer) padBurst(dst []byte, start, target int) ([]byte, error) {
	tail := (len(dst) - start) % MaxSegmentLength
	pad := target - tail
	if target < tail {
		pad += MaxSegmentLength
	}
	switch {
	case pad > HeaderLength:
		return w.appendPacket(dst, PacketTypePayload, nil, pad-HeaderLength)
	case pad > 0:
		dst, err := w.appendPacket(dst, PacketTypePayload, nil, MaxPacketPayloadLength)
		if err != nil {
			return dst, err
		}
		return w.appendPacket(dst, PacketTypePayload, nil, pad)
	}
	return dst, nil
}

// appendPacket seals one packet (type ‖ BE16(len(payload)) ‖ payload ‖ pad zero bytes)
// into a frame appended to dst. This is the per-frame hot path.
func (w *Writer) appendPacket(dst []byte, typ byte, payload []byte, pad int) ([]byte, error) {
	if w.err != nil {
		return dst, w.err
	}
	if w.counter == 0 {
		w.err = ErrCounterWrapped
		return dst, w.err
	}
	n := PacketOverhead + len(payload) + pad
	if n > MaxFramePayloadLength {
		panic("obfs4/framing: packet too long") // unreachable: callers split and bound
	}
	// The packet is built where its ciphertext will be and sealed in place (FrameBox
	// allows that), so a Writer carries no 1.4 KiB scratch buffer per idle tunnel.
	dst = grow(dst, FrameOverhead+n)
	start := len(dst)
	dst = append(dst, 0, 0)
	at := len(dst) + cipher.Overhead
	pkt := dst[at : at+n] // beyond len, within the capacity grown above
	pkt[0] = typ
	binary.BigEndian.PutUint16(pkt[1:], uint16(len(payload)))
	copy(pkt[PacketOverhead:], payload)
	clear(pkt[PacketOverhead+len(payload):])
	dst = w.box.Seal(dst, w.counter, pkt)
	w.counter++
	putLength(dst[start:], len(dst)-start-lengthLength, w.mask.NextMask())
	return dst, nil
}

// MaxBurstLength is the most wire bytes one write of n payload bytes can become (Wrap,
// Queue): full frames, a short one, and up to two frames of padding.
func MaxBurstLength(n int) int { return burstBound(n) }

func burstBound(n int) int {
	return (n/MaxPacketPayloadLength)*MaxSegmentLength + 3*MaxSegmentLength
}

// grow makes room for n more bytes in b with at most one allocation.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), 2*cap(b)+n)
	copy(nb, b)
	return nb
}
