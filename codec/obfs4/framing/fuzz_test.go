package framing

import (
	"bytes"
	"testing"
)

// FuzzUnwrap feeds arbitrary bytes, cut into arbitrary pieces, to a Reader keyed with the
// test vector's key material: it must never panic, never consume more than it was given,
// and never report success after a failure. The corpus (testdata/fuzz/FuzzUnwrap) holds
// valid streams made by a Writer with that key, so mutations reach the packet parser.
func FuzzUnwrap(f *testing.F) {
	w, _ := pair(f, 0)
	seed, _ := w.AppendSeedFrame(nil, vectorSeed())
	f.Add(seed, []byte{10, 1})
	f.Add([]byte{0x28, 0xb5}, []byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 64), []byte{3})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		r, err := NewReader(testKey(t))
		if err != nil {
			t.Fatal(err)
		}
		var buf, payload []byte
		failed := false
		feedTo := func(n int) {
			buf = append(buf, data[:n]...)
			data = data[n:]
			c, out, _, err := r.Unwrap(buf, payload[:0])
			if c < 0 || c > len(buf) {
				t.Fatalf("consumed %d of %d", c, len(buf))
			}
			if len(out) > c {
				t.Fatalf("%d payload bytes from %d consumed", len(out), c)
			}
			if failed && err == nil {
				t.Fatal("success after failure")
			}
			if err != nil {
				failed = true
				return
			}
			payload = out
			buf = append(buf[:0], buf[c:]...)
		}
		for _, c := range cuts {
			feedTo(int(c) % (len(data) + 1))
		}
		feedTo(len(data))
	})
}

// FuzzRoundTrip: whatever is written, in any iat-mode, comes out of the Reader unchanged,
// however the wire bytes are cut.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), []byte{0, 200, 3}, byte(0))
	f.Add(bytes.Repeat([]byte{1}, 3000), []byte{17}, byte(1))
	f.Add([]byte{}, []byte{}, byte(2))
	f.Fuzz(func(t *testing.T, msg, cuts []byte, mode byte) {
		if len(msg) > 8<<10 {
			msg = msg[:8<<10] // keeps each run (and the fuzzer's minimising) quick
		}
		w, r := pair(t, int(mode%3))
		var wire []byte
		var err error
		if mode < 3 {
			wire, err = w.Wrap(nil, msg)
		} else {
			err = w.Queue(msg)
			wire, _, _ = drain(t, w)
		}
		if err != nil {
			t.Fatal(err)
		}
		var buf, got []byte
		// Copy cuts before appending: the fuzzer may hand out slices that share storage.
		for _, c := range append(append([]byte(nil), cuts...), 255) {
			n := len(wire)
			if c != 255 {
				n = int(c) * 16 % (len(wire) + 1)
			}
			buf = append(buf, wire[:n]...)
			wire = wire[n:]
			k, out, _, err := r.Unwrap(buf, got)
			if err != nil {
				t.Fatal(err)
			}
			got = out
			buf = buf[k:]
		}
		if len(buf) != 0 || !bytes.Equal(got, msg) {
			t.Fatalf("got %d bytes back of %d, %d left over", len(got), len(msg), len(buf))
		}
	})
}
