package lifecycle

import (
	"time"

	"github.com/ptreactor/ptreactor/reactor"
)

// DefaultStatusInterval is how often the STATUS TYPE=stats lines go to tor: often enough
// to follow a bridge's load in tor's log and in Arti, rarely enough not to fill either
// (one line per transport).
const DefaultStatusInterval = time.Minute

// statusCounts are the counts of one transport on its TYPE=stats line: the totals since
// start (CONNECTIONS, HANDSHAKES, HANDSHAKE_FAILURES, HANDSHAKE_TIMEOUTS) and the tunnels
// open now (OPEN). They are the ptreactor_tunnels_* and ptreactor_handshakes_total metrics.
func statusCounts(t reactor.TransportStats) []StatusCount {
	return []StatusCount{
		{"CONNECTIONS", t.Total},
		{"OPEN", t.Open},
		{"HANDSHAKES", t.HandshakesDone},
		{"HANDSHAKE_FAILURES", t.HandshakesFailed},
		{"HANDSHAKE_TIMEOUTS", t.HandshakesTimedOut},
	}
}

// reportStatus writes the TYPE=stats STATUS line of every transport each interval until
// stop is closed.
func reportStatus(msgs *Messages, eng *reactor.Engine, interval time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		for _, t := range eng.Stats().Transports {
			msgs.StatusStats(t.Name, statusCounts(t)...)
		}
	}
}
