package reactor

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ptreactor/ptreactor/codec/extor"
)

// failureKind is a kind of failure the log tells the operator about. Most are ones the
// operator can fix (tor's set-up, the cookie file, the descriptor limit); failDial is the
// rest of the failed outbound connections, only counted.
type failureKind uint8

const (
	failExtORDenied   failureKind = iota // tor answered the Extended ORPort handshake with DENY
	failServerHash                       // tor's server hash did not match our cookie
	failClientHash                       // tor rejected our client hash
	failCookieFile                       // the auth cookie file could not be read or is malformed
	failORPortRefused                    // the (Ext)ORPort refused the connection
	failDescriptors                      // EMFILE or ENFILE
	failTunnelLimit                      // a connection past the tunnel limit, closed at once
	failOverloadHeld                     // a connection past the tunnel limit, held like a failed handshake
	failDial                             // any other failed outbound connection
	numFailureKinds                      // not a kind: the count
)

// failureText is what the log says about one kind: first at once (at level), with what to
// check; then a summary line per interval that had repeats. A kind without first is only
// counted in the summaries.
type failureText struct {
	level   slog.Level
	first   string
	summary string
}

// A kind's spell: the first failure of a spell is said at once, the repeats are summarised,
// and a spell ends after a whole summary interval without one, so that a failure that
// comes back the next day is said at once again, but a burst split by a summary tick is
// still one spell.
const (
	spellQuiet uint32 = iota // no failure of this kind in the last whole interval
	spellNew                 // said at once in this interval
	spellOn                  // said in an earlier interval, repeats since then
)

// failures says operator-fixable failures at once and summarises their repeats. It is
// used from the failure paths only (a dial that failed, an accept that was refused),
// never per read, and takes no lock: one atomic per kind and note.
type failures struct {
	log   *slog.Logger
	every time.Duration
	text  [numFailureKinds]failureText
	kinds [numFailureKinds]struct {
		spell   atomic.Uint32
		repeats atomic.Int64
	}
}

// failureSummaryEvery is how often repeats are summarised unless Config says otherwise.
const failureSummaryEvery = time.Minute

func newFailures(log *slog.Logger, cfg *Config, fdLimit uint64, maxTunnels int64) *failures {
	every := cfg.FailureSummary
	if every <= 0 {
		every = failureSummaryEvery
	}
	cookie := "the cookie file TOR_PT_AUTH_COOKIE_FILE=" + cfg.AuthCookieFile
	// The port is said apart from the address too: the log scrubs IP addresses.
	orport := "the Extended ORPort TOR_PT_EXTENDED_SERVER_PORT=" + cfg.ExtORPort.String() +
		" (port " + strconv.Itoa(int(cfg.ExtORPort.Port())) + ")"
	switch {
	case len(cfg.ORPool) > 0:
		cookie = "the cookie file of the -orport-pool instance named in err"
		orport = "the Extended ORPort of an -orport-pool instance"
	case !cfg.ExtORPort.IsValid():
		orport = "the ORPort TOR_PT_ORPORT=" + cfg.ORPort.String() + " (port " + strconv.Itoa(int(cfg.ORPort.Port())) + ")"
	}
	raise := "raise the descriptor limit (LimitNOFILE= in tor's systemd unit, or ulimit -n), or spread the clients over more instances"
	w := slog.LevelWarn
	f := &failures{log: log, every: every}
	f.text = [numFailureKinds]failureText{
		failExtORDenied: {w, "tor denied the Extended ORPort connection (DENY: it wants no more traffic from that client address for a while): " +
			"check tor's log; behind a load balancer, check that -proxy-protocol is set so that tor sees each client's own address",
			"tor denied Extended ORPort connections"},
		failServerHash: {w, "tor's server hash is wrong: " + cookie + " is stale or belongs to another tor; " +
			"check that it is the cookie of the tor whose ExtORPort this is (tor rewrites it when it restarts)",
			"tor's server hash was wrong"},
		failClientHash: {w, "tor rejected our client hash: " + cookie + " does not match the running tor; " +
			"check that it is that tor's current cookie",
			"our client hash was rejected"},
		failCookieFile: {w, "cannot read the Extended ORPort auth cookie: " + cookie + ": " +
			"check that it exists, that this user may read it, and that it is tor's (32 bytes of header, 32 of cookie)",
			"the auth cookie file could not be read"},
		failORPortRefused: {w, orport + " refused the connection: is tor running, and is its ORPort (ExtORPort) listening there?",
			"tor refused connections"},
		failDescriptors: {w, "out of file descriptors (limit " + strconv.FormatUint(fdLimit, 10) + "): connections are being refused; " + raise,
			"connections refused for lack of file descriptors"},
		failTunnelLimit: {w, "tunnel limit reached (" + strconv.FormatInt(maxTunnels, 10) + " tunnels; descriptor limit " +
			strconv.FormatUint(fdLimit, 10) + "): new connections are closed at once; " + raise,
			"connections refused at the tunnel limit"},
		failOverloadHeld: {w, "tunnel limit reached (" + strconv.FormatInt(maxTunnels, 10) + " tunnels; descriptor limit " +
			strconv.FormatUint(fdLimit, 10) + "): new obfs4 connections are held and closed as after a failed handshake, so that the bridge looks like any other to a prober; " + raise,
			"connections held and closed at the tunnel limit"},
		failDial: {level: slog.LevelInfo, summary: "outbound connections failed"},
	}
	return f
}

// note records one failure of kind k: the first of a spell is logged at once with err
// (nil: none), the rest are counted for the summary.
func (f *failures) note(k failureKind, err error) {
	c, txt := &f.kinds[k], &f.text[k]
	if txt.first != "" && c.spell.CompareAndSwap(spellQuiet, spellNew) {
		if err != nil {
			f.log.Log(context.Background(), txt.level, txt.first, "err", err)
		} else {
			f.log.Log(context.Background(), txt.level, txt.first)
		}
		return
	}
	c.repeats.Add(1)
}

// run summarises the repeats every interval until done is closed.
func (f *failures) run(done <-chan struct{}) {
	tick := time.NewTicker(f.every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		f.summarise()
	}
}

// summarise logs, per kind, the repeats since the last call, and ends the spells that had
// none for a whole interval.
func (f *failures) summarise() {
	for k := range f.kinds {
		c, txt := &f.kinds[k], &f.text[k]
		n := c.repeats.Swap(0)
		if n > 0 {
			msg := txt.summary + ": " + strconv.FormatInt(n, 10) + " times in the last " + f.interval()
			if txt.first != "" {
				msg = txt.summary + ": " + strconv.FormatInt(n, 10) + " more times in the last " + f.interval()
			}
			f.log.Log(context.Background(), txt.level, msg, "count", n)
			c.spell.CompareAndSwap(spellNew, spellOn)
			continue
		}
		if !c.spell.CompareAndSwap(spellNew, spellOn) {
			c.spell.CompareAndSwap(spellOn, spellQuiet)
		}
	}
}

func (f *failures) interval() string {
	if f.every == time.Minute {
		return "minute"
	}
	return f.every.String()
}

// errCookieFile wraps the reason an Extended ORPort auth cookie file could not be read.
var errCookieFile = errors.New("cannot read the Extended ORPort auth cookie file")

// torDialFailure is the kind of a failed connection to tor (server side).
func torDialFailure(err error) failureKind {
	switch {
	case errors.Is(err, extor.ErrDenied):
		return failExtORDenied
	case errors.Is(err, extor.ErrServerHash):
		return failServerHash
	case errors.Is(err, extor.ErrAuthFailed):
		return failClientHash
	case errors.Is(err, errCookieFile), errors.Is(err, extor.ErrCookieFile):
		return failCookieFile
	case errors.Is(err, syscall.ECONNREFUSED):
		return failORPortRefused
	case outOfDescriptors(err):
		return failDescriptors
	}
	return failDial
}

// bridgeDialFailure is the kind of a failed connection to a bridge (client side): a bridge
// that cannot be reached is not this machine's to fix, short of its descriptors.
func bridgeDialFailure(err error) failureKind {
	if outOfDescriptors(err) {
		return failDescriptors
	}
	return failDial
}

func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// overloadHoldLimit is how many connections past maxTunnels a server holds like failed
// handshakes (accept.go). A held connection needs a descriptor as long as a failed
// handshake (obfs4: 30 to 90 s), so a flood would otherwise turn the overload into
// descriptor exhaustion; past this bound connections are closed at once. A tenth of
// maxTunnels is a twentieth of the descriptors the tunnels may use, half of the share that
// tunnelLimit keeps back (the rest stays for enrolls and resumes); the floor lets a small
// limit hold a few.
func overloadHoldLimit(maxTunnels int64) int64 {
	return max(maxTunnels/10, 8)
}
