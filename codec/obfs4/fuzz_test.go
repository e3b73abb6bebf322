package obfs4

import (
	"crypto/sha512"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/obfs4/elligator"
)

// fuzzEpoch is the fixed time of the fuzz servers, so that seeds stay valid.
var fuzzEpoch = time.Unix(480000*3600+60, 0)

// fuzzServer is a bridge with the identity of the notes' test vectors.
func fuzzServer(t testing.TB) *server {
	st := &serverState{}
	d := sha512.Sum512([]byte("identity"))
	copy(st.private[:], d[:32])
	for i := range st.nodeID {
		st.nodeID[i] = 0xa0 + byte(i)
	}
	if err := st.derivePublic(); err != nil {
		t.Fatal(err)
	}
	return newServer(st, keypairs, func() time.Time { return fuzzEpoch })
}

// fuzzRequest is a valid client request to fuzzServer with the vector key "client0".
func fuzzRequest(srv *server, pad int) []byte {
	d := sha512.Sum512([]byte("client0"))
	kp, _ := elligator.KeypairFromDigest(&d)
	h := newClientHandshake(&srv.state.bridgeKey, kp, false)
	return h.appendRequest(nil, pad, zeros{}, fuzzEpoch)
}

// FuzzServerHandshake feeds arbitrary client bytes to a server wire, split at an arbitrary
// point, as a prober would send them. It must never panic, never answer anything but a
// well-formed request, and never consume bytes it did not use.
func FuzzServerHandshake(f *testing.F) {
	srv := fuzzServer(f)
	f.Add(uint16(0), fuzzRequest(srv, clientMinPadLength))
	f.Add(uint16(100), fuzzRequest(srv, 1000))
	f.Add(uint16(0), append(fuzzRequest(srv, clientMaxPadLength), 0))
	f.Add(uint16(5), []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	f.Add(uint16(0), make([]byte, 200))
	f.Fuzz(func(t *testing.T, split uint16, in []byte) {
		// Each input gets a fresh server so that the replay filter does not hide paths.
		srv := fuzzServer(t)
		w := srv.NewWire()
		cut := min(int(split), len(in))
		var out codec.Output
		n, err := w.Unwrap(in[:cut], &out)
		if err != nil || n != 0 && n != cut {
			return
		}
		if n == cut && cut > 0 && !w.Ready() {
			t.Fatalf("consumed %d without completing", n)
		}
		if !w.Ready() {
			_, err = w.Unwrap(in, &out)
		} else {
			_, err = w.Unwrap(in[cut:], &out)
		}
		if err != nil {
			if len(out.Reply) != 0 && !w.Ready() {
				t.Fatal("reply on failure")
			}
			return
		}
		if len(out.Reply) > 0 && !w.Ready() {
			t.Fatal("reply without completing")
		}
		if w.Ready() && (len(out.Reply) < serverMinHandshakeLength+45 || len(out.Reply) > maxHandshakeLength) {
			t.Fatalf("reply of %d bytes", len(out.Reply))
		}
	})
}

// FuzzClientReply feeds arbitrary bytes to a client wire waiting for its reply.
func FuzzClientReply(f *testing.F) {
	f.Add(make([]byte, 96))
	f.Add(make([]byte, maxHandshakeLength+10))
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		ca := &clientArgs{key: srv.state.bridgeKey}
		w := newClientWire(ca, keypairs, time.Now)
		if _, err := w.Start(nil); err != nil {
			t.Fatal(err)
		}
		var out codec.Output
		n, err := w.Unwrap(in, &out)
		if n < 0 || n > len(in) {
			t.Fatalf("consumed %d of %d", n, len(in))
		}
		if err == nil && w.Ready() {
			t.Fatal("random bytes completed a handshake")
		}
	})
}

// FuzzClientArgs parses arbitrary SOCKS arguments; whatever parses must describe a bridge
// whose cert round-trips.
func FuzzClientArgs(f *testing.F) {
	f.Add("3XN/KREvQWY1y9q2NcqoHG9n+7nv28incYkxfJTLXbpISWxslByE4QMD6M66J5LhVAnrOg", "", "", "0")
	f.Add("3XN/KREvQWY1y9q2NcqoHG9n+7nv28incYkxfJTLXbpISWxslByE4QMD6M66J5LhVAnrOg==", "", "", "1")
	f.Add("", "dd737f29112f416635cbdab635caa81c6f67fbb9", "efdbc8a77189317c94cb5dba48496c6c941c84e10303e8ceba2792e15409eb3a", "2")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, cert, nodeID, pub, iat string) {
		args := codec.Args{}
		for _, kv := range [][2]string{{"cert", cert}, {"node-id", nodeID}, {"public-key", pub}, {"iat-mode", iat}} {
			if kv[1] != "" {
				args.Add(kv[0], kv[1])
			}
		}
		ca, err := parseClientArgs(args)
		if err != nil {
			return
		}
		if ca.iatMode < 0 || ca.iatMode > 2 {
			t.Fatalf("iat-mode %d", ca.iatMode)
		}
		k, err := parseCert(ca.key.cert())
		if err != nil || *k != ca.key {
			t.Fatal("cert does not round trip")
		}
		if cert != "" && ca.key.cert() != cert {
			t.Fatalf("cert %q parsed but encodes as %q", cert, ca.key.cert())
		}
	})
}

// The fuzz seeds must reach the success path, or the fuzzer starts from nothing.
func TestFuzzSeedIsValid(t *testing.T) {
	srv := fuzzServer(t)
	w := srv.NewWire()
	var out codec.Output
	req := fuzzRequest(srv, clientMinPadLength)
	if n, err := w.Unwrap(req, &out); err != nil || n != len(req) || !w.Ready() {
		t.Fatalf("n=%d err=%v", n, err)
	}
}
