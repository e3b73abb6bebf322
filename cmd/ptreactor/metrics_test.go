package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// TestMetricsCount runs our client and our bridge (obfs4, the bridge feeding an Extended
// ORPort that echoes) with their metrics endpoints, the client's on TCP port 0 (its port
// read from the LOG line) and the bridge's on a unix socket. It opens tunnels that echo
// known amounts (the first through a relay that records the client's handshake), sends
// the bridge garbage and a replay of that handshake on purpose, and then checks that each
// side's counters say exactly that: tunnels by transport and role, completed, failed and
// replayed handshakes, stalled probes, payload bytes both ways, dials with a latency and
// none failed.
func TestMetricsCount(t *testing.T) {
	us := ourBin(t)
	ext := pttest.StartExtORPort(t, harness.ExtOROptions{}) // echoes after OKAY
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	p := startPair(t, harness.PairSpec{ClientBin: us, ServerBin: us, Transport: "obfs4",
		ClientFlags: []string{"-metrics", "127.0.0.1:0"}, ServerFlags: []string{"-metrics", sock},
		ExtORPort: ext.Addr, CookieFile: ext.CookieFile})
	cliMetrics := "127.0.0.1:" + metricsPort(t, p.Client)

	const tunnels, garbageProbes = 5, 3
	const probes = garbageProbes + 1 // and the replay
	relay := newRecordingRelay(t, p.Bridge)
	moved := 0
	for i := range tunnels {
		n := 1 + i*40000
		moved += n
		var c net.Conn
		if i == 0 {
			ctx, cancel := timeoutCtx(10 * time.Second)
			var err error
			c, err = harness.DialSOCKS(ctx, p.Client.Addr("obfs4"), relay.ln.Addr().String(), p.SOCKSArgs)
			cancel()
			if err != nil {
				t.Fatalf("tunnel through the relay: %v", err)
			}
		} else {
			c = dial(t, p, 10*time.Second)
		}
		c = deadlineConn(c, 20*time.Second)
		msg := make([]byte, n)
		rand.Read(msg)
		go c.Write(msg)
		got := make([]byte, n)
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("tunnel %d: echo of %d bytes: %v", i, n, err)
		}
		c.Close()
	}
	// Probes: more garbage than an obfs4 client handshake may be, so the bridge fails
	// each at once and stalls it.
	// The replay is the recorded flight, which a bridge must refuse within its hour.
	for i := range probes {
		c, err := net.Dial("tcp", p.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		send := relay.Flight()
		if i < garbageProbes {
			send = make([]byte, 9000)
			rand.Read(send)
		}
		if _, err := c.Write(send); err != nil {
			t.Fatal(err)
		}
	}
	const (
		srvObfs4 = `{role="server",transport="obfs4"}`
		cliObfs4 = `{role="client",transport="obfs4"}`
	)
	waitSamples(t, "unix", sock, `ptreactor_probes_stalled_total{transport="obfs4"}`, probes)
	srv := waitSamples(t, "unix", sock, "ptreactor_tunnels_open"+srvObfs4, probes)
	cli := waitSamples(t, "tcp", cliMetrics, "ptreactor_tunnels_open"+cliObfs4, 0)

	want := map[string]float64{
		"ptreactor_tunnels_total" + cliObfs4:                                             tunnels,
		`ptreactor_handshakes_total{result="completed",role="client",transport="obfs4"}`: tunnels,
		`ptreactor_handshakes_total{result="failed",role="client",transport="obfs4"}`:    0,
		`ptreactor_handshakes_total{result="timed_out",role="client",transport="obfs4"}`: 0,
		`ptreactor_payload_bytes_total{direction="from_tor"}`:                            float64(moved),
		`ptreactor_payload_bytes_total{direction="to_tor"}`:                              float64(moved),
		`ptreactor_outbound_dial_seconds_count{role="client"}`:                           tunnels,
		`ptreactor_outbound_dial_failures_total{kind="other",role="client"}`:             0,
		`ptreactor_outbound_dial_failures_total{kind="refused",role="client"}`:           0,
		"ptreactor_tunnels_active":                                                       0,
		"ptreactor_connections_shed_total":                                               0,
	}
	checkSamples(t, "client", cli, want)

	want = map[string]float64{
		"ptreactor_tunnels_total" + srvObfs4:                                             tunnels + probes,
		`ptreactor_handshakes_total{result="completed",role="server",transport="obfs4"}`: tunnels,
		`ptreactor_handshakes_total{result="failed",role="server",transport="obfs4"}`:    probes,
		`ptreactor_handshakes_total{result="timed_out",role="server",transport="obfs4"}`: 0,
		`ptreactor_handshakes_replayed_total{transport="obfs4"}`:                         1,
		`ptreactor_probes_stalled_total{transport="obfs4"}`:                              probes,
		`ptreactor_payload_bytes_total{direction="from_tor"}`:                            float64(moved),
		`ptreactor_payload_bytes_total{direction="to_tor"}`:                              float64(moved),
		`ptreactor_outbound_dial_seconds_count{role="server"}`:                           tunnels,
		`ptreactor_outbound_dial_failures_total{kind="auth",role="server"}`:              0,
		`ptreactor_outbound_dial_failures_total{kind="other",role="server"}`:             0,
		"ptreactor_tunnels_active":                                                       probes,
	}
	checkSamples(t, "server", srv, want)
	for name, s := range map[string]harness.Samples{"client": cli, "server": srv} {
		if s["process_open_fds"] <= 0 || s["process_max_fds"] <= 0 || s["go_goroutines"] <= 0 || s["process_resident_memory_bytes"] <= 0 {
			t.Errorf("%s: no process or Go metrics: fds %v/%v, goroutines %v, rss %v", name, s["process_open_fds"],
				s["process_max_fds"], s["go_goroutines"], s["process_resident_memory_bytes"])
		}
	}
}

// metricsPort is the port a PT's -metrics endpoint took, from its "serving metrics" LOG
// line (the address itself is scrubbed there).
func metricsPort(t *testing.T, pt *harness.PT) string {
	t.Helper()
	re := regexp.MustCompile(`^LOG SEVERITY=notice MESSAGE="serving metrics .*port=([0-9]+)`)
	for _, l := range pt.Header {
		if m := re.FindStringSubmatch(l); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no metrics LOG line in %q", pt.Header)
	return ""
}

// waitSamples scrapes network/addr until the sample key has the value want (tunnels end
// asynchronously, after the test's own close), and returns that scrape; after 10 s it
// fails the test.
func waitSamples(t *testing.T, network, addr, key string, want float64) harness.Samples {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := harness.Scrape(ctx, network, addr)
		cancel()
		if err != nil {
			t.Fatalf("scrape %s: %v", addr, err)
		}
		v, ok := s[key]
		if ok && v == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s = %v (present %v), want %v", addr, key, v, ok, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkSamples(t *testing.T, side string, got harness.Samples, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		if v, ok := got[k]; !ok || v != w {
			t.Errorf("%s: %s = %v (present %v), want %v", side, k, v, ok, w)
		}
	}
	if t.Failed() {
		var b bytes.Buffer
		for k, v := range got {
			if len(k) > 10 && k[:10] == "ptreactor_" {
				fmt.Fprintf(&b, "%s %v\n", k, v)
			}
		}
		t.Logf("%s scrape:\n%s", side, b.String())
	}
}
