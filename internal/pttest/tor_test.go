package pttest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTorPairObfs4proxy checks the harness itself with the reference peers: a bridge tor and
// a client tor in one namespace, both with obfs4proxy, until the client holds the bridge's
// descriptor. The obfs4 end-to-end tests swap ptreactor in on either side.
func TestTorPairObfs4proxy(t *testing.T) {
	obfs4proxy := "/usr/bin/obfs4proxy"
	if _, err := os.Stat(obfs4proxy); err != nil {
		t.Fatal("obfs4proxy is not installed (apt-get install obfs4proxy, or make deps)")
	}
	ns := NewNetNS(t)
	listen := ns.FreePort(t, "127.0.0.1")
	bridge := StartTor(t, ns, BridgeTorrc("obfs4", obfs4proxy, listen)...)
	bridge.WaitLog(regexp.QuoteMeta("Registered server transport 'obfs4' at '"+listen+"'"), 60*time.Second)
	fp := bridge.Fingerprint()

	var line string
	deadline := time.Now().Add(30 * time.Second)
	for line == "" && time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(bridge.DataDir, "pt_state", "obfs4_bridgeline.txt"))
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Bridge obfs4 ") {
				line = l
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if line == "" {
		t.Fatal("no obfs4_bridgeline.txt")
	}
	// "Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=... iat-mode=0"
	f := strings.Fields(line)
	bridgeLine := strings.Join(append([]string{"obfs4", listen, fp}, f[5:]...), " ")

	client := StartTor(t, ns, ClientTorrc("obfs4", obfs4proxy, bridgeLine)...)
	client.WaitLog(`new bridge descriptor`, 60*time.Second)
}
