package lifecycle

import (
	"testing"

	"github.com/ptreactor/ptreactor/codec/obfs4"
	"github.com/ptreactor/ptreactor/codec/plain"
)

// TestTransportsFromOptions: -obfs4-distBias reaches the obfs4 transport the reactor is
// handed, and is off by default.
func TestTransportsFromOptions(t *testing.T) {
	for _, bias := range []bool{false, true} {
		ts := transports(&Options{Obfs4DistBias: bias})
		o, ok := ts[obfs4.Name].(obfs4.Transport)
		if !ok || o.BiasedDist != bias {
			t.Errorf("Obfs4DistBias=%v: obfs4 transport %#v", bias, ts[obfs4.Name])
		}
		if _, ok := ts[plain.Name]; !ok || len(ts) != 2 {
			t.Errorf("transports %v", ts)
		}
	}
}
