package reactor

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec"
)

// hsTransport is a test transport with a handshake and paced client output, to drive the
// parts of the reactor plain does not: SOCKS success only after Ready, payload decoded
// before tor is connected, paced writes (a Pacer), and a Stalling server after a bad
// handshake, which also holds conns past the tunnel limit (Holding) for stallFor.
//
// Client: Start sends "HELLO"; Ready once "OK" has come back. Its output is paced in
// 1000-byte chunks with a 1 ms wait. Server: expects "HELLO" (anything else fails and
// stalls for stallFor), replies "OK".
type hsTransport struct{}

var stallFor = 500 * time.Millisecond

func (hsTransport) Name() string { return "hstest" }
func (hsTransport) Client(args codec.Args) (codec.Wire, error) {
	if _, ok := args.Get("bad"); ok {
		return nil, codec.ErrBadArgs
	}
	return &hsClient{}, nil
}
func (hsTransport) Server(codec.Args, string) (codec.Server, error) { return hsServer{}, nil }

type hsServer struct{}

func (hsServer) Args() codec.Args                { return codec.Args{"k": {"v"}} }
func (hsServer) NewWire() codec.Wire             { return &hsServerWire{} }
func (hsServer) HandshakeTimeout() time.Duration { return 2 * time.Second }
func (hsServer) HoldFor() time.Duration          { return stallFor }

type hsClient struct {
	ready bool
	queue []byte
}

func (w *hsClient) Start(dst []byte) ([]byte, error) { return append(dst, "HELLO"...), nil }
func (w *hsClient) Unwrap(in []byte, out *codec.Output) (int, error) {
	if !w.ready {
		if len(in) < 2 {
			return 0, nil
		}
		if string(in[:2]) != "OK" {
			return 0, errors.New("bad server reply")
		}
		w.ready = true
		out.Payload = append(out.Payload, in[2:]...)
		return len(in), nil
	}
	out.Payload = append(out.Payload, in...)
	return len(in), nil
}
func (w *hsClient) Wrap(dst, p []byte) ([]byte, error) { panic("Wrap on a paced wire") }
func (w *hsClient) Ready() bool                        { return w.ready }
func (w *hsClient) Pacer() codec.Pacer                 { return w }
func (w *hsClient) Queue(p []byte) error               { w.queue = append(w.queue, p...); return nil }
func (w *hsClient) Pending() int                       { return len(w.queue) }
func (w *hsClient) Next(dst []byte) ([]byte, time.Duration, bool) {
	if len(w.queue) == 0 {
		return dst, 0, false
	}
	n := min(1000, len(w.queue))
	dst = append(dst, w.queue[:n]...)
	w.queue = w.queue[n:]
	return dst, time.Millisecond, true
}

type hsServerWire struct {
	ready      bool
	stallUntil time.Time
}

func (w *hsServerWire) Start(dst []byte) ([]byte, error) { return dst, nil }
func (w *hsServerWire) Unwrap(in []byte, out *codec.Output) (int, error) {
	if !w.ready {
		n := min(len(in), 5)
		if !bytes.HasPrefix([]byte("HELLO"), in[:n]) {
			w.stallUntil = time.Now().Add(stallFor)
			return 0, errors.New("bad client hello")
		}
		if n < 5 {
			return 0, nil
		}
		w.ready = true
		out.Reply = append(out.Reply, "OK"...)
		out.Payload = append(out.Payload, in[5:]...)
		return len(in), nil
	}
	out.Payload = append(out.Payload, in...)
	return len(in), nil
}
func (w *hsServerWire) Wrap(dst, p []byte) ([]byte, error) { return append(dst, p...), nil }
func (w *hsServerWire) Ready() bool                        { return w.ready }
func (w *hsServerWire) Pacer() codec.Pacer                 { return nil }
func (w *hsServerWire) StallUntil() time.Time              { return w.stallUntil }

func hsPair(t *testing.T, orport string) (socksAddr, srvAddr string, logs *logSink) {
	hs := map[string]codec.Transport{"hstest": hsTransport{}}
	logs = &logSink{}
	_ = logs
	srv, _ := New(Config{Transports: hs, ORPort: addrPort(t, orport)})
	t.Cleanup(func() { srv.Close() })
	sa, args, err := srv.ListenServer("hstest", "127.0.0.1:0", nil)
	if err != nil || args.Keys()[0] != "k" {
		t.Fatal(err, args)
	}
	cli, _ := New(Config{Transports: hs})
	t.Cleanup(func() { cli.Close() })
	ca, err := cli.ListenClient("hstest", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ca.String(), sa.String(), logs
}

func TestHandshakeTransport(t *testing.T) {
	// The ORPort speaks first: its banner reaches tor only after the SOCKS success reply.
	or := listen(t, func(c net.Conn) {
		c.Write([]byte("banner"))
		io.Copy(c, c)
	})
	socksAddr, srvAddr, _ := hsPair(t, or)

	if _, rep, _ := socksDial(socksAddr, srvAddr, "bad=1"); rep != 1 {
		t.Fatalf("bad args: reply %d, want 1", rep)
	}

	c, rep, err := socksDial(socksAddr, srvAddr, "k=v")
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v", rep, err)
	}
	defer c.Close()
	b := make([]byte, 6)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "banner" {
		t.Fatalf("banner: %q %v", b, err)
	}
	msg := bytes.Repeat([]byte("paced "), 5000) // 30 chunks of 1000 bytes
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through paced wire: %v", err)
	}
}

// TestStallingServer: a prober whose handshake fails gets no byte back, and the server
// closes on it only at StallUntil (or when it closes first).
func TestStallingServer(t *testing.T) {
	or := listen(t, echo)
	_, srvAddr, _ := hsPair(t, or)
	c, err := net.Dial("tcp", srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if len(got) != 0 || err != nil {
		t.Fatalf("prober got %q, err %v", got, err)
	}
	if el := time.Since(start); el < stallFor/2 {
		t.Fatalf("closed after %v, before the stall ended", el)
	}

	// A client that never completes the handshake is cut off at the handshake deadline
	// (it stalls from there).
	c2, err := net.Dial("tcp", srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte("HEL"))
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c2); len(got) != 0 || err != nil {
		t.Fatalf("slow client got %q, err %v", got, err)
	}
}

// TestDrain: Drain stops accepting at once, and its channel closes when the last open
// tunnel ends.
func TestDrain(t *testing.T) {
	or := listen(t, echo)
	socksAddr, srvAddr, _, cli, _ := pairEngines(t, or, "", "")
	c, rep, err := socksDial(socksAddr, srvAddr, "")
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v", rep, err)
	}
	done := cli.Drain()
	if _, err := net.Dial("tcp", socksAddr); err == nil {
		t.Fatal("listener still accepting after Drain")
	}
	select {
	case <-done:
		t.Fatal("drained with a tunnel open")
	case <-time.After(100 * time.Millisecond):
	}
	c.Write([]byte("x")) // the open tunnel still works
	b := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not finish after the last tunnel closed")
	}
}
