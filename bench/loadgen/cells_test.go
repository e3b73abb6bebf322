package loadgen

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func TestVersionsCell(t *testing.T) {
	own := appendVersionsCell(nil)
	if want := []byte{0, 0, 7, 0, 6, 0, 3, 0, 4, 0, 5}; !bytes.Equal(own, want) {
		t.Fatalf("VERSIONS cell % x, want % x", own, want)
	}
	for _, c := range []struct {
		cell    []byte
		version uint16
		err     bool
	}{
		{own, 5, false},
		{[]byte{0, 0, 7, 0, 4, 0, 3, 0, 4}, 4, false},
		{[]byte{0, 0, 7, 0, 4, 0, 4, 0, 9}, 4, false},
		{[]byte{0, 0, 7, 0, 4, 0, 1, 0, 2}, 0, true},  // nothing in common
		{[]byte{0, 0, 7, 0, 3, 0, 4, 0}, 0, true},     // odd length
		{[]byte("HTTP/1.1 400 Bad Request"), 0, true}, // not tor
	} {
		v, n, err := parseVersionsCell(c.cell)
		if (err != nil) != c.err || v != c.version || (err == nil && n != len(c.cell)) {
			t.Errorf("% x: version %d, n %d, err %v", c.cell, v, n, err)
		}
		for i := 3; i < len(c.cell) && !c.err; i++ { // every prefix is incomplete
			if _, n, err := parseVersionsCell(c.cell[:i]); n != 0 || err != nil {
				t.Errorf("% x: prefix %d: n %d, err %v", c.cell, i, n, err)
			}
		}
	}
}

func TestCells(t *testing.T) {
	for _, v := range []uint16{3, 4, 5} {
		w := circIDLength(v)
		ni := appendNetinfoCell(nil, v, netip.MustParseAddr("127.0.0.1"))
		if len(ni) != w+1+cellPayloadLength {
			t.Fatalf("v%d: NETINFO of %d bytes", v, len(ni))
		}
		cmd, p, n, err := parseCell(ni, v)
		if err != nil || cmd != cmdNetinfo || n != len(ni) || !bytes.Equal(p[4:10], []byte{4, 4, 127, 0, 0, 1}) || p[10] != 0 {
			t.Fatalf("v%d: NETINFO parses as %d % x (n %d, %v)", v, cmd, p[:12], n, err)
		}
		certs := append(make([]byte, w), cmdCerts)
		certs = binary.BigEndian.AppendUint16(certs, 3)
		certs = append(certs, 1, 2, 3)
		stream := append(certs, ni...)
		cmd, p, n, err = parseCell(stream, v)
		if err != nil || cmd != cmdCerts || n != len(certs) || !bytes.Equal(p, []byte{1, 2, 3}) {
			t.Fatalf("v%d: CERTS parses as %d % x (n %d, %v)", v, cmd, p, n, err)
		}
		if _, _, n, _ := parseCell(ni[:len(ni)-1], v); n != 0 {
			t.Fatalf("v%d: a short NETINFO parses", v)
		}
	}
	ni6 := appendNetinfoCell(nil, 5, netip.MustParseAddr("2001:db8::1"))
	if _, p, _, _ := parseCell(ni6, 5); p[4] != 6 || p[5] != 16 || p[22] != 0 {
		t.Fatalf("IPv6 NETINFO % x", p[:23])
	}
	huge := []byte{0, 0, 0, 0, cmdVPadding, 0xff, 0xff}
	if _, _, _, err := parseCell(huge, 4); err == nil {
		t.Fatal("a 64 KiB VPADDING cell is accepted")
	}
}

// FuzzLinkCells: the link handshake parses what tor (or whatever answers) sends. Any
// bytes give a cell, "more bytes needed" or an error, never a panic, and never a cell
// longer than what was given.
func FuzzLinkCells(f *testing.F) {
	f.Add(append([]byte{0, 0, 7, 0, 4, 0, 4, 0, 5}, appendNetinfoCell(nil, 5, netip.MustParseAddr("127.0.0.1"))...))
	f.Add([]byte{0, 0, 7, 0, 2, 0, 3, 0, 0, 129, 0, 2, 1, 1})
	f.Add([]byte{0, 0, 7, 0x40, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, err := parseVersionsCell(b)
		if err != nil || n == 0 {
			return
		}
		if n > len(b) || (v != 3 && v != 4 && v != 5) {
			t.Fatalf("version %d, n %d of %d bytes", v, n, len(b))
		}
		for rest := b[n:]; ; {
			_, p, m, err := parseCell(rest, v)
			if err != nil || m == 0 {
				return
			}
			if m > len(rest) || len(p) > m {
				t.Fatalf("cell of %d bytes (payload %d) from %d", m, len(p), len(rest))
			}
			rest = rest[m:]
		}
	})
}
