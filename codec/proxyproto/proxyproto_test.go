package proxyproto

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// appendV2 builds a version 2 header from its parts, independently of the parser: the
// signature, version 2 with cmd, the family byte, the length of the address block and tlvs,
// then the addresses (taken in the width fam says, as the specification lays them out:
// both addresses, then both ports) and the TLV bytes.
func appendV2(dst []byte, cmd, fam byte, src, dstAddr netip.AddrPort, tlvs []byte) []byte {
	var block []byte
	switch fam >> 4 {
	case 1:
		s, d := src.Addr().As4(), dstAddr.Addr().As4()
		block = append(append(block, s[:]...), d[:]...)
	case 2:
		s, d := src.Addr().As16(), dstAddr.Addr().As16()
		block = append(append(block, s[:]...), d[:]...)
	case 3:
		block = make([]byte, 216)
		copy(block, "/run/haproxy/client.sock")
		copy(block[108:], "/run/ptreactor/listen.sock")
	}
	if fam>>4 == 1 || fam>>4 == 2 {
		block = binary.BigEndian.AppendUint16(block, src.Port())
		block = binary.BigEndian.AppendUint16(block, dstAddr.Port())
	}
	block = append(block, tlvs...)
	dst = append(dst, 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A)
	dst = append(dst, 0x20|cmd, fam)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(block)))
	return append(dst, block...)
}

// tlv is one type-length-value record.
func tlv(typ byte, value string) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{typ}, uint16(len(value))), value...)
}

var (
	src4 = netip.MustParseAddrPort("203.0.113.7:51234")
	dst4 = netip.MustParseAddrPort("192.0.2.1:443")
	src6 = netip.MustParseAddrPort("[2001:db8::7]:65535")
	dst6 = netip.MustParseAddrPort("[2001:db8:ffff::1]:0")
)

type validCase struct {
	name string
	in   []byte
	want Header
}

func validCases() []validCase {
	v4 := Header{Version: 2, Source: src4, Destination: dst4}
	v6 := Header{Version: 2, Source: src6, Destination: dst6}
	return []validCase{
		{"v1 TCP4", []byte("PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n"), Header{Version: 1, Source: src4, Destination: dst4}},
		{"v1 TCP4 port 0", []byte("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"),
			Header{Version: 1, Source: netip.MustParseAddrPort("0.0.0.0:0"), Destination: netip.MustParseAddrPort("255.255.255.255:65535")}},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::7 2001:DB8:FFFF::1 65535 0\r\n"), Header{Version: 1, Source: src6, Destination: dst6}},
		{"v1 TCP6 mapped", []byte("PROXY TCP6 ::ffff:203.0.113.7 ::1 51234 443\r\n"),
			Header{Version: 1, Source: netip.MustParseAddrPort("[::ffff:203.0.113.7]:51234"), Destination: netip.MustParseAddrPort("[::1]:443")}},
		{"v1 TCP6 longest", []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
			Header{Version: 1, Source: netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Destination: netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), Header{Version: 1, Unknown: true}},
		{"v1 UNKNOWN longest", []byte("PROXY UNKNOWN " + strings.Repeat("f", V1Max-len("PROXY UNKNOWN ")-2) + "\r\n"), Header{Version: 1, Unknown: true}},
		{"v1 UNKNOWN with addresses", []byte("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"), Header{Version: 1, Unknown: true}},
		{"v2 PROXY TCP4", appendV2(nil, 1, 0x11, src4, dst4, nil), v4},
		{"v2 PROXY TCP4 TLVs", appendV2(nil, 1, 0x11, src4, dst4, append(tlv(0x01, "obfs4"), tlv(0x04, "")...)), v4},
		{"v2 PROXY TCP6", appendV2(nil, 1, 0x21, src6, dst6, nil), v6},
		{"v2 PROXY TCP6 TLVs", appendV2(nil, 1, 0x21, src6, dst6, tlv(0x05, strings.Repeat("u", 128))), v6},
		{"v2 PROXY TCP6 largest", appendV2(nil, 1, 0x21, src6, dst6, make([]byte, V2LenMax-36)), v6},
		{"v2 PROXY UDP4", appendV2(nil, 1, 0x12, src4, dst4, nil), Header{Version: 2, Unknown: true}},
		{"v2 PROXY UDP6", appendV2(nil, 1, 0x22, src6, dst6, nil), Header{Version: 2, Unknown: true}},
		{"v2 PROXY UNSPEC", appendV2(nil, 1, 0x00, src4, dst4, nil), Header{Version: 2, Unknown: true}},
		{"v2 PROXY UNIX", appendV2(nil, 1, 0x31, src4, dst4, tlv(0x02, "bridge")), Header{Version: 2, Unknown: true}},
		{"v2 LOCAL", appendV2(nil, 0, 0x00, src4, dst4, nil), Header{Version: 2, Local: true}},
		{"v2 LOCAL with address", appendV2(nil, 0, 0x11, src4, dst4, nil), Header{Version: 2, Local: true}},
		// LOCAL ignores the family, even an undefined one.
		{"v2 LOCAL odd family", appendV2(nil, 0, 0xff, src4, dst4, tlv(0x03, "\x00\x00\x00\x00")), Header{Version: 2, Local: true}},
	}
}

// TestParseValid parses each header whole, with the start of an obfs4 handshake behind it
// (which must stay unconsumed), and fed one byte more at a time: every proper prefix must
// ask for more, and the whole header must give the same result as at once.
func TestParseValid(t *testing.T) {
	trailer := []byte("\x16obfs4 bytes that are not ours")
	for _, c := range validCases() {
		t.Run(c.name, func(t *testing.T) {
			n, h, err := Parse(c.in)
			if err != nil || n != len(c.in) || h != c.want {
				t.Fatalf("Parse = %d, %+v, %v; want %d, %+v", n, h, err, len(c.in), c.want)
			}
			if h.Source.IsValid() != (!h.Local && !h.Unknown) || h.Destination.IsValid() != h.Source.IsValid() {
				t.Fatalf("addresses valid %v/%v with Local %v Unknown %v", h.Source.IsValid(), h.Destination.IsValid(), h.Local, h.Unknown)
			}
			withTrailer := append(append([]byte(nil), c.in...), trailer...)
			n, h, err = Parse(withTrailer)
			if err != nil || n != len(c.in) || h != c.want {
				t.Fatalf("with trailing bytes: Parse = %d, %+v, %v; want %d", n, h, err, len(c.in))
			}
			for k := 0; k < len(c.in); k++ {
				n, h, err := Parse(c.in[:k])
				if err != ErrIncomplete || n != 0 || h != (Header{}) {
					t.Fatalf("first %d of %d bytes: Parse = %d, %+v, %v; want ErrIncomplete", k, len(c.in), n, h, err)
				}
			}
		})
	}
}

// TestParseAllocs: a successful parse allocates nothing, nor does asking for more.
func TestParseAllocs(t *testing.T) {
	for _, c := range validCases() {
		in := c.in
		if a := testing.AllocsPerRun(100, func() {
			if _, _, err := Parse(in); err != nil {
				t.Fatal(err)
			}
			if _, _, err := Parse(in[:len(in)-1]); err != ErrIncomplete {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%s: %v allocations per Parse", c.name, a)
		}
	}
}

type badCase struct {
	name string
	in   []byte
	want error
	// at is the length of the shortest prefix that already fails; 0 means the whole input.
	at int
}

func badCases() []badCase {
	v4 := appendV2(nil, 1, 0x11, src4, dst4, nil)
	with := func(b []byte, i int, v byte) []byte {
		b = append([]byte(nil), b...)
		b[i] = v
		return b
	}
	lenField := func(b []byte, l uint16) []byte {
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint16(b[14:], l)
		return b
	}
	long1 := "PROXY UNKNOWN " + strings.Repeat("x", V1Max-len("PROXY UNKNOWN ")-2) + "\r\n"
	return []badCase{
		{"empty-looking TLS", []byte{0x16, 0x03, 0x01}, ErrNoHeader, 1},
		{"obfs4 garbage", []byte{0xa7, 0x51, 0x09}, ErrNoHeader, 1},
		{"HTTP GET", []byte("GET / HTTP/1.1\r\n"), ErrNoHeader, 1},
		{"HTTP POST", []byte("POST / HTTP/1.1\r\n"), ErrNoHeader, 2},
		{"v1 lower case", []byte("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrNoHeader, 1},
		{"v1 no space after PROXY", []byte("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrNoHeader, 6},
		{"v2 wrong signature", with(v4, 11, 0x0B), ErrNoHeader, 12},
		{"v2 signature CRLF only", []byte("\r\nGET"), ErrNoHeader, 3},
		{"v2 version 1", with(v4, 12, 0x11), ErrVersion, 13},
		{"v2 version 3", with(v4, 12, 0x31), ErrVersion, 13},
		{"v2 version 0", with(v4, 12, 0x01), ErrVersion, 13},
		{"v2 command 2", with(v4, 12, 0x22), ErrMalformedV2, 13},
		{"v2 command F", with(v4, 12, 0x2F), ErrMalformedV2, 13},
		{"v2 family 0x41", with(v4, 13, 0x41), ErrMalformedV2, 14},
		{"v2 transport 3", with(v4, 13, 0x13), ErrMalformedV2, 14},
		{"v2 TCP4 block 11 bytes", lenField(v4, 11)[:16+11], ErrMalformedV2, 16},
		{"v2 TCP6 block of TCP4 size", with(v4, 13, 0x21), ErrMalformedV2, 16},
		{"v2 UNIX block of TCP4 size", with(v4, 13, 0x31), ErrMalformedV2, 16},
		{"v2 TCP4 zero length", lenField(v4, 0)[:16], ErrMalformedV2, 16},
		{"v2 length over cap", lenField(v4, V2LenMax+1), ErrTooLong, 16},
		{"v2 length 0xffff", lenField(v4, 0xffff), ErrTooLong, 16},
		{"v1 over-long", []byte(long1[:V1Max-2] + "x\r\n"), ErrTooLong, V1Max},
		{"v1 no line end", []byte("PROXY TCP4 " + strings.Repeat("1", 200)), ErrTooLong, V1Max},
		{"v1 missing CR", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), ErrMalformedV1, 0},
		{"v1 UNKNOWN missing CR", []byte("PROXY UNKNOWN\n"), ErrMalformedV1, 0},
		{"v1 missing CR, two-digit port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 23\n"), ErrMalformedV1, 0},
		{"v1 UNKNOWN rest missing CR", []byte("PROXY UNKNOWN xy\n"), ErrMalformedV1, 0},
		{"v1 empty protocol", []byte("PROXY \r\n"), ErrMalformedV1, 0},
		{"v1 protocol TCP5", []byte("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 UNKNOWNX", []byte("PROXY UNKNOWNX\r\n"), ErrMalformedV1, 0},
		{"v1 TCP4 no fields", []byte("PROXY TCP4\r\n"), ErrMalformedV1, 0},
		{"v1 TCP4 three fields", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), ErrMalformedV1, 0},
		{"v1 TCP4 five fields", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), ErrMalformedV1, 0},
		{"v1 double space", []byte("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 double space after PROXY", []byte("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 trailing space", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), ErrMalformedV1, 0},
		{"v1 tab", []byte("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 port 65536", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), ErrMalformedV1, 0},
		{"v1 port 100000", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n"), ErrMalformedV1, 0},
		{"v1 port leading zero", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"), ErrMalformedV1, 0},
		{"v1 port plus", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n"), ErrMalformedV1, 0},
		{"v1 port minus", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), ErrMalformedV1, 0},
		{"v1 port hex", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n"), ErrMalformedV1, 0},
		{"v1 v4 address leading zero", []byte("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 v4 octet 256", []byte("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 v4 three octets", []byte("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 v6 address in TCP4", []byte("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 v4 address in TCP6", []byte("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 v6 zone", []byte("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 v6 brackets", []byte("PROXY TCP6 [::1] ::1 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 v6 two ellipses", []byte("PROXY TCP6 1::2::3 ::1 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 v6 five hex digits", []byte("PROXY TCP6 12345::1 ::1 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 hostname", []byte("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"), ErrMalformedV1, 0},
		{"v1 CR inside", []byte("PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n"), ErrMalformedV1, 0},
	}
}

// TestParseMalformed: each bad header fails with its sentinel, and fed one byte more at a
// time it asks for more until the byte that makes it wrong (at), then fails there already.
func TestParseMalformed(t *testing.T) {
	for _, c := range badCases() {
		t.Run(c.name, func(t *testing.T) {
			n, h, err := Parse(c.in)
			if !errors.Is(err, c.want) || n != 0 || h != (Header{}) {
				t.Fatalf("Parse(%q) = %d, %+v, %v; want %v", c.in, n, h, err, c.want)
			}
			at := c.at
			if at == 0 {
				at = len(c.in)
			}
			for k := 0; k <= len(c.in); k++ {
				_, _, err := Parse(c.in[:k])
				if k < at && err != ErrIncomplete {
					t.Fatalf("first %d bytes: %v, want ErrIncomplete until %d", k, err, at)
				}
				if k >= at && !errors.Is(err, c.want) {
					t.Fatalf("first %d bytes: %v, want %v from %d on", k, err, c.want, at)
				}
			}
		})
	}
}

// TestErrorDetail: the sentinels come wrapped with what was wrong.
func TestErrorDetail(t *testing.T) {
	_, _, err := Parse([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"))
	if err == nil || !strings.Contains(err.Error(), `"65536"`) {
		t.Fatalf("error %v does not name the bad port", err)
	}
}

// addrCases are compared with net/netip, the reference reader of the same language.
var addrCases = []string{
	"::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6::8",
	"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7", ":1::", "1:", ":1",
	":::", "1:::2", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5::1.2.3.4", "1:2:3:4:5:6::1.2.3.4",
	"::1.2.3.4", "1.2.3.4::", "::01.2.3.4", "::1.2.3", "abcd:EF01::", "g::", "0000:0000::00000",
	"1.2.3.4", "0.0.0.0", "255.255.255.255", "256.0.0.0", "1.2.3.04", "1..2.3", "1.2.3.4.", ".1.2.3", "",
	"fe80::1%eth0", "::ffff:1.2.3.4%1",
}

func TestParseAddr(t *testing.T) {
	for _, s := range addrCases {
		checkAddr(t, s)
	}
}

// checkAddr compares parseIPv4 and parseIPv6 with netip.ParseAddr on s: the same address
// where netip reads one of the family without a zone, a failure everywhere else.
func checkAddr(t *testing.T, s string) {
	ref, err := netip.ParseAddr(s)
	ok4want := err == nil && ref.Is4()
	ok6want := err == nil && ref.Is6() && ref.Zone() == ""
	a4, ok4 := parseIPv4([]byte(s))
	a6, ok6 := parseIPv6([]byte(s))
	if ok4 != ok4want || (ok4 && a4 != ref) {
		t.Errorf("parseIPv4(%q) = %v, %v; netip: %v, %v", s, a4, ok4, ref, err)
	}
	if ok6 != ok6want || (ok6 && a6 != ref) {
		t.Errorf("parseIPv6(%q) = %v, %v; netip: %v, %v", s, a6, ok6, ref, err)
	}
}

// FuzzParse: Parse never panics, a success takes no more than it was given and leaves the
// addresses valid exactly when it should, and feeding the input one byte more at a time
// gives what the whole input gives, at the same point.
func FuzzParse(f *testing.F) {
	for _, c := range validCases() {
		f.Add(c.in)
	}
	for _, c := range badCases() {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 2*HeaderMax {
			in = in[:2*HeaderMax]
		}
		n, h, err := Parse(in)
		if err == nil {
			if n <= 0 || n > len(in) || n > HeaderMax {
				t.Fatalf("consumed %d of %d", n, len(in))
			}
			if h.Source.IsValid() != (!h.Local && !h.Unknown) || h.Destination.IsValid() != h.Source.IsValid() {
				t.Fatalf("header %+v", h)
			}
		} else if n != 0 || h != (Header{}) {
			t.Fatalf("failed with %d, %+v", n, h)
		}
		// The first prefix that does not ask for more decides, and agrees with the whole.
		for k := 0; k <= len(in); k++ {
			kn, kh, kerr := Parse(in[:k])
			if kerr == ErrIncomplete {
				continue
			}
			if (kerr == nil) != (err == nil) || kn != n || kh != h {
				t.Fatalf("first %d bytes: %d, %+v, %v; whole: %d, %+v, %v", k, kn, kh, kerr, n, h, err)
			}
			if kerr == nil && kn != k {
				t.Fatalf("header of %d bytes complete only after %d", kn, k)
			}
			if kerr != nil {
				for _, s := range []error{ErrNoHeader, ErrMalformedV1, ErrMalformedV2, ErrVersion, ErrTooLong} {
					if errors.Is(kerr, s) != errors.Is(err, s) {
						t.Fatalf("first %d bytes: %v; whole: %v", k, kerr, err)
					}
				}
			}
			return
		}
		if err != ErrIncomplete {
			t.Fatalf("every prefix incomplete, whole: %v", err)
		}
		if len(in) >= HeaderMax {
			t.Fatalf("%d bytes still incomplete", len(in))
		}
	})
}

// FuzzParseAddr compares the address readers with net/netip on any string.
func FuzzParseAddr(f *testing.F) {
	for _, s := range addrCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 64 {
			return
		}
		checkAddr(t, s)
	})
}
