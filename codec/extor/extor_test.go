package extor

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// seq returns n bytes counting up from start, the inputs the known answers are built from.
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorInputs() (Cookie, [32]byte, [32]byte) {
	return Cookie(seq(0x00, 32)), [32]byte(seq(0x20, 32)), [32]byte(seq(0x40, 32))
}

const (
	vecServerHash = "67cb22838690cf4c49434d4ea3164fbdcc936e46fd90ee62f511639a8456d133"
	vecClientHash = "4becde5c2fe8a9fed908d74f79be128d73abfbf82c009d3bdc17b4bc02740d58"
)

func TestHashVectors(t *testing.T) {
	cookie, cn, sn := vectorInputs()
	if h := ServerHash(&cookie, &cn, &sn); hex.EncodeToString(h[:]) != vecServerHash {
		t.Errorf("ServerHash = %x", h)
	}
	if h := ClientHash(&cookie, &cn, &sn); hex.EncodeToString(h[:]) != vecClientHash {
		t.Errorf("ClientHash = %x", h)
	}
}

func TestCommandVectors(t *testing.T) {
	for _, tc := range []struct {
		cmd  uint16
		body string
		want string
	}{
		{cmdUserAddr, "198.51.100.7:54321", "000100123139382e35312e3130302e373a3534333231"},
		{cmdTransport, "obfs4", "000200056f62667334"},
		{cmdDone, "", "00000000"},
		{replyOkay, "", "10000000"},
	} {
		if got := hex.EncodeToString(AppendCommand(nil, tc.cmd, tc.body)); got != tc.want {
			t.Errorf("command %#04x %q = %s, want %s", tc.cmd, tc.body, got, tc.want)
		}
	}
}

// serverReply is what a good tor sends for the vector inputs, in one piece.
func serverReply(t testing.TB) []byte {
	var b []byte
	b = append(b, 1, 0)
	b = append(b, unhex(t, vecServerHash)...)
	b = append(b, seq(0x40, 32)...)
	b = append(b, 1)
	return append(b, 0x10, 0, 0, 0)
}

// wantSent is what the client must send for the vector inputs, all in all.
func wantSent(t testing.TB) []byte {
	var b []byte
	b = append(b, 1)
	b = append(b, seq(0x20, 32)...)
	b = append(b, unhex(t, vecClientHash)...)
	b = append(b, unhex(t, "000100123139382e35312e3130302e373a3534333231")...)
	b = append(b, unhex(t, "000200056f62667334")...)
	return append(b, 0, 0, 0, 0)
}

func newVectorClient(t testing.TB) *Client {
	cookie, cn, _ := vectorInputs()
	c, err := NewClient(cookie, cn, netip.MustParseAddrPort("198.51.100.7:54321"), "obfs4")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// drive feeds in to c in pieces no larger than Need (or chunk, when chunk > 0) and collects
// what c sends.
func drive(c *Client, in []byte, chunk int) (sent []byte, used int, err error) {
	sent = append(sent, c.Start()...)
	for used < len(in) && !c.Done() {
		k := c.Need()
		if chunk > 0 {
			k = chunk
		}
		if k == 0 {
			break
		}
		k = min(k, len(in)-used)
		n, out, err := c.Feed(in[used : used+k])
		sent = append(sent, out...)
		used += n
		if err != nil {
			return sent, used, err
		}
		if n == 0 {
			break
		}
	}
	return sent, used, nil
}

func TestHandshakeKnownAnswer(t *testing.T) {
	for _, chunk := range []int{0, 1, 3, 1000} {
		c := newVectorClient(t)
		in := append(serverReply(t), "OR bytes"...)
		sent, used, err := drive(c, in, chunk)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if !c.Done() || c.Need() != 0 {
			t.Fatalf("chunk %d: not done", chunk)
		}
		if !bytes.Equal(sent, wantSent(t)) {
			t.Fatalf("chunk %d: sent\n%x\nwant\n%x", chunk, sent, wantSent(t))
		}
		if string(in[used:]) != "OR bytes" {
			t.Fatalf("chunk %d: used %d, left %q", chunk, used, in[used:])
		}
	}
}

// TestNeedNeverOverreads checks that reading exactly Need bytes at a time ends exactly at
// the end of tor's last reply, whatever the replies look like.
func TestNeedNeverOverreads(t *testing.T) {
	in := []byte{7, 1, 9, 0}
	in = append(in, unhex(t, vecServerHash)...)
	in = append(in, seq(0x40, 32)...)
	in = append(in, 1)
	in = append(in, 0x10, 0x02, 0, 3, 'a', 'b', 'c') // CONTROL with a body: ignored
	in = append(in, 0x7f, 0x00, 0, 0)                // unknown, empty: ignored
	in = append(in, 0x10, 0x00, 0, 2, 'x', 'y')      // OKAY with a body
	c := newVectorClient(t)
	_, used, err := drive(c, append(in, 0xff), 0)
	if err != nil || !c.Done() || used != len(in) {
		t.Fatalf("err %v done %v used %d of %d", err, c.Done(), used, len(in))
	}
}

func TestHandshakeFailures(t *testing.T) {
	good := serverReply(t)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"no safe cookie", []byte{2, 3, 0}, ErrNoSafeCookie},
		{"empty list", []byte{0}, ErrNoSafeCookie},
		{"long list", bytes.Repeat([]byte{1}, 256), ErrBadList},
		{"server hash", mut(func(b []byte) []byte { b[2] ^= 1; return b }), ErrServerHash},
		{"server nonce", mut(func(b []byte) []byte { b[40] ^= 1; return b }), ErrServerHash},
		{"status 0", mut(func(b []byte) []byte { b[66] = 0; return b }), ErrAuthFailed},
		{"status 2", mut(func(b []byte) []byte { b[66] = 2; return b }), ErrAuthFailed},
		{"deny", mut(func(b []byte) []byte { b[68] = 1; return b }), ErrDenied},
	} {
		for _, chunk := range []int{0, 1, 1000} {
			c := newVectorClient(t)
			_, _, err := drive(c, tc.in, chunk)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s (chunk %d): err %v, want %v", tc.name, chunk, err, tc.want)
			}
			if c.Done() || c.Need() != 0 {
				t.Errorf("%s: done %v need %d after failure", tc.name, c.Done(), c.Need())
			}
			// A failed client stays failed.
			if n, _, err2 := c.Feed([]byte{0x10, 0, 0, 0}); n != 0 || err2 == nil {
				t.Errorf("%s: Feed after failure used %d, err %v", tc.name, n, err2)
			}
		}
	}
}

func TestNoUserAddr(t *testing.T) {
	cookie, cn, _ := vectorInputs()
	c, err := NewClient(cookie, cn, netip.AddrPort{}, "obfs4")
	if err != nil {
		t.Fatal(err)
	}
	sent, _, err := drive(c, serverReply(t), 0)
	if err != nil || !c.Done() {
		t.Fatal(err)
	}
	want := wantSent(t)
	want = append(want[:65], want[65+22:]...) // without USERADDR
	if !bytes.Equal(sent, want) {
		t.Fatalf("sent %x\nwant %x", sent, want)
	}
}

func TestTransportNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"obfs4": true, "_x": true, "A9_b": true, "plain": true,
		"": false, "4obfs": false, "ob-fs": false, "ob fs": false, "obfs4\x00": false, "é": false,
	} {
		if ValidTransportName(name) != ok {
			t.Errorf("ValidTransportName(%q) != %v", name, ok)
		}
		_, err := NewClient(Cookie{}, [32]byte{}, netip.AddrPort{}, name)
		if (err == nil) != ok {
			t.Errorf("NewClient(%q): %v", name, err)
		}
	}
}

func TestFormatUserAddr(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3.4:5678":           "1.2.3.4:5678",
		"[1:2::3:4]:5678":        "[1:2::3:4]:5678",
		"[::ffff:1.2.3.4]:80":    "1.2.3.4:80",
		"[fe80::1%eth0]:443":     "[fe80::1]:443",
		"[2001:db8::7]:65535":    "[2001:db8::7]:65535",
		"198.51.100.7:54321":     "198.51.100.7:54321",
		"[::1]:1":                "[::1]:1",
		"[2001:db8:0:0:0::1]:22": "[2001:db8::1]:22",
	} {
		if got := FormatUserAddr(netip.MustParseAddrPort(in)); got != want {
			t.Errorf("FormatUserAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestCookieFile(t *testing.T) {
	dir := t.TempDir()
	good := append([]byte(cookieHeader), seq(0, 32)...)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := ReadCookieFile(write("good", good))
	if err != nil || c != Cookie(seq(0, 32)) {
		t.Fatalf("good file: %x, %v", c, err)
	}
	bad := map[string][]byte{
		"short":  good[:63],
		"long":   append(append([]byte(nil), good...), '\n'),
		"empty":  nil,
		"header": append([]byte("! Extended ORPort Auth Cookie !\x0b"), seq(0, 32)...),
		"huge":   bytes.Repeat(good, 100),
	}
	for name, b := range bad {
		if _, err := ReadCookieFile(write(name, b)); !errors.Is(err, ErrCookieFile) {
			t.Errorf("%s: err %v, want ErrCookieFile", name, err)
		}
	}
	if _, err := ReadCookieFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzClientFeed feeds arbitrary server bytes to the client, in arbitrary pieces, and checks
// that it never panics, never uses more than it was given, never reads past Need when driven
// by Need, and reaches the same end whichever way the bytes were cut.
func FuzzClientFeed(f *testing.F) {
	f.Add(serverReply(f), uint8(0))
	f.Add(serverReply(f), uint8(1))
	f.Add([]byte{1, 0}, uint8(7))
	f.Add([]byte{2, 0}, uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		whole := newVectorClient(t)
		n, _, errWhole := whole.Feed(in)
		if n < 0 || n > len(in) {
			t.Fatalf("used %d of %d", n, len(in))
		}
		if errWhole == nil && !whole.Done() && n != len(in) {
			t.Fatalf("stopped at %d of %d without end or error", n, len(in))
		}
		byNeed := newVectorClient(t)
		_, used, errNeed := drive(byNeed, in, 0)
		cut := newVectorClient(t)
		_, _, errCut := drive(cut, in, int(chunk))
		if (errWhole == nil) != (errNeed == nil) || (errWhole == nil) != (errCut == nil) ||
			whole.Done() != byNeed.Done() || whole.Done() != cut.Done() {
			t.Fatalf("whole %v/%v, by need %v/%v, cut %v/%v",
				errWhole, whole.Done(), errNeed, byNeed.Done(), errCut, cut.Done())
		}
		if whole.Done() && used != n {
			t.Fatalf("by need used %d, whole %d", used, n)
		}
	})
}
