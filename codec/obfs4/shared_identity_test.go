package obfs4

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/obfs4/probdist"
)

// TestSharedIdentity: bridge instances that share one identity, whether given as options or
// as a copy of the state file, are one bridge to a client and to a prober alike: the same
// SMETHOD ARGS and bridge line, the same close delay, the same length distribution, and a
// client made from one instance's ARGS completes its handshake with the other.
func TestSharedIdentity(t *testing.T) {
	opts := codec.Args{}
	opts.Add("node-id", "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3")
	opts.Add("private-key", "8fbdaf04383991bf1ba98c4f8c829dde01f2236cf00d7fdbb381f462ae0bce6e")
	opts.Add("drbg-seed", "000102030405060708090a0b0c0d0e0f1011121314151617")
	dirA, dirB, dirC := t.TempDir(), t.TempDir(), t.TempDir()
	var tr Transport
	a, err := tr.Server(opts, dirA)
	if err != nil {
		t.Fatal(err)
	}
	state, err := os.ReadFile(filepath.Join(dirA, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, stateFile), state, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := tr.Server(codec.Args{}, dirB) // the copied state file
	if err != nil {
		t.Fatal(err)
	}
	c, err := tr.Server(opts, dirC) // the same options on a fresh directory
	if err != nil {
		t.Fatal(err)
	}
	lineA, err := os.ReadFile(filepath.Join(dirA, bridgeLineFile))
	if err != nil {
		t.Fatal(err)
	}
	for name, other := range map[string]struct {
		srv codec.Server
		dir string
	}{"copied state": {b, dirB}, "same options": {c, dirC}} {
		if !reflect.DeepEqual(a.Args(), other.srv.Args()) {
			t.Errorf("%s: ARGS %v, want %v", name, other.srv.Args(), a.Args())
		}
		line, err := os.ReadFile(filepath.Join(other.dir, bridgeLineFile))
		if err != nil || string(line) != string(lineA) {
			t.Errorf("%s: bridge line file %q (%v), want %q", name, line, err, lineA)
		}
		if d, want := other.srv.(*server).closeDelay, a.(*server).closeDelay; d != want {
			t.Errorf("%s: close delay %v, want %v", name, d, want)
		}
		// One bridge line for both: a client made from a's ARGS completes its handshake
		// with each instance, and the two draw frame lengths from the same table.
		var tables []*probdist.Table
		for _, srv := range []codec.Server{a, other.srv} {
			cli, err := tr.Client(a.Args())
			if err != nil {
				t.Fatal(err)
			}
			sw := srv.NewWire()
			handshake(t, cli, sw, 0)
			tables = append(tables, sw.(*serverWire).s.w.LengthTable())
		}
		if !sameTable(tables[0], tables[1]) {
			t.Errorf("%s: the length distributions differ", name)
		}
	}
}
