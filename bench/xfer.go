package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
)

// The xfer protocol is what the load generator and the tests speak through a tunnel to the
// in-process ORPort stand-in (Target). The client sends a 24-byte header, upload length,
// download length and seed (big-endian 64-bit each), then upload bytes of Stream(seed^1);
// at the same time the target sends download bytes of Stream(seed) followed by the
// SHA-256 of what it received. Each end checks what it got, so a transfer proves every byte
// arrived intact both ways, and a zero-length transfer is a one-round-trip liveness probe.
// The target then waits for the next header on the same connection, so a tunnel can be
// proven with an empty transfer, left idle, and used again.

const xferHeaderLen = 24

// Stream returns a reader of n deterministic pseudo-random bytes for seed (ChaCha8); seed 0
// gives zeros, which the load generator uses so that it spends its CPU on the sockets.
func Stream(seed uint64, n int64) io.Reader {
	if seed == 0 {
		return io.LimitReader(zeros{}, n)
	}
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	return io.LimitReader(rand.NewChaCha8(key), n)
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// StreamSum is the SHA-256 of Stream(seed, n).
func StreamSum(seed uint64, n int64) [32]byte {
	h := sha256.New()
	io.CopyBuffer(h, Stream(seed, n), make([]byte, 256<<10))
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// Target is an in-process ORPort stand-in that serves the xfer protocol (or, with Echo,
// echoes everything back) on 127.0.0.1.
type Target struct {
	Echo bool
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	cs   map[net.Conn]struct{}
	errs []error
}

// NewTarget listens on 127.0.0.1:0 and serves until Close.
func NewTarget(echo bool) (*Target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &Target{Echo: echo, ln: ln, cs: map[net.Conn]struct{}{}}
	t.wg.Add(1)
	go t.serve()
	return t, nil
}

// Addr is the host:port to give the server PT as TOR_PT_ORPORT.
func (t *Target) Addr() string { return t.ln.Addr().String() }

// Conns is the number of connections currently open to the target.
func (t *Target) Conns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.cs)
}

// Errors returns the transfers the target saw fail (short or corrupt uploads).
func (t *Target) Errors() []error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]error(nil), t.errs...)
}

// Close stops the listener and closes every open connection.
func (t *Target) Close() {
	t.ln.Close()
	t.mu.Lock()
	for c := range t.cs {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

func (t *Target) serve() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // EMFILE and friends: keep serving
		}
		t.mu.Lock()
		t.cs[c] = struct{}{}
		t.mu.Unlock()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.Handle(c)
			t.mu.Lock()
			delete(t.cs, c)
			t.mu.Unlock()
		}()
	}
}

// Handle serves one connection as the target serves those it accepts, recording a failed
// transfer, and closes it. Another stand-in hands it the connections it has accepted: an
// Extended ORPort's after its handshake.
func (t *Target) Handle(c net.Conn) {
	var err error
	if t.Echo {
		_, err = io.Copy(c, c)
	} else {
		err = ServeXfer(c)
	}
	c.Close()
	if err != nil {
		t.mu.Lock()
		if len(t.errs) < 100 {
			t.errs = append(t.errs, err)
		}
		t.mu.Unlock()
	}
}

// ServeXfer serves transfers on c one after another until the client closes it; between
// transfers the connection idles. It is Target's handler, exported for other stand-ins
// (an Extended ORPort's data phase).
func ServeXfer(c net.Conn) error {
	for {
		var hdr [xferHeaderLen]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			if err == io.EOF || errors.Is(err, net.ErrClosed) {
				return nil // closed between transfers
			}
			return fmt.Errorf("xfer header: %w", err)
		}
		if err := serveOne(c, hdr); err != nil {
			return err
		}
	}
}

func serveOne(c net.Conn, hdr [xferHeaderLen]byte) error {
	up := int64(binary.BigEndian.Uint64(hdr[0:]))
	down := int64(binary.BigEndian.Uint64(hdr[8:]))
	seed := binary.BigEndian.Uint64(hdr[16:])
	sent := make(chan error, 1)
	go func() { sent <- send(c, seed, down) }()
	var h io.Writer = io.Discard
	sum := sha256.New()
	if seed != 0 {
		h = sum
	}
	_, rerr := recv(h, c, up)
	if err := <-sent; err != nil {
		return fmt.Errorf("xfer download: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("xfer upload of %d bytes: %w", up, rerr)
	}
	if _, err := c.Write(sum.Sum(nil)); err != nil {
		return err
	}
	if want := StreamSum(seed^1, up); seed != 0 && string(sum.Sum(nil)) != string(want[:]) {
		return errors.New("xfer upload: SHA-256 mismatch at the target")
	}
	return nil
}

// Xfer runs one transfer over c (a tunnel to a Target) and checks both directions' SHA-256
// (seed 0: zeros, unchecked).
func Xfer(c net.Conn, up, down int64, seed uint64) error {
	var hdr [xferHeaderLen]byte
	binary.BigEndian.PutUint64(hdr[0:], uint64(up))
	binary.BigEndian.PutUint64(hdr[8:], uint64(down))
	binary.BigEndian.PutUint64(hdr[16:], seed)
	sent := make(chan error, 1)
	go func() {
		if _, err := c.Write(hdr[:]); err != nil {
			sent <- err
			return
		}
		sent <- send(c, seed^1, up)
	}()
	var h io.Writer = io.Discard
	sum := sha256.New()
	if seed != 0 {
		h = sum
	}
	got, rerr := recv(h, c, down)
	var theirs [32]byte
	if rerr == nil {
		_, rerr = io.ReadFull(c, theirs[:])
	}
	if err := <-sent; err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("download after %d of %d bytes: %w", got, down, rerr)
	}
	if seed == 0 {
		return nil
	}
	if want := StreamSum(seed, down); string(sum.Sum(nil)) != string(want[:]) {
		return errors.New("download: SHA-256 mismatch at the client")
	}
	if want := StreamSum(seed^1, up); theirs != want {
		return errors.New("upload: SHA-256 mismatch at the target")
	}
	return nil
}

// zeroBlock is what seed-0 transfers write: large writes and reads keep the generator's
// own cost per byte low, so that it is not what a benchmark measures.
var zeroBlock = make([]byte, 256<<10)

// send writes n bytes of Stream(seed) to c.
func send(c net.Conn, seed uint64, n int64) error {
	if seed != 0 {
		_, err := io.CopyBuffer(writerOnly{c}, Stream(seed, n), make([]byte, 64<<10))
		return err
	}
	for n > 0 {
		b := zeroBlock[:min(int64(len(zeroBlock)), n)]
		w, err := c.Write(b)
		n -= int64(w)
		if err != nil {
			return err
		}
	}
	return nil
}

// recv reads exactly n bytes from c into h, in large reads.
func recv(h io.Writer, c net.Conn, n int64) (int64, error) {
	buf := make([]byte, min(n, 256<<10))
	var got int64
	for got < n {
		r, err := c.Read(buf[:min(int64(len(buf)), n-got)])
		if r > 0 {
			h.Write(buf[:r])
			got += int64(r)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return got, err
		}
	}
	return got, nil
}

// writerOnly hides a conn's ReadFrom so that CopyBuffer uses the buffer it is given.
type writerOnly struct{ io.Writer }
