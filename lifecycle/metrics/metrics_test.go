package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ptreactor/ptreactor/reactor"
)

type fixedStats reactor.Stats

func (f fixedStats) Stats() reactor.Stats { return reactor.Stats(f) }

// The collector writes what Stats says under the documented names, its histogram
// cumulative, and passes Prometheus's own lint (names, units, HELP).
func TestCollector(t *testing.T) {
	s := reactor.Stats{
		Role: reactor.RoleServer,
		Transports: []reactor.TransportStats{{Name: "obfs4", Open: 2, Total: 7, Ended: 5, Stalls: 3,
			HandshakesDone: 4, HandshakesFailed: 3, HandshakesReplayed: 1, HandshakesTimedOut: 0}},
		Tunnels: 2, TunnelLimit: 8971, BytesFromTor: 1000, BytesToTor: 2000,
		Pauses: 9, ClosedHardCap: 1, ClosedNeverDrain: 2, Shed: 3, AcceptErrors: 4, Held: 6, HeldNow: 5,
		Dial: reactor.DialStats{
			Bounds: []time.Duration{time.Millisecond, time.Second},
			Counts: []uint64{1, 2, 3},
			Sum:    10 * time.Second,
			Failed: 2,
		},
	}
	s.Dial.ByKind[reactor.DialRefused] = 1
	s.Dial.ByKind[reactor.DialAuth] = 1
	c := newCollector(fixedStats(s))
	want := `
# HELP ptreactor_tunnels_open Tunnels open now: accepted connections not yet closed at both ends.
# TYPE ptreactor_tunnels_open gauge
ptreactor_tunnels_open{role="server",transport="obfs4"} 2
# HELP ptreactor_handshakes_total Transport handshakes by result: completed; failed (the peer's handshake was rejected, replays included); timed_out. plain has no handshake.
# TYPE ptreactor_handshakes_total counter
ptreactor_handshakes_total{result="completed",role="server",transport="obfs4"} 4
ptreactor_handshakes_total{result="failed",role="server",transport="obfs4"} 3
ptreactor_handshakes_total{result="timed_out",role="server",transport="obfs4"} 0
# HELP ptreactor_payload_bytes_total Payload bytes, before transport framing: from_tor were read from tor's side of a tunnel, to_tor written toward it.
# TYPE ptreactor_payload_bytes_total counter
ptreactor_payload_bytes_total{direction="from_tor"} 1000
ptreactor_payload_bytes_total{direction="to_tor"} 2000
# HELP ptreactor_outbound_dial_seconds Latency of successful outbound connections, their handshakes included: to tor's ORPort or Extended ORPort (role server), to the bridge (role client).
# TYPE ptreactor_outbound_dial_seconds histogram
ptreactor_outbound_dial_seconds_bucket{role="server",le="0.001"} 1
ptreactor_outbound_dial_seconds_bucket{role="server",le="1"} 3
ptreactor_outbound_dial_seconds_bucket{role="server",le="+Inf"} 6
ptreactor_outbound_dial_seconds_sum{role="server"} 10
ptreactor_outbound_dial_seconds_count{role="server"} 6
# HELP ptreactor_connections_held Bridge: connections past the tunnel limit held now.
# TYPE ptreactor_connections_held gauge
ptreactor_connections_held 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"ptreactor_tunnels_open", "ptreactor_handshakes_total", "ptreactor_payload_bytes_total", "ptreactor_outbound_dial_seconds",
		"ptreactor_connections_held"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "ptreactor_outbound_dial_failures_total"); n != int(reactor.NumDialFailures) {
		t.Errorf("%d dial failure series, want one per kind (%d)", n, reactor.NumDialFailures)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
