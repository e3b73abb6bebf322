package lifecycle

// The managed-proxy conversation with the real parent: tor 0.4.9 launches ptreactor,
// parses every line and registers the transport. Each tor runs in its own network
// namespace (internal/pttest.StartTor), so nothing here can reach the Internet. A missing
// tor fails these tests; it never skips them.

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/pttest"
)

const torWait = 60 * time.Second

// ptPID reads the PID tor gave ptreactor from tor's log.
func ptPID(t *testing.T, tr *pttest.Tor) int {
	t.Helper()
	l := tr.WaitLog(`Managed proxy at '.*ptreactor' has spawned with PID '\d+'`, torWait)
	pid, _ := strconv.Atoi(regexp.MustCompile(`PID '(\d+)'`).FindStringSubmatch(l)[1])
	return pid
}

// gone waits until pid no longer exists (tor has reaped it), or fails the test.
func gone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if procGone(strconv.Itoa(pid)) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("ptreactor (pid %d) still runs after tor stopped", pid)
}

// acceptsIn checks that addr accepts a TCP connection inside ns.
func acceptsIn(t *testing.T, ns *pttest.NetNS, addr string) {
	t.Helper()
	c, err := ns.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("listener %s does not accept: %v", addr, err)
	}
	c.Close()
}

func TestTorClient(t *testing.T) {
	bin := pttest.Binary(t)
	tr := pttest.StartTor(t, nil,
		"SocksPort auto",
		"UseBridges 1",
		"ClientTransportPlugin plain exec "+bin,
		"Bridge plain 127.0.0.1:9",
	)
	pid := ptPID(t, tr)
	l := tr.WaitLog(`Transport plain at 127\.0\.0\.1:\d+ with SOCKS`, torWait)
	tr.WaitLog(`Successfully registered transport plain$`, torWait)
	tr.WaitLog(`Client managed proxy '.*ptreactor' configuration completed!`, torWait)
	// Our LOG notice, as tor shows it: `Managed proxy "<path>": <message>`.
	tr.WaitLog(`\[notice\] Managed proxy ".*ptreactor": ptreactor \S+ starting cipher=\S+$`, torWait)
	acceptsIn(t, tr.NS, regexp.MustCompile(`127\.0\.0\.1:\d+`).FindString(l))
	if bad := regexp.MustCompile(`(?m)^.*(malformed|failed the configuration protocol|Unknown line|wrote an? (invalid|LOG|STATUS)|multiple TYPE).*$`).FindString(tr.Log()); bad != "" {
		t.Errorf("tor complained: %s", bad)
	}
	tr.Stop()
	gone(t, pid)
}

func TestTorBridge(t *testing.T) {
	bin := pttest.Binary(t)
	ns := pttest.NewNetNS(t)
	ln, err := ns.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tr := pttest.StartTor(t, ns,
		"BridgeRelay 1",
		"PublishServerDescriptor 0",
		"AssumeReachable 1",
		"ORPort 127.0.0.1:auto",
		"ExtORPort auto",
		"SocksPort 0",
		"ServerTransportPlugin plain exec "+bin,
		"ServerTransportListenAddr plain "+addr,
	)
	pid := ptPID(t, tr)
	tr.WaitLog(regexp.QuoteMeta("Registered server transport 'plain' at '"+addr+"'"), torWait)
	tr.WaitLog(`Server managed proxy '.*ptreactor' configuration completed!`, torWait)
	tr.WaitLog(`\[notice\] Managed proxy ".*ptreactor": ptreactor \S+ starting cipher=\S+$`, torWait)
	acceptsIn(t, ns, addr)
	if bad := regexp.MustCompile(`(?m)^.*(malformed|failed the configuration protocol|Unknown line|wrote an? (invalid|LOG|STATUS)|multiple TYPE).*$`).FindString(tr.Log()); bad != "" {
		t.Errorf("tor complained: %s", bad)
	}
	tr.Stop()
	gone(t, pid)
}
