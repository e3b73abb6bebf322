// Package loadgen is `ptbench load`: the obfs4 client side itself, driving thousands of
// tunnels at a bridge that is already running, with no PT child process in between. It
// opens Conns tunnels (at Rate per second, or as fast as Concurrency set-ups in flight
// allow), holds them for Duration, replaces any that are lost, and reports handshakes
// completed, their latency (an HDR histogram), the tunnels held, and every failure by kind
// (errors.go names them: refused, silent, closed-unanswered, reset, ...).
//
// A run ends after Duration, on a signal, with UntilHeld as soon as all Conns are held, or
// at once when giveUpAfter set-ups have failed and none has completed: a bridge that
// refuses, stays silent or is not obfs4 gets one line saying so (Result.Failure), not a
// minute of retries. A failed set-up's slot rests failBackoff before it is used again, so
// a bridge that sheds load is not hammered. Tunnels may be spread over several bridges in
// turn, for capacities past one bridge process's descriptors (instances sharing one
// identity, as behind a TCP balancer); measure-hold.sh holds 15,000 that way.
//
// # Shape
//
// Tunnels live on gnet event loops, the machinery the reactor uses, with the obfs4 client
// codec (codec/obfs4) driven exactly as a reactor client tunnel drives it: Start yields the
// request, Unwrap finds the reply and then decodes frames. A TCP connect runs on a
// goroutine of its own with a timeout and the socket is then enrolled on a loop; from there
// on one descriptor, a codec.Wire and a small struct (the conn's context) are the whole
// cost of a held tunnel, so one process holds tens of thousands within the descriptor
// limit, which it raises to the hard limit. Timeouts are per-tunnel timers that ask the
// loop to act (gnet conns have no deadlines). Bridge lines are parsed once
// (ParseBridgeLine); the obfs4 codec judges their arguments.
//
// # Telling a silent bridge from a wrong cert
//
// An obfs4 bridge that cannot verify a handshake (the cert does not match, or the client
// is a prober) answers nothing and closes only after 30 to 90 seconds. From the client that
// is indistinguishable from a server that accepts TCP and never speaks, until the close
// comes. So the kinds say what was seen, not a guess: "silent" is no reply byte within the
// timeout on a connection still open, "closed-unanswered" is a close (FIN) with no reply
// byte before the timeout. With the default timeout of 30 s a wrong cert shows as silent;
// the one-line verdict (Result.Failure) says that a wrong cert looks like this.
//
// # --tor-link
//
// With TorLink each tunnel, once its obfs4 handshake is done, also performs tor's link
// handshake with the bridge's tor: TLS, a VERSIONS cell, tor's VERSIONS (the latency is
// measured to here), CERTS, AUTH_CHALLENGE and NETINFO, then the client's NETINFO, after
// which tor holds an ordinary unauthenticated client link. crypto/tls needs a net.Conn and
// blocks in it, and a gnet conn is neither, so the TLS runs on a goroutine over linkConn,
// an in-memory net.Conn: the loop feeds it the payload the tunnel unwraps, and its Write
// hands bytes back to the loop, which wraps and sends them. That keeps the obfs4 wire
// touched by its loop only, the tunnel on gnet for its whole life, and the goroutines
// bounded by the set-ups in flight: when the link handshake is over, the goroutine and the
// TLS state are gone and the loop discards what tor sends later (padding). The other route,
// a goroutine-driven net.Conn per tunnel built on the same codec, would duplicate the
// reactor's framing loop and cost a goroutine for as long as a tunnel is held.
package loadgen
