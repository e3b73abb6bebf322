package reactor

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// sourceControl is the net.Dialer Control for a connection from a chosen source address:
// IP_BIND_ADDRESS_NO_PORT lets the kernel pick the source port at connect time by the
// whole 4-tuple, so one source address serves as many connections as there are ports per
// destination, not per machine. A kernel without it (before Linux 4.2) still works, with
// the older port allocation.
func sourceControl(network, address string, rc syscall.RawConn) error {
	return rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
}
