package socks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/ptreactor/ptreactor/codec"
)

func TestParseArgs(t *testing.T) {
	good := []struct {
		in   string
		want codec.Args
	}{
		{``, codec.Args{}},
		{`key=`, codec.Args{"key": {""}}},
		{`key==`, codec.Args{"key": {"="}}},
		{`a=b=c`, codec.Args{"a": {"b=c"}}},
		{`key=value\;`, codec.Args{"key": {"value;"}}},
		{`\;=\;;\\=\;`, codec.Args{";": {";"}, `\`: {";"}}},
		{`a\=b=c`, codec.Args{"a=b": {"c"}}},
		{`key=value1;key=value2`, codec.Args{"key": {"value1", "value2"}}},
		{`cert=AAAA+/b;iat-mode=0`, codec.Args{"cert": {"AAAA+/b"}, "iat-mode": {"0"}}},
		{`k=\x`, codec.Args{"k": {"x"}}}, // goptlib's reading of an ordinary escape
	}
	for _, c := range good {
		got, err := ParseArgs(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseArgs(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	bad := []string{`key`, `key\`, `=value`, `==value`, `key=value\`, `a;b=c`, `;`,
		`key=value;`, `;key=value`, `key\=value`}
	for _, in := range bad {
		if got, err := ParseArgs(in); err == nil {
			t.Errorf("ParseArgs(%q) = %v, want an error", in, got)
		}
	}
}

// negotiate feeds msgs one at a time and returns the replies and the final error.
func negotiate(s *Server, msgs ...[]byte) ([]byte, error) {
	var in, out []byte
	for _, m := range msgs {
		in = append(in, m...)
		n, o, err := s.Step(in, out)
		out = o
		in = in[n:]
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func userPass(args string) []byte {
	// tor's split: UNAME up to 255 bytes, the rest in PASSWD, or a NUL PASSWD.
	u, p := args, "\x00"
	if len(args) > 255 {
		u, p = args[:255], args[255:]
	}
	b := []byte{1, byte(len(u))}
	b = append(b, u...)
	b = append(b, byte(len(p)))
	return append(b, p...)
}

func connectIPv4(a, b, c, d byte, port uint16) []byte {
	return []byte{5, 1, 0, 1, a, b, c, d, byte(port >> 8), byte(port)}
}

func TestNoAuth(t *testing.T) {
	var s Server
	out, err := negotiate(&s, []byte{5, 1, 0}, connectIPv4(192, 0, 2, 1, 443))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, []byte{5, 0}) || !s.Done() {
		t.Fatalf("out %x done %v", out, s.Done())
	}
	if r := s.Request(); r.Addr != "192.0.2.1:443" || len(r.Args) != 0 {
		t.Fatalf("request %+v", r)
	}
}

func TestUserPassPreferred(t *testing.T) {
	for _, l := range []int{1, 200, 254, 255, 256, 300, 509, 510} {
		// Build an argument string of exactly l bytes with an escape near the split.
		arg := "="
		if l >= 2 {
			arg = "k=" + strings.Repeat("v", l-2)
		}
		if l > 260 {
			arg = "k=" + strings.Repeat("v", 252) + `\;` + strings.Repeat("w", l-256)
		}
		var s Server
		out, err := negotiate(&s, []byte{5, 2, 0, 2}, userPass(arg), []byte{5, 1, 0, 3, 3, 'a', '.', 'b', 0, 80})
		if l < 2 {
			if !errors.Is(err, ErrAuth) || !bytes.Equal(out, []byte{5, 2, 1, 1}) {
				t.Fatalf("len %d: out %x err %v", l, out, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("len %d: %v", l, err)
		}
		if !bytes.Equal(out, []byte{5, 2, 1, 0}) {
			t.Fatalf("len %d: out %x", l, out)
		}
		want, _ := ParseArgs(arg)
		if r := s.Request(); r.Addr != "a.b:80" || !reflect.DeepEqual(r.Args, want) {
			t.Fatalf("len %d: request %+v want %v", l, r, want)
		}
	}
}

func TestSplitInsideEscape(t *testing.T) {
	// The escape `\;` straddles UNAME and PASSWD.
	arg := "k=" + strings.Repeat("a", 252) + `\;b`
	var s Server
	if _, err := negotiate(&s, []byte{5, 1, 2}, userPass(arg), connectIPv4(1, 2, 3, 4, 5)); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Request().Args.Get("k"); v != strings.Repeat("a", 252)+";b" {
		t.Fatalf("got %q", v)
	}
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name string
		msgs [][]byte
		want []byte
		err  error
	}{
		{"socks4", [][]byte{{4, 1, 0, 80, 1, 2, 3, 4, 0}}, nil, ErrVersion},
		{"no method", [][]byte{{5, 1, 1}}, []byte{5, 0xff}, ErrNoMethod},
		{"empty uname", [][]byte{{5, 1, 2}, {1, 0, 1, 0}}, []byte{5, 2, 1, 1}, ErrAuth},
		{"empty passwd", [][]byte{{5, 1, 2}, {1, 1, 'a', 0}}, []byte{5, 2, 1, 1}, ErrAuth},
		{"auth version", [][]byte{{5, 1, 2}, {5, 1, 'a', 1, 0}}, []byte{5, 2, 1, 1}, ErrAuth},
		{"bind", [][]byte{{5, 1, 0}, {5, 2, 0, 1, 1, 2, 3, 4, 0, 80}}, append([]byte{5, 0}, AppendReply(nil, CommandNotSupported)...), ErrCommand},
		{"udp", [][]byte{{5, 1, 0}, {5, 3, 0, 1, 1, 2, 3, 4, 0, 80}}, append([]byte{5, 0}, AppendReply(nil, CommandNotSupported)...), ErrCommand},
		{"atyp", [][]byte{{5, 1, 0}, {5, 1, 0, 9, 1, 2, 3, 4, 0, 80}}, append([]byte{5, 0}, AppendReply(nil, AddrTypeNotSupp)...), ErrAddressType},
		{"empty domain", [][]byte{{5, 1, 0}, {5, 1, 0, 3, 0, 0, 80}}, append([]byte{5, 0}, AppendReply(nil, GeneralFailure)...), ErrAddress},
		{"bracket in domain", [][]byte{{5, 1, 0}, {5, 1, 0, 3, 3, 'a', ']', 'b', 0, 80}}, append([]byte{5, 0}, AppendReply(nil, GeneralFailure)...), ErrAddress},
		{"colon in domain", [][]byte{{5, 1, 0}, {5, 1, 0, 3, 3, 'a', ':', 'b', 0, 80}}, append([]byte{5, 0}, AppendReply(nil, GeneralFailure)...), ErrAddress},
		{"NUL in domain", [][]byte{{5, 1, 0}, {5, 1, 0, 3, 2, 'a', 0, 0, 80}}, append([]byte{5, 0}, AppendReply(nil, GeneralFailure)...), ErrAddress},
	}
	for _, c := range cases {
		var s Server
		out, err := negotiate(&s, c.msgs...)
		if !errors.Is(err, c.err) || !bytes.Equal(out, c.want) {
			t.Errorf("%s: out %x err %v; want %x %v", c.name, out, err, c.want, c.err)
		}
	}
}

func TestByteAtATimeAndIPv6(t *testing.T) {
	msg := []byte{5, 2, 2, 0}
	msg = append(msg, userPass("a=b")...)
	req := []byte{5, 1, 0, 4}
	req = append(req, net.ParseIP("2001:db8::1")...)
	req = append(req, 0x1f, 0x90)
	msg = append(msg, req...)
	msg = append(msg, 'x') // a pipelined byte is left unconsumed
	var s Server
	var in, out []byte
	for _, b := range msg {
		in = append(in, b)
		n, o, err := s.Step(in, out)
		if err != nil {
			t.Fatal(err)
		}
		out, in = o, in[n:]
	}
	if !s.Done() || s.Request().Addr != "[2001:db8::1]:8080" || string(in) != "x" {
		t.Fatalf("done %v req %+v left %q", s.Done(), s.Request(), in)
	}
	if !bytes.Equal(out, []byte{5, 2, 1, 0}) {
		t.Fatalf("out %x", out)
	}
}

func TestReplyCode(t *testing.T) {
	wrap := func(e error) error { return &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", e)} }
	cases := []struct {
		err  error
		want byte
	}{
		{nil, Succeeded},
		{fmt.Errorf("x: %w", codec.ErrBadArgs), GeneralFailure},
		{wrap(syscall.ECONNREFUSED), ConnectionRefused},
		{wrap(syscall.ECONNRESET), ConnectionRefused},
		{wrap(syscall.ENETUNREACH), NetworkUnreachable},
		{wrap(syscall.EHOSTUNREACH), HostUnreachable},
		{wrap(syscall.ETIMEDOUT), TTLExpired},
		{os.ErrDeadlineExceeded, TTLExpired},
		{context.DeadlineExceeded, TTLExpired},
		{wrap(syscall.EADDRNOTAVAIL), AddrTypeNotSupp},
		{errors.New("other"), GeneralFailure},
	}
	for _, c := range cases {
		if got := ReplyCode(c.err); got != c.want {
			t.Errorf("ReplyCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// FuzzServer feeds arbitrary bytes, split at an arbitrary point, and checks that the
// negotiation never panics, never consumes more than it was given, and that a completed
// request is well formed.
func FuzzServer(f *testing.F) {
	f.Add([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80}, uint8(3))
	f.Add(append(append([]byte{5, 1, 2}, userPass(`cert=abc;iat-mode=0`)...), 5, 1, 0, 3, 1, 'h', 0, 1), uint8(7))
	f.Add([]byte{5, 1, 0, 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 187}, uint8(0))
	f.Add([]byte{5, 2, 0, 2, 1, 1, '\\', 1, 0}, uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		var s Server
		cut := int(split) % (len(data) + 1)
		chunks := [][]byte{data[:cut], data[cut:]}
		var in, out []byte
		for _, c := range chunks {
			in = append(in, c...)
			n, o, err := s.Step(in, out)
			if n < 0 || n > len(in) {
				t.Fatalf("consumed %d of %d", n, len(in))
			}
			out, in = o, in[n:]
			if err != nil {
				return
			}
		}
		if s.Done() {
			if _, _, err := net.SplitHostPort(s.Request().Addr); err != nil {
				t.Fatalf("bad addr %q", s.Request().Addr)
			}
		}
	})
}

// FuzzParseArgs checks that ParseArgs never panics and that what it accepts survives a
// round trip through tor's escaping (only ';' and '\' escaped, plus '=' in keys).
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{``, `key=`, `a=b=c`, `\;=\;;\\=\;`, `key=value1;key=value2`, `key\`, `;`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := ParseArgs(s)
		if err != nil {
			return
		}
		esc := func(x string, eq bool) string {
			var b strings.Builder
			for i := 0; i < len(x); i++ {
				if x[i] == ';' || x[i] == '\\' || (eq && x[i] == '=') {
					b.WriteByte('\\')
				}
				b.WriteByte(x[i])
			}
			return b.String()
		}
		var items []string
		for _, k := range args.Keys() {
			for _, v := range args[k] {
				items = append(items, esc(k, true)+"="+esc(v, false))
			}
		}
		again, err := ParseArgs(strings.Join(items, ";"))
		if err != nil || !reflect.DeepEqual(again, args) {
			t.Fatalf("round trip of %q: %v, %v", s, again, err)
		}
	})
}

// TestDomainIPLiteral: a client that sends an IPv6 literal as a DOMAINNAME gets it dialed
// as that address, bracketed correctly.
func TestDomainIPLiteral(t *testing.T) {
	var s Server
	msg := append([]byte{5, 1, 0, 5, 1, 0, 3, 3}, "::1"...)
	msg = append(msg, 0, 80)
	n, _, err := s.Step(msg[:3], nil)
	if err != nil || n != 3 {
		t.Fatal(n, err)
	}
	if _, _, err := s.Step(msg[3:], nil); err != nil || !s.Done() {
		t.Fatal(err)
	}
	if got := s.Request().Addr; got != "[::1]:80" {
		t.Fatalf("addr %q", got)
	}
}
