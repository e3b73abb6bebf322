// Package lifecycle is ptreactor's side of the managed-proxy conversation with its parent,
// tor or Arti (pt-spec v1): it reads the TOR_PT_* environment and the flags into a
// reactor.Config, parsed and validated once here into netip values and a typed proxy that
// the reactor takes as they are, with the transports to serve (transports.go); it
// negotiates the protocol version, asks the reactor for one listener per transport and
// reports them on stdout, keeps the log, decides when the process ends (signals, stdin
// close, parent gone), and hands freed memory back to the OS once a burst of tunnels has
// gone (memory.go).
//
// Stdout belongs to the parent. Every byte written there goes through one serialised writer
// (Messages) and is a spec line: VERSION, ENV-ERROR, PROXY DONE, CMETHOD, LOG, STATUS and
// their siblings. Everything else goes to the log file in the state directory.
//
// Every line is written so that both parents read it, and read the same text. tor parses
// LOG and STATUS values as C strings (octal escapes included); Arti (crates/tor-ptmgr)
// needs each line to be UTF-8, knows only the escapes \n \r \t and backslash-character,
// refuses an octal escape, fails the whole launch on a line it cannot parse, and in older
// releases on a STATUS line without TRANSPORT=. So values carry \" \\ \n \r \t and UTF-8
// as it is, anything else unprintable becomes U+FFFD, and every STATUS line names a
// transport. Arti also sets TOR_PT_EXIT_ON_STDIN_CLOSE=1 always, allows 30 s until
// "...METHODS DONE", kills the process 5 s after closing its stdin, and takes a CMETHOD
// only on a loopback address: client listeners are on 127.0.0.1, and a closed stdin ends
// the run at once.
//
// The order of a run, chosen so that tor logs every error with its reason (tor accepts
// ENV-ERROR only before VERSION, and PROXY-ERROR only after it):
//
//	parse and validate the environment  -> ENV-ERROR / VERSION-ERROR, exit 1
//	create the state directory          -> ENV-ERROR, exit 1
//	bind the -metrics socket            -> ENV-ERROR, exit 1
//	VERSION 1, STATUS TYPE=version
//	TOR_PT_PROXY                        -> PROXY DONE, or PROXY-ERROR and exit 1
//	reactor.New, serve -metrics, one Listen per transport -> CMETHOD / SMETHOD (or their -ERROR)
//	CMETHODS DONE / SMETHODS DONE
//	STATUS TYPE=stats every -status-interval (status.go), until:
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
