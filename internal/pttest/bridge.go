package pttest

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
)

// StartObfs4Bridge runs the real ptreactor as an obfs4 bridge, launched as tor launches it,
// with an ORPort stand-in behind it that serves each connection with orport, and returns the
// bridge line an operator would hand out (less "obfs4" and the fingerprint): the address from
// its SMETHOD line and the arguments from the obfs4_bridgeline.txt it wrote.
func StartObfs4Bridge(t testing.TB, orport func(net.Conn)) (line string, or *harness.ORPort, p *Proc) {
	t.Helper()
	or = StartORPort(t, orport)
	dir := t.TempDir()
	p = Start(t, ServerEnv(dir, "obfs4", "obfs4-127.0.0.1:0", or.Addr))
	var addr string
	for addr == "" {
		l := p.Line(30 * time.Second)
		switch {
		case strings.HasPrefix(l, "SMETHOD obfs4 "):
			addr = strings.Fields(l)[2]
		case strings.HasPrefix(l, "SMETHOD-ERROR"), strings.HasPrefix(l, "SMETHODS DONE"):
			t.Fatalf("bridge: %q", l)
		}
	}
	return addr + " " + BridgeArgs(t, dir), or, p
}

// BridgeArgs reads the arguments (cert=... iat-mode=...) of the Bridge line in an obfs4
// state directory's obfs4_bridgeline.txt: "Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT>
// cert=... iat-mode=0", whose address placeholder holds a space.
func BridgeArgs(t testing.TB, dir string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(dir, "obfs4_bridgeline.txt"))
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 7 && f[0] == "Bridge" && f[1] == "obfs4" {
				return strings.Join(f[5:], " ")
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no Bridge line in %s/obfs4_bridgeline.txt", dir)
	return ""
}
