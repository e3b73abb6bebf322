package obfs4

import (
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/obfs4/elligator"
)

var errSourceDown = errors.New("entropy source down")

// switchableReader reads from crypto/rand until down is set, and fails from then on.
type switchableReader struct{ down atomic.Bool }

func (r *switchableReader) Read(b []byte) (int, error) {
	if r.down.Load() {
		return 0, errSourceDown
	}
	return rand.Read(b)
}

// Client and server wires take their ephemeral keys from the pool they are made with.
// With a stocked pool whose source has since failed they still complete as many
// handshakes as there are keys in stock; once the stock is spent they fall back to
// generating from the source, and report its failure.
func TestWiresTakeFromPool(t *testing.T) {
	src := &switchableReader{}
	keys := elligator.NewPool(src, 4)
	keys.Refill()
	deadline := time.Now().Add(10 * time.Second)
	for keys.Len() < keys.Cap() {
		if time.Now().After(deadline) {
			t.Fatalf("pool holds %d of %d after 10 s", keys.Len(), keys.Cap())
		}
		time.Sleep(time.Millisecond)
	}
	src.down.Store(true)

	st, err := loadServerState(codec.Args{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(st, keys, time.Now)
	args := codec.Args{}
	args.Add("cert", st.cert())
	args.Add("iat-mode", "0")
	ca, err := parseClientArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // two keys each
		handshake(t, newClientWire(ca, keys, time.Now), srv.NewWire(), 0)
	}
	if keys.Len() != 0 {
		t.Fatalf("%d keys left in stock after 2 handshakes of 4", keys.Len())
	}

	if _, err := newClientWire(ca, keys, time.Now).Start(nil); !errors.Is(err, errSourceDown) {
		t.Fatalf("client Start on an empty pool with a failed source: %v", err)
	}
	req, err := clientFor(t, srv, "0", nil).Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.NewWire().Unwrap(req, &codec.Output{}); !errors.Is(err, errSourceDown) {
		t.Fatalf("server wire on an empty pool with a failed source: %v", err)
	}
}
