// Package bench measures ptreactor against its peers and drives both as black boxes,
// through internal/harness (which launches the PTs as tor does and opens the SOCKS5
// tunnels). It holds the ORPort stand-in that checks every byte (Target and the xfer
// protocol) and the reference forwarder. `ptbench lab` (bench/lab, with bench/procstat for
// the /proc readings and bench/report for the Markdown and the charts), the interop tests
// in cmd/ptreactor and the demo are built on it.
package bench
