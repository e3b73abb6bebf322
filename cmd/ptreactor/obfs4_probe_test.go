package main

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/internal/harness"
)

// probeIdentity pins the bridge identity so that its close delay is known: with drbg-seed
// 000102…17 the delay is 24 s, so a failed handshake is closed 30+24 s
// after it began.
const probeIdentity = "obfs4:node-id=a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3" +
	";obfs4:private-key=8fbdaf04383991bf1ba98c4f8c829dde01f2236cf00d7fdbb381f462ae0bce6e" +
	";obfs4:drbg-seed=000102030405060708090a0b0c0d0e0f1011121314151617" +
	";obfs4:iat-mode=0"

const probeCloseAfter = 54 * time.Second

// recordingRelay forwards one client connection to dst and keeps the bytes the client sent
// before the server first answered: the client's handshake flight.
type recordingRelay struct {
	ln     net.Listener
	mu     sync.Mutex
	flight []byte
	done   chan struct{}
}

func newRecordingRelay(t *testing.T, dst string) *recordingRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recordingRelay{ln: ln, done: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		defer close(r.done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s, err := net.Dial("tcp", dst)
		if err != nil {
			return
		}
		defer s.Close()
		var answered atomic.Bool
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if !answered.Load() {
						r.mu.Lock()
						r.flight = append(r.flight, buf[:n]...)
						r.mu.Unlock()
					}
					s.Write(buf[:n])
				}
				if err != nil {
					s.Close()
					return
				}
			}
		}()
		buf := make([]byte, 32<<10)
		for {
			n, err := s.Read(buf)
			if n > 0 {
				answered.Store(true)
				c.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

func (r *recordingRelay) Flight() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.flight...)
}

// TestObfs4Probing sends what an active prober would to our bridge: garbage, a replay of a
// real client's handshake, and half of one. Each must get no byte back and stay open for
// 5 s; the garbage connection must then be closed by the bridge at 30 s + its close delay
// (54 s for this identity), never earlier, still without a byte.
func TestObfs4Probing(t *testing.T) {
	t.Parallel()
	peer := obfs4proxyBin(t)
	server := ourBin(t)
	if os.Getenv("PTREACTOR_PROBE_PEER") == "1" {
		server = peer // check the test against obfs4proxy's behaviour
	}
	tgt := target(t, false)
	bridge := bridgeServer(t, server, t.TempDir(), tgt.Addr(), probeIdentity)
	baddr := bridge.Addr("obfs4")
	cert := bridge.Methods["obfs4"].Arg("cert")

	// A genuine client (obfs4proxy), through a relay that keeps its first flight.
	relay := newRecordingRelay(t, baddr)
	cli := launch(t, harness.Spec{Bin: peer, StateDir: t.TempDir(), ClientTransports: "obfs4"})
	func() {
		ctx, cancel := timeoutCtx(10 * time.Second)
		defer cancel()
		c, err := harness.DialSOCKS(ctx, cli.Addr("obfs4"), relay.ln.Addr().String(), harness.ObfsArgs(cert, 0))
		if err != nil {
			t.Fatalf("genuine client: %v", err)
		}
		defer c.Close()
		if err := bench.Xfer(deadlineConn(c, 20*time.Second), 1000, 1000, 5); err != nil {
			t.Fatalf("genuine client: %v", err)
		}
	}()
	flight := relay.Flight()
	if len(flight) < 64 {
		t.Fatalf("captured client flight is only %d bytes", len(flight))
	}
	garbage := make([]byte, 4096)
	rand.Read(garbage)

	probes := []struct {
		name      string
		send      []byte
		waitClose bool
	}{
		{"garbage", garbage, true},
		{"replayed-handshake", flight, false},
		{"half-handshake", flight[:len(flight)/2], false},
	}
	var wg sync.WaitGroup
	for _, pb := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := probe(baddr, pb.send, pb.waitClose); err != nil {
				t.Errorf("%s (%d bytes): %v", pb.name, len(pb.send), err)
			}
		}()
	}
	wg.Wait()
}

// probe sends b to the bridge and checks that nothing comes back and the connection stays
// open for 5 s; with waitClose, that the bridge then closes it within a few seconds of
// probeCloseAfter and not before.
func probe(addr string, b []byte, waitClose bool) error {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		return err
	}
	c.SetReadDeadline(start.Add(5 * time.Second))
	var one [1]byte
	n, err := c.Read(one[:])
	if n > 0 {
		return errors.New("the bridge answered")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return errors.New("closed within 5 s: " + err.Error() + " after " + time.Since(start).String())
	}
	if !waitClose {
		return nil
	}
	c.SetReadDeadline(start.Add(probeCloseAfter + 6*time.Second))
	n, err = c.Read(one[:])
	took := time.Since(start)
	switch {
	case n > 0:
		return errors.New("the bridge answered after " + took.String())
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("still open after " + took.String())
	case took < probeCloseAfter-3*time.Second:
		return errors.New("closed early, after " + took.String())
	case err != io.EOF && !errors.Is(err, net.ErrClosed):
		// A reset is also a close; report only its timing.
	}
	return nil
}
