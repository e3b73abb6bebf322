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

// TestTorPool: two tor bridges with one identity (the second starts from a copy of the
// first one's keys), each with its own Extended ORPort and cookie, fed by one ptreactor
// that the first tor runs with -orport-pool naming both. A tor client with the bridge line
// fetches the bridge descriptor through it, all in one loopback-only namespace.
func TestTorPool(t *testing.T) {
	t.Parallel()
	ns := pttest.NewNetNS(t)
	listen := ns.FreePort(t, "127.0.0.1")
	ext1, ext2 := ns.FreePort(t, "127.0.0.1"), ns.FreePort(t, "127.0.0.1")
	data1, data2 := filepath.Join(t.TempDir(), "data"), filepath.Join(t.TempDir(), "data")
	for _, d := range []string{data1, data2} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	instance := func(ext string) []string {
		return []string{"BridgeRelay 1", "PublishServerDescriptor 0", "AssumeReachable 1",
			"ORPort 127.0.0.1:auto", "ExtORPort " + ext, "SocksPort 0"}
	}

	// The second instance first: it makes the identity keys, then the first gets a copy.
	second := pttest.StartTorIn(t, ns, data2, instance(ext2)...)
	second.WaitLog(`Your Tor server's identity key fingerprint is`, 60*time.Second)
	copyDir(t, filepath.Join(data2, "keys"), filepath.Join(data1, "keys"))

	pool := strings.Join([]string{
		ext1 + "=" + filepath.Join(data1, "extended_orport_auth_cookie"),
		ext2 + "=" + filepath.Join(data2, "extended_orport_auth_cookie"),
	}, ",")
	first := pttest.StartTorIn(t, ns, data1, append(instance(ext1),
		"ServerTransportPlugin obfs4 exec "+ourBin(t)+" -orport-pool "+pool,
		"ServerTransportListenAddr obfs4 "+listen)...)
	first.WaitLog(regexp.QuoteMeta("Registered server transport 'obfs4' at '"+listen+"'"), 60*time.Second)
	fp := first.Fingerprint()
	if fp2 := second.Fingerprint(); fp2 != fp {
		t.Fatalf("instances with one identity have fingerprints %s and %s", fp, fp2)
	}
	line := waitBridgeLine(t, filepath.Join(data1, "pt_state"))
	f := strings.Fields(line)
	bl := strings.Join(append([]string{"obfs4", listen, fp}, f[5:]...), " ")
	client := pttest.StartTor(t, ns, pttest.ClientTorrc("obfs4", ourBin(t), bl)...)
	client.WaitLog(`new bridge descriptor`, 60*time.Second)
	// The client's link landed on the one instance its address ranks first.
	a, b := strings.Count(first.Log(), "Got good NETINFO"), strings.Count(second.Log(), "Got good NETINFO")
	if (a == 0) == (b == 0) {
		t.Errorf("links opened: %d on the first instance, %d on the second; want them on one", a, b)
	}
}

// copyDir copies the regular files of src into a new directory dst (mode 0700).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
