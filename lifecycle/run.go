package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/cipher"
	"github.com/ptreactor/ptreactor/lifecycle/internal/gnetenv"
	"github.com/ptreactor/ptreactor/lifecycle/metrics"
	"github.com/ptreactor/ptreactor/reactor"
)

// Exit codes of Run; see the package comment.
const (
	ExitClean       = 0
	ExitSetup       = 1
	ExitRuntime     = 2
	ExitNoTransport = 3
)

// Implementation is the name ptreactor reports in STATUS TYPE=version.
const Implementation = "ptreactor"

// Options are the command-line settings; everything else comes from tor's environment.
type Options struct {
	Version       string // reported in STATUS TYPE=version and by -version
	LogLevel      string // error, warning, notice (default), info, debug; notices and above that pass it also go to tor
	LogFile       string // default: ptreactor.log in the state directory
	UnsafeLogging bool   // keep IP addresses in logs
	CPU           string // cipher variant (generic, sse2, avx2); default: env PTREACTOR_CPU, then auto
	ORPortSource  string // CIDR for reactor.Config.ORSource; "" for none
	ORPortPool    string // -orport-pool: a pool file or list for reactor.Config.ORPool; "" for none
	ProxyProtocol string // -proxy-protocol: CIDRs for reactor.Config.ProxyProtocol; "" for none
	Obfs4DistBias bool   // obfs4's ScrambleSuit-style biased length and delay tables (lyrebird's -obfs4-distBias)
	Metrics       string // -metrics: where to serve Prometheus metrics (metrics.ParseAddress); "" for nowhere
	MetricsPublic bool   // -metrics-public: allow a -metrics address that is not loopback
	// StatusInterval is how often the STATUS TYPE=stats lines are written; 0 for never.
	StatusInterval time.Duration
	Args           []string

	// Where the conversation happens; nil means the process's own stdin, stdout and
	// environment. Tests of this package set them.
	Stdin  io.Reader
	Stdout io.Writer
	Lookup func(string) (string, bool)
}

func (o *Options) defaults() {
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Lookup == nil {
		o.Lookup = os.LookupEnv
	}
	if o.CPU == "" {
		o.CPU, _ = o.Lookup("PTREACTOR_CPU")
	}
}

// PrintVersion writes the -version text ("ptreactor <version> cipher=<variant>") to w, after
// applying o.CPU (or PTREACTOR_CPU) so the variant shown is the one a run would use.
func PrintVersion(w io.Writer, o Options) int {
	o.defaults()
	if err := cipher.Use(o.CPU); err != nil {
		fmt.Fprintln(os.Stderr, "ptreactor:", err)
		return ExitSetup
	}
	fmt.Fprintf(w, "%s %s cipher=%s\n", Implementation, o.Version, cipher.Active())
	return ExitClean
}

// Run is ptreactor's whole life as tor's managed proxy: it returns the process exit code.
func Run(o Options) int {
	o.defaults()

	// tor closes our stdout right after SIGTERM; a write then must fail with EPIPE rather
	// than kill the process with SIGPIPE in the middle of its shutdown.
	signal.Ignore(syscall.SIGPIPE)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	msgs := NewMessages(o.Stdout)
	defer msgs.Close(time.Second)

	setupError := func(err error) int {
		fmt.Fprintln(os.Stderr, "ptreactor:", err)
		msgs.Log("error", err.Error())
		return ExitSetup
	}

	// Flags first: they do not depend on tor.
	level, err := parseLevel(o.LogLevel)
	if err != nil {
		return setupError(err)
	}
	if len(o.Args) > 0 {
		return setupError(fmt.Errorf("unexpected arguments %q", o.Args))
	}
	if err := cipher.Use(o.CPU); err != nil {
		return setupError(err)
	}
	var orSource netip.Prefix
	if o.ORPortSource != "" {
		if orSource, err = netip.ParsePrefix(o.ORPortSource); err != nil || orSource.Addr().Is4In6() {
			return setupError(fmt.Errorf("-orport-source: %q is not an IPv4 or IPv6 address range (CIDR)", o.ORPortSource))
		}
		orSource = orSource.Masked()
	}
	proxied, err := parseCIDRList(o.ProxyProtocol)
	if err != nil {
		return setupError(fmt.Errorf("-proxy-protocol: %w", err))
	}
	var metricsAddr metrics.Address
	switch {
	case o.Metrics != "":
		if metricsAddr, err = metrics.ParseAddress(o.Metrics, o.MetricsPublic); err != nil {
			return setupError(fmt.Errorf("-metrics: %w", err))
		}
	case o.MetricsPublic:
		return setupError(errors.New("-metrics-public without -metrics"))
	}
	if o.StatusInterval < 0 || o.StatusInterval > 0 && o.StatusInterval < time.Second {
		return setupError(fmt.Errorf("-status-interval: %v is neither 0 (off) nor at least 1s", o.StatusInterval))
	}

	// A system the reactor cannot run on is told to tor the one way it reads before VERSION.
	if err := reactor.Supported(); err != nil {
		fmt.Fprintln(os.Stderr, "ptreactor:", err)
		msgs.EnvError(err.Error())
		return ExitSetup
	}

	// The environment, all of it before VERSION: tor reads ENV-ERROR only before VERSION.
	env, err := parseEnv(o.Lookup)
	if err != nil {
		var ee *envError
		switch {
		case errors.As(err, &ee):
			msgs.EnvError(ee.msg)
		case errors.Is(err, versionError{}):
			msgs.VersionError()
		default:
			msgs.EnvError(err.Error())
		}
		fmt.Fprintln(os.Stderr, "ptreactor:", err)
		return ExitSetup
	}
	var orPool []reactor.ORInstance
	if o.ORPortPool != "" {
		if !env.Server {
			err = errors.New("-orport-pool is for a bridge (server mode) only")
		} else {
			orPool, err = parseORPool(o.ORPortPool)
		}
		if err != nil {
			msgs.EnvError(err.Error())
			fmt.Fprintln(os.Stderr, "ptreactor:", err)
			return ExitSetup
		}
	}
	if !env.Server && proxied != nil {
		err := errors.New("-proxy-protocol is for a bridge (server mode) only")
		msgs.EnvError(err.Error())
		fmt.Fprintln(os.Stderr, "ptreactor:", err)
		return ExitSetup
	}
	if env.Server && orPool == nil && !env.ORPort.IsValid() && !env.ExtORPort.IsValid() {
		err := errors.New("need TOR_PT_ORPORT or TOR_PT_EXTENDED_SERVER_PORT environment variable")
		msgs.EnvError(err.Error())
		fmt.Fprintln(os.Stderr, "ptreactor:", err)
		return ExitSetup
	}
	if err := makeStateDir(env.StateDir); err != nil {
		msgs.EnvError(err.Error())
		return ExitSetup
	}
	// The metrics socket is bound before VERSION, so that an address in use or a path that
	// cannot be a socket fails the start the way tor reads a setup error.
	var metricsLn net.Listener
	if metricsAddr.Network != "" {
		if metricsLn, err = metrics.Listen(metricsAddr); err != nil {
			err = fmt.Errorf("-metrics: %w", err)
			msgs.EnvError(err.Error())
			fmt.Fprintln(os.Stderr, "ptreactor:", err)
			return ExitSetup
		}
		defer metricsLn.Close() // until the endpoint's Close owns it
	}

	logOut := &logOutput{level: level, scrub: !o.UnsafeLogging, msgs: msgs}
	logPath := o.LogFile
	if logPath == "" {
		logPath = filepath.Join(env.StateDir, "ptreactor.log")
	}
	var logFileErr error
	if f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		logFileErr = err
	} else {
		defer f.Close()
		logOut.file = f
	}
	log := newLogger(logOut)
	slog.SetDefault(log)

	msgs.Version()
	msgs.StatusVersion(env.Transports[0], Implementation, o.Version)

	log.Log(context.Background(), LevelNotice, "ptreactor "+o.Version+" starting", "cipher", cipher.Active())
	if logFileErr != nil {
		log.Warn("no log file; logging to tor only", "err", logFileErr)
	}
	for _, kv := range gnetenv.Removed {
		log.Warn("ignored gnet logging variable", "var", kv)
	}
	for _, w := range env.Warnings {
		log.Warn(w)
	}

	if !env.Server && (env.Proxy != nil || env.ProxyErr != nil) {
		if env.ProxyErr != nil {
			msgs.ProxyError(env.ProxyErr.Error())
			return ExitSetup
		}
		msgs.ProxyDone()
	}

	known := transports(&o)
	eng, err := reactor.New(reactor.Config{
		Logger:         log,
		StateDir:       env.StateDir,
		Transports:     known,
		Limits:         reactor.DefaultLimits(),
		Proxy:          env.Proxy,
		OutboundBindV4: env.OutboundBindV4,
		OutboundBindV6: env.OutboundBindV6,
		ORPort:         env.ORPort,
		ExtORPort:      env.ExtORPort,
		AuthCookieFile: env.AuthCookieFile,
		ORSource:       orSource,
		ProxyProtocol:  proxied,
		ORPool:         orPool,
	})
	if err != nil {
		log.Error("cannot start the engine", "err", err)
		for _, name := range env.Transports {
			if _, ok := known[name]; ok {
				methodError(msgs, env.Server, name, err.Error())
			}
		}
		methodsDone(msgs, env.Server)
		return ExitSetup
	}

	if metricsLn != nil {
		srv := metrics.Serve(metricsLn, eng, log)
		defer srv.Close()
		args := []any{"addr", metricsAddr.String()}
		if ta, ok := metricsLn.Addr().(*net.TCPAddr); ok {
			args = append(args, "port", ta.Port) // a bare number survives the scrubbing of addresses
		}
		log.Log(context.Background(), LevelNotice, "serving metrics", args...)
	}
	launched := 0
	for _, name := range env.Transports {
		if launch(msgs, log, eng, env, name) {
			launched++
		}
	}
	methodsDone(msgs, env.Server)
	if launched == 0 {
		log.Error("no transport could be launched", "requested", env.Transports)
		eng.Close()
		return ExitNoTransport
	}
	if o.StatusInterval > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go reportStatus(msgs, eng, o.StatusInterval, stop)
	}
	return wait(o, env, eng, log, sigs)
}

// makeStateDir creates TOR_PT_STATE_LOCATION (mode 0700) unless it exists.
func makeStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create TOR_PT_STATE_LOCATION %+q: %v", dir, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("TOR_PT_STATE_LOCATION %+q is not a directory", dir)
	}
	return nil
}

// launch asks the engine for name's listener and reports it. It returns false for a
// transport that did not start; an unknown one is skipped with a warning and no -ERROR line
// (pt-spec 3.3.2: unknown names MUST NOT produce CMETHOD-ERROR).
func launch(msgs *Messages, log *slog.Logger, eng *reactor.Engine, env *ptEnv, name string) bool {
	var (
		addr net.Addr
		args codec.Args
		err  error
	)
	if env.Server {
		bind, ok := env.BindAddr[name]
		if !ok {
			bind = "0.0.0.0:0"
		}
		opts := env.Options[name]
		if opts == nil {
			opts = codec.Args{}
		}
		addr, args, err = eng.ListenServer(name, bind, opts)
	} else {
		addr, err = eng.ListenClient(name, "127.0.0.1:0")
	}
	if errors.Is(err, reactor.ErrUnknownTransport) {
		log.Warn("skipping unknown transport", "transport", name)
		return false
	}
	if err != nil {
		log.Error("transport failed to start", "transport", name, "err", err)
		methodError(msgs, env.Server, name, err.Error())
		return false
	}
	hp, err := methodAddr(addr)
	if err != nil {
		log.Error("transport listener has an unusable address", "transport", name, "err", err)
		methodError(msgs, env.Server, name, err.Error())
		return false
	}
	if !env.Server {
		msgs.CMethod(name, hp)
		log.Info("client transport ready", "transport", name, "addr", hp)
		return true
	}
	encoded, err := encodeArgs(args)
	if err != nil {
		log.Error("transport arguments cannot be published", "transport", name, "err", err)
		methodError(msgs, true, name, err.Error())
		return false
	}
	msgs.SMethod(name, hp, encoded)
	log.Info("server transport ready", "transport", name, "addr", hp)
	return true
}

// methodAddr formats a bound listener address as tor parses it: an IP literal (IPv6 in
// brackets, no zone) and a non-zero port.
func methodAddr(a net.Addr) (string, error) {
	var ap netip.AddrPort
	if ta, ok := a.(*net.TCPAddr); ok {
		ap = ta.AddrPort()
	} else {
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return "", fmt.Errorf("listener address %q: %v", a.String(), err)
		}
	}
	ip := ap.Addr().Unmap().WithZone("")
	if !ip.IsValid() || ap.Port() == 0 {
		return "", fmt.Errorf("listener address %q is not an IP address and port", a.String())
	}
	return netip.AddrPortFrom(ip, ap.Port()).String(), nil
}

func methodError(msgs *Messages, server bool, name, msg string) {
	if server {
		msgs.SMethodError(name, msg)
	} else {
		msgs.CMethodError(name, msg)
	}
}

func methodsDone(msgs *Messages, server bool) {
	if server {
		msgs.SMethodsDone()
	} else {
		msgs.CMethodsDone()
	}
}

// wait serves until the end: SIGTERM at once; SIGINT closes the listeners and waits for open
// tunnels (a second SIGINT, a SIGTERM, stdin EOF or the last tunnel ending then ends it);
// with TOR_PT_EXIT_ON_STDIN_CLOSE=1 a closed stdin ends it like SIGTERM. Without that
// variable stdin is not read at all, and the death of tor is noticed another way
// (watchParent).
func wait(o Options, env *ptEnv, eng *reactor.Engine, log *slog.Logger, sigs <-chan os.Signal) int {
	stdinClosed := make(chan struct{})
	var parentGone <-chan struct{} // nil (never ready) while stdin is watched
	if env.ExitOnStdinClose {
		go func() {
			_, _ = io.Copy(io.Discard, o.Stdin)
			close(stdinClosed)
		}()
	} else {
		parentGone = watchParent()
	}

	quit := make(chan struct{})
	defer close(quit)
	go newHandBack().run(quit, eng, log)

	var drained <-chan struct{} // nil (never ready) until the first SIGINT
	draining := false
	reason := ""
	for reason == "" {
		select {
		case s := <-sigs:
			if s == syscall.SIGINT && !draining {
				log.Log(context.Background(), LevelNotice, "SIGINT: closing listeners; exiting when open connections end or on another signal")
				draining = true
				drained = eng.Drain()
				continue
			}
			reason = s.String()
		case <-stdinClosed:
			reason = "stdin closed"
		case <-parentGone:
			reason = "parent process has gone"
		case <-drained:
			reason = "drain finished"
		}
	}
	log.Info("shutting down", "reason", reason)
	if err := eng.Close(); err != nil {
		log.Error("engine failed while closing", "err", err)
		return ExitRuntime
	}
	return ExitClean
}
