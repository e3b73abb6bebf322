package reactor

import (
	"net"
	"syscall"
	"time"

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

// listenConfig is the net.ListenConfig of a listener whose accepted conns get keepAlive
// (as net.ListenConfig takes it). Linux copies a listening socket's keep-alive settings
// to every conn it accepts, so they are set once on the listener here, and Go is told to
// leave the accepted conns alone: otherwise it makes four setsockopt calls per accept
// (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT), about 1.5 µs each here, a
// tenth of a bridge's system calls per tunnel set-up. The values are those Go would set
// per conn: probes after keepAlive idle (15 s when 0), every 15 s, 9 of them.
func listenConfig(keepAlive time.Duration) net.ListenConfig {
	if keepAlive < 0 {
		return net.ListenConfig{KeepAlive: -1}
	}
	const defaultIdle, interval, count = 15 * time.Second, 15 * time.Second, 9
	idle := keepAlive
	if idle == 0 {
		idle = defaultIdle
	}
	return net.ListenConfig{
		KeepAlive: -1,
		Control: func(network, address string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				for _, o := range [...]struct{ level, opt, v int }{
					{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
					{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(idle / time.Second)},
					{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(interval / time.Second)},
					{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, count},
				} {
					if serr = unix.SetsockoptInt(int(fd), o.level, o.opt, o.v); serr != nil {
						return
					}
				}
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}
