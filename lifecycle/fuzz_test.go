package lifecycle

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ptreactor/ptreactor/codec"
)

// Seeds beyond these live in testdata/fuzz/<FuzzName>/.

// FuzzTransportOptions: the parser never panics, and what it accepts survives being written
// back the way tor writes the variable and parsed again.
func FuzzTransportOptions(f *testing.F) {
	for _, s := range []string{
		"", "obfs4:iat-mode=1", "scramblesuit:key=banana;automata:rule=110;automata:depth=3",
		`t\:1:k=v`, `t:k\:1=v`, `t:k=v\;3`, `t:k=v=v`, `t:k=v;`, `t:k=v\`, `\;:\\=\=`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		opts, err := parseTransportOptions(s)
		if err != nil {
			return
		}
		var items []string
		for name, args := range opts {
			for _, k := range args.Keys() {
				if strings.IndexByte(k, '=') >= 0 {
					return // tor's escaping cannot carry '=' in a key
				}
				for _, v := range args[k] {
					items = append(items, escapeTransportOption(name)+":"+escapeTransportOption(k+"="+v))
				}
			}
		}
		again, err := parseTransportOptions(strings.Join(items, ";"))
		if err != nil {
			t.Fatalf("%q -> %q: %v", s, items, err)
		}
		if !sameOptions(opts, again) {
			t.Fatalf("%q parsed to %v, re-encoded %q parsed to %v", s, opts, items, again)
		}
	})
}

// sameOptions compares per key (map iteration above reorders transports, not values).
func sameOptions(a, b map[string]codec.Args) bool {
	if len(a) != len(b) {
		return false
	}
	for name, args := range a {
		if !reflect.DeepEqual(args, b[name]) {
			return false
		}
	}
	return true
}

// FuzzArgsRoundTrip: SMETHOD ARGS encoding is a single token that decodes to what was
// encoded; decodeArgs never panics on any input.
func FuzzArgsRoundTrip(f *testing.F) {
	f.Add("cert", "AAAA+/z", "iat-mode", "0")
	f.Add("a=b", "c,d", `e\`, "=")
	f.Add("k", "", "k", "x")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		_, _ = decodeArgs(k1 + v1)
		in := codec.Args{}
		if k1 != "" {
			in.Add(k1, v1)
		}
		if k2 != "" {
			in.Add(k2, v2)
		}
		enc, err := encodeArgs(in)
		if err != nil {
			return
		}
		if strings.ContainsAny(enc, " \n\x00") {
			t.Fatalf("encoding %q is not one token", enc)
		}
		out, err := decodeArgs(enc)
		if err != nil {
			t.Fatalf("decodeArgs(%q): %v", enc, err)
		}
		if len(in) == 0 && len(out) == 0 {
			return
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("%v -> %q -> %v", in, enc, out)
		}
	})
}

// FuzzBindAddr: TOR_PT_SERVER_BINDADDR parsing never panics, and every accepted address is
// a canonical IP literal and port that parses again to itself.
func FuzzBindAddr(f *testing.F) {
	for _, s := range []string{
		"", "obfs4-0.0.0.0:0", "obfs3-198.51.100.1:1984,scramblesuit-127.0.0.1:4891",
		"plain-[::1]:80", "plain-::1:80", "plain", "a-1.2.3.4:1,a-1.2.3.4:2", "x-localhost:1", "x-1.2.3.4:65536",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseBindAddr(s)
		if err != nil {
			return
		}
		for name, hp := range m {
			if !validName(name) {
				t.Fatalf("accepted name %q", name)
			}
			ap, err := netip.ParseAddrPort(hp)
			if err != nil || ap.String() != hp {
				t.Fatalf("accepted address %q for %q: %v", hp, name, err)
			}
		}
	})
}

// FuzzProxyURI: parseProxyURI never panics, and anything it accepts is one of the three
// schemes with an IP literal, a non-zero port, and credentials within the limits.
func FuzzProxyURI(f *testing.F) {
	for _, s := range []string{
		"socks5://127.0.0.1:8001", "socks5://tor:test1234@198.51.100.1:8000", "socks4a://198.51.100.2:8001",
		"http://198.51.100.3:443", "http://user:pass@[2001:db8::1]:443", "ftp://1.2.3.4:21", "socks5://a@b@1.2.3.4:1",
		"socks5://localhost:1", "socks5://1.2.3.4:1/", "socks4a://u:p@1.2.3.4:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseProxyURI(s)
		if err != nil {
			return
		}
		switch u.Scheme {
		case "socks5", "socks4a", "http":
		default:
			t.Fatalf("%q: scheme %q", s, u.Scheme)
		}
		if !u.Addr.IsValid() || u.Addr.Port() == 0 || u.Addr.Addr().Zone() != "" {
			t.Fatalf("%q: address %v", s, u.Addr)
		}
		if u.Scheme == "socks5" && (u.User != "" || u.Pass != "") {
			if n, p := len(u.User), len(u.Pass); n == 0 || n > 255 || p == 0 || p > 255 {
				t.Fatalf("%q: socks5 credentials %q %q", s, u.User, u.Pass)
			}
		}
		if u.Scheme == "socks4a" && u.Pass != "" {
			t.Fatalf("%q: socks4a password", s)
		}
	})
}

// FuzzCString: a quoted LOG message is always one line that tor and Arti both read, and
// read as the same text: the input itself when it is UTF-8 without control characters
// other than LF, CR and TAB. Scrubbing never panics and leaves no parseable address
// standing alone.
func FuzzCString(f *testing.F) {
	f.Add("Connected to bridge A")
	f.Add("from 1.2.3.4:5 and [::1]:80\n\"quoted\" \\ \xff")
	f.Fuzz(func(t *testing.T, s string) {
		q := appendCString(nil, s)
		if !utf8.Valid(q) || bytes.ContainsAny(q, "\x00\n\r") {
			t.Fatalf("quoted %q is %q", s, q)
		}
		line := "LOG SEVERITY=info MESSAGE=" + string(q)
		tm, terr := torParse(line)
		am, aerr := artiParse(line)
		if terr != nil || aerr != nil || !reflect.DeepEqual(tm, am) {
			t.Fatalf("%q: tor %v %v, Arti %v %v", line, tm, terr, am, aerr)
		}
		clean := utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool {
			return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t'
		}) < 0
		if clean && tm.fields["MESSAGE"] != s {
			t.Fatalf("%q read back as %q", s, tm.fields["MESSAGE"])
		}
		out := scrubAddrs(s)
		for _, w := range strings.Fields(out) {
			if _, err := netip.ParseAddrPort(w); err == nil {
				t.Fatalf("scrubAddrs(%q) left %q", s, w)
			}
		}
	})
}

// FuzzParentLines: whatever text ptreactor puts in a message, every line Messages writes
// is one line that tor and Arti both parse, to the same text.
func FuzzParentLines(f *testing.F) {
	f.Add("obfs4: invalid iat-mode \"7\\\"x\\\\é\"")
	f.Add("  two  spaces\tand a tab \x00\xff\u0085 ")
	f.Fuzz(func(t *testing.T, s string) {
		var b bytes.Buffer
		m := NewMessages(&b)
		m.Log("warning", s)
		m.EnvError(s)
		m.ProxyError(s)
		m.CMethodError("obfs4", s)
		m.SMethodError("obfs4", s)
		m.Status("obfs4", "ERRSTR", s)
		m.StatusVersion("obfs4", Implementation, s)
		if !m.Close(time.Second) {
			t.Fatal("lines not written")
		}
		out := b.String()
		if strings.Count(out, "\n") != 7 || !strings.HasSuffix(out, "\n") {
			t.Fatalf("%q: not 7 lines: %q", s, out)
		}
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			checkBothParents(t, l)
		}
	})
}
