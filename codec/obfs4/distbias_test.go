package obfs4

import (
	"testing"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/obfs4/framing"
	"github.com/ptreactor/ptreactor/codec/obfs4/probdist"
)

// TestBiasedDist: Transport.BiasedDist makes both sides draw burst lengths from
// probdist's biased table for the bridge's seed, and the default keeps the uniform one.
func TestBiasedDist(t *testing.T) {
	for _, biased := range []bool{false, true} {
		tr := Transport{BiasedDist: biased}
		// A seed that draws a one-entry table (about one in maxValues) gives the same
		// weight under both rules; the check below means something only for a seed whose
		// two tables differ, so new bridge states are made until one has such a seed.
		var (
			srv         codec.Server
			want, other *probdist.Table
		)
		for try := 0; ; try++ {
			var err error
			if srv, err = tr.Server(codec.Args{}, t.TempDir()); err != nil {
				t.Fatal(err)
			}
			seed := srv.(*server).state.drbgSeed
			want = probdist.NewTable(seed, 0, framing.MaxSegmentLength, biased)
			other = probdist.NewTable(seed, 0, framing.MaxSegmentLength, !biased)
			if !sameTable(want, other) {
				break
			}
			if try == 20 {
				t.Fatal("20 bridge seeds in a row gave the same biased and uniform table")
			}
		}
		cli, err := tr.Client(srv.Args())
		if err != nil {
			t.Fatal(err)
		}
		sw := srv.NewWire()
		handshake(t, cli, sw, 0)
		for side, got := range map[string]*probdist.Table{
			"server": sw.(*serverWire).s.w.LengthTable(),
			"client": cli.(*clientWire).s.w.LengthTable(),
		} {
			if !sameTable(got, want) {
				t.Errorf("biased=%v: the %s's length table is not probdist's for the bridge seed", biased, side)
			}
		}
	}
}

func sameTable(a, b *probdist.Table) bool {
	if a.Len() != b.Len() {
		return false
	}
	for i := 0; i < a.Len(); i++ {
		av, aw := a.Value(i)
		bv, bw := b.Value(i)
		if av != bv || aw != bw {
			return false
		}
	}
	return true
}
