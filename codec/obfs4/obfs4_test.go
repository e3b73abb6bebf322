package obfs4

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/obfs4/drbg"
	"github.com/ptreactor/ptreactor/codec/obfs4/elligator"
	"github.com/ptreactor/ptreactor/codec/obfs4/ntor"
)

// fixedClock is a settable clock for epoch tests.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

func newTestServer(t testing.TB, opts codec.Args, clock func() time.Time) *server {
	t.Helper()
	if opts == nil {
		opts = codec.Args{}
	}
	st, err := loadServerState(opts, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if clock == nil {
		clock = time.Now
	}
	return newServer(st, keypairs, clock)
}

func clientFor(t testing.TB, srv *server, iat string, clock func() time.Time) codec.Wire {
	t.Helper()
	args := codec.Args{}
	args.Add("cert", srv.state.cert())
	args.Add("iat-mode", iat)
	ca, err := parseClientArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	if clock == nil {
		clock = time.Now
	}
	return newClientWire(ca, keypairs, clock)
}

// feed hands in to w in pieces of the given size (0: all at once), the way the reactor
// does: unconsumed bytes are offered again with the next piece appended.
func feed(t testing.TB, w codec.Wire, in []byte, piece int, out *codec.Output) error {
	t.Helper()
	var buf []byte
	for len(in) > 0 {
		n := len(in)
		if piece > 0 && piece < n {
			n = piece
		}
		buf = append(buf, in[:n]...)
		in = in[n:]
		c, err := w.Unwrap(buf, out)
		if err != nil {
			return err
		}
		buf = buf[c:]
	}
	if len(buf) != 0 {
		return errors.New("bytes left unconsumed")
	}
	return nil
}

// send moves payload from a to b through Wrap or the wire's Pacer.
func send(t testing.TB, from, to codec.Wire, payload []byte, piece int) []byte {
	t.Helper()
	var wire []byte
	if p := from.Pacer(); p != nil {
		if err := p.Queue(payload); err != nil {
			t.Fatal(err)
		}
		for {
			var chunk []byte
			var ok bool
			chunk, _, ok = p.Next(chunk)
			if !ok {
				break
			}
			wire = append(wire, chunk...)
		}
		if p.Pending() != 0 {
			t.Fatalf("pending %d after draining", p.Pending())
		}
	} else {
		var err error
		if wire, err = from.Wrap(nil, payload); err != nil {
			t.Fatal(err)
		}
	}
	var out codec.Output
	if err := feed(t, to, wire, piece, &out); err != nil {
		t.Fatal(err)
	}
	return out.Payload
}

// handshake runs a full handshake between client and server wires, splitting both
// messages into pieces of the given size.
func handshake(t testing.TB, c, s codec.Wire, piece int) {
	t.Helper()
	req, err := c.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(req) < clientMinHandshakeLength+clientMinPadLength || len(req) > maxHandshakeLength {
		t.Fatalf("request of %d bytes", len(req))
	}
	var out codec.Output
	if err := feed(t, s, req, piece, &out); err != nil {
		t.Fatalf("server: %v", err)
	}
	if !s.Ready() || len(out.Payload) != 0 {
		t.Fatal("server not ready after request")
	}
	reply := out.Reply
	if len(reply) < serverMinHandshakeLength+45 || len(reply) > maxHandshakeLength {
		t.Fatalf("reply of %d bytes", len(reply))
	}
	out = codec.Output{}
	if err := feed(t, c, reply, piece, &out); err != nil {
		t.Fatalf("client: %v", err)
	}
	if !c.Ready() || len(out.Payload) != 0 || len(out.Reply) != 0 {
		t.Fatal("client not ready after reply")
	}
}

func TestRoundTrip(t *testing.T) {
	for _, iat := range []string{"0", "1", "2"} {
		srv := newTestServer(t, codec.Args{"iat-mode": {iat}}, nil)
		for _, piece := range []int{0, 1, 7, 1448} {
			c := clientFor(t, srv, iat, nil)
			s := srv.NewWire()
			cp, sp := c.Pacer() != nil, s.Pacer() != nil
			if cp != (iat != "0") || sp != (iat != "0") {
				t.Fatalf("iat %s: client has a Pacer %v, server %v", iat, cp, sp)
			}
			if piece == 1 && iat != "0" {
				continue // byte-at-a-time handshakes are slow; one mode is enough
			}
			handshake(t, c, s, piece)
			for _, n := range []int{0, 1, 1427, 1428, 5000, 65536} {
				msg := make([]byte, n)
				rand.Read(msg)
				if got := send(t, c, s, msg, piece); !bytes.Equal(got, msg) {
					t.Fatalf("iat %s piece %d: c→s %d bytes garbled", iat, piece, n)
				}
				if got := send(t, s, c, msg, piece); !bytes.Equal(got, msg) {
					t.Fatalf("iat %s piece %d: s→c %d bytes garbled", iat, piece, n)
				}
			}
		}
	}
}

// The old node-id/public-key form must reach the same bridge.
func TestLegacyArgs(t *testing.T) {
	srv := newTestServer(t, nil, nil)
	args := codec.Args{}
	args.Add("node-id", hex.EncodeToString(srv.state.nodeID[:]))
	args.Add("public-key", hex.EncodeToString(srv.state.public[:]))
	args.Add("iat-mode", "0")
	c, err := Transport{}.Client(args)
	if err != nil {
		t.Fatal(err)
	}
	s := srv.NewWire()
	handshake(t, c, s, 0)
	if got := send(t, c, s, []byte("hello"), 0); string(got) != "hello" {
		t.Fatalf("got %q", got)
	}
}

// TestLegacyRepr: with legacy-repr=1 every representative goes out with bits 254 and 255
// clear (what obfs4proxy 0.0.11 and older need) and the handshake still completes; without
// it those bits are random, as current peers send them.
func TestLegacyRepr(t *testing.T) {
	srv := newTestServer(t, nil, nil)
	var topBits byte
	for _, legacy := range []string{"1", "0"} {
		for i := 0; i < 32; i++ {
			args := codec.Args{}
			args.Add("cert", srv.state.cert())
			args.Add("iat-mode", "0")
			args.Add("legacy-repr", legacy)
			c, err := Transport{}.Client(args)
			if err != nil {
				t.Fatal(err)
			}
			req, err := c.Start(nil)
			if err != nil {
				t.Fatal(err)
			}
			if legacy == "1" && req[31]&0xc0 != 0 {
				t.Fatalf("legacy representative with top bits %#x", req[31]&0xc0)
			}
			if legacy == "0" {
				topBits |= req[31] & 0xc0
			}
			var out codec.Output
			s := srv.NewWire()
			if err := feed(t, s, req, 0, &out); err != nil || !s.Ready() {
				t.Fatalf("server: ready %v, %v", s.Ready(), err)
			}
			reply := out.Reply
			out = codec.Output{}
			if err := feed(t, c, reply, 0, &out); err != nil || !c.Ready() {
				t.Fatalf("client: ready %v, %v", c.Ready(), err)
			}
			if got := send(t, c, s, []byte("hi"), 0); string(got) != "hi" {
				t.Fatalf("got %q", got)
			}
		}
	}
	if topBits != 0xc0 {
		t.Fatalf("32 default representatives never set top bits %#x", ^topBits&0xc0)
	}
}

// Client handshake known answer: P_C = 77 zero bytes, E = "480000".
func TestClientHandshakeKAT(t *testing.T) {
	var key bridgeKey
	for i := range key.nodeID {
		key.nodeID[i] = 0xa0 + byte(i)
	}
	pub, _ := hex.DecodeString("6902dcf1d8ef3724f3ec38e39a870dcbc9ddba3edfbd280a2affb84cb8413d3e")
	copy(key.public[:], pub)
	d := sha512.Sum512([]byte("client0"))
	kp, ok := elligator.KeypairFromDigest(&d)
	if !ok {
		t.Fatal("no representative")
	}
	h := newClientHandshake(&key, kp, false)
	req := h.appendRequest(nil, 77, zeros{}, time.Unix(480000*3600+1234, 0))
	if string(h.epoch) != "480000" {
		t.Fatalf("epoch %s", h.epoch)
	}
	if len(req) != 141 {
		t.Fatalf("length %d", len(req))
	}
	if got := hex.EncodeToString(req[109:125]); got != "4c1272f42906835f2628595db1774a52" {
		t.Errorf("M_C %s", got)
	}
	if got := hex.EncodeToString(req[125:141]); got != "c38fc5ec1986ba4f25c7afdfdb6a531e" {
		t.Errorf("MAC_C %s", got)
	}
}

func TestConstants(t *testing.T) {
	if clientMinPadLength != 77 || clientMaxPadLength != 8128 || serverMaxPadLength != 8051 {
		t.Fatalf("pad bounds %d %d %d", clientMinPadLength, clientMaxPadLength, serverMaxPadLength)
	}
}

// Close delay known answer: seed 00..17 gives 24 s.
func TestCloseDelay(t *testing.T) {
	st := &serverState{}
	for i := range st.drbgSeed {
		st.drbgSeed[i] = byte(i)
	}
	if err := st.derivePublic(); err != nil {
		t.Fatal(err)
	}
	srv := newServer(st, keypairs, time.Now)
	if srv.closeDelay != 24*time.Second {
		t.Fatalf("close delay %v", srv.closeDelay)
	}
	w := srv.NewWire().(*serverWire)
	if got := w.StallUntil().Sub(w.start); got != 54*time.Second {
		t.Fatalf("stall %v", got)
	}
}

func TestReplayRejected(t *testing.T) {
	srv := newTestServer(t, nil, nil)
	c := clientFor(t, srv, "0", nil)
	req, _ := c.Start(nil)
	var out codec.Output
	if err := feed(t, srv.NewWire(), req, 0, &out); err != nil {
		t.Fatal(err)
	}
	s2 := srv.NewWire()
	out = codec.Output{}
	if err := feed(t, s2, req, 0, &out); !errors.Is(err, errReplay) || !errors.Is(err, codec.ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	if len(out.Reply) != 0 || s2.Ready() {
		t.Fatal("replayed handshake got a reply")
	}
	// A different server (another process) has its own filter.
	// The same request to the same server later than the TTL is accepted again.
	srv.replay.mu.Lock()
	srv.replay.last = time.Time{}
	for i := 0; i < srv.replay.n; i++ {
		srv.replay.fifo[(srv.replay.head+i)%len(srv.replay.fifo)].at = time.Now().Add(-replayTTL - time.Minute)
	}
	srv.replay.mu.Unlock()
	out = codec.Output{}
	if err := feed(t, srv.NewWire(), req, 0, &out); err != nil {
		t.Fatalf("after TTL: %v", err)
	}
}

func TestReplayFilterBounds(t *testing.T) {
	f := newReplayFilter()
	now := time.Now()
	var mac [macLength]byte
	for i := 0; i < replayCapacity+10; i++ {
		copy(mac[:], []byte{byte(i), byte(i >> 8), byte(i >> 16)})
		if f.testAndSet(now, &mac) {
			t.Fatalf("false hit at %d", i)
		}
	}
	if len(f.seen) != replayCapacity || f.n != replayCapacity {
		t.Fatalf("filter holds %d/%d", len(f.seen), f.n)
	}
	copy(mac[:], []byte{0, 0, 0}) // the oldest, evicted
	if f.testAndSet(now, &mac) {
		t.Fatal("evicted entry still present")
	}
	if !f.testAndSet(now, &mac) {
		t.Fatal("fresh entry missing")
	}
	// Clock going backwards clears the filter.
	if f.testAndSet(now.Add(-time.Second), &mac) {
		t.Fatal("filter survived a clock step back")
	}
}

func TestEpochWindow(t *testing.T) {
	base := time.Unix(480000*3600+1800, 0)
	sclock := &fixedClock{base}
	srv := newTestServer(t, nil, sclock.now)
	for _, tc := range []struct {
		hours int
		ok    bool
	}{{-2, false}, {-1, true}, {0, true}, {1, true}, {2, false}} {
		cclock := &fixedClock{base.Add(time.Duration(tc.hours) * time.Hour)}
		c := clientFor(t, srv, "0", cclock.now)
		s := srv.NewWire()
		req, _ := c.Start(nil)
		var out codec.Output
		err := feed(t, s, req, 0, &out)
		if tc.ok != (err == nil) {
			t.Fatalf("client %+d h: %v", tc.hours, err)
		}
		if err != nil {
			if !errors.Is(err, errBadMAC) {
				t.Fatalf("client %+d h: %v", tc.hours, err)
			}
			continue
		}
		out2 := codec.Output{}
		if err := feed(t, c, out.Reply, 0, &out2); err != nil {
			t.Fatalf("client %+d h: reply: %v", tc.hours, err)
		}
	}
}

// Probes: garbage, a truncated request, trailing bytes, a wrong bridge. None gets a reply;
// all but the truncated one fail, and a failed wire keeps failing.
func TestProbesGetNothing(t *testing.T) {
	srv := newTestServer(t, nil, nil)

	garbage := make([]byte, maxHandshakeLength)
	rand.Read(garbage)
	s := srv.NewWire()
	var out codec.Output
	if err := feed(t, s, garbage, 1000, &out); !errors.Is(err, errMarkNotFound) {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := s.Unwrap([]byte{1}, &out); err == nil {
		t.Fatal("failed wire recovered")
	}
	if len(out.Reply) != 0 || len(out.Payload) != 0 {
		t.Fatal("garbage got output")
	}
	st := s.(codec.Stalling).StallUntil()
	if d := time.Until(st); d < ServerHandshakeTimeout || d > ServerHandshakeTimeout+maxCloseDelay*time.Second {
		t.Fatalf("stall until %v from now", d)
	}

	c := clientFor(t, srv, "0", nil)
	req, _ := c.Start(nil)
	s = srv.NewWire()
	out = codec.Output{}
	n, err := s.Unwrap(req[:len(req)-1], &out)
	if err != nil || n != 0 || len(out.Reply) != 0 || s.Ready() {
		t.Fatalf("truncated: n=%d err=%v", n, err)
	}

	// A request of the full 8192 bytes with one more byte after it.
	c2 := clientFor(t, srv, "0", nil).(*clientWire)
	c2.started = true
	kp, err := elligator.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c2.hs = newClientHandshake(&c2.args.key, kp, false)
	full := c2.hs.appendRequest(nil, clientMaxPadLength, zeros{}, time.Now())
	if len(full) != maxHandshakeLength {
		t.Fatal(len(full))
	}
	s = srv.NewWire()
	out = codec.Output{}
	if _, err := s.Unwrap(append(full, 0), &out); !errors.Is(err, errTrailing) {
		t.Fatalf("trailing: %v", err)
	}

	// A client with another bridge's cert.
	other := newTestServer(t, nil, nil)
	c3 := clientFor(t, other, "0", nil)
	req3, _ := c3.Start(nil)
	s = srv.NewWire()
	out = codec.Output{}
	if n, err := s.Unwrap(req3, &out); n != 0 || err != nil || s.Ready() {
		t.Fatalf("foreign request: n=%d err=%v", n, err)
	}
	// It waits for more; padding it out to the cap makes it fail.
	if _, err := s.Unwrap(append(req3, make([]byte, maxHandshakeLength)...), &out); !errors.Is(err, errMarkNotFound) {
		t.Fatalf("foreign request at cap: %v", err)
	}
}

// A client key that decodes to a low-order point makes the DH results zero; the server
// must fail rather than derive keys from nothing.
func TestLowOrderClientKey(t *testing.T) {
	srv := newTestServer(t, nil, nil)
	var zeroRepr, u [32]byte
	elligator.Decode(&u, &zeroRepr)
	if u != ([32]byte{}) {
		t.Skipf("representative 0 decodes to %x, not the low-order point 0", u)
	}
	h := newClientHandshake(&srv.state.bridgeKey, &elligator.Keypair{}, false)
	req := h.appendRequest(nil, 100, zeros{}, time.Now())
	s := srv.NewWire()
	var out codec.Output
	if _, err := s.Unwrap(req, &out); !errors.Is(err, ntor.ErrZeroSecret) {
		t.Fatalf("low-order key: %v", err)
	}
}

// The client must reject a reply whose AUTH, MAC or mark is wrong.
func TestClientRejectsBadReply(t *testing.T) {
	srv := newTestServer(t, nil, nil)
	for _, corrupt := range []struct {
		name string
		at   func(reply []byte) int
		want error
	}{
		{"mac", func(r []byte) int { return len(r) - 45 - 1 }, errBadMAC},
	} {
		c := clientFor(t, srv, "0", nil)
		s := srv.NewWire()
		req, _ := c.Start(nil)
		var out codec.Output
		if err := feed(t, s, req, 0, &out); err != nil {
			t.Fatal(err)
		}
		reply := out.Reply
		reply[corrupt.at(reply)] ^= 1
		out = codec.Output{}
		if err := feed(t, c, reply, 0, &out); !errors.Is(err, corrupt.want) {
			t.Fatalf("%s: %v", corrupt.name, err)
		}
	}
	// A reply with valid framing (mark, MAC) but the wrong AUTH.
	c := clientFor(t, srv, "0", nil)
	s := srv.NewWire().(*serverWire)
	req, _ := c.Start(nil)
	var okm [ntor.OKMSize]byte
	done, epoch, auth, err := s.hs.parseRequest(req, time.Now(), &okm)
	if !done || err != nil {
		t.Fatal(done, err)
	}
	auth[0] ^= 1
	reply := s.hs.appendReply(nil, &auth, 10, zeros{}, epoch)
	var out codec.Output
	if _, err := c.Unwrap(reply, &out); !errors.Is(err, errBadAuth) {
		t.Fatalf("bad auth: %v", err)
	}

	// No mark within 8192 bytes.
	c = clientFor(t, srv, "0", nil)
	c.Start(nil)
	junk := make([]byte, maxHandshakeLength)
	rand.Read(junk)
	out = codec.Output{}
	if err := feed(t, c, junk, 0, &out); !errors.Is(err, errMarkNotFound) {
		t.Fatalf("junk reply: %v", err)
	}
}

// The reply carries the seed frame, and data sent right behind the reply (in the same
// read) reaches the client.
func TestReplyAndDataTogether(t *testing.T) {
	srv := newTestServer(t, nil, nil)
	c := clientFor(t, srv, "0", nil)
	s := srv.NewWire()
	req, _ := c.Start(nil)
	var out codec.Output
	if err := feed(t, s, req, 0, &out); err != nil {
		t.Fatal(err)
	}
	both, err := s.Wrap(out.Reply, []byte("early data"))
	if err != nil {
		t.Fatal(err)
	}
	out = codec.Output{}
	n, err := c.Unwrap(both, &out)
	if err != nil || n != len(both) || string(out.Payload) != "early data" {
		t.Fatalf("n=%d/%d err=%v payload=%q", n, len(both), err, out.Payload)
	}
}

func TestCertRoundTrip(t *testing.T) {
	for i := 0; i < 50; i++ {
		var k bridgeKey
		rand.Read(k.nodeID[:])
		rand.Read(k.public[:])
		cert := k.cert()
		if len(cert) != certLength || strings.ContainsAny(cert, "=,;") {
			t.Fatalf("cert %q", cert)
		}
		k2, err := parseCert(cert)
		if err != nil || *k2 != k {
			t.Fatalf("round trip %q: %v", cert, err)
		}
		if _, err := parseCert(cert + "=="); err == nil {
			t.Fatal("padded cert accepted")
		}
	}
}

func TestClientArgs(t *testing.T) {
	srv := newTestServer(t, nil, nil)
	cert := srv.state.cert()
	id := hex.EncodeToString(srv.state.nodeID[:])
	pub := hex.EncodeToString(srv.state.public[:])
	for _, tc := range []struct {
		args codec.Args
		ok   bool
	}{
		{codec.Args{"cert": {cert}, "iat-mode": {"0"}}, true},
		{codec.Args{"cert": {cert}, "iat-mode": {"2"}}, true},
		{codec.Args{"cert": {cert}}, false},
		{codec.Args{"cert": {cert}, "iat-mode": {"3"}}, false},
		{codec.Args{"cert": {cert}, "iat-mode": {"-1"}}, false},
		{codec.Args{"cert": {cert}, "iat-mode": {""}}, false},
		{codec.Args{"cert": {cert + "=="}, "iat-mode": {"0"}}, false},
		{codec.Args{"cert": {cert[:69]}, "iat-mode": {"0"}}, false},
		{codec.Args{"cert": {"!" + cert[1:]}, "iat-mode": {"0"}}, false},
		{codec.Args{"node-id": {id}, "public-key": {pub}, "iat-mode": {"1"}}, true},
		{codec.Args{"node-id": {id}, "iat-mode": {"1"}}, false},
		{codec.Args{"node-id": {id[:38]}, "public-key": {pub}, "iat-mode": {"1"}}, false},
		{codec.Args{"node-id": {id}, "public-key": {"zz" + pub[2:]}, "iat-mode": {"1"}}, false},
		{codec.Args{"iat-mode": {"0"}}, false},
		{codec.Args{"cert": {cert}, "iat-mode": {"0"}, "legacy-repr": {"1"}}, true},
		{codec.Args{"cert": {cert}, "iat-mode": {"0"}, "legacy-repr": {"0"}}, true},
		{codec.Args{"cert": {cert}, "iat-mode": {"0"}, "legacy-repr": {"yes"}}, false},
	} {
		_, err := Transport{}.Client(tc.args)
		if tc.ok != (err == nil) {
			t.Errorf("%v: %v", tc.args, err)
		}
		if err != nil && !errors.Is(err, codec.ErrBadArgs) {
			t.Errorf("%v: error does not wrap ErrBadArgs: %v", tc.args, err)
		}
	}
}

func TestStateFiles(t *testing.T) {
	dir := t.TempDir()
	srv, err := Transport{}.Server(codec.Args{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, stateFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	data, _ := os.ReadFile(path)
	keys := []string{`{"node-id":"`, `","private-key":"`, `","public-key":"`, `","drbg-seed":"`, `","iat-mode":0}`}
	rest := string(data)
	for _, k := range keys {
		i := strings.Index(rest, k)
		if i < 0 {
			t.Fatalf("state file %s: missing %s in order", data, k)
		}
		rest = rest[i+len(k):]
	}
	if rest != "" || len(data) != 291 {
		t.Fatalf("state file %q (%d bytes)", data, len(data))
	}
	line, _ := os.ReadFile(filepath.Join(dir, bridgeLineFile))
	cert, _ := srv.Args().Get("cert")
	want := "\nBridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=" + cert + " iat-mode=0\n"
	if !strings.HasSuffix(string(line), want) || !strings.HasPrefix(string(line), "# ") {
		t.Fatalf("bridge line file:\n%s", line)
	}
	if fi, _ := os.Stat(filepath.Join(dir, bridgeLineFile)); fi.Mode().Perm() != 0o600 {
		t.Fatal("bridge line mode")
	}

	// Reload keeps the identity; an iat-mode option overrides and is saved.
	srv2, err := Transport{}.Server(codec.Args{"iat-mode": {"2"}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if c2, _ := srv2.Args().Get("cert"); c2 != cert {
		t.Fatal("identity changed on reload")
	}
	if m, _ := srv2.Args().Get("iat-mode"); m != "2" {
		t.Fatalf("iat-mode %s", m)
	}
	data2, _ := os.ReadFile(path)
	if !bytes.HasSuffix(data2, []byte(`"iat-mode":2}`)) || !bytes.Equal(data2[:len(data2)-2], data[:len(data)-2]) {
		t.Fatalf("rewritten state %s", data2)
	}
	srv3, _ := Transport{}.Server(codec.Args{}, dir)
	if m, _ := srv3.Args().Get("iat-mode"); m != "2" {
		t.Fatal("iat-mode override not persisted")
	}
	if srv3.HandshakeTimeout() != 30*time.Second {
		t.Fatal("handshake timeout")
	}

	// Options with the full identity win over the file, and are written to it.
	var st serverState
	id, _ := newIdentity()
	st.identity = *id
	opts := codec.Args{
		"node-id":     {hex.EncodeToString(id.nodeID[:])},
		"private-key": {hex.EncodeToString(id.private[:])},
		"drbg-seed":   {hex.EncodeToString(id.drbgSeed[:])},
	}
	srv4, err := Transport{}.Server(opts, dir)
	if err != nil {
		t.Fatal(err)
	}
	if c4, _ := srv4.Args().Get("cert"); c4 != st.cert() {
		t.Fatal("options identity not used")
	}
	// The file is not read then: iat-mode is the option's, or 0.
	if m, _ := srv4.Args().Get("iat-mode"); m != "0" {
		t.Fatalf("iat-mode with option identity: %s", m)
	}
	data4, _ := os.ReadFile(path)
	if !bytes.Contains(data4, []byte(hex.EncodeToString(id.nodeID[:]))) {
		t.Fatal("options identity not saved")
	}

	// A partial identity is an error naming the missing argument.
	delete(opts, "drbg-seed")
	if _, err := (Transport{}).Server(opts, dir); err == nil || !strings.Contains(err.Error(), "missing argument 'drbg-seed'") {
		t.Fatalf("partial identity: %v", err)
	}
	if _, err := (Transport{}).Server(codec.Args{"iat-mode": {"7"}}, dir); err == nil {
		t.Fatal("bad iat-mode accepted")
	}
	// A corrupt state file is an error, not a silent new identity.
	os.WriteFile(path, []byte(`{"node-id":"xx"}`), 0o600)
	if _, err := (Transport{}).Server(codec.Args{}, dir); err == nil {
		t.Fatal("corrupt state accepted")
	}
}

// A state file written by obfs4proxy loads, and the public key is recomputed.
func TestStateFromObfs4proxy(t *testing.T) {
	dir := t.TempDir()
	const file = `{"node-id":"dd737f29112f416635cbdab635caa81c6f67fbb9","private-key":"23e3591367477f52e15e580fbecda1cf52714b67841e7ab0b80d3f486b932ff9","public-key":"efdbc8a77189317c94cb5dba48496c6c941c84e10303e8ceba2792e15409eb3a","drbg-seed":"06e1449b72b34a910f233f4ded5c03802bdeeb34b5d016e6","iat-mode":0}`
	os.WriteFile(filepath.Join(dir, stateFile), []byte(file), 0o600)
	srv, err := Transport{}.Server(codec.Args{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if cert, _ := srv.Args().Get("cert"); cert != "3XN/KREvQWY1y9q2NcqoHG9n+7nv28incYkxfJTLXbpISWxslByE4QMD6M66J5LhVAnrOg" {
		t.Fatalf("cert %s", cert)
	}
	data, _ := os.ReadFile(filepath.Join(dir, stateFile))
	if string(data) != file {
		t.Fatalf("rewritten state differs:\n%s", data)
	}
}

// New bridges avoid drbg-seeds whose length table holds 0, which crash paranoid peers.
func TestNewIdentitySeedAvoidsZeroLength(t *testing.T) {
	var withZero int
	for i := 0; i < 200; i++ {
		id, err := newIdentity()
		if err != nil {
			t.Fatal(err)
		}
		if lengthTableHasZero(id.drbgSeed) {
			t.Fatal("new identity has a zero-length entry")
		}
		var s drbg.Seed
		rand.Read(s[:])
		if lengthTableHasZero(s) {
			withZero++
		}
	}
	if withZero == 0 {
		t.Log("no random seed with a zero entry in 200 draws (expected about 7)")
	}
}

func TestRandomPadLength(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 2000; i++ {
		n := randomPadLength(3, 7)
		if n < 3 || n > 7 {
			t.Fatalf("pad length %d", n)
		}
		seen[n] = true
	}
	if len(seen) != 5 {
		t.Fatalf("saw %v", seen)
	}
}

// zeros reads as an endless run of zero bytes: the padding of the fixed test vectors.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
