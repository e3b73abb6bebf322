package framing

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteCorpus regenerates testdata/fuzz/FuzzUnwrap from a Writer keyed like FuzzUnwrap's
// Reader. It runs only with O2_WRITE_CORPUS=1.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("O2_WRITE_CORPUS") == "" {
		t.Skip("set O2_WRITE_CORPUS=1 to regenerate the fuzz corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzUnwrap")
	os.MkdirAll(dir, 0o755)
	write := func(name string, data, cuts []byte) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", data, cuts)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w, _ := pair(t, 0)
	s, _ := w.AppendSeedFrame(nil, vectorSeed())
	s, _ = w.Wrap(s, []byte("GET / HTTP/1.0\r\n\r\n"))
	write("seed-then-payload", s, []byte{45, 3})

	w, _ = pair(t, 0)
	p, _ := w.appendPacket(nil, PacketTypePayload, []byte("hello"), 0)
	p, _ = w.appendPacket(p, 0x42, []byte("unknown"), 3)
	p, _ = w.appendPacket(p, PacketTypePRNGSeed, make([]byte, 24), 0)
	write("types", p, []byte{1, 1, 24})

	w, _ = pair(t, 0)
	b, _ := w.Wrap(nil, make([]byte, 3000))
	write("two-full-frames", b, []byte{100, 0, 255})

	w, _ = pair(t, 0)
	e := sealRaw(w, nil, []byte{0, 0xff, 0xff, 1})
	write("bad-payload-length", e, nil)

	write("bogus-length", []byte{0x28 ^ 0xff, 0xb5 ^ 0xff, 1, 2, 3}, []byte{2})
}
