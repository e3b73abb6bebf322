package reactor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec/plain"
	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// logSink collects the engines' log so that a test can read what they logged.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// pair starts a client engine and a server engine (plain) in this process, the server
// feeding orport. It returns the client's SOCKS address, the server's address and the logs.
func pair(t testing.TB, orport, extorport, cookie string) (socksAddr, serverAddr string, logs *logSink) {
	socksAddr, serverAddr, logs, _, _ = pairEngines(t, orport, extorport, cookie)
	return
}

func pairEngines(t testing.TB, orport, extorport, cookie string) (socksAddr, serverAddr string, logs *logSink, cli, srv *Engine) {
	t.Helper()
	return pairEnginesWith(t, DefaultLimits(), orport, extorport, cookie)
}

// pairEnginesWith is pairEngines with other limits for both engines.
func pairEnginesWith(t testing.TB, lim Limits, orport, extorport, cookie string) (socksAddr, serverAddr string, logs *logSink, cli, srv *Engine) {
	t.Helper()
	logs = &logSink{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	srv, err = New(Config{Logger: log.With("side", "server"), Transports: testTransports(), Limits: lim,
		ORPort: addrPort(t, orport), ExtORPort: addrPort(t, extorport), AuthCookieFile: cookie})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	sa, _, err := srv.ListenServer(plain.Name, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	cli, err = New(Config{Logger: log.With("side", "client"), Transports: testTransports(), Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ca, err := cli.ListenClient(plain.Name, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ca.String(), sa.String(), logs, cli, srv
}

// socksDial opens a tunnel as tor does (internal/harness) through the PT at socksAddr to
// target, with args (tor's encoding) in the username/password when non-empty. It returns
// the conn and the reply code (0xff: no reply).
func socksDial(socksAddr, target, args string) (net.Conn, byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := harness.DialSOCKS(ctx, socksAddr, target, args)
	var refused *harness.SOCKSError
	switch {
	case errors.As(err, &refused):
		return nil, refused.Code, nil
	case err != nil:
		return nil, 0xff, err
	}
	return c, 0, nil
}

// stream is a deterministic byte source (xorshift64*), cheap enough to feed a GiB
// through and check at the other end. Reads must be multiples of 8 bytes.
type stream struct{ x uint64 }

func (s *stream) Read(p []byte) (int, error) {
	p = p[:len(p)&^7]
	for i := 0; i < len(p); i += 8 {
		s.x ^= s.x >> 12
		s.x ^= s.x << 25
		s.x ^= s.x >> 27
		binary.LittleEndian.PutUint64(p[i:], s.x*2685821657736338717)
	}
	return len(p), nil
}

// sendHashed writes n bytes of s to w and returns their SHA-256.
func sendHashed(w io.Writer, n int64, seed uint64) ([32]byte, error) {
	h := sha256.New()
	src := io.LimitReader(&stream{x: seed*0x9e3779b97f4a7c15 + 1}, n)
	_, err := io.CopyBuffer(io.MultiWriter(w, h), src, make([]byte, 256<<10))
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, err
}

// recvHashed reads r to EOF (or n bytes) and returns the count and SHA-256.
func recvHashed(r io.Reader, n int64) (int64, [32]byte, error) {
	h := sha256.New()
	got, err := io.CopyBuffer(h, io.LimitReader(r, n), make([]byte, 256<<10))
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return got, sum, err
}

// ---- child processes, for RSS and descriptor-limit tests ----

// The test binary doubles as a ptreactor-like process: with REACTOR_TEST_CHILD set, TestMain
// runs a client engine and a server engine (plain), prints their addresses and serves until
// stdin closes.
func TestMain(m *testing.M) {
	if os.Getenv("REACTOR_TEST_CHILD") != "" {
		childMain()
		return
	}
	os.Exit(m.Run())
}

func childMain() {
	if n, _ := strconv.ParseUint(os.Getenv("REACTOR_TEST_NOFILE"), 10, 64); n > 0 {
		lim := syscall.Rlimit{Cur: n, Max: n}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := New(Config{Logger: log.With("side", "server"), Transports: testTransports(),
		ORPort: netip.MustParseAddrPort(os.Getenv("REACTOR_TEST_ORPORT"))})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	sa, _, err := srv.ListenServer(plain.Name, "127.0.0.1:0", nil)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	cli, _ := New(Config{Logger: log.With("side", "client"), Transports: testTransports()})
	ca, err := cli.ListenClient(plain.Name, "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("SOCKS", ca.String())
	fmt.Println("SERVER", sa.String())
	io.Copy(io.Discard, os.Stdin)
	cli.Close()
	srv.Close()
}

type child struct {
	*harness.Proc
	socks, srv string
	stderr     *logSink
}

func startChild(t *testing.T, orport string, nofile int) *child {
	t.Helper()
	ch := &child{stderr: &logSink{}}
	env := append(os.Environ(), "REACTOR_TEST_CHILD=1", "REACTOR_TEST_ORPORT="+orport,
		"REACTOR_TEST_NOFILE="+strconv.Itoa(nofile))
	p, err := harness.StartProc(os.Args[0], []string{"-test.run=^$"}, env, ch.stderr)
	if err != nil {
		t.Fatal(err)
	}
	ch.Proc = p
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	for l := range p.Lines() {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "SOCKS" {
			ch.socks = f[1]
		} else if len(f) == 2 && f[0] == "SERVER" {
			ch.srv = f[1]
			break
		} else {
			t.Fatalf("child: %q (stderr %s)", l, ch.stderr)
		}
	}
	if ch.srv == "" {
		t.Fatalf("child printed no addresses (stderr %s)", ch.stderr)
	}
	return ch
}

// rssKiB reads VmRSS of pid.
func rssKiB(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// listen starts a TCP server on 127.0.0.1 whose conns go to handle; closed at cleanup.
func listen(t testing.TB, handle func(net.Conn)) string { return pttest.Serve(t, handle).Addr() }

func echo(c net.Conn) { io.Copy(c, c) }
