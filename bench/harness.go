// Package bench measures ptreactor against its peers and drives both as black boxes. It
// launches any managed pluggable-transport binary (ptreactor, obfs4proxy, or the reference
// forwarder in this package) the way tor does, reads the methods it reports, and opens
// SOCKS5 tunnels through a client PT with tor's per-connection argument encoding. The
// interop tests in cmd/ptreactor, `ptbench lab` (bench/lab) and the demo are all built on it.
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec says how to launch one managed PT. Exactly one of ClientTransports and
// ServerTransports is set.
type Spec struct {
	Bin  string
	Args []string // command-line flags for the binary
	// Env, when set, is the environment tor would not give (PATH is always added).
	Env      []string
	StateDir string

	ClientTransports string // TOR_PT_CLIENT_TRANSPORTS, e.g. "obfs4"

	ServerTransports string // TOR_PT_SERVER_TRANSPORTS
	BindAddr         string // TOR_PT_SERVER_BINDADDR, e.g. "obfs4-127.0.0.1:0"
	ORPort           string // TOR_PT_ORPORT
	ExtORPort        string // TOR_PT_EXTENDED_SERVER_PORT
	AuthCookieFile   string // TOR_PT_AUTH_COOKIE_FILE
	ServerOptions    string // TOR_PT_SERVER_TRANSPORT_OPTIONS, e.g. "obfs4:iat-mode=1"

	// Stderr receives the child's stderr (nil: discarded).
	Stderr io.Writer
	// Lines, when set, is called with every stdout line the child writes, in order.
	Lines func(string)
}

// Environ is the environment tor gives the PT for s.
func (s Spec) Environ() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_STATE_LOCATION=" + s.StateDir,
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
	}
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

// Method is one CMETHOD or SMETHOD line.
type Method struct {
	Name string
	Addr string // host:port
	// Socks is the CMETHOD's proxy kind (socks5, socks4); empty for SMETHOD.
	Socks string
	// Args are the SMETHOD's ARGS (obfs4: cert, iat-mode); nil for CMETHOD.
	Args map[string]string
}

// PT is one running managed PT.
type PT struct {
	Spec    Spec
	Cmd     *exec.Cmd
	Methods map[string]Method
	// Header is every stdout line up to and including the METHODS DONE line.
	Header []string

	stdin io.WriteCloser
	done  chan struct{}
	mu    sync.Mutex
	tail  []string // stdout lines after the header
}

// Launch starts s and waits (up to the context's deadline) for its METHODS DONE line. A
// METHOD-ERROR, ENV-ERROR or VERSION-ERROR line, or an early exit, is an error.
func Launch(ctx context.Context, s Spec) (*PT, error) {
	cmd := exec.Command(s.Bin, s.Args...)
	cmd.Env = s.Environ()
	cmd.Stderr = s.Stderr
	// If the harness dies (a test timeout), the child must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &PT{Spec: s, Cmd: cmd, Methods: map[string]Method{}, stdin: stdin, done: make(chan struct{})}
	header := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		inHeader := true
		for sc.Scan() {
			line := sc.Text()
			if s.Lines != nil {
				s.Lines(line)
			}
			if !inHeader {
				p.mu.Lock()
				if len(p.tail) < 4096 {
					p.tail = append(p.tail, line)
				}
				p.mu.Unlock()
				continue
			}
			p.Header = append(p.Header, line)
			done, err := p.headerLine(line)
			if err != nil || done {
				inHeader = false
				header <- err
			}
		}
		if inHeader {
			header <- errors.New("stdout closed before METHODS DONE")
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case err = <-header:
	case <-ctx.Done():
		err = fmt.Errorf("no METHODS DONE: %w", ctx.Err())
	}
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("%s: %w (stdout so far: %q)", s.Bin, err, p.Header)
	}
	return p, nil
}

// headerLine interprets one line of the managed-proxy header.
func (p *PT) headerLine(line string) (done bool, err error) {
	kw, rest, _ := strings.Cut(line, " ")
	switch kw {
	case "CMETHODS", "SMETHODS":
		return rest == "DONE", nil
	case "CMETHOD", "SMETHOD":
		m, err := ParseMethod(line)
		if err != nil {
			return false, err
		}
		p.Methods[m.Name] = m
	case "ENV-ERROR", "VERSION-ERROR", "CMETHOD-ERROR", "SMETHOD-ERROR", "PROXY-ERROR":
		return false, errors.New(line)
	}
	return false, nil
}

// ParseMethod parses a CMETHOD or SMETHOD line (pt-spec 3.3.2, 3.3.3): "CMETHOD <name>
// socks5 <addr>" or "SMETHOD <name> <addr> [ARGS:k=v,...] [other options]".
func ParseMethod(line string) (Method, error) {
	f := strings.Fields(line)
	switch {
	case len(f) >= 4 && f[0] == "CMETHOD":
		return Method{Name: f[1], Socks: f[2], Addr: f[3]}, nil
	case len(f) >= 3 && f[0] == "SMETHOD":
		m := Method{Name: f[1], Addr: f[2]}
		for _, opt := range f[3:] {
			if a, ok := strings.CutPrefix(opt, "ARGS:"); ok {
				args, err := ParseMethodArgs(a)
				if err != nil {
					return Method{}, fmt.Errorf("%q: %w", line, err)
				}
				m.Args = args
			}
		}
		return m, nil
	}
	return Method{}, fmt.Errorf("not a method line: %q", line)
}

// ParseMethodArgs parses SMETHOD ARGS: k=v pairs joined by ',', with '\' escaping the next
// byte. A key up to the first unescaped '='; a later repeat of a key wins.
func ParseMethodArgs(s string) (map[string]string, error) {
	args := map[string]string{}
	var key, cur strings.Builder
	haveKey := false
	flush := func() error {
		if !haveKey {
			if cur.Len() == 0 {
				return nil
			}
			return fmt.Errorf("argument %q has no '='", cur.String())
		}
		args[key.String()] = cur.String()
		key.Reset()
		cur.Reset()
		haveKey = false
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
			if i == len(s) {
				return nil, errors.New("trailing backslash")
			}
			cur.WriteByte(s[i])
		case c == '=' && !haveKey:
			key.WriteString(cur.String())
			cur.Reset()
			haveKey = true
		case c == ',':
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			cur.WriteByte(c)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return args, nil
}

// Addr returns the address of the named method; it panics if there is none, which in a
// harness is a setup bug.
func (p *PT) Addr(name string) string {
	m, ok := p.Methods[name]
	if !ok {
		panic(fmt.Sprintf("%s reported no method %q (header %q)", p.Spec.Bin, name, p.Header))
	}
	return m.Addr
}

// Tail returns the stdout lines written after the header (LOG, STATUS, ...).
func (p *PT) Tail() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.tail...)
}

// Pid is the child's process id.
func (p *PT) Pid() int { return p.Cmd.Process.Pid }

// Done is closed when the child has exited.
func (p *PT) Done() <-chan struct{} { return p.done }

// Stop closes the child's stdin, which a managed PT must treat as tor going away
// (TOR_PT_EXIT_ON_STDIN_CLOSE), and waits up to timeout for it to exit; then it kills it.
// It reports whether the child left on its own.
func (p *PT) Stop(timeout time.Duration) bool {
	p.stdin.Close()
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		p.Kill()
		return false
	}
}

// Signal sends sig to the child.
func (p *PT) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill kills the child and waits for it.
func (p *PT) Kill() {
	_ = p.Cmd.Process.Kill()
	p.stdin.Close()
	<-p.done
}

// ExitCode is the child's exit status once Done is closed (-1 if killed by a signal).
func (p *PT) ExitCode() int {
	if p.Cmd.ProcessState == nil {
		return -1
	}
	return p.Cmd.ProcessState.ExitCode()
}
