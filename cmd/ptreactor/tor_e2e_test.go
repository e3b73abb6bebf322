package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/pttest"
)

// TestTorEndToEnd is the whole chain with the real parent on both ends: a bridge tor that
// runs a server PT for obfs4, a client tor that runs a client PT and has UseBridges 1 with
// the bridge line from the bridge's own state, both in one private network namespace with
// a dead directory authority. The client fetches the bridge's descriptor through the obfs4
// tunnel; "new bridge descriptor" in its log means every hop worked: tor -> SOCKS -> client
// PT -> obfs4 -> server PT -> ExtORPort -> bridge tor, and back.
func TestTorEndToEnd(t *testing.T) {
	us, peer := ourBin(t), obfs4proxyBin(t)
	for _, c := range []struct{ name, bridge, client string }{
		{"ptreactor-bridge/ptreactor-client", us, us},
		{"ptreactor-bridge/obfs4proxy-client", us, peer},
		{"obfs4proxy-bridge/ptreactor-client", peer, us},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ns := pttest.NewNetNS(t)
			listen := ns.FreePort(t, "127.0.0.1")
			bridge := pttest.StartTor(t, ns, pttest.BridgeTorrc("obfs4", c.bridge, listen)...)
			bridge.WaitLog(regexp.QuoteMeta("Registered server transport 'obfs4' at '"+listen+"'"), 60*time.Second)
			fp := bridge.Fingerprint()
			line := waitBridgeLine(t, filepath.Join(bridge.DataDir, "pt_state"))
			// "Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=... iat-mode=0": the placeholder
			// for the address holds a space, so the arguments start at the sixth field.
			f := strings.Fields(line)
			bl := strings.Join(append([]string{"obfs4", listen, fp}, f[5:]...), " ")
			client := pttest.StartTor(t, ns, pttest.ClientTorrc("obfs4", c.client, bl)...)
			client.WaitLog(`new bridge descriptor`, 60*time.Second)
		})
	}
}

// waitBridgeLine waits for the server PT to write obfs4_bridgeline.txt into tor's pt_state
// and returns its Bridge line.
func waitBridgeLine(t *testing.T, dir string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(dir, "obfs4_bridgeline.txt"))
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Bridge obfs4 ") && len(strings.Fields(l)) >= 7 {
				return l
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no Bridge line in %s/obfs4_bridgeline.txt within 30 s", dir)
	return ""
}
