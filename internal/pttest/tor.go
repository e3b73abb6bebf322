package pttest

// A real tor for end-to-end tests. Each tor runs inside a private network namespace with
// only a loopback interface, so no test can ever reach the public network whatever its
// torrc says; two tors that must talk (a bridge and its client) share one namespace. The
// torrc also names a dead directory authority, so tor does not even try the real ones.
// This needs root (CAP_SYS_ADMIN) and a tor binary; a missing tor fails the test.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TorPath returns the tor binary, or fails the test: end-to-end tests must not pass by
// skipping (the Makefile's deps target installs tor).
func TorPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("tor"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/bin/tor", "/usr/sbin/tor"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("tor is not installed (apt-get install tor, or make deps)")
	return ""
}

// NetNS is a private network namespace with its loopback interface up. It lives as long
// as the test (or any process started in it).
type NetNS struct {
	fd *os.File // /proc/<tid>/ns/net of the thread that created it, kept open
}

// NewNetNS creates a network namespace holding nothing but an up loopback interface.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread is left locked and so dies with this goroutine: it never runs
		// other goroutines in the new namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("unshare(CLONE_NEWNET): %v (the end-to-end tests need root)", err)}
			return
		}
		f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err == nil {
			err = loopbackUp()
		}
		ch <- result{f, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	ns := &NetNS{fd: r.f}
	t.Cleanup(func() { ns.fd.Close() })
	return ns
}

// loopbackUp sets IFF_UP on "lo" in the calling thread's namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %v", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS lo: %v", err)
	}
	return nil
}

// Do runs f on an OS thread that has joined the namespace. Sockets f creates and processes
// f starts (os/exec forks on the calling thread) belong to the namespace; a socket keeps
// its namespace when used from any other goroutine afterwards.
func (n *NetNS) Do(f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := unix.Setns(int(n.fd.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- fmt.Errorf("setns: %v", err)
			return
		}
		ch <- f()
	}()
	return <-ch
}

// Dial connects from inside the namespace.
func (n *NetNS) Dial(network, addr string) (c net.Conn, err error) {
	err = n.Do(func() error {
		c, err = net.DialTimeout(network, addr, 5*time.Second)
		return err
	})
	return c, err
}

// Listen listens inside the namespace.
func (n *NetNS) Listen(network, addr string) (l net.Listener, err error) {
	err = n.Do(func() error {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// Start starts cmd inside the namespace. The forking thread ends right after, so cmd must
// not set SysProcAttr.Pdeathsig (StartTor shows how to keep the thread when it does).
func (n *NetNS) Start(cmd *exec.Cmd) error {
	return n.Do(cmd.Start)
}

// startWatched starts cmd in ns (nil: this process's own namespace), set to be killed
// should this test process die first, and closes done once cmd has ended, with its
// Wait's error in *exitErr (exitErr may be nil). Pdeathsig follows the forking thread, so that thread stays,
// locked (and in ns), until cmd has ended.
func startWatched(ns *NetNS, cmd *exec.Cmd, done chan struct{}, exitErr *error) error {
	if exitErr == nil {
		exitErr = new(error)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if ns != nil {
			if err := unix.Setns(int(ns.fd.Fd()), unix.CLONE_NEWNET); err != nil {
				*exitErr = err
				started <- fmt.Errorf("setns: %v", err)
				return
			}
		}
		if err := cmd.Start(); err != nil {
			*exitErr = err
			started <- err
			return
		}
		started <- nil
		*exitErr = cmd.Wait()
	}()
	return <-started
}

// DeadDirAuthority is a DirAuthority line for an authority that does not exist, so a tor
// never contacts the real directory authorities or fallbacks.
const DeadDirAuthority = "DirAuthority dead orport=1 no-v2 v3ident=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA " +
	"127.0.0.1:2 AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA"

// Tor is one running tor.
type Tor struct {
	t       testing.TB
	NS      *NetNS
	Cmd     *exec.Cmd
	DataDir string
	LogPath string // tor's log file, at info level

	output lockedBuilder // tor's stdout and stderr
	done   chan struct{}
	err    error
}

// StartTor runs tor in ns (a new namespace if nil) with a torrc of the given lines plus
// DataDirectory, an info-level log file, the dead directory authority and settings that
// keep a test tor quiet. The tor is stopped when the test ends.
func StartTor(t testing.TB, ns *NetNS, torrc ...string) *Tor {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	return StartTorIn(t, ns, data, torrc...)
}

// StartTorIn is StartTor with data as the DataDirectory (mode 0700), which the caller may
// have filled: with another tor's keys/, say, so that the two are one relay.
func StartTorIn(t testing.TB, ns *NetNS, data string, torrc ...string) *Tor {
	t.Helper()
	bin := TorPath(t)
	if ns == nil {
		ns = NewNetNS(t)
	}
	dir := t.TempDir()
	tr := &Tor{t: t, NS: ns, DataDir: data, LogPath: filepath.Join(dir, "tor.log"), done: make(chan struct{})}
	lines := append([]string{
		"DataDirectory " + data,
		"Log info file " + tr.LogPath,
		"Log notice stdout",
		"RunAsDaemon 0",
		"SafeLogging 0",
		"AvoidDiskWrites 1",
		"UseDefaultFallbackDirs 0",
		DeadDirAuthority,
	}, torrc...)
	rc := filepath.Join(dir, "torrc")
	if err := os.WriteFile(rc, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr.Cmd = exec.Command(bin, "-f", rc, "--defaults-torrc", os.DevNull, "--ignore-missing-torrc")
	tr.Cmd.Dir = dir
	tr.Cmd.Stdout, tr.Cmd.Stderr = &tr.output, &tr.output
	if err := startWatched(ns, tr.Cmd, tr.done, &tr.err); err != nil {
		t.Fatalf("start tor: %v", err)
	}
	t.Cleanup(tr.Stop)
	return tr
}

// Output is what tor wrote on stdout and stderr so far (its notice log).
func (tr *Tor) Output() string {
	return tr.output.String()
}

// Log is tor's info-level log file so far.
func (tr *Tor) Log() string {
	b, _ := os.ReadFile(tr.LogPath)
	return string(b)
}

// WaitLog waits until a line of tor's log matches the regular expression re and returns
// it. It fails the test if tor exits or timeout passes first.
func (tr *Tor) WaitLog(re string, timeout time.Duration) string {
	tr.t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		sc := bufio.NewScanner(strings.NewReader(tr.Log()))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if r.MatchString(sc.Text()) {
				return sc.Text()
			}
		}
		select {
		case <-tr.done:
			tr.t.Fatalf("tor exited (%v) before logging %q\n%s", tr.err, re, tr.tail())
		default:
		}
		if time.Now().After(deadline) {
			tr.t.Fatalf("tor did not log %q within %v\n%s", re, timeout, tr.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail is the end of tor's log, for failure messages.
func (tr *Tor) tail() string {
	l := tr.Log()
	if l == "" {
		l = tr.Output()
	}
	if len(l) > 6000 {
		l = "...\n" + l[len(l)-6000:]
	}
	return l
}

// Stop ends tor (SIGTERM, then SIGKILL after 10 s) and waits for it; tor in turn ends its
// pluggable transports. Safe to call more than once.
func (tr *Tor) Stop() {
	select {
	case <-tr.done:
		return
	default:
	}
	_ = tr.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-tr.done:
	case <-time.After(10 * time.Second):
		_ = tr.Cmd.Process.Kill()
		<-tr.done
	}
}

// Exited reports whether tor has ended.
func (tr *Tor) Exited() bool {
	select {
	case <-tr.done:
		return true
	default:
		return false
	}
}

// Fingerprint is the relay identity fingerprint (40 hex digits) of a tor running as a
// bridge, once it has written DataDirectory/fingerprint.
func (tr *Tor) Fingerprint() string {
	tr.t.Helper()
	tr.WaitLog(`Your Tor server's identity key fingerprint is`, 60*time.Second)
	b, err := os.ReadFile(filepath.Join(tr.DataDir, "fingerprint"))
	if err != nil {
		tr.t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		tr.t.Fatalf("fingerprint file %q", b)
	}
	return f[1]
}

// BridgeTorrc is the torrc of a test bridge whose transport is served by the managed proxy
// at exec (a path plus flags) on listen (ip:port): no descriptor upload, reachability
// assumed, ORPort and ExtORPort on loopback.
func BridgeTorrc(transport, exec, listen string) []string {
	return []string{
		"BridgeRelay 1",
		"PublishServerDescriptor 0",
		"AssumeReachable 1",
		"ORPort 127.0.0.1:auto",
		"ExtORPort auto",
		"SocksPort 0",
		"ServerTransportPlugin " + transport + " exec " + exec,
		"ServerTransportListenAddr " + transport + " " + listen,
	}
}

// ClientTorrc is the torrc of a test client that reaches its one bridge through the
// managed proxy at exec; bridgeLine is what follows "Bridge " (transport, address,
// fingerprint, arguments). Wait for "new bridge descriptor" in its log to see the pair work.
func ClientTorrc(transport, exec, bridgeLine string) []string {
	return []string{
		"SocksPort auto",
		"UseBridges 1",
		"ClientTransportPlugin " + transport + " exec " + exec,
		"Bridge " + bridgeLine,
	}
}

// FreePort returns an ip:port on host that nothing in ns listens on right now.
func (n *NetNS) FreePort(t testing.TB, host string) string {
	t.Helper()
	ln, err := n.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
