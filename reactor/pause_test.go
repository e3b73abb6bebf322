package reactor

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestResumeAfterPeerReset: the bridge resets the connection while the client's network end
// is paused (tor is not reading). When tor reads again and the end is resumed, the tunnel
// must end, closing tor's conn, rather than wait for ever on a resume that cannot happen.
func TestResumeAfterPeerReset(t *testing.T) {
	bridgeConn := make(chan *net.TCPConn, 1)
	bridge := listen(t, func(c net.Conn) {
		bridgeConn <- c.(*net.TCPConn)
		buf := make([]byte, 256<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	socksAddr, _, logs, cli, _ := pairEngines(t, "", "", "")
	c, rep, err := socksDial(socksAddr, bridge, "")
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v", rep, err)
	}
	defer c.Close()
	b := <-bridgeConn

	// tor reads nothing: the bridge's bytes pile up toward tor and the network end pauses.
	deadline := time.Now().Add(20 * time.Second)
	for cli.stats.pauses.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the network end never paused\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = b.SetLinger(0)
	b.Close() // RST to the paused socket
	time.Sleep(200 * time.Millisecond)

	// tor reads again: the sweep resumes the network end, finds it reset, and ends the
	// tunnel; tor sees the end of its conn after the bytes that were queued for it.
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("tor's conn still open 20 s after the bridge reset a paused end\n%s", logs)
	}
	deadline = time.Now().Add(10 * time.Second)
	for cli.active.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d tunnels still active\n%s", cli.active.Load(), logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
