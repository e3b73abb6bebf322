package reactor

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestListenerKeepAliveInherited: a conn accepted by a listenConfig listener has the
// keep-alive it asked for, set once on the listener and copied by the kernel, and none
// when it asked for none.
func TestListenerKeepAliveInherited(t *testing.T) {
	for _, tc := range []struct {
		keepAlive            time.Duration
		on, idle, intvl, cnt int
	}{
		{keepAliveNetwork, 1, 15, 15, 9},
		{7 * time.Second, 1, 7, 15, 9},
		{keepAliveLocal, 0, -1, -1, -1},
	} {
		lc := listenConfig(tc.keepAlive)
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		a, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := a.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		get := func(level, opt int) int {
			var v int
			var gerr error
			if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil || gerr != nil {
				t.Fatal(err, gerr)
			}
			return v
		}
		if on := get(unix.SOL_SOCKET, unix.SO_KEEPALIVE); on != tc.on {
			t.Errorf("keepAlive %v: SO_KEEPALIVE %d on the accepted conn, want %d", tc.keepAlive, on, tc.on)
		}
		if tc.on == 1 {
			got := [3]int{get(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE), get(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL), get(unix.IPPROTO_TCP, unix.TCP_KEEPCNT)}
			if want := [3]int{tc.idle, tc.intvl, tc.cnt}; got != want {
				t.Errorf("keepAlive %v: idle, interval, count %v on the accepted conn, want %v", tc.keepAlive, got, want)
			}
		}
		a.Close()
		c.Close()
		ln.Close()
	}
}

// TestEnrolledConnsNoDelay: the conns of a live tunnel have TCP_NODELAY on, with gnet told
// not to set it again (start): Go set it when it accepted or dialed them.
func TestEnrolledConnsNoDelay(t *testing.T) {
	or := listen(t, echo)
	socksAddr, srvAddr, _ := pair(t, or, "", "")
	c, rep, err := socksDial(socksAddr, srvAddr, "")
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v", rep, err)
	}
	defer c.Close()
	cell := make([]byte, 514)
	if _, err := c.Write(cell); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, cell); err != nil {
		t.Fatal(err)
	}
	// The tunnel's three TCP connections (tor's SOCKS, the bridge, the ORPort), found by
	// the port of their listener at one end.
	ports := map[int]bool{}
	for _, a := range []string{socksAddr, srvAddr, or} {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			t.Fatal(err)
		}
		ports[int(ap.Port())] = true
	}
	found := 0
	for fd := 3; fd < 4096; fd++ {
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 0 {
			continue // not a socket, or a listener
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || v != unix.SOCK_STREAM {
			continue
		}
		la, err1 := unix.Getsockname(fd)
		ra, err2 := unix.Getpeername(fd)
		if err1 != nil || err2 != nil {
			continue
		}
		l4, ok1 := la.(*unix.SockaddrInet4)
		r4, ok2 := ra.(*unix.SockaddrInet4)
		if !ok1 || !ok2 || !ports[l4.Port] && !ports[r4.Port] {
			continue
		}
		found++
		if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v != 1 {
			t.Errorf("fd %d (local port %d, remote port %d): TCP_NODELAY %d, %v", fd, l4.Port, r4.Port, v, err)
		}
	}
	// Both ends of each are in this process: the engines' four (two accepted, two dialed,
	// all enrolled on gnet) and the test's SOCKS conn and the ORPort's echo conn; more for
	// a moment while gnet's enroll has not yet closed the descriptor it duplicated.
	if found < 6 {
		t.Errorf("found %d sockets of the tunnel, want at least 6", found)
	}
}
