//go:build !linux

package reactor

import (
	"net"
	"syscall"
	"time"
)

// sourceControl is nil where there is no IP_BIND_ADDRESS_NO_PORT (the BSDs, macOS): the
// bind to the source address with port 0 takes an ephemeral port at once, unique for that
// address rather than per destination. Each address of an -orport-source range then holds
// one ephemeral port range of connections, which is still what spreading over the range is
// for.
var sourceControl func(network, address string, rc syscall.RawConn) error

// listenConfig is the net.ListenConfig of a listener whose accepted conns get keepAlive.
// Outside Linux an accepted conn does not take its keep-alive settings from the listener
// on every system, so Go sets them on each conn as it accepts it.
func listenConfig(keepAlive time.Duration) net.ListenConfig {
	return net.ListenConfig{KeepAlive: keepAlive}
}
