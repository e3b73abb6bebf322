// Package bench measures ptreactor against its peers and drives both as black boxes,
// through internal/harness (which launches the PTs as tor does and opens the SOCKS5
// tunnels). It holds the ORPort stand-in that checks every byte (Target and the xfer
// protocol), the reference forwarder, the measurements of a running pair and the /proc
// readings they are made of. The interop tests in cmd/ptreactor, the load generator and the
// demo are built on it.
package bench
