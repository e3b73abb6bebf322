//go:build unix

package reactor

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ptreactor/ptreactor/internal/pttest"
)

// keepAliveOn reads SO_KEEPALIVE of c's socket.
func keepAliveOn(t *testing.T, c net.Conn) bool {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v != 0
}

// TestKeepAlive: a connection to the bridge keeps TCP keep-alive on, one to tor has none.
func TestKeepAlive(t *testing.T) {
	or := pttest.StartORPort(t, nil)
	d := mustDialer(t, Config{ORPort: addrPort(t, or.Addr)})
	toBridge, err := d.dialBridge(testCtx(t), or.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer toBridge.Close()
	toTor, err := d.dialTor(testCtx(t), toBridge.LocalAddr(), "obfs4")
	if err != nil {
		t.Fatal(err)
	}
	defer toTor.Close()
	if !keepAliveOn(t, toBridge) {
		t.Error("the connection to the bridge has no keep-alive")
	}
	if keepAliveOn(t, toTor) {
		t.Error("the connection to tor has keep-alive on")
	}
}
