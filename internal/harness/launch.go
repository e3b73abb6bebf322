package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ptreactor/ptreactor/codec"
)

// Spec says how to launch one managed PT. Exactly one of ClientTransports and
// ServerTransports is set.
type Spec struct {
	Bin  string
	Args []string // command-line flags for the binary
	// Env, when set, is the environment tor would not give (PATH and HOME are always
	// added); an entry here wins over one of the same name that tor would give.
	Env      []string
	StateDir string

	ClientTransports string // TOR_PT_CLIENT_TRANSPORTS, e.g. "obfs4"

	ServerTransports string // TOR_PT_SERVER_TRANSPORTS
	BindAddr         string // TOR_PT_SERVER_BINDADDR, e.g. "obfs4-127.0.0.1:0"
	ORPort           string // TOR_PT_ORPORT
	ExtORPort        string // TOR_PT_EXTENDED_SERVER_PORT
	AuthCookieFile   string // TOR_PT_AUTH_COOKIE_FILE
	ServerOptions    string // TOR_PT_SERVER_TRANSPORT_OPTIONS, e.g. "obfs4:iat-mode=1"

	// HeaderTimeout bounds the wait for the METHODS DONE line besides the context's
	// deadline; zero means DefaultHeaderTimeout.
	HeaderTimeout time.Duration

	// Stderr receives the child's stderr (nil: only its tail is kept, for errors).
	Stderr io.Writer
	// Lines, when set, is called with every stdout line the child writes, in order.
	Lines func(string)
}

// DefaultHeaderTimeout is how long Launch waits for METHODS DONE when the Spec does not say.
const DefaultHeaderTimeout = 30 * time.Second

// Environ is the environment tor gives the PT for s.
func (s Spec) Environ() []string {
	env := append(BaseEnv(),
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_STATE_LOCATION="+s.StateDir,
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
	)
	if s.ClientTransports != "" {
		env = append(env, "TOR_PT_CLIENT_TRANSPORTS="+s.ClientTransports)
	} else {
		env = append(env,
			"TOR_PT_SERVER_TRANSPORTS="+s.ServerTransports,
			"TOR_PT_SERVER_BINDADDR="+s.BindAddr,
			"TOR_PT_ORPORT="+s.ORPort,
			"TOR_PT_EXTENDED_SERVER_PORT="+s.ExtORPort,
		)
		if s.AuthCookieFile != "" {
			env = append(env, "TOR_PT_AUTH_COOKIE_FILE="+s.AuthCookieFile)
		}
		if s.ServerOptions != "" {
			env = append(env, "TOR_PT_SERVER_TRANSPORT_OPTIONS="+s.ServerOptions)
		}
	}
	return append(env, s.Env...)
}

// transports is the list of names s asks for.
func (s Spec) transports() []string {
	list := s.ClientTransports
	if list == "" {
		list = s.ServerTransports
	}
	return strings.Split(list, ",")
}

// The kinds of launch failure; a LaunchError wraps one (errors.Is).
var (
	ErrVersion    = errors.New("managed-proxy version refused")
	ErrEnv        = errors.New("environment refused")
	ErrMethod     = errors.New("transport failed")
	ErrProxy      = errors.New("upstream proxy refused")
	ErrBadLine    = errors.New("malformed method line")
	ErrNoDone     = errors.New("no METHODS DONE")
	ErrExited     = errors.New("exited before METHODS DONE")
	ErrNotOffered = errors.New("transport not offered")
)

// LaunchError is why a managed PT did not come up. Its text is one line that names the
// binary and the problem; by the time Launch returns it, the child and its process group
// are gone.
type LaunchError struct {
	Bin   string
	Kind  error // ErrNotFound, ErrVersion, ..., or the error of starting the process
	cause error // the context's error, for a launch it ended
	msg   string
}

func (e *LaunchError) Error() string { return e.msg }

// Unwrap gives the kind and, when the context ended the wait, its error, so that a caller
// can tell a Ctrl-C (context.Canceled) from a PT that was too slow.
func (e *LaunchError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Kind, e.cause}
	}
	return []error{e.Kind}
}

// Method is one CMETHOD or SMETHOD line.
type Method struct {
	Name string
	Addr string // host:port
	// Socks is the CMETHOD's proxy kind (socks5, socks4); empty for SMETHOD.
	Socks string
	// Args are the SMETHOD's ARGS (obfs4: cert, iat-mode); nil for CMETHOD.
	Args codec.Args
}

// Arg returns the first value of the SMETHOD argument key, "" if there is none.
func (m Method) Arg(key string) string {
	v, _ := m.Args.Get(key)
	return v
}

// PT is one running managed PT.
type PT struct {
	Spec    Spec
	Proc    *Proc
	Methods map[string]Method
	// Header is every stdout line up to and including the METHODS DONE line.
	Header []string

	mu       sync.Mutex
	tail     []string      // stdout lines after the header
	tailDone chan struct{} // closed when readTail has taken stdout's last line
}

// Launch starts s and waits for its METHODS DONE line, up to the context's deadline and
// s.HeaderTimeout. It fails, with a *LaunchError, on a binary that cannot be started, a
// VERSION-ERROR, ENV-ERROR, CMETHOD-ERROR, SMETHOD-ERROR or PROXY-ERROR line, a malformed
// method line, an exit or a timeout before METHODS DONE, and a transport of the Spec that
// the PT passed over in silence. On failure the child has been killed.
func Launch(ctx context.Context, s Spec) (*PT, error) {
	proc, err := StartProc(s.Bin, s.Args, s.Environ(), s.Stderr)
	if err != nil {
		return nil, err
	}
	pt := &PT{Spec: s, Proc: proc, Methods: map[string]Method{}, tailDone: make(chan struct{})}
	if err := pt.readHeader(ctx); err != nil {
		proc.Kill()
		return nil, err
	}
	go pt.readTail()
	return pt, nil
}

// readHeader reads stdout up to METHODS DONE and checks that every transport asked for was
// reported.
func (pt *PT) readHeader(ctx context.Context) error {
	s, bin := pt.Spec, pt.Spec.Bin
	timeout := s.HeaderTimeout
	if timeout <= 0 {
		timeout = DefaultHeaderTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	fail := func(kind error, format string, a ...any) *LaunchError {
		return &LaunchError{Bin: bin, Kind: kind, msg: bin + ": " + fmt.Sprintf(format, a...)}
	}
	for {
		select {
		case line, ok := <-pt.Proc.Lines():
			if !ok {
				return pt.exitedEarly()
			}
			if s.Lines != nil {
				s.Lines(line)
			}
			pt.Header = append(pt.Header, line)
			kw, rest, _ := strings.Cut(line, " ")
			switch kw {
			case "CMETHODS", "SMETHODS":
				if rest == "DONE" {
					return pt.checkOffered()
				}
			case "CMETHOD", "SMETHOD":
				m, err := ParseMethod(line)
				if err != nil {
					return fail(ErrBadLine, "%v", err)
				}
				pt.Methods[m.Name] = m
			case "VERSION-ERROR":
				return fail(ErrVersion, "%v: %q", ErrVersion, line)
			case "ENV-ERROR":
				return fail(ErrEnv, "%v: %q", ErrEnv, line)
			case "CMETHOD-ERROR", "SMETHOD-ERROR":
				return fail(ErrMethod, "%v: %q", ErrMethod, line)
			case "PROXY-ERROR":
				return fail(ErrProxy, "%v: %q", ErrProxy, line)
			}
		case <-timer.C:
			return fail(ErrNoDone, "%v within %v (stdout so far: %q)", ErrNoDone, timeout, pt.Header)
		case <-ctx.Done():
			e := fail(ErrNoDone, "%v: %v (stdout so far: %q)", ErrNoDone, ctx.Err(), pt.Header)
			e.cause = ctx.Err()
			return e
		}
	}
}

// exitedEarly describes a child whose stdout ended before METHODS DONE: its exit status
// and the tail of its stderr, its last words.
func (pt *PT) exitedEarly() error {
	bin := pt.Spec.Bin
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	status := "closed its stdout"
	select {
	case <-pt.Proc.Done():
		status = pt.Proc.Cmd.ProcessState.String() // "exit status 1", "signal: killed"
	case <-t.C:
	}
	pt.Proc.Kill()
	pt.Proc.stderrSettled(time.Second)
	return &LaunchError{Bin: bin, Kind: ErrExited, msg: fmt.Sprintf("%s: %s: %v (stdout: %q, stderr: %q)",
		bin, status, ErrExited, pt.Header, pt.Proc.StderrSummary())}
}

// checkOffered fails for a transport of the Spec that the PT neither started nor refused:
// it skipped a name it does not know, as pt-spec tells it to.
func (pt *PT) checkOffered() error {
	for _, name := range pt.Spec.transports() {
		if _, ok := pt.Methods[name]; !ok && name != "*" {
			return &LaunchError{Bin: pt.Spec.Bin, Kind: ErrNotOffered,
				msg: fmt.Sprintf("transport %s not offered by %s (stdout: %q)", name, pt.Spec.Bin, pt.Header)}
		}
	}
	return nil
}

// readTail keeps what the child writes after the header, so that it never blocks on stdout.
func (pt *PT) readTail() {
	defer close(pt.tailDone)
	for line := range pt.Proc.Lines() {
		if pt.Spec.Lines != nil {
			pt.Spec.Lines(line)
		}
		pt.mu.Lock()
		if len(pt.tail) < 4096 {
			pt.tail = append(pt.tail, line)
		}
		pt.mu.Unlock()
	}
}

// Addr returns the address of the named method; it panics if there is none, which cannot
// happen for a transport of the Spec (Launch checked it).
func (pt *PT) Addr(name string) string {
	m, ok := pt.Methods[name]
	if !ok {
		panic(fmt.Sprintf("%s reported no method %q (header %q)", pt.Spec.Bin, name, pt.Header))
	}
	return m.Addr
}

// Tail returns the stdout lines written after the header (LOG, STATUS, ...).
func (pt *PT) Tail() []string {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return append([]string(nil), pt.tail...)
}

// Pid is the child's process id.
func (pt *PT) Pid() int { return pt.Proc.Pid() }

// Done is closed when the child has exited.
func (pt *PT) Done() <-chan struct{} { return pt.Proc.Done() }

// Stop closes the child's stdin and waits up to timeout for it to exit; then it kills it.
// It reports whether the child left on its own. When it returns, Tail holds every line the
// child wrote.
func (pt *PT) Stop(timeout time.Duration) bool {
	ok := pt.Proc.Stop(timeout)
	pt.tailSettled()
	return ok
}

// tailSettled waits for the stdout reader to take the last line of a child that has exited.
// The child's exit and its stdout's EOF come on different goroutines, so a Tail read right
// after the exit could miss the last line. A grandchild still holding stdout open (the
// process group was killed, so it cannot live long) is waited for at most a second.
func (pt *PT) tailSettled() {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-pt.tailDone:
	case <-t.C:
	}
}

// Signal sends sig to the child.
func (pt *PT) Signal(sig syscall.Signal) error { return pt.Proc.Signal(sig) }

// Kill kills the child and waits for it and for its last stdout line.
func (pt *PT) Kill() {
	pt.Proc.Kill()
	pt.tailSettled()
}

// ExitCode is the child's exit status once Done is closed (-1 if killed by a signal).
func (pt *PT) ExitCode() int { return pt.Proc.ExitCode() }
