// Package harness drives pluggable transports as black boxes, the way tor does. It launches
// a managed PT with tor's environment, reads its stdout and the methods it reports (with
// their SMETHOD ARGS), and opens SOCKS5 tunnels through a client PT with tor's
// per-connection argument encoding. It also holds the stand-ins for the tor a bridge feeds:
// a plain ORPort and an Extended ORPort that really authenticates.
//
// It is the one copy of these for ptbench, the benchmarks and every test (internal/pttest
// wraps it with testing.TB conveniences). It imports nothing of the proxy itself (reactor,
// lifecycle) so that any package's tests can use it, and not "testing", so that real
// binaries can.
//
// Every child it starts runs in a process group of its own and is killed with that group:
// a launch that fails, for whatever reason, leaves no process behind.
package harness
