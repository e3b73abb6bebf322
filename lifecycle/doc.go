// Package lifecycle is ptreactor's side of the managed-proxy conversation with tor
// (pt-spec v1): it reads the TOR_PT_* environment and the flags into a reactor.Config,
// parsed and validated once here into netip values and a typed proxy that the reactor takes
// as they are, with the transports to serve (transports.go); it negotiates the protocol
// version, asks the reactor for one listener per transport and reports them on stdout,
// keeps the log, and decides when the process ends (signals, stdin close, parent gone).
//
// Stdout belongs to tor. Every byte written there goes through one serialised writer
// (Messages) and is a spec line: VERSION, ENV-ERROR, PROXY DONE, CMETHOD, LOG, STATUS and
// their siblings. Everything else goes to the log file in the state directory.
//
// The order of a run, chosen so that tor logs every error with its reason (tor accepts
// ENV-ERROR only before VERSION, and PROXY-ERROR only after it):
//
//	parse and validate the environment  -> ENV-ERROR / VERSION-ERROR, exit 1
//	create the state directory          -> ENV-ERROR, exit 1
//	VERSION 1, STATUS TYPE=version
//	TOR_PT_PROXY                        -> PROXY DONE, or PROXY-ERROR and exit 1
//	reactor.New, one Listen per transport -> CMETHOD / SMETHOD (or their -ERROR)
//	CMETHODS DONE / SMETHODS DONE
//	wait for SIGTERM, SIGINT (twice, or once and a drained engine), or stdin EOF
//
// Exit codes (the spec defines none; tor only logs them):
//
//	0  clean end: SIGTERM, stdin closed with TOR_PT_EXIT_ON_STDIN_CLOSE=1, SIGINT
//	   followed by a finished drain or a second signal
//	1  setup failed: bad flags, VERSION-ERROR, ENV-ERROR (Windows included: the reactor does
//	   not run there), PROXY-ERROR, reactor.New failed
//	2  the engine failed while stopping: an event loop had died with an error (its tunnels
//	   went with it) or a listener would not close (reactor.Engine.Close)
//	3  nothing to serve: no requested transport could be launched (lyrebird uses 255)
package lifecycle
