package upstream

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"testing"
)

// mustProxy reads a proxy URI of these tests (url.Parse's grammar) into a Proxy.
func mustProxy(t testing.TB, s string) Proxy {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	p := Proxy{Scheme: u.Scheme, Addr: netip.MustParseAddrPort(u.Host)}
	if u.User != nil {
		p.User = u.User.Username()
		p.Pass, _ = u.User.Password()
	}
	return p
}

func mustNew(t testing.TB, proxy, target string) *Handshake {
	t.Helper()
	h, err := New(mustProxy(t, proxy), target)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// drive runs h against in, read Need bytes at a time (or chunk bytes, when chunk > 0), and
// returns everything h sent and how much of in it used.
func drive(h *Handshake, in []byte, chunk int) (sent []byte, used int, err error) {
	sent = append(sent, h.Start()...)
	for used < len(in) && !h.Done() {
		k := h.Need()
		if chunk > 0 {
			k = chunk
		}
		if k == 0 {
			break
		}
		k = min(k, len(in)-used)
		n, out, err := h.Feed(in[used : used+k])
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

type exchange struct {
	name   string
	proxy  string
	target string
	reply  string // hex, or raw text for http
	want   string // hex, or raw text for http
}

func (x exchange) bytes(t testing.TB, s string) []byte {
	if strings.HasPrefix(x.proxy, "http") {
		return []byte(s)
	}
	return unhex(t, s)
}

var goodExchanges = []exchange{
	{"socks5 ipv4", "socks5://127.0.0.1:1080", "198.51.100.7:443",
		"0500 05000001 c0000201 1234",
		"050100 050100 01 c6336407 01bb"},
	{"socks5 ipv6 reply domain", "socks5://[::1]:1080", "[2001:db8::1]:9001",
		"0500 05000003 07 6578616d706c65 0050",
		"050100 050100 04 20010db8000000000000000000000001 2329"},
	{"socks5 name", "socks5://127.0.0.1:1080", "bridge.example:80",
		"0500 05000004 00000000000000000000000000000001 0050",
		"050100 050100 03 0e 6272696467652e6578616d706c65 0050"},
	{"socks5 creds", "socks5://tor:test1234@127.0.0.1:1080", "198.51.100.7:443",
		"0502 0100 05000001 00000000 0000",
		"05020002 0103746f72087465737431323334 050100 01 c6336407 01bb"},
	{"socks5 creds not needed", "socks5://tor:test1234@127.0.0.1:1080", "198.51.100.7:443",
		"0500 05000001 00000000 0000",
		"05020002 050100 01 c6336407 01bb"},
	{"socks4a ipv4", "socks4a://127.0.0.1:1080", "198.51.100.7:443",
		"005a 01bb c6336407",
		"0401 01bb c6336407 00"},
	{"socks4a name user", "socks4a://alice@127.0.0.1:1080", "bridge.example:80",
		"045a 0000 00000000",
		"0401 0050 00000001 616c69636500 6272696467652e6578616d706c6500"},
	{"http", "http://127.0.0.1:3128", "198.51.100.7:443",
		"HTTP/1.1 200 Connection established\r\n\r\n",
		"CONNECT 198.51.100.7:443 HTTP/1.1\r\nHost: 198.51.100.7:443\r\n\r\n"},
	{"http creds ipv6 headers", "http://user:pa:ss@[::1]:3128", "[2001:db8::1]:443",
		"HTTP/1.0 200 OK\r\nProxy-Agent: x\r\nVia: 1.1 y\r\n\r\n",
		"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\nProxy-Authorization: Basic dXNlcjpwYTpzcw==\r\n\r\n"},
	{"http bare LF", "http://127.0.0.1:3128", "bridge.example:80",
		"HTTP/1.1 200\nX: y\n\n",
		"CONNECT bridge.example:80 HTTP/1.1\r\nHost: bridge.example:80\r\n\r\n"},
	{"http shortest", "http://127.0.0.1:3128", "bridge.example:80",
		"HTTP/1.1 200\n\n",
		"CONNECT bridge.example:80 HTTP/1.1\r\nHost: bridge.example:80\r\n\r\n"},
}

func TestExchanges(t *testing.T) {
	const tunnel = "tunnel bytes"
	for _, x := range goodExchanges {
		for _, chunk := range []int{0, 1, 2, 5, 1000} {
			h := mustNew(t, x.proxy, x.target)
			reply := x.bytes(t, x.reply)
			in := append(append([]byte(nil), reply...), tunnel...)
			sent, used, err := drive(h, in, chunk)
			if err != nil {
				t.Fatalf("%s chunk %d: %v", x.name, chunk, err)
			}
			if !h.Done() || h.Need() != 0 {
				t.Fatalf("%s chunk %d: not done", x.name, chunk)
			}
			if want := x.bytes(t, x.want); !bytes.Equal(sent, want) {
				t.Fatalf("%s chunk %d: sent\n%q\nwant\n%q", x.name, chunk, sent, want)
			}
			if used != len(reply) {
				t.Fatalf("%s chunk %d: used %d of a %d-byte reply", x.name, chunk, used, len(reply))
			}
		}
	}
}

// TestNeedIsExact checks that a caller reading exactly Need bytes at a time stops exactly at
// the end of the reply, for every reply above, even when the tunnel's bytes follow at once.
func TestNeedIsExact(t *testing.T) {
	for _, x := range goodExchanges {
		h := mustNew(t, x.proxy, x.target)
		reply := x.bytes(t, x.reply)
		h.Start()
		used := 0
		for !h.Done() {
			k := h.Need()
			if used+k > len(reply) {
				t.Fatalf("%s: Need %d at %d would read past the %d-byte reply", x.name, k, used, len(reply))
			}
			n, _, err := h.Feed(reply[used : used+k])
			if err != nil || n != k {
				t.Fatalf("%s: Feed used %d of %d: %v", x.name, n, k, err)
			}
			used += n
		}
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, proxy, reply string
		errno              error
		auth               bool
		code               int
	}{
		{"socks5 refused", "socks5://127.0.0.1:1", "0500 05050001", syscall.ECONNREFUSED, false, 5},
		{"socks5 net", "socks5://127.0.0.1:1", "0500 05030001", syscall.ENETUNREACH, false, 3},
		{"socks5 host", "socks5://127.0.0.1:1", "0500 05040001", syscall.EHOSTUNREACH, false, 4},
		{"socks5 ttl", "socks5://127.0.0.1:1", "0500 05060001", syscall.ETIMEDOUT, false, 6},
		{"socks5 general", "socks5://127.0.0.1:1", "0500 05010001", nil, false, 1},
		{"socks5 ruleset", "socks5://127.0.0.1:1", "0500 05020001", nil, false, 2},
		{"socks5 unknown", "socks5://127.0.0.1:1", "0500 05990001", nil, false, 0x99},
		{"socks5 bad creds", "socks5://u:p@127.0.0.1:1", "0502 0101", nil, true, -1},
		{"socks5 wants creds", "socks5://127.0.0.1:1", "05ff", nil, true, -1},
		{"socks5 no method", "socks5://u:p@127.0.0.1:1", "05ff", nil, true, -1},
		{"socks4a rejected", "socks4a://127.0.0.1:1", "005b 0000 00000000", nil, false, 91},
		{"socks4a user", "socks4a://u@127.0.0.1:1", "005d 0000 00000000", nil, true, 93},
		{"http 407", "http://u:p@127.0.0.1:1", "HTTP/1.1 407 Proxy Authentication Required\r\n", nil, true, 407},
		{"http 403", "http://127.0.0.1:1", "HTTP/1.1 403 Forbidden\r\n", nil, false, 403},
		{"http 502", "http://127.0.0.1:1", "HTTP/1.0 502 Bad Gateway\r\n\r\n", nil, false, 502},
		{"http 201", "http://127.0.0.1:1", "HTTP/1.1 201 Created\r\n\r\n", nil, false, 201},
	} {
		x := exchange{proxy: tc.proxy}
		h := mustNew(t, tc.proxy, "198.51.100.7:443")
		_, _, err := drive(h, x.bytes(t, tc.reply), 0)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if tc.errno != nil && !errors.Is(err, tc.errno) {
			t.Errorf("%s: %v does not wrap %v", tc.name, err, tc.errno)
		}
		if tc.errno == nil {
			var en syscall.Errno
			if errors.As(err, &en) {
				t.Errorf("%s: %v wraps errno %v", tc.name, err, en)
			}
		}
		if errors.Is(err, ErrAuth) != tc.auth {
			t.Errorf("%s: %v: auth error %v, want %v", tc.name, err, !tc.auth, tc.auth)
		}
		var re *ReplyError
		if tc.code >= 0 && (!errors.As(err, &re) || re.Code != tc.code) {
			t.Errorf("%s: %v: want a ReplyError with code %d", tc.name, err, tc.code)
		}
		if h.Done() || h.Need() != 0 {
			t.Errorf("%s: done %v need %d after failure", tc.name, h.Done(), h.Need())
		}
	}
}

func TestMalformedReplies(t *testing.T) {
	for _, tc := range []struct{ name, proxy, reply string }{
		{"socks5 version", "socks5://127.0.0.1:1", "0400"},
		{"socks5 unoffered method", "socks5://127.0.0.1:1", "0502"},
		{"socks5 gssapi", "socks5://u:p@127.0.0.1:1", "0501"},
		{"socks5 reply version", "socks5://127.0.0.1:1", "0500 04000001"},
		{"socks5 atyp", "socks5://127.0.0.1:1", "0500 05000002"},
		{"socks4a version", "socks4a://127.0.0.1:1", "055a 0000 00000000"},
		{"socks4a code", "socks4a://127.0.0.1:1", "0000 0000 00000000"},
		{"http garbage", "http://127.0.0.1:1", "SSH-2.0-OpenSSH_9.6\r\n\r\n"},
		{"http code", "http://127.0.0.1:1", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"http long", "http://127.0.0.1:1", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", 4000)},
	} {
		x := exchange{proxy: tc.proxy}
		h := mustNew(t, tc.proxy, "198.51.100.7:443")
		_, _, err := drive(h, x.bytes(t, tc.reply), 0)
		if !errors.Is(err, ErrReply) {
			t.Errorf("%s: err %v, want ErrReply", tc.name, err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	long := strings.Repeat("a", 256)
	for _, tc := range []struct {
		proxy, target string
		want          error
	}{
		{"socks4://127.0.0.1:1", "1.2.3.4:5", ErrScheme},
		{"https://127.0.0.1:1", "1.2.3.4:5", ErrScheme},
		{"socks4a://127.0.0.1:1", "[2001:db8::1]:5", ErrTarget},
		{"socks5://127.0.0.1:1", "1.2.3.4", ErrTarget},
		{"socks5://127.0.0.1:1", "1.2.3.4:0", ErrTarget},
		{"socks5://127.0.0.1:1", "1.2.3.4:65536", ErrTarget},
		{"socks5://127.0.0.1:1", ":80", ErrTarget},
		{"socks5://127.0.0.1:1", long + ":80", ErrTarget},
		{"http://127.0.0.1:1", "a\r\nb:80", ErrTarget},
	} {
		if _, err := New(mustProxy(t, tc.proxy), tc.target); !errors.Is(err, tc.want) {
			t.Errorf("New(%s, %s): %v, want %v", tc.proxy, tc.target, err, tc.want)
		}
	}
	if _, err := New(Proxy{}, "1.2.3.4:5"); !errors.Is(err, ErrScheme) {
		t.Errorf("New(Proxy{}): %v", err)
	}
}

// fuzzReply checks the reply parser of one proxy kind on arbitrary bytes: no panic, never
// more used than given, never past the end of a reply when driven by Need, and the same end
// whichever way the bytes were cut.
func fuzzReply(t *testing.T, proxy string, in []byte, chunk uint8) {
	whole := mustNew(t, proxy, "bridge.example:443")
	whole.Start()
	n, _, errWhole := whole.Feed(in)
	if n < 0 || n > len(in) {
		t.Fatalf("used %d of %d", n, len(in))
	}
	if errWhole == nil && !whole.Done() && n != len(in) {
		t.Fatalf("stopped at %d of %d without end or error", n, len(in))
	}
	byNeed := mustNew(t, proxy, "bridge.example:443")
	_, used, errNeed := drive(byNeed, in, 0)
	cut := mustNew(t, proxy, "bridge.example:443")
	_, _, errCut := drive(cut, in, int(chunk))
	if (errWhole == nil) != (errNeed == nil) || (errWhole == nil) != (errCut == nil) ||
		whole.Done() != byNeed.Done() || whole.Done() != cut.Done() {
		t.Fatalf("whole %v/%v, by need %v/%v, cut %v/%v",
			errWhole, whole.Done(), errNeed, byNeed.Done(), errCut, cut.Done())
	}
	if whole.Done() && used != n {
		t.Fatalf("by need used %d, whole %d", used, n)
	}
}

func FuzzSOCKS5Reply(f *testing.F) {
	for _, x := range goodExchanges[:5] {
		f.Add(x.bytes(f, x.reply), uint8(0))
	}
	f.Add(unhex(f, "0500 05050001"), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		fuzzReply(t, "socks5://u:p@127.0.0.1:1", in, chunk)
		fuzzReply(t, "socks5://127.0.0.1:1", in, chunk)
	})
}

func FuzzSOCKS4aReply(f *testing.F) {
	f.Add(unhex(f, "005a 01bb c6336407"), uint8(0))
	f.Add(unhex(f, "005d 0000 00000000"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		fuzzReply(t, "socks4a://u@127.0.0.1:1", in, chunk)
	})
}

func FuzzHTTPReply(f *testing.F) {
	for _, x := range goodExchanges {
		if strings.HasPrefix(x.proxy, "http") {
			f.Add([]byte(x.reply), uint8(0))
		}
	}
	f.Add([]byte("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		fuzzReply(t, "http://u:p@127.0.0.1:1", in, chunk)
	})
}
