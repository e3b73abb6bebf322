package reactor

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec/plain"
)

// TestStatsCount runs known tunnels through an in-process pair and checks the snapshot of
// each engine against them: tunnels by transport and role, payload bytes both ways, dial
// latencies, and a dial to a dead ORPort counted as refused.
func TestStatsCount(t *testing.T) {
	or := listen(t, echo)
	socksAddr, srvAddr, logs, cli, srv := pairEngines(t, or, "", "")
	sizes := []int{1, 1000, 200 << 10}
	total := 0
	for _, n := range sizes {
		total += n
		c, rep, err := socksDial(socksAddr, srvAddr, "")
		if err != nil || rep != 0 {
			t.Fatalf("socks: rep %d err %v\n%s", rep, err, logs)
		}
		msg := bytes.Repeat([]byte{'x'}, n)
		go c.Write(msg)
		got := make([]byte, n)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("echo: %v\n%s", err, logs)
		}
		c.Close()
	}
	settled := func(e *Engine) Stats {
		deadline := time.Now().Add(10 * time.Second)
		for {
			s := e.Stats()
			if s.Tunnels == 0 || time.Now().After(deadline) {
				return s
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, side := range []struct {
		e    *Engine
		role Role
	}{{cli, RoleClient}, {srv, RoleServer}} {
		s := settled(side.e)
		if s.Role != side.role {
			t.Errorf("%v: role %v", side.role, s.Role)
		}
		want := TransportStats{Name: plain.Name, Total: int64(len(sizes)), Ended: int64(len(sizes))}
		if len(s.Transports) != 1 || s.Transports[0] != want {
			t.Errorf("%v: transports %+v, want [%+v]", side.role, s.Transports, want)
		}
		if s.BytesFromTor != uint64(total) || s.BytesToTor != uint64(total) {
			t.Errorf("%v: payload from tor %d, to tor %d; want %d each way", side.role, s.BytesFromTor, s.BytesToTor, total)
		}
		var dials uint64
		for _, n := range s.Dial.Counts {
			dials += n
		}
		if dials != uint64(len(sizes)) || s.Dial.Failed != 0 || s.Dial.Sum <= 0 || len(s.Dial.Counts) != len(s.Dial.Bounds)+1 {
			t.Errorf("%v: dials %+v", side.role, s.Dial)
		}
	}

	// A bridge whose ORPort is gone counts a refusal (plain answers tor's SOCKS request
	// before the bridge dials its ORPort, so the client's tunnel opens and then closes).
	_, deadSrv, _, _, srv2 := pairEngines(t, deadAddr(t), "", "")
	if c, _, err := socksDial(socksAddr, deadSrv, ""); err == nil && c != nil {
		defer c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv2.Stats().Dial.Failed == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := srv2.Stats(); s.Dial.Failed != 1 || s.Dial.ByKind[DialRefused] != 1 {
		t.Errorf("dead ORPort: %+v", s.Dial)
	}
}

func TestLatencyHistogram(t *testing.T) {
	var h latencyHistogram
	for _, d := range []time.Duration{0, dialLatencyBounds[0], dialLatencyBounds[0] + 1, time.Hour} {
		h.observe(d)
	}
	if got := h.counts[0].Load(); got != 2 {
		t.Errorf("first bucket %d, want 2 (a bound is inclusive)", got)
	}
	if got := h.counts[1].Load(); got != 1 {
		t.Errorf("second bucket %d, want 1", got)
	}
	if got := h.counts[len(dialLatencyBounds)].Load(); got != 1 {
		t.Errorf("overflow bucket %d, want 1", got)
	}
}
